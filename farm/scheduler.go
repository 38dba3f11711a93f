package farm

import (
	"context"
	"encoding/json"
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
	for _, j := range queue {
		if idle == 0 {
			return
		}
		var sel jobSelector
		if err := json.Unmarshal(j.Selector, &sel); err != nil {
			c.log.Error("scheduler: bad selector", "job", j.ID, "err", err)
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
				if a.State == store.StateError {
					avoid[a.Board] = true
				}
			}
		}
		c.mu.Lock()
		if c.running[j.ID] != nil { // still finishing its previous attempt
			c.mu.Unlock()
			continue
		}
		var pick, fallback *slot
		untried := false
		for _, n := range c.names {
			s := c.slots[n]
			if !matches(s.cfg, sel.Selector) || (sel.Board != "" && sel.Board != n) {
				continue
			}
			if !avoid[n] {
				untried = true
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
		if pick == nil && !untried {
			pick = fallback // every matching board failed it once: any will do
		}
		if pick != nil {
			c.lease(ctx, j, pick)
			idle--
		}
		c.mu.Unlock()
	}
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
