package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// docCommand is a command line in a ```sh block of the README or docs/.
type docCommand struct {
	where string
	args  []string
	want  []int // the exit codes the docs say it may end with (default 0)
}

// TestDocCommands runs the command lines of the README and docs/ that work
// on the repository's examples and emulated boards (validate, fmt -check,
// run on a sim board) and fails when one no longer exits 0, or the code a
// comment on the line names ("# exits 1", or "# exits 1 when ..." for 0 or
// 1): the docs must match the program. Lines that change files (fmt -w) or
// need a server are left out.
func TestDocCommands(t *testing.T) {
	out := t.TempDir()
	t.Chdir("../..")
	files, _ := filepath.Glob("docs/*.md")
	files = append([]string{"README.md"}, files...)
	line := regexp.MustCompile(`^(?:bin/)?hilfarm (validate|run|fmt -check) `)
	exits := regexp.MustCompile(`\bexits (\d)\b( when)?`)
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
			want := []int{0}
			if c, comment, ok := strings.Cut(l, "#"); ok {
				l = c
				if m := exits.FindStringSubmatch(comment); m != nil {
					n, _ := strconv.Atoi(m[1])
					if m[2] != "" {
						want = []int{0, n} // "exits N when ...": either way
					} else {
						want = []int{n}
					}
				}
			}
			fields := strings.Fields(l)[1:]
			// A campaign in the docs runs its full count for the reader;
			// here three iterations show that the line works, and keep
			// make test short (the 200-iteration runs are in make bench).
			if fields[0] == "run" && !strings.Contains(l, "--repeat") && !strings.Contains(l, "--replay-cut") {
				fields = append([]string{"run", "--repeat", "3"}, fields[1:]...)
			}
			var args []string
			usable := true
			for j, a := range fields {
				// Reports the line writes go to a temporary directory,
				// not into the repository.
				if j > 0 && (fields[j-1] == "--json" || fields[j-1] == "--junit") {
					args = append(args, filepath.Join(out, filepath.Base(a)))
					continue
				}
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
				cmds = append(cmds, docCommand{where: f + ":" + strconv.Itoa(start+1), args: args, want: want})
			}
		}
	}
	if len(cmds) < 3 {
		t.Fatalf("found only %d runnable command lines in the docs: %v", len(cmds), cmds)
	}
	for _, c := range cmds {
		t.Run(c.where, func(t *testing.T) {
			code, out, errs := runCLI(c.args...)
			if !slices.Contains(c.want, code) {
				t.Errorf("hilfarm %s: exit %d, the docs say %v\n%s%s", strings.Join(c.args, " "), code, c.want, out, errs)
			}
		})
	}
}
