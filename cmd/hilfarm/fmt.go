package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hilfarm/hilfarm/specs"
)

func init() {
	register(command{name: "fmt", summary: "format farm.hcl and test specs", run: runFmt})
}

func runFmt(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("fmt", "hilfarm fmt [-check] [-w] [FILE|DIR]...",
		"Rewrite HCL files in canonical layout (aligned \"=\", two-space indent). Without\n"+
			"-w the result goes to stdout; with -w files are rewritten in place; with -check\n"+
			"nothing is written, the unformatted files are listed and the exit status is 1.\n"+
			"Directories are searched for *.hcl files (hidden directories are skipped); no\n"+
			"argument means the current directory. A file with syntax errors is refused and\n"+
			"its diagnostics shown (exit 1). Files in JSON syntax are only syntax-checked.", stderr)
	check := fset.Bool("check", false, "list unformatted files and exit 1 if there are any; write nothing")
	write := fset.Bool("w", false, "rewrite files in place")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if *check && *write {
		return usageError("-check and -w exclude each other")
	}
	paths := fset.Args()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	files, err := collectHCL(paths)
	if err != nil {
		return usageError("%v", err)
	}
	width, color := diagStyle(stderr)
	failed, unformatted := 0, 0
	for _, path := range files {
		src, err := readLimited(path)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			failed++
			continue
		}
		out, d := specs.Format(src, path)
		if d.HasErrors() {
			_ = d.WriteText(stderr, width, color)
			fmt.Fprintf(stderr, "%s: not formatted: fix the syntax errors first\n", path)
			failed++
			continue
		}
		changed := !bytes.Equal(src, out)
		switch {
		case *check:
			if changed {
				fmt.Fprintln(stdout, path)
				unformatted++
			}
		case *write:
			if changed {
				if err := writeInPlace(path, out); err != nil {
					fmt.Fprintf(stderr, "%s: %v\n", path, err)
					failed++
				}
			}
		default:
			if _, err := stdout.Write(out); err != nil {
				return err
			}
		}
	}
	if failed > 0 || unformatted > 0 {
		return &exitError{code: exitFailed}
	}
	return nil
}

// collectHCL expands directories into the *.hcl files under them, sorted;
// files named explicitly are taken whatever their extension.
func collectHCL(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				if path != p && strings.HasPrefix(e.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(e.Name(), ".hcl") && e.Type().IsRegular() {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readLimited reads a file of at most MaxFileSize bytes (plus one, so that
// Format can say it is too large).
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, specs.MaxFileSize+1))
}

// writeInPlace replaces path's content atomically, keeping its mode.
func writeInPlace(path string, data []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".hilfarm-fmt-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
