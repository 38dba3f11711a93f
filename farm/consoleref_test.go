package farm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.uber.org/goleak"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/fixtures/serial"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// TestRecorderStoresAFloodInFewRows: a flood through a real pty and
// go.bug.st/serial is stored byte-identical, with each run of reads merged
// into a few rows (not one row per read), and markers keep their place:
// no stored row crosses one. A range read that starts or ends inside a
// merged row returns exactly the range's bytes.
func TestRecorderStoresAFloodInFewRows(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ptmx, rec, stopRec := ptyRecorder(t, db)
	defer stopRec()

	// Three floods of 1 MiB with a marker after each (placed once the
	// recorder has every byte of its flood).
	var want bytes.Buffer
	var marks []int64
	for part := range 3 {
		chunk := bytes.Repeat([]byte(fmt.Sprintf("part %d: 0123456789abcdefghijklmnopqrstuvwxyz\n", part)), (1<<20)/40)
		want.Write(chunk)
		if _, err := ptmx.Write(chunk); err != nil {
			t.Fatal(err)
		}
		waitRecorded(t, rec, int64(want.Len()))
		marks = append(marks, rec.Mark(MarkPowerOff, fmt.Sprint(part)))
	}
	rec.SyncTo(ctx, int64(want.Len()))
	stopRec()

	recs, err := db.Log(ctx, "pty", 0, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	rows, gotMarks := 0, []int64{}
	for _, r := range recs {
		if r.Kind != kindData {
			gotMarks = append(gotMarks, r.Offset)
			if r.Offset != int64(got.Len()) {
				t.Errorf("marker at %d inside the data (stored %d bytes before it)", r.Offset, got.Len())
			}
			continue
		}
		if r.Offset != int64(got.Len()) {
			t.Fatalf("row at offset %d follows %d bytes", r.Offset, got.Len())
		}
		got.Write(r.Data)
		rows++
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("stored %d bytes, written %d: not identical", got.Len(), want.Len())
	}
	if fmt.Sprint(gotMarks) != fmt.Sprint(marks) {
		t.Errorf("markers at %v, placed at %v", gotMarks, marks)
	}
	// A pty read returns at most 4 KiB: 3 MiB is at least 768 reads.
	if rows > 3*(1<<20)/(16<<10) {
		t.Errorf("%d rows for 3 MiB of flood: reads were not merged", rows)
	}
	t.Logf("3 MiB stored in %d data rows", rows)

	// A range inside merged rows.
	from, to := int64(100000), int64(2500000)
	part, err := db.Log(ctx, "pty", from, to, 0)
	if err != nil {
		t.Fatal(err)
	}
	var rng bytes.Buffer
	for _, r := range part {
		if r.Kind == kindData {
			if r.Offset != from+int64(rng.Len()) {
				t.Fatalf("range row at %d, want %d", r.Offset, from+int64(rng.Len()))
			}
			rng.Write(r.Data)
		}
	}
	if !bytes.Equal(rng.Bytes(), want.Bytes()[from:to]) {
		t.Errorf("range [%d, %d) gave %d bytes, not the stream's", from, to, rng.Len())
	}
}

// TestJobReadsJoinedChunks: while a job's reader lags a flood, each of its
// reads returns the queued reads that follow one another in a slab as one
// chunk (up to maxJobChunk), without a copy; the bytes are the stream's,
// and no chunk lets an append reach the slab's rest.
func TestJobReadsJoinedChunks(t *testing.T) {
	defer goleak.VerifyNone(t)
	ptmx, rec, stopRec := ptyRecorder(t, nil)
	defer stopRec()
	jc, _, err := rec.Attach()
	if err != nil {
		t.Fatal(err)
	}
	defer jc.Close()
	want := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz-flood\n"), (1<<20)/43)
	if _, err := ptmx.Write(want); err != nil {
		t.Fatal(err)
	}
	waitRecorded(t, rec, int64(len(want)))
	var got []byte
	events := 0
	for len(got) < len(want) {
		ev, err := jc.ReadEvent(nil, time.Now().Add(10*time.Second))
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		if ev.Kind != runner.ConsoleData {
			continue
		}
		if len(ev.Data) > maxJobChunk+readChunk || cap(ev.Data) != len(ev.Data) {
			t.Fatalf("chunk of %d bytes, capacity %d", len(ev.Data), cap(ev.Data))
		}
		if ev.Offset != int64(len(got)) {
			t.Fatalf("chunk at offset %d after %d bytes", ev.Offset, len(got))
		}
		got = append(got, ev.Data...)
		events++
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the job's bytes are not the stream's")
	}
	// A pty read returns at most 4 KiB: 1 MiB is at least 256 reads.
	if events > (1<<20)/(16<<10) {
		t.Errorf("%d job reads for 1 MiB read by the recorder beforehand: chunks were not joined", events)
	}
	t.Logf("1 MiB in %d job reads", events)
}

// ptyRecorder runs a recorder (storing into sink, when not nil) of a real
// pty through go.bug.st/serial; stop (idempotent) ends it and closes all.
func ptyRecorder(t *testing.T, sink LogSink) (ptmx *os.File, rec *Recorder, stop func()) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	con, err := serial.Open(context.Background(), specs.Console{Port: tty.Name(), Baud: 115200}, serial.Options{Name: "pty"})
	if err != nil {
		ptmx.Close()
		tty.Close()
		t.Fatal(err)
	}
	rec = NewRecorder("pty", con, sink, RecorderOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	var once sync.Once
	return ptmx, rec, func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			con.Close()
			tty.Close()
			ptmx.Close()
		})
	}
}

