package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// migrationJobListing (migration 3) makes the job listing fast on a large
// store: one index per filter of the listing, each ending in the listing's
// order (created_ms, id) so a page is an index range; labels in their own
// table (filled by a trigger from jobs.labels, so every insert path keeps
// it); and a small per-job summary of the tests' outcomes in a table of
// its own (filled by a trigger whenever the result is written), so a
// listing never reads the result, which may be megabytes: every column it
// reads from jobs comes before the result in the row, and a column after a
// large value would cost a walk of its overflow pages.
const migrationJobListing = `
	CREATE TABLE job_tests (
	  job_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
	  tests  TEXT NOT NULL -- JSON {"passed": 3, "failed": 1}: the result's tests by outcome
	) STRICT, WITHOUT ROWID;
	CREATE INDEX jobs_list           ON jobs(created_ms, id);
	CREATE INDEX jobs_list_state     ON jobs(state, created_ms, id);
	CREATE INDEX jobs_list_spec      ON jobs(spec_name, created_ms, id);
	CREATE INDEX jobs_list_board     ON jobs(board, created_ms, id);
	CREATE INDEX jobs_list_submitter ON jobs(submitter, created_ms, id);
	CREATE INDEX jobs_list_firmware  ON jobs(firmware_sha256, created_ms, id);
	CREATE INDEX jobs_list_fw_name   ON jobs(firmware_name, created_ms, id);
	CREATE INDEX jobs_list_fw_version ON jobs(firmware_version, created_ms, id);

	CREATE TABLE job_labels (
	  job_id     TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	  key        TEXT NOT NULL,
	  value      TEXT NOT NULL,
	  created_ms INTEGER NOT NULL, -- the job's, for the listing's order
	  PRIMARY KEY (job_id, key)
	) STRICT, WITHOUT ROWID;
	CREATE INDEX job_labels_list ON job_labels(key, value, created_ms, job_id);
	INSERT OR IGNORE INTO job_labels
	  SELECT j.id, l.key, l.value, j.created_ms FROM jobs j, json_each(j.labels) l
	  WHERE json_valid(j.labels) AND l.type = 'text';
	CREATE TRIGGER jobs_labels_insert AFTER INSERT ON jobs WHEN json_valid(new.labels) BEGIN
	  INSERT OR IGNORE INTO job_labels
	    SELECT new.id, key, value, new.created_ms FROM json_each(new.labels) WHERE type = 'text';
	END;

	CREATE TRIGGER jobs_tests_summary AFTER UPDATE OF result ON jobs WHEN json_valid(new.result) BEGIN
	  INSERT OR REPLACE INTO job_tests(job_id, tests) SELECT new.id, (SELECT json_group_object(o, n) FROM (
	      SELECT json_extract(value, '$.outcome') AS o, COUNT(*) AS n FROM json_each(new.result, '$.tests')
	      WHERE json_type(value, '$.outcome') = 'text' GROUP BY o));
	END;
	INSERT INTO job_tests(job_id, tests) SELECT j.id, (SELECT json_group_object(o, n) FROM (
	    SELECT json_extract(value, '$.outcome') AS o, COUNT(*) AS n FROM json_each(j.result, '$.tests')
	    WHERE json_type(value, '$.outcome') = 'text' GROUP BY o))
	  FROM jobs j WHERE j.result != '' AND json_valid(j.result);
`

// ListFilter selects jobs for List. Every field that is set must match.
type ListFilter struct {
	States       []string // any of them
	Spec         string
	Boards       []string // ran (or runs) on any of them; a board type is its boards
	NoBoards     bool     // Boards was given but names none: nothing matches
	Submitter    string
	NotSubmitter string            // e.g. health checks left out
	Labels       map[string]string // key=value, all of them
	LabelKeys    []string          // the label is set, whatever its value
	Firmware     string            // sha256 (or a prefix of at least 6 hex digits), file name or version
	Cursor       string            // from the previous page's Next
	Limit        int               // 1..1000; 0: 50
}

