package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/specs"
)

func init() {
	register(command{name: "submit", summary: "submit a firmware candidate and a spec to a farm (for CI)", run: runSubmit})
}

func runSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("submit", "hilfarm submit --server URL [--token T] --firmware FILE --spec FILE [flags]",
		"Submit a firmware candidate and a test spec to a hilfarm server and print the\n"+
			"job's URL at once. With --wait, stream the job's step progress and console to\n"+
			"stdout until its verdict (resuming if the connection drops).\n"+
			"The token comes from --token or $HILFARM_TOKEN (role submitter or above).\n"+
			"Exit status: 0 passed, 1 failed, 2 error, cancelled or usage error, 3 rejected\n"+
			"(the spec's diagnostics are printed). Without --wait: 0 once queued.", stderr)
	cf := addClientFlags(fs)
	firmware := fs.String("firmware", "", "firmware candidate `file` (required)")
	fwVersion := fs.String("fw-version", "", "firmware `version` (available to specs as firmware.version)")
	specPath := fs.String("spec", "", "test spec `file` (required)")
	vars, tags, labels := varFlags{}, varFlags{}, varFlags{}
	fs.Var(vars, "var", "set a spec variable (`NAME=VALUE`); repeatable")
	boardType := fs.String("type", "", "run on a board of this `type` (narrows the spec's selector)")
	fs.Var(tags, "tag", "run on a board with this tag (`KEY=VALUE`); repeatable")
	priority := fs.Int("priority", 0, "queue `priority` (higher runs first)")
	fs.Var(labels, "label", "attach a label to the job (`KEY=VALUE`, e.g. commit=abc123); repeatable")
	wait := fs.Bool("wait", false, "stream progress and console until the verdict; the exit status is the verdict")
	junit := fs.String("junit", "", "write the JUnit XML report to `file` (implies --wait)")
	jsonOut := fs.String("json", "", "write the final job as JSON to `file` (implies --wait)")
	quiet := fs.Bool("quiet", false, "with --wait, print the progress but not the console")
	idemKey := fs.String("idempotency-key", "", "the submission's Idempotency-Key (`KEY`, e.g. the CI run id): the farm makes one job per key\n"+
		"and token within 24 h; default: a random key, reused by the retries of this run")
	retryFor := fs.Duration("retry-for", submitRetryFor, "retry the upload on connection errors for up to this `duration` (0: never)")
	signature := fs.String("signature", "", "SSH signature `file` of the firmware (ssh-keygen -Y sign -n hilfarm)")
	sbom := fs.String("sbom", "", "CycloneDX JSON SBOM `file` of the firmware")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("submit takes no arguments (got %q)", fs.Args())
	}
	if *firmware == "" || *specPath == "" {
		fs.Usage()
		return usageError("--firmware and --spec are required")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	opts := submitOptions{Type: *boardType, Priority: *priority, FirmwareVersion: *fwVersion, signature: *signature, sbom: *sbom}
	if len(vars) > 0 {
		opts.Vars = vars
	}
	if len(tags) > 0 {
		opts.Tags = tags
	}
	if len(labels) > 0 {
		opts.Labels = labels
	}
	key := *idemKey
	if key == "" {
		key = newIdempotencyKey()
	}
	job, err := submitWithRetries(ctx, c, *firmware, *specPath, opts, key, *retryFor, stderr)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusRequestEntityTooLarge || ae.Status == http.StatusUnprocessableEntity) {
			if len(ae.Diagnostics) > 0 {
				fmt.Fprintf(stderr, "hilfarm submit: rejected: %s has %d problem(s):\n", *specPath, len(ae.Diagnostics))
				src, _ := os.ReadFile(*specPath)
				writeDiagnostics(stderr, ae.Diagnostics, filepath.Base(*specPath), src)
			} else {
				fmt.Fprintf(stderr, "hilfarm submit: rejected: %s\n", ae.Message)
			}
			return &exitError{code: exitRejected}
		}
		return err
	}
	fmt.Fprintln(stdout, c.url("/jobs/"+url.PathEscape(job.ID))) // the job's web page
	if !*wait && *junit == "" && *jsonOut == "" {
		return nil
	}
	return waitJob(ctx, c, job.ID, stdout, waitOptions{junit: *junit, json: *jsonOut, quiet: *quiet})
}

