package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrNotFound is returned when a job, token or board row does not exist.
var ErrNotFound = errors.New("not found")

// Job states. Queued and Running are live; the rest are final.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StatePassed    = "passed"
	StateFailed    = "failed"
	StateError     = "error"
	StateCancelled = "cancelled"
)

// Final reports whether a job state is final.
func Final(state string) bool {
	switch state {
	case StatePassed, StateFailed, StateError, StateCancelled:
		return true
	}
	return false
}

// Firmware identifies a stored firmware candidate (content-addressed).
type Firmware struct {
	SHA256  string `json:"sha256"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Size    int64  `json:"size,omitempty"`
	Provenance
}

// HealthSubmitter is the submitter of the controller's own health-check jobs.
const HealthSubmitter = "hilfarm:health"

// Job kinds: a firmware candidate someone submitted, or a board's health
// check the controller queued itself (no candidate: it checks the board).
const (
	KindCandidate   = "candidate"
	KindHealthCheck = "health_check"
)

// Job is one submission: a firmware candidate and a spec, with its verdict.
type Job struct {
	ID           string            `json:"id"`
	Kind         string            `json:"kind"` // KindCandidate or KindHealthCheck (from the submitter)
	SpecName     string            `json:"spec"`
	SpecSrc      []byte            `json:"-"`
	SpecFilename string            `json:"spec_filename"`
	Firmware     Firmware          `json:"firmware"`
	Selector     json.RawMessage   `json:"selector"`
	Vars         map[string]string `json:"vars,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Priority     int               `json:"priority"`
	Submitter    string            `json:"submitter"`
	State        string            `json:"state"`
	Reason       string            `json:"reason,omitempty"`
	Board        string            `json:"board,omitempty"`
	Attempts     int               `json:"attempts"`
	Created      time.Time         `json:"created"`
	Started      time.Time         `json:"started,omitzero"`
	Ended        time.Time         `json:"ended,omitzero"`
	Result       json.RawMessage   `json:"result,omitempty"`
	// Spread is the spec's repeat.spread, recorded at insert (campaign.go);
	// the store does not read it back into a Job.
	Spread int `json:"-"`
}

// Attempt is one run of a job on one board.
type Attempt struct {
	JobID    string          `json:"job"`
	N        int             `json:"n"`
	Board    string          `json:"board"`
	State    string          `json:"state"`
	Reason   string          `json:"reason,omitempty"`
	Started  time.Time       `json:"started"`
	Ended    time.Time       `json:"ended,omitzero"`
	LogStart int64           `json:"log_start"`
	LogEnd   int64           `json:"log_end"`
	Result   json.RawMessage `json:"result,omitempty"`
}

// PutFirmware records a stored firmware blob; storing the same sha256 twice is fine.
func (db *DB) PutFirmware(ctx context.Context, fw Firmware, at time.Time) error {
	_, err := db.w.ExecContext(ctx,
		`INSERT INTO firmware(sha256, size, name, created_ms) VALUES (?, ?, ?, ?)
		 ON CONFLICT(sha256) DO NOTHING`, fw.SHA256, fw.Size, fw.Name, ms(at))
	if err != nil {
		return fmt.Errorf("store: firmware %s: %w", fw.SHA256, err)
	}
	return nil
}

