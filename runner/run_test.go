package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hilfarm/hilfarm/fixtures/fake"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const long = time.Hour // a bound that never runs out in a passing test

// TestEveryStepPasses runs every step kind against a scripted fake board.
func TestEveryStepPasses(t *testing.T) {
	r := newRig()
	r.power.OnChange(func(on bool) {
		if on {
			r.console.Print("U-Boot 2023.01\r\nBooting v2.0.1\r\n=> ")
		}
	})
	r.console.Respond("version\n", "version\r\nfirmware 2.0.1 build 77\r\n=> ")
	r.console.Respond("sensor temp\n", "temp=25.5C\r\n=> ")
	r.console.Respond("\x03", "^C\r\n=> ")
	r.lines["button"].OnSet(func(v int) {
		if v == 1 {
			r.lines["led"].Drive(1)
		}
	})
	r.tools.Add("probe", func(ctx context.Context, args map[string]string, fw specs.Firmware, log io.Writer) (string, error) {
		fmt.Fprintf(log, "probing %s\n", args["what"])
		return "  3.30\n", nil
	})
	spec := &specs.Spec{
		Name:   "all-steps",
		FailOn: []specs.Pattern{text(t, "HardFault"), {Regex: tmpl(t, `Kernel panic`)}},
		Setup: []specs.Step{
			{Kind: specs.StepFlash, Flash: &specs.FlashStep{}},
			power(specs.PowerOn),
			expectText(t, "Booting v${firmware.version}", long),
		},
		Tests: []specs.Test{
			{Name: "version", Steps: []specs.Step{
				sendLine(t, "version"),
				expectRegex(t, `build (\d+)`, long, "build"),
				assertStep(t, `capture.build == "77"`, ""),
			}},
			{Name: "temperature", Steps: []specs.Step{
				sendLine(t, "sensor temp"),
				{Kind: specs.StepMeasure, Measure: &specs.MeasureStep{Name: "temp_c", Regex: *tmpl(t, `temp=([0-9.]+)C`), Group: 1, Unit: "degC",
					Within: long, Min: fp(15), Max: fp(45), MarginalMax: fp(40)}},
				assertStep(t, `measure.temp_c > 20`, ""),
			}},
			{Name: "button lights the LED", Steps: []specs.Step{
				{Kind: specs.StepGPIO, GPIO: &specs.GPIOStep{Line: "button", Set: 1, For: time.Millisecond}},
				{Kind: specs.StepWait, Wait: &specs.WaitStep{GPIO: "led", Value: 1, Within: long}},
				{Kind: specs.StepGPIO, GPIO: &specs.GPIOStep{Line: "led", Set: 0}},
			}},
			{Name: "tool and raw", Steps: []specs.Step{
				{Kind: specs.StepTool, Tool: &specs.ToolStep{Name: "probe", Args: map[string]*specs.Expr{"what": tmpl(t, "vdd on ${board.name}")}, Capture: "vdd"}},
				assertStep(t, `capture.vdd == "3.30"`, ""),
				sendRaw(t, `\x03`),
				expectText(t, "^C", long),
				waitFor(time.Millisecond),
			}},
			{Name: "reset and cycle", Steps: []specs.Step{
				{Kind: specs.StepReset, Reset: &specs.ResetStep{}},
				{Kind: specs.StepPower, Power: &specs.PowerStep{Action: specs.PowerCycle}},
				expectText(t, "=> ", long),
			}},
		},
		Teardown: []specs.Step{power(specs.PowerOff)},
	}
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Passed, runner.Passed, runner.Passed, runner.Passed, runner.Passed, runner.Passed)
	if res.Setup == nil || res.Setup.Outcome != runner.Passed || res.Teardown == nil || res.Teardown.Outcome != runner.Passed {
		t.Errorf("setup %+v, teardown %+v: want both passed", res.Setup, res.Teardown)
	}
	if diff := cmp.Diff([]string{"on", "cycle 1s", "off", "off"}, r.power.Ops()); diff != "" {
		t.Errorf("power ops (-want +got):\n%s", diff)
	}
	if got := r.reset.Count(); got != 1 {
		t.Errorf("resets = %d, want 1", got)
	}
	if fl := r.flasher.Flashed(); len(fl) != 1 || fl[0] != firmware {
		t.Errorf("flashed %v, want [%v]", fl, firmware)
	}
	if got, w := r.console.Written(), "version\nsensor temp\n\x03"; got != w {
		t.Errorf("written %q, want %q", got, w)
	}
	if diff := cmp.Diff([]string{"set 1", "set 0"}, r.lines["button"].Ops()); diff != "" {
		t.Errorf("button ops (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"build": "77", "vdd": "3.30"}, res.Captures); diff != "" {
		t.Errorf("captures (-want +got):\n%s", diff)
	}
	m := res.Tests[1].Attempts[0].Measurements
	if len(m) != 1 || m[0].Value != 25.5 || m[0].Verdict != runner.VerdictPass || m[0].Unit != "degC" {
		t.Errorf("measurements = %+v, want temp_c 25.5 degC pass", m)
	}
	if got := res.Tests[0].Console; !strings.Contains(got, "firmware 2.0.1 build 77") {
		t.Errorf("test console slice = %q, want the version answer", got)
	}
	if got := res.Setup.Attempts[0].Steps[0].Output; got != "flashing\ndone\n" {
		t.Errorf("flash output = %q", got)
	}
	types := r.eventTypes()
	if types[0] != "job_started" || types[len(types)-1] != "job_finished" {
		t.Errorf("events %v: want job_started first and job_finished last", types)
	}
	for _, w := range []string{"test_started", "step_started", "step_finished", "test_finished", "measurement", "log"} {
		if !strings.Contains(strings.Join(types, " "), w) {
			t.Errorf("events %v: no %s", types, w)
		}
	}
}

