package farm

import (
	"encoding/json"
	"fmt"

	"github.com/hilfarm/hilfarm/runner"
)

// MaxResultBytes is the size budget of a job attempt's stored result (its
// JSON). A result over it is cut down in stages until it fits, and says so
// in its "cut" member (ResultCut), which the API returns as stored.
const MaxResultBytes = 256 << 10

// Limits the stages of cutting apply.
const (
	cutTextBytes    = 1 << 10 // a step's match, output or message; a test's message
	cutConsoleBytes = 4 << 10 // a test's console slice
	cutKeepSteps    = 50      // steps kept at each end of an attempt (plus every step that did not pass)
	cutKeepTests    = 50      // tests kept at each end (plus every test that did not pass)
	cutKeepValues   = 100     // captures and measures kept
)

// ResultCut says what was cut from a result to fit MaxResultBytes.
type ResultCut struct {
	OriginalBytes int `json:"original_bytes"`
	LimitBytes    int `json:"limit_bytes"`
	// TextsShortened counts messages, matches, outputs and console slices
	// cut to their head and tail.
	TextsShortened int `json:"texts_shortened,omitempty"`
	// StepsDropped and TestsDropped count the steps and tests left out
	// (the first and last ones and every one that did not pass are kept).
	StepsDropped        int `json:"steps_dropped,omitempty"`
	MeasurementsDropped int `json:"measurements_dropped,omitempty"`
	TestsDropped        int `json:"tests_dropped,omitempty"`
	ValuesDropped       int `json:"values_dropped,omitempty"` // captures and measures
}

// cutResult is the stored form of a result: the runner's result, plus
// "cut" when it was cut.
type cutResult struct {
	*runner.Result
	Cut *ResultCut `json:"cut,omitempty"`
}

// budgetResult is res as JSON within limit bytes, cut (and marked) as needed.
func budgetResult(res *runner.Result, limit int) json.RawMessage {
	b, err := json.Marshal(res)
	if err != nil || len(b) <= limit {
		return b
	}
	cut := &ResultCut{OriginalBytes: len(b), LimitBytes: limit}
	r := *res // shallow copy; every slice that is changed is copied first
	stages := []func(*runner.Result, *ResultCut){cutTexts, cutSteps, cutTests, cutEverything}
	for _, stage := range stages {
		stage(&r, cut)
		if b, err = json.Marshal(cutResult{Result: &r, Cut: cut}); err == nil && len(b) <= limit {
			return b
		}
	}
	return b // cutEverything leaves a few hundred bytes
}

func shorten(s string, n int, cut *ResultCut) string {
	if len(s) <= n {
		return s
	}
	cut.TextsShortened++
	head, tail := n/2, n/4
	return fmt.Sprintf("%s\n[... %d bytes cut: result size budget ...]\n%s", s[:head], len(s)-head-tail, s[len(s)-tail:])
}

func eachTest(r *runner.Result, fn func(*runner.TestResult)) {
	if r.Setup != nil {
		t := *r.Setup
		fn(&t)
		r.Setup = &t
	}
	r.Tests = append([]runner.TestResult(nil), r.Tests...)
	for i := range r.Tests {
		fn(&r.Tests[i])
	}
	if r.Teardown != nil {
		t := *r.Teardown
		fn(&t)
		r.Teardown = &t
	}
}

func cutTexts(r *runner.Result, cut *ResultCut) {
	r.Message = shorten(r.Message, cutTextBytes*4, cut)
	eachTest(r, func(t *runner.TestResult) {
		t.Message = shorten(t.Message, cutTextBytes, cut)
		t.Console = shorten(t.Console, cutConsoleBytes, cut)
		t.Attempts = append([]runner.Attempt(nil), t.Attempts...)
		for i := range t.Attempts {
			a := &t.Attempts[i]
			a.Message = shorten(a.Message, cutTextBytes, cut)
			a.Steps = append([]runner.StepResult(nil), a.Steps...)
			for k := range a.Steps {
				s := &a.Steps[k]
				s.Summary = shorten(s.Summary, cutTextBytes, cut)
				s.Message = shorten(s.Message, cutTextBytes, cut)
				s.Match = shorten(s.Match, cutTextBytes, cut)
				s.Output = shorten(s.Output, cutTextBytes, cut)
			}
		}
	})
	if len(r.Captures) > cutKeepValues {
		m := map[string]string{}
		for k, v := range r.Captures {
			if len(m) < cutKeepValues {
				m[k] = shorten(v, cutTextBytes, cut)
			} else {
				cut.ValuesDropped++
			}
		}
		r.Captures = m
	}
	if len(r.Measures) > cutKeepValues {
		m := map[string]float64{}
		for k, v := range r.Measures {
			if len(m) < cutKeepValues {
				m[k] = v
			} else {
				cut.ValuesDropped++
			}
		}
		r.Measures = m
	}
}

func cutSteps(r *runner.Result, cut *ResultCut) {
	eachTest(r, func(t *runner.TestResult) {
		t.Attempts = append([]runner.Attempt(nil), t.Attempts...)
		for i := range t.Attempts {
			a := &t.Attempts[i]
			if n := len(a.Steps); n > 2*cutKeepSteps {
				var kept []runner.StepResult
				for k, s := range a.Steps {
					if k < cutKeepSteps || k >= n-cutKeepSteps || s.Outcome != runner.Passed {
						kept = append(kept, s)
					}
				}
				cut.StepsDropped += n - len(kept)
				a.Steps = kept
			}
			if n := len(a.Measurements); n > 2*cutKeepSteps {
				var kept []runner.Measurement
				for k, m := range a.Measurements {
					if k < cutKeepSteps || k >= n-cutKeepSteps || m.Verdict != runner.VerdictPass {
						kept = append(kept, m)
					}
				}
				cut.MeasurementsDropped += n - len(kept)
				a.Measurements = kept
			}
		}
	})
}

func cutTests(r *runner.Result, cut *ResultCut) {
	n := len(r.Tests)
	if n <= 2*cutKeepTests {
		return
	}
	var kept []runner.TestResult
	for k, t := range r.Tests {
		if k < cutKeepTests || k >= n-cutKeepTests || t.Outcome != runner.Passed {
			kept = append(kept, t)
		}
	}
	cut.TestsDropped += n - len(kept)
	r.Tests = kept
}

// cutEverything keeps the verdict and drops the evidence.
func cutEverything(r *runner.Result, cut *ResultCut) {
	for _, t := range r.Tests {
		for _, a := range t.Attempts {
			cut.StepsDropped += len(a.Steps)
			cut.MeasurementsDropped += len(a.Measurements)
		}
	}
	cut.TestsDropped += len(r.Tests)
	if r.Setup != nil || r.Teardown != nil {
		cut.TestsDropped += btoi(r.Setup != nil) + btoi(r.Teardown != nil)
	}
	cut.ValuesDropped += len(r.Captures) + len(r.Measures)
	r.Tests, r.Setup, r.Teardown, r.Captures, r.Measures = []runner.TestResult{}, nil, nil, nil, nil
	r.Message = shorten(r.Message, cutTextBytes, cut)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
