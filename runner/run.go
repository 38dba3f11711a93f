package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hilfarm/hilfarm/specs"
)

// Defaults applied when the spec or the options leave a bound at zero.
const (
	DefaultJobTimeout       = 10 * time.Minute
	DefaultWithin           = 10 * time.Second
	DefaultCleanupTimeout   = time.Minute
	DefaultSafeStateTimeout = 30 * time.Second
	DefaultTestConsoleMax   = 256 << 10
	DefaultAbandonAfter     = 10 * time.Second
	// evidenceLines is how many console lines a failed expect quotes.
	evidenceLines = 20
	// syncWriteMax is the largest send written without a helper goroutine.
	syncWriteMax = 1024
	// DefaultSettle is how long the console must stay quiet before a
	// tentative match (see stream.go: one that more bytes could still
	// change, like "OK$" having seen "OK" of "OKAY", or "[0-9.]+" having
	// seen "2023.0") is taken as it is. When bytes arrive paced (a slow
	// UART: one byte every 33 ms at 300 baud), the wait is twice the last
	// gap between reads, up to maxSettle. Any new byte decides at once.
	DefaultSettle = 20 * time.Millisecond
	// maxSettle bounds the paced settle time (110 baud: 91 ms a byte).
	maxSettle = 250 * time.Millisecond
	// settleGrace bounds the last search when a step's within runs out.
	settleGrace = 50 * time.Millisecond
	// readBuf is the buffer a ConsoleReader is read into.
	readBuf = 32 << 10
)

// Job is one run of a spec on a board with a firmware candidate.
type Job struct {
	Spec     *specs.Spec
	Board    Board
	Firmware specs.Firmware
	// Vars override the spec's variable values (Spec.Vars) by name.
	Vars map[string]any
}

// Options tune a Run. The zero value is usable.
type Options struct {
	// Events receives the job's events in order. Calls are serialised (never
	// concurrent), from the runner's goroutines, and the engine waits for
	// each: the sink must return quickly (hand the event to a buffered queue,
	// count and drop when full). nil: no events.
	Events func(Event)
	// Now gives the times written into events and results; nil: time.Now.
	// Timeouts always run on the real clock.
	Now func() time.Time
	// CleanupTimeout bounds the teardown phase, which runs even after a
	// cancel or a job timeout. Default DefaultCleanupTimeout.
	CleanupTimeout time.Duration
	// SafeStateTimeout bounds putting the board in its safe state (power
	// off) after the job. Default DefaultSafeStateTimeout.
	SafeStateTimeout time.Duration
	// TestConsoleMax caps each test's console slice (head and tail are
	// kept, the middle elided). Default DefaultTestConsoleMax.
	TestConsoleMax int
	// AbandonAfter is how long the runner waits for a board operation to
	// return once its context is done before it gives up on it and reports
	// an error. Default DefaultAbandonAfter.
	AbandonAfter time.Duration
	// Settle is the quiet time after which a tentative match is taken as
	// it is (it grows with paced output, up to 250 ms). Default DefaultSettle.
	Settle time.Duration
	// Campaign options (campaign_run.go): which iterations this run takes
	// of a spread campaign, and the overrides of `hilfarm run`.
	Shard Shard
	// Seed, when non-zero, replaces every repeat block's seed (the seed of
	// a spread campaign's shards, or `--seed` to replay a campaign).
	Seed int64
	// Repeat, when > 0, replaces every repeat block's count (`--repeat`).
	Repeat int
	// ReplayCut, when set, is the delay of every power cut, and each
	// repeated test runs once (`--replay-cut`).
	ReplayCut *time.Duration
}

// timeoutError is the cause of a context that ran out: the job's, a test's,
// or a step's own bound.
type timeoutError struct {
	scope string // "job", "test", "teardown", "flash", ...
	d     time.Duration
}

func (e *timeoutError) Error() string { return fmt.Sprintf("%s timeout of %s ran out", e.scope, e.d) }

// stepErr is how a step ended when it did not pass.
type stepErr struct {
	outcome Outcome
	kind    string
	msg     string
}

func failed(kind, format string, a ...any) *stepErr {
	return &stepErr{Failed, kind, fmt.Sprintf(format, a...)}
}

func infra(kind, format string, a ...any) *stepErr {
	return &stepErr{Error, kind, fmt.Sprintf(format, a...)}
}

// panicError is a panic recovered in a board operation.
type panicError struct {
	v     any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.v) }

// engine is the state of one Run. Only the Run's goroutine touches it,
// except emit, which board operations' log writers call too.
type engine struct {
	job   Job
	spec  *specs.Spec
	b     Board
	opts  Options
	now   func() time.Time
	scope specs.Scope

	emitMu sync.Mutex

	// The console stream: read directly (reader, into rbuf) when the
	// console is a ConsoleReader, else received from events.
	events     <-chan ConsoleEvent
	reader     ConsoleReader
	rbuf       []byte
	stableData bool // the reader's data is never overwritten: no copy for the event sink
	win        window
	consumed   int64 // expects match after this offset
	unsearched int   // bytes appended since the last search
	failOn     []*matcher
	active     *matcher // the expect being waited for
	hit        *match   // its match, once found
	failHit    *match   // a fail_on match not yet reported
	failDesc   string
	lost       error // the console is lost and not back
	lostNow    bool  // it was lost during the current batch
	lostErr    error // why, even if it is back
	// tolerant is set while a power, reset or flash step runs;
	// tolerateUntil is when the last one ended.
	tolerant      bool
	tolerateUntil time.Time
	// poweredOff is set while the board is off by a power step: its USB
	// serial chip may vanish with its power, whenever the kernel notices.
	poweredOff bool
	closed     bool
	lastByte   time.Time
	rec        *slice // the current test's console slice
	meas       *[]Measurement
	test       string
	attempt    int
	phase      Phase

	matchState // match.go: the order of matches, settling, stopping

	camp *campState // the campaign running (campaign_run.go); nil: none
}

