package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenResult is a Result with every outcome, written by hand so that the
// golden files do not depend on timing.
func goldenResult() *runner.Result {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	d := func(ms int) runner.Duration { return runner.Duration(time.Duration(ms) * time.Millisecond) }
	step := func(i int, kind specs.StepKind, summary string, o runner.Outcome, fk, msg string, ms int) runner.StepResult {
		return runner.StepResult{Index: i, Kind: kind, Summary: summary, Outcome: o, FailKind: fk, Message: msg, Duration: d(ms),
			Range: specs.Range{Filename: "smoke.hcl", Start: specs.Pos{Line: 10 + i, Column: 5, Byte: 100 + 20*i}, End: specs.Pos{Line: 10 + i, Column: 25, Byte: 120 + 20*i}}}
	}
	expectMsg := "expected text \"x=7\" within 2s; waited 2s; last console lines:\n  | config get x\n  | error: x is not set\n  | sim> "
	return &runner.Result{
		Spec:     "boot-smoke",
		Board:    specs.BoardInfo{Name: "sim-01", Type: "sim", Tags: map[string]string{"rack": "virtual", "shield": "none"}},
		Firmware: specs.Firmware{Name: "fw-1.2.0.hcl", Version: "1.2.0", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Path: "/var/lib/hilfarm/firmware/9f86d081"},
		Outcome:  runner.Error,
		Message:  `test "flash again": board sim-01: flash: verify failed at 0x08004000`,
		Started:  t0,
		Finished: at(9500),
		Duration: d(9500),
		Setup: &runner.TestResult{Name: "setup", Outcome: runner.Passed, Started: t0, Duration: d(800),
			Attempts: []runner.Attempt{{Number: 1, Outcome: runner.Passed, Started: t0, Duration: d(800), Steps: []runner.StepResult{
				step(0, specs.StepFlash, "flash", runner.Passed, "", "", 300),
				step(1, specs.StepPower, "power cycle", runner.Passed, "", "", 100),
				step(2, specs.StepExpect, `expect text "sim> "`, runner.Passed, "", "", 400),
			}}},
			Console: "Booting hilfarm-sim v1.2.0\r\nsim> ", ConsoleBytes: 33},
		Tests: []runner.TestResult{
			{Name: "temperature", Outcome: runner.Passed, Started: at(800), Duration: d(50),
				Attempts: []runner.Attempt{{Number: 1, Outcome: runner.Passed, Started: at(800), Duration: d(50),
					Steps: []runner.StepResult{
						step(0, specs.StepSend, `send line "sensor temp"`, runner.Passed, "", "", 1),
						{Index: 1, Kind: specs.StepMeasure, Summary: "measure temp_c", Outcome: runner.Passed, Duration: d(49), Match: "temp=41.5C"},
					},
					Measurements: []runner.Measurement{{Name: "temp_c", Value: 41.5, Unit: "degC", Min: fp(15), Max: fp(45), MarginalMax: fp(40), Verdict: runner.VerdictMarginal, At: at(850)}},
				}},
				Console: "sensor temp\r\ntemp=41.5C\r\nsim> ", ConsoleBytes: 30},
			{Name: "config survives a power cycle", Outcome: runner.Failed, Kind: runner.KindExpect, Message: expectMsg, Started: at(850), Duration: d(4400),
				Attempts: []runner.Attempt{
					{Number: 1, Outcome: runner.Failed, Kind: runner.KindExpect, Message: expectMsg, Started: at(850), Duration: d(2200),
						Steps: []runner.StepResult{step(0, specs.StepExpect, `expect text "x=7"`, runner.Failed, runner.KindExpect, expectMsg, 2000)}},
					{Number: 2, Outcome: runner.Failed, Kind: runner.KindExpect, Message: expectMsg, Started: at(3050), Duration: d(2200),
						Steps: []runner.StepResult{step(0, specs.StepExpect, `expect text "x=7"`, runner.Failed, runner.KindExpect, expectMsg, 2000)}},
				},
				Console: "config get x\r\nerror: x is not set\r\n\x1b[31mred\x1b[0m \x00\r\n[hilfarm: attempt 1 failed: expected text \"x=7\" within 2s; retrying]\r\nconfig get x\r\nerror: x is not set\r\nsim> ", ConsoleBytes: 120},
			{Name: "flash again", Outcome: runner.Error, Kind: runner.KindFlash, Message: "board sim-01: flash: verify failed at 0x08004000", Started: at(5250), Duration: d(300),
				Attempts: []runner.Attempt{{Number: 1, Outcome: runner.Error, Kind: runner.KindFlash, Message: "board sim-01: flash: verify failed at 0x08004000", Started: at(5250), Duration: d(300),
					Steps: []runner.StepResult{{Index: 0, Kind: specs.StepFlash, Summary: "flash", Outcome: runner.Error, FailKind: runner.KindFlash,
						Message: "board sim-01: flash: verify failed at 0x08004000", Duration: d(300), Output: "sim sim-01: flashing fw.hcl\nsim sim-01: error: verify failed at 0x08004000\n"}}}}},
			{Name: "cancelled one", Outcome: runner.Cancelled, Kind: runner.KindCancel, Message: "cancelled during wait 1m0s", Started: at(5550), Duration: d(3000),
				Attempts: []runner.Attempt{{Number: 1, Outcome: runner.Cancelled, Kind: runner.KindCancel, Message: "cancelled during wait 1m0s", Started: at(5550), Duration: d(3000),
					Steps: []runner.StepResult{step(0, specs.StepWait, "wait 1m0s", runner.Cancelled, runner.KindCancel, "cancelled during wait 1m0s", 3000)}}}},
			{Name: "never run", Outcome: runner.Skipped, Kind: runner.KindCancel, Message: "not run: job cancelled", Started: at(8550)},
		},
		Teardown: &runner.TestResult{Name: "teardown", Outcome: runner.Failed, Kind: runner.KindFailOn, Message: "fail_on text \"panic:\" matched \"panic:\" during power off", Started: at(8550), Duration: d(900),
			Attempts: []runner.Attempt{{Number: 1, Outcome: runner.Failed, Kind: runner.KindFailOn, Message: "fail_on text \"panic:\" matched \"panic:\" during power off", Started: at(8550), Duration: d(900),
				Steps: []runner.StepResult{step(0, specs.StepPower, "power off", runner.Failed, runner.KindFailOn, "fail_on text \"panic:\" matched \"panic:\" during power off", 900)}}},
			Console: "panic: bye\r\n", ConsoleBytes: 12},
		Captures: map[string]string{"banner_version": "1.2.0"},
		Measures: map[string]float64{"temp_c": 41.5},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./runner -run Golden -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; -update rewrites it):\n%s", p, diff)
	}
}

func TestGoldenJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := runner.WriteJUnit(&b, goldenResult()); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.junit.xml", b.Bytes())

	// It is well-formed XML with the counts CI reporters read.
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	if doc.Tests != 6 || doc.Failures != 2 || doc.Errors != 2 || doc.Skipped != 1 || len(doc.Suites[0].Cases) != 6 {
		t.Errorf("counts tests=%d failures=%d errors=%d skipped=%d cases=%d; want 6 2 2 1 6",
			doc.Tests, doc.Failures, doc.Errors, doc.Skipped, len(doc.Suites[0].Cases))
	}
}

func TestGoldenJSON(t *testing.T) {
	var b bytes.Buffer
	if err := runner.WriteJSON(&b, goldenResult()); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", b.Bytes())
	var back runner.Result
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if diff := cmp.Diff(goldenResult(), &back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}

// TestReportsOfARun writes both reports of a real (fake-board) run.
func TestReportsOfARun(t *testing.T) {
	r := newRig()
	r.console.Print("hello\n")
	spec := &specs.Spec{Name: "r", Tests: []specs.Test{
		{Name: "ok", Steps: []specs.Step{expectText(t, "hello", long)}},
		{Name: "bad", Steps: []specs.Step{expectText(t, "nope", time.Millisecond)}},
	}}
	res := r.run(t, context.Background(), spec, runner.Options{})
	var j, x bytes.Buffer
	if err := runner.WriteJSON(&j, res); err != nil {
		t.Fatal(err)
	}
	if err := runner.WriteJUnit(&x, res); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(j.Bytes()) || !bytes.Contains(x.Bytes(), []byte(`<failure message="expected text &#34;nope&#34; within 1ms; waited`)) {
		t.Errorf("reports:\n%s\n%s", j.String(), x.String())
	}
}

// TestJUnitJobLevelError: a job that is an error only because the board's
// safe state failed afterwards still shows an error in JUnit.
func TestJUnitJobLevelError(t *testing.T) {
	res := &runner.Result{Spec: "s", Outcome: runner.Error, SafeStateError: "power off: relay stuck",
		Tests: []runner.TestResult{{Name: "t", Outcome: runner.Passed}}}
	var b strings.Builder
	if err := runner.WriteJUnit(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, `name="(job)"`) || !strings.Contains(out, `errors="1"`) || !strings.Contains(out, "relay stuck") {
		t.Errorf("JUnit of a safe-state error:\n%s", out)
	}
}
