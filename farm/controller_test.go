package farm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/specs"
)

const testFarm = `
farm "test" {
  max_upload = "4KiB"
}
board_type "sim" {}
board "sim-a" {
  type = "sim"
  tags = { rack = "r1" }
  emulator "sim" {}
}
board "sim-b" {
  type = "sim"
  tags = { rack = "r2" }
  emulator "sim" {}
}
`

const bootSpec = `
spec "boot" {
  board { type = "sim" }
  timeout = "1m"
  setup {
    flash {}
    power "cycle" {}
    expect { text = "Booting hilfarm-sim v" }
    expect { text = "sim> " }
  }
  test "version" {
    send { line = "version" }
    expect {
      text   = "1.1.0"
      within = "5s"
    }
  }
}
`

const unplugSpec = `
spec "unplug" {
  board { type = "sim" }
  setup {
    flash {}
    power "cycle" {}
    expect { text = "sim> " }
  }
  test "unplug" {
    send { line = "unplug" }
    expect {
      text   = "never printed"
      within = "10s"
    }
  }
}
`

const goodModel = `version = "1.1.0"
boot_time = "5ms"
`
const badModel = `version = "1.0.9"
boot_time = "5ms"
`
const unplugModel = `version = "1.1.0"
boot_time = "5ms"
command "unplug" {
  action = "disconnect"
}
faults {
  disconnect_for = "100ms"
}
`

