package farm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// Spread campaigns (issue 16, docs/api.md "Campaigns").
//
// A spec whose campaign test says `repeat { spread = N }` is submitted as
// one job (the parent). When the scheduler reaches it, it is split into
// k = min(N, boards in service that match) shard jobs (k < 2: it runs as
// an ordinary job). Each shard is a job of its own: queued with the
// parent's priority and submission time, leased, attempted, retried after
// infrastructure errors and blamed like any job (jobrun.go, verdicts.go),
// and run with runner.Options.Shard{Index, Of: k} and the parent's seed.
// The parent stays running, with no attempt of its own, until every shard
// is final; then runner.MergeCampaigns merges the shards' campaigns into
// the parent's one result, which is what its verdict, webhooks, JUnit and
// JSON see. A shard that ends in error (after its retries) cancels its
// siblings and the parent ends in error; cancelling the parent (or any
// shard) cancels every shard.

// specSpread is the largest `spread` of a spec's campaign tests (0: none).
func specSpread(spec *specs.Spec) int {
	n := 0
	for _, t := range spec.Tests {
		if t.Repeat != nil && t.Repeat.Spread > n {
			n = t.Repeat.Spread
		}
	}
	return n
}

// spreadBoards counts the boards in service (idle or leased) that could run
// a job with selector sel: how many shards a spread job is split into at most.
func (c *Controller) spreadBoards(sel jobSelector) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, name := range c.names {
		s := c.slots[name]
		if !matches(s.cfg, sel.Selector) || (sel.Board != "" && sel.Board != name) {
			continue
		}
		if s.admin == "" && (s.state == BoardIdle || s.state == BoardLeased) {
			n++
		}
	}
	return n
}

// splitSpread splits a queued spread job into its shards, at the time the
// scheduler reaches it. It reports false when the job is to run as an
// ordinary job (fewer than two boards in service match).
func (c *Controller) splitSpread(ctx context.Context, j *store.Job, sel jobSelector, spread int) bool {
	k := min(spread, c.spreadBoards(sel))
	if k < 2 {
		return false
	}
	ok, err := c.db.SplitJob(ctx, j.ID, k, c.now())
	if err != nil {
		c.disk.check(err)
		c.log.Error("scheduler: splitting a spread job", "job", j.ID, "err", err)
		return true // tried again at the next pass
	}
	if !ok {
		return true // cancelled meanwhile
	}
	c.log.Info("spread job split into shards", "job", j.ID, "shards", k)
	if p, err := c.db.Job(ctx, j.ID); err == nil {
		p.Reason = fmt.Sprintf("split into %d shards", k)
		c.publishState(p, 0, "")
	}
	if shards, err := c.db.Shards(ctx, j.ID); err == nil {
		for _, s := range shards {
			c.publishState(s, 0, "")
		}
	}
	c.poke()
	return true
}

// spreadSeed is the seed every shard of a spread job uses when its spec
// sets none, so their random cut delays come from one sequence: derived
// from the parent's id (never 0, which means "choose one").
func spreadSeed(parent string) int64 {
	h := fnv.New64a()
	h.Write([]byte(parent))
	s := int64(h.Sum64() & (1<<62 - 1))
	if s == 0 {
		s = 1
	}
	return s
}

// shardOptions sets a shard job's share of its campaign in the runner's
// options (nothing for a job that is not a shard).
func (c *Controller) shardOptions(ctx context.Context, j *store.Job, opts *runner.Options) error {
	ref, err := c.db.ShardOf(ctx, j.ID)
	if err != nil || ref == nil {
		return err
	}
	opts.Shard = runner.Shard{Index: ref.Index, Of: ref.Of}
	if opts.Seed == 0 {
		opts.Seed = spreadSeed(ref.Parent)
	}
	return nil
}

// shardEnded is called when a job reaches its final state. For a shard it
// settles the shard's own bookkeeping and, once every shard of its parent
// is final, the parent; it reports whether j was a shard (whose end is not
// announced: its parent's is).
func (c *Controller) shardEnded(ctx context.Context, j *store.Job) bool {
	ref, err := c.db.ShardOf(ctx, j.ID)
	if err != nil {
		c.log.Error("reading a job's shard", "job", j.ID, "err", err)
		return false
	}
	if ref == nil {
		return false
	}
	c.settlePending(ctx, j)
	c.settleSpread(ctx, ref.Parent, j)
	return true
}

