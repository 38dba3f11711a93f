package runner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hilfarm/hilfarm/specs"
)

// This file runs a campaign: a test with a `repeat` block, as iterations,
// and the `power "cut"` step.

// Bounds of a campaign's result besides MaxCampaignIterations.
const (
	// MaxCampaignConsoles is how many iterations that did not pass keep
	// their console slice (the first ones), each at most
	// MaxIterationConsole bytes (head and tail, the middle elided).
	MaxCampaignConsoles = 20
	MaxIterationConsole = 64 << 10
	// campaignFailedAttempts is how many iterations that did not pass keep
	// their steps in TestResult.Attempts (besides the first iteration).
	campaignFailedAttempts = 5
	// maxCampaignMeasures bounds the measurement names with a distribution.
	maxCampaignMeasures = 64
	// maxSeed keeps a chosen seed exact in JSON.
	maxSeed = 1<<53 - 1
)

// StopError: an iteration ended in an infrastructure error, which ends the
// campaign (the test is an error: blame the farm, not the candidate).
const StopError = "error"

// campState is the state of the running campaign.
type campState struct {
	iteration int
	count     int // effective repeat count (0: by duration only)
	seed      int64
	cuts      int        // cuts done in this iteration
	delays    []Duration // their delays
	rec       *slice     // this iteration's console, while consoles are still kept
}

func (e *engine) iteration() int {
	if e.camp == nil {
		return 0
	}
	return e.camp.iteration
}

