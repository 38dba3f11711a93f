package runner_test

import (
	"context"
	"testing"

	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// A step's summary shows the values the step used, not its templates; an
// expression that cannot be evaluated yet is shown as written.
func TestStepSummariesAreEvaluated(t *testing.T) {
	r := newRig()
	spec := &specs.Spec{Name: "s", Vars: map[string]any{"greeting": "hello"}, Tests: []specs.Test{{Name: "t", Steps: []specs.Step{
		sendLine(t, "say ${var.greeting} to ${board.name}"),
		sendLine(t, "plain"),
		sendLine(t, "${capture.nothing_yet}"),
	}}}}
	res := r.run(t, context.Background(), spec, runner.Options{})
	var got []string
	for _, s := range res.Tests[0].Attempts[0].Steps {
		got = append(got, s.Summary)
	}
	want := []string{`send line "say hello to fake-01"`, `send line "plain"`, `send line ${capture.nothing_yet}`}
	if len(got) != len(want) {
		t.Fatalf("summaries = %q; want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d summary = %q; want %q", i, got[i], want[i])
		}
	}
}
