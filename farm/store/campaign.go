package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Spread campaigns (issue 16). A job whose spec asks for `spread = N` is a
// parent: when the scheduler reaches it, it is split into up to N shard
// jobs, each a job of its own (queued, attempted, retried and blamed like
// any job) that runs a share of the campaign's iterations. The parent stays
// running without attempts of its own until every shard is final; then the
// shards' results are merged into the parent's one result.
//
// The jobs table is not changed: the spread and the shards live in tables
// of their own, so a listing (which must not read columns after the
// result) finds a shard by its primary key.
const migrationCampaigns = `
	CREATE TABLE job_spread (
	  job_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
	  spread INTEGER NOT NULL,           -- the spec's repeat.spread (>= 2)
	  shards INTEGER NOT NULL DEFAULT 0  -- split into this many shards; 0: not split yet
	) STRICT, WITHOUT ROWID;

	CREATE TABLE job_shards (
	  job_id    TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE, -- the shard
	  parent_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	  idx       INTEGER NOT NULL,  -- from 0
	  of        INTEGER NOT NULL
	) STRICT, WITHOUT ROWID;
	CREATE INDEX job_shards_parent ON job_shards(parent_id, idx);
`

// ShardRef says which share of a spread job a shard job is.
type ShardRef struct {
	Parent string `json:"parent"`
	Index  int    `json:"index"` // from 0
	Of     int    `json:"of"`
}

// ShardOf returns the shard a job is, or nil when it is not a shard.
func (db *DB) ShardOf(ctx context.Context, jobID string) (*ShardRef, error) {
	var r ShardRef
	err := db.r.QueryRowContext(ctx, `SELECT parent_id, idx, of FROM job_shards WHERE job_id = ?`, jobID).Scan(&r.Parent, &r.Index, &r.Of)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: shard of job %s: %w", jobID, err)
	}
	return &r, nil
}

// Spread returns a job's requested spread and how many shards it was split
// into (0, 0 when it is not a spread job).
func (db *DB) Spread(ctx context.Context, jobID string) (spread, shards int, err error) {
	err = db.r.QueryRowContext(ctx, `SELECT spread, shards FROM job_spread WHERE job_id = ?`, jobID).Scan(&spread, &shards)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: spread of job %s: %w", jobID, err)
	}
	return spread, shards, nil
}

// QueuedSpreads returns the requested spread of every queued spread job.
func (db *DB) QueuedSpreads(ctx context.Context) (map[string]int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT s.job_id, s.spread FROM job_spread s JOIN jobs j ON j.id = s.job_id
		WHERE j.state = ? AND s.shards = 0`, StateQueued)
	if err != nil {
		return nil, fmt.Errorf("store: queued spread jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// putSpread records a new job's spread (with its insert).
func putSpread(ctx context.Context, ex execer, j *Job) error {
	if j.Spread < 2 {
		return nil
	}
	_, err := ex.ExecContext(ctx, `INSERT INTO job_spread(job_id, spread) VALUES (?, ?)`, j.ID, j.Spread)
	return err
}

// ShardID is the id of shard i (from 0) of a spread job.
func ShardID(parent string, i int) string { return fmt.Sprintf("%s-s%d", parent, i+1) }

// SplitJob turns a queued spread job into k queued shard jobs (copies of
// it with the same priority and submission time, so they keep its place
// in the queue, but no labels: a listing by label finds the parent) and
// marks it running. It reports false when the job is no longer queued
// (cancelled meanwhile).
func (db *DB) SplitJob(ctx context.Context, jobID string, k int, at time.Time) (bool, error) {
	split := false
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, board = '', started_ms = ? WHERE id = ? AND state = ?`,
			StateRunning, ms(at), jobID, StateQueued)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		for i := range k {
			id := ShardID(jobID, i)
			if _, err := tx.ExecContext(ctx, `INSERT INTO jobs(id, spec_name, spec_src, spec_filename,
				firmware_sha256, firmware_name, firmware_version, selector, vars, labels, priority,
				submitter, state, created_ms, signature, signature_status, signer, sbom, firmware_size)
				SELECT ?, spec_name, spec_src, spec_filename, firmware_sha256, firmware_name, firmware_version,
				selector, vars, '{}', priority, submitter, ?, created_ms, signature, signature_status, signer, sbom, firmware_size
				FROM jobs WHERE id = ?`, id, StateQueued, jobID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO job_shards(job_id, parent_id, idx, of) VALUES (?, ?, ?, ?)`,
				id, jobID, i, k); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE job_spread SET shards = ? WHERE job_id = ?`, k, jobID); err != nil {
			return err
		}
		split = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: split job %s into %d shards: %w", jobID, k, err)
	}
	return split, nil
}

