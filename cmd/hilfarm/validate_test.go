package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// hilfarmRun runs the command line in-process and returns exit code, stdout and stderr.
func hilfarmRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func exampleFiles(t *testing.T) (farm string, specs []string) {
	t.Helper()
	specs, _ = filepath.Glob("../../examples/specs/*.hcl")
	if len(specs) < 6 {
		t.Fatalf("found %d example specs, want at least 6", len(specs))
	}
	return "../../examples/farm.hcl", specs
}

func TestValidateExamples(t *testing.T) {
	defer goleak.VerifyNone(t)
	farm, specFiles := exampleFiles(t)
	args := append([]string{"validate", "--farm", farm, farm}, specFiles...)
	code, out, errOut := hilfarmRun(t, args...)
	if code != exitOK || errOut != "" {
		t.Fatalf("validate examples: exit %d, stderr:\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(specFiles)+1 {
		t.Fatalf("got %d summary lines, want %d:\n%s", len(lines), len(specFiles)+1, out)
	}
	if want := `../../examples/farm.hcl: farm "lab-a" is valid: 8 boards, 5 board types, 1 webhook`; lines[0] != want {
		t.Errorf("farm summary = %q, want %q", lines[0], want)
	}
	summary := regexp.MustCompile(`^\S+\.hcl: spec "[^"]+" is valid: \d+ tests?, \d+ steps?, \d+ matching boards? in farm "lab-a"$`)
	for _, l := range lines[1:] {
		if !summary.MatchString(l) {
			t.Errorf("spec summary %q does not match %s", l, summary)
		}
	}
	if !strings.Contains(out, `boot-smoke.hcl: spec "boot-smoke" is valid: 1 test, 8 steps, 2 matching boards in farm "lab-a"`) {
		t.Errorf("no boot-smoke summary in:\n%s", out)
	}
}

// TestValidateBadDuration is the acceptance case: one duration
// changed to nonsense makes validate exit 1 and print its file:line:col.
func TestValidateBadDuration(t *testing.T) {
	defer goleak.VerifyNone(t)
	farm, _ := exampleFiles(t)
	src, err := os.ReadFile("../../examples/specs/boot-smoke.hcl")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), `within  = "10s"`, `within  = "ten seconds"`, 1)
	if bad == string(src) {
		t.Fatal("boot-smoke.hcl has no `within  = \"10s\"` to break")
	}
	path := filepath.Join(t.TempDir(), "boot-smoke.hcl")
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	line, col := 0, 0
	for i, l := range strings.Split(bad, "\n") {
		if c := strings.Index(l, `"ten seconds"`); c >= 0 {
			line, col = i+1, c+1
		}
	}
	code, out, errOut := hilfarmRun(t, "validate", "--farm", farm, path)
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	if out != "" {
		t.Errorf("stdout = %q, want nothing", out)
	}
	for _, want := range []string{
		"Error: Invalid duration",
		path + ":" + strconv.Itoa(line) + ":" + strconv.Itoa(col),
		`within  = "ten seconds"`,
		path + ": invalid (1 error)",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "\x1b[") {
		t.Error("colour escapes written to a non-terminal")
	}
}

func TestValidateExitCodes(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.hcl", "spec \"g\" {\n  board { type = \"sim\" }\n  test \"t\" {\n    reset {}\n  }\n}\n")
	badFarm := write("farm.hcl", "farm \"f\" {}\nboard_type \"sim\" {}\nboard \"a\" {\n  type = \"simm\"\n  emulator \"sim\" {}\n}\n")
	jsonSpec := write("j.hcl.json", `{"spec": {"j": {"board": {"type": "sim"}, "test": {"t": {"reset": {}}}}}}`)
	vars := write("vars.hcl", "variable \"n\" { type = number }\nspec \"v\" {\n  board { type = \"sim\" }\n  test \"t\" {\n    assert { that = var.n > 1 }\n  }\n}\n")

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		out, err string // substrings
	}{
		{"help", []string{"validate", "--help"}, exitOK, "", "Usage: hilfarm validate"},
		{"no files", []string{"validate"}, exitInfra, "", "validate needs at least one FILE"},
		{"bad flag", []string{"validate", "--frob", good}, exitInfra, "", "flag provided but not defined"},
		{"bad var flag", []string{"validate", "--var", "novalue", good}, exitInfra, "", "want NAME=VALUE"},
		{"missing file", []string{"validate", filepath.Join(dir, "nope.hcl")}, exitFailed, "", "no such file"},
		{"good spec without farm", []string{"validate", good}, exitOK, `spec "g" is valid: 1 test, 1 step` + "\n", ""},
		{"json spec", []string{"validate", jsonSpec}, exitOK, `spec "j" is valid`, ""},
		{"bad farm as file", []string{"validate", badFarm, good}, exitFailed, `spec "g" is valid`, `Did you mean "sim"?`},
		{"bad --farm", []string{"validate", "--farm", badFarm, good}, exitFailed, "", "invalid farm file"},
		{"var override", []string{"validate", "--var", "n=2", vars}, exitOK, `spec "v" is valid`, ""},
		{"bad var override", []string{"validate", "--var", "n=two", vars}, exitFailed, "", `The value given for var.n, "two", is not a number.`},
		{"var for one of many specs", []string{"validate", "--var", "n=2", vars, good}, exitOK, `spec "g" is valid`, ""},
		{"var no spec declares", []string{"validate", "--var", "m=2", vars, good}, exitFailed, `spec "v" is valid`, `--var m: no spec declares a variable "m"`},
		{"unknown var, one spec", []string{"validate", "--var", "m=2", good}, exitFailed, "", `Unknown variable override`},
		{"selector against farm", []string{"validate", "--farm", "../../examples/farm.hcl", write("q.hcl",
			"spec \"q\" {\n  board { type = \"riscv\" }\n  test \"t\" {\n    reset {}\n  }\n}\n")}, exitFailed, "", "No board matches the selector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := hilfarmRun(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Errorf("run(%q) = %d\nstdout: %s\nstderr: %s\nwant exit %d, stdout with %q, stderr with %q",
					tc.args, code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
}
