package farm

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
)

// Comparison is candidate B against baseline A on one spec, over every
// finished job of each on that spec.
type Comparison struct {
	Spec         string              `json:"spec"`
	Baseline     CandidateSummary    `json:"baseline"`
	Candidate    CandidateSummary    `json:"candidate"`
	Tests        []TestComparison    `json:"tests"`
	Measurements []MeasureComparison `json:"measurements"`
	// Campaigns compares the campaign tests (campaign_compare.go).
	Campaigns []CampaignComparison `json:"campaigns"`
}

// CandidateSummary sums up one firmware's jobs on the spec.
type CandidateSummary struct {
	SHA256  string         `json:"sha256"`
	Version string         `json:"version,omitempty"`
	Jobs    int            `json:"jobs"`
	States  map[string]int `json:"states"`
}

// Test verdicts of a comparison.
const (
	CompareNewFailure = "new-failure" // passed on A, fails on B
	CompareFixed      = "fixed"       // failed on A, passes on B
	CompareFlaky      = "flaky"       // mixed outcomes on B (or needed retries)
	CompareSame       = "same"
	CompareNew        = "new"     // only B has it
	CompareRemoved    = "removed" // only A has it
)

// TestComparison is one test on both candidates.
type TestComparison struct {
	Name      string         `json:"name"`
	Baseline  map[string]int `json:"baseline"`  // outcome -> count
	Candidate map[string]int `json:"candidate"` // outcome -> count
	Verdict   string         `json:"verdict"`
}

// MeasureComparison is one measurement on both candidates (means).
type MeasureComparison struct {
	Name      string   `json:"name"`
	Unit      string   `json:"unit,omitempty"`
	Baseline  *float64 `json:"baseline,omitempty"`
	Candidate *float64 `json:"candidate,omitempty"`
	Delta     *float64 `json:"delta,omitempty"`
	// Verdicts of the candidate's values: pass, marginal, fail -> count.
	CandidateVerdicts map[string]int `json:"candidate_verdicts"`
}

type specRun struct {
	job *store.Job
	res runner.Result
}

// finishedRuns returns the final jobs of spec with a stored result, oldest first.
func (c *Controller) finishedRuns(ctx context.Context, spec string, limit int) ([]specRun, error) {
	jobs, err := c.db.Jobs(ctx, store.JobFilter{States: []string{store.StatePassed, store.StateFailed}, Spec: spec, Limit: limit})
	if err != nil {
		return nil, err
	}
	var out []specRun
	for i := len(jobs) - 1; i >= 0; i-- {
		j := jobs[i]
		if j.SpecName != spec || len(j.Result) == 0 {
			continue
		}
		var r runner.Result
		if err := json.Unmarshal(j.Result, &r); err != nil {
			continue
		}
		out = append(out, specRun{j, r})
	}
	return out, nil
}