func mustJSON(v any) string {
	if v == nil {
		return "{}"
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return string(b)
}

// InsertJob stores a new queued job.
func (db *DB) InsertJob(ctx context.Context, j *Job) error {
	if err := db.tx(ctx, func(tx *sql.Tx) error { return insertJob(ctx, tx, j) }); err != nil {
		return err
	}
	j.State = StateQueued
	return nil
}

// execer is a connection or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertJob inserts a new queued job and its SBOM through ex.
func insertJob(ctx context.Context, ex execer, j *Job) error {
	sel := string(j.Selector)
	if sel == "" {
		sel = "{}"
	}
	_, err := ex.ExecContext(ctx, `INSERT INTO jobs(id, spec_name, spec_src, spec_filename,
		firmware_sha256, firmware_name, firmware_version, selector, vars, labels, priority,
		submitter, state, created_ms, signature, signature_status, signer, sbom, firmware_size)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		append([]any{j.ID, j.SpecName, j.SpecSrc, j.SpecFilename, j.Firmware.SHA256, j.Firmware.Name,
			j.Firmware.Version, sel, mustJSON(j.Vars), mustJSON(j.Labels), j.Priority,
			j.Submitter, StateQueued, ms(j.Created)}, provenanceArgs(&j.Firmware)...)...)
	if err != nil {
		return fmt.Errorf("store: insert job %s: %w", j.ID, err)
	}
	if err := putSpread(ctx, ex, j); err != nil {
		return fmt.Errorf("store: insert job %s: spread: %w", j.ID, err)
	}
	return putSBOM(ctx, ex, j)
}

// IdempotencyKey ties a submission's Idempotency-Key to the job it made.
type IdempotencyKey struct {
	Actor, Key string
}

// InsertJobWithKey stores a new queued job and, in the same transaction,
// records that key made it (replacing an expired record of the key).
// Records older than expired are removed on the way.
func (db *DB) InsertJobWithKey(ctx context.Context, j *Job, k IdempotencyKey, expired time.Time) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := insertJob(ctx, tx, j); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE created_ms < ?`, ms(expired)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO idempotency(actor, key, job_id, created_ms) VALUES (?, ?, ?, ?)
			ON CONFLICT(actor, key) DO UPDATE SET job_id = excluded.job_id, created_ms = excluded.created_ms`,
			k.Actor, k.Key, j.ID, ms(j.Created))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: insert job %s with its idempotency key: %w", j.ID, err)
	}
	j.State = StateQueued
	return nil
}

// IdempotentJob returns the id of the job key made, if it was recorded
// after since; "" when there is none.
func (db *DB) IdempotentJob(ctx context.Context, k IdempotencyKey, since time.Time) (string, error) {
	var id string
	err := db.r.QueryRowContext(ctx, `SELECT job_id FROM idempotency WHERE actor = ? AND key = ? AND created_ms >= ?`,
		k.Actor, k.Key, ms(since)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: idempotency key: %w", err)
	}
	return id, nil
}

const jobCols = `id, spec_name, spec_src, spec_filename, firmware_sha256, firmware_name,
	firmware_version, selector, vars, labels, priority, submitter, state, reason, board,
	attempts, created_ms, started_ms, ended_ms, result, signature, signature_status, signer, sbom, firmware_size`

type scanner interface{ Scan(dest ...any) error }

func scanJob(s scanner) (*Job, error) {
	var j Job
	var sel, vars, labels, result string
	var created, started, ended int64
	var prov provenanceCols
	err := s.Scan(&j.ID, &j.SpecName, &j.SpecSrc, &j.SpecFilename, &j.Firmware.SHA256,
		&j.Firmware.Name, &j.Firmware.Version, &sel, &vars, &labels, &j.Priority,
		&j.Submitter, &j.State, &j.Reason, &j.Board, &j.Attempts, &created, &started,
		&ended, &result, &prov.signature, &prov.status, &prov.signer, &prov.sbom, &prov.size)
	if err != nil {
		return nil, err
	}
	if err := prov.into(&j.Firmware); err != nil {
		return nil, fmt.Errorf("job %s: %w", j.ID, err)
	}
	j.Selector = json.RawMessage(sel)
	if err := json.Unmarshal([]byte(vars), &j.Vars); err != nil {
		return nil, fmt.Errorf("job %s: vars: %w", j.ID, err)
	}
	if err := json.Unmarshal([]byte(labels), &j.Labels); err != nil {
		return nil, fmt.Errorf("job %s: labels: %w", j.ID, err)
	}
	if result != "" {
		j.Result = json.RawMessage(result)
	}
	j.Created, j.Started, j.Ended = fromMS(created), fromMS(started), fromMS(ended)
	j.Kind = KindCandidate
	if j.Submitter == HealthSubmitter {
		j.Kind = KindHealthCheck
	}
	return &j, nil
}

// Job returns one job.
func (db *DB) Job(ctx context.Context, id string) (*Job, error) {
	j, err := scanJob(db.r.QueryRowContext(ctx, "SELECT "+jobCols+" FROM jobs WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return j, err
}

// JobFilter selects jobs for Jobs.
type JobFilter struct {
	States []string // empty: all
	Spec   string   // empty: all
	Limit  int      // 0: 100
}

// Jobs lists jobs, newest first, without their SpecSrc (use Job for it).
func (db *DB) Jobs(ctx context.Context, f JobFilter) ([]*Job, error) {
	q := "SELECT " + jobCols + " FROM jobs"
	var args []any
	var where []string
	if len(f.States) > 0 {
		where = append(where, "state IN ("+strings.TrimSuffix(strings.Repeat("?,", len(f.States)), ",")+")")
		for _, s := range f.States {
			args = append(args, s)
		}
	}
	if f.Spec != "" {
		where, args = append(where, "spec_name = ?"), append(args, f.Spec)
	}
	// Shards of a spread job are listed on its page, not here (campaign.go).
	where = append(where, "NOT EXISTS (SELECT 1 FROM job_shards s WHERE s.job_id = jobs.id)")
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += " ORDER BY created_ms DESC, id DESC LIMIT ?"
	args = append(args, f.Limit)
	return db.queryJobs(ctx, strings.Replace(q, "spec_src", "x''", 1), args...)
}

// Queue lists the queued jobs in the order the scheduler serves them:
// priority (highest first), then first come first served. Like Jobs, it
// leaves SpecSrc empty (use Job for the whole job).
func (db *DB) Queue(ctx context.Context) ([]*Job, error) {
	return db.queryJobs(ctx, "SELECT "+strings.Replace(jobCols, "spec_src", "x''", 1)+" FROM jobs WHERE state = ? ORDER BY priority DESC, created_ms, rowid", StateQueued)
}

func (db *DB) queryJobs(ctx context.Context, q string, args ...any) ([]*Job, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// StartAttempt marks a queued job running on board and records a new
// attempt whose console slice starts at logStart. It fails with
// ErrNotFound if the job is not queued (cancelled meanwhile, say).
func (db *DB) StartAttempt(ctx context.Context, jobID, board string, logStart int64, at time.Time) (int, error) {
	var n int
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, board = ?, attempts = attempts + 1,
			started_ms = CASE WHEN started_ms = 0 THEN ? ELSE started_ms END
			WHERE id = ? AND state = ?`, StateRunning, board, ms(at), jobID, StateQueued)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return fmt.Errorf("job %s is not queued: %w", jobID, ErrNotFound)
		}
		if err := tx.QueryRowContext(ctx, "SELECT attempts FROM jobs WHERE id = ?", jobID).Scan(&n); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO attempts(job_id, n, board, state, started_ms, log_start)
			VALUES (?, ?, ?, ?, ?, ?)`, jobID, n, board, StateRunning, ms(at), logStart)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: start attempt of job %s: %w", jobID, err)
	}
	return n, nil
}

// AttemptEnd is how an attempt ended.
type AttemptEnd struct {
	State  string
	Reason string
	LogEnd int64
	Result json.RawMessage
	At     time.Time
	// Requeue puts the job back in the queue (an infrastructure error to be
	// retried on another board) instead of ending it with State.
	Requeue bool
}

// FinishAttempt records the end of attempt n and either ends the job with
// the same state or requeues it.
func (db *DB) FinishAttempt(ctx context.Context, jobID string, n int, e AttemptEnd) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE attempts SET state = ?, reason = ?, ended_ms = ?,
			log_end = ?, result = ? WHERE job_id = ? AND n = ?`,
			e.State, e.Reason, ms(e.At), e.LogEnd, string(e.Result), jobID, n); err != nil {
			return err
		}
		if e.Requeue {
			_, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, board = '', reason = ?
				WHERE id = ? AND state = ?`, StateQueued, e.Reason, jobID, StateRunning)
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, reason = ?, ended_ms = ?, result = ?
			WHERE id = ? AND state = ?`, e.State, e.Reason, ms(e.At), string(e.Result), jobID, StateRunning)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: finish attempt %d of job %s: %w", n, jobID, err)
	}
	return nil
}

