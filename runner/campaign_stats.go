package runner

import (
	"math"
	"slices"
	"sort"
)

// This file holds a campaign's arithmetic: the Wilson interval of a pass
// rate, the distribution of a set of values, the bound on the iteration
// list, and the merge of a spread campaign's parts.

// Shard selects a share of a campaign's iterations: iteration i (from 1)
// runs only where (i-1) % Of == Index. Of <= 1 means every iteration.
// Everything else in the spec (setup, teardown, tests without `repeat`)
// runs on every shard.
type Shard struct {
	Index int `json:"index"`
	Of    int `json:"of"`
}

// runs reports whether iteration i belongs to the shard.
func (s Shard) runs(i int) bool {
	if s.Of <= 1 {
		return true
	}
	return (i-1)%s.Of == s.Index
}

// wilsonZ is the standard normal quantile for a two-sided 95% interval.
const wilsonZ = 1.959963984540054

// WilsonInterval returns the 95% Wilson score interval of a pass rate of
// passed out of n. With n <= 0 nothing is known: (0, 1).
func WilsonInterval(passed, n int) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	passed = min(max(passed, 0), n)
	nf := float64(n)
	p := float64(passed) / nf
	z2 := wilsonZ * wilsonZ
	den := 1 + z2/nf
	center := (p + z2/(2*nf)) / den
	half := wilsonZ * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	lo, hi = max(center-half, 0), min(center+half, 1)
	if passed == 0 {
		lo = 0
	}
	if passed == n {
		hi = 1
	}
	return lo, hi
}

// NewStats returns the distribution of values: N, min, median, p95, max,
// mean and a histogram of HistogramBuckets equal-width buckets from Min to
// Max (a single bucket when every value is the same). Percentiles are
// linearly interpolated between the closest ranks (the median of an even
// count is the mean of the two middle values). Values that are NaN or
// infinite are left out. values is not modified.
func NewStats(values []float64, unit string) Stats {
	v := make([]float64, 0, len(values))
	for _, x := range values {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	st := Stats{Unit: unit, N: len(v)}
	if len(v) == 0 {
		return st
	}
	sort.Float64s(v)
	st.Min, st.Max = v[0], v[len(v)-1]
	st.Median = quantile(v, 0.5)
	st.P95 = quantile(v, 0.95)
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	st.Mean = sum / float64(len(v))
	st.Histogram = histogram(v, st.Min, st.Max)
	return st
}

// quantile of sorted values, linearly interpolated (Hyndman-Fan type 7).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	h := q * float64(len(sorted)-1)
	i := int(math.Floor(h))
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (h-float64(i))*(sorted[i+1]-sorted[i])
}

// histogram counts values into HistogramBuckets equal buckets over [lo, hi].
func histogram(values []float64, lo, hi float64) []Bucket {
	if hi <= lo {
		return []Bucket{{Lo: lo, Hi: hi, Count: len(values)}}
	}
	bs := make([]Bucket, HistogramBuckets)
	w := (hi - lo) / HistogramBuckets
	for i := range bs {
		bs[i].Lo = lo + float64(i)*w
		bs[i].Hi = lo + float64(i+1)*w
	}
	bs[len(bs)-1].Hi = hi
	for _, x := range values {
		bs[bucketOf(x, lo, w)].Count++
	}
	return bs
}

func bucketOf(x, lo, w float64) int {
	i := int((x - lo) / w)
	return min(max(i, 0), HistogramBuckets-1)
}

// boundIterations applies the rule of Campaign.Iterations to list (in
// order): at most max entries; every iteration that did not pass is kept
// (the first max of them if there are more); the passing ones fill what is
// left, half from the start of the list and half from its end. It returns
// the kept entries (in order) and how many were dropped.
func boundIterations(list []Iteration, maxN int) ([]Iteration, int) {
	if len(list) <= maxN {
		return list, 0
	}
	nonPassing := 0
	for i := range list {
		if list[i].Outcome != Passed {
			nonPassing++
		}
	}
	budget := max(maxN-nonPassing, 0)
	head := (budget + 1) / 2
	tail := budget - head
	passing := len(list) - nonPassing
	kept := make([]Iteration, 0, maxN)
	seenPass, keptFail := 0, 0
	for _, it := range list {
		if it.Outcome != Passed {
			if keptFail < maxN {
				kept = append(kept, it)
				keptFail++
			}
			continue
		}
		seenPass++
		if seenPass <= head || seenPass > passing-tail {
			kept = append(kept, it)
		}
	}
	return kept, len(list) - len(kept)
}