// Run executes job's spec on its board: setup, then the tests (each with
// its retries), then teardown, which always runs; then it puts the board
// in its safe state (power off), with context.WithoutCancel(ctx) and
// Options.SafeStateTimeout, whatever happened before — a failure, a panic in
// a step, a cancel of ctx or the job's timeout.
//
// The job's outcome and evidence are in the Result; the error is non-nil
// only when the job cannot start (no spec, no power, no console).
func Run(ctx context.Context, job Job, opts Options) (*Result, error) {
	if job.Spec == nil {
		return nil, errors.New("runner: job has no spec")
	}
	if job.Board.Power == nil {
		return nil, fmt.Errorf("runner: board %s has no power", job.Board.Info.Name)
	}
	if job.Board.Console == nil {
		return nil, fmt.Errorf("runner: board %s has no console", job.Board.Info.Name)
	}
	opts = withDefaults(opts)
	e := &engine{job: job, spec: job.Spec, b: job.Board, opts: opts, now: opts.Now}
	if r, ok := job.Board.Console.(ConsoleReader); ok {
		e.reader, e.rbuf = r, make([]byte, readBuf)
		if sr, ok := r.(StableReader); ok {
			e.stableData = sr.StableData()
		}
	} else {
		e.events = job.Board.Console.Events()
	}
	e.lastByte = time.Now()
	vars := maps.Clone(job.Spec.Vars)
	if vars == nil {
		vars = map[string]any{}
	}
	maps.Copy(vars, job.Vars)
	e.scope = specs.Scope{
		Firmware: job.Firmware,
		Board:    job.Board.Info,
		Vars:     vars,
		Captures: map[string]string{},
		Measures: map[string]float64{},
	}

	res := &Result{
		Spec:     job.Spec.Name,
		Board:    job.Board.Info,
		Firmware: job.Firmware,
		Started:  e.now(),
		Tests:    []TestResult{},
	}
	names := make([]string, len(job.Spec.Tests))
	for i, t := range job.Spec.Tests {
		names[i] = t.Name
	}
	e.emit(JobStarted{Time: res.Started, Spec: res.Spec, Board: res.Board, Firmware: res.Firmware, Tests: names})

	jobTimeout := job.Spec.Timeout
	if jobTimeout <= 0 {
		jobTimeout = DefaultJobTimeout
	}
	jctx, cancel := context.WithTimeoutCause(ctx, jobTimeout, &timeoutError{"job", jobTimeout})
	defer cancel()

	func() {
		defer func() {
			if r := recover(); r != nil {
				// A panic outside any step (the engine itself): report it and
				// still clean up.
				res.Message = fmt.Sprintf("runner panic: %v", r)
				res.Outcome = Error
			}
		}()
		e.runAll(ctx, jctx, res)
	}()

	// The safe state, whatever happened.
	sctx, scancel := context.WithTimeoutCause(context.WithoutCancel(ctx), opts.SafeStateTimeout,
		&timeoutError{"safe state", opts.SafeStateTimeout})
	if err := e.call(sctx, func(c context.Context) error { return e.b.Power.Off(c) }); err != nil {
		res.SafeStateError = fmt.Sprintf("board %s: safe state: power off: %v", e.b.Info.Name, err)
	}
	scancel()

	e.summarise(ctx, res)
	res.Finished = e.now()
	res.Duration = Duration(res.Finished.Sub(res.Started))
	res.Captures = maps.Clone(e.scope.Captures)
	res.Measures = maps.Clone(e.scope.Measures)
	e.emit(JobFinished{Time: res.Finished, Outcome: res.Outcome, Message: res.Message, Duration: res.Duration})
	return res, nil
}

func withDefaults(o Options) Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CleanupTimeout <= 0 {
		o.CleanupTimeout = DefaultCleanupTimeout
	}
	if o.SafeStateTimeout <= 0 {
		o.SafeStateTimeout = DefaultSafeStateTimeout
	}
	if o.TestConsoleMax <= 0 {
		o.TestConsoleMax = DefaultTestConsoleMax
	}
	if o.Settle <= 0 {
		o.Settle = DefaultSettle
	}
	if o.AbandonAfter <= 0 {
		o.AbandonAfter = DefaultAbandonAfter
	}
	return o
}

// call runs fn in its own goroutine, recovering a panic, and gives up on it
// AbandonAfter after ctx is done.
func (e *engine) call(ctx context.Context, fn func(context.Context) error) error {
	done := e.start(ctx, fn)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(e.opts.AbandonAfter)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("did not return within %s of its deadline (%w); abandoned", e.opts.AbandonAfter, context.Cause(ctx))
	}
}

// start runs fn in a goroutine and returns its result channel; a panic in
// fn is returned as a *panicError.
func (e *engine) start(ctx context.Context, fn func(context.Context) error) <-chan error {
	done := make(chan error, 1)
	go func() {
		// A runner reading its console directly is woken once the result
		// is there (this defer runs after the send below).
		defer e.wakeReader()
		defer func() {
			if r := recover(); r != nil {
				done <- &panicError{v: r, stack: debug.Stack()}
			}
		}()
		done <- fn(ctx)
	}()
	return done
}

// wakeReader makes the engine's pending console read return (pull mode).
func (e *engine) wakeReader() {
	if e.reader != nil {
		e.reader.Wake()
	}
}

func (e *engine) emit(ev Event) {
	if e.opts.Events == nil {
		return
	}
	e.emitMu.Lock()
	defer e.emitMu.Unlock()
	e.opts.Events(ev)
}

func (e *engine) runAll(ctx, jctx context.Context, res *Result) {
	setupOK := true
	var setupWhy string
	var failOnErr *stepErr
	for _, p := range e.spec.FailOn {
		m, se := e.pattern(p)
		if se != nil {
			failOnErr = &stepErr{Error, KindSpec, "fail_on: " + se.msg}
			break
		}
		e.failOn = append(e.failOn, m)
	}
	switch {
	case failOnErr != nil:
		res.Setup = &TestResult{Name: "setup", Outcome: Error, Kind: failOnErr.kind, Message: failOnErr.msg, Started: e.now()}
		setupOK, setupWhy = false, "fail_on patterns could not be evaluated"
	case len(e.spec.Setup) > 0:
		r := e.runTest(jctx, PhaseSetup, specs.Test{Name: "setup", Steps: e.spec.Setup}, false)
		res.Setup = &r
		if r.Outcome != Passed {
			setupOK, setupWhy = false, "setup "+string(r.Outcome)
		}
	}
	for _, t := range e.spec.Tests {
		switch {
		case !setupOK:
			res.Tests = append(res.Tests, e.skipped(t.Name, KindSetup, "not run: "+setupWhy))
		case jctx.Err() != nil:
			kind, why := KindCancel, "not run: job cancelled"
			var te *timeoutError
			if errors.As(context.Cause(jctx), &te) {
				kind, why = KindTimeout, "not run: "+te.Error()
			}
			res.Tests = append(res.Tests, e.skipped(t.Name, kind, why))
		default:
			res.Tests = append(res.Tests, e.runTest(jctx, PhaseTest, t, false))
		}
	}
	if len(e.spec.Teardown) > 0 {
		tctx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), e.opts.CleanupTimeout,
			&timeoutError{"teardown", e.opts.CleanupTimeout})
		r := e.runTest(tctx, PhaseTeardown, specs.Test{Name: "teardown", Steps: e.spec.Teardown}, true)
		cancel()
		res.Teardown = &r
	}
}

