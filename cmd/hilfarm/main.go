// Command hilfarm is the hardware-in-the-loop test-farm controller: one
// binary that serves the farm, runs specs locally, validates and formats
// HCL, and submits jobs from CI.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Exit codes shared by every command.
const (
	exitOK       = 0
	exitFailed   = 1 // the firmware failed, or a file is invalid
	exitInfra    = 2 // infrastructure error, cancel, or usage error
	exitRejected = 3 // the input was rejected
)

// version is stamped by the Makefile with -ldflags -X main.version=....
var version = "dev"

// command is one subcommand. run returns an error; an *exitError carries a
// specific exit code, any other error exits 2.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

// register adds a subcommand; each command's file calls it from init.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("hilfarm: duplicate command " + c.name)
	}
	commands[c.name] = c
}

// exitError asks main to exit with code after printing msg (if any).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageError is a bad command line: exit 2.
func usageError(format string, a ...any) error {
	return &exitError{code: exitInfra, msg: fmt.Sprintf(format, a...)}
}

func main() {
	stopProfile := startEnvProfile()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopProfile()
	os.Exit(code)
}

// run dispatches a command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitInfra
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "hilfarm: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitInfra
	}
	err := c.run(ctx, args[1:], stdout, stderr)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(stderr, "hilfarm %s: %s\n", c.name, ee.msg)
		}
		return ee.code
	}
	if errors.Is(err, errHelp) {
		return exitOK
	}
	var ae *apiError
	if errors.As(err, &ae) {
		if code, hint := apiAdvice(ae); hint != "" {
			fmt.Fprintf(stderr, "hilfarm %s: %v\n  %s\n", c.name, err, hint)
			return code
		}
	}
	fmt.Fprintf(stderr, "hilfarm %s: %v\n", c.name, err)
	return exitInfra
}

// apiAdvice says what to do about an API error the command did not handle
// itself, and with which exit code: a request the farm will refuse again
// (401, 403, 404, 409, other 4xx) exits 3 so that a pipeline does not retry
// it; 408, 429 and 5xx keep exit 2 (retryable). hint is empty for those.
func apiAdvice(ae *apiError) (code int, hint string) {
	switch {
	case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden && ae.NoToken:
		if ae.NoToken {
			return exitRejected, "this needs an API token: pass --token TOKEN or set HILFARM_TOKEN " +
				"(an admin creates one on the farm's host: hilfarm token create --name NAME --role submitter)"
		}
		return exitRejected, "the token was refused (unknown, revoked or expired): check --token / HILFARM_TOKEN"
	case ae.Status == http.StatusForbidden:
		return exitRejected, "the token's role may not do this: ask an admin for a token with a higher role (hilfarm token create --role ...)"
	case ae.Status == http.StatusNotFound:
		return exitRejected, "no such object on this farm: check the name or ID (and --server)"
	case ae.Status == http.StatusRequestTimeout || ae.Status == http.StatusTooManyRequests:
		return exitInfra, ""
	case ae.Status/100 == 4:
		return exitRejected, "the farm rejected the request; it will not succeed if repeated as is"
	}
	return exitInfra, ""
}

// errHelp is returned by a command that printed its help on request.
var errHelp = errors.New("help requested")

func usage(w io.Writer) {
	fmt.Fprintln(w, "hilfarm: a hardware-in-the-loop test farm in one binary")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: hilfarm COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'hilfarm COMMAND --help' for a command's flags.")
}