// MergeCampaigns merges the parts of a campaign spread over boards (part i
// ran on boards[i], with Options.Shard{Index: i, Of: len(parts)}) into one
// result: counts summed, pass rate and its Wilson interval recomputed,
// iterations in order with Board set, Boards filled with each board's
// share. StoppedBy is the most severe reason of the parts (cancel, timeout,
// failures, duration, count); Planned, MinPassRate and Seed are the first
// part's (every shard runs the same spec and seed).
//
// The statistics are exact when no part elided iterations (they are
// recomputed from every iteration). Otherwise N, Min, Max and Mean are
// still exact (from the parts' statistics), the histogram is the parts'
// histograms re-binned by bucket centre, and the median and p95 are those
// of the iterations that were kept. nil parts are skipped; the result is
// nil when there is no part.
func MergeCampaigns(parts []*Campaign, boards []string) *Campaign {
	var m *Campaign
	var all []Iteration
	elided := 0
	for i, p := range parts {
		if p == nil {
			continue
		}
		board := ""
		if i < len(boards) {
			board = boards[i]
		}
		if m == nil {
			m = &Campaign{Planned: p.Planned, MinPassRate: p.MinPassRate, Seed: p.Seed, StoppedBy: p.StoppedBy}
		}
		m.Planned = max(m.Planned, p.Planned)
		m.Run += p.Run
		m.Passed += p.Passed
		m.Failed += p.Failed
		m.Errors += p.Errors
		m.Cancelled += p.Cancelled
		if stopRank(p.StoppedBy) > stopRank(m.StoppedBy) {
			m.StoppedBy = p.StoppedBy
		}
		elided += p.Elided
		for _, it := range p.Iterations {
			if it.Board == "" {
				it.Board = board
			}
			all = append(all, it)
		}
		cb := CampaignBoard{Board: board, Iterations: p.Run, Passed: p.Passed}
		if p.Run > 0 {
			cb.PassRate = float64(p.Passed) / float64(p.Run)
		}
		m.Boards = append(m.Boards, cb)
	}
	if m == nil {
		return nil
	}
	if m.Run > 0 {
		m.PassRate = float64(m.Passed) / float64(m.Run)
	}
	m.PassRateLow, m.PassRateHigh = WilsonInterval(m.Passed, m.Run)
	slices.SortStableFunc(all, func(a, b Iteration) int { return a.Number - b.Number })

	live := parts[:0:0]
	for _, p := range parts {
		if p != nil {
			live = append(live, p)
		}
	}
	if elided == 0 {
		m.IterationTime, m.Measures, m.CutDelay = iterationStats(all, live)
	} else {
		it, ms, cd := iterationStats(all, live)
		m.IterationTime = mergeStats(pick(live, func(c *Campaign) *Stats { return &c.IterationTime }), it)
		if len(ms) > 0 {
			m.Measures = map[string]Stats{}
			for name, kept := range ms {
				m.Measures[name] = mergeStats(pick(live, func(c *Campaign) *Stats {
					if s, ok := c.Measures[name]; ok {
						return &s
					}
					return nil
				}), kept)
			}
		}
		if cd != nil {
			s := mergeStats(pick(live, func(c *Campaign) *Stats { return c.CutDelay }), *cd)
			m.CutDelay = &s
		}
	}
	kept, dropped := boundIterations(all, MaxCampaignIterations)
	m.Iterations, m.Elided = kept, elided+dropped
	if m.Iterations == nil {
		m.Iterations = []Iteration{}
	}
	return m
}

func stopRank(s string) int {
	switch s {
	case StopCancel:
		return 5
	case StopTimeout:
		return 4
	case StopFailures:
		return 3
	case StopDuration:
		return 2
	case StopCount:
		return 1
	}
	return 0
}

func pick(parts []*Campaign, f func(*Campaign) *Stats) []Stats {
	var out []Stats
	for _, p := range parts {
		if s := f(p); s != nil && s.N > 0 {
			out = append(out, *s)
		}
	}
	return out
}

// iterationStats computes a campaign's distributions from its iterations:
// iteration time (ms), each measurement (with the unit the parts gave it),
// and the cut delays (ms; nil when no iteration cut power).
func iterationStats(list []Iteration, parts []*Campaign) (Stats, map[string]Stats, *Stats) {
	times := make([]float64, 0, len(list))
	measures := map[string][]float64{}
	var cuts []float64
	for _, it := range list {
		times = append(times, ms(it.Duration))
		for name, v := range it.Measures {
			measures[name] = append(measures[name], v)
		}
		for _, d := range it.CutDelays {
			cuts = append(cuts, ms(d))
		}
	}
	st := NewStats(times, "ms")
	var mstats map[string]Stats
	if len(measures) > 0 {
		mstats = make(map[string]Stats, len(measures))
		for name, vs := range measures {
			unit := ""
			for _, p := range parts {
				if s, ok := p.Measures[name]; ok && s.Unit != "" {
					unit = s.Unit
					break
				}
			}
			mstats[name] = NewStats(vs, unit)
		}
	}
	var cd *Stats
	if len(cuts) > 0 {
		s := NewStats(cuts, "ms")
		cd = &s
	}
	return st, mstats, cd
}

func ms(d Duration) float64 { return float64(d) / 1e6 }

// mergeStats combines whole-part distributions (exact N, Min, Max, Mean;
// histograms re-binned) with the median and p95 of the kept values.
func mergeStats(parts []Stats, kept Stats) Stats {
	if len(parts) == 0 {
		return kept
	}
	out := Stats{Unit: kept.Unit, Min: math.Inf(1), Max: math.Inf(-1)}
	if out.Unit == "" {
		out.Unit = parts[0].Unit
	}
	sum := 0.0
	for _, p := range parts {
		out.N += p.N
		out.Min = min(out.Min, p.Min)
		out.Max = max(out.Max, p.Max)
		sum += p.Mean * float64(p.N)
	}
	out.Mean = sum / float64(out.N)
	out.Median = min(max(kept.Median, out.Min), out.Max)
	out.P95 = min(max(kept.P95, out.Min), out.Max)
	if out.Max <= out.Min {
		out.Histogram = []Bucket{{Lo: out.Min, Hi: out.Max, Count: out.N}}
		return out
	}
	out.Histogram = make([]Bucket, HistogramBuckets)
	w := (out.Max - out.Min) / HistogramBuckets
	for i := range out.Histogram {
		out.Histogram[i].Lo = out.Min + float64(i)*w
		out.Histogram[i].Hi = out.Min + float64(i+1)*w
	}
	out.Histogram[HistogramBuckets-1].Hi = out.Max
	for _, p := range parts {
		for _, b := range p.Histogram {
			out.Histogram[bucketOf((b.Lo+b.Hi)/2, out.Min, w)].Count += b.Count
		}
	}
	return out
}
