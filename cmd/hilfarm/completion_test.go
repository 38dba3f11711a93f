package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hilfarm/hilfarm/internal/testrig"
)

func TestCompletionListsEveryCommandAndFlag(t *testing.T) {
	infos := commandInfos()
	if len(infos) != len(commands) {
		t.Fatalf("%d commands described, %d registered", len(infos), len(commands))
	}
	byName := map[string]cmdInfo{}
	for _, c := range infos {
		byName[c.name] = c
	}
	for cmd, flag := range map[string]string{"serve": "log-format", "submit": "fw-version", "token": "role", "console": "log", "validate": "json", "board": "json"} {
		found := false
		for _, f := range byName[cmd].flags {
			found = found || f.name == flag
		}
		if !found {
			t.Errorf("completion of %s lacks --%s", cmd, flag)
		}
	}
}

// TestCompletionScripts runs the bash script's function as bash would, and
// has zsh and fish parse theirs.
func TestCompletionScripts(t *testing.T) {
	dir := t.TempDir()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, errs := runCLI("completion", sh)
		if code != 0 || out == "" {
			t.Fatalf("completion %s: exit %d: %s", sh, code, errs)
		}
		path := filepath.Join(dir, "hilfarm."+sh)
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		bin, err := exec.LookPath(sh)
		if err != nil {
			if testrig.InCI() {
				t.Fatalf("%s is not installed (DEB_PACKAGES has it)", sh)
			}
			t.Logf("%s is not installed: its script is not checked", sh)
			continue
		}
		var check *exec.Cmd
		switch sh {
		case "bash":
			// Complete "hilfarm serve --lo" and "hilfarm sub".
			check = exec.Command(bin, "-c", `source "$1"
COMP_WORDS=(hilfarm serve --lo); COMP_CWORD=2; _hilfarm; echo "${COMPREPLY[*]}"
COMP_WORDS=(hilfarm sub); COMP_CWORD=1; _hilfarm; echo "${COMPREPLY[*]}"`, "x", path)
		case "zsh":
			check = exec.Command(bin, "-n", path)
		case "fish":
			check = exec.Command(bin, "--no-execute", path)
		}
		got, err := check.CombinedOutput()
		if err != nil {
			t.Errorf("%s rejects its completion script: %v\n%s", sh, err, got)
			continue
		}
		if sh == "bash" && string(got) != "--log-format --log-level\nsubmit\n" {
			t.Errorf("bash completion gave %q", got)
		}
	}
	if code, _, errs := runCLI("completion", "tcsh"); code != exitInfra || !strings.Contains(errs, "tcsh") {
		t.Errorf("completion tcsh: exit %d, %q", code, errs)
	}
}
