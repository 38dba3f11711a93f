package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/hilfarm/hilfarm/specs"
	"golang.org/x/term"
)

func init() {
	register(command{name: "validate", summary: "check farm.hcl and test specs", run: runValidate})
}

// varFlags collects repeated --var NAME=VALUE flags.
type varFlags map[string]string

func (v varFlags) String() string { return "" }

func (v varFlags) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	v[k] = val
	return nil
}

func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", "hilfarm validate [--farm FILE] [--var NAME=VALUE]... FILE...",
		"Check farm files and test specs and report every error with file:line:col and a\n"+
			"source snippet. A file with a top-level farm block is a farm file; one with a\n"+
			"spec block is a spec. With --farm, specs are also checked against that farm: some\n"+
			"board must match, and their gpio lines, tools and flash steps must exist there.\n"+
			"Exit status: 0 all valid, 1 some file invalid, 2 usage error.", stderr)
	farmPath := fs.String("farm", "", "validate specs against this farm `file`")
	vars := varFlags{}
	fs.Var(vars, "var", "set a spec variable (`NAME=VALUE`); repeatable")
	asJSON := fs.Bool("json", false, "print one JSON object per file (diagnostics included) instead of text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var results []validateResult
	if *asJSON {
		// Text goes nowhere; the JSON array on stdout says it all.
		jsonOut := stdout
		defer func() { _ = writeJSON(jsonOut, results) }()
		stdout, stderr = io.Discard, io.Discard
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usageError("validate needs at least one FILE")
	}
	width, color := diagStyle(stderr)
	show := func(d specs.Diagnostics) {
		if d.Len() > 0 {
			_ = d.WriteText(stderr, width, color)
		}
	}

	invalid := 0
	var farm *specs.Farm
	if *farmPath != "" {
		f, d := specs.LoadFarm(*farmPath)
		show(d)
		results = append(results, validateResult{File: *farmPath, Kind: specs.KindFarm, Valid: !d.HasErrors(), Diagnostics: d.List()})
		if d.HasErrors() {
			fmt.Fprintf(stderr, "%s: invalid farm file\n", *farmPath)
			return &exitError{code: exitFailed}
		}
		farm = f
	}
	// With several files, each spec takes the --var values it declares; a
	// value no valid spec declares is reported at the end.
	many := fs.NArg() > 1
	declared := map[string]bool{}
	for _, path := range fs.Args() {
		kind, err := sniffFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			results = append(results, validateResult{File: path, Error: err.Error()})
			invalid++
			continue
		}
		if kind == specs.KindFarm {
			f, d := specs.LoadFarm(path)
			show(d)
			r := validateResult{File: path, Kind: kind, Valid: !d.HasErrors(), Diagnostics: d.List()}
			if f != nil {
				r.Name, r.Boards = f.Name, len(f.Boards)
			}
			results = append(results, r)
			if d.HasErrors() {
				invalid++
				fmt.Fprintf(stderr, "%s: invalid (%s)\n", path, countErrors(d))
				continue
			}
			fmt.Fprintf(stdout, "%s: farm %q is valid: %s, %s, %s\n", path, f.Name,
				plural(len(f.Boards), "board"), plural(len(f.BoardTypes), "board type"), plural(len(f.Webhooks), "webhook"))
			continue
		}
		s, d := specs.LoadSpec(path, specs.SpecOptions{Vars: vars, Farm: farm, IgnoreUnknownVars: many})
		show(d)
		r := validateResult{File: path, Kind: kind, Valid: !d.HasErrors(), Diagnostics: d.List()}
		if s != nil && !d.HasErrors() {
			r.Name, r.Tests, r.Steps = s.Name, len(s.Tests), s.StepCount()
			if farm != nil {
				n := len(farm.Match(s.Board))
				r.MatchingBoards = &n
			}
		}
		results = append(results, r)
		if d.HasErrors() {
			invalid++
			fmt.Fprintf(stderr, "%s: invalid (%s)\n", path, countErrors(d))
			continue
		}
		for _, v := range s.Variables {
			declared[v.Name] = true
		}
		against := ""
		if farm != nil {
			against = fmt.Sprintf(", %s in farm %q", plural(len(farm.Match(s.Board)), "matching board"), farm.Name)
		}
		fmt.Fprintf(stdout, "%s: spec %q is valid: %s, %s%s\n", path, s.Name,
			plural(len(s.Tests), "test"), plural(s.StepCount(), "step"), against)
	}
	if invalid > 0 {
		return &exitError{code: exitFailed}
	}
	if many {
		for _, k := range sortedKeys(vars) {
			if !declared[k] {
				fmt.Fprintf(stderr, "--var %s: no spec declares a variable %q\n", k, k)
				invalid++
			}
		}
		if invalid > 0 {
			return &exitError{code: exitFailed}
		}
	}
	return nil
}

// validateResult is one file's verdict in validate --json.
type validateResult struct {
	File           string             `json:"file"`
	Kind           string             `json:"kind,omitempty"` // farm or spec
	Valid          bool               `json:"valid"`
	Error          string             `json:"error,omitempty"` // the file could not be read
	Name           string             `json:"name,omitempty"`
	Boards         int                `json:"boards,omitempty"`
	Tests          int                `json:"tests,omitempty"`
	Steps          int                `json:"steps,omitempty"`
	MatchingBoards *int               `json:"matching_boards,omitempty"`
	Diagnostics    []specs.Diagnostic `json:"diagnostics"`
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sniffFile reads the start of a file to tell a farm from a spec. Files
// that do not parse count as specs, whose parser then reports the errors.
func sniffFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return "", fmt.Errorf("is a directory")
	}
	if st.Size() > specs.MaxFileSize {
		return specs.KindSpec, nil // LoadSpec refuses it with a diagnostic
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if specs.Sniff(src, path) == specs.KindFarm {
		return specs.KindFarm, nil
	}
	return specs.KindSpec, nil
}

func countErrors(d specs.Diagnostics) string {
	n := 0
	for _, x := range d.List() {
		if x.Severity == specs.SeverityError {
			n++
		}
	}
	return plural(n, "error")
}

func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// diagStyle picks the wrap width and colour for diagnostics written to w:
// colour and the terminal's width only when w is a terminal.
func diagStyle(w io.Writer) (uint, bool) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 78, false
	}
	if noColor() {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
			return uint(cols - 1), false
		}
		return 78, false
	}
	if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
		return uint(cols - 1), true
	}
	return 78, true
}
