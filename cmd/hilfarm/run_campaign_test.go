package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/runner"
)

// TestRunCampaignReplay runs a campaign with power cuts on the example
// farm's sim board through `hilfarm run`: the summary names the failing
// iteration with its cut delay and the replay command, and --replay-cut,
// --seed and --repeat replay it.
func TestRunCampaignReplay(t *testing.T) {
	ex := func(p string) string { return filepath.Join("..", "..", "examples", p) }
	dir := t.TempDir()
	spec := filepath.Join(dir, "campaign.hcl")
	if err := os.WriteFile(spec, []byte(`spec "cuts" {
  board { type = "sim" }
  timeout = "2m"
  test "survives cuts" {
    repeat {
      count = 3
      seed  = 11
    }
    power "cycle" {}
    expect { text = "sim> " }
    send { line = "echo update: writing" }
    power "cut" {
      after   = "update: writing"
      random  = ["0ms", "30ms"]
      off_for = "10ms"
    }
    expect { text = "sim> " }
    assert {
      that    = repeat.iteration != 2
      message = "bricked"
    }
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	run1 := func(extra ...string) (int, string, *runner.Campaign) {
		t.Helper()
		js := filepath.Join(dir, "r.json")
		args := append([]string{"run", "--quiet", "--json", js, "--farm", ex("farm.hcl"), "--board", "sim-01",
			"--firmware", ex("firmware/sim-good.hcl")}, extra...)
		args = append(args, spec)
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		b, err := os.ReadFile(js)
		if err != nil {
			t.Fatalf("exit %d: %v\n%s\n%s", code, err, stdout.String(), stderr.String())
		}
		var res runner.Result
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), res.Tests[0].Campaign
	}
	code, out, c := run1()
	if code != exitFailed || c == nil || c.Run != 3 || c.Failed != 1 || c.Seed != 11 {
		t.Fatalf("exit %d, campaign %+v\n%s", code, c, out)
	}
	delay := c.Iterations[1].CutDelays[0].Std()
	for _, want := range []string{`campaign "survives cuts": 3 iterations, 2 passed, 1 failed`, "iteration time",
		"✗ iteration 2 failed (cut at " + delay.String() + "): bricked",
		"replay: hilfarm run --replay-cut " + delay.String() + " --farm", "run --seed 11 --farm"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	// The replay line, run: one iteration, the same delay.
	m := regexp.MustCompile(`--replay-cut (\S+)`).FindStringSubmatch(out)
	d, err := time.ParseDuration(m[1])
	if err != nil || d != delay {
		t.Fatalf("replay delay %q: %v", m[1], err)
	}
	code, _, c = run1("--replay-cut", m[1])
	if code != exitOK || c.Run != 1 || c.Iterations[0].CutDelays[0].Std() != delay {
		t.Errorf("replay: exit %d, %+v", code, c)
	}
	// --seed with --repeat 2 draws the first two delays again.
	_, _, c2 := run1("--seed", "11", "--repeat", "2")
	if c2.Run != 2 || c2.Iterations[1].CutDelays[0].Std() != delay {
		t.Errorf("--seed replay: %+v", c2)
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"run", "--repeat", "0x", spec}, &bytes.Buffer{}, &stderr); code == exitOK {
		t.Error("a bad --repeat was accepted")
	}
}
