package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "hilfarm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newJob(id string, prio int, at time.Time) *Job {
	return &Job{
		ID: id, SpecName: "boot-smoke", SpecSrc: []byte(`spec "boot-smoke" {}`), SpecFilename: "boot.hcl",
		Firmware: Firmware{SHA256: "aa", Name: "fw.bin", Version: "1.0"},
		Selector: json.RawMessage(`{"type":"sim"}`), Vars: map[string]string{"x": "1"},
		Labels: map[string]string{"ci": "gl"}, Priority: prio, Submitter: "ci", Created: at,
	}
}

func TestOpenMigratesAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := db.r.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := db.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if _, err := db.r.ExecContext(ctx, "INSERT INTO audit(at_ms, actor, action, target) VALUES (1,'a','b','c')"); err == nil {
		t.Error("write through the read pool succeeded; want read-only")
	}
	db.Close()
	db, err = Open(ctx, path) // idempotent
	if err != nil {
		t.Fatal(err)
	}
	var v int
	db.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	if v != SchemaVersion {
		t.Errorf("user_version = %d, want %d", v, SchemaVersion)
	}
	// A newer database than the binary is refused.
	if _, err := db.w.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(ctx, path); err == nil {
		t.Fatal("Open of a newer schema succeeded")
	}
}