// settleSpread ends a spread job once all its shards are final. A shard
// that ended in error or was cancelled on its own first cancels the
// shards still live (the campaign cannot pass without it).
func (c *Controller) settleSpread(ctx context.Context, parent string, ended *store.Job) {
	log := c.log.With("job", parent)
	if (ended.State == store.StateError || ended.State == store.StateCancelled) && !c.stopping() {
		shards, err := c.db.Shards(ctx, parent)
		if err != nil {
			log.Error("reading the shards", "err", err)
			return
		}
		for _, s := range shards {
			if store.Final(s.State) {
				continue
			}
			reason := fmt.Sprintf("cancelled: shard %s ended %s", ended.ID, ended.State)
			if ended.State == store.StateCancelled {
				reason = ended.Reason
			}
			if _, err := c.cancelJob(ctx, s.ID, reason); err != nil && !errors.Is(err, ErrFinished) {
				log.Error("cancelling a shard", "shard", s.ID, "err", err)
			}
		}
	}
	shards, err := c.db.Shards(ctx, parent)
	if err != nil {
		log.Error("reading the shards", "err", err)
		return
	}
	for _, s := range shards {
		if !store.Final(s.State) {
			return // the last one settles it
		}
	}
	end, board := mergeShards(shards, c.now())
	ok, err := c.db.FinishSpread(context.WithoutCancel(ctx), parent, end, board)
	if err != nil {
		c.disk.check(err)
		log.Error("recording the spread job's end", "err", err)
		return
	}
	if !ok {
		return // another shard's end got there first
	}
	log.Info("spread job finished", "state", end.State, "reason", end.Reason)
	fin, err := c.db.Job(context.WithoutCancel(ctx), parent)
	if err != nil {
		log.Error("reading the finished job", "err", err)
		return
	}
	c.publishState(fin, 0, "")
	c.finished(fin)
}

// stopping reports whether the controller is shutting down (its jobs end
// with errShutdown; their siblings are left to do the same).
func (c *Controller) stopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ctx == nil || c.ctx.Err() != nil
}

// settleSpreads settles the spread jobs whose shards all ended while no
// controller ran (after a restart's recovery).
func (c *Controller) settleSpreads(ctx context.Context) {
	ids, err := c.db.RunningSpreads(ctx)
	if err != nil {
		c.log.Error("reading running spread jobs", "err", err)
		return
	}
	for _, id := range ids {
		shards, err := c.db.Shards(ctx, id)
		if err != nil || len(shards) == 0 {
			continue
		}
		c.settleSpread(ctx, id, shards[len(shards)-1])
	}
}

// mergeShards is a spread job's end from its final shards: cancelled if a
// shard was cancelled, error if a shard ended in error (naming it), else
// the verdict of the merged result. board is the first shard's board.
func mergeShards(shards []*store.Job, at time.Time) (store.AttemptEnd, string) {
	end := store.AttemptEnd{At: at}
	var results []*runner.Result
	var boards []string
	for i, s := range shards {
		if i == 0 {
			end.State = store.StatePassed
		}
		tag := fmt.Sprintf("shard %d/%d", i+1, len(shards))
		if s.Board != "" {
			tag += " on " + s.Board
		}
		switch {
		case s.State == store.StateCancelled && end.State != store.StateCancelled:
			end.State, end.Reason = store.StateCancelled, s.Reason
		case s.State == store.StateError && end.State != store.StateCancelled && end.State != store.StateError:
			end.State, end.Reason = store.StateError, tag+": "+s.Reason
		}
		var r runner.Result
		if len(s.Result) > 0 && json.Unmarshal(s.Result, &r) == nil {
			results = append(results, &r)
			boards = append(boards, s.Board)
		}
	}
	board := ""
	if len(shards) > 0 {
		board = shards[0].Board
	}
	merged := mergeResults(results, boards)
	if merged != nil {
		end.Result = budgetResult(merged, MaxResultBytes)
	}
	if end.State == store.StatePassed { // every shard finished its run: the merged verdict
		if merged == nil {
			end.State, end.Reason = store.StateError, "no shard has a result"
		} else {
			end.State, end.Reason = outcomeState(merged.Outcome), merged.Message
		}
		// An error the blame rules gave the candidate (it followed it to a
		// second board: the shard ended failed) stays the candidate's.
		if end.State == store.StateError {
			for i, s := range shards {
				if s.State == store.StateFailed {
					end.State, end.Reason = store.StateFailed, fmt.Sprintf("shard %d/%d on %s: %s", i+1, len(shards), s.Board, s.Reason)
					break
				}
			}
		}
	}
	return end, board
}