// runCampaign runs a repeated test: its steps once per iteration until a
// stop condition, then its statistics and verdict.
func (e *engine) runCampaign(ctx context.Context, t specs.Test) TestResult {
	tr := TestResult{Name: t.Name, Started: e.now()}
	e.rec = newSlice(e.opts.TestConsoleMax)
	rep := *t.Repeat
	count, duration := rep.Count, rep.Duration
	if e.opts.Repeat > 0 {
		count = e.opts.Repeat
	}
	if e.opts.ReplayCut != nil {
		count, duration = 1, 0
	}
	seed := rep.Seed
	if e.opts.Seed != 0 {
		seed = e.opts.Seed
	}
	if seed == 0 {
		seed = rand.Int64N(maxSeed) + 1
	}
	cs := &campState{count: count, seed: seed}
	e.camp = cs
	defer func() { e.camp, e.rec, e.scope.Repeat = nil, nil, nil }()

	// The test's timeout bounds the whole campaign, not each iteration.
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, t.Timeout, &timeoutError{"test", t.Timeout})
		defer cancel()
	}
	it := t
	it.Timeout, it.Repeat = 0, nil

	c := &Campaign{Planned: count, MinPassRate: rep.MinPassRate, Seed: seed}
	var (
		times     []float64
		cutDelays []float64
		measures  = map[string][]float64{}
		units     = map[string]string{}
		kept      []Iteration
		consoles  int
		failAtt   int
		firstBad  *Iteration
		errIt     *Iteration
	)
	start := time.Now()
	for i := 1; ; i++ {
		if count > 0 && i > count {
			c.StoppedBy = StopCount
			break
		}
		if !e.opts.Shard.runs(i) {
			continue
		}
		if err := ctx.Err(); err != nil {
			c.StoppedBy = stopCause(ctx)
			break
		}
		if duration > 0 && time.Since(start) >= duration {
			c.StoppedBy = StopDuration
			break
		}
		cs.iteration, cs.cuts, cs.delays = i, 0, nil
		cs.rec = nil
		if consoles < MaxCampaignConsoles {
			cs.rec = newSlice(min(e.opts.TestConsoleMax, MaxIterationConsole))
		}
		e.scope.Repeat = &specs.RepeatScope{Iteration: i, Count: count}
		itr := Iteration{Number: i, Started: e.now(), ConsoleStart: e.win.end()}
		att := e.runAttempt(ctx, PhaseTest, it, i, false, func(Outcome) bool { return false })
		itr.Outcome, itr.Kind, itr.Message = att.Outcome, att.Kind, att.Message
		itr.Duration = att.Duration
		itr.ConsoleEnd = e.win.end()
		itr.CutDelays = cs.delays
		for _, m := range att.Measurements {
			if itr.Measures == nil {
				itr.Measures = map[string]float64{}
			}
			itr.Measures[m.Name] = m.Value
			if _, ok := measures[m.Name]; ok || len(measures) < maxCampaignMeasures {
				measures[m.Name] = append(measures[m.Name], m.Value)
				units[m.Name] = m.Unit
			}
		}
		// An iteration cut short by the campaign's end (a timeout or a
		// cancel) is not counted: it did not run to its verdict.
		interrupted := ctx.Err() != nil && att.Outcome != Passed && (att.Kind == KindTimeout || att.Kind == KindCancel || att.Outcome == Cancelled)
		if interrupted {
			itr.Outcome = Cancelled
			c.Cancelled++
		} else {
			c.Run++
			switch att.Outcome {
			case Passed:
				c.Passed++
			case Failed:
				c.Failed++
			default:
				c.Errors++
			}
			times = append(times, ms(itr.Duration))
			for _, d := range itr.CutDelays {
				cutDelays = append(cutDelays, ms(d))
			}
		}
		if itr.Outcome != Passed && cs.rec != nil {
			itr.Console = cs.rec.String()
			consoles++
		}
		if i == 1 || len(tr.Attempts) == 0 || itr.Outcome != Passed && failAtt < campaignFailedAttempts {
			tr.Attempts = append(tr.Attempts, att)
			if itr.Outcome != Passed && len(tr.Attempts) > 1 {
				failAtt++
			}
		}
		kept = append(kept, itr)
		if len(kept) >= 2*MaxCampaignIterations {
			var dropped int
			kept, dropped = boundIterations(kept, MaxCampaignIterations)
			c.Elided += dropped
		}
		if itr.Outcome == Failed && firstBad == nil {
			x := itr
			firstBad = &x
		}
		if itr.Outcome == Error {
			x := itr
			errIt = &x
			c.StoppedBy = StopError
			break
		}
		if interrupted {
			c.StoppedBy = stopCause(ctx)
			break
		}
		if rep.StopAfterFailures > 0 && c.Failed >= rep.StopAfterFailures {
			c.StoppedBy = StopFailures
			break
		}
	}
	cs.rec = nil
	kept, dropped := boundIterations(kept, MaxCampaignIterations)
	c.Iterations, c.Elided = kept, c.Elided+dropped
	if c.Iterations == nil {
		c.Iterations = []Iteration{}
	}
	if c.Run > 0 {
		c.PassRate = float64(c.Passed) / float64(c.Run)
	}
	c.PassRateLow, c.PassRateHigh = WilsonInterval(c.Passed, c.Run)
	c.IterationTime = NewStats(times, "ms")
	if len(cutDelays) > 0 {
		s := NewStats(cutDelays, "ms")
		c.CutDelay = &s
	}
	if len(measures) > 0 {
		c.Measures = make(map[string]Stats, len(measures))
		for name, vs := range measures {
			c.Measures[name] = NewStats(vs, units[name])
		}
	}

	tr.Campaign = c
	tr.Outcome, tr.Kind, tr.Message = campaignVerdict(ctx, c, firstBad, errIt)
	tr.Duration = Duration(e.now().Sub(tr.Started))
	tr.Console = e.rec.String()
	tr.ConsoleBytes = e.rec.total
	e.emit(TestFinished{Time: e.now(), Phase: PhaseTest, Test: t.Name, Attempt: 1, Outcome: tr.Outcome,
		Kind: tr.Kind, Message: tr.Message, Duration: tr.Duration, Final: true})
	return tr
}

// stopCause says why ctx ended: a timeout or a cancel.
func stopCause(ctx context.Context) string {
	var te *timeoutError
	if errors.As(context.Cause(ctx), &te) {
		return StopTimeout
	}
	return StopCancel
}

// campaignVerdict decides a campaign's outcome: an error iteration makes
// it an error, a cancel cancelled, a timeout a failure; otherwise it passes
// iff its pass rate reaches min_pass_rate.
func campaignVerdict(ctx context.Context, c *Campaign, firstBad, errIt *Iteration) (Outcome, string, string) {
	rate := fmt.Sprintf("pass rate %s (%d/%d, 95%% CI %s–%s)", pct(c.PassRate), c.Passed, c.Run, pct(c.PassRateLow), pct(c.PassRateHigh))
	switch c.StoppedBy {
	case StopError:
		return Error, errIt.Kind, fmt.Sprintf("iteration %d: %s (campaign stopped; %s)", errIt.Number, errIt.Message, rate)
	case StopCancel:
		return Cancelled, KindCancel, fmt.Sprintf("cancelled after %d iterations; %s", c.Run, rate)
	case StopTimeout:
		why := "timeout ran out"
		if err := context.Cause(ctx); err != nil {
			why = err.Error()
		}
		return Failed, KindTimeout, fmt.Sprintf("%s after %d iterations; %s", why, c.Run, rate)
	}
	if c.Run == 0 || c.PassRate >= c.MinPassRate {
		return Passed, "", ""
	}
	kind, msg := "", ""
	if firstBad != nil {
		kind = firstBad.Kind
		msg = fmt.Sprintf("\nfirst failing iteration %d: %s", firstBad.Number, firstBad.Message)
	}
	fails := failingList(c, 10)
	return Failed, kind, fmt.Sprintf("%s is below min_pass_rate %s; failing iterations: %s%s", rate, pct(c.MinPassRate), fails, msg)
}

