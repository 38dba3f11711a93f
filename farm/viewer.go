package farm

import (
	"fmt"
	"sync"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

// MarkGap is the marker a viewer is sent, instead of the records it missed,
// when it fell further behind the live console than the recorder's viewer
// window. It is not stored: the board's log has every byte.
const MarkGap = "gap"

// Viewer defaults (RecorderOptions).
const (
	defaultViewerWindow = 16 << 20
	defaultViewerStall  = 10 * time.Second
)

// recordOverhead is what a record costs in the log beyond its bytes.
const recordOverhead = 32

// consoleLog is a board's recent console records, shared by all its
// viewers: one append-only log, each record's bytes held once. A viewer is
// a cursor (a sequence number) into it; nothing is copied or queued per
// viewer. The log keeps the last RingBytes (the replay for a new viewer)
// and, beyond that, what the slowest viewer has not taken yet, up to
// ViewerWindow bytes. A viewer whose next record was let go gets a gap
// marker and goes on from the oldest record kept.
//
// Every field is guarded by the recorder's mu.
type consoleLog struct {
	recs    []store.LogRecord // recs[i] has sequence number base+i
	base    int64
	size    int           // bytes of recs, recordOverhead each included
	ready   chan struct{} // closed when a record is appended (or the log closes), if anyone waits
	waiting bool          // a viewer holds ready
	viewers map[*Viewer]struct{}
	minNext int64 // a lower bound of every viewer's cursor
	closed  bool
	cuts    int64         // viewers cut for having stopped reading
	cutCh   chan struct{} // closed at the next cut
	gaps    int64         // gap markers sent
}

func newConsoleLog() consoleLog {
	return consoleLog{ready: make(chan struct{}), viewers: map[*Viewer]struct{}{}, cutCh: make(chan struct{})}
}

// end is the sequence number the next record will get.
func (l *consoleLog) end() int64 { return l.base + int64(len(l.recs)) }

// append adds rec, wakes waiting viewers and lets go of the records no
// one needs any more.
func (l *consoleLog) append(rec store.LogRecord, ringBytes, window int) {
	l.recs = append(l.recs, rec)
	l.size += len(rec.Data) + recordOverhead
	if l.waiting {
		close(l.ready)
		l.ready = make(chan struct{})
		l.waiting = false
	}
	for l.size > ringBytes && len(l.recs) > 1 {
		if l.size <= window && l.base >= l.minNext {
			// A viewer may still need the oldest record: look again.
			l.minNext = l.end()
			for v := range l.viewers {
				l.minNext = min(l.minNext, v.next)
			}
			if l.base >= l.minNext {
				return // it does, and the window allows keeping it
			}
		}
		l.size -= len(l.recs[0].Data) + recordOverhead
		l.recs[0] = store.LogRecord{}
		l.recs = l.recs[1:]
		l.base++
	}
}

// closeAll ends every viewer: the recorder stopped.
func (l *consoleLog) closeAll() {
	l.closed = true
	for v := range l.viewers {
		l.unwatch(v)
	}
	close(l.ready)
	l.ready = make(chan struct{})
	l.waiting = false
}

func (l *consoleLog) unwatch(v *Viewer) {
	if v.closed {
		return
	}
	v.closed = true
	close(v.done)
	delete(l.viewers, v)
}

// Viewer is a live view of a board's console (a websocket, the CLI): a
// cursor into the recorder's shared log. Take the records with Take (or,
// for a simple consumer, C).
type Viewer struct {
	r      *Recorder
	next   int64 // sequence number of the next record to take (under r.mu)
	off    int64 // console offset after what was taken (under r.mu)
	closed bool  // under r.mu
	done   chan struct{}

	pumpOnce sync.Once
	out      chan store.LogRecord
}

// Watch returns the recent history (the replay: the last RingBytes) and a
// viewer positioned just after it. Both are taken under the recorder's
// lock: no gap, no duplicate between the replay and what Take returns.
func (r *Recorder) Watch() ([]store.LogRecord, *Viewer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := &r.cl
	i, size := len(l.recs), 0
	for i > 0 && size+len(l.recs[i-1].Data)+recordOverhead <= r.o.RingBytes {
		i--
		size += len(l.recs[i].Data) + recordOverhead
	}
	if i == len(l.recs) && i > 0 {
		i-- // the last record, even when it alone is larger
	}
	hist := append([]store.LogRecord(nil), l.recs[i:]...)
	v := &Viewer{r: r, next: l.end(), off: r.offset, done: make(chan struct{})}
	if l.closed {
		v.closed = true
		close(v.done)
		return hist, v
	}
	l.viewers[v] = struct{}{}
	return hist, v
}

// Unwatch stops a viewer (idempotent): Take then reports it closed.
func (r *Recorder) Unwatch(v *Viewer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cl.unwatch(v)
	if r.cl.waiting {
		// Wake a Take that waits, so that it sees the viewer closed.
		close(r.cl.ready)
		r.cl.ready = make(chan struct{})
		r.cl.waiting = false
	}
}

// Take appends to buf the records after the viewer's cursor — at least one
// when there is one, then more while they total at most maxBytes of data
// and maxRecs records — and moves the cursor past them. Their Data is
// shared with the log and every other viewer: do not modify it.
//
// With nothing to take it returns no records and a channel that is closed
// when there may be (wait on it, then Take again). open is false once the
// viewer was stopped (Unwatch) or the recorder ended: nothing more comes.
//
// A viewer that fell behind the log's window first gets one MarkGap record
// saying how many bytes it missed (they are in the store), then the oldest
// records kept.
func (v *Viewer) Take(buf []store.LogRecord, maxBytes, maxRecs int) (recs []store.LogRecord, wait <-chan struct{}, open bool) {
	r := v.r
	r.mu.Lock()
	defer r.mu.Unlock()
	l := &r.cl
	if v.closed {
		return buf, nil, false
	}
	if v.next < l.base {
		first := l.recs[0].Offset
		buf = append(buf, store.LogRecord{At: r.o.Now(), Kind: MarkGap, Offset: v.off,
			Data: fmt.Appendf(nil, "%d bytes skipped: this viewer fell more than %d bytes behind the console; the board's log has them", first-v.off, r.o.ViewerWindow)})
		l.gaps++
		v.next, v.off = l.base, first
	}
	i := int(v.next - l.base)
	if i >= len(l.recs) {
		l.waiting = true
		return buf, l.ready, true
	}
	n, size := 0, 0
	for _, rec := range l.recs[i:] {
		if n > 0 && (n >= maxRecs || size+len(rec.Data) > maxBytes) {
			break
		}
		buf = append(buf, rec)
		n++
		size += len(rec.Data)
		v.off = rec.Offset
		if rec.Kind == kindData {
			v.off += int64(len(rec.Data))
		}
	}
	v.next += int64(n)
	return buf, nil, true
}

// cut ends a viewer that stopped reading (the websocket writer's progress
// rule) and counts it.
func (v *Viewer) cut() {
	r := v.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cl.unwatch(v)
	r.cl.cuts++
	close(r.cl.cutCh)
	r.cl.cutCh = make(chan struct{})
}

// viewerCuts returns how many viewers were cut and a channel closed at the
// next cut (for tests that wait for one).
func (r *Recorder) viewerCuts() (int64, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cl.cuts, r.cl.cutCh
}

// stall is how long a viewer's connection may accept no byte, while
// records wait for it, before it is cut.
func (v *Viewer) stall() time.Duration { return v.r.o.ViewerStall }

// C delivers the records after the replay, one at a time, for consumers
// that want a channel (tests, benchmarks). Its first call starts a
// goroutine that takes records until the viewer is stopped; the channel
// is closed then. Do not also call Take.
func (v *Viewer) C() <-chan store.LogRecord {
	v.pumpOnce.Do(func() {
		v.out = make(chan store.LogRecord, 64)
		go func() {
			defer close(v.out)
			var buf []store.LogRecord
			for {
				recs, wait, open := v.Take(buf[:0], 1<<20, 256)
				for _, rec := range recs {
					select {
					case v.out <- rec:
					case <-v.done:
						return
					}
				}
				if !open {
					return
				}
				if len(recs) == 0 {
					select {
					case <-wait:
					case <-v.done:
						return
					}
				}
				clear(recs)
				buf = recs
			}
		}()
	})
	return v.out
}
