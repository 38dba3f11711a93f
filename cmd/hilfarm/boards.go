package main

import (
	"bytes"
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
	register(command{name: "boards", summary: "list a farm's boards and their states", run: runBoards})
	register(command{name: "board", summary: "show a board, or put it in or out of maintenance", run: runBoard})
}

// writeRawJSON writes an API answer as indented JSON, keeping every field.
func writeRawJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("bad JSON answer: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// boardJSON is a board as the API returns it (farm.BoardView).
type boardJSON struct {
	Name   string            `json:"name"`
	Type   string            `json:"type"`
	Tags   map[string]string `json:"tags,omitempty"`
	State  string            `json:"state"`
	Reason string            `json:"reason,omitempty"`
	Since  time.Time         `json:"since"`
	Job    string            `json:"job,omitempty"`
	Health float64           `json:"health"`
	Flags  []string          `json:"flags,omitempty"`
	// Emulated: the board is an emulator hilfarm serve runs itself.
	Emulated  bool      `json:"emulated"`
	Holder    string    `json:"holder,omitempty"`
	HeldUntil time.Time `json:"held_until,omitzero"`
}

func tagString(tags map[string]string) string {
	var l []string
	for k, v := range tags {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}

func runBoards(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("boards", "hilfarm boards --server URL [--json]",
		"List the farm's boards: name, type, tags, state (with its reason), current job, health.", stderr)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("boards takes no arguments")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, "/api/v1/boards", nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return writeRawJSON(stdout, raw) // every field the API has
	}
	var boards []boardJSON
	if err := json.Unmarshal(raw, &boards); err != nil {
		return fmt.Errorf("GET /api/v1/boards: bad answer: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BOARD\tTYPE\tTAGS\tSTATE\tJOB\tHEALTH")
	for _, b := range boards {
		st := b.State
		if b.Reason != "" {
			st += " (" + b.Reason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\n", b.Name, b.Type, dash(tagString(b.Tags)), st, dash(b.Job), b.Health)
	}
	return tw.Flush()
}

func runBoard(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("board", "hilfarm board --server URL [--json] NAME [maintenance on|off --reason R]",
		"Show a board, or put it in maintenance (no new jobs; the running one finishes)\n"+
			"or take it out again (role operator or above).", stderr)
	cf := addClientFlags(fs)
	reason := fs.String("reason", "", "why the board goes into maintenance (shown to everyone)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usageError("board needs a board NAME")
	}
	name := rest[0]
	if len(rest) > 3 {
		return usageError("unexpected arguments %q", rest[3:])
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	path := "/api/v1/boards/" + url.PathEscape(name)
	switch {
	case len(rest) == 1:
		var raw json.RawMessage
		if err := c.call(ctx, http.MethodGet, path, nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeRawJSON(stdout, raw)
		}
		var b boardJSON
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("GET %s: bad answer: %w", path, err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "board\t%s\ntype\t%s\ntags\t%s\n", b.Name, b.Type, dash(tagString(b.Tags)))
		st := b.State
		if b.Reason != "" {
			st += ": " + b.Reason
		}
		fmt.Fprintf(tw, "state\t%s (since %s)\njob\t%s\nhealth\t%.2f\n", st, b.Since.Local().Format(time.DateTime), dash(b.Job), b.Health)
		if len(b.Flags) > 0 {
			fmt.Fprintf(tw, "flags\t%s\n", strings.Join(b.Flags, ", "))
		}
		return tw.Flush()
	case len(rest) >= 3 && rest[1] == "maintenance" && (rest[2] == "on" || rest[2] == "off"):
		on := rest[2] == "on"
		if on && *reason == "" {
			return usageError("maintenance on needs --reason")
		}
		var raw json.RawMessage
		if err := c.call(ctx, http.MethodPost, path+"/maintenance", map[string]any{"on": on, "reason": *reason}, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeRawJSON(stdout, raw)
		}
		var b boardJSON
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("POST %s/maintenance: bad answer: %w", path, err)
		}
		fmt.Fprintf(stdout, "board %s %s\n", b.Name, b.State)
		return nil
	default:
		return usageError("usage: hilfarm board NAME [maintenance on|off --reason R]")
	}
}
