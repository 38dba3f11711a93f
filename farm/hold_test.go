package farm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

func TestHoldTypeAndRelease(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, nil)
	ctx := context.Background()
	if _, err := tc.Hold(ctx, "sim-a", "alice", time.Hour, ""); err == nil {
		t.Error("hold without a reason accepted")
	}
	v, err := tc.Hold(ctx, "sim-a", "alice", time.Hour, "debug uart")
	if err != nil {
		t.Fatal(err)
	}
	if v.State != BoardLeased || v.Holder != "alice" || !strings.Contains(v.Reason, "debug uart") {
		t.Errorf("held board: %+v", v)
	}
	if _, err := tc.Hold(ctx, "sim-a", "bob", time.Hour, "me too"); !errors.Is(err, ErrBoardBusy) {
		t.Errorf("second holder: %v, want ErrBoardBusy", err)
	}
	if err := tc.TypeInto(ctx, "sim-a", "bob", []byte("x")); !errors.Is(err, ErrNotHolder) {
		t.Errorf("bob typing: %v, want ErrNotHolder", err)
	}
	// The holder powers the board on and talks to its firmware; a viewer sees it all.
	hist, viewer, stop, err := tc.WatchBoard("sim-a")
	if err != nil {
		t.Fatal(err)
	}
	_ = hist
	defer stop()
	// No firmware was flashed on this sim board: it boots nothing, but the
	// power markers reach the viewer.
	if err := tc.HeldPower(ctx, "sim-a", "alice", "cycle"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for !seen[MarkPowerOn] {
		r := <-viewer.C()
		seen[r.Kind] = true
	}
	if err := tc.TypeInto(ctx, "sim-a", "alice", []byte("version\n")); err != nil {
		t.Errorf("holder typing: %v", err)
	}
	// A job for sim-a's rack waits while it is held.
	j, err := tc.submit(t, bootSpec, goodModel, func(s *Submission) { s.Tags = map[string]string{"rack": "r1"} })
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := tc.Job(ctx, j.ID); v.State != store.StateQueued {
		t.Errorf("job on a held board: %s", v.State)
	}
	if err := tc.Release(ctx, "sim-a", "bob", false); !errors.Is(err, ErrNotHolder) {
		t.Errorf("bob releasing: %v", err)
	}
	if err := tc.Release(ctx, "sim-a", "alice", false); err != nil {
		t.Fatal(err)
	}
	if v := tc.wait(t, j.ID); v.State != store.StatePassed || v.Board != "sim-a" {
		t.Errorf("job after release: %s on %s (%s)", v.State, v.Board, v.Reason)
	}
	// A hold expires by itself.
	if _, err := tc.Hold(ctx, "sim-b", "carol", 50*time.Millisecond, "quick look"); err != nil {
		t.Fatal(err)
	}
	j2, _ := tc.submit(t, bootSpec, goodModel, func(s *Submission) { s.Tags = map[string]string{"rack": "r2"} })
	if v := tc.wait(t, j2.ID); v.State != store.StatePassed || v.Board != "sim-b" {
		t.Errorf("job after the hold expired: %s on %s", v.State, v.Board)
	}
	audit, _ := tc.db.AuditLog(ctx, 10)
	var actions []string
	for _, a := range audit {
		actions = append(actions, a.Action)
	}
	if got := strings.Join(actions, ","); !strings.Contains(got, "hold") || !strings.Contains(got, "release") || !strings.Contains(got, "power-cycle") {
		t.Errorf("audit actions: %s", got)
	}
}

const measureSpec = `
spec "measure" {
  board { type = "sim" }
  setup {
    flash {}
    power "cycle" {}
    expect { text = "sim> " }
  }
  test "version" {
    send { line = "version" }
    expect { text = "1.1.0" }
  }
  test "temp" {
    send { line = "sensor temp" }
    measure "temp_c" {
      regex        = "temp=([0-9.]+)C"
      unit         = "degC"
      min          = 15
      max          = 45
      marginal_max = 40
    }
  }
}
`

func modelWithTemp(version, temp string) string {
	return "version = \"" + version + "\"\nboot_time = \"5ms\"\ncommand \"sensor temp\" {\n  response = \"temp=" + temp + "C\"\n}\n"
}

func TestCompareAndTrend(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, nil)
	ctx := context.Background()
	var ids []string
	for _, m := range []string{modelWithTemp("1.1.0", "23.5"), modelWithTemp("1.1.0", "24.5"), modelWithTemp("1.2.0", "41.0")} {
		j, err := tc.submit(t, measureSpec, m, func(s *Submission) { s.FirmwareVersion = "v" })
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	var shas []string
	for _, id := range ids {
		v := tc.wait(t, id)
		shas = append(shas, v.Firmware.SHA256)
	}
	cmp, err := tc.Compare(ctx, "measure", shas[0], shas[2])
	if err != nil {
		t.Fatal(err)
	}
	verdicts := map[string]string{}
	for _, tcmp := range cmp.Tests {
		verdicts[tcmp.Name] = tcmp.Verdict
	}
	if verdicts["version"] != CompareNewFailure || verdicts["temp"] != CompareSame {
		t.Errorf("verdicts: %v", verdicts)
	}
	if len(cmp.Measurements) != 1 || cmp.Measurements[0].Delta == nil || *cmp.Measurements[0].Delta != 41.0-23.5 ||
		cmp.Measurements[0].CandidateVerdicts["marginal"] != 1 {
		t.Errorf("measurements: %+v", cmp.Measurements)
	}
	pts, err := tc.Trend(ctx, "measure", "temp_c", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 3 || pts[0].Value != 23.5 || pts[2].Value != 41 || pts[2].Verdict != "marginal" {
		t.Errorf("trend: %+v", pts)
	}
	names, _ := tc.Measurements(ctx, "measure")
	if len(names) != 1 || names[0] != "temp_c" {
		t.Errorf("measurement names: %v", names)
	}
	if _, err := tc.Compare(ctx, "nope", "a", "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("compare of an unknown spec: %v", err)
	}
}
