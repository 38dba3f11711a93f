package runner

import "time"

// A campaign is a test with a `repeat` block (specs.Repeat): its steps run
// as iterations and its TestResult carries a Campaign with per-iteration
// outcomes and statistics. This file holds the result's form; its JSON is
// stable (fields are only ever added) and is what the controller stores,
// merges across boards (spread), compares and plots.

// Campaign is the outcome of a repeated test.
type Campaign struct {
	Planned   int `json:"planned"`    // the repeat count; 0 when by duration only
	Run       int `json:"iterations"` // iterations that ran
	Passed    int `json:"passed"`
	Failed    int `json:"failed"`
	Errors    int `json:"errors"`
	Cancelled int `json:"cancelled,omitempty"`
	// StoppedBy says why the campaign ended: StopCount, StopDuration,
	// StopFailures, StopTimeout or StopCancel.
	StoppedBy string `json:"stopped_by"`
	// PassRate is Passed/Run; PassRateLow and PassRateHigh bound it with a
	// 95% Wilson score interval.
	PassRate     float64 `json:"pass_rate"`
	PassRateLow  float64 `json:"pass_rate_low"`
	PassRateHigh float64 `json:"pass_rate_high"`
	MinPassRate  float64 `json:"min_pass_rate"`
	Seed         int64   `json:"seed"`
	// IterationTime is the distribution of iteration durations (ms).
	IterationTime Stats `json:"iteration_ms"`
	// Measures: one distribution per measurement taken in the iterations.
	Measures map[string]Stats `json:"measures,omitempty"`
	// CutDelay: the distribution of power-cut delays (ms), when the test
	// cuts power.
	CutDelay *Stats `json:"cut_delay_ms,omitempty"`
	// Iterations are the per-iteration outcomes in order. Beyond
	// MaxCampaignIterations entries the list is summarised: every
	// iteration that did not pass is kept (up to the cap), passing ones are
	// dropped from the middle, and Elided counts what was left out (the
	// counts and statistics above always cover every iteration).
	Iterations []Iteration `json:"iteration_list"`
	Elided     int         `json:"elided,omitempty"`
	// Boards is set when the campaign was spread over several boards:
	// which iterations each ran.
	Boards []CampaignBoard `json:"boards,omitempty"`
}

// Why a campaign stopped.
const (
	StopCount    = "count"    // ran its count
	StopDuration = "duration" // its duration ran out
	StopFailures = "failures" // stop_after_failures reached
	StopTimeout  = "timeout"  // the test or job timeout ran out
	StopCancel   = "cancel"   // the job was cancelled
)

// MaxCampaignIterations bounds Campaign.Iterations (see there).
const MaxCampaignIterations = 1000

// Iteration is one run of a campaign's steps.
type Iteration struct {
	Number   int       `json:"n"` // from 1
	Outcome  Outcome   `json:"outcome"`
	Kind     string    `json:"kind,omitempty"`
	Message  string    `json:"message,omitempty"`
	Started  time.Time `json:"started"`
	Duration Duration  `json:"duration_ms"`
	Board    string    `json:"board,omitempty"` // spread campaigns
	// CutDelays are the delays of the iteration's power cuts in order (ms),
	// so that a failure can be replayed with the same delay.
	CutDelays []Duration         `json:"cut_delays_ms,omitempty"`
	Measures  map[string]float64 `json:"measures,omitempty"`
	// ConsoleStart and ConsoleEnd locate the iteration in the job's
	// console (byte offsets of the recording); Console is its slice, kept
	// only for iterations that did not pass (bounded like a test's).
	ConsoleStart int64  `json:"console_start"`
	ConsoleEnd   int64  `json:"console_end"`
	Console      string `json:"console,omitempty"`
}

// Stats is a distribution: N values with their min, median, p95 and max,
// and a histogram of HistogramBuckets equal-width buckets from Min to Max.
type Stats struct {
	Unit      string   `json:"unit,omitempty"`
	N         int      `json:"n"`
	Min       float64  `json:"min"`
	Median    float64  `json:"median"`
	P95       float64  `json:"p95"`
	Max       float64  `json:"max"`
	Mean      float64  `json:"mean"`
	Histogram []Bucket `json:"histogram,omitempty"`
}

// HistogramBuckets is the number of buckets of a Stats histogram.
const HistogramBuckets = 20

// Bucket counts the values in [Lo, Hi) (the last bucket includes Hi).
type Bucket struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Count int     `json:"count"`
}

// CampaignBoard is one board's share of a spread campaign.
type CampaignBoard struct {
	Board      string  `json:"board"`
	Iterations int     `json:"iterations"`
	Passed     int     `json:"passed"`
	PassRate   float64 `json:"pass_rate"`
}
