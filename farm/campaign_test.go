package farm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
)

// A campaign of 6 iterations spread over the farm's two sim boards.
const spreadSpec = `
spec "soak" {
  board { type = "sim" }
  timeout = "2m"
  setup {
    flash {}
    power "cycle" {}
    expect { text = "sim> " }
  }
  test "version soak" {
    repeat {
      count  = 6
      spread = 2
    }
    send { line = "version" }
    expect {
      text   = "1.1.0"
      within = "5s"
    }
  }
}
`

func TestSpreadCampaignMergesShardsIntoOneResult(t *testing.T) {
	leakCheck(t)
	var hooked []JobView
	hookDone := make(chan struct{}, 4)
	tc := startController(t, testFarm, func(cfg *Config) {
		cfg.OnJobFinished = append(cfg.OnJobFinished, func(v JobView) {
			hooked = append(hooked, v)
			hookDone <- struct{}{}
		})
	})
	ctx := context.Background()
	j, err := tc.submit(t, spreadSpec, goodModel, func(s *Submission) { s.Labels = map[string]string{"pr": "16"} })
	if err != nil {
		t.Fatal(err)
	}
	v := tc.wait(t, j.ID)
	if v.State != store.StatePassed {
		t.Fatalf("spread job: %s (%s)", v.State, v.Reason)
	}
	<-hookDone
	if len(hooked) != 1 || hooked[0].ID != j.ID {
		t.Errorf("finished hooks saw %d jobs (%+v), want only the spread job", len(hooked), hooked)
	}
	// Two shards, one per board, each a job of its own with an attempt.
	if v.Spread == nil || v.Spread.Spread != 2 || len(v.Spread.Shards) != 2 {
		t.Fatalf("spread view = %+v", v.Spread)
	}
	boards := map[string]bool{}
	for i, s := range v.Spread.Shards {
		if s.State != store.StatePassed || s.Attempts != 1 || s.ID != store.ShardID(j.ID, i) {
			t.Errorf("shard %d = %+v", i, s)
		}
		boards[s.Board] = true
		sv, err := tc.Job(ctx, s.ID)
		if err != nil || sv.ShardOf == nil || sv.ShardOf.Parent != j.ID || sv.ShardOf.Index != i || sv.ShardOf.Of != 2 {
			t.Errorf("shard %d view: %+v (%v)", i, sv, err)
		}
	}
	if !boards["sim-a"] || !boards["sim-b"] {
		t.Errorf("shards ran on %v, want sim-a and sim-b", boards)
	}
	// One result: the merged campaign, every iteration once with its board.
	var res runner.Result
	if err := json.Unmarshal(v.Result, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Tests) != 1 || res.Tests[0].Campaign == nil {
		t.Fatalf("result tests = %+v", res.Tests)
	}
	camp := res.Tests[0].Campaign
	if camp.Run != 6 || camp.Passed != 6 || camp.PassRate != 1 || len(camp.Iterations) != 6 || len(camp.Boards) != 2 {
		t.Errorf("merged campaign: run %d passed %d rate %v iterations %d boards %+v", camp.Run, camp.Passed, camp.PassRate, len(camp.Iterations), camp.Boards)
	}
	for i, it := range camp.Iterations {
		want := "sim-a"
		if v.Spread.Shards[i%2].Board != want {
			want = "sim-b"
		}
		if it.Number != i+1 || it.Board != want || it.Outcome != runner.Passed {
			t.Errorf("iteration %d = n %d on %s %s; want n %d on %s", i, it.Number, it.Board, it.Outcome, i+1, want)
		}
	}
	if camp.IterationTime.N != 6 {
		t.Errorf("iteration time stats over %d iterations, want 6", camp.IterationTime.N)
	}
	// Downloads and listings see one job.
	var buf bytes.Buffer
	if err := tc.WriteJUnit(ctx, j.ID, &buf); err != nil || !strings.Contains(buf.String(), "version soak") {
		t.Errorf("JUnit (%v):\n%s", err, buf.String())
	}
	buf.Reset()
	if err := tc.WriteJobConsole(ctx, j.ID, &buf); err != nil || strings.Count(buf.String(), "[hilfarm: attempt 1 on sim-") != 2 {
		t.Errorf("console of the spread job (%v) lacks its shards' attempts:\n%.500s", err, buf.String())
	}
	items, _, err := tc.ListJobs(ctx, JobQuery{})
	if err != nil || len(items) != 1 || items[0].ID != j.ID {
		t.Errorf("listing = %+v (%v), want the spread job alone", items, err)
	}
	if lab, _, _ := tc.ListJobs(ctx, JobQuery{Labels: []string{"pr=16"}}); len(lab) != 1 {
		t.Errorf("listing by label = %d jobs, want 1", len(lab))
	}
	for _, bv := range tc.Boards() {
		if bv.State != BoardIdle {
			t.Errorf("board %s is %s after the job, want idle", bv.Name, bv.State)
		}
	}
}

