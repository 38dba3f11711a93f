package farm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

func TestRetentionPrunesOldJobsAndFirmware(t *testing.T) {
	leakCheck(t)
	// The controller reads the clock from its own goroutines (jobs, health
	// checks) while the test moves it: an atomic, not a plain variable.
	var clock atomic.Pointer[time.Time]
	tc := startController(t, testFarm, func(c *Config) {
		c.Farm.Retention.Days = 7
		c.Now = func() time.Time {
			if at := clock.Load(); at != nil {
				return *at
			}
			return time.Now()
		}
	})
	ctx := context.Background()
	old, err := tc.submit(t, bootSpec, goodModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldView := tc.wait(t, old.ID)
	// A queued job that waits (every board in maintenance) is never pruned.
	for _, b := range []string{"sim-a", "sim-b"} {
		tc.SetMaintenance(ctx, b, true, "retention test", "t")
	}
	queued, err := tc.submit(t, bootSpec, strings.Replace(goodModel, "5ms", "6ms", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(8 * 24 * time.Hour)
	clock.Store(&later)
	if err := tc.ApplyRetention(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Job(ctx, old.ID); err == nil {
		t.Error("a job finished 8 days ago survived a 7-day retention")
	}
	if _, err := os.Stat(filepath.Join(tc.dir, "firmware", oldView.Firmware.SHA256)); !os.IsNotExist(err) {
		t.Errorf("its firmware file: %v, want removed", err)
	}
	if q, err := tc.Job(ctx, queued.ID); err != nil || q.State != store.StateQueued {
		t.Errorf("queued job after retention: %v %v", q, err)
	}
	if recs, _ := tc.db.Log(ctx, oldView.Board, 0, -1, 0); len(recs) != 0 {
		t.Errorf("%d old console records survived", len(recs))
	}
	// A size budget nothing can meet prunes every finished job and stops.
	for _, b := range []string{"sim-a", "sim-b"} {
		tc.SetMaintenance(ctx, b, false, "", "t")
	}
	clock.Store(nil)
	if v := tc.wait(t, queued.ID); v.State != store.StatePassed {
		t.Fatalf("queued job: %s", v.State)
	}
	tc.Farm().Retention.MaxBytes = 1
	if err := tc.ApplyRetention(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := tc.db.CountFinished(ctx); n != 0 {
		t.Errorf("%d finished jobs left over an impossible size budget", n)
	}
}
