package farm

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/hilfarm/hilfarm/runner"
)

// Campaigns in Compare and Trends (docs/api.md "Campaigns").

// CampaignSummary pools one candidate's runs of a campaign test: the
// iterations of all its finished jobs on the spec (runner.MergeCampaigns).
type CampaignSummary struct {
	Jobs         int     `json:"jobs"`
	Iterations   int     `json:"iterations"`
	Passed       int     `json:"passed"`
	PassRate     float64 `json:"pass_rate"`
	PassRateLow  float64 `json:"pass_rate_low"`
	PassRateHigh float64 `json:"pass_rate_high"`
	// IterationTime, Measures and CutDelay are the pooled distributions.
	IterationTime runner.Stats            `json:"iteration_ms"`
	Measures      map[string]runner.Stats `json:"measures,omitempty"`
	CutDelay      *runner.Stats           `json:"cut_delay_ms,omitempty"`
	// FailingCutDelays are the cut delays (ms) of iterations that did not
	// pass (up to 50): where the candidate breaks.
	FailingCutDelays []float64 `json:"failing_cut_delays_ms,omitempty"`
}

// Campaign verdicts of a comparison, from the pass rates' 95% intervals.
const (
	CampaignWorse  = "worse"  // B's interval lies wholly below A's
	CampaignBetter = "better" // B's interval lies wholly above A's
	CampaignSame   = "same"   // the intervals overlap: no change shown
)

// CampaignComparison is one campaign test on both candidates.
type CampaignComparison struct {
	Name      string           `json:"name"`
	Baseline  *CampaignSummary `json:"baseline,omitempty"`
	Candidate *CampaignSummary `json:"candidate,omitempty"`
	// PassRateDelta is B's pass rate minus A's.
	PassRateDelta *float64 `json:"pass_rate_delta,omitempty"`
	// Verdict is CampaignWorse, CampaignBetter or CampaignSame, or
	// CompareNew/CompareRemoved when only one candidate ran it.
	Verdict string `json:"verdict"`
	// Distributions: iteration time, then each measurement, then the cut
	// delays, on both candidates.
	Distributions []DistributionChange `json:"distributions"`
}

// DistributionChange is one distribution on both candidates, with the
// change of its median and p95 (B minus A).
type DistributionChange struct {
	Name        string        `json:"name"`
	Unit        string        `json:"unit,omitempty"`
	Baseline    *runner.Stats `json:"baseline,omitempty"`
	Candidate   *runner.Stats `json:"candidate,omitempty"`
	MedianDelta *float64      `json:"median_delta,omitempty"`
	P95Delta    *float64      `json:"p95_delta,omitempty"`
}

// maxFailingCuts bounds CampaignSummary.FailingCutDelays.
const maxFailingCuts = 50

// summarise pools a candidate's campaigns of one test.
func summariseCampaigns(parts []*runner.Campaign) *CampaignSummary {
	if len(parts) == 0 {
		return nil
	}
	m := runner.MergeCampaigns(parts, nil)
	s := &CampaignSummary{Jobs: len(parts), Iterations: m.Run, Passed: m.Passed, PassRate: m.PassRate,
		PassRateLow: m.PassRateLow, PassRateHigh: m.PassRateHigh, IterationTime: m.IterationTime,
		Measures: m.Measures, CutDelay: m.CutDelay}
	for _, p := range parts {
		for _, it := range p.Iterations {
			if it.Outcome == runner.Passed {
				continue
			}
			for _, d := range it.CutDelays {
				if len(s.FailingCutDelays) < maxFailingCuts {
					s.FailingCutDelays = append(s.FailingCutDelays, float64(time.Duration(d))/float64(time.Millisecond))
				}
			}
		}
	}
	return s
}

