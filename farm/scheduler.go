package farm

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

// scheduleLoop serves the queue whenever something happens that could let
// a job start: a submission, a board freed, a board back online or out of
// maintenance. There is no polling: between events it sleeps.
func (c *Controller) scheduleLoop(ctx context.Context) {
	for {
		c.schedule(ctx)
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
	}
}

// schedule leases idle boards to queued jobs in queue order (priority, then
// first come first served). A job that already had an infrastructure error
// on a board goes to a different matching board when the farm has one.
func (c *Controller) schedule(ctx context.Context) {
	if c.disk.Full() { // no job starts on a full disk; its probe pokes when space returns
		return
	}
	c.mu.Lock()
	idle := 0 // boards that could take a job (quarantined ones take health checks)
	for _, n := range c.names {
		if st := c.slots[n].state; st == BoardIdle || st == BoardQuarantined {
			idle++
		}
	}
	c.mu.Unlock()
	if idle == 0 {
		return
	}
	queue, err := c.db.Queue(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("scheduler: reading the queue", "err", err)
		}
		return
	}
	spreads, err := c.db.QueuedSpreads(ctx)
	if err != nil {
		c.log.Error("scheduler: reading the spread jobs", "err", err)
	}
	for _, j := range queue {
		if idle == 0 {
			return
		}
		var sel jobSelector
		if err := json.Unmarshal(j.Selector, &sel); err != nil {
			c.log.Error("scheduler: bad selector", "job", j.ID, "err", err)
			continue
		}
		if n := spreads[j.ID]; n > 1 && c.splitSpread(ctx, j, sel, n) { // campaign.go
			continue
		}
		avoid := map[string]bool{}
		if j.Attempts > 0 {
			atts, err := c.db.Attempts(ctx, j.ID)
			if err != nil {
				c.log.Error("scheduler: attempts", "job", j.ID, "err", err)
				continue
			}
			for _, a := range atts {
				// A controller restart or shutdown is never the board's fault.
				if a.State == store.StateError && !notBoardsFault(a.Reason) {
					avoid[a.Board] = true
				}
			}
		}
		c.mu.Lock()
		if c.running[j.ID] != nil { // still finishing its previous attempt
			c.mu.Unlock()
			continue
		}
		pick := c.pickBoard(sel, avoid)
		if pick != nil {
			c.lease(ctx, j, pick)
			idle--
		}
		c.mu.Unlock()
	}
}

// pickBoard chooses the board for a job, or nil to let it wait. A job goes
// to a board it has not failed on (avoid) when one is free now; it waits
// when such a board is busy with a job now and will be free soon; when no
// board it has not failed on can run it now or soon (they are in
// maintenance, offline, quarantined or held), it goes back to a board it
// failed on rather than waiting forever. Called with c.mu held.
func (c *Controller) pickBoard(sel jobSelector, avoid map[string]bool) *slot {
	var pick, fallback *slot
	soon := false
	for _, n := range c.names {
		s := c.slots[n]
		if !matches(s.cfg, sel.Selector) || (sel.Board != "" && sel.Board != n) {
			continue
		}
		if !avoid[n] && runsSoon(s) {
			soon = true
		}
		if !eligible(s, sel) {
			continue
		}
		if avoid[n] {
			if fallback == nil {
				fallback = s
			}
			continue
		}
		if pick == nil {
			pick = s
		}
	}
	if pick == nil && !soon {
		pick = fallback
	}
	return pick
}

// runsSoon reports whether a board can take a job now or once the job it
// runs ends: it is idle, or leased to a job and not headed for
// maintenance or quarantine. Boards in maintenance, offline, quarantined
// or held by a person are not counted on.
func runsSoon(s *slot) bool {
	switch s.state {
	case BoardIdle:
		return true
	case BoardLeased:
		return s.job != "" && s.hold == nil && s.admin == "" && s.handle != nil
	}
	return false
}

// notBoardsFault reports whether an attempt's error reason is the
// controller's own (a restart or a shutdown), which says nothing about the
// board it ran on.
func notBoardsFault(reason string) bool {
	return reason == reasonRestarted || strings.HasPrefix(reason, reasonRestartedTwice) ||
		reason == errShutdown.Error() || strings.HasSuffix(reason, ": "+errShutdown.Error())
}

// lease gives board s to job j and starts it. Called with c.mu held.
func (c *Controller) lease(ctx context.Context, j *store.Job, s *slot) {
	s.job = j.ID
	s.setState(BoardLeased, "job "+j.ID, c.now())
	// Only the controller ends a job early (a cancel, or shutdown with
	// errShutdown), never its parent context: the cause says which.
	jobCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	a := &activeJob{job: j, slot: s, cancel: cancel, done: make(chan struct{}), started: time.Now()}
	c.running[j.ID] = a
	c.jobs.Add(1)
	go func() {
		defer c.jobs.Done()
		defer close(a.done)
		c.runJob(jobCtx, a)
	}()
}
