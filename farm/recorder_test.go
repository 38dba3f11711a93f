package farm

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
)

// chanSource is a console source fed by the test.
type chanSource struct {
	ch chan runner.ConsoleEvent
	mu sync.Mutex
	in bytes.Buffer
}

func (s *chanSource) Events() <-chan runner.ConsoleEvent { return s.ch }
func (s *chanSource) Write(_ context.Context, p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.in.Write(p)
	return nil
}

func data(s string) runner.ConsoleEvent {
	return runner.ConsoleEvent{Kind: runner.ConsoleData, Data: []byte(s), At: time.Now()}
}

func TestRecorderPersistsReplaysAndFeedsTheJob(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	src := &chanSource{ch: make(chan runner.ConsoleEvent)}
	rec := NewRecorder("sim-01", src, db, RecorderOptions{RingBytes: 1 << 10})
	done := make(chan error)
	go func() { done <- rec.Run(ctx) }()

	_, sync1 := rec.Watch() // a viewer: receiving a record means it was handled
	rec.Mark(MarkPowerOn, "")
	<-sync1.C()
	src.ch <- data("boot banner\n") // before any job: recorded, replayed later
	<-sync1.C()
	rec.Unwatch(sync1)
	job, start, err := rec.Attach()
	if err != nil {
		t.Fatal(err)
	}
	if start != 12 {
		t.Errorf("Attach offset = %d, want 12", start)
	}
	if _, _, err := rec.Attach(); err != ErrConsoleBusy {
		t.Errorf("second Attach = %v, want ErrConsoleBusy", err)
	}
	hist, v := rec.Watch()
	if len(hist) != 2 || hist[0].Kind != MarkPowerOn || string(hist[1].Data) != "boot banner\n" {
		t.Errorf("replay = %+v", hist)
	}
	var want bytes.Buffer
	for i := range 200 {
		s := fmt.Sprintf("line %d\n", i)
		want.WriteString(s)
		src.ch <- data(s)
	}
	src.ch <- runner.ConsoleEvent{Kind: runner.ConsoleLost, Err: fmt.Errorf("unplugged")}
	// The job sees every byte in order, then the loss.
	var got bytes.Buffer
	for ev := range job.Events() {
		if ev.Kind == runner.ConsoleLost {
			break
		}
		got.Write(ev.Data)
	}
	if got.String() != want.String() {
		t.Errorf("job stream differs: got %d bytes, want %d", got.Len(), want.Len())
	}
	if !rec.Lost() {
		t.Error("Lost() = false after ConsoleLost")
	}
	if err := job.Write(ctx, []byte("version\n")); err != nil {
		t.Fatal(err)
	}
	job.Close()
	if err := job.Write(ctx, []byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
	// The viewer got the 201 records.
	n := 0
	for n < 201 {
		<-v.C()
		n++
	}
	rec.Unwatch(v)
	close(src.ch)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Everything was persisted, markers included.
	recs, err := db.Log(ctx, "sim-01", 0, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	kinds := map[string]int{}
	for _, r := range recs {
		kinds[r.Kind]++
		if r.Kind == kindData {
			if int64(all.Len()) != r.Offset {
				t.Fatalf("record at offset %d follows %d bytes", r.Offset, all.Len())
			}
			all.Write(r.Data)
		}
	}
	if all.String() != "boot banner\n"+want.String() || kinds[MarkPowerOn] != 1 || kinds[MarkLost] != 1 {
		t.Errorf("persisted %d bytes, kinds %v", all.Len(), kinds)
	}
	if src.in.String() != "version\n" {
		t.Errorf("board received %q", src.in.String())
	}
}

// TestRecorderContinuesAfterRestart: a second recorder on the same store
// starts where the first stopped, so nothing is overwritten or lost and a
// job's offsets stay valid.
func TestRecorderContinuesAfterRestart(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, text := range []string{"first run\n", "SECOND RUN\n"} {
		start, err := db.LogEnd(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		src := &chanSource{ch: make(chan runner.ConsoleEvent)}
		rec := NewRecorder("b", src, db, RecorderOptions{Start: start})
		done := make(chan error)
		go func() { done <- rec.Run(ctx) }()
		src.ch <- data(text)
		close(src.ch)
		<-done
	}
	recs, _ := db.Log(ctx, "b", 0, -1, 0)
	var all bytes.Buffer
	for _, r := range recs {
		all.Write(r.Data)
	}
	if all.String() != "first run\nSECOND RUN\n" || len(recs) != 2 || recs[1].Offset != 10 {
		t.Errorf("log after a restart: %q %+v", all.String(), recs)
	}
}
