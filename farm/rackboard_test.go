package farm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/rack"
	"github.com/hilfarm/hilfarm/specs"
)

const rackHangSpec = `
spec "hang" {
  board { type = "sim" }
  setup {
    flash {}
    power "cycle" {}
    expect { text = "sim> " }
  }
  test "waits" {
    expect {
      text   = "never printed"
      within = "5m"
    }
  }
}
`

// The controller's boards as rack boards: pinned local jobs whose final
// state is the verdict, health = idle, and a cancelled ctx cancels the job.
func TestRackBoards(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, nil)
	fw := func(model string) string {
		p := filepath.Join(t.TempDir(), "fw.hcl")
		if err := os.WriteFile(p, []byte(model), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, bad := fw(goodModel), fw(badModel)
	bs := tc.RackBoards("r1")
	if len(bs) != 2 || bs[0].Name() != "sim-a" || bs[1].Name() != "sim-b" || bs[0].Type() != "sim" {
		t.Fatalf("RackBoards = %v, want sim-a and sim-b of type sim", bs)
	}
	ctx := context.Background()
	waitHealthy := func(b rack.Board, want bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for b.Healthy() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: Healthy() stayed %v", b.Name(), !want)
			}
			select {
			case <-tc.Changed():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	detail := regexp.MustCompile(`^(passed|failed|error|cancelled) on r1/(sim-[ab]) \(job ([^)]+)\)`)
	local := func(d string) *JobView {
		t.Helper()
		m := detail.FindStringSubmatch(d)
		if m == nil {
			t.Fatalf("detail %q does not name the local job", d)
		}
		v, err := tc.Job(ctx, m[3])
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	t.Run("verdicts, pinned to the board", func(t *testing.T) {
		for _, c := range []struct {
			board      rack.Board
			fw, want   string
			localState string
		}{
			{bs[1], good, RackVerdictPass, store.StatePassed},
			{bs[1], bad, RackVerdictFail, store.StateFailed},
			{bs[0], good, RackVerdictPass, store.StatePassed},
		} {
			waitHealthy(c.board, true)
			v, d := c.board.Run(ctx, rack.Job{ID: "hub-1", Type: "sim", Spec: []byte(bootSpec)}, c.fw)
			if v != c.want || strings.Contains(d, "\n") {
				t.Errorf("Run on %s = %q, %q; want %q and one line", c.board.Name(), v, d, c.want)
				continue
			}
			j := local(d)
			if j.State != c.localState || j.Board != c.board.Name() || j.Labels["hub-job"] != "hub-1" || j.Labels["rack"] != "r1" || j.Submitter != RackSubmitter {
				t.Errorf("local job %s: %s on %s, labels %v, submitter %q", j.ID, j.State, j.Board, j.Labels, j.Submitter)
			}
		}
	})

	t.Run("a spec for boards the rack lacks is an error verdict", func(t *testing.T) {
		v, d := bs[0].Run(ctx, rack.Job{ID: "hub-2", Type: "sim", Spec: []byte(strings.Replace(bootSpec, `type = "sim"`, `type = "stm32"`, 1))}, good)
		if v != RackVerdictError || !strings.Contains(d, "refused the job") {
			t.Errorf("Run = %q, %q; want error, refused", v, d)
		}
	})

	t.Run("maintenance makes the board unhealthy", func(t *testing.T) {
		waitHealthy(bs[0], true)
		if err := tc.SetMaintenance(ctx, "sim-a", true, "rewiring", "test"); err != nil {
			t.Fatal(err)
		}
		if bs[0].Healthy() {
			t.Error("sim-a in maintenance is Healthy")
		}
		if err := tc.SetMaintenance(ctx, "sim-a", false, "", "test"); err != nil {
			t.Fatal(err)
		}
		waitHealthy(bs[0], true)
	})

	t.Run("ctx ends: the local job is cancelled", func(t *testing.T) {
		waitHealthy(bs[0], true)
		rctx, cancel := context.WithCancel(ctx)
		type res struct{ v, d string }
		done := make(chan res, 1)
		go func() {
			v, d := bs[0].Run(rctx, rack.Job{ID: "hub-3", Type: "sim", Spec: []byte(rackHangSpec)}, good)
			done <- res{v, d}
		}()
		for running := false; !running; {
			changed := tc.Changed()
			js, err := tc.Jobs(ctx, store.JobFilter{})
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range js {
				running = running || (j.Labels["hub-job"] == "hub-3" && j.State == store.StateRunning)
			}
			if !running {
				<-changed
			}
		}
		cancel()
		r := <-done
		if r.v != RackVerdictError || !strings.Contains(r.d, "cancelled on rack r1") {
			t.Fatalf("Run = %q, %q; want error, cancelled", r.v, r.d)
		}
		js, err := tc.Jobs(ctx, store.JobFilter{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, j := range js {
			if j.Labels["hub-job"] == "hub-3" {
				found = true
				if j.State != store.StateCancelled {
					t.Errorf("local job of hub-3 is %s, want cancelled", j.State)
				}
			}
		}
		if !found {
			t.Error("no local job for hub-3")
		}
	})

	t.Run("CancelRackJobs cancels the hub's jobs left queued, only them", func(t *testing.T) {
		for _, b := range []string{"sim-a", "sim-b"} {
			if err := tc.SetMaintenance(ctx, b, true, "hold the queue", "test"); err != nil {
				t.Fatal(err)
			}
		}
		hubJob, err := tc.submit(t, bootSpec, goodModel, func(s *Submission) { s.Submitter = RackSubmitter; s.Board = "sim-a" })
		if err != nil {
			t.Fatal(err)
		}
		localJob, err := tc.submit(t, bootSpec, goodModel, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := tc.CancelRackJobs(ctx); n != 1 || err != nil {
			t.Errorf("CancelRackJobs = %d, %v; want 1", n, err)
		}
		for id, want := range map[string]string{hubJob.ID: store.StateCancelled, localJob.ID: store.StateQueued} {
			if v, err := tc.Job(ctx, id); err != nil || v.State != want {
				t.Errorf("job %s (submitter %s): %s, %v; want %s", id, v.Submitter, v.State, err, want)
			}
		}
		if _, err := tc.Cancel(ctx, localJob.ID, "test"); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"sim-a", "sim-b"} {
			if err := tc.SetMaintenance(ctx, b, false, "", "test"); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("pinning to a board the spec does not match is refused", func(t *testing.T) {
		_, err := tc.submit(t, bootSpec, goodModel, func(s *Submission) { s.Board = "sim-c" })
		var rej *RejectedError
		if !errors.As(err, &rej) || rej.Status != 422 || !strings.Contains(rej.Message, "sim-a, sim-b") {
			t.Errorf("Submit pinned to sim-c: %v, want 422 naming sim-a, sim-b", err)
		}
	})
}

// specs (which imports nothing of ours) keeps its own copy of the rack
// name rule; both must agree.
func TestRackNameRuleMatchesSpecs(t *testing.T) {
	for _, n := range []string{"r1", "rack-1", "a_b", "0", "sim", "nucleo-f401re", strings.Repeat("a", 32),
		"", "R1", "-r", "_r", "r.1", "r 1", "r/1", "ä", strings.Repeat("a", 33), "Sim_Board", "r*", "r>"} {
		if got, want := specs.ValidRackName(n), rack.CheckName("rack", n) == nil; got != want {
			t.Errorf("specs.ValidRackName(%q) = %v, rack.CheckName accepts it: %v", n, got, want)
		}
	}
}