// failingList names up to n failing iterations with their cut delays.
func failingList(c *Campaign, n int) string {
	var parts []string
	for _, it := range c.Iterations {
		if it.Outcome != Failed || len(parts) == n {
			continue
		}
		s := fmt.Sprintf("#%d", it.Number)
		if len(it.CutDelays) > 0 {
			s += " (cut " + delayList(it.CutDelays) + ")"
		}
		parts = append(parts, s)
	}
	if more := c.Failed - len(parts); more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	return strings.Join(parts, ", ")
}

// delayList formats cut delays for people and for --replay-cut.
func delayList(ds []Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.Std().String()
	}
	return strings.Join(s, ", ")
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// cutDelay chooses the delay of the current power cut.
func (e *engine) cutDelay(c *specs.CutPlan) (time.Duration, *stepErr) {
	if e.opts.ReplayCut != nil {
		return *e.opts.ReplayCut, nil
	}
	switch {
	case c.Delay != nil:
		d, err := c.DelayOf(&e.scope)
		if err != nil {
			return 0, infra(KindSpec, "power cut: %v", err)
		}
		return d, nil
	case len(c.Random) == 2 && e.camp != nil:
		return RandomCutDelay(e.camp.seed, e.camp.iteration, e.camp.cuts, c.Random[0], c.Random[1]), nil
	case len(c.Sweep) == 2 && e.camp != nil:
		steps := c.Steps
		if steps <= 0 {
			steps = e.camp.count
		}
		return c.SweepDelay(e.camp.iteration, steps), nil
	}
	return 0, infra(KindSpec, "power cut: no delay (random and sweep need a repeat block)")
}

// RandomCutDelay is the delay of cut number cut (from 0) of iteration
// iteration in a campaign with seed: uniform over [lo, hi] in whole
// microseconds, and a function of its arguments only, so a shard of a
// spread campaign, or a replay with --seed, draws the same delays.
func RandomCutDelay(seed int64, iteration, cut int, lo, hi time.Duration) time.Duration {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(iteration)<<16^uint64(cut)))
	span := int64((hi - lo) / time.Microsecond)
	return lo + time.Duration(r.Int64N(span+1))*time.Microsecond
}

// cut runs a power "cut" step: wait for its after pattern (if any), then
// its delay, then cut the power, hold it off for off_for and power on
// through the board's power (so a clean boot boundary still applies).
func (e *engine) cut(ctx context.Context, p *specs.PowerStep, sr *StepResult) *stepErr {
	c := p.Cut
	if c == nil {
		return infra(KindSpec, "power cut without a plan")
	}
	if c.After != nil {
		m, se := e.pattern(*c.After)
		if se != nil {
			return se
		}
		within := c.AfterWithin
		if within <= 0 {
			within = specs.DefaultCutWithin
		}
		mt, se, _ := e.await(ctx, awaitArgs{what: "power cut: wait for " + m.desc, expect: m, within: within})
		if se != nil {
			return se
		}
		sr.Match = mt.text
		// The match is taken: what follows waits on nothing but time.
		e.active, e.hit, e.undecided = nil, nil, false
	}
	delay, se := e.cutDelay(c)
	if se != nil {
		return se
	}
	if e.camp != nil {
		e.camp.cuts++
		e.camp.delays = append(e.camp.delays, Duration(delay))
	}
	sr.Summary = fmt.Sprintf("power cut at %s", delay)
	if c.After != nil {
		sr.Summary += " after the match"
	}
	if delay > 0 {
		if _, se, _ := e.await(ctx, awaitArgs{what: "power cut: delay " + delay.String(), within: delay, sleep: true}); se != nil {
			return se
		}
	}
	e.discardPending()
	off := p.OffFor
	if off <= 0 {
		off = e.b.OffFor
	}
	return e.operate(ctx, operation{what: "power cut", kind: KindPower, tolerateLost: true,
		fn: func(c context.Context) error { return e.b.Power.Cycle(c, off) }})
}