func (e *engine) skipped(name, kind, why string) TestResult {
	now := e.now()
	e.emit(TestStarted{Time: now, Phase: PhaseTest, Test: name, Attempt: 1})
	e.emit(TestFinished{Time: now, Phase: PhaseTest, Test: name, Attempt: 1, Outcome: Skipped, Kind: kind, Message: why, Final: true})
	return TestResult{Name: name, Outcome: Skipped, Kind: kind, Message: why, Started: now}
}

// runTest runs a test with its retries (or a setup or teardown phase once).
// keepGoing runs every step even after one did not pass (teardown).
func (e *engine) runTest(ctx context.Context, phase Phase, t specs.Test, keepGoing bool) TestResult {
	if t.Repeat != nil && phase == PhaseTest {
		return e.runCampaign(ctx, t)
	}
	tr := TestResult{Name: t.Name, Started: e.now()}
	e.rec = newSlice(e.opts.TestConsoleMax)
	defer func() { e.rec = nil }()
	for a := 1; ; a++ {
		final := a > t.Retries || ctx.Err() != nil
		att := e.runAttempt(ctx, phase, t, a, keepGoing, func(o Outcome) bool {
			return final || o == Passed || o == Cancelled || ctx.Err() != nil
		})
		tr.Attempts = append(tr.Attempts, att)
		if att.Outcome == Passed || att.Outcome == Cancelled || final || ctx.Err() != nil {
			break
		}
		fmt.Fprintf(recWriter{e}, "\n[hilfarm: attempt %d %s: %s; retrying]\n", a, att.Outcome, firstLine(att.Message))
	}
	last := tr.Attempts[len(tr.Attempts)-1]
	tr.Outcome, tr.Kind, tr.Message = last.Outcome, last.Kind, last.Message
	tr.Duration = Duration(e.now().Sub(tr.Started))
	tr.Console = e.rec.String()
	tr.ConsoleBytes = e.rec.total
	return tr
}

type recWriter struct{ e *engine }

func (w recWriter) Write(p []byte) (int, error) {
	if w.e.rec != nil {
		w.e.rec.write(p)
	}
	if w.e.camp != nil && w.e.camp.rec != nil {
		w.e.camp.rec.write(p)
	}
	return len(p), nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func (e *engine) runAttempt(ctx context.Context, phase Phase, t specs.Test, n int, keepGoing bool, isFinal func(Outcome) bool) Attempt {
	att := Attempt{Number: n, Outcome: Passed, Started: e.now(), Steps: []StepResult{}}
	e.phase, e.test, e.attempt, e.meas = phase, t.Name, n, &att.Measurements
	e.emit(TestStarted{Time: att.Started, Phase: phase, Test: t.Name, Attempt: n, Iteration: e.iteration()})
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, t.Timeout, &timeoutError{"test", t.Timeout})
		defer cancel()
	}
	for i, st := range t.Steps {
		sr := e.runStep(ctx, i, st)
		att.Steps = append(att.Steps, sr)
		if sr.Outcome != Passed && att.Outcome == Passed {
			att.Outcome, att.Kind, att.Message = sr.Outcome, sr.FailKind, sr.Message
			if !keepGoing {
				break
			}
		}
	}
	// A fail_on match left pending by a power or reset step with no step
	// after it to report it.
	if e.failHit != nil && att.Outcome == Passed {
		se := e.failOnErr("the end of " + string(phase))
		att.Outcome, att.Kind, att.Message = se.outcome, se.kind, se.msg
	}
	att.Duration = Duration(e.now().Sub(att.Started))
	e.emit(TestFinished{Time: e.now(), Phase: phase, Test: t.Name, Attempt: n, Iteration: e.iteration(), Outcome: att.Outcome,
		Kind: att.Kind, Message: att.Message, Duration: att.Duration, Final: isFinal(att.Outcome)})
	return att
}

func (e *engine) runStep(ctx context.Context, i int, st specs.Step) (sr StepResult) {
	sr = StepResult{Index: i, Kind: st.Kind, Summary: summary(st, &e.scope), Range: st.Range}
	start := e.now()
	sr.Started = start
	e.emit(StepStarted{Time: start, Phase: e.phase, Test: e.test, Attempt: e.attempt, Index: i, Kind: st.Kind, Summary: sr.Summary})
	var se *stepErr
	func() {
		defer func() {
			if r := recover(); r != nil {
				se = infra(KindPanic, "%s step panicked: %v", st.Kind, r)
				sr.Output = trimStack(debug.Stack())
			}
		}()
		e.active, e.hit, e.undecided, e.tolerant = nil, nil, false, false
		e.stop = stopper{done: ctx.Done()}
		se = e.blameCandidate(e.exec(ctx, st, &sr))
	}()
	e.active, e.hit, e.undecided = nil, nil, false
	e.stop = stopper{}
	sr.Outcome = Passed
	if se != nil {
		sr.Outcome, sr.FailKind, sr.Message = se.outcome, se.kind, se.msg
	}
	sr.Duration = Duration(e.now().Sub(start))
	e.emit(StepFinished{Time: e.now(), Phase: e.phase, Test: e.test, Attempt: e.attempt, Index: i, Kind: st.Kind, Summary: sr.Summary,
		Outcome: sr.Outcome, FailKind: sr.FailKind, Message: sr.Message, Duration: sr.Duration})
	return sr
}