// mergeResults merges the results of a spread job's shards (parts[i] ran on
// boards[i]) into one. A campaign test gets runner.MergeCampaigns of its
// parts and its verdict from the merged pass rate; every other test, and
// setup and teardown (which ran on every shard), is the shard's result
// with the worst outcome. Nil when there is no part.
func mergeResults(parts []*runner.Result, boards []string) *runner.Result {
	if len(parts) == 0 {
		return nil
	}
	m := *parts[0]
	m.Tests = make([]runner.TestResult, len(parts[0].Tests))
	for _, p := range parts[1:] {
		if p.Started.Before(m.Started) {
			m.Started = p.Started
		}
		if p.Finished.After(m.Finished) {
			m.Finished = p.Finished
		}
		if p.SafeStateError != "" && m.SafeStateError == "" {
			m.SafeStateError = p.SafeStateError
		}
	}
	m.Duration = runner.Duration(m.Finished.Sub(m.Started))
	phase := func(get func(*runner.Result) *runner.TestResult) *runner.TestResult {
		var w *runner.TestResult
		for _, p := range parts {
			if t := get(p); t != nil && (w == nil || rank(t.Outcome) > rank(w.Outcome)) {
				w = t
			}
		}
		return w
	}
	m.Setup = phase(func(r *runner.Result) *runner.TestResult { return r.Setup })
	m.Teardown = phase(func(r *runner.Result) *runner.TestResult { return r.Teardown })
	for i, t0 := range parts[0].Tests {
		var same []*runner.TestResult
		for _, p := range parts {
			if i < len(p.Tests) && p.Tests[i].Name == t0.Name {
				same = append(same, &p.Tests[i])
			}
		}
		w := same[0]
		for _, t := range same[1:] {
			if rank(t.Outcome) > rank(w.Outcome) {
				w = t
			}
		}
		t := *w
		if t0.Campaign != nil {
			var camps []*runner.Campaign
			var cb []string
			for k, s := range same {
				camps = append(camps, s.Campaign)
				if k < len(boards) {
					cb = append(cb, boards[k])
				}
			}
			if len(same) == len(parts) {
				cb = boards
			}
			t.Campaign = runner.MergeCampaigns(camps, cb)
			t.Outcome, t.Kind, t.Message = campaignVerdict(w, t.Campaign)
		}
		m.Tests[i] = t
	}
	// The job's verdict as the runner makes it: the worst part, named.
	o, msg := runner.Passed, ""
	note := func(what string, t *runner.TestResult) {
		if t != nil && rank(t.Outcome) > rank(o) {
			o, msg = t.Outcome, what+": "+t.Message
		}
	}
	note("setup", m.Setup)
	for i := range m.Tests {
		note("test "+strconv.Quote(m.Tests[i].Name), &m.Tests[i])
	}
	note("teardown", m.Teardown)
	if m.SafeStateError != "" && rank(o) < rank(runner.Error) {
		o, msg = runner.Error, m.SafeStateError
	}
	m.Outcome, m.Message = o, msg
	return &m
}