// TestOutcomes covers each way a test can end, with the fakes.
func TestOutcomes(t *testing.T) {
	exitErr := func() error {
		err := exec.Command("sh", "-c", "exit 3").Run()
		return fmt.Errorf("tool probe: %w", err)
	}()
	cases := []struct {
		name    string
		setup   func(r *rig)
		steps   func(t *testing.T) []specs.Step
		spec    func(s *specs.Spec)
		outcome runner.Outcome
		kind    string
		msg     string // a substring of the message
	}{
		{
			name:    "expect times out",
			setup:   func(r *rig) { r.console.Print("line one\r\nline two\r\n") },
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{expectText(t, "never", 20*time.Millisecond)} },
			outcome: runner.Failed, kind: runner.KindExpect,
			msg: "expected text \"never\" within 20ms; waited ",
		},
		{
			name:  "assert false with message",
			setup: func(r *rig) { r.console.Print("x=3\n") },
			steps: func(t *testing.T) []specs.Step {
				return []specs.Step{expectRegex(t, `x=(\d)`, long, "x"), assertStep(t, `capture.x == "7"`, "config lost: x=${capture.x}")}
			},
			outcome: runner.Failed, kind: runner.KindAssert, msg: "config lost: x=3",
		},
		{
			name:  "measurement over max",
			setup: func(r *rig) { r.console.Print("temp=51C\n") },
			steps: func(t *testing.T) []specs.Step {
				return []specs.Step{{Kind: specs.StepMeasure, Measure: &specs.MeasureStep{Name: "t", Regex: *tmpl(t, `temp=(\d+)C`), Group: 1, Unit: "degC", Within: long, Max: fp(45)}}}
			},
			outcome: runner.Failed, kind: runner.KindLimit, msg: "measure t = 51 degC is above max 45",
		},
		{
			name:  "measurement under min",
			setup: func(r *rig) { r.console.Print("v=2.9\n") },
			steps: func(t *testing.T) []specs.Step {
				return []specs.Step{{Kind: specs.StepMeasure, Measure: &specs.MeasureStep{Name: "v", Regex: *tmpl(t, `v=([0-9.]+)`), Group: 1, Within: long, Min: fp(3.0)}}}
			},
			outcome: runner.Failed, kind: runner.KindLimit, msg: "below min 3",
		},
		{
			name:    "fail_on while expecting",
			setup:   func(r *rig) { r.console.Print("booting\r\nHardFault at 0x0800\r\n") },
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{expectText(t, "login:", long)} },
			spec:    func(s *specs.Spec) { s.FailOn = []specs.Pattern{text(t, "HardFault")} },
			outcome: runner.Failed, kind: runner.KindFailOn, msg: `fail_on text "HardFault" matched "HardFault"`,
		},
		{
			name: "fail_on in bytes no expect consumes",
			setup: func(r *rig) {
				r.power.OnChange(func(on bool) {
					if on {
						r.console.Print("Kernel pa")
						r.console.Print("nic - not syncing\n")
					}
				})
			},
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{power(specs.PowerOn), waitFor(long)} },
			spec:    func(s *specs.Spec) { s.FailOn = []specs.Pattern{{Regex: tmpl(t, `Kernel panic - (\w+)`)}} },
			outcome: runner.Failed, kind: runner.KindFailOn, msg: `matched "Kernel panic - not"`,
		},
		{
			name:    "idle timeout",
			setup:   func(r *rig) { r.console.Print("booting...\n") },
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{expectText(t, "login:", long)} },
			spec:    func(s *specs.Spec) { s.IdleTimeout = 20 * time.Millisecond },
			outcome: runner.Failed, kind: runner.KindIdle, msg: "idle_timeout 20ms",
		},
		{
			name:  "flash fails",
			setup: func(r *rig) { r.flasher.Fail(fake.Fault{Err: errBoom}) },
			steps: func(t *testing.T) []specs.Step {
				return []specs.Step{{Kind: specs.StepFlash, Flash: &specs.FlashStep{}}}
			},
			outcome: runner.Error, kind: runner.KindFlash, msg: "board fake-01: flash: boom",
		},
		{
			name:  "flash times out",
			setup: func(r *rig) { r.flasher.Fail(fake.Fault{Hang: true}) },
			steps: func(t *testing.T) []specs.Step {
				return []specs.Step{{Kind: specs.StepFlash, Flash: &specs.FlashStep{Timeout: 10 * time.Millisecond}}}
			},
			outcome: runner.Error, kind: runner.KindTimeout, msg: "flash: timed out after 10ms",
		},
		{
			name:    "power fails",
			setup:   func(r *rig) { r.power.Fail("on", fake.Fault{Err: errBoom}) },
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{power(specs.PowerOn)} },
			outcome: runner.Error, kind: runner.KindPower, msg: "power on: boom",
		},
		{
			name:  "reset fails",
			setup: func(r *rig) { r.reset.Fail(fake.Fault{Err: errBoom}) },
			steps: func(t *testing.T) []specs.Step {
				return []specs.Step{{Kind: specs.StepReset, Reset: &specs.ResetStep{}}}
			},
			outcome: runner.Error, kind: runner.KindPower, msg: "reset: boom",
		},
		{
			name:    "write fails",
			setup:   func(r *rig) { r.console.FailWrites(fake.Fault{Err: errBoom}) },
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{sendLine(t, "hello")} },
			outcome: runner.Error, kind: runner.KindConsole, msg: "write to console: boom",
		},
		{
			name:    "console lost while waiting",
			setup:   func(r *rig) { r.console.Lose(errBoom) },
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{waitFor(long)} },
			outcome: runner.Error, kind: runner.KindConsole, msg: "console lost during wait 1h0m0s: boom",
		},
		{
			name:    "console lost while expecting",
			setup:   func(r *rig) { r.console.Print("U-Boot\n"); r.console.Lose(errBoom) },
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{expectText(t, "=> ", long)} },
			outcome: runner.Error, kind: runner.KindConsole, msg: "console lost during expect text \"=> \": boom",
		},
		{
			name:    "console closed while expecting",
			setup:   func(r *rig) { r.console.Close() },
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{expectText(t, "=> ", long)} },
			outcome: runner.Error, kind: runner.KindConsole, msg: "console closed",
		},
		{
			name: "tool exits non-zero",
			setup: func(r *rig) {
				r.tools.Add("probe", func(context.Context, map[string]string, specs.Firmware, io.Writer) (string, error) {
					return "", exitErr
				})
			},
			steps: func(t *testing.T) []specs.Step {
				return []specs.Step{{Kind: specs.StepTool, Tool: &specs.ToolStep{Name: "probe"}}}
			},
			outcome: runner.Failed, kind: runner.KindTool, msg: "tool probe exited with status 3",
		},
		{
			name: "tool cannot start",
			setup: func(r *rig) {
				r.tools.Add("probe", func(context.Context, map[string]string, specs.Firmware, io.Writer) (string, error) {
					return "", exec.ErrNotFound
				})
			},
			steps: func(t *testing.T) []specs.Step {
				return []specs.Step{{Kind: specs.StepTool, Tool: &specs.ToolStep{Name: "probe"}}}
			},
			outcome: runner.Error, kind: runner.KindTool, msg: "board fake-01: tool probe:",
		},
		{
			name: "missing line",
			steps: func(t *testing.T) []specs.Step {
				return []specs.Step{{Kind: specs.StepGPIO, GPIO: &specs.GPIOStep{Line: "nope", Set: 1}}}
			},
			outcome: runner.Error, kind: runner.KindGPIO, msg: `board fake-01 has no line "nope"`,
		},
		{
			name:  "line error",
			setup: func(r *rig) { r.lines["button"].Fail("set", fake.Fault{Err: errBoom}) },
			steps: func(t *testing.T) []specs.Step {
				return []specs.Step{{Kind: specs.StepGPIO, GPIO: &specs.GPIOStep{Line: "button", Set: 1}}}
			},
			outcome: runner.Error, kind: runner.KindGPIO, msg: "set line button to 1: boom",
		},
		{
			name: "line never reaches its value",
			steps: func(t *testing.T) []specs.Step {
				return []specs.Step{{Kind: specs.StepWait, Wait: &specs.WaitStep{GPIO: "led", Value: 1, Within: 10 * time.Millisecond}}}
			},
			outcome: runner.Failed, kind: runner.KindGPIO, msg: "wait for line led = 1: not done within 10ms",
		},
		{
			name:    "panic in a step",
			setup:   func(r *rig) { r.power.Fail("on", fake.Fault{Panic: "relay driver bug"}) },
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{power(specs.PowerOn)} },
			outcome: runner.Error, kind: runner.KindPanic, msg: "power on panicked: relay driver bug",
		},
		{
			name:    "bad expression",
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{assertStep(t, `capture.nope == "1"`, "")} },
			outcome: runner.Error, kind: runner.KindSpec, msg: "assert:",
		},
		{
			name:    "test timeout during an expect",
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{expectText(t, "never", long)} },
			spec:    func(s *specs.Spec) { s.Tests[0].Timeout = 20 * time.Millisecond },
			outcome: runner.Failed, kind: runner.KindTimeout, msg: "test timeout of 20ms ran out during expect",
		},
		{
			name:    "test timeout during a power step",
			setup:   func(r *rig) { r.power.Fail("on", fake.Fault{Hang: true}) },
			steps:   func(t *testing.T) []specs.Step { return []specs.Step{power(specs.PowerOn)} },
			spec:    func(s *specs.Spec) { s.Tests[0].Timeout = 20 * time.Millisecond },
			outcome: runner.Error, kind: runner.KindTimeout, msg: "test timeout of 20ms ran out during power on",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig()
			if c.setup != nil {
				c.setup(r)
			}
			spec := &specs.Spec{Name: "outcomes", Tests: []specs.Test{{Name: "t", Steps: c.steps(t)}}}
			if c.spec != nil {
				c.spec(spec)
			}
			res := r.run(t, context.Background(), spec, runner.Options{})
			want(t, res, c.outcome, c.outcome)
			tr := res.Tests[0]
			if tr.Kind != c.kind || !strings.Contains(tr.Message, c.msg) {
				t.Errorf("test ended %s %q: %q; want kind %q and a message containing %q", tr.Outcome, tr.Kind, tr.Message, c.kind, c.msg)
			}
			if !strings.Contains(res.Message, c.msg) {
				t.Errorf("job message %q does not contain %q", res.Message, c.msg)
			}
			r.lastOff(t)
		})
	}
}