// compareCampaigns compares the campaign tests of runs on base (side 0)
// and cand (side 1).
func compareCampaigns(runs []specRun, base, cand string) []CampaignComparison {
	parts := map[string]*[2][]*runner.Campaign{}
	var order []string
	for _, r := range runs {
		side := sideOf(r.job.Firmware.SHA256, base, cand)
		if side < 0 {
			continue
		}
		for _, t := range r.res.Tests {
			if t.Campaign == nil {
				continue
			}
			p := parts[t.Name]
			if p == nil {
				p = &[2][]*runner.Campaign{}
				parts[t.Name] = p
				order = append(order, t.Name)
			}
			p[side] = append(p[side], t.Campaign)
		}
	}
	out := []CampaignComparison{}
	for _, name := range order {
		p := parts[name]
		cc := CampaignComparison{Name: name, Baseline: summariseCampaigns(p[0]), Candidate: summariseCampaigns(p[1])}
		a, b := cc.Baseline, cc.Candidate
		switch {
		case a == nil:
			cc.Verdict = CompareNew
		case b == nil:
			cc.Verdict = CompareRemoved
		default:
			d := b.PassRate - a.PassRate
			cc.PassRateDelta = &d
			switch {
			case b.PassRateHigh < a.PassRateLow:
				cc.Verdict = CampaignWorse
			case b.PassRateLow > a.PassRateHigh:
				cc.Verdict = CampaignBetter
			default:
				cc.Verdict = CampaignSame
			}
		}
		stat := func(s *CampaignSummary, f func(*CampaignSummary) *runner.Stats) *runner.Stats {
			if s == nil {
				return nil
			}
			if st := f(s); st != nil && st.N > 0 {
				return st
			}
			return nil
		}
		add := func(name string, f func(*CampaignSummary) *runner.Stats) {
			dc := DistributionChange{Name: name, Baseline: stat(a, f), Candidate: stat(b, f)}
			if dc.Baseline == nil && dc.Candidate == nil {
				return
			}
			if dc.Baseline != nil {
				dc.Unit = dc.Baseline.Unit
			} else {
				dc.Unit = dc.Candidate.Unit
			}
			if dc.Baseline != nil && dc.Candidate != nil {
				md, pd := dc.Candidate.Median-dc.Baseline.Median, dc.Candidate.P95-dc.Baseline.P95
				dc.MedianDelta, dc.P95Delta = &md, &pd
			}
			cc.Distributions = append(cc.Distributions, dc)
		}
		add("iteration time", func(s *CampaignSummary) *runner.Stats { return &s.IterationTime })
		var measures []string
		seen := map[string]bool{}
		for _, s := range []*CampaignSummary{a, b} {
			if s == nil {
				continue
			}
			for m := range s.Measures {
				if !seen[m] {
					seen[m] = true
					measures = append(measures, m)
				}
			}
		}
		sort.Strings(measures)
		for _, m := range measures {
			add(m, func(s *CampaignSummary) *runner.Stats {
				if st, ok := s.Measures[m]; ok {
					return &st
				}
				return nil
			})
		}
		add("cut delay", func(s *CampaignSummary) *runner.Stats { return s.CutDelay })
		if cc.Distributions == nil {
			cc.Distributions = []DistributionChange{}
		}
		out = append(out, cc)
	}
	return out
}

// CampaignPoint is one job's run of a campaign test, for Trends: its pass
// rate with its interval and one distribution's percentiles.
type CampaignPoint struct {
	Job          string    `json:"job"`
	Submitted    time.Time `json:"submitted"`
	SHA256       string    `json:"sha256"`
	Version      string    `json:"version,omitempty"`
	Firmware     string    `json:"firmware"`
	Board        string    `json:"board"`
	JobState     string    `json:"job_state"`
	Iterations   int       `json:"iterations"`
	Passed       int       `json:"passed"`
	PassRate     float64   `json:"pass_rate"`
	PassRateLow  float64   `json:"pass_rate_low"`
	PassRateHigh float64   `json:"pass_rate_high"`
	MinPassRate  float64   `json:"min_pass_rate"`
	// Stat is the distribution asked for (iteration_ms by default, or a
	// measurement's name, or cut_delay_ms); nil when the run has none.
	Stat *runner.Stats `json:"stat,omitempty"`
}

// Campaign stats Trends can plot besides a measurement's name.
const (
	StatIterationTime = "iteration_ms"
	StatCutDelay      = "cut_delay_ms"
)

