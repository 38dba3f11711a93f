package farm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

func TestCampaignEstimate(t *testing.T) {
	s := time.Second
	cases := []struct {
		name       string
		tests      []campaignTest
		iter       map[string]time.Duration
		boards     int
		wall, work time.Duration
		ok         bool
	}{
		{"count × iteration time", []campaignTest{{Name: "a", Count: 200}}, map[string]time.Duration{"a": 3 * s}, 4, 600 * s, 600 * s, true},
		{"divided by its spread", []campaignTest{{Name: "a", Count: 200, Spread: 2}}, map[string]time.Duration{"a": 3 * s}, 4, 300 * s, 600 * s, true},
		{"spread capped by the boards", []campaignTest{{Name: "a", Count: 200, Spread: 8}}, map[string]time.Duration{"a": 3 * s}, 3, 200 * s, 600 * s, true},
		{"bounded by its duration", []campaignTest{{Name: "a", Count: 200, Duration: 100 * s, Spread: 2}}, map[string]time.Duration{"a": 3 * s}, 2, 100 * s, 200 * s, true},
		{"no history: its duration", []campaignTest{{Name: "a", Count: 200, Duration: 50 * s}}, nil, 2, 50 * s, 50 * s, true},
		{"duration only, spread", []campaignTest{{Name: "a", Duration: 50 * s, Spread: 2}}, map[string]time.Duration{"a": s}, 2, 50 * s, 100 * s, true},
		{"two campaigns add up", []campaignTest{{Name: "a", Count: 10}, {Name: "b", Count: 4, Spread: 2}}, map[string]time.Duration{"a": s, "b": 5 * s}, 2, 20 * s, 30 * s, true},
		{"nothing known", []campaignTest{{Name: "a", Count: 10}}, map[string]time.Duration{"b": s}, 2, 0, 0, false},
	}
	for _, tc := range cases {
		wall, work, ok := campaignEstimate(tc.tests, tc.iter, tc.boards)
		if wall != tc.wall || work != tc.work || ok != tc.ok {
			t.Errorf("%s: wall %v work %v ok %v; want %v %v %v", tc.name, wall, work, ok, tc.wall, tc.work, tc.ok)
		}
	}
}

// TestQueueETAWithCampaigns: a queued job's ETA counts a campaign ahead of
// it as its count × its typical iteration time (from a past run of its
// spec), and a running spread job ends when its shards' share does.
func TestQueueETAWithCampaigns(t *testing.T) {
	dir := t.TempDir()
	farmPath := filepath.Join(dir, "farm.hcl")
	if err := os.WriteFile(farmPath, []byte(testFarm), 0o644); err != nil {
		t.Fatal(err)
	}
	farm, diags := specs.LoadFarm(farmPath)
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "hilfarm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	c, err := New(Config{Farm: farm, DataDir: dir, Store: db, Now: func() time.Time { return now },
		OpenBoard: func(context.Context, specs.Board) (BoardHandle, error) { return nil, errors.New("not opened") }})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.slots { // both boards in service (no Run: nothing is scheduled)
		s.state = BoardIdle
	}
	// History: a run of "soak" whose iterations took 910..1100 ms.
	seedCampaign(t, db, campaignRun{id: "past", fw: "good", n: 20, boards: []string{"sim-a"}})
	var past runner.Result
	if j, err := db.Job(ctx, "past"); err != nil || json.Unmarshal(j.Result, &past) != nil {
		t.Fatal(err)
	}
	iter := time.Duration(past.Tests[0].Campaign.IterationTime.Median * float64(time.Millisecond))
	queue := func(id, src string, spread int) *store.Job {
		spec, diags := specs.ParseSpec([]byte(src), "spec.hcl", specs.SpecOptions{Farm: farm})
		if diags.HasErrors() {
			t.Fatal(diags.Err())
		}
		now = now.Add(time.Second)
		j := &store.Job{ID: id, SpecName: spec.Name, SpecSrc: []byte(src), SpecFilename: "spec.hcl", Firmware: store.Firmware{SHA256: fmt.Sprintf("%064x", 4*7919+int('g'))},
			Selector: json.RawMessage(`{"type":"sim"}`), Submitter: "ci", Created: now, Spread: spread}
		if err := db.InsertJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	// The same campaign test as the past run's: 6 iterations, spread 2.
	soakSrc := seededSpec
	soak := queue("soak-1", soakSrc, 2)
	boot := queue("boot-1", bootSpec, 0)
	v, err := c.Job(ctx, boot.ID)
	if err != nil {
		t.Fatal(err)
	}
	// 6 × iter of board time ahead, over the two boards.
	if want := now.Add(6 * iter / 2); v.Position != 2 || !v.ETA.Equal(want) {
		t.Errorf("boot behind the campaign: position %d ETA %v; want 2, %v (iteration %v)", v.Position, v.ETA, want, iter)
	}
	// Split into two shards: each is half of the campaign's board time.
	if ok, err := db.SplitJob(ctx, soak.ID, 2, now); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if v, _ = c.Job(ctx, boot.ID); !v.ETA.Equal(now.Add(6 * iter / 2)) {
		t.Errorf("boot behind two shards: ETA %v; want %v", v.ETA, now.Add(6*iter/2))
	}
	sv, err := c.Job(ctx, soak.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(3 * iter); sv.State != store.StateRunning || !sv.ETA.Equal(want) || sv.Spread == nil || len(sv.Spread.Shards) != 2 {
		t.Errorf("split campaign: %s, ends %v (want %v), spread %+v", sv.State, sv.ETA, want, sv.Spread)
	}
	// With no history, a campaign bounded by a duration takes its duration.
	byDur := strings.Replace(strings.Replace(soakSrc, `count  = 6`, `duration = "90s"`, 1), `spec "soak"`, `spec "soak2"`, 1)
	queue("soak2-1", byDur, 2)
	late := queue("boot-2", bootSpec, 0)
	// Ahead of boot-2: the two shards (6 × iter), boot-1 (1 minute: no
	// history) and soak2-1 (90 s on each of 2 boards), over 2 boards.
	want := now.Add((6*iter + time.Minute + 180*time.Second) / 2)
	if v, _ := c.Job(ctx, late.ID); !v.ETA.Equal(want) {
		t.Errorf("boot-2: ETA %v; want %v", v.ETA, want)
	}
}