// leakCheck verifies, after every cleanup of the test (controller stopped,
// boards closed), that the test left no goroutine behind.
func leakCheck(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

type testController struct {
	*Controller
	db     *store.DB
	cancel context.CancelFunc
	done   chan error
	dir    string
}

func startController(t testing.TB, farmSrc string, mod func(*Config)) *testController {
	t.Helper()
	dir := t.TempDir()
	farmPath := filepath.Join(dir, "farm.hcl")
	if err := os.WriteFile(farmPath, []byte(farmSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	farm, diags := specs.LoadFarm(farmPath)
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	db, err := store.Open(context.Background(), filepath.Join(dir, "hilfarm.db"))
	if err != nil {
		t.Fatal(err)
	}
	runDir, err := os.MkdirTemp("", "hf-")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Farm:      farm,
		DataDir:   dir,
		Store:     db,
		OpenBoard: FixtureOpener(farm, runDir, nil),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tc := &testController{Controller: c, db: db, cancel: cancel, done: make(chan error, 1), dir: dir}
	go func() { tc.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		tc.stop(t)
		db.Close()
		os.RemoveAll(runDir)
	})
	select {
	case <-c.Ready():
	case err := <-tc.done:
		t.Fatalf("Run: %v", err)
	}
	return tc
}

func (tc *testController) stop(t testing.TB) {
	if tc.cancel == nil {
		return
	}
	tc.cancel()
	if err := <-tc.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	tc.cancel = nil
}

func (tc *testController) submit(t *testing.T, spec, model string, mod func(*Submission)) (*JobView, error) {
	t.Helper()
	s := Submission{Firmware: strings.NewReader(model), FirmwareName: "fw.hcl", SpecSrc: []byte(spec), SpecFilename: "spec.hcl", Submitter: "test"}
	if mod != nil {
		mod(&s)
	}
	return tc.Submit(context.Background(), s)
}

// wait follows the job's event stream to its final state event.
func (tc *testController) wait(t *testing.T, id string) *JobView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var after int64
	for {
		replay, live, stop, err := tc.Subscribe(ctx, id, after)
		if err != nil {
			t.Fatal(err)
		}
		final := false
		for _, e := range replay {
			after = e.Seq
			final = final || (e.Type == "state" && isFinalStateEvent(e))
		}
		for !final {
			select {
			case e, ok := <-live:
				if !ok {
					goto resubscribe
				}
				after = e.Seq
				final = e.Type == "state" && isFinalStateEvent(e)
			case <-ctx.Done():
				stop()
				t.Fatalf("job %s: no final state: %v", id, ctx.Err())
			}
		}
		stop()
		break
	resubscribe:
		stop()
	}
	v, err := tc.Job(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestControllerRunsJobsToTheirVerdicts(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, nil)
	good, err := tc.submit(t, bootSpec, goodModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := tc.submit(t, bootSpec, badModel, func(s *Submission) { s.Tags = map[string]string{"rack": "r2"} })
	if err != nil {
		t.Fatal(err)
	}
	if g := tc.wait(t, good.ID); g.State != store.StatePassed {
		t.Errorf("good candidate: %s (%s)", g.State, g.Reason)
	}
	b := tc.wait(t, bad.ID)
	if b.State != store.StateFailed || b.Board != "sim-b" {
		t.Errorf("regressed candidate: %s on %s (%s); want failed on sim-b", b.State, b.Board, b.Reason)
	}
	if len(b.Attempts) != 1 || b.Attempts[0].State != store.StateFailed {
		t.Errorf("attempts = %+v", b.Attempts)
	}
	// The console slice covers everything from power-on, markers included.
	var buf bytes.Buffer
	if err := tc.WriteJobConsole(context.Background(), good.ID, &buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[hilfarm: power-on", "Booting hilfarm-sim v1.1.0", "sim> ", "[hilfarm: flash-start"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("job console lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if err := tc.WriteJUnit(context.Background(), bad.ID, &buf); err != nil || !strings.Contains(buf.String(), "<failure") {
		t.Errorf("JUnit of the failed job (%v):\n%s", err, buf.String())
	}
	// The event stream replays from the start after the fact.
	replay, live, stop, err := tc.Subscribe(context.Background(), good.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, open := <-live; open {
		t.Error("live stream of a finished job is open")
	}
	types := map[string]int{}
	for _, e := range replay {
		types[e.Type]++
	}
	for _, want := range []string{"state", "job_started", "step_finished", "console", "job_finished"} {
		if types[want] == 0 {
			t.Errorf("event stream has no %q events: %v", want, types)
		}
	}
	for _, bv := range tc.Boards() {
		if bv.State != BoardIdle {
			t.Errorf("board %s is %s after the jobs, want idle", bv.Name, bv.State)
		}
	}
}

func TestControllerRejectsBadInput(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, nil)
	var rej *RejectedError
	_, err := tc.submit(t, `spec "x" { board { type = "sim" } timeout = "soon" }`, goodModel, nil)
	if !errors.As(err, &rej) || rej.Status != 422 || !rej.Diagnostics.HasErrors() {
		t.Errorf("bad duration: %v", err)
	}
	_, err = tc.submit(t, strings.Replace(bootSpec, `type = "sim"`, `type = "nucleo"`, 1), goodModel, nil)
	if !errors.As(err, &rej) || rej.Status != 422 {
		t.Errorf("unknown type: %v", err)
	}
	_, err = tc.submit(t, bootSpec, goodModel, func(s *Submission) { s.Tags = map[string]string{"rack": "r9"} })
	if !errors.As(err, &rej) || rej.Status != 422 || !strings.Contains(rej.Message, "sim-a (type sim, rack=r1)") {
		t.Errorf("selector nothing matches: %v", err)
	}
	_, err = tc.submit(t, bootSpec, strings.Repeat("x", 5000), nil)
	if !errors.As(err, &rej) || rej.Status != 413 {
		t.Errorf("oversized firmware: %v", err)
	}
	jobs, _ := tc.Jobs(context.Background(), store.JobFilter{})
	if len(jobs) != 0 {
		t.Errorf("rejected submissions left %d jobs", len(jobs))
	}
	entries, _ := os.ReadDir(filepath.Join(tc.dir, "firmware"))
	if len(entries) != 0 {
		t.Errorf("rejected submissions left firmware files: %v", entries)
	}
}

func TestControllerCancel(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, nil)
	hang := strings.Replace(bootSpec, `expect {
      text   = "1.1.0"
      within = "5s"
    }`, `expect {
      text   = "never"
      within = "5m"
    }`, 1)
	hang = strings.Replace(hang, `timeout = "1m"`, `timeout = "10m"`, 1)
	var ids []string
	for range 3 { // two run (one per board), one waits
		j, err := tc.submit(t, hang, goodModel, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	// The third is queued behind the two running ones.
	v, _ := tc.Job(context.Background(), ids[2])
	if v.State != store.StateQueued || v.Position != 1 || v.ETA.IsZero() {
		t.Errorf("third job: state %s position %d eta %v", v.State, v.Position, v.ETA)
	}
	if _, err := tc.Cancel(context.Background(), ids[2], "alice"); err != nil {
		t.Fatal(err)
	}
	if v := tc.wait(t, ids[2]); v.State != store.StateCancelled || len(v.Attempts) != 0 {
		t.Errorf("queued job after cancel: %s, %d attempts", v.State, len(v.Attempts))
	}
	for _, id := range ids[:2] {
		// Wait until it is running, then cancel it mid-step.
		for {
			v, _ := tc.Job(context.Background(), id)
			if v.State == store.StateRunning {
				break
			}
			replay, live, stop, _ := tc.Subscribe(context.Background(), id, 0)
			_ = replay
			<-live
			stop()
		}
		v, err := tc.Cancel(context.Background(), id, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if v.State != store.StateCancelled || v.Reason != "cancelled by bob" {
			t.Errorf("running job after cancel: %s (%s)", v.State, v.Reason)
		}
	}
	if _, err := tc.Cancel(context.Background(), ids[0], "bob"); !errors.Is(err, ErrFinished) {
		t.Errorf("cancel of a finished job = %v, want ErrFinished", err)
	}
	for _, bv := range tc.Boards() {
		if bv.State != BoardIdle {
			t.Errorf("board %s is %s after cancels", bv.Name, bv.State)
		}
	}
}

// TestControllerRetriesInfraErrorsElsewhere unplugs the console during a
// test: the attempt is an error (not a failure), the job moves to the
// other board, and the unplugged board comes back when its port does.
// The firmware unplugs its own console on both boards, so the error
// follows the candidate (docs/verdicts.md): the job fails and neither
// board is charged.
func TestControllerRetriesInfraErrorsElsewhere(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, func(c *Config) { c.MaxAttempts = 2; c.QuarantineAfter = 1 })
	j, err := tc.submit(t, unplugSpec, unplugModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := tc.wait(t, j.ID)
	if v.State != store.StateFailed || len(v.Attempts) != 2 || !strings.Contains(v.Reason, "the candidate's") {
		t.Fatalf("job: %s with %d attempts (%s); want failed (the candidate's) after 2", v.State, len(v.Attempts), v.Reason)
	}
	a0, a1 := v.Attempts[0], v.Attempts[1]
	if a0.State != store.StateError || a1.State != store.StateFailed || a0.Board == a1.Board {
		t.Errorf("attempts: %s on %s, %s on %s; want an error and a failure on two boards", a0.State, a0.Board, a1.State, a1.Board)
	}
	// Both boards come back once their ports return: the next job passes.
	g, err := tc.submit(t, bootSpec, goodModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gv := tc.wait(t, g.ID); gv.State != store.StatePassed {
		t.Errorf("job after the unplug: %s (%s)", gv.State, gv.Reason)
	}
	for _, bv := range tc.Boards() {
		if bv.Health != 1 || bv.State == BoardQuarantined {
			t.Errorf("board %s: health %v, state %s after the candidate's error; want 1, not quarantined", bv.Name, bv.Health, bv.State)
		}
	}
}

func TestControllerQuarantineAndMaintenance(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, func(c *Config) { c.MaxAttempts = 1; c.QuarantineAfter = 1 })
	ctx := context.Background()
	if err := tc.SetMaintenance(ctx, "sim-b", true, "relay swap", "alice"); err != nil {
		t.Fatal(err)
	}
	if b, _ := tc.Board("sim-b"); b.State != BoardMaintenance || !strings.Contains(b.Reason, "relay swap") {
		t.Errorf("sim-b: %s (%s)", b.State, b.Reason)
	}
	j, _ := tc.submit(t, unplugSpec, unplugModel, nil)
	if v := tc.wait(t, j.ID); v.State != store.StateError || v.Board != "sim-a" {
		t.Errorf("job: %s on %s", v.State, v.Board)
	}
	if b, _ := tc.Board("sim-a"); b.State != BoardQuarantined && b.State != BoardOffline {
		t.Errorf("sim-a after an infrastructure error: %s, want quarantined", b.State)
	}
	// Nothing can run now: a new job waits in the queue.
	j2, _ := tc.submit(t, bootSpec, goodModel, nil)
	if v, _ := tc.Job(ctx, j2.ID); v.State != store.StateQueued {
		t.Errorf("job with every board out of service: %s", v.State)
	}
	// Taking sim-b out of maintenance lets it run.
	if err := tc.SetMaintenance(ctx, "sim-b", false, "", "alice"); err != nil {
		t.Fatal(err)
	}
	if v := tc.wait(t, j2.ID); v.State != store.StatePassed || v.Board != "sim-b" {
		t.Errorf("job after maintenance off: %s on %s", v.State, v.Board)
	}
	states, _ := tc.db.BoardStates(ctx)
	if states["sim-a"].State != BoardQuarantined {
		t.Errorf("persisted state of sim-a: %+v", states["sim-a"])
	}
	log, _ := tc.db.AuditLog(ctx, 20)
	var people []store.AuditRecord
	for _, a := range log {
		if a.Actor == "alice" {
			people = append(people, a)
		}
	}
	if len(people) != 2 || people[1].Action != "maintenance-on" {
		t.Errorf("alice's audit records: %+v", people)
	}
}

// TestControllerRecoversInterruptedJobs simulates a controller killed
// mid-job: on the next start the job is error "controller restarted" and
// the queue is intact.
func TestControllerRecoversInterruptedJobs(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "hilfarm.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.PutFirmware(ctx, store.Firmware{SHA256: "f", Name: "fw"}, time.Now())
	sel, _ := json.Marshal(specs.Selector{Type: "sim"})
	for _, id := range []string{"running", "queued"} {
		db.InsertJob(ctx, &store.Job{ID: id, SpecName: "boot", SpecSrc: []byte(bootSpec), SpecFilename: "s.hcl",
			Firmware: store.Firmware{SHA256: "f"}, Selector: sel, Created: time.Now()})
	}
	db.StartAttempt(ctx, "running", "sim-a", 0, time.Now())
	db.Close()

	farmPath := filepath.Join(dir, "farm.hcl")
	os.WriteFile(farmPath, []byte(testFarm), 0o644)
	farm, _ := specs.LoadFarm(farmPath)
	db, err = store.Open(ctx, filepath.Join(dir, "hilfarm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runDir, _ := os.MkdirTemp("", "hf-")
	defer os.RemoveAll(runDir)
	// The queued job's firmware file is missing on purpose, and the farm is
	// put in maintenance, so nothing runs: only recovery is observed.
	c, err := New(Config{Farm: farm, DataDir: dir, Store: db, OpenBoard: FixtureOpener(farm, runDir, nil), MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"sim-a", "sim-b"} {
		db.SetBoardState(ctx, store.BoardState{Name: b, State: BoardMaintenance, Reason: "test", Since: time.Now()})
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- c.Run(rctx) }()
	// Run settles interrupted jobs before scheduling: wait for the state event.
	replay, live, stop, err := c.Subscribe(ctx, "running", 0)
	if err != nil {
		t.Fatal(err)
	}
	settled := false
	for _, e := range replay {
		settled = settled || isFinalStateEvent(e)
	}
	for e := range live {
		if settled || isFinalStateEvent(e) {
			break
		}
	}
	stop()
	j, _ := c.Job(ctx, "running")
	if j.State != store.StateError || j.Reason != "controller restarted" || j.Attempts[0].State != store.StateError {
		t.Errorf("interrupted job: %s (%s), attempts %+v", j.State, j.Reason, j.Attempts)
	}
	if q, _ := c.Job(ctx, "queued"); q.State != store.StateQueued {
		t.Errorf("queued job: %s", q.State)
	}
	for _, b := range c.Boards() {
		if b.State != BoardMaintenance {
			t.Errorf("board %s: %s, want maintenance (persisted)", b.Name, b.State)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s, _ := db.IntegrityCheck(ctx); s != "ok" {
		t.Errorf("integrity_check: %s", s)
	}
}

// TestChangedFeed: a submission and a board going into maintenance each
// close the channel Changed returned before them.
func TestChangedFeed(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, nil)
	ch := tc.Changed()
	select {
	case <-ch:
		t.Fatal("Changed closed with nothing changed")
	default:
	}
	if err := tc.SetMaintenance(context.Background(), "sim-a", true, "x", "t"); err != nil {
		t.Fatal(err)
	}
	<-ch // would hang (and time the test out) if maintenance did not notify
	ch = tc.Changed()
	if _, err := tc.submit(t, bootSpec, goodModel, nil); err != nil {
		t.Fatal(err)
	}
	<-ch
}
