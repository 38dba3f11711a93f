package runner

import (
	"bytes"
	"context"
	"errors"
	"time"
)

// This file is the engine's direct read path: when the board's console is a
// ConsoleReader, the runner's own goroutine reads it, waiting for the
// console, the step's bounds, the context and a board operation's end in
// one blocking read (the console is woken by context.AfterFunc and by the
// operation's goroutine). No goroutine hands chunks to the engine.

// pulled handles the result of one ReadEvent: an event, or io.EOF (the
// console closed).
func (e *engine) pulled(ev ConsoleEvent, err error) {
	if err != nil {
		if !errors.Is(err, ErrNoEvent) {
			e.closeConsole()
			e.settle() // no byte will come to change a tentative match
		}
		return
	}
	if ev.Kind == ConsoleData && e.opts.Events != nil && !e.stableData {
		ev.Data = bytes.Clone(ev.Data) // the sink may keep it; the read buffer is reused
	}
	e.handle(ev)
	switch {
	case e.closed:
		e.settle() // no byte will come to change a tentative match
	case e.unsearched > 0:
		e.search()
	}
}

// awaitPull is await's loop for a ConsoleReader (see await): the same
// decisions, with the timers as deadlines of one blocking read.
func (e *engine) awaitPull(ctx context.Context, a awaitArgs, t0 time.Time) (mt *match, se *stepErr, opErr error) {
	stop := context.AfterFunc(ctx, e.reader.Wake)
	defer stop()
	var withinAt, settleAt time.Time
	if a.within > 0 {
		withinAt = t0.Add(a.within)
	}
	armSettle := func() {
		settleAt = time.Time{}
		if e.undecided {
			settleAt = time.Now().Add(e.settleTime()) // quiet counts from the last bytes
		}
	}
	armSettle()
	idle := e.spec.IdleTimeout
	useIdle := a.expect != nil && idle > 0
	for {
		if e.interrupted && ctx.Err() == nil && !e.stop.at.IsZero() && !time.Now().Before(e.stop.at) {
			mt, se := e.withinOver(ctx, a, t0)
			return mt, se, nil
		}
		if ctx.Err() != nil {
			return nil, e.ctxErr(ctx, a.what, a.done != nil), nil
		}
		select {
		case err := <-a.done:
			return nil, nil, err
		default:
		}
		now := time.Now()
		if !settleAt.IsZero() && !now.Before(settleAt) {
			settleAt = time.Time{}
			if mt, se, ok := e.settled(a); ok {
				return mt, se, nil
			}
		}
		if !withinAt.IsZero() && !now.Before(withinAt) {
			mt, se := e.withinOver(ctx, a, t0)
			return mt, se, nil
		}
		deadline := withinAt
		earlier := func(t time.Time) {
			if !t.IsZero() && (deadline.IsZero() || t.Before(deadline)) {
				deadline = t
			}
		}
		earlier(settleAt)
		if useIdle && e.lost == nil {
			quiet := now.Sub(later(e.lastByte, t0))
			if quiet >= idle {
				mt, se := e.idleOver(a, quiet)
				return mt, se, nil
			}
			earlier(later(e.lastByte, t0).Add(idle))
		}
		if e.closed {
			if a.expect != nil {
				return nil, infra(KindConsole, "console closed during %s", a.what), nil
			}
			if se, done, err := e.sleepUntil(ctx, a, deadline); done {
				return nil, se, err
			}
			continue
		}
		ev, err := e.reader.ReadEvent(e.rbuf, deadline)
		if errors.Is(err, ErrNoEvent) {
			continue
		}
		e.lostNow = false
		e.pulled(ev, err)
		if e.interrupted {
			continue
		}
		if mt, se, ok := e.afterEvent(a); ok {
			return mt, se, nil
		}
		armSettle()
	}
}

// sleepUntil waits, with no console to read, for the deadline, the
// context or the operation. done reports that the step ended (with se and
// err); otherwise the caller's loop decides.
func (e *engine) sleepUntil(ctx context.Context, a awaitArgs, deadline time.Time) (se *stepErr, done bool, err error) {
	var tc <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-ctx.Done():
		return e.ctxErr(ctx, a.what, a.done != nil), true, nil
	case err := <-a.done:
		return nil, true, err
	case <-tc:
		return nil, false, nil
	}
}