// JobSummary is a job as listed: no spec source, selector or result,
// only the counts of its tests' outcomes.
type JobSummary struct {
	ID           string            `json:"id"`
	SpecName     string            `json:"spec"`
	SpecFilename string            `json:"spec_filename"`
	Firmware     Firmware          `json:"firmware"`
	Labels       map[string]string `json:"labels,omitempty"`
	Priority     int               `json:"priority"`
	Submitter    string            `json:"submitter"`
	State        string            `json:"state"`
	Reason       string            `json:"reason,omitempty"`
	Board        string            `json:"board,omitempty"`
	NAttempts    int               `json:"-"`
	Created      time.Time         `json:"created"`
	Started      time.Time         `json:"started,omitzero"`
	Ended        time.Time         `json:"ended,omitzero"`
	Tests        map[string]int    `json:"tests,omitempty"` // outcome -> count
}

// ErrBadCursor is returned for a cursor List did not make.
var ErrBadCursor = errors.New("bad cursor")

// MaxListLimit is the largest page List returns.
const MaxListLimit = 1000

func encodeCursor(created int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(created, 10) + "/" + id))
}

func decodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) > 300 {
		return 0, "", ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(b), "/")
	n, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || id == "" {
		return 0, "", ErrBadCursor
	}
	return n, id, nil
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return s != ""
}

