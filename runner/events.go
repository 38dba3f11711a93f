package runner

import (
	"encoding/json"
	"time"

	"github.com/hilfarm/hilfarm/specs"
)

// Event is one item of a job's event stream. Every event marshals to a JSON
// object with a "type" field (its Type) and a "time" field. The concrete
// types are JobStarted, JobFinished, TestStarted, TestFinished,
// StepStarted, StepFinished, ConsoleOutput, ConsoleGap, MeasurementTaken and
// Log.
type Event interface {
	// Type is the event's "type" in JSON, e.g. "step_finished".
	Type() string
	// When is the event's time.
	When() time.Time
}

// Phase is where in a spec a test or step runs.
type Phase string

// The phases.
const (
	PhaseSetup    Phase = "setup"
	PhaseTest     Phase = "test"
	PhaseTeardown Phase = "teardown"
)

// JobStarted is the first event of a Run.
type JobStarted struct {
	Time     time.Time       `json:"time"`
	Spec     string          `json:"spec"`
	Board    specs.BoardInfo `json:"board"`
	Firmware specs.Firmware  `json:"firmware"`
	Tests    []string        `json:"tests"`
}

// JobFinished is the last event of a Run.
type JobFinished struct {
	Time     time.Time `json:"time"`
	Outcome  Outcome   `json:"outcome"`
	Message  string    `json:"message,omitempty"`
	Duration Duration  `json:"duration_ms"`
}

// TestStarted starts an attempt of a test (or the setup or teardown phase).
type TestStarted struct {
	Time    time.Time `json:"time"`
	Phase   Phase     `json:"phase"`
	Test    string    `json:"test"`
	Attempt int       `json:"attempt"`
	// Iteration is the campaign iteration (from 1) this attempt is, in a
	// test with a repeat block; 0 otherwise.
	Iteration int `json:"iteration,omitempty"`
}

// TestFinished ends an attempt.
type TestFinished struct {
	Time    time.Time `json:"time"`
	Phase   Phase     `json:"phase"`
	Test    string    `json:"test"`
	Attempt int       `json:"attempt"`
	// Iteration: see TestStarted. A campaign ends with a TestFinished
	// with Iteration 0 and Final set: the campaign's outcome.
	Iteration int      `json:"iteration,omitempty"`
	Outcome   Outcome  `json:"outcome"`
	Kind      string   `json:"kind,omitempty"`
	Message   string   `json:"message,omitempty"`
	Duration  Duration `json:"duration_ms"`
	// Final is true when no further attempt follows.
	Final bool `json:"final"`
}

// StepStarted starts a step.
type StepStarted struct {
	Time    time.Time      `json:"time"`
	Phase   Phase          `json:"phase"`
	Test    string         `json:"test"`
	Attempt int            `json:"attempt"`
	Index   int            `json:"index"`
	Kind    specs.StepKind `json:"kind"`
	Summary string         `json:"summary"`
}

// StepFinished ends a step.
type StepFinished struct {
	Time     time.Time      `json:"time"`
	Phase    Phase          `json:"phase"`
	Test     string         `json:"test"`
	Attempt  int            `json:"attempt"`
	Index    int            `json:"index"`
	Kind     specs.StepKind `json:"kind"`
	Summary  string         `json:"summary"`
	Outcome  Outcome        `json:"outcome"`
	FailKind string         `json:"fail_kind,omitempty"`
	Message  string         `json:"message,omitempty"`
	Duration Duration       `json:"duration_ms"`
}

// ConsoleOutput carries console bytes as the runner read them. Data is
// shared with the runner's caller: a sink must not modify it. In JSON it
// is a string (invalid UTF-8 is replaced).
type ConsoleOutput struct {
	Time time.Time `json:"time"` // when the bytes were read
	Data []byte    `json:"-"`
	// Offset is the console event's Offset: where Data starts in the
	// board's recorded log, when the console is recorded (serve).
	Offset int64 `json:"-"`
}

// ConsoleGap says the console was lost (Lost true, Err the cause) or came back.
type ConsoleGap struct {
	Time time.Time `json:"time"`
	Lost bool      `json:"lost"`
	Err  string    `json:"error,omitempty"`
}

