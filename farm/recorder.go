package farm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
)

// Marker kinds placed in a board's log.
const (
	MarkPowerOn    = "power-on"
	MarkPowerOff   = "power-off"
	MarkFlashStart = "flash-start"
	MarkFlashEnd   = "flash-end"
	MarkJobStart   = "job-start"
	MarkJobEnd     = "job-end"
	MarkLost       = "port-lost"
	MarkBack       = "port-back"
	kindData       = "data"
)

// ConsoleSource is a board's console as the recorder reads it (implemented
// by fixtures/serial.Console).
type ConsoleSource interface {
	Events() <-chan runner.ConsoleEvent
	Write(ctx context.Context, p []byte) error
}

// LogSink persists a board's log records (implemented by *store.DB).
type LogSink interface {
	AppendLog(ctx context.Context, board string, recs []store.LogRecord) error
}

// RecorderOptions tune a recorder. Zero values take the defaults.
type RecorderOptions struct {
	RingBytes  int           // replay history kept in memory; default 256 KiB
	BatchBytes int           // persist when this much is pending; default 1 MiB
	BatchDelay time.Duration // or when the oldest pending record is this old; default 200ms
	MaxPending int           // bytes waiting for the store before records are dropped (counted); default 16 MiB
	MaxJobLag  int           // bytes a job subscription may lag before it fails; default 64 MiB
	Logger     *slog.Logger
	Now        func() time.Time
	// OnLost is called (from the recorder's goroutine, without its lock)
	// when the console port vanishes (true) or comes back (false).
	OnLost func(lost bool)
	// Start is the board's console offset at which this recorder begins:
	// the end of what earlier runs stored (store.LogEnd), so offsets stay
	// stable and global across restarts.
	Start int64
	// ViewerWindow is how far (bytes) a viewer may fall behind the live
	// console before it skips to what is kept (a MarkGap); default 16 MiB.
	// The log's records are shared: this bounds the board, not each viewer.
	ViewerWindow int
	// ViewerStall: a viewer whose connection accepts no byte for this long
	// while records wait for it has stopped reading and is cut; default 10s.
	ViewerStall time.Duration
}