// submitRetryFor is how long submit retries on connection errors by default.
const submitRetryFor = 2 * time.Minute

// newIdempotencyKey returns a random Idempotency-Key.
func newIdempotencyKey() string {
	var b [16]byte
	rand.Read(b[:])
	return "hilfarm-submit-" + hex.EncodeToString(b[:])
}

// submitWithRetries submits, and on a connection error (the server
// restarting, a dropped connection, a 502/503/504 from a proxy) submits
// again with the same idempotency key, with backoff, for up to retryFor:
// the farm answers the job the first try made if it got that far, so a
// retry never runs the job twice.
func submitWithRetries(ctx context.Context, c *client, firmware, spec string, opts submitOptions, key string, retryFor time.Duration, stderr io.Writer) (*jobJSON, error) {
	deadline := time.Now().Add(retryFor)
	backoff := 250 * time.Millisecond
	for try := 1; ; try++ {
		job, err := c.submit(ctx, firmware, spec, opts, key)
		if err == nil || !retryableSubmitError(err) || ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			return job, err
		}
		fmt.Fprintf(stderr, "hilfarm submit: %v; retrying in %v (try %d, same idempotency key)\n", err, backoff, try+1)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// retryableSubmitError reports whether a submit error is worth a retry: a
// connection error or a gateway's 502/503/504, not a rejection or a local
// file that cannot be read.
func retryableSubmitError(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusBadGateway || ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusGatewayTimeout
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return false
	}
	var ue *url.Error
	return errors.As(err, &ue) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}

type waitOptions struct {
	junit, json string
	quiet       bool
}