// waitRecorded waits until the recorder has read n bytes.
func waitRecorded(t *testing.T, rec *Recorder, n int64) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); rec.Offset() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("the recorder read %d of %d bytes in a minute", rec.Offset(), n)
		}
		time.Sleep(time.Millisecond) // waiting for the recorder to read what the kernel holds
	}
}

// TestJobConsoleStoredOnce: a job's console events are stored as
// references into the board log (not a second copy of the bytes), and
// both a live subscriber and a late one (replay) get the console bytes,
// identical, and the same as the attempt's console.
func TestJobConsoleStoredOnce(t *testing.T) {
	leakCheck(t)
	tc := startController(t, testFarm, nil)
	ctx := context.Background()
	j, err := tc.submit(t, bootSpec, goodModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	liveReplay, liveCh, stopLive, err := tc.Subscribe(ctx, j.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A subscriber without console (submit --wait --quiet) beside it.
	quietReplay, quietCh, stopQuiet, err := tc.SubscribeEvents(ctx, j.ID, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	var live bytes.Buffer
	var liveOther []int64
	for _, e := range liveReplay { // what was stored before the subscription
		if e.Type == "console" {
			live.WriteString(consoleData(t, e))
		} else {
			liveOther = append(liveOther, e.Seq)
		}
	}
	for e := range liveCh {
		if e.Type == "console" {
			live.WriteString(consoleData(t, e))
		} else {
			liveOther = append(liveOther, e.Seq)
		}
	}
	stopLive()
	var quiet []int64
	for _, e := range quietReplay {
		quiet = append(quiet, e.Seq)
		if e.Type == "console" {
			t.Fatalf("a replay without console has console event %d", e.Seq)
		}
	}
	for e := range quietCh {
		quiet = append(quiet, e.Seq)
		if e.Type == "console" {
			t.Fatalf("a subscriber without console got console event %d", e.Seq)
		}
	}
	stopQuiet()
	if fmt.Sprint(quiet) != fmt.Sprint(liveOther) {
		t.Errorf("without console: events %v, want the other events %v", quiet, liveOther)
	}
	if replay, _, stop, err := tc.SubscribeEvents(ctx, j.ID, 0, false); err != nil {
		t.Fatal(err)
	} else {
		stop()
		for _, e := range replay {
			if e.Type == "console" {
				t.Fatalf("a replay without console has console event %d", e.Seq)
			}
		}
	}
	if v := tc.wait(t, j.ID); v.State != store.StatePassed {
		t.Fatalf("job %s: %s %s", j.ID, v.State, v.Reason)
	}

	stored, err := tc.db.Events(ctx, j.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	refs := 0
	for _, e := range stored {
		if e.Type != "console" {
			continue
		}
		refs++
		if !strings.HasPrefix(string(e.Data), consoleRefPrefix) || len(e.Data) > 200 {
			t.Errorf("stored console event is not a reference: %.200s", e.Data)
		}
	}
	if refs == 0 {
		t.Fatal("no console events stored")
	}

	replay, _, stop, err := tc.Subscribe(ctx, j.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	var late bytes.Buffer
	for _, e := range replay {
		if e.Type == "console" {
			late.WriteString(consoleData(t, e))
		}
	}
	if !strings.Contains(late.String(), "Booting hilfarm-sim v") || !strings.Contains(late.String(), "1.1.0") {
		t.Errorf("replayed console lacks the boot banner or the version:\n%s", late.String())
	}
	if live.String() != late.String() {
		t.Errorf("live console (%d bytes) differs from the replay (%d bytes)", live.Len(), late.Len())
	}
	var attempt bytes.Buffer
	if err := tc.WriteJobConsole(ctx, j.ID, &attempt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(attempt.String(), late.String()) {
		t.Errorf("the job's console events are not a part of the attempt's console:\nevents: %q\nattempt: %q", late.String(), attempt.String())
	}
}

func consoleData(t *testing.T, e store.Event) string {
	t.Helper()
	var d struct {
		Data    *string `json:"data"`
		Missing int64   `json:"missing"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil || d.Data == nil {
		t.Fatalf("console event %d: %v: %.200s", e.Seq, err, e.Data)
	}
	if d.Missing != 0 {
		t.Errorf("console event %d: %d bytes missing", e.Seq, d.Missing)
	}
	return *d.Data
}
