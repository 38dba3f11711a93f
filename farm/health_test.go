package farm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

const healthSpec = `
spec "sim-health" {
  board { type = "sim" }
  timeout = "30s"
  setup {
    power "cycle" {}
    expect { text = "sim> " }
  }
  test "shell answers" {
    send { line = "version" }
    expect { text = "1.1.0" }
  }
}
`

// TestHealthCheckLiftsQuarantine quarantines a board with an infrastructure
// error, then lets the periodic health check on quarantined boards bring it
// back.
func TestHealthCheckLiftsQuarantine(t *testing.T) {
	leakCheck(t)
	farmSrc := strings.Replace(testFarm, `board_type "sim" {}`, `board_type "sim" {
  health_check = "health.hcl"
}`, 1)
	tc := startController(t, farmSrc, func(c *Config) {
		c.MaxAttempts = 1
		c.QuarantineAfter = 1
		c.HealthEvery = -1
		c.QuarantineCheckEvery = time.Hour // driven by hand below
		if err := os.WriteFile(filepath.Join(filepath.Dir(c.Farm.Filename), "health.hcl"), []byte(healthSpec), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	ctx := context.Background()
	j, err := tc.submit(t, unplugSpec, unplugModel, func(s *Submission) { s.Tags = map[string]string{"rack": "r1"} })
	if err != nil {
		t.Fatal(err)
	}
	if v := tc.wait(t, j.ID); v.State != store.StateError {
		t.Fatalf("unplug job: %s", v.State)
	}
	if b, _ := tc.Board("sim-a"); b.State != BoardQuarantined && b.State != BoardOffline {
		t.Fatalf("sim-a: %s, want quarantined", b.State)
	}
	h, err := tc.SubmitHealthCheck(ctx, "sim-a")
	if err != nil {
		t.Fatal(err)
	}
	hv := tc.wait(t, h.ID)
	if hv.State != store.StatePassed || hv.Board != "sim-a" || hv.Submitter != HealthSubmitter {
		t.Fatalf("health check: %s on %s (%s)", hv.State, hv.Board, hv.Reason)
	}
	// The board is settled before the job's final state is published.
	if b, _ := tc.Board("sim-a"); b.State != BoardIdle {
		t.Fatalf("sim-a after a passing health check: %s (%s)", b.State, b.Reason)
	}
	states, _ := tc.db.BoardStates(ctx)
	if states["sim-a"].State != BoardIdle {
		t.Errorf("persisted: %+v", states["sim-a"])
	}
	if _, err := tc.SubmitHealthCheck(ctx, "nope"); err == nil {
		t.Error("health check of an unknown board accepted")
	}
	// The board's history tells the story: quarantined, then lifted.
	tc.hooks.Wait()
	log, _ := tc.db.AuditLog(ctx, 20)
	var actions []string
	for _, a := range log {
		if a.Target == "sim-a" && a.Actor == "hilfarm" {
			actions = append(actions, a.Action)
		}
	}
	got := strings.Join(actions, ",")
	if !strings.Contains(got, "quarantine-lifted") || !strings.Contains(got, "quarantined") || !strings.Contains(got, "console-lost") {
		t.Errorf("sim-a history: %s", got)
	}
}
