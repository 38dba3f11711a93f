package farm

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

const flashFailsModel = `version = "1.1.0"
boot_time = "5ms"
faults {
  flash_error = "verify failed at 0x08004000"
}
`

// hangSpec runs until cancelled.
var hangSpec = strings.Replace(strings.Replace(bootSpec, `expect {
      text   = "1.1.0"
      within = "5s"
    }`, `expect {
      text   = "never"
      within = "5m"
    }`, 1), `timeout = "1m"`, `timeout = "10m"`, 1)

// waitWithin follows a job to its final state, failing the test when it
// does not get there within d (a job stuck in the queue).
func (tc *testController) waitWithin(t *testing.T, id string, d time.Duration) *JobView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		ch := tc.Changed()
		v, err := tc.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if store.Final(v.State) {
			return v
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("job %s still %s after %v (attempts %s)", id, v.State, d, attemptList(v.Attempts))
		}
	}
}

// waitBoardState waits until board name is in state (a health check's
// outcome is applied to its board just after the job's final state).
func (tc *testController) waitBoardState(t *testing.T, name, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond) // not every board change is on the change feed
	defer tick.Stop()
	for {
		ch := tc.Changed()
		b, err := tc.Board(name)
		if err != nil {
			t.Fatal(err)
		}
		if b.State == state {
			return
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("board %s still %s, want %s", name, b.State, state)
		}
	}
}

func attemptList(atts []store.Attempt) string {
	var b strings.Builder
	for _, a := range atts {
		fmt.Fprintf(&b, "[#%d %s on %s: %.200s] ", a.N, a.State, a.Board, a.Reason)
	}
	return b.String()
}

// waitRunning waits until a job is running.
func (tc *testController) waitRunning(t *testing.T, id string) *JobView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		ch := tc.Changed()
		v, err := tc.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if v.State == store.StateRunning {
			return v
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("job %s never ran: %s", id, v.State)
		}
	}
}

// TestRetryGoesBackWhenNoOtherBoardCanRun: with sim-b in maintenance, a job
// whose flash errors on sim-a is retried on sim-a (the only board that can
// run it) instead of waiting for sim-b forever.
func TestRetryGoesBackWhenNoOtherBoardCanRun(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, func(c *Config) { c.QuarantineAfter = 5 })
	ctx := context.Background()
	if err := tc.SetMaintenance(ctx, "sim-b", true, "relay swap", "alice"); err != nil {
		t.Fatal(err)
	}
	j, err := tc.submit(t, bootSpec, flashFailsModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := tc.waitWithin(t, j.ID, 30*time.Second)
	if v.State != store.StateError || len(v.Attempts) != 3 {
		t.Fatalf("job: %s with %d attempts (%s); want error after 3", v.State, len(v.Attempts), v.Reason)
	}
	for _, a := range v.Attempts {
		if a.Board != "sim-a" || a.State != store.StateError {
			t.Errorf("attempt %d: %s on %s, want error on sim-a", a.N, a.State, a.Board)
		}
	}
}