// CancelQueued cancels a job that is still queued. It reports whether it did.
func (db *DB) CancelQueued(ctx context.Context, jobID, reason string, at time.Time) (bool, error) {
	res, err := db.w.ExecContext(ctx, `UPDATE jobs SET state = ?, reason = ?, ended_ms = ?
		WHERE id = ? AND state = ?`, StateCancelled, reason, ms(at), jobID, StateQueued)
	if err != nil {
		return false, fmt.Errorf("store: cancel job %s: %w", jobID, err)
	}
	k, _ := res.RowsAffected()
	return k == 1, nil
}

// Attempts lists a job's attempts in order.
func (db *DB) Attempts(ctx context.Context, jobID string) ([]Attempt, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT job_id, n, board, state, reason, started_ms,
		ended_ms, log_start, log_end, result FROM attempts WHERE job_id = ? ORDER BY n`, jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var started, ended int64
		var result string
		if err := rows.Scan(&a.JobID, &a.N, &a.Board, &a.State, &a.Reason, &started, &ended,
			&a.LogStart, &a.LogEnd, &result); err != nil {
			return nil, err
		}
		a.Started, a.Ended = fromMS(started), fromMS(ended)
		if result != "" {
			a.Result = json.RawMessage(result)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Interrupted is a job that was running when the controller stopped.
type Interrupted struct {
	JobID string
	N     int
	Board string
}

// RecoverInterrupted ends every running attempt with state error and the
// given reason (e.g. "controller restarted"), and returns them. Their jobs
// are requeued when requeue says so, else they end as error too.
func (db *DB) RecoverInterrupted(ctx context.Context, reason string, at time.Time, requeue func(jobID string, attempts int) bool) ([]Interrupted, error) {
	return db.RecoverInterruptedWith(ctx, reason, at, func(jobID string, attempts int) (bool, string) {
		return requeue != nil && requeue(jobID, attempts), reason
	})
}

// RecoverInterruptedWith is RecoverInterrupted where decide also says the
// reason a job that is not requeued ends with (its attempt keeps reason).
func (db *DB) RecoverInterruptedWith(ctx context.Context, reason string, at time.Time, decide func(jobID string, attempts int) (requeue bool, jobReason string)) ([]Interrupted, error) {
	var out []Interrupted
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT a.job_id, a.n, a.board, j.attempts FROM attempts a
			JOIN jobs j ON j.id = a.job_id WHERE a.state = ? ORDER BY a.started_ms`, StateRunning)
		if err != nil {
			return err
		}
		var attempts []int
		for rows.Next() {
			var it Interrupted
			var n int
			if err := rows.Scan(&it.JobID, &it.N, &it.Board, &n); err != nil {
				rows.Close()
				return err
			}
			out = append(out, it)
			attempts = append(attempts, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i, it := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE attempts SET state = ?, reason = ?, ended_ms = ?
				WHERE job_id = ? AND n = ?`, StateError, reason, ms(at), it.JobID, it.N); err != nil {
				return err
			}
			if again, jobReason := decide(it.JobID, attempts[i]); again {
				_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = ?, board = '', reason = ? WHERE id = ?`,
					StateQueued, reason, it.JobID)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = ?, reason = ?, ended_ms = ? WHERE id = ?`,
					StateError, jobReason, ms(at), it.JobID)
			}
			if err != nil {
				return err
			}
		}
		// A job marked running without a running attempt cannot happen through this
		// package, but a hand-edited database could hold one: end it too.
		// A split spread job runs through its shards, not attempts of its own (campaign.go).
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = ?, reason = ?, ended_ms = ? WHERE state = ?
			AND NOT EXISTS (SELECT 1 FROM job_spread s WHERE s.job_id = jobs.id AND s.shards > 0)`,
			StateError, reason, ms(at), StateRunning)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: recover interrupted jobs: %w", err)
	}
	return out, nil
}

