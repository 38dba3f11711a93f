package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

const (
	uglySpec  = "spec \"x\" {\nboard { type = \"sim\" }\n  timeout=\"1m\"\n    idle_timeout = \"5s\"\n}\n"
	prettySpc = "spec \"x\" {\n  board { type = \"sim\" }\n  timeout      = \"1m\"\n  idle_timeout = \"5s\"\n}\n"
	brokenSpc = "spec \"x\" {\n  timeout = \n}\n"
)

func writeFmtFile(t *testing.T, path, src string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(src), 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFmtFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFmt(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	ugly := writeFmtFile(t, filepath.Join(dir, "a", "ugly.hcl"), uglySpec)
	pretty := writeFmtFile(t, filepath.Join(dir, "a", "pretty.hcl"), prettySpc)
	writeFmtFile(t, filepath.Join(dir, ".git", "hidden.hcl"), uglySpec)       // hidden dirs are skipped
	writeFmtFile(t, filepath.Join(dir, "a", "notes.txt"), "not hcl at all {") // only *.hcl in directories

	// stdout mode: the formatted text, files untouched.
	code, out, errOut := hilfarmRun(t, "fmt", ugly)
	if code != exitOK || out != prettySpc || errOut != "" {
		t.Errorf("fmt FILE = %d, %q, %q; want 0 and the formatted text", code, out, errOut)
	}
	if readFmtFile(t, ugly) != uglySpec {
		t.Error("fmt without -w changed the file")
	}

	// -check lists unformatted files (walking directories) and exits 1, writing nothing.
	code, out, errOut = hilfarmRun(t, "fmt", "-check", dir)
	if code != exitFailed || out != ugly+"\n" || errOut != "" {
		t.Errorf("fmt -check DIR = %d, %q, %q; want 1 and %q", code, out, errOut, ugly+"\n")
	}
	if readFmtFile(t, ugly) != uglySpec {
		t.Error("fmt -check changed the file")
	}
	if code, out, _ := hilfarmRun(t, "fmt", "-check", pretty); code != exitOK || out != "" {
		t.Errorf("fmt -check on a formatted file = %d, %q; want 0 and nothing", code, out)
	}

	// -w rewrites in place, keeping the mode; a second -check is clean.
	if code, out, errOut := hilfarmRun(t, "fmt", "-w", dir); code != exitOK || out != "" || errOut != "" {
		t.Errorf("fmt -w DIR = %d, %q, %q", code, out, errOut)
	}
	if got := readFmtFile(t, ugly); got != prettySpc {
		t.Errorf("after -w:\n%s\nwant:\n%s", got, prettySpc)
	}
	if st, _ := os.Stat(ugly); st.Mode().Perm() != 0o640 {
		t.Errorf("mode after -w = %v, want 0640", st.Mode().Perm())
	}
	if readFmtFile(t, filepath.Join(dir, ".git", "hidden.hcl")) != uglySpec {
		t.Error("fmt -w rewrote a file under a hidden directory")
	}
	if code, _, _ := hilfarmRun(t, "fmt", "-check", dir); code != exitOK {
		t.Errorf("fmt -check after -w = %d, want 0", code)
	}
}

func TestFmtRefusesSyntaxErrors(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	broken := writeFmtFile(t, filepath.Join(dir, "broken.hcl"), brokenSpc)
	ugly := writeFmtFile(t, filepath.Join(dir, "ugly.hcl"), uglySpec)
	code, out, errOut := hilfarmRun(t, "fmt", "-w", broken, ugly)
	if code != exitFailed {
		t.Errorf("exit %d, want 1", code)
	}
	if out != "" {
		t.Errorf("stdout = %q", out)
	}
	for _, want := range []string{"Error: Invalid expression", broken + ":2:13", broken + ": not formatted: fix the syntax errors first"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if readFmtFile(t, broken) != brokenSpc {
		t.Error("a file with syntax errors was rewritten")
	}
	if readFmtFile(t, ugly) != prettySpc {
		t.Error("the valid file next to a broken one was not formatted")
	}
}

func TestFmtUsage(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"fmt", "--help"}, exitOK, "Usage: hilfarm fmt"},
		{[]string{"fmt", "-check", "-w", "."}, exitInfra, "-check and -w exclude each other"},
		{[]string{"fmt", filepath.Join(t.TempDir(), "missing.hcl")}, exitInfra, "no such file"},
	} {
		code, _, errOut := hilfarmRun(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.err) {
			t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.err)
		}
	}
	// The JSON syntax is syntax-checked and left as is.
	js := writeFmtFile(t, filepath.Join(t.TempDir(), "s.hcl.json"), `{"spec": {"x": {}}}`)
	if code, out, _ := hilfarmRun(t, "fmt", "-check", js); code != exitOK || out != "" {
		t.Errorf("fmt -check on JSON = %d, %q; want 0", code, out)
	}
	// The repository's examples are formatted.
	if code, out, errOut := hilfarmRun(t, "fmt", "-check", "../../examples/farm.hcl", "../../examples/specs"); code != exitOK {
		t.Errorf("examples are not formatted (%d):\n%s%s", code, out, errOut)
	}
}