func (o *RecorderOptions) defaults() {
	if o.RingBytes <= 0 {
		o.RingBytes = 256 << 10
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 1 << 20
	}
	if o.BatchDelay <= 0 {
		o.BatchDelay = 200 * time.Millisecond
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 16 << 20
	}
	if o.ViewerWindow <= 0 {
		o.ViewerWindow = defaultViewerWindow
	}
	if o.ViewerStall <= 0 {
		o.ViewerStall = defaultViewerStall
	}
	if o.MaxJobLag <= 0 {
		o.MaxJobLag = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Recorder is the single reader of one board's console, open from the
// controller's start. Every byte is given an offset in the board's stream
// and a timestamp; markers (power, flash, job start and end, port lost and
// back) are interleaved at offsets. It keeps a ring of recent records for
// late viewers, persists everything in batches, feeds at most one job
// subscription losslessly, and shares one log of recent records with every
// viewer (viewer.go): a viewer is a cursor into it, never waited for.
//
// Concurrency: Run is the one goroutine that reads the console; all other
// methods are safe to call from any goroutine.
type Recorder struct {
	board string
	src   ConsoleSource
	sink  LogSink
	o     RecorderOptions

	mu       sync.Mutex
	offset   int64
	cl       consoleLog // recent records: the replay and the viewers' log (viewer.go)
	job      *JobConsole
	pending  []store.LogRecord
	pendSize int
	dropped  int64 // records dropped because the store fell behind
	lost     bool
	wake     chan struct{} // signals the persister: records are pending
	full     chan struct{} // signals the persister: a batch is full (or a marker waits)
	total    int64         // console bytes recorded
	// stored is the offset up to which every record is in the store (or
	// was given up on: dropped or failed); flushed is closed and replaced
	// whenever it moves or the recorder stops (stopped).
	stored  int64
	flushed chan struct{}
	stopped bool
	// inSlab is the slab (whole) the chunk being added was read into, at
	// inAt; pendSlab and pendFrom say the same of the last pending record,
	// when it is data read into a slab. A chunk that continues it in the
	// same slab is merged into it (see coalesceBytes).
	inSlab, pendSlab []byte
	inAt, pendFrom   int
	// batchJob: Run reads the console itself and calls kickJob when the
	// console has nothing more ready, so pushes to the job need not wake
	// it per read.
	batchJob bool
}

// Stored rows merge console data: a chunk read right after the last
// pending one, into the same slab, within coalesceWindow of its first
// byte's time, extends that record (up to coalesceBytes) instead of adding
// one. A flood of 4 KiB reads is stored in a few hundred rows, not
// thousands, with no copy; a slow console's timestamps keep their
// precision.
const (
	coalesceBytes  = 256 << 10
	coalesceWindow = 20 * time.Millisecond
)

// NewRecorder makes a recorder for board; start it with Run.
func NewRecorder(board string, src ConsoleSource, sink LogSink, o RecorderOptions) *Recorder {
	o.defaults()
	return &Recorder{board: board, src: src, sink: sink, o: o, offset: o.Start, stored: o.Start, cl: newConsoleLog(),
		wake: make(chan struct{}, 1), full: make(chan struct{}, 1), flushed: make(chan struct{})}
}

// consoleBoundary is a console that can cut its stream before a power-on
// (fixtures/serial.Console).
type consoleBoundary interface {
	Boundary(ctx context.Context) error
}

// Run reads the console until its event stream closes or ctx is done, then
// flushes what is pending to the store. It is the recorder's only reader.
// A console that is a runner.ConsoleReader is read directly in Run's
// goroutine (no hand-off per chunk; parked in the runtime poller while the
// board is silent).
func (r *Recorder) Run(ctx context.Context) error {
	persistDone := make(chan struct{})
	stop := make(chan struct{})
	// Writes to the store are not cut short by ctx: what was recorded is
	// persisted even when the controller shuts down.
	wctx := context.WithoutCancel(ctx)
	go func() {
		defer close(persistDone)
		r.persist(wctx, stop)
	}()
	defer func() {
		close(stop)
		<-persistDone
		r.flush(wctx)
		r.closeAll()
	}()
	if cr, ok := r.src.(runner.ConsoleReader); ok {
		wake := context.AfterFunc(ctx, cr.Wake)
		defer wake()
		// Reads go straight into a slab that is never overwritten: each
		// chunk's Data is a piece of it that the ring, the store batch, the
		// job and every viewer share (no copy per chunk). A slab is let go
		// (to the GC) once less than a read's worth is left.
		var slab []byte
		r.mu.Lock()
		r.batchJob = true
		r.mu.Unlock()
		for ctx.Err() == nil {
			if cap(slab)-len(slab) < readChunk {
				slab = make([]byte, 0, slabBytes)
			}
			buf := slab[len(slab) : len(slab)+readChunk]
			// Take what is ready; only when nothing is does the job get
			// what was queued for it, and the read wait. In a flood the
			// job's runner is woken once per jobKickBytes, not per read.
			ev, err := cr.ReadEvent(buf, pollOnly)
			if errors.Is(err, runner.ErrNoEvent) {
				r.kickJob()
				ev, err = cr.ReadEvent(buf, time.Time{})
			}
			switch {
			case errors.Is(err, runner.ErrNoEvent):
				continue
			case err != nil:
				return nil // closed
			}
			if ev.Kind == runner.ConsoleData {
				if len(ev.Data) > 0 && &ev.Data[0] == &buf[0] {
					r.mu.Lock()
					r.inSlab, r.inAt = slab[:cap(slab)], len(slab)
					r.mu.Unlock()
					slab = slab[:len(slab)+len(ev.Data)]
					ev.Data = ev.Data[:len(ev.Data):len(ev.Data)] // no append may reach the rest of the slab
				} else {
					ev.Data = bytes.Clone(ev.Data) // not read into buf (a reader's own buffer)
				}
			}
			r.handle(ev)
			r.mu.Lock()
			r.inSlab = nil
			r.mu.Unlock()
		}
		return nil
	}
	events := r.src.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			r.handle(ev)
		}
	}
}

