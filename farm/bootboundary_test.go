package farm

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

// The clean boot boundary (issue 11): a job power-cycles a sim board and
// waits for its prompt, while the job before it on that board ended with
// the board printing a prompt (a command answered 1 ms late, racing the
// job's final power-off). A prompt left from before the power-on must
// never answer the new job's expect: if it did, "version" would be typed
// while the board boots (input is lost then, as on a real UART) and the
// job would fail although the firmware is good.

const soakModel = `version   = "1.1.0"
boot_time = "20ms"
prompt    = "sim> "
command "late" {
  response = "sim> late"
  delay    = "1ms"
}
`

const soakSpec = `
spec "cycle-soak" {
  board { type = "sim" }
  setup {
    flash {}
    power "cycle" {}
    expect {
      text   = "sim> "
      within = "5s"
    }
  }
  test "answers after boot" {
    send { line = "version" }
    expect {
      text   = "1.1.0"
      within = "2s"
    }
    send { line = "late" }
  }
}
`

// bootSoak runs jobs power-cycle jobs on two sim boards and returns the
// reasons of those that did not pass (false failures: the firmware is good).
func bootSoak(tb testing.TB, jobs int) (bad []string, took time.Duration) {
	tb.Helper()
	c := startController(tb, simFarm(2), nil).Controller
	ctx := context.Background()
	t0 := time.Now()
	ids := make([]string, 0, jobs)
	for range jobs {
		j, err := c.Submit(ctx, Submission{Firmware: strings.NewReader(soakModel), FirmwareName: "fw.hcl",
			SpecSrc: []byte(soakSpec), SpecFilename: "soak.hcl", Submitter: "soak"})
		if err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	for _, id := range ids {
		v := soakWait(tb, c, id)
		if v.State != store.StatePassed {
			bad = append(bad, fmt.Sprintf("job %s: %s: %s", id, v.State, firstLineOf(v.Reason)))
		}
	}
	sort.Strings(bad)
	return bad, time.Since(t0)
}

func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// TestPowerCycleSoakNoStalePrompt is the short form of the soak (200 jobs;
// `make bench` runs 1,000): every job passes.
func TestPowerCycleSoakNoStalePrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: not in -short")
	}
	bad, took := bootSoak(t, 200)
	t.Logf("200 power-cycle jobs in %s, %d false failures", took.Round(time.Millisecond), len(bad))
	if len(bad) > 0 {
		t.Fatalf("%d of 200 good jobs did not pass:\n%s", len(bad), strings.Join(bad, "\n"))
	}
}

// BenchmarkPowerCycleSoak runs 1,000 power-cycle jobs and reports the false
// failures (target 0).
func BenchmarkPowerCycleSoak(b *testing.B) {
	for range b.N {
		bad, took := bootSoak(b, 1000)
		b.ReportMetric(float64(len(bad)), "false-failures")
		b.ReportMetric(1000/took.Seconds(), "jobs/s")
		fmt.Printf("power-cycle soak: 1000 jobs on 2 sim boards in %s: %d false failures (target 0) %s\n",
			took.Round(time.Millisecond), len(bad), map[bool]string{true: "MET", false: "NOT MET"}[len(bad) == 0])
		for i, r := range bad {
			if i == 10 {
				fmt.Printf("  ... %d more\n", len(bad)-10)
				break
			}
			fmt.Println("  " + r)
		}
	}
}

// soakWait waits for a job's final state (apiui_test.go's waitJob).
func soakWait(tb testing.TB, c *Controller, id string) *JobView { return waitJob(tb, c, id) }
