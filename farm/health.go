package farm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/specs"
)

// HealthSubmitter is the submitter of the controller's own health-check
// jobs: their kind is store.KindHealthCheck.
const HealthSubmitter = store.HealthSubmitter

// jobSelector is what the scheduler matches a job against: the spec's
// selector, optionally pinned to one board (health checks). A pinned health
// check may run on a quarantined board: that is how quarantine is lifted.
type jobSelector struct {
	specs.Selector
	Board  string `json:"pin_board,omitempty"`
	Health bool   `json:"health,omitempty"`
}

// eligible reports whether slot s may take a job with selector sel.
func eligible(s *slot, sel jobSelector) bool {
	if sel.Board != "" && s.cfg.Name != sel.Board {
		return false
	}
	if !matches(s.cfg, sel.Selector) {
		return false
	}
	if s.state == BoardIdle {
		return true
	}
	return sel.Health && s.state == BoardQuarantined && s.job == "" && s.hold == nil
}

// noFirmware is the (empty) firmware of health-check jobs: they check the
// board with whatever it runs and must not flash.
var noFirmware = func() store.Firmware {
	sum := sha256.Sum256(nil)
	return store.Firmware{SHA256: hex.EncodeToString(sum[:]), Name: "(health check: no candidate)"}
}()

// healthLoop queues the board type's health check on quarantined boards
// every QuarantineCheckEvery and on idle boards every HealthEvery, one at a
// time per board.
func (c *Controller) healthLoop(ctx context.Context) {
	if c.cfg.HealthEvery < 0 && c.cfg.QuarantineCheckEvery < 0 {
		return
	}
	tick := c.cfg.QuarantineCheckEvery
	if c.cfg.HealthEvery > 0 && c.cfg.HealthEvery < tick {
		tick = c.cfg.HealthEvery
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		c.healthDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// healthDue queues health checks that are due.
func (c *Controller) healthDue(ctx context.Context) {
	now := c.now()
	type due struct{ board, spec string }
	var todo []due
	c.mu.Lock()
	for _, n := range c.names {
		s := c.slots[n]
		if s.typ.HealthCheck == "" || s.healthJob != "" || s.handle == nil {
			continue
		}
		every := c.cfg.HealthEvery
		if s.state == BoardQuarantined {
			every = c.cfg.QuarantineCheckEvery
		} else if s.state != BoardIdle {
			continue
		}
		if every <= 0 || now.Sub(s.lastHealth) < every {
			continue
		}
		todo = append(todo, due{n, s.typ.HealthCheck})
	}
	c.mu.Unlock()
	for _, d := range todo {
		if _, err := c.SubmitHealthCheck(ctx, d.board); err != nil {
			c.log.Error("health check not queued", "board", d.board, "err", err)
		}
	}
}

// SubmitHealthCheck queues the board type's health check on one board now.
func (c *Controller) SubmitHealthCheck(ctx context.Context, board string) (*JobView, error) {
	c.mu.Lock()
	s, ok := c.slots[board]
	if !ok {
		c.mu.Unlock()
		return nil, fmt.Errorf("board %s: %w", board, store.ErrNotFound)
	}
	path := s.typ.HealthCheck
	if path == "" {
		c.mu.Unlock()
		return nil, fmt.Errorf("board %s: its type %s has no health_check", board, s.cfg.Type)
	}
	if s.healthJob != "" {
		id := s.healthJob
		c.mu.Unlock()
		return c.Job(ctx, id)
	}
	s.lastHealth = c.now()
	c.mu.Unlock()
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(c.cfg.Farm.Filename), path)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("board %s: health check: %w", board, err)
	}
	spec, diags := specs.ParseSpec(src, filepath.Base(path), specs.SpecOptions{Farm: c.cfg.Farm})
	if diags.HasErrors() {
		return nil, fmt.Errorf("board %s: health check %s: %w", board, path, diags.Err())
	}
	if err := os.WriteFile(c.firmwarePath(noFirmware.SHA256), nil, 0o640); err != nil {
		return nil, err
	}
	if err := c.db.PutFirmware(ctx, noFirmware, c.now()); err != nil {
		return nil, err
	}
	sel, _ := json.Marshal(jobSelector{Selector: spec.Board, Board: board, Health: true})
	j := &store.Job{ID: newJobID(c.now()), SpecName: spec.Name, SpecSrc: src, SpecFilename: filepath.Base(path),
		Firmware: noFirmware, Selector: sel, Priority: 1000, Submitter: HealthSubmitter, Created: c.now(),
		Labels: map[string]string{"health-check": board}}
	if err := c.db.InsertJob(ctx, j); err != nil {
		return nil, err
	}
	c.mu.Lock()
	s.healthJob = j.ID
	c.mu.Unlock()
	c.publishState(j, 0, "")
	c.poke()
	return c.Job(ctx, j.ID)
}

// healthOutcome applies a finished health check to its board: a pass lifts
// a quarantine; a failure or error quarantines the board.
func (c *Controller) healthOutcome(ctx context.Context, board string, j *store.Job) {
	c.mu.Lock()
	s := c.slots[board]
	if s.healthJob == j.ID {
		s.healthJob = ""
	}
	var persist *store.BoardState
	switch j.State {
	case store.StateCancelled:
		// forgotten above; the board keeps its state
	case store.StatePassed:
		if s.admin == BoardQuarantined {
			c.log.Info("health check passed: quarantine lifted", "board", board)
			c.history(board, "quarantine-lifted", "health check "+j.ID+" passed")
			s.admin, s.adminReason = "", ""
		}
		s.infraInRow = 0
		s.healthFailed = false
		persist = &store.BoardState{Name: board, State: BoardIdle, Since: c.now()}
	case store.StateFailed, store.StateError:
		if j.Reason == errShutdown.Error() || strings.HasSuffix(j.Reason, ": "+errShutdown.Error()) {
			break // the controller stopped it: says nothing about the board
		}
		s.healthFailed = true
		if s.admin == "" || s.admin == BoardQuarantined {
			s.admin = BoardQuarantined
			s.adminReason = fmt.Sprintf("health check %s %s: %s", j.ID, j.State, j.Reason)
			c.history(board, "quarantined", s.adminReason)
			persist = &store.BoardState{Name: board, State: BoardQuarantined, Reason: s.adminReason, Since: c.now(), InfraErrorsInARow: s.infraInRow}
		}
	}
	if s.job == "" {
		c.settle(s)
	}
	c.mu.Unlock()
	if persist != nil {
		if err := c.db.SetBoardState(context.WithoutCancel(ctx), *persist); err != nil {
			c.log.Error("persisting board state", "board", board, "err", err)
		}
	}
	c.poke()
}