func TestExpectEvidence(t *testing.T) {
	r := newRig()
	for i := range 30 {
		r.console.Print(fmt.Sprintf("log line %02d\r\n", i))
	}
	spec := &specs.Spec{Name: "e", Tests: []specs.Test{{Name: "t", Steps: []specs.Step{expectText(t, "login:", 10*time.Millisecond)}}}}
	res := r.run(t, context.Background(), spec, runner.Options{})
	msg := res.Tests[0].Message
	if !strings.Contains(msg, "last console lines:\n  | log line 10\n") || !strings.Contains(msg, "  | log line 29") ||
		strings.Contains(msg, "log line 09") {
		t.Errorf("message = %q; want the last 20 lines (10..29)", msg)
	}
}

func TestMarginalPasses(t *testing.T) {
	r := newRig()
	r.console.Print("temp=42C\n")
	spec := &specs.Spec{Name: "m", Tests: []specs.Test{{Name: "t", Steps: []specs.Step{
		{Kind: specs.StepMeasure, Measure: &specs.MeasureStep{Name: "t", Regex: *tmpl(t, `temp=(\d+)C`), Group: 1, Within: long, Min: fp(15), Max: fp(45), MarginalMin: fp(20), MarginalMax: fp(40)}},
	}}}}
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Passed, runner.Passed)
	if m := res.Tests[0].Attempts[0].Measurements; len(m) != 1 || m[0].Verdict != runner.VerdictMarginal {
		t.Errorf("measurements = %+v, want one marginal", m)
	}
}

