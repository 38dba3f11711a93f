package main

import (
	"context"
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
	var boards []boardJSON
	if err := c.call(ctx, http.MethodGet, "/api/v1/boards", nil, &boards); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, boards)
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
	fs := newFlagSet("board", "hilfarm board --server URL NAME [maintenance on|off --reason R]",
		"Show a board, or put it in maintenance (no new jobs; the running one finishes)\n"+
			"or take it out again (role operator or above). Flags go before NAME.", stderr)
	cf := addClientFlags(fs)
	reason := fs.String("reason", "", "why the board goes into maintenance (shown to everyone)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usageError("board needs a board NAME")
	}
	name := rest[0]
	// Allow --reason after the action too: board NAME maintenance on --reason R.
	if len(rest) > 1 {
		fs2 := newFlagSet("board", "", "", stderr)
		fs2.StringVar(reason, "reason", *reason, "")
		if len(rest) >= 3 {
			if err := parseFlags(fs2, rest[3:]); err != nil {
				return err
			}
			if fs2.NArg() != 0 {
				return usageError("unexpected arguments %q", fs2.Args())
			}
		}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	path := "/api/v1/boards/" + url.PathEscape(name)
	switch {
	case len(rest) == 1:
		var b boardJSON
		if err := c.call(ctx, http.MethodGet, path, nil, &b); err != nil {
			return err
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
		var b boardJSON
		if err := c.call(ctx, http.MethodPost, path+"/maintenance", map[string]any{"on": on, "reason": *reason}, &b); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "board %s %s\n", b.Name, b.State)
		return nil
	default:
		return usageError("usage: hilfarm board NAME [maintenance on|off --reason R]")
	}
}