func trimStack(b []byte) string {
	const max = 4 << 10
	if len(b) > max {
		b = b[:max]
	}
	return string(b)
}

// ctxErr explains why ctx ended while the step did what.
func (e *engine) ctxErr(ctx context.Context, what string, action bool) *stepErr {
	var te *timeoutError
	if errors.As(context.Cause(ctx), &te) {
		if action {
			return infra(KindTimeout, "%s during %s", te, what)
		}
		return failed(KindTimeout, "%s during %s; last console lines:\n%s", te, what, lastLines(e.win.buf, evidenceLines))
	}
	return &stepErr{Cancelled, KindCancel, "cancelled during " + what}
}

// awaitArgs says what a step waits for while the console is processed.
type awaitArgs struct {
	what   string
	done   <-chan error // a board operation's result; nil: none
	expect *matcher     // a pattern to wait for; nil: none
	within time.Duration
	sleep  bool // a wait step: passes when within runs out
	// deferFailOn lets a power, reset or flash operation finish when a
	// fail_on pattern appears: the match is reported by the next step (or
	// at the end of the test), and a flash clears what the old firmware printed.
	deferFailOn bool
}

// await processes the console until the step ends: the operation returns,
// the pattern matches, within runs out, the console goes idle, a fail_on
// pattern appears, the console is lost or ctx ends. For an operation
// (done set), err is its result and se is nil unless something else ended
// the wait first.
func (e *engine) await(ctx context.Context, a awaitArgs) (mt *match, se *stepErr, opErr error) {
	t0 := time.Now()
	// A long regex search stops at a cancel, a timeout or the end of within.
	prevStop := e.stop
	e.stop = stopper{done: ctx.Done()}
	if a.within > 0 && !a.sleep {
		e.stop.at = t0.Add(a.within)
	}
	defer func() { e.stop = prevStop }()
	if a.expect != nil {
		if e.closed {
			return nil, infra(KindConsole, "console closed before %s", a.what), nil
		}
		a.expect.reset(e.consumed)
		e.active, e.hit = a.expect, nil
		e.search()
	}
	if e.hit != nil {
		return e.hit, nil, nil
	}
	if a.expect == nil && e.failHit != nil {
		e.failReady = true // no expect competes with it
	}
	if e.failReady && !a.deferFailOn {
		return nil, e.failOnErr(a.what), nil
	}
	if e.reader != nil {
		return e.awaitPull(ctx, a, t0)
	}
	var withinC <-chan time.Time
	if a.within > 0 {
		t := time.NewTimer(a.within)
		defer t.Stop()
		withinC = t.C
	}
	// settle fires when the console has been quiet for the settle time
	// while a tentative match holds a decision.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	armSettle := func() {
		if e.undecided {
			settle.Reset(e.settleTime()) // quiet counts from the last bytes
		} else {
			settle.Stop()
		}
	}
	armSettle()
	var idleC <-chan time.Time
	idle := e.spec.IdleTimeout
	if a.expect != nil && idle > 0 {
		t := time.NewTimer(idle)
		defer t.Stop()
		idleC = t.C
	}
	for {
		if e.interrupted {
			// A search was cut short: by the context or by within.
			if ctx.Err() != nil {
				return nil, e.ctxErr(ctx, a.what, a.done != nil), nil
			}
			if !e.stop.at.IsZero() && !time.Now().Before(e.stop.at) {
				mt, se := e.withinOver(ctx, a, t0)
				return mt, se, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, e.ctxErr(ctx, a.what, a.done != nil), nil
		case err := <-a.done:
			return nil, nil, err
		case <-settle.C:
			if mt, se, ok := e.settled(a); ok {
				return mt, se, nil
			}
		case <-withinC:
			mt, se := e.withinOver(ctx, a, t0)
			return mt, se, nil
		case <-idleC:
			quiet := time.Since(later(e.lastByte, t0))
			if quiet >= idle && e.lost == nil {
				mt, se := e.idleOver(a, quiet)
				return mt, se, nil
			}
			idleC = time.After(max(idle-quiet, time.Millisecond))
		case ev, ok := <-e.events:
			e.lostNow = false
			e.consume(ev, ok)
			if e.interrupted {
				continue
			}
			if mt, se, ok := e.afterEvent(a); ok {
				return mt, se, nil
			}
			armSettle()
		}
	}
}

// withinOver decides a step whose within ran out: a tentative match is
// taken as it is (a costly search gets settleGrace to finish), else the
// step fails, or errs when the console was lost.
func (e *engine) withinOver(ctx context.Context, a awaitArgs, t0 time.Time) (*match, *stepErr) {
	if a.sleep {
		return nil, nil
	}
	if !e.interrupted {
		e.stop = stopper{done: ctx.Done(), at: time.Now().Add(settleGrace)}
		e.settle()
	}
	if e.hit != nil {
		return e.hit, nil
	}
	if e.failReady && !a.deferFailOn {
		return nil, e.failOnErr(a.what)
	}
	if e.lost != nil {
		return nil, infra(KindConsole, "console lost (%v) and not back within %s, during %s", e.lost, a.within, a.what)
	}
	if e.interrupted {
		return nil, failed(KindExpect, "expected %s within %s; waited %s, still searching the console (the regex is costly); last console lines:\n%s",
			a.expect.desc, a.within, time.Since(t0).Round(time.Millisecond), lastLines(e.win.buf, evidenceLines))
	}
	return nil, failed(KindExpect, "expected %s within %s; waited %s; last console lines:\n%s",
		a.expect.desc, a.within, time.Since(t0).Round(time.Millisecond), lastLines(e.win.buf, evidenceLines))
}

// settled takes tentative matches as they are (the settle time passed);
// ok reports that this decided the step.
func (e *engine) settled(a awaitArgs) (mt *match, se *stepErr, ok bool) {
	e.settle()
	if e.hit != nil {
		return e.hit, nil, true
	}
	if e.failReady && !a.deferFailOn {
		return nil, e.failOnErr(a.what), true
	}
	return nil, nil, false
}

// idleOver decides a step whose console has been quiet for idle_timeout.
func (e *engine) idleOver(a awaitArgs, quiet time.Duration) (*match, *stepErr) {
	if mt, se, ok := e.settled(a); ok {
		return mt, se
	}
	return nil, failed(KindIdle, "console silent for %s (idle_timeout %s) while waiting for %s; last console lines:\n%s",
		quiet.Round(time.Millisecond), e.spec.IdleTimeout, a.expect.desc, lastLines(e.win.buf, evidenceLines))
}

