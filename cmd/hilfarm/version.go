package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
)

func init() {
	register(command{name: "version", summary: "print the version", run: runVersion})
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "hilfarm version [--json]  (or hilfarm --version)", "Print hilfarm's version, Go version and platform.", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("version takes no arguments")
	}
	if *asJSON {
		return writeJSON(stdout, map[string]string{"version": version, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH})
	}
	fmt.Fprintf(stdout, "hilfarm %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// newFlagSet makes a flag set whose --help prints usage and a description.
func newFlagSet(name, synopsis, description string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n\n%s\n", synopsis, description)
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(fs.Output(), "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args with flags before, between or after the positional
// arguments (as GNU getopt does; "--" ends the flags). --help gives errHelp
// (exit 0), a bad flag a usage error (exit 2). Afterwards fs.Args() holds the
// positional arguments in order.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if captureFlags != nil { // completion asks for the command's flags
		captureFlags(fs)
		return errHelp
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return errHelp
			}
			return &exitError{code: exitInfra}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			positional = append(positional, rest...) // after "--", all positional
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Reset fs.Args() to the positional arguments; "--" keeps any that
	// look like flags from being parsed again.
	return fs.Parse(append([]string{"--"}, positional...))
}