// waitJob follows a job to its verdict and maps it to the exit status.
func waitJob(ctx context.Context, c *client, id string, stdout io.Writer, o waitOptions) error {
	p := &progress{w: stdout, quiet: o.quiet, lineStart: true}
	var last stateEvent // the last state event: the verdict when the server is gone after it
	state, err := c.follow(ctx, id, 0, !o.quiet, func(ev store.Event) error {
		if ev.Type == "state" {
			_ = json.Unmarshal(ev.Data, &last)
		}
		return p.event(ev)
	})
	p.endLine()
	if err != nil {
		return err
	}
	var job jobJSON
	if err := c.call(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, &job); err != nil {
		if o.json != "" || o.junit != "" || !store.Final(last.State) {
			return fmt.Errorf("job %s: %w", id, err)
		}
		// The server stopped right after the verdict (a shutdown ends
		// running jobs): its final state event is the verdict.
		job.State, job.Reason = last.State, last.Reason
	}
	if o.json != "" {
		b, err := json.MarshalIndent(job, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.json, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.junit != "" {
		if err := downloadFile(ctx, c, "/api/v1/jobs/"+url.PathEscape(id)+"/junit.xml", o.junit); err != nil {
			return fmt.Errorf("job %s: junit: %w", id, err)
		}
	}
	if job.State != "" {
		state = job.State
	}
	msg := fmt.Sprintf("job %s %s", id, state)
	if job.Reason != "" {
		msg += ": " + job.Reason
	}
	fmt.Fprintln(stdout, msg)
	switch state {
	case store.StatePassed:
		return nil
	case store.StateFailed:
		return &exitError{code: exitFailed}
	default:
		return &exitError{code: exitInfra}
	}
}

func downloadFile(ctx context.Context, c *client, path, file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := c.download(ctx, path, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeDiagnostics prints API diagnostics as file:line:col: severity:
// summary: detail, each followed by its source line and a marker when the
// diagnostic is in the file whose name and source are given.
func writeDiagnostics(w io.Writer, ds []specs.Diagnostic, name string, src []byte) {
	lines := strings.Split(string(src), "\n")
	for _, d := range ds {
		var b strings.Builder
		if d.Range != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Range.Filename, d.Range.Start.Line, d.Range.Start.Column)
		}
		b.WriteString(d.Severity + ": " + d.Summary)
		if d.Detail != "" {
			b.WriteString(": " + d.Detail)
		}
		fmt.Fprintln(w, b.String())
		if r := d.Range; r != nil && r.Filename == name && r.Start.Line >= 1 && r.Start.Line <= len(lines) {
			line := strings.TrimRight(lines[r.Start.Line-1], "\r")
			col := max(r.Start.Column, 1)
			width := 1
			if r.End.Line == r.Start.Line && r.End.Column > col {
				width = r.End.Column - col
			}
			pad := []rune(line)
			if col-1 > len(pad) {
				col = len(pad) + 1
			}
			// Keep tabs so the marker lines up under the source.
			var indent strings.Builder
			for _, c := range pad[:col-1] {
				if c == '\t' {
					indent.WriteRune('\t')
				} else {
					indent.WriteRune(' ')
				}
			}
			fmt.Fprintf(w, "  %4d | %s\n       | %s%s\n", r.Start.Line, line, indent.String(), strings.Repeat("^", width))
		}
	}
}

// progress prints a job's events for a person reading a CI log: state
// changes, tests and steps as lines, the console as it came.
type progress struct {
	w         io.Writer
	quiet     bool
	lineStart bool   // the last byte written ended a line
	step      string // summary of the step running
}

func (p *progress) endLine() {
	if !p.lineStart {
		fmt.Fprintln(p.w)
		p.lineStart = true
	}
}

func (p *progress) line(format string, a ...any) error {
	p.endLine()
	_, err := fmt.Fprintf(p.w, format+"\n", a...)
	return err
}

// event prints one event.
func (p *progress) event(ev store.Event) error {
	var d struct {
		stateEvent
		Phase    string  `json:"phase"`
		Test     string  `json:"test"`
		Summary  string  `json:"summary"`
		Outcome  string  `json:"outcome"`
		Kind     string  `json:"kind"`
		Message  string  `json:"message"`
		Data     string  `json:"data"`
		Duration float64 `json:"duration_ms"`
		Lost     bool    `json:"lost"`
		Err      string  `json:"error"`
		Source   string  `json:"source"`
		Line     string  `json:"line"`
		Measure  *struct {
			Name    string  `json:"name"`
			Value   float64 `json:"value"`
			Unit    string  `json:"unit"`
			Verdict string  `json:"verdict"`
		} `json:"measurement"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return nil // an event type this client does not know: skip it
	}
	switch ev.Type {
	case "state":
		s := "== job " + d.State
		if d.Board != "" && d.State == store.StateRunning {
			s += fmt.Sprintf(" on %s (attempt %d)", d.Board, d.Attempt)
		}
		if d.Reason != "" {
			s += ": " + d.Reason
		}
		return p.line("%s", s)
	case "test_started":
		name := d.Test
		if d.Phase != "test" {
			name = d.Phase
		}
		return p.line("-- %s", name)
	case "step_started":
		p.step = d.Summary
	case "step_finished":
		if d.Outcome != "passed" {
			msg := ""
			if d.Message != "" {
				msg = ": " + d.Message
			}
			return p.line("   step %s: %s%s", p.step, d.Outcome, msg)
		}
	case "test_finished":
		name := d.Test
		if d.Phase != "test" {
			name = d.Phase
		}
		msg := ""
		if d.Message != "" {
			msg = ": " + d.Message
		}
		return p.line("-- %s: %s (%.0f ms)%s", name, d.Outcome, d.Duration, msg)
	case "measurement":
		if d.Measure != nil {
			return p.line("   measure %s = %g %s (%s)", d.Measure.Name, d.Measure.Value, d.Measure.Unit, d.Measure.Verdict)
		}
	case "console":
		if p.quiet || d.Data == "" {
			return nil
		}
		if _, err := io.WriteString(p.w, d.Data); err != nil {
			return err
		}
		p.lineStart = strings.HasSuffix(d.Data, "\n")
	case "console_gap":
		if d.Lost {
			return p.line("!! console lost: %s", d.Err)
		}
		return p.line("!! console back")
	case "log":
		return p.line("   [%s] %s", d.Source, d.Line)
	case "job_finished":
		msg := ""
		if d.Message != "" {
			msg = ": " + d.Message
		}
		return p.line("== attempt %s%s", d.Outcome, msg)
	}
	return nil
}