// TestRetryWaitsForABusyBoardAndErrorFollowsTheCandidate: the retry waits
// for sim-b, busy with another job (it will be free soon), rather than
// going back to sim-a; when the same flash step errors there too, the
// error follows the candidate: the job fails, and neither board's health
// drops or is quarantined.
func TestRetryWaitsForABusyBoardAndErrorFollowsTheCandidate(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, func(c *Config) { c.QuarantineAfter = 1 })
	ctx := context.Background()
	busy, err := tc.submit(t, hangSpec, goodModel, func(s *Submission) { s.Tags = map[string]string{"rack": "r2"} })
	if err != nil {
		t.Fatal(err)
	}
	tc.waitRunning(t, busy.ID)
	j, err := tc.submit(t, bootSpec, flashFailsModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Attempt 1 errors on sim-a; the job then waits for sim-b.
	for {
		ch := tc.Changed()
		v, _ := tc.Job(ctx, j.ID)
		if v.State == store.StateQueued && len(v.Attempts) == 1 {
			break
		}
		if store.Final(v.State) || len(v.Attempts) > 1 {
			t.Fatalf("job after attempt 1: %s with attempts %s; want queued for sim-b", v.State, attemptList(v.Attempts))
		}
		<-ch
	}
	if _, err := tc.Cancel(ctx, busy.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	v := tc.waitWithin(t, j.ID, 30*time.Second)
	if v.State != store.StateFailed || len(v.Attempts) != 2 || v.Attempts[0].Board != "sim-a" || v.Attempts[1].Board != "sim-b" {
		t.Fatalf("job: %s (%s), attempts %s; want failed after errors on sim-a then sim-b", v.State, v.Reason, attemptList(v.Attempts))
	}
	if !strings.Contains(v.Reason, "the candidate's") || !strings.Contains(v.Reason, "flash") {
		t.Errorf("reason %q does not say the error follows the candidate's flash step", v.Reason)
	}
	for _, b := range tc.Boards() {
		if b.Health != 1 || b.State == BoardQuarantined {
			t.Errorf("board %s: health %v, state %s; want 1 and not quarantined", b.Name, b.Health, b.State)
		}
	}
}

// TestRandomFirmwareIsTheCandidates: 4 KiB of random bytes submitted as sim
// firmware fail to flash on every board: the job fails and the boards keep
// their health.
func TestRandomFirmwareIsTheCandidates(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, func(c *Config) { c.QuarantineAfter = 1 })
	junk := make([]byte, 4000)
	rand.Read(junk)
	j, err := tc.submit(t, bootSpec, string(junk), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := tc.waitWithin(t, j.ID, 30*time.Second)
	if v.State != store.StateFailed {
		t.Errorf("random firmware: %s (%s), want failed", v.State, v.Reason)
	}
	for _, b := range tc.Boards() {
		if b.Health != 1 || b.State == BoardQuarantined {
			t.Errorf("board %s: health %v, state %s; want 1 and not quarantined", b.Name, b.Health, b.State)
		}
	}
}

// brokenFlasher is a board whose flasher (the programmer's cable, say) is
// broken whatever the candidate: the error stays with that board.
type brokenFlasher struct{ BoardHandle }

func (b brokenFlasher) Runner() runner.Board {
	rb := b.BoardHandle.Runner()
	rb.Flasher = failingFlasher{}
	return rb
}

type failingFlasher struct{}

func (failingFlasher) Flash(context.Context, specs.Firmware, io.Writer) error {
	return errors.New("programmer not responding")
}

// TestErrorThatStaysWithABoardIsTheBoards: a flash error on sim-a whose
// retry on sim-b passes is sim-a's: sim-a is charged (health, quarantine),
// sim-b is not.
func TestErrorThatStaysWithABoardIsTheBoards(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, func(c *Config) {
		c.QuarantineAfter = 1
		open := c.OpenBoard
		c.OpenBoard = func(ctx context.Context, b specs.Board) (BoardHandle, error) {
			h, err := open(ctx, b)
			if err == nil && b.Name == "sim-a" {
				h = brokenFlasher{h}
			}
			return h, err
		}
	})
	j, err := tc.submit(t, bootSpec, goodModel, func(s *Submission) {})
	if err != nil {
		t.Fatal(err)
	}
	v := tc.waitWithin(t, j.ID, time.Minute)
	if v.State != store.StatePassed {
		t.Fatalf("job: %s (%s), attempts %s; want passed", v.State, v.Reason, attemptList(v.Attempts))
	}
	if len(v.Attempts) != 2 || v.Attempts[0].Board != "sim-a" || v.Attempts[0].State != store.StateError {
		// The scheduler gives a job the first idle board in farm order.
		t.Fatalf("attempts %s; want an error on sim-a, then the pass on sim-b", attemptList(v.Attempts))
	}
	a, _ := tc.Board("sim-a")
	b, _ := tc.Board("sim-b")
	if a.Health >= 1 || a.State != BoardQuarantined {
		t.Errorf("sim-a (flash broken): health %v, state %s; want charged and quarantined", a.Health, a.State)
	}
	if b.Health != 1 || b.State != BoardIdle {
		t.Errorf("sim-b: health %v, state %s; want 1 and idle", b.Health, b.State)
	}
}