// TestStream checks the expect engine through Run: matches spanning
// chunks, the remainder after a match kept for the next expect, and a
// console lost during a power step and back after it.
func TestStream(t *testing.T) {
	r := newRig()
	r.console.Print("U-Bo")
	r.console.Print("ot 2023")
	r.console.Print(".01\r\nA1 B2 C3")
	r.power.OnChange(func(on bool) {
		if on {
			r.console.Lose(errBoom) // a board whose USB serial chip it powers
			r.console.Back()
			r.console.Print("booted\n")
		}
	})
	spec := &specs.Spec{Name: "s", Tests: []specs.Test{{Name: "t", Steps: []specs.Step{
		expectText(t, "U-Boot 2023.01", long),
		expectRegex(t, `A(\d)`, long, "a"),
		expectRegex(t, `B(\d)`, long, "b"),
		power(specs.PowerOn),
		expectText(t, "booted", long),
	}}}}
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Passed, runner.Passed)
	if diff := cmp.Diff(map[string]string{"a": "1", "b": "2"}, res.Captures); diff != "" {
		t.Errorf("captures (-want +got):\n%s", diff)
	}
	if c := res.Tests[0].Console; !strings.Contains(c, "[hilfarm: console lost: boom]") || !strings.Contains(c, "[hilfarm: console back]") {
		t.Errorf("console slice %q lacks the gap markers", c)
	}
}

