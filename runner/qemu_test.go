package runner_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/fixtures/qemu"
	"github.com/hilfarm/hilfarm/fixtures/serial"
	"github.com/hilfarm/hilfarm/internal/testrig"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// End-to-end runs on QEMU boards: real firmware (Debian's U-Boot, and
// hilfarm's own Cortex-M3 firmware built here in two versions) reached
// through a pty and hilfarm's serial console.

const ubootBin = "/usr/lib/u-boot/qemu_arm/u-boot.bin"

// qemuBoard makes a QEMU board with cfg and opens its console.
func qemuBoard(t *testing.T, name string, cfg specs.QEMU) (runner.Board, *qemu.Board) {
	t.Helper()
	testrig.NeedTool(t, "qemu-system-arm", "qemu-system-arm")
	dir, err := os.MkdirTemp("", "hr") // short: unix socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := qemu.New(qemu.Options{Name: name, Dir: dir, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("qemu board Close: %v", err)
		}
	})
	c, err := serial.Open(context.Background(), specs.Console{Port: b.ConsolePath(), Baud: 115200}, serial.Options{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return runner.Board{Info: specs.BoardInfo{Name: name, Type: "qemu"}, Power: b, Console: c, Flasher: b, Reset: b, Lines: b.Lines()}, b
}

// buildCM3 compiles firmware/cm3 with version.
func buildCM3(t *testing.T, version string) string {
	t.Helper()
	cc := testrig.NeedTool(t, "arm-none-eabi-gcc", "gcc-arm-none-eabi")
	src, err := filepath.Abs(filepath.Join("..", "firmware", "cm3"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "hilfw-"+version+".elf")
	cmd := exec.Command(cc, "-mcpu=cortex-m3", "-mthumb", "-Os", "-ffreestanding", "-fno-tree-loop-distribute-patterns",
		"-nostdlib", "-nostartfiles", "-Wl,-T,"+filepath.Join(src, "fw.ld"), "-Wl,--gc-sections",
		`-DVERSION="`+version+`"`, "-o", out, filepath.Join(src, "fw.c"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building firmware %s: %v\n%s", version, err, b)
	}
	return out
}

func runQEMU(t *testing.T, b runner.Board, spec *specs.Spec, fw specs.Firmware, opts runner.Options) *runner.Result {
	t.Helper()
	res, err := runner.Run(context.Background(), runner.Job{Spec: spec, Board: b, Firmware: fw}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if b.Power.(*qemu.Board).Powered() {
		t.Errorf("QEMU still running after the job")
	}
	return res
}

func TestQEMUUBoot(t *testing.T) {
	testrig.NeedFile(t, ubootBin, "u-boot-qemu")
	b, _ := qemuBoard(t, "uboot-01", specs.QEMU{Machine: "virt", CPU: "cortex-a15", Firmware: ubootBin})
	res := runQEMU(t, b, loadSpec(t, "uboot-version.hcl"), specs.Firmware{Name: "u-boot.bin", Version: "2023.01", Path: ubootBin}, runner.Options{})
	want(t, res, runner.Passed, runner.Passed)
	if !strings.HasPrefix(res.Captures["uboot"], "2023.") {
		t.Errorf("captures %v", res.Captures)
	}

	// Power on, expect U-Boot, interrupt autoboot, prompt, version, and a
	// measurement (the DRAM size bdinfo reports, in hex).
	spec := parseSpec(t, `
spec "uboot-measure" {
  board { type = "qemu-arm-virt" }
  timeout = "1m"
  fail_on = ["data abort", "undefined instruction"]
  setup {
    power "on" {}
    expect {
      regex  = "U-Boot ([0-9.]+)"
      within = "30s"
      capture = "banner"
    }
    expect { text = "Hit any key to stop autoboot" }
    send { line = "" }
    expect { text = "=> " }
  }
  test "version" {
    send { line = "version" }
    expect {
      regex   = "U-Boot ([0-9.]+)"
      capture = "version"
    }
    assert { that = capture.version == capture.banner }
  }
  test "dram size" {
    send { line = "bdinfo" }
    measure "dram_bytes" {
      regex = "-> size\\s+= (0x[0-9a-fA-F]+)"
      unit  = "B"
      min   = 67108864
      max   = 4294967296
    }
  }
  teardown {
    power "off" {}
  }
}`)
	res = runQEMU(t, b, spec, specs.Firmware{Name: "u-boot.bin", Version: "2023.01", Path: ubootBin}, runner.Options{})
	want(t, res, runner.Passed, runner.Passed, runner.Passed)
	if got := res.Measures["dram_bytes"]; got != 128<<20 {
		t.Errorf("dram_bytes = %v, want %d (QEMU virt's default 128 MiB)", got, 128<<20)
	}
	var boot runner.Duration
	for _, s := range res.Setup.Attempts[0].Steps[:4] {
		boot += s.Duration
	}
	t.Logf("power on to the U-Boot prompt through hilfarm's console: %v", boot.Std().Round(time.Millisecond))
}

func TestQEMUCortexM3Versions(t *testing.T) {
	spec, diags := specs.LoadSpec(examplePath(t, "specs", "cm3-version.hcl"), specs.SpecOptions{Vars: map[string]string{"expected_version": "2.0.0"}})
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	v1, v2 := buildCM3(t, "1.0.0"), buildCM3(t, "2.0.0")
	b, _ := qemuBoard(t, "cm3-01", specs.QEMU{Machine: "lm3s6965evb", Load: "kernel"})

	res := runQEMU(t, b, spec, specs.Firmware{Name: "hilfw-2.0.0.elf", Version: "2.0.0", Path: v2}, runner.Options{})
	want(t, res, runner.Passed, runner.Passed, runner.Passed)

	res = runQEMU(t, b, spec, specs.Firmware{Name: "hilfw-1.0.0.elf", Version: "1.0.0", Path: v1}, runner.Options{})
	want(t, res, runner.Failed, runner.Failed, runner.Failed)
	if tr := res.Tests[0]; tr.Kind != runner.KindExpect || !strings.Contains(tr.Message, "HILFW 1.0.0 booting on") {
		t.Errorf("banner test: %s %s: %s", tr.Outcome, tr.Kind, tr.Message)
	}
}

// TestQEMUKilled: QEMU killed from outside in the middle of a test is an
// infrastructure error, not a firmware failure.
func TestQEMUKilled(t *testing.T) {
	fw := buildCM3(t, "2.0.0")
	b, qb := qemuBoard(t, "cm3-01", specs.QEMU{Machine: "lm3s6965evb", Load: "kernel"})
	spec := parseSpec(t, `
spec "killed" {
  board { type = "cm3-lm3s6965" }
  setup {
    flash {}
    power "cycle" {}
    expect { text = "hilfw> " }
  }
  test "killed while waiting" {
    send { line = "version" }
    expect {
      text   = "never printed"
      within = "30s"
    }
  }
}`)
	opts := runner.Options{Events: func(ev runner.Event) {
		if s, ok := ev.(runner.StepStarted); ok && s.Kind == specs.StepExpect && s.Test == "killed while waiting" {
			if err := syscall.Kill(qb.PID(), syscall.SIGKILL); err != nil {
				t.Errorf("kill QEMU: %v", err)
			}
		}
	}}
	res := runQEMU(t, b, spec, specs.Firmware{Name: "hilfw.elf", Version: "2.0.0", Path: fw}, opts)
	want(t, res, runner.Error, runner.Error)
	if tr := res.Tests[0]; tr.Kind != runner.KindConsole || !strings.Contains(tr.Message, "console lost during expect") {
		t.Errorf("test: %s %s: %s", tr.Outcome, tr.Kind, tr.Message)
	}
}

// TestQEMUCampaign: a short power-cut campaign on the Cortex-M3 board:
// each iteration boots to the prompt, cuts the power at a seeded random
// moment, and expects the firmware to boot again.
func TestQEMUCampaign(t *testing.T) {
	fw := buildCM3(t, "2.0.0")
	b, _ := qemuBoard(t, "cm3-01", specs.QEMU{Machine: "lm3s6965evb", Load: "kernel"})
	spec := parseSpec(t, `
spec "cm3-cuts" {
  board { type = "cm3-lm3s6965" }
  timeout = "3m"
  setup {
    flash {}
  }
  test "boots after cuts" {
    repeat {
      count = 3
      seed  = 3
    }
    power "cycle" {}
    expect {
      text   = "hilfw> "
      within = "30s"
    }
    power "cut" {
      random  = ["0ms", "20ms"]
      off_for = "50ms"
    }
    expect {
      regex  = "HILFW ([0-9.]+) booting"
      within = "30s"
    }
    expect {
      text   = "hilfw> "
      within = "30s"
    }
  }
}`)
	res := runQEMU(t, b, spec, specs.Firmware{Name: "hilfw.elf", Version: "2.0.0", Path: fw}, runner.Options{})
	want(t, res, runner.Passed, runner.Passed)
	c := res.Tests[0].Campaign
	if c == nil || c.Run != 3 || c.Passed != 3 || c.StoppedBy != runner.StopCount || c.PassRate != 1 || c.IterationTime.N != 3 {
		t.Fatalf("campaign %+v", c)
	}
	for _, it := range c.Iterations {
		if len(it.CutDelays) != 1 || it.CutDelays[0].Std() != runner.RandomCutDelay(3, it.Number, 0, 0, 20*time.Millisecond) {
			t.Errorf("iteration %d cut delays %v", it.Number, it.CutDelays)
		}
	}
	t.Logf("3 iterations on QEMU: median %.0f ms, max %.0f ms", c.IterationTime.Median, c.IterationTime.Max)
}