// TestPoisonJob: a job whose attempts two controller restarts cut short is
// not retried: it ends error saying so, and no board is charged or avoided.
// A job that one restart cut short goes back to the board it ran on when
// the other board is in maintenance.
func TestPoisonJob(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "hilfarm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fwDir := filepath.Join(dir, "firmware")
	os.MkdirAll(fwDir, 0o750)
	fwSum := sha([]byte(goodModel))
	os.WriteFile(filepath.Join(fwDir, fwSum), []byte(goodModel), 0o640)
	db.PutFirmware(ctx, store.Firmware{SHA256: fwSum, Name: "fw.hcl"}, time.Now())
	sel, _ := json.Marshal(specs.Selector{Type: "sim"})
	for _, id := range []string{"poison", "once"} {
		db.InsertJob(ctx, &store.Job{ID: id, SpecName: "boot", SpecSrc: []byte(bootSpec), SpecFilename: "s.hcl",
			Firmware: store.Firmware{SHA256: fwSum, Name: "fw.hcl"}, Selector: sel, Created: time.Now(), Submitter: "test"})
	}
	// poison: attempt 1 cut short by a restart, attempt 2 running at a crash.
	db.StartAttempt(ctx, "poison", "sim-a", 0, time.Now())
	db.RecoverInterrupted(ctx, "controller restarted", time.Now(), func(string, int) bool { return true })
	db.StartAttempt(ctx, "poison", "sim-a", 0, time.Now())
	// once: running on sim-a at a crash.
	db.StartAttempt(ctx, "once", "sim-a", 0, time.Now())
	db.SetBoardState(ctx, store.BoardState{Name: "sim-b", State: BoardMaintenance, Reason: "test", Since: time.Now()})

	farmPath := filepath.Join(dir, "farm.hcl")
	os.WriteFile(farmPath, []byte(testFarm), 0o644)
	farm, _ := specs.LoadFarm(farmPath)
	runDir, _ := os.MkdirTemp("", "hf-")
	defer os.RemoveAll(runDir)
	c, err := New(Config{Farm: farm, DataDir: dir, Store: db, OpenBoard: FixtureOpener(farm, runDir, nil)})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- c.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-c.Ready()
	tc := &testController{Controller: c, db: db}
	p, _ := c.Job(ctx, "poison")
	if p.State != store.StateError || !strings.Contains(p.Reason, "controller restarts cut its attempts short twice") {
		t.Errorf("poison job: %s (%s), want error saying restarts cut it short twice", p.State, p.Reason)
	}
	o := tc.waitWithin(t, "once", 30*time.Second)
	if o.State != store.StatePassed || len(o.Attempts) != 2 || o.Attempts[1].Board != "sim-a" {
		t.Errorf("job cut short once: %s (%s), attempts %s; want passed on sim-a", o.State, o.Reason, attemptList(o.Attempts))
	}
	for _, b := range c.Boards() {
		if b.Health != 1 {
			t.Errorf("board %s: health %v after restarts, want 1", b.Name, b.Health)
		}
	}
}

