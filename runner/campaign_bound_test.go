package runner_test

import (
	"context"
	"testing"

	"github.com/hilfarm/hilfarm/runner"
)

// TestCampaignResultIsBounded runs 2,500 cheap iterations (an assertion
// each, on a fake board) through the runner: the iteration list is capped
// at MaxCampaignIterations with every failing iteration kept, the counts
// and statistics still cover every iteration, and only a few attempts and
// console slices are kept.
func TestCampaignResultIsBounded(t *testing.T) {
	const n = 2500
	spec := parseSpec(t, `
spec "many" {
  board { type = "fake" }
  test "t" {
    repeat {
      count         = 2500
      min_pass_rate = 0.99
    }
    assert { that = repeat.iteration % 250 != 0 }
  }
}`)
	r := newRig()
	res, err := runner.Run(context.Background(), runner.Job{Spec: spec, Board: r.board, Firmware: firmware}, runner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := res.Tests[0]
	c := tr.Campaign
	if c.Run != n || c.Failed != 10 || c.Passed != n-10 || c.IterationTime.N != n || tr.Outcome != runner.Passed {
		t.Fatalf("campaign: run %d failed %d passed %d time N %d; test %s: %s", c.Run, c.Failed, c.Passed, c.IterationTime.N, tr.Outcome, tr.Message)
	}
	if len(c.Iterations) != runner.MaxCampaignIterations || c.Elided != n-runner.MaxCampaignIterations {
		t.Fatalf("%d iterations listed, %d elided", len(c.Iterations), c.Elided)
	}
	failing, last := 0, 0
	for _, it := range c.Iterations {
		if it.Number <= last {
			t.Fatalf("iterations out of order at #%d", it.Number)
		}
		last = it.Number
		if it.Outcome == runner.Failed {
			failing++
		}
	}
	if failing != 10 || c.Iterations[0].Number != 1 || last != n {
		t.Errorf("listed %d failing iterations, first #%d, last #%d", failing, c.Iterations[0].Number, last)
	}
	if len(tr.Attempts) != 6 { // the first iteration and the first 5 that failed
		t.Errorf("%d attempts kept", len(tr.Attempts))
	}
}

// BenchmarkCampaignIteration measures the runner's own cost of an
// iteration (one assertion step on a fake board: no board time).
func BenchmarkCampaignIteration(b *testing.B) {
	spec := parseSpec(b, `
spec "many" {
  board { type = "fake" }
  test "t" {
    repeat {
      count = 100000
    }
    assert { that = repeat.iteration > 0 }
  }
}`)
	r := newRig()
	b.ResetTimer()
	res, err := runner.Run(context.Background(), runner.Job{Spec: spec, Board: r.board, Firmware: firmware}, runner.Options{Repeat: b.N})
	if err != nil {
		b.Fatal(err)
	}
	if c := res.Tests[0].Campaign; c.Run != b.N {
		b.Fatalf("ran %d iterations", c.Run)
	}
}
