package farm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

// Errors of manual holds.
var (
	// ErrBoardBusy: the board is running a job or held by someone else (409).
	ErrBoardBusy = errors.New("board is busy")
	// ErrNotHolder: only the holder of a board may type into its console or switch its power (403).
	ErrNotHolder = errors.New("not the holder of this board")
)

// MaxHold bounds a manual hold.
const MaxHold = 24 * time.Hour

// hold is a person's manual lease of a board. Guarded by Controller.mu.
type hold struct {
	actor   string
	reason  string
	until   time.Time
	timer   *time.Timer
	console *JobConsole // the holder's typing path (the recorder keeps recording)
}

// Hold leases a board to a person for d (at most MaxHold) so they can work
// on its console; everyone else only watches. The board must be idle, in
// maintenance or quarantined (holding a board to debug it is what those
// states are for). The hold ends with Release or when d runs out; then the
// board goes back to its safe state.
func (c *Controller) Hold(ctx context.Context, name, actor string, d time.Duration, reason string) (BoardView, error) {
	if d <= 0 || d > MaxHold {
		return BoardView{}, fmt.Errorf("hold duration %s: must be between 0 and %s", d, MaxHold)
	}
	if reason == "" {
		return BoardView{}, errors.New("a hold needs a reason (others see it)")
	}
	c.mu.Lock()
	s, ok := c.slots[name]
	if !ok {
		c.mu.Unlock()
		return BoardView{}, fmt.Errorf("board %s: %w", name, store.ErrNotFound)
	}
	switch {
	case s.hold != nil && s.hold.actor == actor: // extend
		s.hold.until = c.now().Add(d)
		s.hold.timer.Reset(d)
		s.hold.reason = reason
		s.setState(BoardLeased, holdReason(s.hold), c.now())
		v := c.view(s)
		c.mu.Unlock()
		return v, c.db.Audit(ctx, store.AuditRecord{At: c.now(), Actor: actor, Action: "hold-extend", Target: name, Detail: reason})
	case s.hold != nil:
		c.mu.Unlock()
		return BoardView{}, fmt.Errorf("board %s is held by %s until %s: %w", name, s.hold.actor, s.hold.until.Format(time.RFC3339), ErrBoardBusy)
	case s.job != "":
		c.mu.Unlock()
		return BoardView{}, fmt.Errorf("board %s is running job %s: %w", name, s.job, ErrBoardBusy)
	case s.rec == nil || s.state == BoardOffline:
		c.mu.Unlock()
		return BoardView{}, fmt.Errorf("board %s is offline (%s): %w", name, s.reason, ErrBoardBusy)
	}
	jc, _, err := s.rec.Attach()
	if err != nil {
		c.mu.Unlock()
		return BoardView{}, fmt.Errorf("board %s: %w", name, err)
	}
	// The holder's console view only types; drain what it receives.
	go func() {
		for range jc.Events() {
		}
	}()
	h := &hold{actor: actor, reason: reason, until: c.now().Add(d), console: jc}
	h.timer = time.AfterFunc(d, func() { c.expireHold(name, h) })
	s.hold = h
	s.setState(BoardLeased, holdReason(h), c.now())
	v := c.view(s)
	c.mu.Unlock()
	s.rec.Mark("hold", actor+": "+reason)
	return v, c.db.Audit(ctx, store.AuditRecord{At: c.now(), Actor: actor, Action: "hold", Target: name, Detail: fmt.Sprintf("%s for %s", reason, d)})
}

func holdReason(h *hold) string {
	return fmt.Sprintf("held by %s until %s: %s", h.actor, h.until.UTC().Format(time.RFC3339), h.reason)
}

// Release ends a hold early. Only the holder or an admin (force) may.
func (c *Controller) Release(ctx context.Context, name, actor string, force bool) error {
	c.mu.Lock()
	s, ok := c.slots[name]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("board %s: %w", name, store.ErrNotFound)
	}
	h := s.hold
	if h == nil {
		c.mu.Unlock()
		return fmt.Errorf("board %s is not held: %w", name, ErrBoardBusy)
	}
	if h.actor != actor && !force {
		c.mu.Unlock()
		return fmt.Errorf("board %s is held by %s: %w", name, h.actor, ErrNotHolder)
	}
	c.mu.Unlock()
	c.endHold(ctx, name, h, "released by "+actor)
	return c.db.Audit(ctx, store.AuditRecord{At: c.now(), Actor: actor, Action: "release", Target: name})
}

func (c *Controller) expireHold(name string, h *hold) {
	c.endHold(context.Background(), name, h, "hold expired")
}

// endHold ends hold h (if still current): safe state, state settled, queue woken.
func (c *Controller) endHold(ctx context.Context, name string, h *hold, why string) {
	c.mu.Lock()
	s := c.slots[name]
	if s.hold != h {
		c.mu.Unlock()
		return
	}
	s.hold = nil
	h.timer.Stop()
	c.mu.Unlock()
	h.console.Close()
	if s.rec != nil {
		s.rec.Mark("release", why)
	}
	if err := s.handle.SafeState(ctx); err != nil {
		c.log.Error("safe state after a hold", "board", name, "err", err)
	}
	c.mu.Lock()
	c.settle(s)
	c.mu.Unlock()
	c.poke()
}

// HolderOf returns who holds a board ("" when nobody does).
func (c *Controller) HolderOf(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.slots[name]; ok && s.hold != nil {
		return s.hold.actor
	}
	return ""
}

// heldBy returns the slot and hold of a board that actor holds.
func (c *Controller) heldBy(name, actor string) (*slot, *hold, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.slots[name]
	if !ok {
		return nil, nil, fmt.Errorf("board %s: %w", name, store.ErrNotFound)
	}
	if s.hold == nil || s.hold.actor != actor {
		return nil, nil, fmt.Errorf("board %s: %w", name, ErrNotHolder)
	}
	return s, s.hold, nil
}

// TypeInto writes p to a held board's console on behalf of actor, who must
// be its holder.
func (c *Controller) TypeInto(ctx context.Context, name, actor string, p []byte) error {
	_, h, err := c.heldBy(name, actor)
	if err != nil {
		return err
	}
	return h.console.Write(ctx, p)
}

// HeldPower switches a held board's power for its holder: "on", "off" or "cycle".
func (c *Controller) HeldPower(ctx context.Context, name, actor, action string) error {
	s, _, err := c.heldBy(name, actor)
	if err != nil {
		return err
	}
	p := markedPower{Power: s.handle.Runner().Power, s: s}
	switch action {
	case "on":
		err = p.On(ctx)
	case "off":
		err = p.Off(ctx)
	case "cycle":
		err = p.Cycle(ctx, 0)
	default:
		return fmt.Errorf("power action %q: want on, off or cycle", action)
	}
	if err != nil {
		return fmt.Errorf("board %s: power %s: %w", name, action, err)
	}
	return c.db.Audit(ctx, store.AuditRecord{At: c.now(), Actor: actor, Action: "power-" + action, Target: name})
}
