package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// docCommand is a command line in a ```sh block of the README or docs/.
type docCommand struct {
	where string
	args  []string
}

// TestDocCommands runs the command lines of the README and docs/ that work
// on the repository's examples and emulated boards (validate, fmt -check,
// run on a sim board) and fails when one no longer exits 0: the docs must
// match the program. Lines that change files (fmt -w) or need a server are
// left out.
func TestDocCommands(t *testing.T) {
	t.Chdir("../..")
	files, _ := filepath.Glob("docs/*.md")
	files = append([]string{"README.md"}, files...)
	line := regexp.MustCompile(`^(?:bin/)?hilfarm (validate|run|fmt -check) `)
	var cmds []docCommand
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inBlock := false
		lines := strings.Split(string(src), "\n")
		for i := 0; i < len(lines); i++ {
			l := lines[i]
			if strings.HasPrefix(l, "```") {
				inBlock = !inBlock && strings.TrimPrefix(l, "```") == "sh"
				continue
			}
			if !inBlock || !line.MatchString(l) {
				continue
			}
			start := i
			for strings.HasSuffix(strings.TrimSpace(l), "\\") && i+1 < len(lines) {
				i++
				l = strings.TrimSuffix(strings.TrimSpace(l), "\\") + " " + lines[i]
			}
			if c, _, ok := strings.Cut(l, "#"); ok {
				l = c
			}
			fields := strings.Fields(l)[1:]
			var args []string
			usable := true
			for _, a := range fields {
				if strings.Contains(a, "*") {
					m, _ := filepath.Glob(a)
					if len(m) == 0 {
						usable = false
					}
					args = append(args, m...)
					continue
				}
				if strings.HasPrefix(a, "examples/") {
					if _, err := os.Stat(a); err != nil {
						usable = false
					}
				}
				args = append(args, a)
			}
			// Only emulated boards and built-in examples: QEMU images
			// are built by make, real boards are not here.
			if usable && (!strings.Contains(l, " run ") || strings.Contains(l, "--board sim-")) {
				cmds = append(cmds, docCommand{where: f + ":" + strconv.Itoa(start+1), args: args})
			}
		}
	}
	if len(cmds) < 3 {
		t.Fatalf("found only %d runnable command lines in the docs: %v", len(cmds), cmds)
	}
	for _, c := range cmds {
		t.Run(c.where, func(t *testing.T) {
			code, out, errs := runCLI(c.args...)
			if code != 0 {
				t.Errorf("hilfarm %s: exit %d\n%s%s", strings.Join(c.args, " "), code, out, errs)
			}
		})
	}
}
