package farm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// activeJob is a job holding a board.
type activeJob struct {
	job     *store.Job
	slot    *slot
	cancel  context.CancelCauseFunc
	done    chan struct{}
	started time.Time
	// cancelReq is set (under Controller.mu) by Cancel before it cancels
	// the context, so runJob's requeue decision sees a cancel that lands
	// after the attempt's outcome was read.
	cancelReq *cancelError
}

// runJob runs one attempt of a job on its leased board and settles the
// outcome: the job's final state, or back into the queue after an
// infrastructure error (on another board when there is one). Whatever
// happens, the board returns to its safe state and its lease is released.
func (c *Controller) runJob(ctx context.Context, a *activeJob) {
	j, s := a.job, a.slot
	log := c.log.With("job", j.ID, "board", s.cfg.Name)
	start := s.rec.Offset()
	n, err := c.db.StartAttempt(ctx, j.ID, s.cfg.Name, start, c.now())
	if err != nil {
		// Cancelled while it was being leased, or the store failed.
		c.disk.check(err)
		log.Info("job not started", "err", err)
		c.release(a, false)
		return
	}
	j.State, j.Board, j.Attempts = store.StateRunning, s.cfg.Name, n
	log = log.With("attempt", n)
	c.publishState(j, n, "")

	jc, _, err := s.rec.Attach()
	var res *runner.Result
	var runErr error
	if err == nil {
		s.rec.Mark(MarkJobStart, j.ID+"#"+strconv.Itoa(n))
		res, runErr = c.runAttempt(ctx, j, s, jc)
		jc.Close()
		s.rec.Mark(MarkJobEnd, j.ID+"#"+strconv.Itoa(n))
	} else {
		runErr = err
	}

	// Outcome.
	state, reason := store.StateError, ""
	switch {
	case runErr != nil:
		reason = runErr.Error()
	case res != nil:
		state, reason = outcomeState(res.Outcome), res.Message
	}
	cause := context.Cause(ctx)
	var ce *cancelError
	switch {
	case errors.As(cause, &ce):
		state, reason = store.StateCancelled, ce.reason
	case errors.Is(cause, errShutdown):
		state, reason = store.StateError, errShutdown.Error()
	}
	// The runner already powered the board off; make sure of every output too.
	boardFault := false
	if err := s.handle.SafeState(ctx); err != nil {
		boardFault = true
		log.Error("board not in its safe state after the job: quarantined", "err", err)
		if state == store.StatePassed || state == store.StateFailed {
			reason = fmt.Sprintf("%s (and the board's safe state failed: %v)", reason, err)
		}
		state = store.StateError
		// A board that may still be powered or driving its lines takes no
		// further job until a health check (or an operator) clears it.
		c.mu.Lock()
		s.admin, s.adminReason = BoardQuarantined, "safe state failed: "+err.Error()
		bs := store.BoardState{Name: s.cfg.Name, State: BoardQuarantined, Reason: s.adminReason, Since: c.now(), InfraErrorsInARow: s.infraInRow}
		c.mu.Unlock()
		if err := c.db.SetBoardState(context.WithoutCancel(ctx), bs); err != nil {
			log.Error("persisting board state", "err", err)
		}
		c.history(s.cfg.Name, "quarantined", bs.Reason)
	}
	var resJSON json.RawMessage
	if res != nil {
		resJSON = budgetResult(res, MaxResultBytes) // cut to size, marked (resultbudget.go)
	}
	c.mu.Lock()
	if a.cancelReq != nil && ce == nil { // cancelled after the outcome was read
		ce = a.cancelReq
		state, reason = store.StateCancelled, ce.reason
	}
	c.mu.Unlock()
	farmFault := isFarmFault(runErr)                      // not the board's fault, and no other board would do better
	stopped := errors.Is(cause, errShutdown) || ce != nil // by the controller: nobody's fault
	requeue := state == store.StateError && !stopped && n < c.cfg.MaxAttempts && !farmFault
	if j.Submitter != HealthSubmitter && !farmFault {
		if stopped {
			c.boardOutcome(ctx, s, j, state, reason)
		} else {
			state, reason, requeue = c.attribute(ctx, j, s, n, state, reason, res, requeue, boardFault)
		}
	}
	if requeue {
		reason = fmt.Sprintf("attempt %d on %s: %s", n, s.cfg.Name, reason)
	}
	end := store.AttemptEnd{State: state, Reason: reason, LogEnd: s.rec.Offset(), Result: resJSON, At: c.now(), Requeue: requeue}
	// On a full disk this waits until it is written (diskfull.go).
	if err := c.mustWrite(ctx, "job "+j.ID+": final state", func(ctx context.Context) error {
		return c.db.FinishAttempt(ctx, j.ID, n, end)
	}); err != nil {
		log.Error("recording the attempt's end", "err", err)
	}
	log.Info("attempt finished", "state", state, "reason", reason, "requeued", requeue)
	c.release(a, true)
	fin, err := c.db.Job(context.WithoutCancel(ctx), j.ID)
	if err != nil {
		log.Error("reading the finished job", "err", err)
		return
	}
	if requeue {
		// Back in the queue, unless a cancel (which publishes its own
		// final state) or the next attempt got to it first.
		if fin.State == store.StateQueued {
			c.publishState(fin, n, "")
		}
		return
	}
	if fin.Submitter == HealthSubmitter {
		c.healthOutcome(ctx, s.cfg.Name, fin) // before anyone hears it finished
	}
	c.publishState(fin, n, "")
	c.finished(fin)
}