// List lists jobs newest first, a page at a time: the jobs after Cursor
// that match the filter, at most Limit, and the cursor of the next page
// ("" on the last page). Each filter is an index range in the listing's
// order, so a page costs about the same whatever the store's size.
func (db *DB) List(ctx context.Context, f ListFilter) ([]JobSummary, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > MaxListLimit {
		f.Limit = MaxListLimit
	}
	if f.NoBoards {
		return []JobSummary{}, "", nil
	}
	var where []string
	var args []any
	in := func(col string, vals []string) {
		where = append(where, col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",")+")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	if len(f.States) > 0 {
		in("j.state", f.States)
	}
	if f.Spec != "" {
		where, args = append(where, "j.spec_name = ?"), append(args, f.Spec)
	}
	if len(f.Boards) > 0 {
		in("j.board", f.Boards)
	}
	if f.Submitter != "" {
		where, args = append(where, "j.submitter = ?"), append(args, f.Submitter)
	}
	if f.NotSubmitter != "" {
		where, args = append(where, "j.submitter != ?"), append(args, f.NotSubmitter)
	}
	if fw := f.Firmware; fw != "" {
		fw = strings.TrimPrefix(fw, "sha256:")
		switch {
		case len(fw) == 64 && isHex(fw):
			where, args = append(where, "j.firmware_sha256 = ?"), append(args, fw)
		case len(fw) >= 6 && isHex(fw):
			where, args = append(where, "j.firmware_sha256 >= ? AND j.firmware_sha256 < ?"), append(args, fw, fw+"g")
		default:
			where, args = append(where, "(j.firmware_name = ? OR j.firmware_version = ?)"), append(args, f.Firmware, f.Firmware)
		}
	}
	for k, v := range f.Labels {
		where = append(where, "EXISTS (SELECT 1 FROM job_labels l WHERE l.job_id = j.id AND l.key = ? AND l.value = ?)")
		args = append(args, k, v)
	}
	for _, k := range f.LabelKeys {
		where = append(where, "EXISTS (SELECT 1 FROM job_labels l WHERE l.job_id = j.id AND l.key = ?)")
		args = append(args, k)
	}
	if f.Cursor != "" {
		cms, cid, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(j.created_ms, j.id) < (?, ?)")
		args = append(args, cms, cid)
	}
	from := "jobs j"
	// A label filter alone reads the label index in the listing's order.
	if len(f.Labels) > 0 && len(f.States) == 0 && f.Spec == "" && len(f.Boards) == 0 && f.Submitter == "" && f.Firmware == "" {
		for k, v := range f.Labels {
			from = "job_labels lk JOIN jobs j ON j.id = lk.job_id"
			where = append(where, "lk.key = ? AND lk.value = ?")
			args = append(args, k, v)
			if f.Cursor != "" {
				cms, cid, _ := decodeCursor(f.Cursor)
				where = append(where, "(lk.created_ms, lk.job_id) < (?, ?)")
				args = append(args, cms, cid)
			}
			break
		}
	}
	// Shards of a spread job are listed on its page, not here (campaign.go).
	where = append(where, "NOT EXISTS (SELECT 1 FROM job_shards s WHERE s.job_id = j.id)")
	// The page's ids first (from the indexes and the row's leading
	// columns), then their rows: whatever the filter, only the page's rows
	// are read whole.
	inner := "SELECT j.id FROM " + from
	if len(where) > 0 {
		inner += " WHERE " + strings.Join(where, " AND ")
	}
	if strings.HasPrefix(from, "job_labels") {
		inner += " ORDER BY lk.created_ms DESC, lk.job_id DESC"
	} else {
		inner += " ORDER BY j.created_ms DESC, j.id DESC"
	}
	inner += " LIMIT ?"
	args = append(args, f.Limit+1)
	q := `SELECT j.id, j.spec_name, j.spec_filename, j.firmware_sha256, j.firmware_name, j.firmware_version,
		j.labels, j.priority, j.submitter, j.state, substr(j.reason, 1, 1024), j.board, j.attempts,
		j.created_ms, j.started_ms, j.ended_ms, COALESCE(t.tests, '') FROM jobs j LEFT JOIN job_tests t ON t.job_id = j.id
		WHERE j.id IN (` + inner + `) ORDER BY j.created_ms DESC, j.id DESC`
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list jobs: %w", err)
	}
	defer rows.Close()
	out := []JobSummary{}
	for rows.Next() {
		var j JobSummary
		var labels, tests string
		var created, started, ended int64
		if err := rows.Scan(&j.ID, &j.SpecName, &j.SpecFilename, &j.Firmware.SHA256, &j.Firmware.Name,
			&j.Firmware.Version, &labels, &j.Priority, &j.Submitter, &j.State, &j.Reason, &j.Board,
			&j.NAttempts, &created, &started, &ended, &tests); err != nil {
			return nil, "", fmt.Errorf("store: list jobs: %w", err)
		}
		if err := json.Unmarshal([]byte(labels), &j.Labels); err != nil {
			return nil, "", fmt.Errorf("store: job %s: labels: %w", j.ID, err)
		}
		if tests != "" {
			if err := json.Unmarshal([]byte(tests), &j.Tests); err != nil {
				return nil, "", fmt.Errorf("store: job %s: tests: %w", j.ID, err)
			}
		}
		j.Created, j.Started, j.Ended = fromMS(created), fromMS(started), fromMS(ended)
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("store: list jobs: %w", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = encodeCursor(ms(last.Created), last.ID)
	}
	return out, next, nil
}

// AttemptSummary is an attempt as listed: no result, the reason cut at 1 KiB.
type AttemptSummary struct {
	N       int       `json:"n"`
	Board   string    `json:"board"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
}

// AttemptSummaries returns the attempts of the given jobs, by job, in order.
func (db *DB) AttemptSummaries(ctx context.Context, ids []string) (map[string][]AttemptSummary, error) {
	out := map[string][]AttemptSummary{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := db.r.QueryContext(ctx, `SELECT job_id, n, board, state, substr(reason, 1, 1024), started_ms, ended_ms
		FROM attempts WHERE job_id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+`) ORDER BY job_id, n`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a AttemptSummary
		var started, ended int64
		if err := rows.Scan(&id, &a.N, &a.Board, &a.State, &a.Reason, &started, &ended); err != nil {
			return nil, fmt.Errorf("store: attempts: %w", err)
		}
		a.Started, a.Ended = fromMS(started), fromMS(ended)
		out[id] = append(out[id], a)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: attempts: %w", err)
	}
	return out, nil
}
