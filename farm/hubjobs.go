package farm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/rack"
	"github.com/hilfarm/hilfarm/specs"
)

// Jobs that run on a rack through the hub (docs/racks.md). When this farm
// is a hub (Config.Hub), a submission for a board type no local board has
// but a linked rack has is a remote job: its firmware goes into the hub's
// object store, the hub offers it to the racks, and one watcher goroutine
// per job writes what the hub learns (attempts, the verdict) into this
// farm's store. To the API and the CLI it is a job like any other: one
// attempt here stands for the hub's attempts, whose rack and board it
// names once a rack claimed it.

// hubJobLabel marks a remote job. Its value is the job's own id, which is
// also its id at the hub; no submitter can know it in advance, so a label
// a client sets cannot make a local job look remote.
const hubJobLabel = "hub-job"

// rackAttemptEvent is the event type of a change of a remote job's
// attempts at the hub.
const rackAttemptEvent = "rack_attempt"

// reasonRemoteRestarted ends a remote job that was in flight when the
// controller stopped and that the hub no longer has (or this farm is no
// longer a hub): nothing can follow it.
const reasonRemoteRestarted = "controller restarted while the job ran on a rack through the hub, and the hub no longer has it"

// isRemote reports whether j runs on a rack through the hub.
func isRemote(j *store.Job) bool { return j.Labels[hubJobLabel] == j.ID }

// rackTypes returns the board types racks linked to the hub have.
func (c *Controller) rackTypes() []string {
	if c.cfg.Hub == nil {
		return nil
	}
	return c.cfg.Hub.Types()
}

// isRackType reports whether a rack linked to the hub has board type t.
func (c *Controller) isRackType(t string) bool {
	if t == "" {
		return false
	}
	for _, rt := range c.rackTypes() {
		if rt == t {
			return true
		}
	}
	return false
}

// describeRackTypes completes "the farm has ..." for a hub.
func (c *Controller) describeRackTypes() string {
	if c.cfg.Hub == nil {
		return ""
	}
	if ts := c.rackTypes(); len(ts) > 0 {
		return "; racks linked to this hub have board types " + strings.Join(ts, ", ")
	}
	return "; no rack is linked to this hub (hilfarm rack add)"
}

// parseForRack parses a spec that did not parse against this farm's
// boards without them: a spec for a rack's board type matches no local
// board, and the rack checks it against its own farm when it runs it.
func (c *Controller) parseForRack(s Submission, fname string) (*specs.Spec, bool) {
	if c.cfg.Hub == nil {
		return nil, false
	}
	spec, diags := specs.ParseSpec(s.SpecSrc, fname, specs.SpecOptions{Vars: s.Vars, RequireVars: true})
	return spec, !diags.HasErrors()
}

// submitRemote hands a submission for a rack's board type to the hub.
func (c *Controller) submitRemote(ctx context.Context, s Submission, spec *specs.Spec, sel specs.Selector, fname string) (*JobView, error) {
	switch {
	case s.Board != "":
		return nil, &RejectedError{Status: 422, Message: fmt.Sprintf("board %s: pinning a job to a board is not available for board type %s, which only racks behind this hub have", s.Board, sel.Type)}
	case len(sel.Tags) > 0:
		return nil, &RejectedError{Status: 422, Message: fmt.Sprintf("tags %s: racks are chosen by board type only; a job for board type %s (only racks behind this hub have it) cannot select tags yet", tagList(sel.Tags)[2:], sel.Type)}
	case len(s.Vars) > 0:
		return nil, &RejectedError{Status: 422, Message: fmt.Sprintf("spec variables are not carried to racks yet; board type %s is only on racks behind this hub", sel.Type)}
	}
	fw, err := c.admitFirmware(ctx, sel, s) // the hub's trust policy applies before the rack's
	if err != nil {
		return nil, err
	}
	f, err := os.Open(c.firmwarePath(fw.SHA256))
	if err != nil {
		return nil, fmt.Errorf("firmware %s: %w", fw.SHA256, err)
	}
	digest, err := c.cfg.Hub.PutFirmware(ctx, f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	labels := map[string]string{}
	for k, v := range s.Labels {
		labels[k] = v
	}
	selJSON, _ := json.Marshal(jobSelector{Selector: sel})
	j := &store.Job{
		ID: newJobID(c.now()), SpecName: spec.Name, SpecSrc: s.SpecSrc, SpecFilename: fname,
		Firmware: fw, Selector: selJSON, Labels: labels, Priority: s.Priority,
		Submitter: s.Submitter, Created: c.now(),
	}
	labels[hubJobLabel] = j.ID
	if s.idempotency != nil {
		err = c.db.InsertJobWithKey(ctx, j, *s.idempotency, c.now().Add(-IdempotencyWindow))
	} else {
		err = c.db.InsertJob(ctx, j)
	}
	if err != nil {
		return nil, err
	}
	// The job runs from now on as far as this farm is concerned: the
	// scheduler leaves it alone, and its one attempt here stands for the
	// hub's attempts (no rack or board until one claims it).
	n, err := c.db.StartAttempt(ctx, j.ID, "rack", 0, c.now())
	if err != nil {
		return nil, err
	}
	if _, err := c.cfg.Hub.Submit(ctx, rack.Job{ID: j.ID, Type: sel.Type, Firmware: digest, Spec: s.SpecSrc}); err != nil {
		c.endRemote(j.ID, n, store.StateError, "hub refused the job: "+err.Error())
		if errors.Is(err, rack.ErrNoRack) {
			return nil, &RejectedError{Status: 422, Message: err.Error()}
		}
		return nil, fmt.Errorf("hub: %w", err)
	}
	if j, err := c.db.Job(ctx, j.ID); err == nil {
		c.publishState(j, n, "")
	}
	c.watchRemote(j.ID, n)
	return c.Job(ctx, j.ID)
}

// watchRemote starts the goroutine that follows a remote job at the hub.
// Run owns it: it stops it at shutdown and waits for it. A job submitted
// while the controller stops is not followed; it ends at the next start.
func (c *Controller) watchRemote(id string, n int) {
	c.mu.Lock()
	ctx := c.ctx
	if ctx == nil || ctx.Err() != nil || c.remoteStopped {
		c.mu.Unlock()
		return
	}
	c.remote.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.remote.Done()
		c.followRemote(ctx, id, n)
	}()
}