// MeasurementTaken carries a measurement as soon as it is judged.
type MeasurementTaken struct {
	Time        time.Time   `json:"time"`
	Test        string      `json:"test"`
	Attempt     int         `json:"attempt"`
	Measurement Measurement `json:"measurement"`
}

// Log is a line of output from a flash tool or a host tool.
type Log struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source"` // "flash" or "tool NAME"
	Line   string    `json:"line"`
}

// Type implements Event.
func (JobStarted) Type() string { return "job_started" }

// Type implements Event.
func (JobFinished) Type() string { return "job_finished" }

// Type implements Event.
func (TestStarted) Type() string { return "test_started" }

// Type implements Event.
func (TestFinished) Type() string { return "test_finished" }

// Type implements Event.
func (StepStarted) Type() string { return "step_started" }

// Type implements Event.
func (StepFinished) Type() string { return "step_finished" }

// Type implements Event.
func (ConsoleOutput) Type() string { return "console" }

// Type implements Event.
func (ConsoleGap) Type() string { return "console_gap" }

// Type implements Event.
func (MeasurementTaken) Type() string { return "measurement" }

// Type implements Event.
func (Log) Type() string { return "log" }

// When implements Event.
func (e JobStarted) When() time.Time { return e.Time }

// When implements Event.
func (e JobFinished) When() time.Time { return e.Time }

// When implements Event.
func (e TestStarted) When() time.Time { return e.Time }

// When implements Event.
func (e TestFinished) When() time.Time { return e.Time }

// When implements Event.
func (e StepStarted) When() time.Time { return e.Time }

// When implements Event.
func (e StepFinished) When() time.Time { return e.Time }

// When implements Event.
func (e ConsoleOutput) When() time.Time { return e.Time }

// When implements Event.
func (e ConsoleGap) When() time.Time { return e.Time }

// When implements Event.
func (e MeasurementTaken) When() time.Time { return e.Time }

// When implements Event.
func (e Log) When() time.Time { return e.Time }

// MarshalJSON adds the type field.
func (e JobStarted) MarshalJSON() ([]byte, error) {
	type plain JobStarted
	return typed(e.Type(), plain(e))
}

// MarshalJSON adds the type field.
func (e JobFinished) MarshalJSON() ([]byte, error) {
	type plain JobFinished
	return typed(e.Type(), plain(e))
}

// MarshalJSON adds the type field.
func (e TestStarted) MarshalJSON() ([]byte, error) {
	type plain TestStarted
	return typed(e.Type(), plain(e))
}

// MarshalJSON adds the type field.
func (e TestFinished) MarshalJSON() ([]byte, error) {
	type plain TestFinished
	return typed(e.Type(), plain(e))
}

// MarshalJSON adds the type field.
func (e StepStarted) MarshalJSON() ([]byte, error) {
	type plain StepStarted
	return typed(e.Type(), plain(e))
}

// MarshalJSON adds the type field.
func (e StepFinished) MarshalJSON() ([]byte, error) {
	type plain StepFinished
	return typed(e.Type(), plain(e))
}

// MarshalJSON adds the type field and writes Data as a string.
func (e ConsoleOutput) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type string    `json:"type"`
		Time time.Time `json:"time"`
		Data string    `json:"data"`
	}{e.Type(), e.Time, string(e.Data)})
}

// MarshalJSON adds the type field.
func (e ConsoleGap) MarshalJSON() ([]byte, error) {
	type plain ConsoleGap
	return typed(e.Type(), plain(e))
}

// MarshalJSON adds the type field.
func (e MeasurementTaken) MarshalJSON() ([]byte, error) {
	type plain MeasurementTaken
	return typed(e.Type(), plain(e))
}

// MarshalJSON adds the type field.
func (e Log) MarshalJSON() ([]byte, error) {
	type plain Log
	return typed(e.Type(), plain(e))
}

// typed marshals v (a struct without methods) with a leading "type" field.
func typed(typ string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	t, _ := json.Marshal(typ)
	out := make([]byte, 0, len(b)+len(t)+10)
	out = append(out, `{"type":`...)
	out = append(out, t...)
	if len(b) > 2 {
		out = append(out, ',')
	}
	return append(out, b[1:]...), nil
}