// pollOnly is a read deadline in the past: ReadEvent takes only what is
// ready.
var pollOnly = time.Unix(1, 0)

// jobKickBytes: while the console has more ready, the job's reader is
// woken once this much console is queued for it (and whenever the console
// has nothing more ready, and for every event that is not data).
const jobKickBytes = 256 << 10

// kickJob wakes the job's reader if anything is queued for it.
func (r *Recorder) kickJob() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.job != nil {
		r.job.kickIfQueued()
	}
}

// Sizes of the recorder's reads: one read takes at most readChunk bytes,
// into a slab of slabBytes.
const (
	readChunk = 32 << 10
	slabBytes = 256 << 10
)

// Boundary cuts the board's console before a power-on: what the console
// still has from before is recorded ahead of it, and the job attached
// gets a runner.ConsoleBoundary, so nothing printed before the power-on
// answers its next expect. With a console that cannot flush (a test's
// channel), the job gets the boundary at the current point of the stream.
func (r *Recorder) Boundary(ctx context.Context) error {
	if b, ok := r.src.(consoleBoundary); ok {
		return b.Boundary(ctx)
	}
	r.handle(runner.ConsoleEvent{Kind: runner.ConsoleBoundary, At: r.o.Now()})
	return nil
}

func (r *Recorder) handle(ev runner.ConsoleEvent) {
	at := ev.At
	if at.IsZero() {
		at = r.o.Now()
	}
	switch ev.Kind {
	case runner.ConsoleData:
		r.add(store.LogRecord{At: at, Kind: kindData, Data: ev.Data}, ev)
	case runner.ConsoleLost:
		detail := "port lost"
		if ev.Err != nil {
			detail = ev.Err.Error()
		}
		r.mu.Lock()
		r.lost = true
		r.mu.Unlock()
		r.add(store.LogRecord{At: at, Kind: MarkLost, Data: []byte(detail)}, ev)
		if r.o.OnLost != nil {
			r.o.OnLost(true)
		}
	case runner.ConsoleBack:
		r.mu.Lock()
		r.lost = false
		r.mu.Unlock()
		r.add(store.LogRecord{At: at, Kind: MarkBack}, ev)
		if r.o.OnLost != nil {
			r.o.OnLost(false)
		}
	case runner.ConsoleBoundary:
		// Not a record: only the job's expects need to know.
		r.mu.Lock()
		if r.job != nil {
			r.job.push(ev, r.o.MaxJobLag)
		}
		r.mu.Unlock()
	}
}

// Mark places a marker at the current offset and returns that offset.
func (r *Recorder) Mark(kind, detail string) int64 {
	rec := store.LogRecord{At: r.o.Now(), Kind: kind}
	if detail != "" {
		rec.Data = []byte(detail)
	}
	return r.add(rec, runner.ConsoleEvent{Kind: -1})
}