func TestJobLifecycle(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	if err := db.PutFirmware(ctx, Firmware{SHA256: "aa", Name: "fw.bin", Size: 3}, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.PutFirmware(ctx, Firmware{SHA256: "aa", Name: "other.bin", Size: 3}, t0); err != nil {
		t.Fatalf("second PutFirmware of the same hash: %v", err)
	}
	// A job whose firmware was never stored violates the foreign key.
	bad := newJob("j0", 0, t0)
	bad.Firmware.SHA256 = "nope"
	if err := db.InsertJob(ctx, bad); !IsConstraint(err) {
		t.Errorf("InsertJob with unknown firmware = %v, want a constraint error", err)
	}

	for i, p := range []int{0, 5, 0} {
		if err := db.InsertJob(ctx, newJob(fmt.Sprintf("j%d", i+1), p, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	q, err := db.Queue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, j := range q {
		order = append(order, j.ID)
	}
	if diff := cmp.Diff([]string{"j2", "j1", "j3"}, order); diff != "" {
		t.Errorf("queue order (-want +got):\n%s", diff)
	}

	n, err := db.StartAttempt(ctx, "j2", "sim-01", 100, t0.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("StartAttempt = %d, %v", n, err)
	}
	if _, err := db.StartAttempt(ctx, "j2", "sim-02", 0, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("second StartAttempt of a running job = %v, want ErrNotFound", err)
	}
	// Infrastructure error: requeued, then run again on another board and passed.
	if err := db.FinishAttempt(ctx, "j2", 1, AttemptEnd{State: StateError, Reason: "port vanished", LogEnd: 200, At: t0.Add(2 * time.Minute), Requeue: true}); err != nil {
		t.Fatal(err)
	}
	j, _ := db.Job(ctx, "j2")
	if j.State != StateQueued || j.Board != "" {
		t.Errorf("after requeue: state %q board %q", j.State, j.Board)
	}
	if n, err = db.StartAttempt(ctx, "j2", "sim-02", 0, t0.Add(3*time.Minute)); err != nil || n != 2 {
		t.Fatalf("StartAttempt #2 = %d, %v", n, err)
	}
	res := json.RawMessage(`{"outcome":"passed"}`)
	if err := db.FinishAttempt(ctx, "j2", 2, AttemptEnd{State: StatePassed, LogEnd: 50, Result: res, At: t0.Add(4 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	j, err = db.Job(ctx, "j2")
	if err != nil {
		t.Fatal(err)
	}
	if j.State != StatePassed || j.Attempts != 2 || j.Board != "sim-02" || string(j.Result) != string(res) ||
		!j.Started.Equal(t0.Add(time.Minute)) || !j.Ended.Equal(t0.Add(4*time.Minute)) {
		t.Errorf("job after pass = %+v", j)
	}
	if j.Vars["x"] != "1" || j.Labels["ci"] != "gl" {
		t.Errorf("vars/labels lost: %v %v", j.Vars, j.Labels)
	}
	atts, err := db.Attempts(ctx, "j2")
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 2 || atts[0].State != StateError || atts[0].Board != "sim-01" || atts[0].LogStart != 100 ||
		atts[0].LogEnd != 200 || atts[1].State != StatePassed {
		t.Errorf("attempts = %+v", atts)
	}

	ok, err := db.CancelQueued(ctx, "j1", "by alice", t0)
	if err != nil || !ok {
		t.Errorf("CancelQueued(j1) = %v, %v", ok, err)
	}
	if ok, _ := db.CancelQueued(ctx, "j2", "late", t0); ok {
		t.Error("CancelQueued of a finished job reported success")
	}
	if _, err := db.Job(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Job(nope) = %v, want ErrNotFound", err)
	}
	final, err := db.Jobs(ctx, JobFilter{States: []string{StatePassed, StateCancelled}})
	if err != nil || len(final) != 2 {
		t.Errorf("Jobs(final) = %d jobs, %v", len(final), err)
	}
}

func TestRecoverInterrupted(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	db.PutFirmware(ctx, Firmware{SHA256: "aa", Name: "fw"}, t0)
	for _, id := range []string{"a", "b", "c"} {
		if err := db.InsertJob(ctx, newJob(id, 0, t0)); err != nil {
			t.Fatal(err)
		}
	}
	db.StartAttempt(ctx, "a", "sim-01", 0, t0)
	db.StartAttempt(ctx, "b", "sim-02", 0, t0)
	db.Close() // the controller "dies" with a and b running, c queued

	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.RecoverInterrupted(ctx, "controller restarted", t0.Add(time.Hour), func(id string, attempts int) bool { return id == "b" })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("RecoverInterrupted = %+v, want 2", got)
	}
	for id, want := range map[string]string{"a": StateError, "b": StateQueued, "c": StateQueued} {
		j, _ := db.Job(ctx, id)
		if j.State != want {
			t.Errorf("job %s state %q, want %q", id, j.State, want)
		}
		if id != "c" && j.Reason != "controller restarted" {
			t.Errorf("job %s reason %q", id, j.Reason)
		}
	}
	if s, err := db.IntegrityCheck(ctx); err != nil || s != "ok" {
		t.Errorf("integrity_check = %q, %v", s, err)
	}
}

func TestEventsAndLog(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	db.PutFirmware(ctx, Firmware{SHA256: "aa", Name: "fw"}, t0)
	db.InsertJob(ctx, newJob("j", 0, t0))
	evs, err := db.AppendEvents(ctx, "j", []Event{{At: t0, Type: "job_started", Data: json.RawMessage(`{}`)}, {At: t0, Type: "console"}})
	if err != nil || evs[1].Seq != 2 {
		t.Fatalf("AppendEvents = %+v, %v", evs, err)
	}
	db.AppendEvents(ctx, "j", []Event{{At: t0, Type: "job_finished", Data: json.RawMessage(`{"outcome":"passed"}`)}})
	after, err := db.Events(ctx, "j", 1)
	if err != nil || len(after) != 2 || after[1].Type != "job_finished" || after[1].Seq != 3 {
		t.Errorf("Events(after 1) = %+v, %v", after, err)
	}

	recs := []LogRecord{
		{Offset: 0, At: t0, Kind: "power-on"},
		{Offset: 0, At: t0, Kind: "data", Data: []byte("U-Boot ")},
		{Offset: 7, At: t0, Kind: "data", Data: []byte("2023.01\n")},
		{Offset: 15, At: t0, Kind: "job-start", Data: []byte("j")},
		{Offset: 15, At: t0, Kind: "data", Data: []byte("=> ")},
	}
	if err := db.AppendLog(ctx, "uboot-01", recs); err != nil {
		t.Fatal(err)
	}
	got, err := db.Log(ctx, "uboot-01", 0, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(recs, got); diff != "" {
		t.Errorf("Log (-want +got):\n%s", diff)
	}
	slice, _ := db.Log(ctx, "uboot-01", 7, 15, 0)
	if len(slice) != 1 || string(slice[0].Data) != "2023.01\n" {
		t.Errorf("Log[7,15) = %+v", slice)
	}
	if end, err := db.LogEnd(ctx, "uboot-01"); err != nil || end != 18 {
		t.Errorf("LogEnd = %d, %v; want 18", end, err)
	}
	// Two markers of one kind at one offset are both kept, in order.
	db.AppendLog(ctx, "uboot-01", []LogRecord{{Offset: 18, At: t0, Kind: "power-off", Data: []byte("1")}, {Offset: 18, At: t0, Kind: "power-off", Data: []byte("2")}})
	if recs, _ := db.Log(ctx, "uboot-01", 18, -1, 0); len(recs) != 2 || string(recs[1].Data) != "2" {
		t.Errorf("markers at one offset: %+v", recs)
	}
	if end, _ := db.LogEnd(ctx, "uboot-01"); end != 18 {
		t.Errorf("LogEnd after markers = %d, want 18", end)
	}
}

func TestTokensBoardsAuditPrune(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	tok := Token{ID: "t1", Name: "ci", Role: "submitter", Hash: []byte{1, 2, 3}, Created: t0}
	if err := db.InsertToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got, err := db.TokenByID(ctx, "t1")
	if err != nil || got.Role != "submitter" || string(got.Hash) != string(tok.Hash) {
		t.Errorf("TokenByID = %+v, %v", got, err)
	}
	if err := db.RevokeToken(ctx, "t1", t0); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeToken(ctx, "t1", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("second revoke = %v", err)
	}
	if got, _ := db.TokenByID(ctx, "t1"); got.Revoked.IsZero() {
		t.Error("token not revoked")
	}

	db.SetBoardState(ctx, BoardState{Name: "sim-01", State: "maintenance", Reason: "new relay", Since: t0})
	db.SetBoardState(ctx, BoardState{Name: "sim-01", State: "idle", Since: t0.Add(time.Hour)})
	states, err := db.BoardStates(ctx)
	if err != nil || states["sim-01"].State != "idle" || states["sim-01"].Reason != "" {
		t.Errorf("BoardStates = %+v, %v", states, err)
	}

	db.Audit(ctx, AuditRecord{At: t0, Actor: "alice", Action: "maintenance-on", Target: "sim-01", Detail: "new relay"})
	log, err := db.AuditLog(ctx, 10)
	if err != nil || len(log) != 1 || log[0].Actor != "alice" {
		t.Errorf("AuditLog = %+v, %v", log, err)
	}

	db.PutFirmware(ctx, Firmware{SHA256: "old", Name: "a"}, t0)
	db.PutFirmware(ctx, Firmware{SHA256: "used", Name: "b"}, t0)
	j := newJob("j", 0, t0)
	j.Firmware.SHA256 = "used"
	db.InsertJob(ctx, j)
	db.AppendLog(ctx, "sim-01", []LogRecord{{Offset: 0, At: t0, Kind: "data", Data: []byte("x")}})
	gone, err := db.Prune(ctx, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"old"}, gone); diff != "" {
		t.Errorf("pruned firmware (-want +got):\n%s", diff)
	}
	if recs, _ := db.Log(ctx, "sim-01", 0, -1, 0); len(recs) != 0 {
		t.Errorf("old log survived prune: %+v", recs)
	}
	if _, err := db.Job(ctx, "j"); err != nil { // queued jobs are never pruned
		t.Errorf("queued job pruned: %v", err)
	}
}

// TestConcurrentWriters checks that many goroutines writing at once all
// succeed (one writer connection, BEGIN IMMEDIATE) while readers read.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	db.PutFirmware(ctx, Firmware{SHA256: "aa", Name: "fw"}, t0)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 100 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- db.InsertJob(ctx, newJob(fmt.Sprintf("j%03d", i), i%3, t0))
		}()
		go func() {
			defer wg.Done()
			_, err := db.Queue(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	q, _ := db.Queue(ctx)
	if len(q) != 100 {
		t.Errorf("queue has %d jobs, want 100", len(q))
	}
}

func TestQueueAhead(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	db.PutFirmware(ctx, Firmware{SHA256: "aa", Name: "fw"}, t0)
	jobs := []*Job{newJob("a", 0, t0), newJob("b", 5, t0.Add(time.Second)), newJob("c", 0, t0), newJob("d", 0, t0.Add(time.Second))}
	jobs[2].SpecName = "other"
	for _, j := range jobs {
		if err := db.InsertJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	// Queue order: b (priority), a, c (same ms, inserted after a), d.
	q, _ := db.Queue(ctx)
	for i, j := range q {
		pos, ahead, err := db.QueueAhead(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if pos != i+1 {
			t.Errorf("QueueAhead(%s) position = %d, want %d", j.ID, pos, i+1)
		}
		n := 0
		for _, k := range ahead {
			n += k
		}
		if n != i {
			t.Errorf("QueueAhead(%s) ahead = %v, want %d in all", j.ID, ahead, i)
		}
	}
	if _, ahead, _ := db.QueueAhead(ctx, "d"); ahead["other"] != 1 || ahead["boot-smoke"] != 2 {
		t.Errorf("ahead of d by spec = %v", ahead)
	}
}
