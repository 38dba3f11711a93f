package farm

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/specs"
)

// The queue's ETA (docs/api.md "Queue ETA"). A job takes its spec's typical
// duration (the median of its recent runs; 1 minute when unknown). A spec
// with campaign tests takes, for each of them, its count × its typical
// iteration time (the median iteration time of its recent runs), bounded by
// its `duration`; with no past run, its `duration` (or, with neither, the
// spec's typical duration as any job). Spread over k boards (k = its
// spread, at most the boards in service that match), a campaign runs 1/k of
// that on each board: its run time is divided by k, its board time is not.

// campaignTest is what the ETA needs of a campaign test.
type campaignTest struct {
	Name     string
	Count    int
	Duration time.Duration
	Spread   int
}

// campaignEstimate is how long a spec's campaigns take, run with their
// spread over at most boards boards: wall, the time one board runs (a
// shard's, when spread), and work, the board time of all its shards. iter
// is the typical iteration time by test name (absent: unknown). ok is false
// when some campaign has neither a known iteration time nor a duration.
func campaignEstimate(tests []campaignTest, iter map[string]time.Duration, boards int) (wall, work time.Duration, ok bool) {
	for _, t := range tests {
		k := max(1, min(t.Spread, boards))
		var w time.Duration // one board's time
		if it, known := iter[t.Name]; known && t.Count > 0 {
			w = time.Duration(t.Count) * it / time.Duration(k)
			if t.Duration > 0 && w > t.Duration {
				w = t.Duration
			}
		} else if t.Duration > 0 {
			w = t.Duration
		} else {
			return 0, 0, false
		}
		wall += w
		work += w * time.Duration(k)
	}
	return wall, work, true
}

// campaignTests lists a spec's campaign tests.
func campaignTests(spec *specs.Spec) []campaignTest {
	var out []campaignTest
	for _, t := range spec.Tests {
		if r := t.Repeat; r != nil {
			out = append(out, campaignTest{Name: t.Name, Count: r.Count, Duration: r.Duration, Spread: r.Spread})
		}
	}
	return out
}

// estimator estimates run times for one view (memoised by spec).
type estimator struct {
	c      *Controller
	ctx    context.Context
	boards int // boards in service for spreading
	typ    map[string]time.Duration
	camps  map[string][]campaignTest
	iters  map[string]map[string]time.Duration
}

func (c *Controller) estimator(ctx context.Context, boards int) *estimator {
	return &estimator{c: c, ctx: ctx, boards: boards, typ: map[string]time.Duration{},
		camps: map[string][]campaignTest{}, iters: map[string]map[string]time.Duration{}}
}

// typical is a spec's typical job duration, 1 minute when unknown; known
// says whether it came from past runs.
func (e *estimator) typical(spec string) (time.Duration, bool) {
	if d, ok := e.typ[spec]; ok {
		return d, d > 0
	}
	d, n, err := e.c.db.TypicalDuration(e.ctx, spec)
	if err != nil || n == 0 {
		d = 0
	}
	e.typ[spec] = d
	if d == 0 {
		return time.Minute, false
	}
	return d, true
}

// campaigns returns a spec's campaign tests, read from its newest job.
func (e *estimator) campaigns(specName string) []campaignTest {
	if t, ok := e.camps[specName]; ok {
		return t
	}
	var tests []campaignTest
	if src, fname, vars, err := e.c.db.SpecSource(e.ctx, specName); err == nil {
		if spec, diags := specs.ParseSpec(src, fname, specs.SpecOptions{Vars: vars, Farm: e.c.cfg.Farm}); !diags.HasErrors() {
			tests = campaignTests(spec)
		}
	}
	e.camps[specName] = tests
	return tests
}

// iterTimes are a spec's typical iteration times by campaign test.
func (e *estimator) iterTimes(spec string) map[string]time.Duration {
	if m, ok := e.iters[spec]; ok {
		return m
	}
	m := map[string]time.Duration{}
	if got, err := e.c.db.CampaignIterationTimes(e.ctx, spec); err == nil {
		for name, vs := range got {
			slices.Sort(vs)
			m[name] = time.Duration(vs[len(vs)/2] * float64(time.Millisecond))
		}
	}
	e.iters[spec] = m
	return m
}

// job estimates one job of spec spread over at most k boards: wall is how
// long it runs (a shard: its share), work the board time it takes in all.
func (e *estimator) job(spec string, k int) (wall, work time.Duration, known bool) {
	if tests := e.campaigns(spec); len(tests) > 0 {
		if wall, work, ok := campaignEstimate(tests, e.iterTimes(spec), k); ok {
			return wall, work, true
		}
	}
	d, known := e.typical(spec)
	return d, d, known
}

// eta estimates when a queued job starts: the board time of the jobs ahead
// of it (a shard counts as its share of its spread job) spread over the
// boards that could run it, after what the matching boards are running now.
func (c *Controller) eta(ctx context.Context, j *store.Job, ahead map[string]int) time.Time {
	var sel jobSelector
	json.Unmarshal(j.Selector, &sel)
	boards := c.matching(sel.Selector, false)
	if len(boards) == 0 {
		return time.Time{}
	}
	units, err := c.db.QueueUnitsAhead(ctx, j.ID)
	if err != nil {
		units = map[string]float64{}
		for spec, n := range ahead {
			units[spec] = float64(n)
		}
	}
	e := c.estimator(ctx, c.spreadBoards(sel))
	var total time.Duration
	for spec, n := range units {
		_, work, _ := e.job(spec, e.boards)
		total += time.Duration(n * float64(work))
	}
	c.mu.Lock()
	var running []*activeJob
	for _, name := range boards {
		if s := c.slots[name]; s.state == BoardLeased && s.job != "" {
			if a := c.running[s.job]; a != nil {
				running = append(running, a)
			}
		}
	}
	c.mu.Unlock()
	for _, a := range running {
		k := 1
		if ref, err := c.db.ShardOf(ctx, a.job.ID); err == nil && ref != nil {
			k = ref.Of
		}
		wall, _, _ := e.job(a.job.SpecName, k)
		if rem := wall - c.now().Sub(a.started); rem > 0 {
			total += rem
		}
	}
	return c.now().Add(total / time.Duration(len(boards)))
}

// runningETA estimates when a running job ends: a spread job when its
// shards do (from when it was split), any other job its run time after its
// last attempt started (lastStart). Zero when nothing is known of its spec.
func (c *Controller) runningETA(ctx context.Context, j *store.Job, lastStart time.Time) time.Time {
	e := c.estimator(ctx, 1)
	if _, shards, err := c.db.Spread(ctx, j.ID); err == nil && shards > 0 {
		if wall, _, known := e.job(j.SpecName, shards); known {
			return j.Started.Add(wall)
		}
		return time.Time{}
	}
	if lastStart.IsZero() {
		return time.Time{}
	}
	k := 1
	if ref, err := c.db.ShardOf(ctx, j.ID); err == nil && ref != nil {
		k = ref.Of
	}
	if wall, _, known := e.job(j.SpecName, k); known {
		return lastStart.Add(wall)
	}
	return time.Time{}
}
