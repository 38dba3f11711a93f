package farm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hilfarm/hilfarm/farm/store"
)

// JobListItem is a job in a listing (GET /api/v1/jobs, the live feed's
// queue): a summary of at most a few KB whatever the job's result. The
// field names are JobView's, so a client of the whole job reads it too.
type JobListItem struct {
	store.JobSummary
	Attempts []store.AttemptSummary `json:"attempts"`
	Position int                    `json:"position,omitempty"` // 1 = next to run
	ETA      time.Time              `json:"eta,omitzero"`       // estimated start (queued) or end (running)
	// Kind is KindCandidate, or KindHealth for the controller's own
	// health-check jobs.
	Kind string `json:"kind"`
}

// Job kinds, and a listing's choice of them (the names of the job record's
// "kind"): a candidate someone submitted, or a board's health check.
const (
	KindCandidate = "candidate"    // the default: jobs people submitted
	KindHealth    = "health_check" // the controller's health checks
	KindAll       = "all"
)

// JobQuery is a listing's filter as the API takes it.
type JobQuery struct {
	States    []string
	Spec      string
	Board     string
	BoardType string
	Submitter string
	Labels    []string // key=value, or key alone: the label is set
	Firmware  string
	Kind      string // KindCandidate (""), KindHealth, KindAll
	Cursor    string
	Limit     int
}

// ListJobs lists jobs newest first, a page at a time, and returns the next
// page's cursor ("" on the last page).
func (c *Controller) ListJobs(ctx context.Context, q JobQuery) ([]JobListItem, string, error) {
	f := store.ListFilter{States: q.States, Spec: q.Spec, Submitter: q.Submitter, Firmware: q.Firmware,
		Cursor: q.Cursor, Limit: q.Limit}
	switch q.Kind {
	case "", KindCandidate:
		f.NotSubmitter = HealthSubmitter
	case KindHealth:
		if f.Submitter != "" && f.Submitter != HealthSubmitter {
			return []JobListItem{}, "", nil
		}
		f.Submitter = HealthSubmitter
	case KindAll:
	default:
		return nil, "", badRequest("unknown kind %q (kinds: candidate, health_check, all)", q.Kind)
	}
	if q.Board != "" {
		f.Boards = []string{q.Board}
	}
	if q.BoardType != "" {
		var names []string
		for _, b := range c.Boards() {
			if b.Type == q.BoardType && (q.Board == "" || b.Name == q.Board) {
				names = append(names, b.Name)
			}
		}
		f.Boards, f.NoBoards = names, len(names) == 0
	}
	for _, l := range q.Labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			f.LabelKeys = append(f.LabelKeys, k)
			continue
		}
		if f.Labels == nil {
			f.Labels = map[string]string{}
		}
		f.Labels[k] = v
	}
	sums, next, err := c.db.List(ctx, f)
	if errors.Is(err, store.ErrBadCursor) {
		return nil, "", badRequest("cursor %q is not one this server gave (start again without it)", q.Cursor)
	}
	if err != nil {
		return nil, "", err
	}
	items, err := c.listItems(ctx, sums)
	return items, next, err
}

// listItems adds attempts, queue positions and ETAs to summaries.
func (c *Controller) listItems(ctx context.Context, sums []store.JobSummary) ([]JobListItem, error) {
	ids := make([]string, len(sums))
	for i, s := range sums {
		ids[i] = s.ID
	}
	atts, err := c.db.AttemptSummaries(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]JobListItem, len(sums))
	for i, s := range sums {
		it := JobListItem{JobSummary: s, Attempts: atts[s.ID], Kind: KindCandidate}
		if s.Submitter == HealthSubmitter {
			it.Kind = KindHealth
		}
		if it.Attempts == nil {
			it.Attempts = []store.AttemptSummary{}
		}
		switch s.State {
		case store.StateQueued:
			pos, ahead, err := c.db.QueueAhead(ctx, s.ID)
			if err != nil {
				return nil, err
			}
			it.Position = pos
			if j, err := c.db.Job(ctx, s.ID); err == nil {
				it.ETA = c.eta(ctx, j, ahead)
			}
		case store.StateRunning:
			var last time.Time
			if len(it.Attempts) > 0 {
				last = it.Attempts[len(it.Attempts)-1].Started
			}
			if j, err := c.db.Job(ctx, s.ID); err == nil {
				it.ETA = c.runningETA(ctx, j, last) // campaigns, spread jobs (campaign_eta.go)
			}
		}
		out[i] = it
	}
	return out, nil
}

// listParams are the query parameters of GET /api/v1/jobs.
var listParams = map[string]bool{"state": true, "spec": true, "board": true, "board_type": true,
	"submitter": true, "label": true, "firmware": true, "kind": true, "cursor": true, "limit": true}

// parseJobQuery reads GET /api/v1/jobs's query string. Every value is
// bounded: at most 255 bytes of UTF-8, at most 8 labels.
func parseJobQuery(v url.Values) (JobQuery, error) {
	var q JobQuery
	for k, vs := range v {
		if !listParams[k] {
			return q, badRequest("unknown parameter %q (the filters: state, spec, board, board_type, submitter, label, firmware, kind; paging: cursor, limit)", k)
		}
		if k != "label" && len(vs) > 1 {
			return q, badRequest("parameter %q given %d times (once at most; state takes a comma-separated list)", k, len(vs))
		}
		for _, s := range vs {
			if len(s) > 255 || !utf8.ValidString(s) {
				return q, badRequest("parameter %q: at most 255 bytes of UTF-8", k)
			}
		}
	}
	if s := v.Get("state"); s != "" {
		for st := range strings.SplitSeq(s, ",") {
			if st != store.StateQueued && st != store.StateRunning && !store.Final(st) {
				return q, badRequest("unknown state %q (states: queued, running, passed, failed, error, cancelled)", st)
			}
			q.States = append(q.States, st)
		}
	}
	q.Spec, q.Board, q.BoardType, q.Submitter = v.Get("spec"), v.Get("board"), v.Get("board_type"), v.Get("submitter")
	q.Firmware, q.Kind, q.Cursor = v.Get("firmware"), v.Get("kind"), v.Get("cursor")
	q.Labels = v["label"]
	if len(q.Labels) > 8 {
		return q, badRequest("at most 8 label filters, not %d", len(q.Labels))
	}
	for _, l := range q.Labels {
		if k, _, _ := strings.Cut(l, "="); k == "" {
			return q, badRequest("label filter %q: want KEY=VALUE or KEY", l)
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > store.MaxListLimit {
			return q, badRequest("limit must be a number from 1 to %d", store.MaxListLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// listJobs answers GET /api/v1/jobs: a page of job summaries, newest
// first. The next page's cursor is in the X-Next-Cursor header and a Link
// header (rel="next"); there is none on the last page.
func (a *API) listJobs(w http.ResponseWriter, r *http.Request, _ Principal) error {
	q, err := parseJobQuery(r.URL.Query())
	if err != nil {
		return err
	}
	items, next, err := a.c.ListJobs(r.Context(), q)
	if err != nil {
		return err
	}
	if next != "" {
		v := r.URL.Query()
		v.Set("cursor", next)
		w.Header().Set("X-Next-Cursor", next)
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, v.Encode()))
	}
	return writeJSON(w, http.StatusOK, items)
}