// TestErrorOnABoardThatFailedItsHealthCheckIsNotTheCandidates: the same
// step erroring on two boards is the candidate's only when both boards'
// health checks pass; with sim-b's last health check failed (and its
// quarantine lifted by hand), the job ends error and the boards are charged.
func TestErrorOnABoardThatFailedItsHealthCheckIsNotTheCandidates(t *testing.T) {
	leakCheck(t)
	farmSrc := strings.Replace(testFarm, `board_type "sim" {}`, `board_type "sim" {
  health_check = "health.hcl"
}`, 1)
	tc := startController(t, farmSrc, func(c *Config) {
		c.MaxAttempts, c.QuarantineAfter = 2, 5
		c.HealthEvery, c.QuarantineCheckEvery = -1, -1
		// Fails fast when the version is not 1.1.0.
		spec := strings.Replace(healthSpec, `expect { text = "1.1.0" }`, `expect {
      text   = "1.1.0"
      within = "300ms"
    }`, 1)
		if err := os.WriteFile(filepath.Join(filepath.Dir(c.Farm.Filename), "health.hcl"), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	ctx := context.Background()
	// sim-b runs firmware 1.0.9: its health check (which wants 1.1.0) fails.
	flashOnly := `
spec "flash" {
  board { type = "sim" }
  setup {
    flash {}
    power "cycle" {}
  }
  test "boots" {
    expect { text = "sim> " }
  }
}
`
	old, err := tc.submit(t, flashOnly, badModel, func(s *Submission) { s.Tags = map[string]string{"rack": "r2"} })
	if err != nil {
		t.Fatal(err)
	}
	tc.waitWithin(t, old.ID, time.Minute)
	h, err := tc.SubmitHealthCheck(ctx, "sim-b")
	if err != nil {
		t.Fatal(err)
	}
	if hv := tc.waitWithin(t, h.ID, time.Minute); hv.State != store.StateFailed {
		t.Fatalf("sim-b's health check: %s (%s), want failed", hv.State, hv.Reason)
	}
	// The quarantine lands just after the job's final state: lifting it
	// before it lands would leave sim-b quarantined for the job below.
	tc.waitBoardState(t, "sim-b", BoardQuarantined)
	// An operator lifts the quarantine (maintenance on, then off).
	for _, on := range []bool{true, false} {
		if err := tc.SetMaintenance(ctx, "sim-b", on, "looked at it", "alice"); err != nil {
			t.Fatal(err)
		}
	}
	j, err := tc.submit(t, bootSpec, flashFailsModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := tc.waitWithin(t, j.ID, time.Minute)
	if v.State != store.StateError || strings.Contains(v.Reason, "the candidate's") || len(v.Attempts) != 2 || v.Attempts[0].Board == v.Attempts[1].Board {
		t.Fatalf("job: %s (%s), attempts %s; want error after errors on both boards", v.State, v.Reason, attemptList(v.Attempts))
	}
	for _, b := range tc.Boards() {
		if b.Health >= 1 {
			t.Errorf("board %s: health %v, want it charged", b.Name, b.Health)
		}
	}
}

// TestPickBoard is the retry rule as a table: an idle board not failed on,
// else wait for one that runs soon, else back to a board failed on.
func TestPickBoard(t *testing.T) {
	type b struct {
		state, job, admin string
		held              bool
	}
	for _, c := range []struct {
		name   string
		boards map[string]b
		avoid  []string
		want   string // "" = wait
	}{
		{"idle untried board", map[string]b{"a": {state: BoardIdle}, "b": {state: BoardIdle}}, []string{"a"}, "b"},
		{"untried board busy with a job: wait", map[string]b{"a": {state: BoardIdle}, "b": {state: BoardLeased, job: "j"}}, []string{"a"}, ""},
		{"untried board in maintenance: same board", map[string]b{"a": {state: BoardIdle}, "b": {state: BoardMaintenance, admin: BoardMaintenance}}, []string{"a"}, "a"},
		{"untried board offline: same board", map[string]b{"a": {state: BoardIdle}, "b": {state: BoardOffline}}, []string{"a"}, "a"},
		{"untried board quarantined: same board", map[string]b{"a": {state: BoardIdle}, "b": {state: BoardQuarantined, admin: BoardQuarantined}}, []string{"a"}, "a"},
		{"untried board held by a person: same board", map[string]b{"a": {state: BoardIdle}, "b": {state: BoardLeased, held: true}}, []string{"a"}, "a"},
		{"untried board busy but going to maintenance: same board", map[string]b{"a": {state: BoardIdle}, "b": {state: BoardLeased, job: "j", admin: BoardMaintenance}}, []string{"a"}, "a"},
		{"every board failed on: any idle", map[string]b{"a": {state: BoardLeased, job: "j"}, "b": {state: BoardIdle}}, []string{"a", "b"}, "b"},
		{"nothing idle: wait", map[string]b{"a": {state: BoardLeased, job: "j"}, "b": {state: BoardMaintenance, admin: BoardMaintenance}}, []string{"a"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctl := &Controller{slots: map[string]*slot{}}
			for _, n := range []string{"a", "b"} {
				bb := c.boards[n]
				s := &slot{cfg: specs.Board{Name: n, Type: "sim"}, state: bb.state, job: bb.job, admin: bb.admin, handle: brokenFlasher{}}
				if bb.held {
					s.hold = &hold{}
				}
				ctl.slots[n], ctl.names = s, append(ctl.names, n)
			}
			avoid := map[string]bool{}
			for _, n := range c.avoid {
				avoid[n] = true
			}
			got := ctl.pickBoard(jobSelector{Selector: specs.Selector{Type: "sim"}}, avoid)
			name := ""
			if got != nil {
				name = got.cfg.Name
			}
			if name != c.want {
				t.Errorf("pickBoard = %q, want %q", name, c.want)
			}
		})
	}
}
