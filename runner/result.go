package runner

import (
	"encoding/json"
	"time"

	"github.com/hilfarm/hilfarm/specs"
)

// Outcome is the verdict on a step, an attempt, a test or a whole job.
type Outcome string

// The outcomes. Failed blames the firmware; Error blames the infrastructure
// (or the spec); they are never confused.
const (
	// Passed: everything the spec asked for happened.
	Passed Outcome = "passed"
	// Failed: the firmware misbehaved: an expect timed out, an assertion or
	// a limit failed, a fail_on pattern appeared, the console went idle,
	// a tool judged the device and exited non-zero.
	Failed Outcome = "failed"
	// Error: the infrastructure failed: the flasher, power, a GPIO line or a
	// tool could not do its job, the console was lost, a step panicked, an
	// expression could not be evaluated.
	Error Outcome = "error"
	// Skipped: not run (setup failed, or the job ended before the test).
	Skipped Outcome = "skipped"
	// Cancelled: the job was cancelled while this ran.
	Cancelled Outcome = "cancelled"
)

// rank orders outcomes by how much they dominate a summary.
func (o Outcome) rank() int {
	switch o {
	case Cancelled:
		return 4
	case Error:
		return 3
	case Failed:
		return 2
	case Passed:
		return 1
	}
	return 0 // skipped, empty
}

// worst returns the dominating outcome of a and b.
func worst(a, b Outcome) Outcome {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Failure kinds: why a step did not pass. They are the JUnit failure/error
// type attribute and are stable.
const (
	KindExpect    = "expect"  // a pattern did not appear within its bound
	KindIdle      = "idle"    // the console was silent for idle_timeout
	KindFailOn    = "fail_on" // a fail_on pattern appeared
	KindAssert    = "assert"  // an assertion was false
	KindLimit     = "limit"   // a measurement was outside its limits
	KindMeasure   = "measure" // a measured value was not a number
	KindGPIO      = "gpio"    // a line did not reach its value in time, or a line failed
	KindTool      = "tool"    // a tool exited non-zero, or could not run
	KindTimeout   = "timeout" // the test or job timeout ran out
	KindFlash     = "flash"   // the flasher failed
	KindPower     = "power"   // power or reset failed
	KindConsole   = "console" // the console was lost, closed or a write failed
	KindPanic     = "panic"   // a step panicked
	KindSpec      = "spec"    // an expression or pattern could not be evaluated
	KindCancel    = "cancel"  // the job was cancelled
	KindSkipped   = "skipped" // not run
	KindSetup     = "setup"   // the tests were skipped because setup did not pass
	KindJob       = "job"     // the job itself ended badly (e.g. the board's safe state failed)
	KindSafeState = "safe_state"
)

// Result is the outcome of one Run, with its evidence. Its JSON form (see
// WriteJSON) is stable: fields are only ever added.
type Result struct {
	Spec     string          `json:"spec"`
	Board    specs.BoardInfo `json:"board"`
	Firmware specs.Firmware  `json:"firmware"`
	Outcome  Outcome         `json:"outcome"`
	// Message says why the job did not pass (empty when it passed).
	Message  string    `json:"message,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Duration Duration  `json:"duration_ms"`
	// Setup and Teardown are nil when the spec has none.
	Setup    *TestResult  `json:"setup,omitempty"`
	Tests    []TestResult `json:"tests"`
	Teardown *TestResult  `json:"teardown,omitempty"`
	// SafeStateError is set when the board could not be put back in its
	// safe state (power off) after the job: an infrastructure error.
	SafeStateError string `json:"safe_state_error,omitempty"`
	// Captures and Measures are the values in scope at the end of the job.
	Captures map[string]string  `json:"captures,omitempty"`
	Measures map[string]float64 `json:"measures,omitempty"`
}

// TestResult is one test (a JUnit testcase), or the setup or teardown phase.
type TestResult struct {
	Name    string  `json:"name"`
	Outcome Outcome `json:"outcome"`
	// Kind is the failure kind of the deciding attempt (one of the Kind
	// constants); Message the human explanation with its evidence.
	Kind     string    `json:"kind,omitempty"`
	Message  string    `json:"message,omitempty"`
	Started  time.Time `json:"started"`
	Duration Duration  `json:"duration_ms"`
	Attempts []Attempt `json:"attempts,omitempty"`
	// Console is the test's slice of the console (all attempts), at most
	// Options.TestConsoleMax bytes: the head and the tail with a
	// "[... N bytes elided ...]" marker between them.
	Console string `json:"console"`
	// ConsoleBytes is how many console bytes the test saw in all.
	ConsoleBytes int64 `json:"console_bytes"`
	// Campaign is set for a test with a `repeat` block (campaign.go).
	// Its Attempts then hold the steps of at most a few iterations: the
	// first, and the first ones that did not pass.
	Campaign *Campaign `json:"campaign,omitempty"`
}

// Attempt is one try at a test. A test with retries has several.
type Attempt struct {
	Number       int           `json:"number"` // from 1
	Outcome      Outcome       `json:"outcome"`
	Kind         string        `json:"kind,omitempty"`
	Message      string        `json:"message,omitempty"`
	Started      time.Time     `json:"started"`
	Duration     Duration      `json:"duration_ms"`
	Steps        []StepResult  `json:"steps"`
	Measurements []Measurement `json:"measurements,omitempty"`
}

// StepResult is one executed step.
type StepResult struct {
	Index    int            `json:"index"` // in its block, from 0
	Kind     specs.StepKind `json:"kind"`
	Summary  string         `json:"summary"` // e.g. `expect text "U-Boot"`
	Outcome  Outcome        `json:"outcome"`
	FailKind string         `json:"fail_kind,omitempty"`
	Message  string         `json:"message,omitempty"`
	// Started is when the step began (RFC 3339 with nanoseconds), so that
	// gaps between steps and round trips can be computed from the report.
	Started  time.Time `json:"started"`
	Duration Duration  `json:"duration_ms"`
	// Match is the text an expect or measure matched; Output the tail of a
	// flash tool's or a tool's output.
	Match  string      `json:"match,omitempty"`
	Output string      `json:"output,omitempty"`
	Range  specs.Range `json:"range"`
}

// Verdict is a measurement's judgement against its limits.
type Verdict string

// The verdicts. Marginal passes but says the value is near a limit.
const (
	VerdictPass     Verdict = specs.VerdictPass
	VerdictMarginal Verdict = specs.VerdictMarginal
	VerdictFail     Verdict = specs.VerdictFail
)

// Measurement is a number read from the console and judged against limits.
type Measurement struct {
	Name        string    `json:"name"`
	Value       float64   `json:"value"`
	Unit        string    `json:"unit,omitempty"`
	Min         *float64  `json:"min,omitempty"`
	Max         *float64  `json:"max,omitempty"`
	MarginalMin *float64  `json:"marginal_min,omitempty"`
	MarginalMax *float64  `json:"marginal_max,omitempty"`
	Verdict     Verdict   `json:"verdict"`
	At          time.Time `json:"at"`
}

// Duration is a time.Duration that is written to JSON as milliseconds (a
// number with up to microsecond precision).
type Duration time.Duration

// MarshalJSON writes d in milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	ms := float64(time.Duration(d).Microseconds()) / 1000
	return json.Marshal(ms)
}

// UnmarshalJSON reads milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return err
	}
	*d = Duration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }
