package farm

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hilfarm/hilfarm/runner"
)

// MaxResultBytes is the size budget of a job attempt's stored result (its
// JSON). A result over it is cut down in stages until it fits, and says so
// in its "cut" member (ResultCut), which the API returns as stored.
const MaxResultBytes = 256 << 10

// Limits the stages of cutting apply (see budgetResult).
const (
	cutTextBytes    = 1 << 10 // a step's match, output or message; a test's message
	cutConsoleBytes = 4 << 10 // a test's console slice
	cutKeepSteps    = 50      // steps kept at each end of an attempt (plus every step that did not pass)
	cutKeepTests    = 50      // tests kept at each end (plus every test that did not pass)
	cutKeepValues   = 100     // captures and measures kept
)

const cutMarker = " bytes cut: result size budget ...]"

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
	// Each stage cuts more; the first that fits wins.
	stages := []func(*runner.Result, *ResultCut){
		func(r *runner.Result, c *ResultCut) { cutTexts(r, c, cutConsoleBytes, cutTextBytes) },
		func(r *runner.Result, c *ResultCut) { cutSteps(r, c, cutKeepSteps) },
		func(r *runner.Result, c *ResultCut) { cutTexts(r, c, cutConsoleBytes/4, cutTextBytes/4) },
		func(r *runner.Result, c *ResultCut) { cutTests(r, c, cutKeepTests) },
		func(r *runner.Result, c *ResultCut) { cutSteps(r, c, cutKeepSteps/5) },
		func(r *runner.Result, c *ResultCut) { cutTests(r, c, cutKeepTests/5) },
		cutEverything,
	}
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
	if !strings.Contains(s, cutMarker) { // counted once, however often cut
		cut.TextsShortened++
	}
	head, tail := n/2, n/4
	return fmt.Sprintf("%s\n[... %d%s\n%s", s[:head], len(s)-head-tail, cutMarker, s[len(s)-tail:])
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

func cutTexts(r *runner.Result, cut *ResultCut, consoleBytes, textBytes int) {
	r.Message = shorten(r.Message, textBytes*4, cut)
	eachTest(r, func(t *runner.TestResult) {
		t.Message = shorten(t.Message, textBytes, cut)
		t.Console = shorten(t.Console, consoleBytes, cut)
		t.Attempts = append([]runner.Attempt(nil), t.Attempts...)
		for i := range t.Attempts {
			a := &t.Attempts[i]
			a.Message = shorten(a.Message, textBytes, cut)
			a.Steps = append([]runner.StepResult(nil), a.Steps...)
			for k := range a.Steps {
				s := &a.Steps[k]
				s.Summary = shorten(s.Summary, textBytes, cut)
				s.Message = shorten(s.Message, textBytes, cut)
				s.Match = shorten(s.Match, textBytes, cut)
				s.Output = shorten(s.Output, textBytes, cut)
			}
		}
	})
	if len(r.Captures) > cutKeepValues {
		m := map[string]string{}
		for k, v := range r.Captures {
			if len(m) < cutKeepValues {
				m[k] = shorten(v, textBytes, cut)
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

func cutSteps(r *runner.Result, cut *ResultCut, keep int) {
	eachTest(r, func(t *runner.TestResult) {
		t.Attempts = append([]runner.Attempt(nil), t.Attempts...)
		for i := range t.Attempts {
			a := &t.Attempts[i]
			if n := len(a.Steps); n > 2*keep {
				var kept []runner.StepResult
				for k, s := range a.Steps {
					if k < keep || k >= n-keep || s.Outcome != runner.Passed {
						kept = append(kept, s)
					}
				}
				cut.StepsDropped += n - len(kept)
				a.Steps = kept
			}
			if n := len(a.Measurements); n > 2*keep {
				var kept []runner.Measurement
				for k, m := range a.Measurements {
					if k < keep || k >= n-keep || m.Verdict != runner.VerdictPass {
						kept = append(kept, m)
					}
				}
				cut.MeasurementsDropped += n - len(kept)
				a.Measurements = kept
			}
		}
	})
}

func cutTests(r *runner.Result, cut *ResultCut, keep int) {
	n := len(r.Tests)
	if n <= 2*keep {
		return
	}
	var kept []runner.TestResult
	for k, t := range r.Tests {
		if k < keep || k >= n-keep || t.Outcome != runner.Passed {
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
