package farm

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

// quickSpec powers the board on and talks to it once: the shortest real job.
const quickSpec = `
spec "quick" {
  board { type = "sim" }
  setup {
    flash {}
    power "on" {}
    expect { text = "sim> " }
  }
  test "version" {
    send { line = "version" }
    expect { text = "1.1.0" }
  }
}
`

const quickModel = "version = \"1.1.0\"\nboot_time = \"1ms\"\n"

func simFarm(n int) string {
	var b strings.Builder
	b.WriteString("farm \"bench\" {}\nboard_type \"sim\" {}\n")
	for i := range n {
		fmt.Fprintf(&b, "board \"sim-%02d\" {\n  type = \"sim\"\n  emulator \"sim\" {}\n}\n", i)
	}
	return b.String()
}

// startBench runs a controller on n sim boards until the benchmark ends.
func startBench(b *testing.B, boards int) *Controller {
	b.Helper()
	return startController(b, simFarm(boards), nil).Controller
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

func submitQuick(b *testing.B, c *Controller) *JobView {
	j, err := c.Submit(context.Background(), Submission{Firmware: strings.NewReader(quickModel), FirmwareName: "fw.hcl",
		SpecSrc: []byte(quickSpec), SpecFilename: "quick.hcl", Submitter: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return j
}

func waitFinal(b *testing.B, c *Controller, id string) *JobView {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	replay, live, stop, err := c.Subscribe(ctx, id, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	final := false
	for _, e := range replay {
		final = final || isFinalStateEvent(e)
	}
	for !final {
		select {
		case e, ok := <-live:
			if !ok {
				final = true // dropped or finished: read the state below
				break
			}
			final = isFinalStateEvent(e)
		case <-ctx.Done():
			b.Fatalf("job %s did not finish", id)
		}
	}
	v, err := c.Job(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkSubmitToPowerOn measures the time from Submit to the power-on
// marker of an idle board (target: median <= 50 ms).
func BenchmarkSubmitToPowerOn(b *testing.B) {
	c := startBench(b, 1)
	var lat []time.Duration
	for b.Loop() {
		_, v, unwatch, err := c.WatchBoard("sim-00")
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		j := submitQuick(b, c)
		for r := range v.C() {
			if r.Kind == MarkPowerOn {
				lat = append(lat, r.At.Sub(t0))
				break
			}
		}
		unwatch()
		if v := waitFinal(b, c, j.ID); v.State != store.StatePassed {
			b.Fatalf("job %s: %s", v.State, v.Reason)
		}
	}
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "ms-p99")
}

// BenchmarkTurnaround measures, on one board with jobs queued, the time
// from one job's end marker to the next job's power-on (target <= 50 ms).
func BenchmarkTurnaround(b *testing.B) {
	c := startBench(b, 1)
	var lat []time.Duration
	for b.Loop() {
		_, v, unwatch, err := c.WatchBoard("sim-00")
		if err != nil {
			b.Fatal(err)
		}
		j1 := submitQuick(b, c)
		j2 := submitQuick(b, c)
		var end time.Time
		powerOns := 0
		var seen []string
		for r := range v.C() {
			seen = append(seen, r.Kind+":"+string(r.Data))
			switch r.Kind {
			case MarkJobEnd:
				if strings.HasPrefix(string(r.Data), j1.ID) || strings.HasPrefix(string(r.Data), j2.ID) {
					end = r.At // the first of the two to end
				}
			case MarkPowerOn:
				powerOns++
				if powerOns == 2 {
					if end.IsZero() {
						b.Fatalf("second power-on before a job's end: %q", seen)
					}
					lat = append(lat, r.At.Sub(end))
				}
			}
			if powerOns == 2 {
				break
			}
		}
		unwatch()
		waitFinal(b, c, j1.ID)
		waitFinal(b, c, j2.ID)
	}
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "ms-p99")
}

// BenchmarkConcurrentSubmissions submits 1000 jobs at once to 20 sim
// boards: all are accepted, none lost or run twice, all finish.
func BenchmarkConcurrentSubmissions(b *testing.B) {
	const jobs, boards = 1000, 20
	c := startBench(b, boards)
	for b.Loop() {
		ids := make([]string, jobs)
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i] = submitQuick(b, c).ID
			}()
		}
		wg.Wait()
		accept := time.Since(t0)
		var sched []time.Duration
		for _, id := range ids {
			v := waitFinal(b, c, id)
			if v.State != store.StatePassed || len(v.Attempts) != 1 {
				b.Fatalf("job %s: %s with %d attempts (%s)", id, v.State, len(v.Attempts), v.Reason)
			}
		}
		total := time.Since(t0)
		// Scheduling latency: from a board's previous job end to its next
		// attempt start, over the whole run.
		all, _ := c.Jobs(context.Background(), store.JobFilter{Limit: jobs})
		byBoard := map[string][]store.Attempt{}
		for _, j := range all {
			for _, a := range j.Attempts {
				byBoard[a.Board] = append(byBoard[a.Board], a)
			}
		}
		for _, as := range byBoard {
			sort.Slice(as, func(i, j int) bool { return as[i].Started.Before(as[j].Started) })
			for i := 1; i < len(as); i++ {
				sched = append(sched, as[i].Started.Sub(as[i-1].Ended))
			}
		}
		b.ReportMetric(float64(jobs)/accept.Seconds(), "submissions/s")
		b.ReportMetric(float64(jobs)/total.Seconds(), "jobs/s")
		b.ReportMetric(float64(percentile(sched, 0.5).Microseconds())/1000, "sched-ms-median")
		b.ReportMetric(float64(percentile(sched, 0.99).Microseconds())/1000, "sched-ms-p99")
	}
}
