package farm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/rack"
)

// Verdicts a rack reports to the hub for a job it ran, from the local job's
// final state: passed → pass, failed → fail; error and cancelled → error
// (the hub retries nothing on a verdict: an error is final there too).
const (
	RackVerdictPass  = "pass"
	RackVerdictFail  = "fail"
	RackVerdictError = "error"
)

// RackSubmitter is the submitter of the local jobs a rack runs for its hub.
const RackSubmitter = "hub"

// rackCancelTimeout bounds cancelling a local job when the agent gives up
// on it (it stopped, or the attempt lapsed).
const rackCancelTimeout = 30 * time.Second

// RackBoard is one of the controller's boards as a rack agent sees it: it
// implements rack.Board. Its rack type is the board's type (board.type in
// farm.hcl, the name of a board_type block), which is what `hilfarm rack
// add --type` lists for the rack at the hub.
type RackBoard struct {
	c    *Controller
	rack string
	name string
	typ  string
}

var _ rack.Board = (*RackBoard)(nil)

// RackBoards returns every board of the farm, in farm.hcl order, as boards
// of the rack called rackName.
func (c *Controller) RackBoards(rackName string) []rack.Board {
	out := make([]rack.Board, 0, len(c.names))
	for _, n := range c.names {
		out = append(out, &RackBoard{c: c, rack: rackName, name: n, typ: c.slots[n].cfg.Type})
	}
	return out
}

// Name is the board's name in farm.hcl.
func (b *RackBoard) Name() string { return b.name }

// Type is the board's type: its rack type at the hub.
func (b *RackBoard) Type() string { return b.typ }

// Healthy reports whether the board could start a job now: it is idle, so
// not leased, held, in maintenance, quarantined or offline. The agent pulls
// work for the board only then.
func (b *RackBoard) Healthy() bool {
	v, err := b.c.Board(b.name)
	return err == nil && v.State == BoardIdle
}

// Run runs a job pulled from the hub as a local job pinned to this board:
// it is recorded, shown and kept like any other job of this farm (its
// console stays here). Run returns when the local job is final, or cancels
// it when ctx ends. The detail is one line.
func (b *RackBoard) Run(ctx context.Context, job rack.Job, firmware string) (verdict, detail string) {
	var fw io.Reader = bytes.NewReader(nil)
	fwName := "(no firmware)"
	if firmware != "" {
		f, err := os.Open(firmware)
		if err != nil {
			return RackVerdictError, oneLine("firmware: " + err.Error())
		}
		defer f.Close()
		fw = f
		fwName = "hub-" + job.Firmware
	}
	// Not cut short by ctx: a job stored but not reported would run unwatched.
	v, err := b.c.Submit(context.WithoutCancel(ctx), Submission{
		Firmware: fw, FirmwareName: fwName,
		SpecSrc: job.Spec, SpecFilename: job.ID + ".hcl",
		Board:     b.name,
		Labels:    map[string]string{"hub-job": job.ID, "rack": b.rack},
		Submitter: RackSubmitter,
	})
	if err != nil {
		var rej *RejectedError
		if errors.As(err, &rej) {
			return RackVerdictError, oneLine(fmt.Sprintf("rack %s refused the job: %s", b.rack, rej.Message))
		}
		return RackVerdictError, oneLine(fmt.Sprintf("rack %s: submit: %v", b.rack, err))
	}
	id := v.ID
	log := b.c.log.With("rack", b.rack, "board", b.name, "hub_job", job.ID, "job", id)
	log.Info("rack: job from the hub queued")
	running := false
	for {
		changed := b.c.Changed()
		v, err := b.c.Job(context.WithoutCancel(ctx), id)
		if err != nil {
			return RackVerdictError, oneLine(fmt.Sprintf("rack %s job %s: %v", b.rack, id, err))
		}
		if store.Final(v.State) {
			log.Info("rack: job from the hub ended", "state", v.State)
			return b.outcome(&v.Job)
		}
		if v.State == store.StateRunning && !running {
			running = true
			log.Info("rack: job from the hub running")
		}
		select {
		case <-changed:
		case <-ctx.Done():
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rackCancelTimeout)
			_, cerr := b.c.Cancel(cctx, id, "rack agent")
			cancel()
			if cerr != nil && !errors.Is(cerr, ErrFinished) {
				log.Warn("rack: cancelling a job the agent gave up on", "err", cerr)
			}
			return RackVerdictError, oneLine(fmt.Sprintf("cancelled on rack %s (job %s): %v", b.rack, id, context.Cause(ctx)))
		}
	}
}

// CancelRackJobs cancels the hub's jobs (submitter RackSubmitter) that are
// queued or running here. A rack agent calls it before it starts: such jobs
// were left by a previous process (a crash or a kill), nothing reports
// their results, and the hub retries them once their attempt lapses, so
// running them would only keep their boards from the hub's work. It
// returns how many it cancelled.
func (c *Controller) CancelRackJobs(ctx context.Context) (int, error) {
	var ids []string
	q := JobQuery{States: []string{store.StateQueued, store.StateRunning}, Submitter: RackSubmitter, Limit: store.MaxListLimit}
	for {
		items, next, err := c.ListJobs(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("rack: jobs left by a previous run: %w", err)
		}
		for _, it := range items {
			ids = append(ids, it.ID)
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	n := 0
	for _, id := range ids {
		_, err := c.Cancel(ctx, id, "rack agent restart (the hub retries the job)")
		switch {
		case err == nil:
			n++
			c.log.Info("rack: cancelled a job from the hub left by a previous run", "job", id)
		case errors.Is(err, ErrFinished):
		default:
			return n, fmt.Errorf("rack: cancel job %s left by a previous run: %w", id, err)
		}
	}
	return n, nil
}

// outcome maps a final local job to the hub's verdict and a one-line detail
// naming the rack, board and local job.
func (b *RackBoard) outcome(j *store.Job) (verdict, detail string) {
	switch j.State {
	case store.StatePassed:
		verdict = RackVerdictPass
	case store.StateFailed:
		verdict = RackVerdictFail
	default:
		verdict = RackVerdictError
	}
	detail = fmt.Sprintf("%s on %s/%s (job %s)", j.State, b.rack, b.name, j.ID)
	if j.Reason != "" {
		detail += ": " + j.Reason
	}
	return verdict, oneLine(detail)
}

// oneLine folds s onto one line of at most 500 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 500 {
		s = strings.ToValidUTF8(s[:497], "") + "..."
	}
	return s
}
