package runner

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestWilsonIntervalKnownValues(t *testing.T) {
	// Published values of the 95% Wilson score interval (4 decimals).
	cases := []struct {
		passed, n int
		lo, hi    float64
	}{
		{10, 10, 0.7225, 1},
		{0, 10, 0, 0.2775},
		{50, 100, 0.4038, 0.5962},
		{81, 263, 0.2553, 0.3662},
		{1, 1, 0.2065, 1},
		{0, 0, 0, 1},
	}
	for _, c := range cases {
		lo, hi := WilsonInterval(c.passed, c.n)
		if math.Abs(lo-c.lo) > 5e-5 || math.Abs(hi-c.hi) > 5e-5 {
			t.Errorf("WilsonInterval(%d, %d) = (%.5f, %.5f), want (%.4f, %.4f)", c.passed, c.n, lo, hi, c.lo, c.hi)
		}
	}
}

func TestNewStats(t *testing.T) {
	v := []float64{9, 1, 5, 3, 7, 2, 8, 4, 6, 10, math.NaN(), math.Inf(1)}
	st := NewStats(v, "ms")
	if st.N != 10 || st.Min != 1 || st.Max != 10 || st.Mean != 5.5 || st.Median != 5.5 || st.Unit != "ms" {
		t.Fatalf("stats = %+v", st)
	}
	// p95 of 1..10 interpolated: rank 0.95*9 = 8.55 -> 9 + 0.55 = 9.55.
	if math.Abs(st.P95-9.55) > 1e-9 {
		t.Errorf("p95 = %v, want 9.55", st.P95)
	}
	if len(st.Histogram) != HistogramBuckets {
		t.Fatalf("histogram has %d buckets", len(st.Histogram))
	}
	total := 0
	for i, b := range st.Histogram {
		total += b.Count
		// The bucket counts exactly the values in its range.
		in := 0
		for _, x := range v[:10] {
			if x >= b.Lo && (x < b.Hi || (i == HistogramBuckets-1 && x <= b.Hi)) {
				in++
			}
		}
		if in != b.Count {
			t.Errorf("bucket %d [%v, %v) counts %d, holds %d", i, b.Lo, b.Hi, b.Count, in)
		}
	}
	if total != 10 {
		t.Errorf("histogram counts %d values, want 10", total)
	}
	if st.Histogram[0].Count != 1 || st.Histogram[HistogramBuckets-1].Count != 1 {
		t.Errorf("first/last bucket = %+v / %+v", st.Histogram[0], st.Histogram[HistogramBuckets-1])
	}
	if !slices.Equal(v[:3], []float64{9, 1, 5}) {
		t.Error("NewStats modified its input")
	}
	if s := NewStats(nil, "x"); s.N != 0 || s.Histogram != nil {
		t.Errorf("empty stats = %+v", s)
	}
	if s := NewStats([]float64{4, 4, 4}, ""); s.N != 3 || len(s.Histogram) != 1 || s.Histogram[0].Count != 3 || s.P95 != 4 {
		t.Errorf("constant stats = %+v", s)
	}
}

func iters(outcomes string) []Iteration {
	var l []Iteration
	for i, c := range outcomes {
		o := Passed
		if c == 'F' {
			o = Failed
		}
		l = append(l, Iteration{Number: i + 1, Outcome: o, Duration: Duration(time.Duration(i+1) * time.Millisecond)})
	}
	return l
}

func TestBoundIterations(t *testing.T) {
	l := iters("PPPPFPPPPPPFPPPP") // 16, two failures at 5 and 12
	kept, dropped := boundIterations(l, 6)
	var nums []int
	for _, it := range kept {
		nums = append(nums, it.Number)
	}
	// budget 4 passing: 2 from the head, 2 from the tail.
	if want := []int{1, 2, 5, 12, 15, 16}; !slices.Equal(nums, want) || dropped != 10 {
		t.Errorf("kept %v dropped %d, want %v dropped 10", nums, dropped, want)
	}
	kept, dropped = boundIterations(iters("FFFFPPP"), 3)
	if len(kept) != 3 || dropped != 4 || kept[2].Number != 3 {
		t.Errorf("all-failing bound: %+v dropped %d", kept, dropped)
	}
	if kept, dropped := boundIterations(l, 100); len(kept) != 16 || dropped != 0 {
		t.Error("a short list was cut")
	}
}

