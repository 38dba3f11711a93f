package runner_test

import (
	"context"
	"strings"
	"syscall"
	"testing"

	"github.com/hilfarm/hilfarm/fixtures/serial"
	"github.com/hilfarm/hilfarm/fixtures/sim"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// An emulator that dies under the candidate (here killed mid-step, as the
// kernel would at its memory limit) makes the step and the job failed,
// with the reason; not an error, which would retry it on another board.
func TestEmulatorDeathIsTheCandidatesFailure(t *testing.T) {
	p, err := sim.Start(sim.Options{Name: "sim-01", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c, err := serial.Open(context.Background(), specs.Console{Port: p.ConsolePath(), Baud: 115200}, serial.Options{Name: "sim-01"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	b := runner.Board{Info: specs.BoardInfo{Name: "sim-01", Type: "sim"}, Power: p, Console: c, Flasher: p, Reset: p, Lines: p.Lines()}
	spec := parseSpec(t, `spec "s" {
  board { type = "sim" }
  setup {
    flash {}
  }
  test "t" {
    power "on" {}
    expect {
      text   = "sim> "
      within = "20s"
    }
    expect {
      text   = "never printed"
      within = "60s"
    }
  }
}`)
	fw := specs.Firmware{Name: "good", Path: examplePath(t, "firmware", "sim-good.hcl")}
	killed := false
	res, err := runner.Run(context.Background(), runner.Job{Spec: spec, Board: b, Firmware: fw}, runner.Options{
		Events: func(ev runner.Event) {
			if s, ok := ev.(runner.StepStarted); ok && strings.Contains(s.Summary, "never printed") && !killed {
				killed = true
				if err := syscall.Kill(p.PID(), syscall.SIGKILL); err != nil {
					t.Error(err)
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !killed {
		t.Fatal("the step never started")
	}
	if res.Outcome != runner.Failed || !strings.Contains(res.Message, "sim board sim-01: the emulator was killed by signal killed") {
		t.Errorf("outcome %s: %s; want failed, the emulator killed", res.Outcome, res.Message)
	}
}
