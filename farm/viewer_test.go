package farm

import (
	"bytes"
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/hilfarm/hilfarm/farm/store"
)

// feed records n data chunks of the test stream starting at chunk from,
// as the recorder's Run does (handle, in the caller's goroutine).
func feed(r *Recorder, all *bytes.Buffer, from, n int) {
	for i := from; i < from+n; i++ {
		s := fmt.Sprintf("chunk %05d|", i)
		all.WriteString(s)
		r.handle(data(s))
	}
}

// drain takes everything the viewer has now.
func drain(t *testing.T, v *Viewer) []store.LogRecord {
	t.Helper()
	var out []store.LogRecord
	for {
		recs, wait, open := v.Take(nil, 100, 3) // small batches: exercise the cursor
		if !open {
			t.Fatal("viewer closed")
		}
		if len(recs) == 0 {
			select {
			case <-wait:
				t.Fatal("wait is closed with nothing new")
			default:
			}
			return out
		}
		out = append(out, recs...)
	}
}

// bytesOf joins the data records and checks their offsets are contiguous
// from the first one's.
func bytesOf(t *testing.T, recs []store.LogRecord) (int64, []byte) {
	t.Helper()
	var b []byte
	start := int64(-1)
	for _, r := range recs {
		if r.Kind != kindData {
			continue
		}
		if start < 0 {
			start = r.Offset
		}
		if r.Offset != start+int64(len(b)) {
			t.Fatalf("record at offset %d follows %d bytes from %d: a gap or a duplicate", r.Offset, len(b), start)
		}
		b = append(b, r.Data...)
	}
	return start, b
}