// add records rec at the current offset and fans it out. ev is the console
// event it came from (Kind -1 for markers, which jobs do not see).
func (r *Recorder) add(rec store.LogRecord, ev runner.ConsoleEvent) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec.Offset = r.offset
	ev.Offset = r.offset
	if rec.Kind == kindData {
		r.offset += int64(len(rec.Data))
		r.total += int64(len(rec.Data))
	}
	// the replay and the viewers (one shared log)
	r.cl.append(rec, r.o.RingBytes, r.o.ViewerWindow)
	// persistence
	if r.pendSize+len(rec.Data) > r.o.MaxPending {
		r.dropped++
	} else {
		if len(r.pending) == 0 {
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}
		r.appendPendingLocked(rec)
		r.pendSize += len(rec.Data)
		if r.pendSize >= r.o.BatchBytes || rec.Kind != kindData {
			select {
			case r.full <- struct{}{}:
			default:
			}
		}
	}
	// the job
	if r.job != nil && ev.Kind >= 0 {
		if ev.Kind == runner.ConsoleData && r.inSlab != nil && len(ev.Data) > 0 {
			// The job's copy of the chunk has the slab's rest as capacity,
			// so its reader can join the chunks that follow (ReadEvent).
			ev.Data = r.inSlab[r.inAt : r.inAt+len(ev.Data)]
		}
		r.job.pushBatched(ev, r.o.MaxJobLag, r.batchJob && ev.Kind == runner.ConsoleData)
	}
	return rec.Offset
}

// appendPendingLocked adds rec to the store batch, merged into the last
// record when it continues it in the same slab (see coalesceBytes).
func (r *Recorder) appendPendingLocked(rec store.LogRecord) {
	if n := len(r.pending); n > 0 && rec.Kind == kindData && r.inSlab != nil && r.pendSlab != nil && &r.inSlab[0] == &r.pendSlab[0] {
		last := &r.pending[n-1]
		end := r.inAt + len(rec.Data)
		if last.Offset+int64(len(last.Data)) == rec.Offset && r.pendFrom+len(last.Data) == r.inAt &&
			end-r.pendFrom <= coalesceBytes && rec.At.Sub(last.At) <= coalesceWindow {
			last.Data = r.inSlab[r.pendFrom:end:end]
			return
		}
	}
	r.pending = append(r.pending, rec)
	r.pendSlab = nil
	if rec.Kind == kindData && r.inSlab != nil {
		r.pendSlab, r.pendFrom = r.inSlab, r.inAt
	}
}

// persist writes pending records in batches: when BatchBytes are pending,
// a marker waits, or BatchDelay after the first pending record. It has no
// ticker: an idle board's persister sleeps until something is recorded.
func (r *Recorder) persist(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-r.wake:
		}
		t.Reset(r.o.BatchDelay)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		case <-r.full:
			t.Stop()
		}
		r.flush(ctx)
	}
}

func (r *Recorder) flush(ctx context.Context) {
	r.mu.Lock()
	batch := r.pending
	r.pending, r.pendSize, r.pendSlab = nil, 0, nil
	end := r.offset // every record added so far is in batch (or was dropped)
	r.mu.Unlock()
	if len(batch) > 0 && r.sink != nil {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.sink.AppendLog(ctx, r.board, batch)
		cancel()
		if err != nil {
			r.o.Logger.Error("console log not persisted", "board", r.board, "records", len(batch), "err", err)
			r.mu.Lock()
			r.dropped += int64(len(batch))
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	if end > r.stored && !r.stopped {
		r.stored = end
		close(r.flushed)
		r.flushed = make(chan struct{})
	}
	r.mu.Unlock()
}

// SyncTo waits until the board's log is in the store up to offset off (or
// the part of it the store could not take was given up on), asking the
// persister to write now rather than at its next batch. It returns early
// when ctx ends or the recorder stops.
func (r *Recorder) SyncTo(ctx context.Context, off int64) {
	for {
		r.mu.Lock()
		done, ch := r.stored >= off || r.stopped, r.flushed
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case r.full <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

func (r *Recorder) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		r.stopped = true
		close(r.flushed)
	}
	r.cl.closeAll()
	if r.job != nil {
		r.job.fail(errors.New("console recorder stopped"))
		r.job = nil
	}
}

// Offset is the board's current console offset (bytes recorded so far).
func (r *Recorder) Offset() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.offset
}

// Lost reports whether the console port is currently gone.
func (r *Recorder) Lost() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lost
}