// TestPowerDiscardsPending: output printed before a power step does not
// answer an expect after it.
func TestPowerDiscardsPending(t *testing.T) {
	r := newRig()
	r.console.Print("old prompt> ")
	spec := &specs.Spec{Name: "s", Tests: []specs.Test{{Name: "t", Steps: []specs.Step{
		power(specs.PowerOn),
		expectText(t, "prompt> ", 20*time.Millisecond),
	}}}}
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Failed, runner.Failed)
}

func TestSetupFailureSkipsTests(t *testing.T) {
	r := newRig()
	r.flasher.Fail(fake.Fault{Err: errBoom})
	spec := &specs.Spec{
		Name:     "s",
		Setup:    []specs.Step{{Kind: specs.StepFlash, Flash: &specs.FlashStep{}}, power(specs.PowerOn)},
		Tests:    []specs.Test{{Name: "a", Steps: []specs.Step{waitFor(time.Millisecond)}}, {Name: "b"}},
		Teardown: []specs.Step{sendLine(t, "bye"), power(specs.PowerOff)},
	}
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Error, runner.Skipped, runner.Skipped)
	if res.Tests[0].Kind != runner.KindSetup || !strings.HasPrefix(res.Message, "setup: board fake-01: flash: boom") {
		t.Errorf("test kind %q, job message %q", res.Tests[0].Kind, res.Message)
	}
	if res.Teardown == nil || res.Teardown.Outcome != runner.Passed || r.console.Written() != "bye\n" {
		t.Errorf("teardown = %+v, written %q: want it run", res.Teardown, r.console.Written())
	}
	if diff := cmp.Diff([]string{"off", "off"}, r.power.Ops()); diff != "" {
		t.Errorf("power ops (-want +got):\n%s", diff)
	}
}

// TestTeardownKeepsGoing checks that a failing teardown step does not stop
// the rest of the teardown.
func TestTeardownKeepsGoing(t *testing.T) {
	r := newRig()
	r.console.FailWrites(fake.Fault{Err: errBoom})
	spec := &specs.Spec{Name: "s", Tests: []specs.Test{{Name: "a"}},
		Teardown: []specs.Step{sendLine(t, "bye"), {Kind: specs.StepGPIO, GPIO: &specs.GPIOStep{Line: "button", Set: 0}}}}
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Error, runner.Passed)
	if res.Teardown.Outcome != runner.Error || len(res.Teardown.Attempts[0].Steps) != 2 {
		t.Errorf("teardown = %+v: want error with both steps run", res.Teardown)
	}
	if diff := cmp.Diff([]string{"set 0"}, r.lines["button"].Ops()); diff != "" {
		t.Errorf("button ops (-want +got):\n%s", diff)
	}
}

