package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hilfarm/hilfarm/internal/testrig"
	"go.uber.org/goleak"
)

// TestRunExitCodes runs specs of the example farm on its sim and U-Boot
// boards through `hilfarm run` and checks the exit codes and reports.
func TestRunExitCodes(t *testing.T) {
	ex := func(p string) string { return filepath.Join("..", "..", "examples", p) }
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	if err := os.WriteFile(bad, []byte(`spec "bad" { board { type = "sim" } test "t" { expect { txt = "x" } } }`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{"passes", []string{"--board", "sim-01", "--firmware", ex("firmware/sim-good.hcl"), "--fw-version", "1.1.0", ex("specs/boot-smoke.hcl")},
			exitOK, "== ✓ passed", ""},
		{"fails", []string{"--board", "sim-02", "--firmware", ex("firmware/sim-regressed.hcl"), ex("specs/measure.hcl")},
			exitFailed, "measure temp_c = 87 degC is above max 45", ""},
		{"errors", []string{"--board", "sim-01", "--firmware", "../../fixtures/sim/testdata/flash-fails.hcl", ex("specs/boot-smoke.hcl")},
			exitInfra, "verify failed at 0x08004000", ""},
		{"invalid spec", []string{"--board", "sim-01", "--firmware", ex("firmware/sim-good.hcl"), bad},
			exitRejected, "", "invalid spec"},
		{"unknown board", []string{"--board", "nope", "--firmware", ex("firmware/sim-good.hcl"), ex("specs/boot-smoke.hcl")},
			exitRejected, "", `has no board "nope"`},
		{"board does not match", []string{"--board", "sim-01", "--firmware", ex("firmware/sim-good.hcl"), ex("specs/uboot-version.hcl")},
			exitRejected, "", "does not match"},
		{"no firmware", []string{"--board", "sim-01", "--firmware", "/nonexistent/fw.bin", ex("specs/boot-smoke.hcl")},
			exitRejected, "", "firmware"},
		{"usage", []string{"--board", "sim-01", ex("specs/boot-smoke.hcl")},
			exitInfra, "", "run needs --farm, --board and --firmware"},
		{"u-boot on qemu", []string{"--board", "uboot-01", "--firmware", "/usr/lib/u-boot/qemu_arm/u-boot.bin", ex("specs/uboot-version.hcl")},
			exitOK, "U-Boot 2023", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			if c.name == "u-boot on qemu" {
				testrig.NeedTool(t, "qemu-system-arm", "qemu-system-arm")
				testrig.NeedFile(t, "/usr/lib/u-boot/qemu_arm/u-boot.bin", "u-boot-qemu")
			}
			dir := t.TempDir()
			junit, js := filepath.Join(dir, "junit.xml"), filepath.Join(dir, "result.json")
			args := []string{"run", "--junit", junit, "--json", js}
			if c.name != "usage" {
				args = append(args, "--farm", ex("farm.hcl"))
			}
			args = append(args, c.args...)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, &stdout, &stderr)
			if code != c.code || !strings.Contains(stdout.String(), c.out) || !strings.Contains(stderr.String(), c.err) {
				t.Fatalf("hilfarm %s = exit %d, want %d with %q in stdout and %q in stderr\nstdout:\n%s\nstderr:\n%s",
					strings.Join(args, " "), code, c.code, c.out, c.err, stdout.String(), stderr.String())
			}
			if c.code == exitRejected || c.name == "usage" {
				if _, err := os.Stat(junit); err == nil {
					t.Errorf("a report was written for rejected input")
				}
				return
			}
			x, err := os.ReadFile(junit)
			if err != nil {
				t.Fatal(err)
			}
			if err := xml.Unmarshal(x, new(struct{})); err != nil {
				t.Errorf("junit: %v", err)
			}
			var res struct {
				Outcome string `json:"outcome"`
			}
			j, err := os.ReadFile(js)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(j, &res); err != nil {
				t.Fatal(err)
			}
			want := map[int]string{exitOK: "passed", exitFailed: "failed", exitInfra: "error"}[c.code]
			if res.Outcome != want {
				t.Errorf("JSON outcome %q, want %q", res.Outcome, want)
			}
		})
	}
}