// RecorderStats are a recorder's counters.
type RecorderStats struct {
	Bytes          int64 // console bytes recorded
	Viewers        int   // current viewers
	ViewersDropped int64 // viewers cut for having stopped reading
	ViewerGaps     int64 // gap markers sent to viewers that fell behind the window
	RecordsDropped int64 // records the store could not take
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() RecorderStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RecorderStats{Bytes: r.total, Viewers: len(r.cl.viewers), ViewersDropped: r.cl.cuts, ViewerGaps: r.cl.gaps, RecordsDropped: r.dropped}
}

// ErrConsoleBusy is returned by Attach when a job already holds the console.
var ErrConsoleBusy = errors.New("console is attached to another job")

// Attach gives a job the board's console from the current offset on: a
// runner.ConsoleReader whose stream is lossless (an unbounded queue bounded
// only by MaxJobLag, so the recorder never waits for the job) and whose
// writes go to the board. Detach it with Close.
func (r *Recorder) Attach() (*JobConsole, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.job != nil {
		return nil, 0, ErrConsoleBusy
	}
	jc := &JobConsole{r: r, kick: make(chan struct{}, 1), wake: make(chan struct{}, 1), done: make(chan struct{})}
	r.job = jc
	return jc, r.offset, nil
}

// JobConsole is a job's view of a board's console (a runner.ConsoleReader).
// The recorder queues events; the job's runner takes them in its own
// goroutine with ReadEvent, a whole queue at a time.
type JobConsole struct {
	r    *Recorder
	kick chan struct{} // the recorder queued something
	wake chan struct{} // Wake
	done chan struct{}
	once sync.Once

	mu     sync.Mutex
	queue  []runner.ConsoleEvent
	head   int // next event of queue to return (the reader's batch)
	queued int
	closed bool

	pumpOnce sync.Once
	out      chan runner.ConsoleEvent
	pumpDone chan struct{}
}

var _ runner.StableReader = (*JobConsole)(nil)

// StableData says the data ReadEvent returns is never overwritten: it is
// the recorder's records, shared read-only (runner.StableReader).
func (j *JobConsole) StableData() bool { return true }

// ReadEvent returns the next queued event (see runner.ConsoleReader). Data
// is shared with the recorder's history: the caller must not modify it.
// After Close, or once a failure was delivered, it returns io.EOF.
func (j *JobConsole) ReadEvent(_ []byte, deadline time.Time) (runner.ConsoleEvent, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		j.mu.Lock()
		if j.head < len(j.queue) {
			ev := j.queue[j.head]
			j.queue[j.head] = runner.ConsoleEvent{}
			j.head++
			j.queued -= len(ev.Data)
			// Data read right after ev into the same slab joins it (no
			// copy): in a flood the runner takes up to maxJobChunk of
			// reads per call, not one call per 4 KiB read.
			for ev.Kind == runner.ConsoleData && j.head < len(j.queue) && len(ev.Data) < maxJobChunk {
				next := j.queue[j.head]
				if next.Kind != runner.ConsoleData || next.Offset != ev.Offset+int64(len(ev.Data)) || !adjacent(ev.Data, next.Data) {
					break
				}
				ev.Data = ev.Data[:len(ev.Data)+len(next.Data)]
				ev.At = next.At // the latest read: the runner's settle time counts from it
				j.queue[j.head] = runner.ConsoleEvent{}
				j.head++
				j.queued -= len(next.Data)
			}
			ev.Data = ev.Data[:len(ev.Data):len(ev.Data)] // no append may reach the rest of the slab
			if j.head == len(j.queue) {
				j.queue, j.head = j.queue[:0], 0
			}
			j.mu.Unlock()
			return ev, nil
		}
		closed := j.closed
		j.mu.Unlock()
		if closed {
			return runner.ConsoleEvent{}, io.EOF
		}
		select {
		case <-j.done:
			return runner.ConsoleEvent{}, io.EOF
		case <-j.wake:
			return runner.ConsoleEvent{}, runner.ErrNoEvent
		default:
		}
		if !deadline.IsZero() && !deadline.After(time.Now()) {
			return runner.ConsoleEvent{}, runner.ErrNoEvent
		}
		var tc <-chan time.Time
		if !deadline.IsZero() {
			if timer == nil {
				timer = time.NewTimer(time.Until(deadline))
			}
			tc = timer.C
		}
		select {
		case <-j.kick:
		case <-j.done:
			return runner.ConsoleEvent{}, io.EOF
		case <-j.wake:
			return runner.ConsoleEvent{}, runner.ErrNoEvent
		case <-tc:
			return runner.ConsoleEvent{}, runner.ErrNoEvent
		}
	}
}