func outcomeState(o runner.Outcome) string {
	switch o {
	case runner.Passed:
		return store.StatePassed
	case runner.Failed:
		return store.StateFailed
	case runner.Cancelled:
		return store.StateCancelled
	default:
		return store.StateError
	}
}

// runAttempt parses the stored spec and runs it on the board, streaming
// the runner's events into the store and to subscribers.
func (c *Controller) runAttempt(ctx context.Context, j *store.Job, s *slot, jc *JobConsole) (*runner.Result, error) {
	full, err := c.db.Job(ctx, j.ID) // the queue's view of a job has no spec source
	if err != nil {
		return nil, err
	}
	spec, diags := specs.ParseSpec(full.SpecSrc, j.SpecFilename, specs.SpecOptions{Vars: j.Vars, Farm: c.cfg.Farm, RequireVars: true})
	if diags.HasErrors() {
		return nil, fmt.Errorf("spec no longer valid against this farm: %w", diags.Err())
	}
	rb := s.handle.Runner()
	rb.Console = jc
	rb.Power = markedPower{Power: rb.Power, s: s}
	if rb.Flasher != nil {
		rb.Flasher = markedFlasher{Flasher: rb.Flasher, s: s}
	}
	if err := c.verifyStored(ctx, full, s.cfg.Type); err != nil { // trust.go
		return nil, err
	}
	fw := specs.Firmware{Name: j.Firmware.Name, Version: j.Firmware.Version, SHA256: j.Firmware.SHA256, Path: c.firmwarePath(j.Firmware.SHA256)}
	pump := newEventPump(c, j.ID, s)
	defer pump.close()
	opts := c.cfg.Runner
	opts.Events = pump.add
	if err := c.shardOptions(ctx, j, &opts); err != nil { // a spread campaign's share (campaign.go)
		return nil, err
	}
	return runner.Run(ctx, runner.Job{Spec: spec, Board: rb, Firmware: fw}, opts)
}