// campaignVerdict is a merged campaign test's outcome: an error or cancel
// of any part stands; otherwise it passes iff the merged pass rate reaches
// the minimum.
func campaignVerdict(worst *runner.TestResult, c *runner.Campaign) (runner.Outcome, string, string) {
	if worst.Outcome == runner.Error || worst.Outcome == runner.Cancelled || c == nil {
		return worst.Outcome, worst.Kind, worst.Message
	}
	if c.Run > 0 && c.Errors == 0 && c.PassRate >= c.MinPassRate {
		return runner.Passed, "", ""
	}
	msg := fmt.Sprintf("pass rate %.4g%% (%d of %d iterations, 95%% interval %.4g–%.4g%%) is below the minimum %.4g%%",
		100*c.PassRate, c.Passed, c.Run, 100*c.PassRateLow, 100*c.PassRateHigh, 100*c.MinPassRate)
	if worst.Outcome == runner.Failed && worst.Message != "" {
		msg += "; " + firstLine(worst.Message)
	}
	kind := worst.Kind
	if kind == "" {
		kind = runner.KindAssert
	}
	return runner.Failed, kind, msg
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// rank orders outcomes as the runner's summary does.
func rank(o runner.Outcome) int {
	switch o {
	case runner.Cancelled:
		return 4
	case runner.Error:
		return 3
	case runner.Failed:
		return 2
	case runner.Passed:
		return 1
	}
	return 0
}

// cancelSpread cancels a spread job (asked of it or of one of its shards):
// while it is queued like any job, once split by cancelling every shard
// (the last one's end settles it). ok is false for a job that is not part
// of a spread job.
func (c *Controller) cancelSpread(ctx context.Context, id, actor string) (v *JobView, err error, ok bool) {
	ref, err := c.db.ShardOf(ctx, id)
	if err != nil {
		return nil, err, true
	}
	if ref != nil {
		id = ref.Parent
	}
	spread, _, err := c.db.Spread(ctx, id)
	if err != nil {
		return nil, err, true
	}
	if spread == 0 {
		return nil, nil, false
	}
	reason := "cancelled by " + actor
	for try := range 10 {
		j, err := c.db.Job(ctx, id)
		if err != nil {
			return nil, err, true
		}
		if store.Final(j.State) {
			if try > 0 && j.State == store.StateCancelled {
				v, err := c.Job(ctx, id)
				return v, err, true
			}
			return nil, fmt.Errorf("job %s is %s: %w", id, j.State, ErrFinished), true
		}
		_, shards, err := c.db.Spread(ctx, id)
		if err != nil {
			return nil, err, true
		}
		if shards == 0 { // not split: an ordinary job (queued, or running unsplit)
			v, err := c.cancelJob(ctx, id, reason)
			return v, err, true
		}
		list, err := c.db.Shards(ctx, id)
		if err != nil {
			return nil, err, true
		}
		for _, s := range list {
			if store.Final(s.State) {
				continue
			}
			if _, err := c.cancelJob(ctx, s.ID, reason); err != nil && !errors.Is(err, ErrFinished) {
				return nil, err, true
			}
		}
	}
	return nil, fmt.Errorf("job %s kept changing state; try again", id), true
}

// SpreadView is a spread job's shards, on its page.
type SpreadView struct {
	Spread int         `json:"spread"` // asked for (repeat.spread)
	Shards []ShardView `json:"shards"` // empty until it is split
}

// ShardView is one shard of a spread job.
type ShardView struct {
	ID       string    `json:"id"`
	Index    int       `json:"index"`
	State    string    `json:"state"`
	Reason   string    `json:"reason,omitempty"`
	Board    string    `json:"board,omitempty"`
	Attempts int       `json:"attempts"`
	Started  time.Time `json:"started,omitzero"`
	Ended    time.Time `json:"ended,omitzero"`
}

// spreadView fills a job view's spread part: its shards, or its parent.
func (c *Controller) spreadView(ctx context.Context, v *JobView) error {
	ref, err := c.db.ShardOf(ctx, v.ID)
	if err != nil {
		return err
	}
	v.ShardOf = ref
	spread, _, err := c.db.Spread(ctx, v.ID)
	if err != nil || spread == 0 {
		return err
	}
	sv := &SpreadView{Spread: spread, Shards: []ShardView{}}
	shards, err := c.db.Shards(ctx, v.ID)
	if err != nil {
		return err
	}
	for i, s := range shards {
		sv.Shards = append(sv.Shards, ShardView{ID: s.ID, Index: i, State: s.State, Reason: s.Reason, Board: s.Board,
			Attempts: s.Attempts, Started: s.Started, Ended: s.Ended})
	}
	v.Spread = sv
	return nil
}

// consoleAttempts are the attempts whose console makes a job's: its own,
// or for a spread job its shards' in shard order.
func (c *Controller) consoleAttempts(ctx context.Context, id string) ([]store.Attempt, error) {
	atts, err := c.db.Attempts(ctx, id)
	if err != nil || len(atts) > 0 {
		return atts, err
	}
	shards, err := c.db.Shards(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, s := range shards {
		sa, err := c.db.Attempts(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		atts = append(atts, sa...)
	}
	return atts, nil
}