// afterEvent decides the step after a console event, if it does; ok
// reports that it did. The caller skips it while a search is interrupted.
func (e *engine) afterEvent(a awaitArgs) (mt *match, se *stepErr, ok bool) {
	switch {
	case e.hit != nil:
		return e.hit, nil, true
	case e.failReady && !a.deferFailOn:
		return nil, e.failOnErr(a.what), true
	case a.expect != nil && e.closed:
		return nil, infra(KindConsole, "console closed during %s", a.what), true
	case e.lostNow:
		return nil, infra(KindConsole, "console lost during %s: %v", a.what, e.lostErr), true
	}
	return nil, nil, false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// clearFailOn forgets fail_on matches so far: they start again from the
// console's current end.
func (e *engine) clearFailOn() {
	e.discardPending()
	e.failHit, e.failReady = nil, false
	for _, m := range e.failOn {
		m.from = e.win.end()
	}
}

func (e *engine) failOnErr(what string) *stepErr {
	m := e.failHit
	e.failHit, e.failReady = nil, false
	return failed(KindFailOn, "fail_on %s matched %q during %s; last console lines:\n%s",
		e.failDesc, m.text, what, lastLines(e.win.buf, evidenceLines))
}

// discardPending reads what the console has ready, then marks everything
// so far as consumed: after a flash, power or reset step an expect sees only
// what the board printed from that step on (a prompt printed before a power
// cycle must not answer an expect after it). fail_on still sees every byte.
func (e *engine) discardPending() {
	for e.reader != nil && !e.closed {
		ev, err := e.reader.ReadEvent(e.rbuf, time.Unix(1, 0)) // only what is ready
		if errors.Is(err, ErrNoEvent) {
			break
		}
		e.pulled(ev, err)
	}
	for e.events != nil {
		select {
		case ev, ok := <-e.events:
			e.consume(ev, ok)
			continue
		default:
		}
		break
	}
	e.consumed = e.win.end()
}

// consume handles ev and whatever else is ready at once (a bounded batch),
// then searches.
func (e *engine) consume(ev ConsoleEvent, ok bool) {
	if ok {
		e.handle(ev)
	} else {
		e.closeConsole()
	}
	for n := len(ev.Data); n < 4*searchEvery && e.hit == nil && !e.failReady && !e.closed; {
		select {
		case ev, ok := <-e.events:
			if !ok {
				e.closeConsole()
				break
			}
			e.handle(ev)
			n += len(ev.Data)
			continue
		default:
		}
		break
	}
	switch {
	case e.closed:
		e.settle() // no byte will come to change a tentative match
	case e.unsearched > 0:
		e.search()
	}
}

func (e *engine) closeConsole() {
	e.closed, e.events = true, nil
	fmt.Fprintf(recWriter{e}, "\n[hilfarm: console closed]\n")
}

func (e *engine) handle(ev ConsoleEvent) {
	at := ev.At
	if at.IsZero() {
		at = e.now()
	}
	switch ev.Kind {
	case ConsoleData:
		e.lastByte = time.Now()
		if ev.At.IsZero() {
			e.noteRead(e.lastByte)
		} else {
			e.noteRead(ev.At)
		}
		e.emit(ConsoleOutput{Time: at, Data: ev.Data, Offset: ev.Offset})
		write := (*slice).write
		if e.stableData {
			write = (*slice).writeStable // no copy of a flood into the tail
		}
		if e.rec != nil {
			write(e.rec, ev.Data)
		}
		if e.camp != nil && e.camp.rec != nil {
			write(e.camp.rec, ev.Data)
		}
		p := ev.Data
		for len(p) > 0 {
			n := min(len(p), searchEvery-e.unsearched)
			e.win.append(p[:n])
			e.unsearched += n
			p = p[n:]
			if e.unsearched >= searchEvery {
				e.search()
			}
		}
	case ConsoleLost:
		e.lost = ev.Err
		if e.lost == nil {
			e.lost = errors.New("console lost")
		}
		e.lostErr = e.lost
		// A port lost during (or by) a power, reset or flash step is
		// tolerated; anywhere else bytes were lost: an error.
		lostAt := ev.At
		if lostAt.IsZero() {
			lostAt = time.Now()
		}
		// While the board is off by a power step, its own USB serial chip
		// may vanish whenever the kernel notices: not lost bytes.
		e.lostNow = !e.tolerant && !e.poweredOff && lostAt.After(e.tolerateUntil)
		e.emit(ConsoleGap{Time: at, Lost: true, Err: e.lost.Error()})
		fmt.Fprintf(recWriter{e}, "\n[hilfarm: console lost: %v]\n", e.lost)
	case ConsoleBack:
		e.lost = nil
		e.emit(ConsoleGap{Time: at})
		fmt.Fprintf(recWriter{e}, "\n[hilfarm: console back]\n")
	case ConsoleBoundary:
		// The board is about to be powered on: what it printed before
		// (a prompt left from an earlier job) answers no expect.
		e.consumed = e.win.end()
	}
}

// operation runs a board operation while the console is processed.
type operation struct {
	what string
	kind string // failure kind of an error
	// tolerateLost lets the console be lost meanwhile (power, reset and
	// flash steps: a board's own USB serial chip may vanish with its
	// power); a later expect waits for it to come back. Anywhere else a
	// lost console is an infrastructure error: bytes were lost.
	tolerateLost bool
	timeout      time.Duration // the operation's own bound; 0: none
	// timeoutFails makes running out of timeout a firmware failure (a line
	// that never reached its value) instead of an infrastructure error.
	timeoutFails bool
	fn           func(ctx context.Context) error
	// classify maps a non-nil error of fn to the step's end; nil: infra(kind).
	classify func(err error) *stepErr
}

func (e *engine) operate(ctx context.Context, op operation) *stepErr {
	if err := ctx.Err(); err != nil {
		return e.ctxErr(ctx, op.what, true)
	}
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	if op.timeout > 0 {
		var c2 context.CancelFunc
		octx, c2 = context.WithTimeoutCause(octx, op.timeout, &timeoutError{op.what, op.timeout})
		defer c2()
	}
	done := e.start(octx, op.fn)
	e.tolerant = op.tolerateLost
	_, se, err := e.await(ctx, awaitArgs{what: op.what, done: done, deferFailOn: op.tolerateLost})
	if se != nil && se.kind == KindTimeout && se.outcome == Error && op.timeoutFails {
		// The test's or the job's timeout ran out while waiting on the
		// firmware (a line that never reached its value): a failure.
		se = e.ctxErr(ctx, op.what, false)
	}
	if e.tolerant {
		e.tolerant, e.tolerateUntil = false, time.Now()
	}
	if se != nil {
		// Something else ended the step: stop the operation and wait for it.
		cancel()
		t := time.NewTimer(e.opts.AbandonAfter)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			se.msg += fmt.Sprintf("; %s did not return within %s of being cancelled and was abandoned", op.what, e.opts.AbandonAfter)
			se.outcome = worst(se.outcome, Error)
		}
		return se
	}
	if err == nil {
		return nil
	}
	var pe *panicError
	if errors.As(err, &pe) {
		return infra(KindPanic, "%s panicked: %v\n%s", op.what, pe.v, trimStack(pe.stack))
	}
	if ctx.Err() != nil {
		return e.ctxErr(ctx, op.what, !op.timeoutFails)
	}
	var te *timeoutError
	if errors.As(context.Cause(octx), &te) && te.scope == op.what {
		if op.timeoutFails {
			return failed(op.kind, "%s: not done within %s", op.what, op.timeout)
		}
		return infra(KindTimeout, "%s: timed out after %s: %v", op.what, op.timeout, err)
	}
	if op.classify != nil {
		return op.classify(err)
	}
	if errors.Is(err, ErrCandidate) {
		return failed(op.kind, "board %s: %s: %v", e.b.Info.Name, op.what, err)
	}
	return infra(op.kind, "board %s: %s: %v", e.b.Info.Name, op.what, err)
}

