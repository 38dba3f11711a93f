package farm

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync/atomic"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// slot is one board as the controller tracks it. Guarded by Controller.mu.
type slot struct {
	cfg    specs.Board
	typ    specs.BoardType
	handle BoardHandle // nil while the board could not be opened
	rec    *Recorder

	state  string
	reason string
	since  time.Time
	job    string // job id while leased
	hold   *hold  // a person's manual lease

	healthJob  string    // queued or running health check
	lastHealth time.Time // when the last health check was queued
	// healthFailed: the board's last health check failed (verdicts.go:
	// such a board's errors are never the candidate's).
	healthFailed bool
	// admin is the operator-set state (maintenance) that outlives leases
	// and console loss; "" when none.
	admin       string
	adminReason string

	infraInRow  int
	infraErrors int64
	powerCycles atomic.Int64
	recent      []string // outcomes of the last attempts, newest last (health)
	flags       map[string]string

	onChange func() // the controller's change notification
}

const healthWindow = 20

// health is the share of recent attempts that did not end in an
// infrastructure error (1 with no history).
func (s *slot) health() float64 {
	if len(s.recent) == 0 {
		return 1
	}
	bad := 0
	for _, o := range s.recent {
		if o == store.StateError {
			bad++
		}
	}
	return 1 - float64(bad)/float64(len(s.recent))
}

func (s *slot) setState(state, reason string, now time.Time) {
	if s.state == state && s.reason == reason {
		return
	}
	s.state, s.reason, s.since = state, reason, now
	if s.onChange != nil {
		s.onChange()
	}
}

// openBoards opens every board and starts its recorder. A board that
// cannot be opened stays offline and is retried by reopenLoop.
func (c *Controller) openBoards(ctx context.Context, persisted map[string]store.BoardState) {
	for _, name := range c.names {
		s := c.slots[name]
		if p, ok := persisted[name]; ok {
			switch p.State {
			case BoardMaintenance, BoardQuarantined:
				s.admin, s.adminReason = p.State, p.Reason
			}
			s.infraInRow = p.InfraErrorsInARow
		}
		c.openSlot(ctx, s)
	}
}

func (c *Controller) openSlot(ctx context.Context, s *slot) {
	start, err := c.db.LogEnd(ctx, s.cfg.Name)
	if err != nil {
		c.log.Error("board offline: reading its console log", "board", s.cfg.Name, "err", err)
		c.mu.Lock()
		s.setState(BoardOffline, err.Error(), c.now())
		c.mu.Unlock()
		return
	}
	h, err := c.cfg.OpenBoard(ctx, s.cfg)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		// Logged once, and again when the reason changes: reopenLoop
		// retries every interval, and an absent board stays absent.
		if s.state == BoardOffline && s.reason == err.Error() {
			c.log.Debug("board still offline: cannot open its fixtures", "board", s.cfg.Name, "err", err)
		} else {
			c.log.Error("board offline: cannot open its fixtures (retried quietly until it changes)", "board", s.cfg.Name, "err", err)
		}
		s.setState(BoardOffline, err.Error(), c.now())
		return
	}
	if s.state == BoardOffline && s.reason != "" && s.reason != "not opened yet" {
		c.log.Info("board opened after being offline", "board", s.cfg.Name, "was", s.reason)
	}
	s.handle = h
	name := s.cfg.Name
	ro := c.cfg.Recorder
	ro.Logger = c.log
	ro.OnLost = func(lost bool) { c.consoleChanged(name, lost) }
	ro.Start = start
	s.rec = NewRecorder(name, h.ConsoleSource(), diskSink{c}, ro)
	c.rec.Add(1)
	go func() {
		defer c.rec.Done()
		s.rec.Run(context.WithoutCancel(ctx))
	}()
	c.settle(s)
}

// settle derives a free board's state from its admin state and its console.
// Called with c.mu held.
func (c *Controller) settle(s *slot) {
	now := c.now()
	switch {
	case s.job != "":
		s.setState(BoardLeased, "job "+s.job, now)
	case s.hold != nil:
		s.setState(BoardLeased, holdReason(s.hold), now)
	case s.handle == nil:
		// keep offline with its open error
	case s.rec != nil && s.rec.Lost():
		s.setState(BoardOffline, "console port is gone", now)
	case s.admin != "":
		s.setState(s.admin, s.adminReason, now)
	default:
		s.setState(BoardIdle, "", now)
	}
}