func TestCancelMidStep(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(r *rig)
		step  func(t *testing.T) specs.Step
	}{
		{"expect", nil, func(t *testing.T) specs.Step { return expectText(t, "never", long) }},
		{"power", func(r *rig) { r.power.Fail("on", fake.Fault{Hang: true}) }, func(t *testing.T) specs.Step { return power(specs.PowerOn) }},
		{"wait", nil, func(t *testing.T) specs.Step { return waitFor(long) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig()
			if c.setup != nil {
				c.setup(r)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Once step "a" has started, the board prints and the job is
			// cancelled: the cancel lands inside the step.
			spec := &specs.Spec{Name: "c",
				Tests: []specs.Test{
					{Name: "a", Steps: []specs.Step{c.step(t)}},
					{Name: "b", Steps: []specs.Step{waitFor(time.Millisecond)}},
				},
				Teardown: []specs.Step{sendLine(t, "cleanup")},
			}
			opts := runner.Options{Events: func(ev runner.Event) {
				r.sink(ev)
				if s, ok := ev.(runner.StepStarted); ok && s.Test == "a" {
					go func() { r.console.Print("tick\n"); cancel() }()
				}
			}}
			res := r.run(t, ctx, spec, opts)
			want(t, res, runner.Cancelled, runner.Cancelled, runner.Skipped)
			if r.console.Written() != "cleanup\n" {
				t.Errorf("written %q: teardown did not run", r.console.Written())
			}
			r.lastOff(t)
		})
	}
}

func TestJobTimeout(t *testing.T) {
	r := newRig()
	spec := &specs.Spec{Name: "j", Timeout: 30 * time.Millisecond,
		Tests: []specs.Test{
			{Name: "a", Steps: []specs.Step{expectText(t, "never", long)}},
			{Name: "b", Steps: []specs.Step{waitFor(time.Millisecond)}},
		},
		Teardown: []specs.Step{sendLine(t, "cleanup")},
	}
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Failed, runner.Failed, runner.Skipped)
	if !strings.Contains(res.Tests[0].Message, "job timeout of 30ms ran out") || res.Tests[1].Kind != runner.KindTimeout {
		t.Errorf("tests = %q / %q", res.Tests[0].Message, res.Tests[1].Message)
	}
	if r.console.Written() != "cleanup\n" {
		t.Errorf("written %q: teardown did not run", r.console.Written())
	}
	r.lastOff(t)
}

// TestCleanupAfterPanic: a step panics, the teardown still runs, the
// board still ends off; a panic in the teardown and in the safe state is
// reported too.
func TestCleanupAfterPanic(t *testing.T) {
	r := newRig()
	r.lines["button"].Fail("set", fake.Fault{Panic: "boom in set"})
	spec := &specs.Spec{Name: "p",
		Setup:    []specs.Step{power(specs.PowerOn)},
		Tests:    []specs.Test{{Name: "a", Steps: []specs.Step{{Kind: specs.StepGPIO, GPIO: &specs.GPIOStep{Line: "button", Set: 1}}}}},
		Teardown: []specs.Step{sendLine(t, "cleanup")},
	}
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Error, runner.Error)
	if res.Tests[0].Kind != runner.KindPanic || !strings.Contains(res.Tests[0].Attempts[0].Steps[0].Message, "boom in set") {
		t.Errorf("test = %+v", res.Tests[0])
	}
	if r.console.Written() != "cleanup\n" {
		t.Errorf("written %q: teardown did not run", r.console.Written())
	}
	r.lastOff(t)

	r2 := newRig()
	r2.power.Fail("off", fake.Fault{Panic: "off panics"})
	res = r2.run(t, context.Background(), &specs.Spec{Name: "p", Tests: []specs.Test{{Name: "a"}}}, runner.Options{})
	if res.Outcome != runner.Error || !strings.Contains(res.SafeStateError, "off panics") {
		t.Errorf("outcome %s, safe state error %q: want error with the panic", res.Outcome, res.SafeStateError)
	}
}