// stopRemote waits for the remote watchers once their context is done,
// and starts no new ones.
func (c *Controller) stopRemote() {
	c.mu.Lock()
	c.remoteStopped = true
	c.mu.Unlock()
	c.remote.Wait()
}

// rackAttempt is the data of a rack_attempt event: one of the hub's
// attempts of the job.
type rackAttempt struct {
	Attempt string `json:"attempt"` // <job>#<n>
	Rack    string `json:"rack"`
	Board   string `json:"board"`
	State   string `json:"state"` // running, superseded, final, cancelled
	Verdict string `json:"verdict,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// followRemote writes the hub's view of job id into the store until it
// has its verdict or ctx ends: each change of an attempt as an event, the
// current attempt's rack and board as the job's board, then the verdict.
func (c *Controller) followRemote(ctx context.Context, id string, n int) {
	seen := map[string]rackAttempt{}
	board := ""
	for {
		rec, err := c.cfg.Hub.WaitJob(ctx, id, func(r rack.JobRecord) bool {
			if r.Verdict != "" {
				return true
			}
			for _, a := range r.Attempts {
				if seen[a.ID] != toRackAttempt(a) {
					return true
				}
			}
			return false
		})
		if err != nil {
			return // shutdown; the job ends at the next start
		}
		var evs []store.Event
		for _, a := range rec.Attempts {
			ra := toRackAttempt(a)
			if seen[a.ID] == ra {
				continue
			}
			seen[a.ID] = ra
			data, _ := json.Marshal(ra)
			evs = append(evs, store.Event{At: c.now(), Type: rackAttemptEvent, Data: data})
		}
		if len(evs) > 0 {
			if evs, err = c.db.AppendEvents(ctx, id, evs); err != nil {
				c.log.Error("storing a rack attempt event", "job", id, "err", err)
			} else {
				c.hub.publish(id, evs, false, nil)
			}
		}
		// Also once decided: a quick job may be claimed and decided between
		// two looks, and its verdict should still name where it ran.
		if cur := rec.Current; cur > 0 && cur <= len(rec.Attempts) {
			a := rec.Attempts[cur-1]
			if b := a.Rack + "/" + a.Board; b != board && a.Board != "" {
				board = b
				if err := c.db.SetAttemptBoard(ctx, id, n, b); err != nil {
					c.log.Error("recording a rack job's board", "job", id, "err", err)
				} else if j, err := c.db.Job(ctx, id); err == nil {
					c.publishState(j, n, "")
				}
			}
		}
		if rec.Verdict != "" {
			c.endRemote(id, n, verdictState(rec.Verdict), rec.Detail)
			return
		}
	}
}

func toRackAttempt(a rack.Attempt) rackAttempt {
	return rackAttempt{Attempt: a.ID, Rack: a.Rack, Board: a.Board, State: a.State, Verdict: a.Verdict, Detail: a.Detail}
}

// verdictState maps a hub verdict to a job state.
func verdictState(v string) string {
	switch v {
	case "pass":
		return store.StatePassed
	case "fail":
		return store.StateFailed
	case "cancelled":
		return store.StateCancelled
	}
	return store.StateError
}

// endRemote ends a remote job's attempt n, and the job, with state and
// reason, and tells its watchers and hooks.
func (c *Controller) endRemote(id string, n int, state, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.db.FinishAttempt(ctx, id, n, store.AttemptEnd{State: state, Reason: reason, At: c.now()}); err != nil {
		c.log.Error("ending a rack job", "job", id, "state", state, "err", err)
		return
	}
	j, err := c.db.Job(ctx, id)
	if err != nil {
		c.log.Error("ending a rack job", "job", id, "err", err)
		return
	}
	c.log.Info("rack job ended", "job", id, "state", j.State, "reason", reason)
	c.publishState(j, n, "")
	c.finished(j)
}

// cancelRemote cancels a remote job at the hub (rack.Hub.Cancel: the hub
// decides it cancelled and tells the rack running it to stop) and returns
// once the job's final state is stored here (followRemote writes it).
func (c *Controller) cancelRemote(ctx context.Context, j *store.Job, reason string) (*JobView, error) {
	_, live, stop, err := c.SubscribeEvents(ctx, j.ID, 0, false)
	if err != nil {
		return nil, err
	}
	defer stop()
	if _, err := c.cfg.Hub.Cancel(ctx, j.ID, reason); err != nil {
		if errors.Is(err, rack.ErrDecided) {
			return nil, fmt.Errorf("job %s has its verdict at the hub: %w", j.ID, ErrFinished)
		}
		return nil, err
	}
	for {
		select {
		case _, ok := <-live:
			if !ok { // the final state (or a slow subscriber: look)
				if j, err := c.db.Job(ctx, j.ID); err == nil && store.Final(j.State) {
					return c.Job(ctx, j.ID)
				}
				if _, live, stop, err = c.SubscribeEvents(ctx, j.ID, 0, false); err != nil {
					return nil, err
				}
				defer stop()
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// remoteAfterRestart wraps the restart decision for remote jobs in
// flight: one the hub still has is requeued, to be followed again at once
// (reattachRemote); the hub's ledger survives a restart and its verdict
// still decides. Any other ends as error: requeued, it would wait for a
// local board it can never have.
func (c *Controller) remoteAfterRestart(ctx context.Context, next func(string, int) (bool, string)) func(string, int) (bool, string) {
	return func(id string, attempts int) (bool, string) {
		j, err := c.db.Job(ctx, id)
		if err != nil || !isRemote(j) {
			return next(id, attempts)
		}
		if c.cfg.Hub != nil {
			if _, ok := c.cfg.Hub.Job(id); ok {
				return true, ""
			}
		}
		return false, reasonRemoteRestarted
	}
}

// reattachRemote follows again the remote jobs a restart requeued: each
// gets a new attempt here that stands for the hub's, as at submit. Called
// by Run before the scheduler starts (which would leave them alone
// anyway: no local board matches them).
func (c *Controller) reattachRemote(ctx context.Context, interrupted []store.Interrupted) {
	for _, it := range interrupted {
		j, err := c.db.Job(ctx, it.JobID)
		if err != nil || !isRemote(j) || j.State != store.StateQueued {
			continue
		}
		n, err := c.db.StartAttempt(ctx, j.ID, "rack", 0, c.now())
		if err != nil {
			c.log.Error("following a rack job again after a restart", "job", j.ID, "err", err)
			continue
		}
		if j, err := c.db.Job(ctx, j.ID); err == nil {
			c.publishState(j, n, "")
		}
		c.log.Info("following a rack job again after a restart", "job", j.ID, "attempt", n)
		c.watchRemote(j.ID, n)
	}
}

// rackStale is how old a rack's last heartbeat may be before its boards
// show offline: three heartbeats missed.
const rackStale = 3 * rack.DefaultHeartbeatEvery

// hubBoards lists the boards racks behind the hub reported on their last
// heartbeat (at most rack.MaxReportedBoards per rack), named RACK/BOARD:
// idle when the rack could take a job on it now, busy otherwise, offline
// when the rack has not reported for rackStale. Racks report no health
// figures (Health stays 0) and no tags.
func (c *Controller) hubBoards() []BoardView {
	if c.cfg.Hub == nil {
		return nil
	}
	var out []BoardView
	now := c.now()
	for _, r := range c.cfg.Hub.Racks() {
		for _, b := range r.Boards {
			v := BoardView{Name: r.Rack + "/" + b.Name, Type: b.Type, Rack: r.Rack, Since: r.Seen}
			switch {
			case now.Sub(r.Seen) > rackStale:
				v.State, v.Reason = BoardOffline, fmt.Sprintf("no heartbeat from rack %s since %s", r.Rack, r.Seen.Format(time.RFC3339))
			case b.Healthy:
				v.State = BoardIdle
			default:
				v.State, v.Reason = "busy", "at rack "+r.Rack+": running a job, held, in maintenance, quarantined or offline there"
			}
			out = append(out, v)
		}
	}
	return out
}
