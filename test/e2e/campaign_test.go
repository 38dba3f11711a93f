package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hilfarm/hilfarm/runner"
)

// powercutSpec is examples/specs/update-powercut.hcl with a fixed seed, so
// that the cut delays are the same at every run.
func powercutSpec(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "specs", "update-powercut.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(src), "min_pass_rate = 1\n", "min_pass_rate = 1\n      seed          = 7\n", 1)
	if s == string(src) {
		t.Fatal("update-powercut.hcl has no min_pass_rate line to add a seed after")
	}
	p := filepath.Join(dir, "update-powercut.hcl")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCampaign runs the power-cut campaign (12 iterations) with the real
// binary on a sim board with firmware fw; it returns the exit status, the
// output and the campaign's result.
func runCampaign(t *testing.T, fw string) (int, string, *runner.Campaign) {
	t.Helper()
	f := newFarm(t, 1)
	spec := powercutSpec(t, f.dir)
	fwPath, _ := filepath.Abs(filepath.Join("..", "..", "examples", "firmware", fw))
	out := filepath.Join(f.dir, "result.json")
	cmd := exec.Command(binary, "run", "--farm", f.farm, "--board", "sim-00", "--firmware", fwPath,
		"--no-console", "--var", "iterations=12", "--json", out, spec)
	cmd.Dir = f.dir
	b, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no JSON result (exit %d): %v\n%s", code, err, b)
	}
	var r runner.Result
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Tests) != 1 || r.Tests[0].Campaign == nil {
		t.Fatalf("result has no campaign: %s", raw)
	}
	return code, string(b), r.Tests[0].Campaign
}

// The A/B candidate survives every cut: the campaign passes at 100%.
func TestPowerCutCampaignAB(t *testing.T) {
	code, out, c := runCampaign(t, "sim-ab.hcl")
	if code != 0 || c.Run != 12 || c.Passed != 12 || c.PassRate != 1 {
		t.Fatalf("exit %d, campaign %d run, %d passed, pass rate %v; want 0, 12, 12, 1\n%s", code, c.Run, c.Passed, c.PassRate, out)
	}
	for _, it := range c.Iterations {
		if len(it.CutDelays) != 1 {
			t.Errorf("iteration %d recorded cut delays %v, want one", it.Number, it.CutDelays)
		}
	}
}

// The in-place candidate bricks: the campaign fails, and the report names
// the cut delays that bricked it with the command that replays one.
func TestPowerCutCampaignInPlace(t *testing.T) {
	code, out, c := runCampaign(t, "sim-ab-inplace.hcl")
	if code != 1 || c.Failed == 0 || c.PassRate >= 1 {
		t.Fatalf("exit %d, %d failed, pass rate %v; want exit 1 and failures\n%s", code, c.Failed, c.PassRate, out)
	}
	failed := 0
	for _, it := range c.Iterations {
		if it.Outcome != runner.Failed {
			continue
		}
		failed++
		if len(it.CutDelays) != 1 {
			t.Errorf("failed iteration %d recorded cut delays %v, want one", it.Number, it.CutDelays)
		}
		if !strings.Contains(it.Console, "boot: no valid image") {
			t.Errorf("failed iteration %d: its console slice does not show the brick:\n%s", it.Number, it.Console)
		}
	}
	if failed != c.Failed {
		t.Errorf("%d failed iterations listed, %d counted", failed, c.Failed)
	}
	if !strings.Contains(out, "--replay-cut") {
		t.Errorf("the report does not name the replay of a bricking cut delay:\n%s", out)
	}
}