func TestRetries(t *testing.T) {
	r := newRig()
	n := 0
	r.console.RespondFunc(func(p []byte) []byte {
		n++ // only the runner's goroutine writes, one write at a time
		if n < 3 {
			return []byte("ERR\n")
		}
		return []byte("OK\n")
	})
	spec := &specs.Spec{Name: "r", FailOn: []specs.Pattern{text(t, "ERR")}, Tests: []specs.Test{
		{Name: "flaky", Retries: 3, Steps: []specs.Step{sendLine(t, "go"), expectText(t, "OK", long)}},
		{Name: "stubborn", Retries: 1, Steps: []specs.Step{expectText(t, "never", 5*time.Millisecond)}},
	}}
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Failed, runner.Passed, runner.Failed)
	var got []runner.Outcome
	for _, a := range res.Tests[0].Attempts {
		got = append(got, a.Outcome)
	}
	if diff := cmp.Diff([]runner.Outcome{runner.Failed, runner.Failed, runner.Passed}, got); diff != "" {
		t.Errorf("flaky attempts (-want +got):\n%s", diff)
	}
	if len(res.Tests[1].Attempts) != 2 {
		t.Errorf("stubborn has %d attempts, want 2", len(res.Tests[1].Attempts))
	}
	if !strings.Contains(res.Tests[0].Console, "[hilfarm: attempt 1 failed: fail_on") {
		t.Errorf("console slice %q lacks the retry marker", res.Tests[0].Console)
	}
}

func TestConsoleSliceIsBounded(t *testing.T) {
	r := newRig()
	r.console.Print("HEAD-")
	for range 100 {
		r.console.Print(strings.Repeat("x", 1000))
	}
	r.console.Print("-TAIL END")
	spec := &specs.Spec{Name: "b", Tests: []specs.Test{{Name: "t", Steps: []specs.Step{expectText(t, "END", long)}}}}
	res := r.run(t, context.Background(), spec, runner.Options{TestConsoleMax: 2000})
	c := res.Tests[0].Console
	if !strings.HasPrefix(c, "HEAD-") || !strings.HasSuffix(c, "-TAIL END") || !strings.Contains(c, "[... 98014 bytes elided ...]") {
		t.Errorf("console slice = %q...%q (%d bytes)", c[:min(40, len(c))], c[max(0, len(c)-40):], len(c))
	}
	if res.Tests[0].ConsoleBytes != 100014 {
		t.Errorf("console bytes = %d, want 100014", res.Tests[0].ConsoleBytes)
	}
}

func TestEventsJSON(t *testing.T) {
	r := newRig()
	r.console.Print("hi\n")
	spec := &specs.Spec{Name: "ev", Tests: []specs.Test{{Name: "t", Steps: []specs.Step{expectText(t, "hi", long)}}}}
	r.run(t, context.Background(), spec, runner.Options{})
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, ev := range r.events {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("marshal %T: %v", ev, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if m["type"] != ev.Type() || m["time"] == nil {
			t.Errorf("%s: want type %q and a time", b, ev.Type())
		}
		if ev.Type() == "console" && m["data"] != "hi\n" {
			t.Errorf("console event %s: want data", b)
		}
		seen[ev.Type()] = true
	}
	for _, w := range []string{"job_started", "test_started", "step_started", "console", "step_finished", "test_finished", "job_finished"} {
		if !seen[w] {
			t.Errorf("no %s event", w)
		}
	}
}

func TestRunRejectsIncompleteJobs(t *testing.T) {
	r := newRig()
	for _, j := range []runner.Job{
		{},
		{Spec: &specs.Spec{}, Board: runner.Board{Console: r.console}},
		{Spec: &specs.Spec{}, Board: runner.Board{Power: r.power}},
	} {
		if _, err := runner.Run(context.Background(), j, runner.Options{}); err == nil {
			t.Errorf("Run(%+v) = nil error", j)
		}
	}
}

func TestInjectedClock(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	clock := fake.NewManualClock(t0)
	r := newRig()
	r.console.Print("hi\n")
	spec := &specs.Spec{Name: "c", Tests: []specs.Test{{Name: "t", Steps: []specs.Step{expectText(t, "hi", long)}}}}
	res := r.run(t, context.Background(), spec, runner.Options{Now: clock.Now})
	if !res.Started.Equal(t0) || !res.Finished.Equal(t0) || res.Duration != 0 || !res.Tests[0].Started.Equal(t0) {
		t.Errorf("times %v %v %v: want all at %v", res.Started, res.Finished, res.Duration, t0)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if _, console := ev.(runner.ConsoleOutput); !console && !ev.When().Equal(t0) {
			t.Errorf("%s at %v, want %v", ev.Type(), ev.When(), t0)
		}
	}
}

func TestMeasureHex(t *testing.T) {
	r := newRig()
	r.console.Print("size = 0x08000000\r\n")
	spec := &specs.Spec{Name: "h", Tests: []specs.Test{{Name: "t", Steps: []specs.Step{
		{Kind: specs.StepMeasure, Measure: &specs.MeasureStep{Name: "size", Regex: *tmpl(t, `size = (0x[0-9a-f]+)`), Group: 1, Within: long, Min: fp(1 << 20)}},
	}}}}
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Passed, runner.Passed)
	if got := res.Measures["size"]; got != 128<<20 {
		t.Errorf("size = %v, want %d", got, 128<<20)
	}
}

