package farm

import (
	"context"
	"fmt"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
)

// Attribution: who an attempt's error belongs to (docs/verdicts.md).
//
//   - An error that follows the candidate is the candidate's: when the same
//     step errors on a second board, and both boards' health checks pass
//     (neither is quarantined nor failed its last health check), the job
//     ends failed and neither board's health changes.
//   - An error that stays with a board is the board's: when the next attempt
//     of the job passes, fails, or errors differently, the board the error
//     happened on is charged with it (health, infrastructure errors in a row,
//     quarantine).
//   - A controller restart or shutdown is nobody's fault: no board is
//     charged and the scheduler does not avoid the board.
//
// Until the next attempt of the job settles it, an error is pending: the
// board is not charged yet. Pending errors live in memory; a restart drops
// them (the board is then not charged).

// Reasons the controller gives for ending attempts itself.
const (
	// reasonRestarted ends the attempts a controller restart cut short.
	reasonRestarted = "controller restarted"
	// reasonRestartedTwice starts the reason of a job that is not retried
	// because controller restarts cut its attempts short twice.
	reasonRestartedTwice = "not retried: controller restarts cut its attempts short twice"
	// maxRestartCuts is how many attempts of one job a controller restart
	// may cut short before the job ends as error (a poison job).
	maxRestartCuts = 2
)

// pendingError is an attempt's error not yet charged to its board.
type pendingError struct {
	board  string
	n      int
	step   string // failingStep of the attempt
	reason string
}

// afterRestart decides, for each attempt a controller restart cut short,
// whether its job runs again: not when this is the second attempt a
// restart cut short (the job may be what crashes the controller), nor when
// it has used its attempts.
func (c *Controller) afterRestart(ctx context.Context) func(jobID string, attempts int) (bool, string) {
	return func(jobID string, attempts int) (bool, string) {
		cuts, err := c.db.AttemptsEndedWith(ctx, jobID, reasonRestarted)
		if err != nil {
			c.log.Error("counting restarts of an interrupted job", "job", jobID, "err", err)
		}
		cuts++ // this one
		if cuts >= maxRestartCuts {
			return false, fmt.Sprintf("%s (%d of %d attempts); the job may be what stops the controller", reasonRestartedTwice, cuts, attempts)
		}
		if attempts >= c.cfg.MaxAttempts {
			return false, reasonRestarted
		}
		return true, ""
	}
}

// failingStep names the first step that ended in error in a result, as
// "test/step N (summary)/kind"; "" when there is none.
func failingStep(res *runner.Result) string {
	if res == nil {
		return ""
	}
	var blocks []*runner.TestResult
	if res.Setup != nil {
		blocks = append(blocks, res.Setup)
	}
	for i := range res.Tests {
		blocks = append(blocks, &res.Tests[i])
	}
	if res.Teardown != nil {
		blocks = append(blocks, res.Teardown)
	}
	for _, t := range blocks {
		if t.Outcome != runner.Error {
			continue
		}
		if n := len(t.Attempts); n > 0 {
			for _, st := range t.Attempts[n-1].Steps {
				if st.Outcome == runner.Error {
					return fmt.Sprintf("%s/step %d (%s)/%s", t.Name, st.Index, st.Summary, st.FailKind)
				}
			}
		}
		return t.Name + "/" + t.Kind
	}
	return ""
}

// attribute settles an attempt of a candidate job that ended in state
// (not cancelled, not stopped by the controller) against the job's pending
// error, and charges boards. It returns the attempt's state and reason,
// which change when the error follows the candidate. boardFault is set when
// the attempt's error is the board's beyond doubt (its safe state failed).
func (c *Controller) attribute(ctx context.Context, j *store.Job, s *slot, n int, state, reason string, res *runner.Result, requeue, boardFault bool) (string, string, bool) {
	c.mu.Lock()
	prev, hadPrev := c.pending[j.ID]
	delete(c.pending, j.ID)
	prevSlot := c.slots[prev.board]
	healthy := hadPrev && prevSlot != nil && inService(prevSlot) && inService(s)
	c.mu.Unlock()

	if state == store.StateError && !boardFault {
		step := failingStep(res)
		if hadPrev && step != "" && prev.step == step && prev.board != s.cfg.Name && healthy {
			reason = fmt.Sprintf("the candidate's: %s errored on %s (attempt %d) and on %s (attempt %d), boards in service: %s",
				step, prev.board, prev.n, s.cfg.Name, n, reason)
			c.log.Info("error follows the candidate: job failed, no board charged", "job", j.ID, "step", step, "boards", prev.board+","+s.cfg.Name)
			return store.StateFailed, reason, false
		}
		if hadPrev && prevSlot != nil {
			c.boardOutcome(ctx, prevSlot, j, store.StateError, prev.reason)
		}
		if requeue {
			c.mu.Lock()
			c.pending[j.ID] = pendingError{board: s.cfg.Name, n: n, step: step, reason: reason}
			c.mu.Unlock()
			return state, reason, true
		}
		c.boardOutcome(ctx, s, j, state, reason)
		return state, reason, false
	}
	if hadPrev && prevSlot != nil {
		c.boardOutcome(ctx, prevSlot, j, store.StateError, prev.reason)
	}
	c.boardOutcome(ctx, s, j, state, reason)
	return state, reason, requeue
}

// inService reports whether a board's health checks pass as far as the
// controller knows: it is not quarantined and its last health check (if
// it ran one) did not fail. Called with c.mu held.
func inService(s *slot) bool {
	return s.admin != BoardQuarantined && !s.healthFailed
}

// settlePending charges a job's pending error to its board when the job
// ends without another attempt (cancelled while queued).
func (c *Controller) settlePending(ctx context.Context, j *store.Job) {
	c.mu.Lock()
	prev, ok := c.pending[j.ID]
	delete(c.pending, j.ID)
	s := c.slots[prev.board]
	c.mu.Unlock()
	if ok && s != nil {
		c.boardOutcome(ctx, s, j, store.StateError, prev.reason)
	}
}

// mayCancel applies the cancel rules (docs/api.md): submitters cancel the
// jobs they submitted; operators and admins cancel any job, health checks
// included. A job submitted with another token of the same name is not
// the submitter's own: the submitter is the name with the token id.
func (a *API) mayCancel(ctx context.Context, p Principal, id string) error {
	if p.Can(RoleOperator) {
		return nil
	}
	j, err := a.c.db.Job(ctx, id)
	if err != nil {
		return err
	}
	if j.Submitter != p.Actor() {
		return fmt.Errorf("%w: %s may cancel only its own jobs; job %s was submitted by %s (operators and admins cancel any job)",
			ErrForbidden, p.Actor(), id, j.Submitter)
	}
	return nil
}
