package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

func init() {
	register(command{name: "jobs", summary: "list a farm's jobs", run: runJobs})
	register(command{name: "job", summary: "show one job (--wait follows it to its verdict)", run: runJob})
	register(command{name: "cancel", summary: "cancel a queued or running job", run: runCancel})
}

func runJobs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("jobs", "hilfarm jobs --server URL [--state S] [--kind K] [--json]",
		"List jobs, newest first: id, state, spec, firmware, board, submitter, age.\n"+
			"Health checks are listed only with --kind health_check or --kind all.", stderr)
	cf := addClientFlags(fs)
	state := fs.String("state", "", "only jobs in these `states` (comma-separated: queued,running,passed,failed,error,cancelled)")
	kind := fs.String("kind", "", "`kind` of jobs: candidate (the default), health_check or all")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("jobs takes no arguments")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *state != "" {
		q.Set("state", *state)
	}
	if *kind != "" {
		q.Set("kind", *kind)
	}
	path := "/api/v1/jobs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, path, nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return writeRawJSON(stdout, raw) // every field the API has
	}
	var jobs []jobJSON
	if err := json.Unmarshal(raw, &jobs); err != nil {
		return fmt.Errorf("jobs: bad answer: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSPEC\tFIRMWARE\tBOARD\tSUBMITTER\tCREATED")
	for _, j := range jobs {
		st := j.State
		if j.Position > 0 {
			st += fmt.Sprintf(" #%d", j.Position)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, st, j.SpecName, firmwareString(j), dash(j.Board),
			j.Submitter, j.Created.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func firmwareString(j jobJSON) string {
	s := j.Firmware.Name
	if j.Firmware.Version != "" {
		s += " " + j.Firmware.Version
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runJob(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("job", "hilfarm job --server URL [--json] [--wait] ID",
		"Show a job: state, verdict, attempts and tests. With --wait, follow it to its\n"+
			"verdict like submit --wait does (and exit the same way).", stderr)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	wait := fs.Bool("wait", false, "stream progress and console until the verdict")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("job takes one job ID")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	id := fs.Arg(0)
	if *wait {
		return waitJob(ctx, c, id, stdout, waitOptions{})
	}
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return writeRawJSON(stdout, raw) // every field the API has
	}
	var j jobJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return fmt.Errorf("job %s: bad answer: %w", id, err)
	}
	var f fieldWriter
	f.add("job", "%s", j.ID)
	st := j.State
	if j.Reason != "" {
		st += ": " + cleanReason(j.Reason, j.Board)
	}
	f.add("state", "%s", st)
	if j.Position > 0 {
		eta := ""
		if !j.ETA.IsZero() {
			eta = ", ETA " + j.ETA.Local().Format(time.TimeOnly)
		}
		f.add("queue", "position %d%s", j.Position, eta)
	}
	f.add("spec", "%s (%s)", j.SpecName, j.SpecFilename)
	f.add("firmware", "%s sha256:%s", firmwareString(j), j.Firmware.SHA256)
	f.add("board", "%s", dash(j.Board))
	f.add("submitter", "%s", j.Submitter)
	f.add("created", "%s", j.Created.Local().Format(time.DateTime))
	if len(j.Labels) > 0 {
		var l []string
		for k, v := range j.Labels {
			l = append(l, k+"="+v)
		}
		sort.Strings(l)
		f.add("labels", "%s", strings.Join(l, " "))
	}
	for _, a := range j.Attempts {
		r := ""
		// The job's reason is its last attempt's: say it once.
		if a.Reason != "" && (a.N != len(j.Attempts) || a.Reason != j.Reason) {
			r = ": " + cleanReason(a.Reason, a.Board)
		}
		f.add(fmt.Sprintf("attempt %d", a.N), "%s on %s%s", a.State, a.Board, r)
	}
	var res struct {
		Tests []struct {
			Name, Outcome, Message string
		} `json:"tests"`
	}
	if len(j.Result) > 0 && json.Unmarshal(j.Result, &res) == nil {
		for _, t := range res.Tests {
			m := ""
			if t.Message != "" && !strings.Contains(j.Reason, t.Message) {
				m = ": " + t.Message
			}
			f.add("test", "%s: %s%s", t.Name, t.Outcome, m)
		}
	}
	return f.flush(stdout)
}

func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cancel", "hilfarm cancel --server URL ID",
		"Cancel a queued or running job (role submitter or above). A running job stops,\n"+
			"its board goes back to its safe state, and it ends as cancelled.", stderr)
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("cancel takes one job ID")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var j jobJSON
	if err := c.call(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(fs.Arg(0))+"/cancel", nil, &j); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "job %s %s\n", j.ID, j.State)
	return nil
}
