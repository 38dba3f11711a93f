package runner_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hilfarm/hilfarm/fixtures/serial"
	"github.com/hilfarm/hilfarm/fixtures/sim"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// These tests run real specs on sim boards: a scripted firmware model on a
// pty, reached through hilfarm's serial console (go.bug.st/serial), exactly
// like a board on a USB serial adapter.

func examplePath(t testing.TB, parts ...string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(append([]string{"..", "examples"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// simBoard makes a sim board running the model firmware (empty: none
// until flashed) and opens its console.
func simBoard(t testing.TB, firmware string) runner.Board {
	t.Helper()
	b, err := sim.New(sim.Options{Name: "sim-01", Dir: t.TempDir(), Config: specs.SimConfig{Firmware: firmware},
		Lines: []specs.Line{{Name: "button", Output: true}, {Name: "led"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("sim board Close: %v", err)
		}
	})
	c, err := serial.Open(context.Background(), specs.Console{Port: b.ConsolePath(), Baud: 115200}, serial.Options{Name: "sim-01"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return runner.Board{
		Info:    specs.BoardInfo{Name: "sim-01", Type: "sim", Tags: map[string]string{"rack": "virtual"}},
		Power:   b,
		Console: c,
		Flasher: b,
		Reset:   b,
		Lines:   b.Lines(),
	}
}

func loadSpec(t testing.TB, name string) *specs.Spec {
	t.Helper()
	s, diags := specs.LoadSpec(examplePath(t, "specs", name), specs.SpecOptions{})
	if diags.HasErrors() {
		t.Fatalf("%s: %v", name, diags.Err())
	}
	return s
}

func parseSpec(t testing.TB, src string) *specs.Spec {
	t.Helper()
	s, diags := specs.ParseSpec([]byte(src), "inline.hcl", specs.SpecOptions{})
	if diags.HasErrors() {
		t.Fatalf("inline spec: %v", diags.Err())
	}
	return s
}

func simFirmware(t testing.TB, path, version string) specs.Firmware {
	return specs.Firmware{Name: filepath.Base(path), Version: version, SHA256: strings.Repeat("0", 64), Path: path}
}

func runSim(t *testing.T, spec *specs.Spec, fw specs.Firmware, preloaded string) *runner.Result {
	t.Helper()
	b := simBoard(t, preloaded)
	res, err := runner.Run(context.Background(), runner.Job{Spec: spec, Board: b, Firmware: fw}, runner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Power.(*sim.Board).Powered() {
		t.Errorf("sim board still powered after the job")
	}
	return res
}

// simSpec exercises the sim shell: it passes on sim-good.hcl and fails
// (sensor out of range, config lost across a power cycle) on
// sim-regressed.hcl.
const simSpec = `
spec "sim-all" {
  board { type = "sim" }
  timeout      = "1m"
  idle_timeout = "5s"
  fail_on      = ["HardFault", "panic:"]

  setup {
    flash {}
    power "cycle" {}
    expect {
      regex   = "Booting hilfarm-sim v(\\S+)"
      capture = "version"
    }
    expect { text = "sim> " }
  }

  test "version" {
    send { line = "version" }
    expect {
      regex   = "(?m)^([0-9][0-9A-Za-z.+-]*)\\s*$"
      capture = "reported"
    }
    assert {
      that    = capture.reported == firmware.version
      message = "version says ${capture.reported}"
    }
  }

  test "temperature" {
    send { line = "sensor temp" }
    measure "temp_c" {
      regex        = "temp=(-?[0-9.]+)C"
      unit         = "degC"
      min          = 15
      max          = 45
      marginal_max = 40
      within       = "2s"
    }
  }

  test "config survives a power cycle" {
    send { line = "config set x 7" }
    expect { text = "x=7" }
    power "cycle" {}
    expect { text = "Booting" }
    expect { text = "sim> " }
    send { line = "config get x" }
    expect {
      regex   = "(x=[0-9]+|not set)"
      capture = "x"
    }
    assert {
      that    = capture.x == "x=7"
      message = "config lost across a power cycle: ${capture.x}"
    }
  }

  test "button toggles the led" {
    gpio "button" {
      set = 1
      for = "30ms"
    }
    wait {
      gpio   = "led"
      value  = 1
      within = "2s"
    }
    expect { text = "led=on" }
    gpio "button" {
      set = 1
      for = "30ms"
    }
    wait {
      gpio   = "led"
      value  = 0
      within = "2s"
    }
    expect { text = "led=off" }
  }

  test "ping" {
    send { raw = "ping 42\\x0d" }
    expect { text = "pong 42" }
    reset {}
    expect { text = "Booting" }
    expect { text = "sim> " }
  }

  teardown {
    power "off" {}
  }
}`

func TestSimPasses(t *testing.T) {
	good := examplePath(t, "firmware", "sim-good.hcl")
	for _, name := range []string{"boot-smoke.hcl", "shell.hcl", "measure.hcl", "button-led.hcl"} {
		t.Run(name, func(t *testing.T) {
			res := runSim(t, loadSpec(t, name), simFirmware(t, good, "1.1.0"), good)
			if res.Outcome != runner.Passed {
				t.Errorf("outcome %s: %s", res.Outcome, res.Message)
			}
		})
	}
	t.Run("all steps", func(t *testing.T) {
		res := runSim(t, parseSpec(t, simSpec), simFirmware(t, good, "1.1.0"), "")
		want(t, res, runner.Passed, runner.Passed, runner.Passed, runner.Passed, runner.Passed, runner.Passed)
		m := res.Tests[1].Attempts[0].Measurements
		if len(m) != 1 || m[0].Value != 23.5 || m[0].Verdict != runner.VerdictPass {
			t.Errorf("measurements %+v, want temp_c 23.5 pass", m)
		}
		if res.Captures["version"] != "1.1.0" {
			t.Errorf("captures %v", res.Captures)
		}
	})
}

func TestSimFails(t *testing.T) {
	bad := examplePath(t, "firmware", "sim-regressed.hcl")
	res := runSim(t, parseSpec(t, simSpec), simFirmware(t, bad, "1.2.0-rc1"), "")
	want(t, res, runner.Failed, runner.Passed, runner.Failed, runner.Failed, runner.Passed, runner.Passed)
	if tr := res.Tests[1]; tr.Kind != runner.KindLimit || !strings.Contains(tr.Message, "measure temp_c = 87 degC is above max 45") {
		t.Errorf("test = %s %s: %s", tr.Outcome, tr.Kind, tr.Message)
	}
	if !strings.Contains(res.Tests[1].Console, "temp=87.0C") {
		t.Errorf("console slice %q lacks the reading", res.Tests[1].Console)
	}
	if tr := res.Tests[2]; tr.Kind != runner.KindAssert || !strings.Contains(tr.Message, "config lost across a power cycle") {
		t.Errorf("test %q: %s: %s", tr.Name, tr.Kind, tr.Message)
	}
}

func TestSimErrors(t *testing.T) {
	t.Run("flash fails", func(t *testing.T) {
		good := examplePath(t, "firmware", "sim-good.hcl")
		broken, _ := filepath.Abs(filepath.Join("..", "fixtures", "sim", "testdata", "flash-fails.hcl"))
		res := runSim(t, loadSpec(t, "boot-smoke.hcl"), simFirmware(t, broken, "6.6.6"), good)
		want(t, res, runner.Error, runner.Skipped)
		if res.Setup.Kind != runner.KindFlash || !strings.Contains(res.Setup.Message, "verify failed at 0x08004000") {
			t.Errorf("setup = %s %s: %s", res.Setup.Outcome, res.Setup.Kind, res.Setup.Message)
		}
	})
	t.Run("adapter unplugged", func(t *testing.T) {
		faulty := examplePath(t, "firmware", "sim-faulty.hcl")
		spec := parseSpec(t, `
spec "unplug" {
  board { type = "sim" }
  setup {
    power "cycle" {}
    expect { text = "Booting" }
  }
  test "unplugged mid-test" {
    send { line = "unplug" }
    expect {
      text   = "never printed"
      within = "10s"
    }
  }
}`)
		res := runSim(t, spec, simFirmware(t, faulty, "0.9.0-faulty"), faulty)
		want(t, res, runner.Error, runner.Error)
		if tr := res.Tests[0]; tr.Kind != runner.KindConsole || !strings.Contains(tr.Message, "console lost during") {
			t.Errorf("test = %s %s: %s", tr.Outcome, tr.Kind, tr.Message)
		}
	})
	t.Run("hard fault", func(t *testing.T) {
		faulty := examplePath(t, "firmware", "sim-faulty.hcl")
		spec := parseSpec(t, `
spec "crash" {
  board { type = "sim" }
  fail_on = ["HardFault"]
  setup {
    power "cycle" {}
    expect { text = "Booting" }
  }
  test "crashes" {
    send { line = "crash" }
    expect {
      text   = "never printed"
      within = "10s"
    }
  }
}`)
		res := runSim(t, spec, simFirmware(t, faulty, "0.9.0-faulty"), faulty)
		want(t, res, runner.Failed, runner.Failed)
		if tr := res.Tests[0]; tr.Kind != runner.KindFailOn || !strings.Contains(tr.Message, `matched "HardFault"`) {
			t.Errorf("test = %s %s: %s", tr.Outcome, tr.Kind, tr.Message)
		}
	})
}