func (c *Controller) consoleChanged(name string, lost bool) {
	c.mu.Lock()
	s := c.slots[name]
	if s.job == "" {
		c.settle(s)
	}
	c.mu.Unlock()
	if lost {
		c.log.Warn("console port gone; board offline until it returns", "board", name)
		c.history(name, "console-lost", "the console port vanished")
	} else {
		c.log.Info("console port back", "board", name)
		c.history(name, "console-back", "")
		c.poke()
	}
}

// history records an automatic change of a board (quarantine, console
// lost and back, ...) in the audit log with actor "hilfarm", next to what
// operators did, so a board's page shows its whole story. The write runs
// in the background: callers include the console recorder, which must
// never wait for the store.
func (c *Controller) history(board, action, detail string) {
	rec := store.AuditRecord{At: c.now(), Actor: "hilfarm", Action: action, Target: board, Detail: detail}
	c.hooks.Add(1)
	go func() {
		defer c.hooks.Done()
		if err := c.db.Audit(context.Background(), rec); err != nil {
			c.log.Error("recording board history", "board", board, "action", action, "err", err)
		}
	}()
}

// reopenLoop retries boards whose fixtures failed to open.
func (c *Controller) reopenLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.ReopenEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		var todo []*slot
		for _, n := range c.names {
			if s := c.slots[n]; s.handle == nil {
				todo = append(todo, s)
			}
		}
		c.mu.Unlock()
		for _, s := range todo {
			c.openSlot(ctx, s)
			c.poke()
		}
	}
}

// closeBoards puts every board in its safe state and closes it; the
// recorders end when their consoles close.
func (c *Controller) closeBoards() {
	c.mu.Lock()
	slots := make([]*slot, 0, len(c.names))
	for _, n := range c.names {
		slots = append(slots, c.slots[n])
	}
	c.mu.Unlock()
	for _, s := range slots {
		if s.handle == nil {
			continue
		}
		if err := s.handle.Close(); err != nil {
			c.log.Error("board close", "board", s.cfg.Name, "err", err)
		}
	}
}

// matches reports whether board b satisfies sel.
func matches(b specs.Board, sel specs.Selector) bool {
	if sel.Type != "" && b.Type != sel.Type {
		return false
	}
	for k, v := range sel.Tags {
		if b.Tags[k] != v {
			return false
		}
	}
	return true
}

// matching lists the boards that satisfy sel; with idleOnly, only idle ones.
func (c *Controller) matching(sel specs.Selector, idleOnly bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.names {
		s := c.slots[n]
		if matches(s.cfg, sel) && (!idleOnly || s.state == BoardIdle) {
			out = append(out, n)
		}
	}
	return out
}

// BoardView is a board as the API shows it.
type BoardView struct {
	Name   string            `json:"name"`
	Type   string            `json:"type"`
	Tags   map[string]string `json:"tags,omitempty"`
	State  string            `json:"state"`
	Reason string            `json:"reason,omitempty"`
	Since  time.Time         `json:"since"`
	Job    string            `json:"job,omitempty"`
	Health float64           `json:"health"`
	// Flags are warnings about the board, e.g. "flaky-board" when it
	// failed a candidate that passed on its siblings.
	Flags    []string `json:"flags,omitempty"`
	Emulated bool     `json:"emulated"`
	// Holder is who holds the board by hand (a manual lease), until HeldUntil.
	Holder    string    `json:"holder,omitempty"`
	HeldUntil time.Time `json:"held_until,omitzero"`
	// HealthAttempts and HealthErrors are the inputs of Health: the recent
	// attempts counted and how many ended in an infrastructure error.
	HealthAttempts int `json:"health_attempts"`
	HealthErrors   int `json:"health_errors"`
	// Rack is set on a board of a rack behind this hub (hubjobs.go); its
	// Name is then RACK/BOARD.
	Rack string `json:"rack,omitempty"`
}