// pattern evaluates and compiles a pattern.
func (e *engine) pattern(p specs.Pattern) (*matcher, *stepErr) {
	m, err := p.Compile(&e.scope)
	if err != nil {
		return nil, infra(KindSpec, "pattern: %v", err)
	}
	return fromSpecs(m), nil
}

func (e *engine) exec(ctx context.Context, st specs.Step, sr *StepResult) *stepErr {
	if ctx.Err() != nil {
		return e.ctxErr(ctx, string(st.Kind), true)
	}
	name := e.b.Info.Name
	if st.Kind == specs.StepPower && st.Power != nil && st.Power.Action == specs.PowerCut {
		return e.cut(ctx, st.Power, sr) // campaign_run.go
	}
	switch st.Kind {
	case specs.StepFlash, specs.StepPower, specs.StepReset:
		e.discardPending()
	}
	switch st.Kind {
	case specs.StepFlash:
		if e.b.Flasher == nil {
			return infra(KindFlash, "board %s cannot be flashed (no flasher)", name)
		}
		lw := newLogWriter(e, "flash")
		defer func() { sr.Output = lw.close() }()
		var timeout time.Duration
		if st.Flash != nil {
			timeout = st.Flash.Timeout
		}
		// What the board printed before and while it is flashed is the old
		// firmware's (or the bootloader's): fail_on judges the candidate.
		e.clearFailOn()
		se := e.operate(ctx, operation{what: "flash", kind: KindFlash, timeout: timeout, tolerateLost: true,
			fn: func(c context.Context) error { return e.b.Flasher.Flash(c, e.job.Firmware, lw) }})
		if se == nil {
			e.clearFailOn()
		}
		return se

	case specs.StepPower:
		if st.Power == nil {
			return infra(KindSpec, "power step without action")
		}
		var fn func(context.Context) error
		switch st.Power.Action {
		case specs.PowerOn:
			fn = e.b.Power.On
		case specs.PowerOff:
			fn = e.b.Power.Off
		case specs.PowerCycle:
			off := st.Power.OffFor
			if off <= 0 {
				off = e.b.OffFor
			}
			fn = func(c context.Context) error { return e.b.Power.Cycle(c, off) }
		default:
			return infra(KindSpec, "power step: unknown action %q", st.Power.Action)
		}
		se := e.operate(ctx, operation{what: "power " + st.Power.Action, kind: KindPower, fn: fn, tolerateLost: true})
		if se == nil {
			e.poweredOff = st.Power.Action == specs.PowerOff
		}
		return se

	case specs.StepReset:
		if e.b.Reset != nil {
			return e.operate(ctx, operation{what: "reset", kind: KindPower, fn: e.b.Reset.Reset, tolerateLost: true})
		}
		return e.operate(ctx, operation{what: "reset (power cycle)", kind: KindPower, tolerateLost: true,
			fn: func(c context.Context) error { return e.b.Power.Cycle(c, e.b.OffFor) }})

	case specs.StepSend:
		p, se := e.sendBytes(st.Send)
		if se != nil {
			return se
		}
		if e.closed {
			return infra(KindConsole, "board %s: console closed; cannot send", name)
		}
		if len(p) <= syncWriteMax {
			// A command line fits the port's buffers: write it from this
			// goroutine (no hand-off, lower latency). Console.Write honours
			// ctx; a panic is recovered by runStep.
			if err := e.b.Console.Write(ctx, p); err != nil {
				if ctx.Err() != nil {
					return e.ctxErr(ctx, "send", true)
				}
				return infra(KindConsole, "board %s: write to console: %v", name, err)
			}
			return nil
		}
		return e.operate(ctx, operation{what: "send", kind: KindConsole,
			fn: func(c context.Context) error { return e.b.Console.Write(c, p) },
			classify: func(err error) *stepErr {
				return infra(KindConsole, "board %s: write to console: %v", name, err)
			}})

	case specs.StepExpect:
		x := st.Expect
		if x == nil {
			return infra(KindSpec, "expect step without pattern")
		}
		m, se := e.pattern(x.Pattern)
		if se != nil {
			return se
		}
		within := x.Within
		if within <= 0 {
			within = DefaultWithin
		}
		mt, se, _ := e.await(ctx, awaitArgs{what: "expect " + m.desc, expect: m, within: within})
		if se != nil {
			return se
		}
		sr.Match = mt.text
		if x.Capture != "" {
			v := mt.text
			if len(mt.groups) > 1 {
				v = mt.groups[1]
			}
			e.scope.Captures[x.Capture] = v
		}
		return nil

	case specs.StepMeasure:
		return e.measure(ctx, st.Measure, sr)

	case specs.StepAssert:
		x := st.Assert
		if x == nil {
			return infra(KindSpec, "assert step without condition")
		}
		ok, err := x.That.Bool(&e.scope)
		if err != nil {
			return infra(KindSpec, "assert: %v", err)
		}
		if ok {
			return nil
		}
		msg := "assertion failed: " + x.That.Source
		if x.Message != nil {
			if m, err := x.Message.String(&e.scope); err == nil {
				msg = m + " (" + x.That.Source + ")"
			}
		}
		return failed(KindAssert, "%s", msg)

	case specs.StepGPIO:
		return e.gpio(ctx, st.GPIO)

	case specs.StepWait:
		x := st.Wait
		if x == nil {
			return infra(KindSpec, "wait step without bound")
		}
		if x.GPIO == "" {
			if x.For <= 0 {
				return nil
			}
			_, se, _ := e.await(ctx, awaitArgs{what: "wait " + x.For.String(), within: x.For, sleep: true})
			return se
		}
		line, ok := e.b.Lines[x.GPIO]
		if !ok {
			return infra(KindGPIO, "board %s has no line %q", name, x.GPIO)
		}
		within := x.Within
		if within <= 0 {
			within = DefaultWithin
		}
		what := fmt.Sprintf("wait for line %s = %d", x.GPIO, x.Value)
		return e.operate(ctx, operation{what: what, kind: KindGPIO, timeout: within, timeoutFails: true,
			fn: func(c context.Context) error { return line.WaitFor(c, x.Value) }})

	case specs.StepTool:
		return e.tool(ctx, st.Tool, sr)
	}
	return infra(KindSpec, "unknown step kind %q", st.Kind)
}