// CampaignTrend returns a campaign test's runs across the finished jobs of
// a spec in submission order (at most limit jobs looked at; 0: 500).
func (c *Controller) CampaignTrend(ctx context.Context, spec, test, stat string, limit int) ([]CampaignPoint, error) {
	if limit <= 0 {
		limit = 500
	}
	if stat == "" {
		stat = StatIterationTime
	}
	runs, err := c.finishedRuns(ctx, spec, limit)
	if err != nil {
		return nil, err
	}
	out := []CampaignPoint{}
	for _, r := range runs {
		for _, t := range r.res.Tests {
			cp := t.Campaign
			if t.Name != test || cp == nil {
				continue
			}
			p := CampaignPoint{Job: r.job.ID, Submitted: r.job.Created, SHA256: r.job.Firmware.SHA256, Version: r.job.Firmware.Version,
				Firmware: r.job.Firmware.Name, Board: r.job.Board, JobState: r.job.State, Iterations: cp.Run, Passed: cp.Passed,
				PassRate: cp.PassRate, PassRateLow: cp.PassRateLow, PassRateHigh: cp.PassRateHigh, MinPassRate: cp.MinPassRate}
			switch stat {
			case StatIterationTime:
				st := cp.IterationTime
				p.Stat = &st
			case StatCutDelay:
				p.Stat = cp.CutDelay
			default:
				if st, ok := cp.Measures[stat]; ok {
					p.Stat = &st
				}
			}
			if p.Stat != nil {
				s := *p.Stat
				s.Histogram = nil // the percentiles are what is plotted
				p.Stat = &s
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// CampaignInfo names a campaign test of a spec and the distributions its
// runs have, for the Trends picker.
type CampaignInfo struct {
	Test  string   `json:"test"`
	Stats []string `json:"stats"`
}

// Campaigns lists the campaign tests seen in a spec's finished jobs.
func (c *Controller) Campaigns(ctx context.Context, spec string) ([]CampaignInfo, error) {
	runs, err := c.finishedRuns(ctx, spec, 200)
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	out := []CampaignInfo{}
	seen := map[string]map[string]bool{}
	for _, r := range runs {
		for _, t := range r.res.Tests {
			if t.Campaign == nil {
				continue
			}
			i, ok := idx[t.Name]
			if !ok {
				i = len(out)
				idx[t.Name] = i
				out = append(out, CampaignInfo{Test: t.Name, Stats: []string{StatIterationTime}})
				seen[t.Name] = map[string]bool{StatIterationTime: true}
			}
			add := func(s string) {
				if !seen[t.Name][s] {
					seen[t.Name][s] = true
					out[i].Stats = append(out[i].Stats, s)
				}
			}
			names := make([]string, 0, len(t.Campaign.Measures))
			for m := range t.Campaign.Measures {
				names = append(names, m)
			}
			sort.Strings(names)
			for _, m := range names {
				add(m)
			}
			if t.Campaign.CutDelay != nil {
				add(StatCutDelay)
			}
		}
	}
	return out, nil
}

func (a *API) campaignTrends(w http.ResponseWriter, r *http.Request, _ Principal) error {
	q := r.URL.Query()
	spec, test := q.Get("spec"), q.Get("test")
	if spec == "" || test == "" {
		return badRequest("campaign trends want ?spec=NAME&test=NAME[&stat=iteration_ms|cut_delay_ms|MEASUREMENT][&limit=N]")
	}
	if len(spec) > 1024 || len(test) > 1024 || len(q.Get("stat")) > 1024 {
		return badRequest("spec, test and stat are at most 1024 bytes")
	}
	limit, err := trendLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	pts, err := a.c.CampaignTrend(r.Context(), spec, test, q.Get("stat"), limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pts)
}

func (a *API) specCampaigns(w http.ResponseWriter, r *http.Request, _ Principal) error {
	list, err := a.c.Campaigns(r.Context(), r.PathValue("spec"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

// campaignRoutes adds the campaign endpoints (called from uiRoutes).
func (a *API) campaignRoutes() {
	a.mux.Handle("GET /api/v1/trends/campaign", a.handle(RoleViewer, a.campaignTrends))
	a.mux.Handle("GET /api/v1/specs/{spec}/campaigns", a.handle(RoleViewer, a.specCampaigns))
}