func (c *Controller) view(s *slot) BoardView {
	v := BoardView{Name: s.cfg.Name, Type: s.cfg.Type, Tags: s.cfg.Tags, State: s.state, Reason: s.reason,
		Since: s.since, Job: s.job, Health: s.health(), Emulated: s.cfg.Emulator != nil}
	if s.hold != nil {
		v.Holder, v.HeldUntil = s.hold.actor, s.hold.until
	}
	v.HealthAttempts = len(s.recent)
	for _, o := range s.recent {
		if o == store.StateError {
			v.HealthErrors++
		}
	}
	for k, d := range s.flags {
		v.Flags = append(v.Flags, k+": "+d)
	}
	sort.Strings(v.Flags)
	return v
}

// Boards lists every board in farm.hcl order.
func (c *Controller) Boards() []BoardView {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]BoardView, 0, len(c.names))
	for _, n := range c.names {
		out = append(out, c.view(c.slots[n]))
	}
	return out
}

// Board returns one board.
func (c *Controller) Board(name string) (BoardView, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.slots[name]
	if !ok {
		return BoardView{}, fmt.Errorf("board %s: %w", name, store.ErrNotFound)
	}
	return c.view(s), nil
}

// SetMaintenance puts a board into maintenance (on) or takes it out (off,
// which also lifts a quarantine). A leased board finishes its job first.
func (c *Controller) SetMaintenance(ctx context.Context, name string, on bool, reason, actor string) error {
	c.mu.Lock()
	s, ok := c.slots[name]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("board %s: %w", name, store.ErrNotFound)
	}
	if on {
		if reason == "" {
			reason = "maintenance"
		}
		s.admin, s.adminReason = BoardMaintenance, reason+" (by "+actor+")"
	} else {
		s.admin, s.adminReason = "", ""
		s.infraInRow = 0
	}
	if s.job == "" {
		c.settle(s)
	}
	bs := store.BoardState{Name: name, State: s.admin, Reason: s.adminReason, Since: c.now(), InfraErrorsInARow: s.infraInRow}
	c.mu.Unlock()
	if bs.State == "" {
		bs.State = BoardIdle
	}
	if err := c.db.SetBoardState(ctx, bs); err != nil {
		return err
	}
	action := "maintenance-off"
	if on {
		action = "maintenance-on"
	}
	if err := c.db.Audit(ctx, store.AuditRecord{At: c.now(), Actor: actor, Action: action, Target: name, Detail: reason}); err != nil {
		return err
	}
	c.poke()
	return nil
}

// WatchBoard returns a board console's recent history and a live viewer.
// stop releases the viewer (idempotent).
func (c *Controller) WatchBoard(name string) ([]store.LogRecord, *Viewer, func(), error) {
	c.mu.Lock()
	s, ok := c.slots[name]
	var rec *Recorder
	if ok {
		rec = s.rec
	}
	c.mu.Unlock()
	if !ok {
		return nil, nil, nil, fmt.Errorf("board %s: %w", name, store.ErrNotFound)
	}
	if rec == nil {
		return nil, nil, nil, fmt.Errorf("board %s is offline: %s", name, s.reason)
	}
	hist, v := rec.Watch()
	return hist, v, func() { rec.Unwatch(v) }, nil
}

// markedPower records power markers in the board's log and counts cycles.
type markedPower struct {
	runner.Power
	s *slot
}

func (p markedPower) On(ctx context.Context) error {
	err := p.Power.On(ctx)
	if err == nil {
		p.s.rec.Mark(MarkPowerOn, "")
	}
	return err
}

func (p markedPower) Off(ctx context.Context) error {
	err := p.Power.Off(ctx)
	if err == nil {
		p.s.rec.Mark(MarkPowerOff, "")
	}
	return err
}

func (p markedPower) Cycle(ctx context.Context, offFor time.Duration) error {
	p.s.rec.Mark(MarkPowerOff, "cycle")
	err := p.Power.Cycle(ctx, offFor)
	if err == nil {
		p.s.powerCycles.Add(1)
		p.s.rec.Mark(MarkPowerOn, "cycle")
	}
	return err
}

// markedFlasher records flash markers in the board's log.
type markedFlasher struct {
	runner.Flasher
	s *slot
}

func (f markedFlasher) Flash(ctx context.Context, fw specs.Firmware, log io.Writer) error {
	f.s.rec.Mark(MarkFlashStart, fw.SHA256)
	err := f.Flasher.Flash(ctx, fw, log)
	detail := "ok"
	if err != nil {
		detail = err.Error()
	}
	f.s.rec.Mark(MarkFlashEnd, detail)
	return err
}