// boardOutcome updates the board's health after an attempt: consecutive
// infrastructure errors quarantine it; a failure of a candidate that passed
// the same spec on a sibling flags it.
func (c *Controller) boardOutcome(ctx context.Context, s *slot, j *store.Job, state, reason string) {
	var flaky bool
	if state == store.StateFailed {
		if ok, err := c.db.PassedElsewhere(context.WithoutCancel(ctx), j.Firmware.SHA256, j.SpecName, s.cfg.Name); err == nil && ok {
			flaky = true
		}
	}
	c.mu.Lock()
	s.recent = append(s.recent, state)
	if len(s.recent) > healthWindow {
		s.recent = s.recent[len(s.recent)-healthWindow:]
	}
	if flaky {
		if s.flags == nil {
			s.flags = map[string]string{}
		}
		s.flags["flaky-board"] = fmt.Sprintf("failed %s on firmware %.12s, which passed on a sibling", j.SpecName, j.Firmware.SHA256)
	}
	var persist *store.BoardState
	switch state {
	case store.StateError:
		if reason == errShutdown.Error() {
			break
		}
		s.infraInRow++
		s.infraErrors++
		if s.infraInRow >= c.cfg.QuarantineAfter && s.admin == "" {
			s.admin = BoardQuarantined
			s.adminReason = fmt.Sprintf("%d infrastructure errors in a row; last: %s", s.infraInRow, reason)
			c.log.Warn("board quarantined", "board", s.cfg.Name, "reason", s.adminReason)
			c.history(s.cfg.Name, "quarantined", s.adminReason)
			c.settle(s) // charged after its lease ended (verdicts.go)
		}
		persist = &store.BoardState{Name: s.cfg.Name, State: s.admin, Reason: s.adminReason, Since: c.now(), InfraErrorsInARow: s.infraInRow}
	case store.StatePassed, store.StateFailed:
		if s.infraInRow > 0 {
			s.infraInRow = 0
			persist = &store.BoardState{Name: s.cfg.Name, State: s.admin, Reason: s.adminReason, Since: c.now()}
		}
	}
	c.mu.Unlock()
	if persist != nil {
		if persist.State == "" {
			persist.State = BoardIdle
		}
		if err := c.db.SetBoardState(context.WithoutCancel(ctx), *persist); err != nil {
			c.log.Error("persisting board state", "board", s.cfg.Name, "err", err)
		}
	}
}

// release frees the job's board and wakes the scheduler.
func (c *Controller) release(a *activeJob, _ bool) {
	c.mu.Lock()
	if a.slot.job == a.job.ID {
		a.slot.job = ""
	}
	c.settle(a.slot)
	delete(c.running, a.job.ID)
	c.mu.Unlock()
	c.poke()
}

// finished runs the OnJobFinished hooks for a job in a final state.
func (c *Controller) finished(j *store.Job) {
	if c.shardEnded(context.Background(), j) { // its spread job is what finishes (campaign.go)
		return
	}
	c.mu.Lock()
	if c.results == nil {
		c.results = map[string]int64{}
	}
	c.results[j.State]++
	c.mu.Unlock()
	c.settlePending(context.Background(), j)
	// A health check cancelled while queued: forget it (runJob handles the rest).
	if board := j.Labels["health-check"]; board != "" && j.Submitter == HealthSubmitter && j.State == store.StateCancelled {
		c.healthOutcome(context.Background(), board, j)
	}
	if len(c.cfg.OnJobFinished) == 0 {
		return
	}
	v, err := c.Job(context.Background(), j.ID)
	if err != nil {
		c.log.Error("job finished hooks", "job", j.ID, "err", err)
		return
	}
	for _, h := range c.cfg.OnJobFinished {
		c.hooks.Add(1)
		go func() {
			defer c.hooks.Done()
			h(*v)
		}()
	}
}