func TestMergeCampaignsExact(t *testing.T) {
	all := iters("PPFPPPFPPP")
	for i := range all {
		all[i].CutDelays = []Duration{Duration(time.Duration(i*10) * time.Millisecond)}
		all[i].Measures = map[string]float64{"v": float64(i)}
	}
	part := func(idx int) *Campaign {
		c := &Campaign{Planned: 10, Seed: 7, MinPassRate: 1, StoppedBy: StopCount}
		for _, it := range all {
			if (Shard{idx, 2}).runs(it.Number) {
				c.Iterations = append(c.Iterations, it)
				c.Run++
				if it.Outcome == Passed {
					c.Passed++
				} else {
					c.Failed++
				}
			}
		}
		return c
	}
	m := MergeCampaigns([]*Campaign{part(0), part(1)}, []string{"a", "b"})
	if m.Run != 10 || m.Passed != 8 || m.Failed != 2 || m.Planned != 10 || m.Seed != 7 || m.StoppedBy != StopCount {
		t.Fatalf("merged = %+v", m)
	}
	lo, hi := WilsonInterval(8, 10)
	if m.PassRate != 0.8 || m.PassRateLow != lo || m.PassRateHigh != hi {
		t.Errorf("pass rate %v [%v, %v]", m.PassRate, m.PassRateLow, m.PassRateHigh)
	}
	for i, it := range m.Iterations {
		wantBoard := []string{"a", "b"}[i%2]
		if it.Number != i+1 || it.Board != wantBoard {
			t.Errorf("iteration %d = #%d on %q", i, it.Number, it.Board)
		}
	}
	var times, cuts, vs []float64
	for _, it := range all {
		times = append(times, float64(it.Duration)/1e6)
		cuts = append(cuts, float64(it.CutDelays[0])/1e6)
		vs = append(vs, it.Measures["v"])
	}
	if got, want := m.IterationTime, NewStats(times, "ms"); got.Median != want.Median || got.N != 10 || got.P95 != want.P95 {
		t.Errorf("iteration time %+v, want %+v", got, want)
	}
	if want := NewStats(cuts, "ms"); m.CutDelay == nil || m.CutDelay.Max != 90 || m.CutDelay.Min != 0 || m.CutDelay.Median != want.Median {
		t.Errorf("cut delay %+v, want %+v", m.CutDelay, want)
	}
	if want := NewStats(vs, ""); m.Measures["v"].Mean != 4.5 || m.Measures["v"].P95 != want.P95 {
		t.Errorf("measures %+v, want %+v", m.Measures, want)
	}
	if len(m.Boards) != 2 || m.Boards[0].Iterations != 5 || m.Boards[0].Passed != 3 || m.Boards[0].PassRate != 0.6 || m.Boards[1].PassRate != 1 {
		t.Errorf("boards %+v", m.Boards)
	}
	if MergeCampaigns(nil, nil) != nil {
		t.Error("merge of nothing is not nil")
	}
	c := part(1)
	c.StoppedBy = StopCancel
	if got := MergeCampaigns([]*Campaign{part(0), c}, []string{"a", "b"}).StoppedBy; got != StopCancel {
		t.Errorf("stopped by %q", got)
	}
}

func TestMergeCampaignsElided(t *testing.T) {
	p := &Campaign{Run: 4, Passed: 4, Elided: 2, Iterations: iters("PP"),
		IterationTime: Stats{N: 4, Min: 1, Max: 4, Mean: 2.5, Histogram: histogram([]float64{1, 2, 3, 4}, 1, 4)}}
	m := MergeCampaigns([]*Campaign{p}, []string{"x"})
	if m.IterationTime.N != 4 || m.IterationTime.Max != 4 || m.IterationTime.Mean != 2.5 || m.Elided != 2 {
		t.Fatalf("merged elided = %+v", m)
	}
	n := 0
	for _, b := range m.IterationTime.Histogram {
		n += b.Count
	}
	if n != 4 {
		t.Errorf("re-binned histogram counts %d", n)
	}
}

func TestHeadlineDropsDanglingConsoleLabel(t *testing.T) {
	cases := []struct{ in, want string }{
		{"expected text \"ok\" within 1s; waited 1s; last console lines:\n  | boot\n  | panic: x", `expected text "ok" within 1s; waited 1s; last console line "panic: x"`},
		{"console silent for 2s; last console lines:\n  (nothing)", "console silent for 2s; console empty"},
		{"flash failed: exit 1", "flash failed: exit 1"},
		{"two\nlines", "two"},
	}
	for _, c := range cases {
		if got := headline(c.in); got != c.want {
			t.Errorf("headline(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