func (e *engine) sendBytes(x *specs.SendStep) ([]byte, *stepErr) {
	if x == nil {
		return nil, infra(KindSpec, "send step with neither line nor raw")
	}
	end := e.spec.LineEnding
	if end == "" {
		end = specs.DefaultLineEnding
	}
	p, err := x.Bytes(&e.scope, end)
	if err != nil {
		return nil, infra(KindSpec, "send: %v", err)
	}
	return p, nil
}

func (e *engine) measure(ctx context.Context, x *specs.MeasureStep, sr *StepResult) *stepErr {
	if x == nil {
		return infra(KindSpec, "measure step without regex")
	}
	re, err := x.Compile(&e.scope)
	if err != nil {
		return infra(KindSpec, "measure %s: %v", x.Name, err)
	}
	m := newRegexMatcher(re)
	group := x.Group
	within := x.Within
	if within <= 0 {
		within = DefaultWithin
	}
	mt, se, _ := e.await(ctx, awaitArgs{what: "measure " + x.Name + " (" + m.desc + ")", expect: m, within: within})
	if se != nil {
		return se
	}
	sr.Match = mt.text
	raw := mt.groups[group]
	v, err := parseNumber(raw)
	if err != nil {
		return failed(KindMeasure, "measure %s: %q (from %q) is not a number", x.Name, raw, mt.text)
	}
	ms := Measurement{Name: x.Name, Value: v, Unit: x.Unit, Min: x.Min, Max: x.Max,
		MarginalMin: x.MarginalMin, MarginalMax: x.MarginalMax, At: e.now()}
	ms.Verdict = Verdict(x.Judge(v))
	var why string
	switch {
	case x.Min != nil && v < *x.Min:
		why = "below min " + fmtNum(*x.Min)
	case x.Max != nil && v > *x.Max:
		why = "above max " + fmtNum(*x.Max)
	}
	e.scope.Measures[x.Name] = v
	if e.meas != nil {
		*e.meas = append(*e.meas, ms)
	}
	e.emit(MeasurementTaken{Time: ms.At, Test: e.test, Attempt: e.attempt, Measurement: ms})
	if ms.Verdict == VerdictFail {
		return failed(KindLimit, "measure %s = %s%s is %s", x.Name, fmtNum(v), unitSuffix(x.Unit), why)
	}
	return nil
}

// parseNumber reads a measured value: a decimal number, or an integer in
// hexadecimal (0x...), octal (0o...) or binary (0b...), as firmware prints
// register values and sizes.
func parseNumber(s string) (float64, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseFloat(s, 64)
	if err == nil {
		// "NaN" and "Inf" parse, but no limit can judge them: a firmware
		// printing them fails the measurement.
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("%q is not a finite number", s)
		}
		return v, nil
	}
	if i, err2 := strconv.ParseInt(s, 0, 64); err2 == nil {
		return float64(i), nil
	}
	if u, err2 := strconv.ParseUint(s, 0, 64); err2 == nil {
		return float64(u), nil
	}
	return 0, err
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " " + u
}

func (e *engine) gpio(ctx context.Context, x *specs.GPIOStep) *stepErr {
	if x == nil {
		return infra(KindSpec, "gpio step without line")
	}
	line, ok := e.b.Lines[x.Line]
	if !ok {
		return infra(KindGPIO, "board %s has no line %q", e.b.Info.Name, x.Line)
	}
	what := fmt.Sprintf("line %s", x.Line)
	if x.For <= 0 {
		return e.operate(ctx, operation{what: fmt.Sprintf("set %s to %d", what, x.Set), kind: KindGPIO,
			fn: func(c context.Context) error { return line.Set(c, x.Set) }})
	}
	var prev int
	if se := e.operate(ctx, operation{what: "read " + what, kind: KindGPIO, fn: func(c context.Context) error {
		v, err := line.Value(c)
		prev = v
		return err
	}}); se != nil {
		return se
	}
	if se := e.operate(ctx, operation{what: fmt.Sprintf("set %s to %d", what, x.Set), kind: KindGPIO,
		fn: func(c context.Context) error { return line.Set(c, x.Set) }}); se != nil {
		return se
	}
	_, se, _ := e.await(ctx, awaitArgs{what: fmt.Sprintf("pulse %s for %s", what, x.For), within: x.For, sleep: true})
	// Put the line back even after a cancel.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.AbandonAfter)
	defer cancel()
	if err := e.call(rctx, func(c context.Context) error { return line.Set(c, prev) }); err != nil && se == nil {
		return infra(KindGPIO, "board %s: set %s back to %d: %v", e.b.Info.Name, what, prev, err)
	}
	return se
}