// maxJobChunk bounds the data of one event the job reads (merged reads).
const maxJobChunk = 64 << 10

// adjacent reports whether b continues a in a's array: the recorder gives
// the job each chunk with its slab's rest as capacity, so b within a's
// capacity is in the same slab.
func adjacent(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && len(a)+len(b) <= cap(a) && &a[:len(a)+1][len(a)] == &b[0]
}

// Wake makes a pending ReadEvent, or else the next one, return
// runner.ErrNoEvent.
func (j *JobConsole) Wake() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// Events is the job's lossless console stream as a channel (for a
// consumer that is not a runner: a hold drains it). Its first call starts
// a goroutine that reads with ReadEvent; do not also call ReadEvent.
func (j *JobConsole) Events() <-chan runner.ConsoleEvent {
	j.pumpOnce.Do(func() {
		j.out = make(chan runner.ConsoleEvent)
		j.pumpDone = make(chan struct{})
		go func() {
			defer close(j.pumpDone)
			defer close(j.out)
			for {
				ev, err := j.ReadEvent(nil, time.Time{})
				if errors.Is(err, runner.ErrNoEvent) {
					continue
				}
				if err != nil {
					return
				}
				select {
				case j.out <- ev:
				case <-j.done:
					return
				}
			}
		}()
	})
	return j.out
}

// Write types into the board's console.
func (j *JobConsole) Write(ctx context.Context, p []byte) error {
	select {
	case <-j.done:
		return errors.New("console detached from the job")
	default:
	}
	return j.r.src.Write(ctx, p)
}

// push is called by the recorder with its lock held; it never blocks.
func (j *JobConsole) push(ev runner.ConsoleEvent, maxLag int) { j.pushBatched(ev, maxLag, false) }

// kickIfQueued wakes the reader if events wait (recorder's lock held).
func (j *JobConsole) kickIfQueued() {
	j.mu.Lock()
	n := len(j.queue) - j.head
	j.mu.Unlock()
	if n > 0 {
		select {
		case j.kick <- struct{}{}:
		default:
		}
	}
}

// pushBatched is push; with batched, the reader is woken only once
// jobKickBytes are queued (the recorder calls kickIfQueued when the
// console has nothing more ready).
func (j *JobConsole) pushBatched(ev runner.ConsoleEvent, maxLag int, batched bool) {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return
	}
	if j.queued+len(ev.Data) > maxLag {
		j.queue = append(j.queue[:0], runner.ConsoleEvent{Kind: runner.ConsoleLost, At: ev.At,
			Err: errors.New("job fell too far behind the console")})
		j.head, j.queued = 0, 0
		j.closed = true
	} else {
		j.queue = append(j.queue, ev)
		j.queued += len(ev.Data)
		if batched && j.queued < jobKickBytes {
			j.mu.Unlock()
			return
		}
	}
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

func (j *JobConsole) fail(err error) {
	j.push(runner.ConsoleEvent{Kind: runner.ConsoleLost, At: time.Now(), Err: err}, int(^uint(0)>>1))
}

// Close detaches the job from the console (idempotent); the stream closes.
func (j *JobConsole) Close() error {
	j.once.Do(func() {
		j.r.mu.Lock()
		if j.r.job == j {
			j.r.job = nil
		}
		j.r.mu.Unlock()
		close(j.done)
	})
	return nil
}