func TestSpreadCampaignCancel(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, nil)
	ctx := context.Background()
	hang := strings.Replace(spreadSpec, `text   = "1.1.0"
      within = "5s"`, `text   = "never"
      within = "5m"`, 1)
	j, err := tc.submit(t, hang, goodModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Both shards take a board.
	for {
		ch := tc.Changed()
		leased := 0
		for _, bv := range tc.Boards() {
			if bv.State == BoardLeased && strings.HasPrefix(bv.Job, j.ID+"-s") {
				leased++
			}
		}
		if leased == 2 {
			break
		}
		select {
		case <-ch:
		case <-time.After(time.Minute):
			t.Fatal("the shards did not both start")
		}
	}
	if v, _ := tc.Job(ctx, j.ID); v.State != store.StateRunning {
		t.Errorf("spread job while its shards run: %s", v.State)
	}
	v, err := tc.Cancel(ctx, j.ID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if v.State != store.StateCancelled || v.Reason != "cancelled by alice" {
		t.Errorf("cancelled spread job: %s (%s)", v.State, v.Reason)
	}
	for _, s := range v.Spread.Shards {
		if s.State != store.StateCancelled {
			t.Errorf("shard %s: %s (%s)", s.ID, s.State, s.Reason)
		}
	}
	if _, err := tc.Cancel(ctx, v.Spread.Shards[0].ID, "bob"); err == nil {
		t.Error("cancelling a shard of a finished spread job succeeded")
	}
	for _, bv := range tc.Boards() {
		if bv.State != BoardIdle {
			t.Errorf("board %s is %s after the cancel, want idle", bv.Name, bv.State)
		}
	}
}

// shardJob is a final shard whose result has one campaign test of n
// iterations (every Of-th from index), those in fail failing.
func shardJob(t *testing.T, index, of, n int, board, state string, fail map[int]bool, minRate float64) *store.Job {
	t.Helper()
	start := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	c := &runner.Campaign{Planned: n, MinPassRate: minRate, Seed: 7, StoppedBy: runner.StopCount}
	for i := index + 1; i <= n; i += of {
		it := runner.Iteration{Number: i, Outcome: runner.Passed, Started: start.Add(time.Duration(i) * time.Second), Duration: runner.Duration(time.Duration(100+i) * time.Millisecond)}
		if fail[i] {
			it.Outcome = runner.Failed
			c.Failed++
		} else {
			c.Passed++
		}
		c.Run++
		c.Iterations = append(c.Iterations, it)
	}
	merged := runner.MergeCampaigns([]*runner.Campaign{c}, nil) // its own statistics
	merged.Boards = nil
	out := runner.Passed
	if merged.PassRate < minRate {
		out = runner.Failed
	}
	res := runner.Result{Outcome: out, Started: start.Add(time.Duration(index) * time.Second), Finished: start.Add(time.Minute + time.Duration(index)*time.Second),
		Setup: &runner.TestResult{Name: "setup", Outcome: runner.Passed},
		Tests: []runner.TestResult{{Name: "soak", Outcome: out, Campaign: merged}, {Name: "once", Outcome: runner.Passed}}}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return &store.Job{ID: fmt.Sprintf("p-s%d", index+1), State: state, Board: board, Result: data}
}

func TestMergeShards(t *testing.T) {
	at := time.Date(2026, 12, 4, 13, 0, 0, 0, time.UTC)
	// min_pass_rate 0.9 over 20 iterations: shard 1 alone fails (8 of 10),
	// shard 2 passes (10 of 10); merged 18 of 20 = 0.9 passes.
	a := shardJob(t, 0, 2, 20, "sim-a", store.StateFailed, map[int]bool{3: true, 7: true}, 0.9)
	b := shardJob(t, 1, 2, 20, "sim-b", store.StatePassed, nil, 0.9)
	end, board := mergeShards([]*store.Job{a, b}, at)
	if end.State != store.StatePassed || board != "sim-a" || !end.At.Equal(at) {
		t.Fatalf("merged: %s (%s) on %s", end.State, end.Reason, board)
	}
	var res runner.Result
	if err := json.Unmarshal(end.Result, &res); err != nil {
		t.Fatal(err)
	}
	c := res.Tests[0].Campaign
	if res.Outcome != runner.Passed || res.Tests[0].Outcome != runner.Passed || c.Run != 20 || c.Passed != 18 || c.PassRate != 0.9 || len(c.Iterations) != 20 {
		t.Errorf("merged result %s, test %s: %+v", res.Outcome, res.Tests[0].Outcome, c)
	}
	if lo, hi := runner.WilsonInterval(18, 20); c.PassRateLow != lo || c.PassRateHigh != hi {
		t.Errorf("interval [%v, %v]; want [%v, %v]", c.PassRateLow, c.PassRateHigh, lo, hi)
	}
	for i, it := range c.Iterations {
		want := []string{"sim-a", "sim-b"}[i%2]
		if it.Number != i+1 || it.Board != want {
			t.Errorf("iteration %d: n %d on %s; want %d on %s", i, it.Number, it.Board, i+1, want)
		}
	}
	if len(c.Boards) != 2 || c.Boards[0].Board != "sim-a" || c.Boards[0].Passed != 8 || c.Boards[1].Passed != 10 {
		t.Errorf("board shares = %+v", c.Boards)
	}
	if res.Duration != runner.Duration(time.Minute+time.Second) || res.Tests[1].Outcome != runner.Passed || res.Setup == nil {
		t.Errorf("duration %v, other test %s, setup %v", time.Duration(res.Duration), res.Tests[1].Outcome, res.Setup)
	}
	// The other way: each shard passes its own 0.9 but together they do not.
	a = shardJob(t, 0, 2, 20, "sim-a", store.StatePassed, map[int]bool{3: true}, 0.95)
	b = shardJob(t, 1, 2, 20, "sim-b", store.StatePassed, map[int]bool{4: true}, 0.95)
	end, _ = mergeShards([]*store.Job{a, b}, at)
	if end.State != store.StateFailed || !strings.Contains(end.Reason, "pass rate 90% (18 of 20 iterations") || !strings.Contains(end.Reason, "below the minimum 95%") {
		t.Errorf("merged below the minimum: %s (%s)", end.State, end.Reason)
	}
	// An errored shard makes the job an error, naming it; a cancelled one cancels it.
	b.State, b.Reason = store.StateError, "console lost"
	if end, _ = mergeShards([]*store.Job{a, b}, at); end.State != store.StateError || end.Reason != "shard 2/2 on sim-b: console lost" {
		t.Errorf("with an errored shard: %s (%s)", end.State, end.Reason)
	}
	a.State, a.Reason = store.StateCancelled, "cancelled by alice"
	if end, _ = mergeShards([]*store.Job{a, b}, at); end.State != store.StateCancelled || end.Reason != "cancelled by alice" {
		t.Errorf("with a cancelled shard: %s (%s)", end.State, end.Reason)
	}
	// Shards cancelled before they ran: no result, still one final state.
	q := &store.Job{ID: "q-s1", State: store.StateCancelled, Reason: "cancelled by bob"}
	if end, _ = mergeShards([]*store.Job{q, {ID: "q-s2", State: store.StateCancelled, Reason: "cancelled by bob"}}, at); end.State != store.StateCancelled || end.Result != nil {
		t.Errorf("unrun shards: %s, result %s", end.State, end.Result)
	}
}

// A shard whose iteration loses the console errors; it is retried on the
// other board like any job, errors the same way there, and the blame rules
// give the error to the candidate: the shard and the spread job end failed,
// and neither board is charged.
func TestSpreadCampaignShardRetriedByTheBlameRules(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, func(c *Config) { c.MaxAttempts = 2; c.QuarantineAfter = 1 })
	spec := strings.Replace(spreadSpec, `send { line = "version" }`, `send { line = repeat.iteration == 2 ? "unplug" : "version" }`, 1)
	j, err := tc.submit(t, spec, unplugModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := tc.wait(t, j.ID)
	if v.State != store.StateFailed || !strings.Contains(v.Reason, "shard 2/2") || !strings.Contains(v.Reason, "the candidate's") {
		t.Fatalf("spread job: %s (%s); want failed, the candidate's, naming shard 2", v.State, v.Reason)
	}
	s1, s2 := v.Spread.Shards[0], v.Spread.Shards[1]
	if s1.State != store.StatePassed || s1.Attempts != 1 || s2.State != store.StateFailed || s2.Attempts != 2 {
		t.Errorf("shards: %+v, %+v; want shard 1 passed once, shard 2 failed after 2 attempts", s1, s2)
	}
	sv, err := tc.Job(context.Background(), s2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a := sv.Attempts; len(a) != 2 || a[0].State != store.StateError || a[0].Board == a[1].Board {
		t.Errorf("shard 2's attempts: %+v; want an error, then the other board", a)
	}
	for _, bv := range tc.Boards() {
		if bv.State == BoardQuarantined {
			t.Errorf("board %s quarantined by the candidate's error", bv.Name)
		}
	}
}