func (e *engine) tool(ctx context.Context, x *specs.ToolStep, sr *StepResult) *stepErr {
	if x == nil {
		return infra(KindSpec, "tool step without name")
	}
	if e.b.Tools == nil {
		return infra(KindTool, "board %s has no tools (tool %q)", e.b.Info.Name, x.Name)
	}
	args, err := x.ArgValues(&e.scope)
	if err != nil {
		return infra(KindSpec, "%v", err)
	}
	lw := newLogWriter(e, "tool "+x.Name)
	defer func() { sr.Output = lw.close() }()
	var stdout string
	se := e.operate(ctx, operation{what: "tool " + x.Name, kind: KindTool, timeout: x.Timeout,
		fn: func(c context.Context) error {
			out, err := e.b.Tools.RunTool(c, x.Name, args, e.job.Firmware, lw)
			stdout = out
			return err
		},
		classify: func(err error) *stepErr {
			var ee *exec.ExitError
			// A tool that ran and said no judged the device; one killed by a
			// signal (a crash, the OOM killer) is the rig's problem.
			if errors.As(err, &ee) && ee.Exited() && ee.ExitCode() > 0 {
				return failed(KindTool, "tool %s exited with status %d: %v", x.Name, ee.ExitCode(), err)
			}
			return infra(KindTool, "board %s: tool %s: %v", e.b.Info.Name, x.Name, err)
		}})
	if se != nil {
		return se
	}
	if x.Capture != "" {
		e.scope.Captures[x.Capture] = strings.TrimSpace(stdout)
	}
	return nil
}

// logWriter turns a board operation's output into Log events (one per
// line) and keeps its tail for the step result. Safe for concurrent use.
type logWriter struct {
	e      *engine
	source string
	mu     sync.Mutex
	part   []byte
	tail   *slice
}

func newLogWriter(e *engine, source string) *logWriter {
	return &logWriter{e: e, source: source, tail: newSlice(4 << 10)}
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tail.write(p)
	w.part = append(w.part, p...)
	for {
		i := strings.IndexByte(string(w.part), '\n')
		if i < 0 {
			break
		}
		w.e.emit(Log{Time: w.e.now(), Source: w.source, Line: strings.TrimRight(string(w.part[:i]), "\r")})
		w.part = w.part[i+1:]
	}
	if len(w.part) > 4<<10 {
		w.e.emit(Log{Time: w.e.now(), Source: w.source, Line: string(w.part)})
		w.part = nil
	}
	return len(p), nil
}

// close flushes a partial line and returns the tail of the output.
func (w *logWriter) close() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.part) > 0 {
		w.e.emit(Log{Time: w.e.now(), Source: w.source, Line: string(w.part)})
		w.part = nil
	}
	return w.tail.String()
}

// summarise decides the job's outcome and message.
func (e *engine) summarise(ctx context.Context, res *Result) {
	if res.Outcome == Error && res.Message != "" { // a runner panic
		return
	}
	o := Passed
	var msg string
	note := func(what string, t *TestResult) {
		if t == nil {
			return
		}
		if t.Outcome.rank() > o.rank() {
			o = t.Outcome
			msg = what + ": " + t.Message // whole: the console tail is the evidence
		}
	}
	note("setup", res.Setup)
	for i := range res.Tests {
		note("test "+strconv.Quote(res.Tests[i].Name), &res.Tests[i])
	}
	note("teardown", res.Teardown)
	if res.SafeStateError != "" && o.rank() < Error.rank() {
		o, msg = Error, res.SafeStateError
	}
	if ctx.Err() != nil && o != Cancelled {
		o, msg = Cancelled, "job cancelled"
	}
	res.Outcome, res.Message = o, msg
}

// summary describes a step in a few words, for progress and reports.
// summary describes a step with the values it uses: an expression with a
// template or a reference is shown evaluated in s (quoted, at most 200
// bytes), as written when it cannot be evaluated yet.
func summary(st specs.Step, s *specs.Scope) string {
	q := func(x *specs.Expr) string {
		if x == nil {
			return `""`
		}
		if s == nil || x.IsZero() || strings.HasPrefix(x.Source, `"`) && !strings.Contains(x.Source, "${") {
			return x.Source
		}
		v, err := x.String(s)
		if err != nil {
			return x.Source
		}
		if len(v) > 200 {
			v = strings.ToValidUTF8(v[:200], "") + "…"
		}
		return strconv.Quote(v)
	}
	switch st.Kind {
	case specs.StepPower:
		if st.Power != nil {
			return "power " + st.Power.Action
		}
	case specs.StepSend:
		if st.Send != nil {
			if st.Send.Line != nil {
				return "send line " + q(st.Send.Line)
			}
			return "send raw " + q(st.Send.Raw)
		}
	case specs.StepExpect:
		if st.Expect != nil {
			if st.Expect.Pattern.Text != nil {
				return "expect text " + q(st.Expect.Pattern.Text)
			}
			return "expect regex " + q(st.Expect.Pattern.Regex)
		}
	case specs.StepMeasure:
		if st.Measure != nil {
			return "measure " + st.Measure.Name
		}
	case specs.StepAssert:
		if st.Assert != nil {
			return "assert " + st.Assert.That.Source
		}
	case specs.StepGPIO:
		if st.GPIO != nil {
			if st.GPIO.For > 0 {
				return fmt.Sprintf("gpio %s pulse %d for %s", st.GPIO.Line, st.GPIO.Set, st.GPIO.For)
			}
			return fmt.Sprintf("gpio %s set %d", st.GPIO.Line, st.GPIO.Set)
		}
	case specs.StepWait:
		if st.Wait != nil {
			if st.Wait.GPIO != "" {
				return fmt.Sprintf("wait gpio %s = %d", st.Wait.GPIO, st.Wait.Value)
			}
			return "wait " + st.Wait.For.String()
		}
	case specs.StepTool:
		if st.Tool != nil {
			return "tool " + st.Tool.Name
		}
	}
	return string(st.Kind)
}