// Shards returns a spread job's shard jobs in order (without SpecSrc).
func (db *DB) Shards(ctx context.Context, parent string) ([]*Job, error) {
	return db.queryJobs(ctx, "SELECT "+strings.Replace(jobCols, "spec_src", "x''", 1)+` FROM jobs
		WHERE id IN (SELECT job_id FROM job_shards WHERE parent_id = ?)
		ORDER BY (SELECT idx FROM job_shards s WHERE s.job_id = jobs.id)`, parent)
}

// FinishSpread ends a running spread job with its merged outcome. It
// reports false when the job was not running (another shard's end got to
// it first).
func (db *DB) FinishSpread(ctx context.Context, jobID string, e AttemptEnd, board string) (bool, error) {
	res, err := db.w.ExecContext(ctx, `UPDATE jobs SET state = ?, reason = ?, ended_ms = ?, result = ?, board = ?
		WHERE id = ? AND state = ?`, e.State, e.Reason, ms(e.At), string(e.Result), board, jobID, StateRunning)
	if err != nil {
		return false, fmt.Errorf("store: finish spread job %s: %w", jobID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// RunningSpreads lists the spread jobs that are running (split, waiting
// for their shards).
func (db *DB) RunningSpreads(ctx context.Context) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT s.job_id FROM job_spread s JOIN jobs j ON j.id = s.job_id
		WHERE j.state = ? AND s.shards > 0`, StateRunning)
	if err != nil {
		return nil, fmt.Errorf("store: running spread jobs: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// CampaignIterationTimes returns, for each campaign test of a spec's recent
// finished jobs (newest first, up to 20 tests), the median iteration time
// in milliseconds: what the queue's ETA uses for a campaign.
func (db *DB) CampaignIterationTimes(ctx context.Context, specName string) (map[string][]float64, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT json_extract(t.value, '$.name'), json_extract(t.value, '$.campaign.iteration_ms.median')
		FROM (SELECT result FROM jobs WHERE spec_name = ? AND state IN (?, ?) AND result != '' AND json_valid(result)
		      AND NOT EXISTS (SELECT 1 FROM job_shards s WHERE s.job_id = jobs.id)
		      ORDER BY ended_ms DESC LIMIT 5) j, json_each(j.result, '$.tests') t
		WHERE json_type(t.value, '$.campaign.iteration_ms.median') IN ('real', 'integer') LIMIT 20`,
		specName, StatePassed, StateFailed)
	if err != nil {
		return nil, fmt.Errorf("store: campaign iteration times of %s: %w", specName, err)
	}
	defer rows.Close()
	out := map[string][]float64{}
	for rows.Next() {
		var name string
		var v float64
		if err := rows.Scan(&name, &v); err != nil {
			return nil, err
		}
		out[name] = append(out[name], v)
	}
	return out, rows.Err()
}

// QueueUnitsAhead is QueueAhead's count of the queued jobs ahead of a job
// by spec, where a shard of a spread job counts as 1/of of a job.
func (db *DB) QueueUnitsAhead(ctx context.Context, id string) (map[string]float64, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT q.spec_name, SUM(CASE WHEN s.of > 0 THEN 1.0 / s.of ELSE 1.0 END)
		FROM jobs j, jobs q LEFT JOIN job_shards s ON s.job_id = q.id
		WHERE j.id = ? AND q.state = ? AND q.id != j.id AND (q.priority > j.priority OR (q.priority = j.priority
		AND (q.created_ms < j.created_ms OR (q.created_ms = j.created_ms AND q.rowid < j.rowid))))
		GROUP BY q.spec_name`, id, StateQueued)
	if err != nil {
		return nil, fmt.Errorf("store: queue ahead of job %s: %w", id, err)
	}
	defer rows.Close()
	out := map[string]float64{}
	for rows.Next() {
		var spec string
		var n float64
		if err := rows.Scan(&spec, &n); err != nil {
			return nil, err
		}
		out[spec] = n
	}
	return out, rows.Err()
}

// SpecSource returns the source, file name and variables of the newest job
// of a spec (what the queue's ETA reads a campaign's plan from).
func (db *DB) SpecSource(ctx context.Context, specName string) ([]byte, string, map[string]string, error) {
	var src []byte
	var fname, vars string
	err := db.r.QueryRowContext(ctx, `SELECT spec_src, spec_filename, vars FROM jobs WHERE spec_name = ?
		ORDER BY created_ms DESC LIMIT 1`, specName).Scan(&src, &fname, &vars)
	if err != nil {
		return nil, "", nil, fmt.Errorf("store: source of spec %s: %w", specName, err)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(vars), &v); err != nil {
		return nil, "", nil, fmt.Errorf("store: source of spec %s: vars: %w", specName, err)
	}
	return src, fname, v, nil
}
