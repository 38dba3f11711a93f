package runner_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hilfarm/hilfarm/fixtures/fake"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// tmpl parses an HCL template (the inside of a quoted string) into an Expr.
func tmpl(t testing.TB, src string) *specs.Expr {
	t.Helper()
	e, diags := hclsyntax.ParseTemplate([]byte(src), "t.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("template %q: %s", src, diags.Error())
	}
	x := specs.NewExpr(e, []byte(src))
	return &x
}

// expr parses an HCL expression into an Expr.
func expr(t testing.TB, src string) specs.Expr {
	t.Helper()
	e, diags := hclsyntax.ParseExpression([]byte(src), "t.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("expression %q: %s", src, diags.Error())
	}
	return specs.NewExpr(e, []byte(src))
}

func fp(f float64) *float64 { return &f }

// Step builders.
func power(a string) specs.Step {
	return specs.Step{Kind: specs.StepPower, Power: &specs.PowerStep{Action: a}}
}

func sendLine(t testing.TB, s string) specs.Step {
	return specs.Step{Kind: specs.StepSend, Send: &specs.SendStep{Line: tmpl(t, s)}}
}

func sendRaw(t testing.TB, s string) specs.Step {
	return specs.Step{Kind: specs.StepSend, Send: &specs.SendStep{Raw: tmpl(t, s)}}
}

func expectText(t testing.TB, s string, within time.Duration) specs.Step {
	return specs.Step{Kind: specs.StepExpect, Expect: &specs.ExpectStep{Pattern: specs.Pattern{Text: tmpl(t, s)}, Within: within}}
}

func expectRegex(t testing.TB, s string, within time.Duration, capture string) specs.Step {
	return specs.Step{Kind: specs.StepExpect, Expect: &specs.ExpectStep{Pattern: specs.Pattern{Regex: tmpl(t, s)}, Within: within, Capture: capture}}
}

func assertStep(t testing.TB, that, msg string) specs.Step {
	a := &specs.AssertStep{That: expr(t, that)}
	if msg != "" {
		a.Message = tmpl(t, msg)
	}
	return specs.Step{Kind: specs.StepAssert, Assert: a}
}

func waitFor(d time.Duration) specs.Step {
	return specs.Step{Kind: specs.StepWait, Wait: &specs.WaitStep{For: d}}
}

func text(t testing.TB, s string) specs.Pattern { return specs.Pattern{Text: tmpl(t, s)} }

// rig is a board made of fakes.
type rig struct {
	power   *fake.Power
	reset   *fake.Resetter
	console *fake.Console
	flasher *fake.Flasher
	lines   map[string]*fake.Line
	tools   *fake.Tools
	board   runner.Board

	mu     sync.Mutex
	events []runner.Event
}

func newRig() *rig {
	r := &rig{
		power:   fake.NewPower(nil),
		reset:   fake.NewResetter(nil),
		console: fake.NewConsole(nil, 0),
		flasher: fake.NewFlasher(nil, "flashing\ndone\n"),
		lines:   map[string]*fake.Line{"button": fake.NewLine(nil, 0), "led": fake.NewLine(nil, 0)},
		tools:   fake.NewTools(nil),
	}
	r.board = runner.Board{
		Info:    specs.BoardInfo{Name: "fake-01", Type: "fake", Tags: map[string]string{"rack": "a"}},
		Power:   r.power,
		Console: r.console,
		Flasher: r.flasher,
		Reset:   r.reset,
		Lines:   map[string]runner.Line{"button": r.lines["button"], "led": r.lines["led"]},
		Tools:   r.tools,
		OffFor:  time.Second,
	}
	return r
}

var firmware = specs.Firmware{Name: "fw.bin", Version: "2.0.1", SHA256: strings.Repeat("ab", 32), Path: "/tmp/fw.bin"}

func (r *rig) sink(ev runner.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *rig) eventTypes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Type() != "console" {
			out = append(out, e.Type())
		}
	}
	return out
}

// run runs spec on the rig and fails the test on a runner error.
func (r *rig) run(t *testing.T, ctx context.Context, spec *specs.Spec, opts runner.Options) *runner.Result {
	t.Helper()
	if opts.Events == nil {
		opts.Events = r.sink
	}
	res, err := runner.Run(ctx, runner.Job{Spec: spec, Board: r.board, Firmware: firmware}, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// lastOff checks that the board ended powered off.
func (r *rig) lastOff(t *testing.T) {
	t.Helper()
	ops := r.power.Ops()
	if len(ops) == 0 || ops[len(ops)-1] != "off" || r.power.IsOn() {
		t.Errorf("power ops = %v, on = %v; want the last op off", ops, r.power.IsOn())
	}
}

func want(t *testing.T, res *runner.Result, outcome runner.Outcome, testOutcomes ...runner.Outcome) {
	t.Helper()
	if res.Outcome != outcome {
		t.Errorf("job outcome = %s (%s), want %s", res.Outcome, res.Message, outcome)
	}
	if len(res.Tests) != len(testOutcomes) {
		t.Fatalf("got %d tests, want %d", len(res.Tests), len(testOutcomes))
	}
	for i, o := range testOutcomes {
		if res.Tests[i].Outcome != o {
			t.Errorf("test %q outcome = %s (%s: %s), want %s", res.Tests[i].Name, res.Tests[i].Outcome,
				res.Tests[i].Kind, res.Tests[i].Message, o)
		}
	}
}

var errBoom = errors.New("boom")