// Compare compares candidate firmware cand against baseline base on spec.
func (c *Controller) Compare(ctx context.Context, spec, base, cand string) (*Comparison, error) {
	runs, err := c.finishedRuns(ctx, spec, 1000)
	if err != nil {
		return nil, err
	}
	cmp := &Comparison{Spec: spec,
		Baseline:  CandidateSummary{SHA256: base, States: map[string]int{}},
		Candidate: CandidateSummary{SHA256: cand, States: map[string]int{}}}
	type agg struct {
		outcomes map[string]int
		retried  bool
	}
	tests := map[string]*[2]agg{}
	var order []string
	type magg struct {
		unit     string
		sum      [2]float64
		n        [2]int
		verdicts map[string]int
	}
	meas := map[string]*magg{}
	var morder []string
	for _, r := range runs {
		side := sideOf(r.job.Firmware.SHA256, base, cand)
		if side < 0 {
			continue
		}
		sum := &cmp.Baseline
		if side == 1 {
			sum = &cmp.Candidate
		}
		sum.Jobs++
		sum.States[r.job.State]++
		if sum.Version == "" {
			sum.Version = r.job.Firmware.Version
		}
		for _, t := range r.res.Tests {
			a := tests[t.Name]
			if a == nil {
				a = &[2]agg{{outcomes: map[string]int{}}, {outcomes: map[string]int{}}}
				tests[t.Name] = a
				order = append(order, t.Name)
			}
			a[side].outcomes[string(t.Outcome)]++
			if len(t.Attempts) > 1 {
				a[side].retried = true
			}
			for _, at := range t.Attempts {
				for _, m := range at.Measurements {
					ma := meas[m.Name]
					if ma == nil {
						ma = &magg{unit: m.Unit, verdicts: map[string]int{}}
						meas[m.Name] = ma
						morder = append(morder, m.Name)
					}
					ma.sum[side] += m.Value
					ma.n[side]++
					if side == 1 {
						ma.verdicts[string(m.Verdict)]++
					}
				}
			}
		}
	}
	if cmp.Baseline.Jobs == 0 && cmp.Candidate.Jobs == 0 {
		return nil, fmt.Errorf("no finished %s jobs for either firmware: %w", spec, store.ErrNotFound)
	}
	for _, name := range order {
		a := tests[name]
		tc := TestComparison{Name: name, Baseline: a[0].outcomes, Candidate: a[1].outcomes}
		aPass, aFail := a[0].outcomes["passed"], len(a[0].outcomes)-boolInt(a[0].outcomes["passed"] > 0)
		bPass, bFail := a[1].outcomes["passed"], len(a[1].outcomes)-boolInt(a[1].outcomes["passed"] > 0)
		switch {
		case len(a[0].outcomes) == 0:
			tc.Verdict = CompareNew
		case len(a[1].outcomes) == 0:
			tc.Verdict = CompareRemoved
		case bPass > 0 && bFail > 0 || a[1].retried:
			tc.Verdict = CompareFlaky
		case aPass > 0 && aFail == 0 && bPass == 0:
			tc.Verdict = CompareNewFailure
		case aPass == 0 && bPass > 0 && bFail == 0:
			tc.Verdict = CompareFixed
		default:
			tc.Verdict = CompareSame
		}
		cmp.Tests = append(cmp.Tests, tc)
	}
	sort.Strings(morder)
	for _, name := range morder {
		ma := meas[name]
		mc := MeasureComparison{Name: name, Unit: ma.unit, CandidateVerdicts: ma.verdicts}
		if ma.n[0] > 0 {
			v := ma.sum[0] / float64(ma.n[0])
			mc.Baseline = &v
		}
		if ma.n[1] > 0 {
			v := ma.sum[1] / float64(ma.n[1])
			mc.Candidate = &v
		}
		if mc.Baseline != nil && mc.Candidate != nil {
			d := *mc.Candidate - *mc.Baseline
			mc.Delta = &d
		}
		cmp.Measurements = append(cmp.Measurements, mc)
	}
	cmp.Campaigns = compareCampaigns(runs, base, cand)
	return cmp, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TrendPoint is one measured value of a job.
type TrendPoint struct {
	Job     string    `json:"job"`
	At      time.Time `json:"at"`
	SHA256  string    `json:"sha256"`
	Version string    `json:"version,omitempty"`
	Board   string    `json:"board"`
	Value   float64   `json:"value"`
	Unit    string    `json:"unit,omitempty"`
	Verdict string    `json:"verdict"`
	Min     *float64  `json:"min,omitempty"`
	Max     *float64  `json:"max,omitempty"`
	// MarginalMin and MarginalMax bound the marginal band inside the limits.
	MarginalMin *float64 `json:"marginal_min,omitempty"`
	MarginalMax *float64 `json:"marginal_max,omitempty"`
	JobState    string   `json:"job_state"`
	// Submitted is when the job was submitted; Firmware its file name.
	Submitted time.Time `json:"submitted"`
	Firmware  string    `json:"firmware"`
}

// Trend returns a measurement's values across the finished jobs of a spec,
// in submission order (at most limit jobs are looked at; 0: 500).
func (c *Controller) Trend(ctx context.Context, spec, measure string, limit int) ([]TrendPoint, error) {
	if limit <= 0 {
		limit = 500
	}
	runs, err := c.finishedRuns(ctx, spec, limit)
	if err != nil {
		return nil, err
	}
	out := []TrendPoint{}
	for _, r := range runs {
		for _, t := range r.res.Tests {
			for _, at := range t.Attempts {
				for _, m := range at.Measurements {
					if m.Name != measure {
						continue
					}
					out = append(out, TrendPoint{Job: r.job.ID, At: m.At, SHA256: r.job.Firmware.SHA256,
						Version: r.job.Firmware.Version, Board: r.job.Board, Value: m.Value, Unit: m.Unit,
						Verdict: string(m.Verdict), Min: m.Min, Max: m.Max, MarginalMin: m.MarginalMin, MarginalMax: m.MarginalMax,
						JobState: r.job.State, Submitted: r.job.Created, Firmware: r.job.Firmware.Name})
				}
			}
		}
	}
	return out, nil
}

// Measurements lists the measurement names seen in a spec's finished jobs.
func (c *Controller) Measurements(ctx context.Context, spec string) ([]string, error) {
	runs, err := c.finishedRuns(ctx, spec, 200)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range runs {
		for _, t := range r.res.Tests {
			for _, at := range t.Attempts {
				for _, m := range at.Measurements {
					if !seen[m.Name] {
						seen[m.Name] = true
						out = append(out, m.Name)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// sideOf says which side of a comparison a firmware digest is on: 0 the
// baseline, 1 the candidate, -1 neither.
func sideOf(sha, base, cand string) int {
	switch sha {
	case base:
		return 0
	case cand:
		return 1
	}
	return -1
}
