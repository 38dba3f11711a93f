package rack

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Cancel at the hub: a running attempt is stopped at its rack (the board's
// Run sees its ctx end) and its late result is recorded on the attempt
// without changing the verdict; a queued job is never pulled after its
// cancel; a second cancel says the job has its verdict.
func TestCancelAtHub(t *testing.T) {
	t.Parallel()
	f := newTestFarm(t, 30*time.Second, map[string][]string{"r1": {"stm32"}})
	b := newTestBoard("b1", "stm32")
	r1 := f.addRack("r1", f.pw["r1"], b)
	waitFor(t, 15*time.Second, "leaf link", r1.agent.LinkUp)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A running attempt.
	if _, err := f.hub.Submit(ctx, Job{ID: "run", Type: "stm32"}); err != nil {
		t.Fatal(err)
	}
	recv(t, b.started, 15*time.Second, "run to start")
	// A job queued behind it (one board, busy until run ends), cancelled
	// while it waits: never pulled.
	if _, err := f.hub.Submit(ctx, Job{ID: "queued", Type: "stm32"}); err != nil {
		t.Fatal(err)
	}
	if rec, err := f.hub.Cancel(ctx, "queued", ""); err != nil || rec.Verdict != "cancelled" || len(rec.Attempts) != 0 {
		t.Fatalf("cancel of a queued job: %+v %v", rec, err)
	}
	rec, err := f.hub.Cancel(ctx, "run", "test")
	if err != nil || rec.Verdict != "cancelled" || rec.DecidedBy != "hub" {
		t.Fatalf("cancel of a running job: %+v %v", rec, err)
	}
	rec, err = f.hub.WaitJob(ctx, "run", func(r JobRecord) bool { return len(r.Attempts) == 1 && r.Attempts[0].Verdict != "" })
	if err != nil {
		t.Fatalf("the rack's result of the cancelled attempt never came: %v", err)
	}
	if a := rec.Attempts[0]; a.State != "cancelled" || a.Verdict != "cancelled" || rec.Verdict != "cancelled" || rec.DecidedBy != "hub" {
		t.Fatalf("after the rack's result: job %s by %s, attempt %+v", rec.Verdict, rec.DecidedBy, a)
	}

	if _, err := f.hub.Cancel(ctx, "queued", ""); !errors.Is(err, ErrDecided) {
		t.Fatalf("second cancel: %v, want ErrDecided", err)
	}
	if _, err := f.hub.Cancel(ctx, "nope", ""); !errors.Is(err, ErrNoJob) {
		t.Fatalf("cancel of an unknown job: %v, want ErrNoJob", err)
	}
	// The board is free again: a new job runs, the cancelled one did not.
	if _, err := f.hub.Submit(ctx, Job{ID: "next", Type: "stm32"}); err != nil {
		t.Fatal(err)
	}
	if j := recv(t, b.started, 15*time.Second, "next to start"); j.ID != "next" {
		t.Fatalf("the board ran %s, want next", j.ID)
	}
	b.verdicts <- "pass"
	if rec, err := f.hub.WaitJob(ctx, "next", decided); err != nil || rec.Verdict != "pass" {
		t.Fatalf("next: %+v %v", rec, err)
	}
	b.mu.Lock()
	runs := b.runs
	b.mu.Unlock()
	if runs != 2 {
		t.Fatalf("the board ran %d jobs, want 2 (the queued job was cancelled)", runs)
	}
	waitFor(t, 10*time.Second, "JOBS empty", func() bool { return jobsLeft(t, f.hub) == 0 })
	checkLedger(t, f.hub)
}
