package farm

import (
	"bytes"
	"context"
	"encoding/json"
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