// TestMeasureNaNFails: firmware printing "NaN" fails the measurement (no
// limit can judge it) instead of passing it and breaking later steps.
func TestMeasureNaNFails(t *testing.T) {
	for _, v := range []string{"NaN", "nan", "Inf", "-Inf"} {
		r := newRig()
		r.console.Print("temp=" + v + "C\r\n")
		spec := &specs.Spec{Name: "n", Tests: []specs.Test{{Name: "t", Steps: []specs.Step{
			{Kind: specs.StepMeasure, Measure: &specs.MeasureStep{Name: "temp", Regex: *tmpl(t, `temp=([A-Za-z0-9.+-]+)C`), Group: 1, Within: long, Min: fp(15), Max: fp(45)}},
			{Kind: specs.StepSend, Send: &specs.SendStep{Line: tmpl(t, "next")}},
		}}}}
		res := r.run(t, context.Background(), spec, runner.Options{})
		want(t, res, runner.Failed, runner.Failed)
	}
}

// TestTestTimeoutDuringGPIOWait: the test's own timeout running out while
// a wait step waits on the firmware's line is a failure, like the step's
// own within, not an infrastructure error.
func TestTestTimeoutDuringGPIOWait(t *testing.T) {
	r := newRig()
	spec := &specs.Spec{Name: "w", Tests: []specs.Test{{Name: "t", Timeout: 100 * time.Millisecond, Steps: []specs.Step{
		{Kind: specs.StepWait, Wait: &specs.WaitStep{GPIO: "led", Value: 1, Within: long}},
	}}}}
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Failed, runner.Failed)
}

// TestFailOnIgnoresTheOldFirmware: what the board prints before the
// candidate is flashed (the old firmware crashing at power-on) does not
// fail the candidate.
func TestFailOnIgnoresTheOldFirmware(t *testing.T) {
	r := newRig()
	r.console.Print("old firmware: HardFault\r\n")
	spec := &specs.Spec{Name: "f", FailOn: []specs.Pattern{text(t, "HardFault")},
		Setup: []specs.Step{power(specs.PowerOn), {Kind: specs.StepFlash, Flash: &specs.FlashStep{}}},
		Tests: []specs.Test{{Name: "t", Steps: []specs.Step{{Kind: specs.StepWait, Wait: &specs.WaitStep{For: 10 * time.Millisecond}}}}}}
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Passed, runner.Passed)
}

// TestConsoleLostWhileOff: a board's USB serial chip that vanishes after a
// power off step returned (the kernel noticed late) is not an error; the
// next expect waits for the console to come back after power on.
func TestConsoleLostWhileOff(t *testing.T) {
	r := newRig()
	spec := &specs.Spec{Name: "p", Tests: []specs.Test{{Name: "t", Steps: []specs.Step{
		power(specs.PowerOff),
		{Kind: specs.StepWait, Wait: &specs.WaitStep{For: 50 * time.Millisecond}},
	}}}}
	// The kernel notices the adapter is gone 20 ms after the relay opened,
	// when the power step has long returned.
	r.power.OnChange(func(on bool) {
		if !on {
			time.AfterFunc(20*time.Millisecond, func() { r.console.Lose(errors.New("usb disconnect")) })
		}
	})
	res := r.run(t, context.Background(), spec, runner.Options{})
	want(t, res, runner.Passed, runner.Passed)
}