// Event is one stored job event (a runner event, or a controller one).
type Event struct {
	Seq  int64           `json:"seq"`
	At   time.Time       `json:"at"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// AppendEvents stores events of a job, numbering them after the last stored one.
// It returns the events with their sequence numbers.
func (db *DB) AppendEvents(ctx context.Context, jobID string, evs []Event) ([]Event, error) {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var last int64
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = ?", jobID).Scan(&last); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO events(job_id, seq, at_ms, type, data) VALUES (?, ?, ?, ?, ?)")
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := range evs {
			last++
			evs[i].Seq = last
			data := string(evs[i].Data)
			if data == "" {
				data = "null"
			}
			if _, err := stmt.ExecContext(ctx, jobID, last, ms(evs[i].At), evs[i].Type, data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: events of job %s: %w", jobID, err)
	}
	return evs, nil
}

// Events returns a job's events with seq > after, in order.
func (db *DB) Events(ctx context.Context, jobID string, after int64) ([]Event, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT seq, at_ms, type, data FROM events WHERE job_id = ? AND seq > ? ORDER BY seq", jobID, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		var data string
		if err := rows.Scan(&e.Seq, &at, &e.Type, &data); err != nil {
			return nil, err
		}
		e.At, e.Data = fromMS(at), json.RawMessage(data)
		out = append(out, e)
	}
	return out, rows.Err()
}

// TypicalDuration is the median run time of the last (up to 20) attempts
// of a spec that passed or failed, and how many there were.
func (db *DB) TypicalDuration(ctx context.Context, specName string) (time.Duration, int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT a.ended_ms - a.started_ms FROM attempts a JOIN jobs j ON j.id = a.job_id
		WHERE j.spec_name = ? AND a.state IN (?, ?) AND a.ended_ms > 0
		AND NOT EXISTS (SELECT 1 FROM job_shards s WHERE s.job_id = j.id) ORDER BY a.ended_ms DESC LIMIT 20`,
		specName, StatePassed, StateFailed)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	var ds []int64
	for rows.Next() {
		var d int64
		if err := rows.Scan(&d); err != nil {
			return 0, 0, err
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil || len(ds) == 0 {
		return 0, 0, err
	}
	slices.Sort(ds)
	return time.Duration(ds[len(ds)/2]) * time.Millisecond, len(ds), nil
}

// PassedElsewhere reports whether the same firmware passed the same spec on
// a board other than board.
func (db *DB) PassedElsewhere(ctx context.Context, sha256, specName, board string) (bool, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM attempts a JOIN jobs j ON j.id = a.job_id
		WHERE j.firmware_sha256 = ? AND j.spec_name = ? AND a.board != ? AND a.state = ?
		AND NOT EXISTS (SELECT 1 FROM job_shards s WHERE s.job_id = j.id)`,
		sha256, specName, board, StatePassed).Scan(&n)
	return n > 0, err
}

// QueueAhead returns a queued job's position (1 = next) and how many
// queued jobs of each spec are ahead of it, without reading the queue.
func (db *DB) QueueAhead(ctx context.Context, id string) (int, map[string]int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT q.spec_name, COUNT(*) FROM jobs q, jobs j
		WHERE j.id = ? AND q.state = ? AND q.id != j.id AND (q.priority > j.priority OR (q.priority = j.priority
		AND (q.created_ms < j.created_ms OR (q.created_ms = j.created_ms AND q.rowid < j.rowid))))
		GROUP BY q.spec_name`, id, StateQueued)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	ahead := map[string]int{}
	pos := 1
	for rows.Next() {
		var spec string
		var n int
		if err := rows.Scan(&spec, &n); err != nil {
			return 0, nil, err
		}
		ahead[spec] = n
		pos += n
	}
	return pos, ahead, rows.Err()
}

// AttemptsEndedWith counts a job's attempts that ended with exactly reason.
func (db *DB) AttemptsEndedWith(ctx context.Context, jobID, reason string) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM attempts WHERE job_id = ? AND reason = ? AND state != ?",
		jobID, reason, StateRunning).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: attempts of job %s: %w", jobID, err)
	}
	return n, nil
}