// TestViewersShareOneLog: viewers that join at different points get the
// replay and then every later record, with no gap and no duplicate, from
// the one shared log (the records' bytes are the same memory).
func TestViewersShareOneLog(t *testing.T) {
	defer goleak.VerifyNone(t)
	rec := NewRecorder("b", &chanSource{}, nil, RecorderOptions{RingBytes: 512})
	var all bytes.Buffer
	type joined struct {
		v    *Viewer
		recs []store.LogRecord
	}
	var vs []*joined
	for round := range 8 {
		hist, v := rec.Watch()
		vs = append(vs, &joined{v: v, recs: hist})
		feed(rec, &all, round*50, 50)
		for _, j := range vs[:len(vs)/2+1] { // some keep up, the others lag
			j.recs = append(j.recs, drain(t, j.v)...)
		}
	}
	for i, j := range vs {
		j.recs = append(j.recs, drain(t, j.v)...)
		start, got := bytesOf(t, j.recs)
		if want := all.Bytes()[start:]; !bytes.Equal(got, want) {
			t.Errorf("viewer %d: %d bytes from offset %d, want the stream's %d from there", i, len(got), start, len(want))
		}
		if i > 0 && start == 0 {
			t.Errorf("viewer %d: replay from offset 0; the ring holds 512 bytes", i)
		}
	}
	// One copy of the bytes: two viewers' records share their Data.
	a, b := vs[0].recs[len(vs[0].recs)-1].Data, vs[1].recs[len(vs[1].recs)-1].Data
	if &a[0] != &b[0] {
		t.Error("two viewers got copies of a record, not the shared one")
	}
	for _, j := range vs {
		rec.Unwatch(j.v)
	}
	if s := rec.Stats(); s.Viewers != 0 || s.ViewersDropped != 0 || s.ViewerGaps != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestViewerGapBeyondWindow: a viewer that falls further behind than the
// window gets one gap marker with the exact count of bytes skipped, then
// the records kept, in order; the log's memory stays within the window;
// a viewer that keeps up is not affected.
func TestViewerGapBeyondWindow(t *testing.T) {
	defer goleak.VerifyNone(t)
	const window = 4 << 10
	rec := NewRecorder("b", &chanSource{}, nil, RecorderOptions{RingBytes: 1 << 10, ViewerWindow: window})
	var all bytes.Buffer
	_, lag := rec.Watch()
	_, fast := rec.Watch()
	var fastRecs []store.LogRecord
	for range 40 {
		feed(rec, &all, all.Len()/12, 25)
		fastRecs = append(fastRecs, drain(t, fast)...)
		rec.mu.Lock()
		size := rec.cl.size
		rec.mu.Unlock()
		if size > window+64 {
			t.Fatalf("the log holds %d bytes, over the %d window", size, window)
		}
	}
	if _, got := bytesOf(t, fastRecs); !bytes.Equal(got, all.Bytes()) {
		t.Errorf("the viewer that kept up got %d bytes, want %d", len(got), all.Len())
	}
	recs := drain(t, lag)
	if len(recs) == 0 || recs[0].Kind != MarkGap {
		t.Fatalf("the lagging viewer's first record: %+v, want a gap marker", recs[:min(1, len(recs))])
	}
	start, got := bytesOf(t, recs[1:])
	if recs[0].Offset != 0 || !bytes.HasPrefix(recs[0].Data, fmt.Appendf(nil, "%d bytes skipped", start)) {
		t.Errorf("gap marker at %d: %q; want offset 0 and %d bytes skipped", recs[0].Offset, recs[0].Data, start)
	}
	if !bytes.Equal(got, all.Bytes()[start:]) {
		t.Errorf("after the gap: %d bytes from %d, not the stream's tail", len(got), start)
	}
	// Caught up now: more records come without a gap.
	feed(rec, &all, all.Len()/12, 5)
	more := drain(t, lag)
	if len(more) != 5 || more[0].Kind != kindData {
		t.Errorf("after catching up: %d records, first %q", len(more), more[0].Kind)
	}
	if s := rec.Stats(); s.ViewerGaps != 1 || s.ViewersDropped != 0 {
		t.Errorf("stats %+v: want 1 gap, no viewer dropped", s)
	}
	// With no one lagging the log shrinks back to the ring.
	rec.Unwatch(lag)
	rec.Unwatch(fast)
	feed(rec, &all, all.Len()/12, 1)
	rec.mu.Lock()
	size := rec.cl.size
	rec.mu.Unlock()
	if size > 1<<10 {
		t.Errorf("the log holds %d bytes with no viewer, want at most the 1 KiB ring", size)
	}
}

// TestViewerWaitAndClose: Take's channel is closed by the next record;
// Unwatch and the recorder's end close the viewer.
func TestViewerWaitAndClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	rec := NewRecorder("b", &chanSource{}, nil, RecorderOptions{})
	_, v := rec.Watch()
	_, v2 := rec.Watch()
	recs, wait, open := v.Take(nil, 1<<20, 10)
	if len(recs) != 0 || !open || wait == nil {
		t.Fatalf("Take on an empty log: %v %v %v", recs, wait, open)
	}
	rec.Mark(MarkPowerOn, "")
	<-wait // closed by the record
	if recs, _, _ := v.Take(nil, 1<<20, 10); len(recs) != 1 || recs[0].Kind != MarkPowerOn {
		t.Fatalf("after the wait: %+v", recs)
	}
	_, wait, _ = v.Take(nil, 1<<20, 10)
	rec.Unwatch(v)
	<-wait // Unwatch wakes a waiting Take
	if _, _, open := v.Take(nil, 1<<20, 10); open {
		t.Error("Take after Unwatch: still open")
	}
	// C, for channel consumers: records, then closed with the recorder.
	c := v2.C()
	rec.handle(data("x"))
	if r := <-c; r.Kind != MarkPowerOn {
		t.Errorf("C: %+v", r)
	}
	if r := <-c; string(r.Data) != "x" {
		t.Errorf("C: %+v", r)
	}
	rec.closeAll()
	if _, ok := <-c; ok {
		t.Error("C still open after the recorder ended")
	}
	if _, v3 := rec.Watch(); func() bool { _, _, open := v3.Take(nil, 1, 1); return open }() {
		t.Error("a viewer of an ended recorder is open")
	}
}