// stateEvent is the controller's own event in a job's stream.
type stateEvent struct {
	State    string    `json:"state"`
	Board    string    `json:"board,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Position int       `json:"position,omitempty"`
	At       time.Time `json:"time"`
}

// publishState stores and publishes a "state" event for the job.
func (c *Controller) publishState(j *store.Job, attempt int, _ string) {
	data, _ := json.Marshal(stateEvent{State: j.State, Board: j.Board, Attempt: attempt, Reason: j.Reason, At: c.now()})
	evs, err := c.db.AppendEvents(context.Background(), j.ID, []store.Event{{At: c.now(), Type: "state", Data: data}})
	if err != nil {
		c.log.Error("storing a state event", "job", j.ID, "err", err)
		return
	}
	c.hub.publish(j.ID, evs, store.Final(j.State), nil)
	c.notify()
}

// eventPump takes the runner's events without ever making it wait: they
// queue in memory and one goroutine stores them in batches and publishes
// them to subscribers.
//
// Console output is not stored twice: the board's recorder already stores
// every byte in the board log, so the job's console events are stored as
// references to ranges of that log (consoleref.go) and expanded when a
// subscriber reads them. Consecutive chunks are merged into one reference
// of up to maxConsoleEvent bytes.
type eventPump struct {
	c     *Controller
	job   string
	board string
	rec   *Recorder
	mu    sync.Mutex
	queue []store.Event
	kick  chan struct{}
	done  chan struct{}
	drops int
	// con is console output not yet queued: the board log range
	// [conFrom, conTo), whose first chunk was read at conAt.
	conFrom, conTo int64
	conAt          time.Time
	conOn          bool
	// logTo is the end of the board log range the queued references name:
	// the recorder must have stored it before they are.
	logTo int64
}

// maxConsoleEvent bounds the console bytes merged into one job event (a
// reference: expanded, its JSON is at most ~6 MiB, within the CLI's 16 MiB
// websocket read limit; each stored event costs a row, so a flood is
// stored in few), and consoleDelay how long console output waits for more
// before it is stored and published (a one-shot timer per wait: an idle
// job has none).
const (
	maxConsoleEvent = 1 << 20
	consoleDelay    = 20 * time.Millisecond
)

// onlyConsole reports whether nothing but console output waits.
func (p *eventPump) onlyConsole() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conOn {
		return true
	}
	for _, e := range p.queue {
		if e.Type != "console" {
			return false
		}
	}
	return len(p.queue) > 0
}

// maxQueuedEvents bounds the pump's memory; console events beyond it are
// dropped (the board log still has every byte).
const maxQueuedEvents = 100000

func newEventPump(c *Controller, job string, s *slot) *eventPump {
	p := &eventPump{c: c, job: job, board: s.cfg.Name, rec: s.rec, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *eventPump) add(ev runner.Event) {
	if co, ok := ev.(runner.ConsoleOutput); ok {
		p.mu.Lock()
		if p.conOn && (co.Offset != p.conTo || p.conTo-p.conFrom >= maxConsoleEvent) {
			p.queueConsoleLocked()
		}
		first := !p.conOn
		if first {
			p.conOn, p.conFrom, p.conTo, p.conAt = true, co.Offset, co.Offset, co.Time
		}
		p.conTo += int64(len(co.Data))
		if p.conTo-p.conFrom >= maxConsoleEvent {
			p.queueConsoleLocked()
		}
		p.mu.Unlock()
		if first {
			p.wake()
		}
		return
	}
	data, err := json.Marshal(ev)
	if err != nil {
		p.c.log.Error("event not serialisable", "job", p.job, "type", ev.Type(), "err", err)
		return
	}
	p.mu.Lock()
	p.queueConsoleLocked() // console output before this event comes first
	p.queue = append(p.queue, store.Event{At: ev.When(), Type: ev.Type(), Data: data})
	p.mu.Unlock()
	p.wake()
}

func (p *eventPump) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// queueConsoleLocked queues the merged console output as one reference to
// the board log (p.mu held). Beyond maxQueuedEvents it is dropped (the
// board log still has every byte). While the pump is busy storing a batch,
// the console output of that time is merged.
func (p *eventPump) queueConsoleLocked() {
	if !p.conOn {
		return
	}
	p.conOn = false
	if len(p.queue) >= maxQueuedEvents {
		p.drops++
		return
	}
	p.queue = append(p.queue, store.Event{At: p.conAt, Type: runner.ConsoleOutput{}.Type(),
		Data: encodeConsoleRef(p.board, p.conFrom, p.conTo, p.conAt)})
	p.logTo = max(p.logTo, p.conTo)
}

func (p *eventPump) run() {
	defer close(p.done)
	for {
		_, ok := <-p.kick
		if ok && p.onlyConsole() {
			// Console output alone waits consoleDelay for more (any other
			// event ends the wait): a flood is stored and published
			// every consoleDelay, not per read.
			t := time.NewTimer(consoleDelay)
			select {
			case _, ok = <-p.kick:
			case <-t.C:
			}
			t.Stop()
		}
		p.mu.Lock()
		p.queueConsoleLocked()
		batch, logTo := p.queue, p.logTo
		p.queue = nil
		p.mu.Unlock()
		if len(batch) > 0 {
			// A reference is stored only once what it names is: a reader
			// never finds a console event whose bytes are not there yet.
			p.rec.SyncTo(context.Background(), logTo)
			evs, err := p.c.db.AppendEvents(context.Background(), p.job, batch)
			if err != nil {
				p.c.log.Error("storing job events", "job", p.job, "events", len(batch), "err", err)
			} else {
				p.c.hub.publish(p.job, evs, false, p.c.expandConsole)
			}
		}
		if !ok {
			return
		}
	}
}

// close flushes the queue and stops the pump.
func (p *eventPump) close() {
	close(p.kick)
	<-p.done
	if p.drops > 0 {
		p.c.log.Warn("console events dropped from the job stream (the board log has them)", "job", p.job, "dropped", p.drops)
	}
}
