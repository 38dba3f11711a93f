package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// LogRecord is one record of a board's console log: bytes the board
// printed (Kind "data") or a marker (power-on, flash-start, job-start, ...)
// placed at a byte offset of the board's console stream.
type LogRecord struct {
	Offset int64     `json:"offset"`
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Data   []byte    `json:"data,omitempty"`
}

// AppendLog stores a batch of a board's log records in one transaction.
// The bytes of data records go to the board's segment files
// (consolefiles.go), written before the rows that name them.
func (db *DB) AppendLog(ctx context.Context, board string, recs []LogRecord) error {
	if len(recs) == 0 {
		return nil
	}
	b := db.files.board(board)
	b.mu.Lock()
	defer b.mu.Unlock()
	resume := func() (seg int64, ok bool, err error) {
		err = db.w.QueryRowContext(ctx, `SELECT seg FROM board_log
			WHERE board = ? AND ext > 0 ORDER BY offset DESC LIMIT 1`, board).Scan(&seg)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil
		}
		return seg, err == nil, err
	}
	segs := make([]int64, len(recs))
	for i, r := range recs {
		if r.Kind != "data" || len(r.Data) == 0 {
			continue
		}
		seg, err := db.files.write(b, board, r.Offset, r.Data, resume)
		if err != nil {
			return fmt.Errorf("store: log of board %s: console file: %w", board, err)
		}
		segs[i] = seg
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO board_log(board, offset, at_ms, kind, data, ext, seg)
			VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, r := range recs {
			data, ext := r.Data, 0
			if data == nil {
				data = []byte{}
			}
			if r.Kind == "data" && len(data) > 0 {
				data, ext = []byte{}, len(r.Data)
			}
			if _, err := stmt.ExecContext(ctx, board, r.Offset, ms(r.At), r.Kind, data, ext, segs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: log of board %s: %w", board, err)
	}
	return nil
}

// Log returns a board's log records with from <= offset < to (to < 0: no
// upper bound), in stream order, at most limit records (0: no limit). A
// stored data record may hold several reads (the recorder merges them): one
// that straddles from or to is cut to the range, so the records returned
// hold exactly the range's bytes (fewer where a segment file lost them).
func (db *DB) Log(ctx context.Context, board string, from, to int64, limit int) ([]LogRecord, error) {
	// The data record that covers from, if one starts before it.
	start := from
	var prev int64
	var prevLen int64
	err := db.r.QueryRowContext(ctx, `SELECT offset, length(data) + ext FROM board_log
		WHERE board = ? AND offset < ? AND kind = 'data' ORDER BY offset DESC LIMIT 1`, board, from).Scan(&prev, &prevLen)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, err
	case prev+prevLen > from:
		start = prev
	}
	q := "SELECT offset, at_ms, kind, data, ext, seg FROM board_log WHERE board = ? AND offset >= ?"
	args := []any{board, start}
	if to >= 0 {
		q += " AND offset < ?"
		args = append(args, to)
	}
	// Markers sort before the data that starts at the same offset: a
	// power-on marker precedes the boot banner.
	q += " ORDER BY offset, kind = 'data', rowid"
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit+1) // +1: a marker before from may be skipped
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	files := db.files.reader(board)
	defer files.close()
	var out []LogRecord
	for rows.Next() {
		var r LogRecord
		var at, ext, seg int64
		if err := rows.Scan(&r.Offset, &at, &r.Kind, &r.Data, &ext, &seg); err != nil {
			return nil, err
		}
		r.At = fromMS(at)
		if r.Offset < from && r.Kind != "data" {
			continue
		}
		if r.Kind == "data" {
			lo, hi := max(r.Offset, from), r.Offset+int64(len(r.Data))+ext
			if to >= 0 {
				hi = max(lo, min(hi, to))
			}
			if ext > 0 {
				if r.Data, err = files.read(seg, lo, hi-lo); err != nil {
					return nil, fmt.Errorf("store: log of board %s: console file: %w", board, err)
				}
			} else {
				r.Data = r.Data[lo-r.Offset : hi-r.Offset]
			}
			r.Offset = lo
		}
		out = append(out, r)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, rows.Err()
}

// LogEnd returns the offset just past a board's last stored record (0 for
// none): where the board's console stream goes on after a restart.
func (db *DB) LogEnd(ctx context.Context, board string) (int64, error) {
	var end int64
	err := db.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(CASE kind WHEN 'data' THEN offset + length(data) + ext ELSE offset END), 0)
		FROM board_log WHERE board = ?`, board).Scan(&end)
	return end, err
}

// BoardState is a board's persisted state.
type BoardState struct {
	Name              string    `json:"name"`
	State             string    `json:"state"`
	Reason            string    `json:"reason,omitempty"`
	Since             time.Time `json:"since"`
	InfraErrorsInARow int       `json:"infra_errors_in_a_row"`
}

// SetBoardState records a board's state (insert or update).
func (db *DB) SetBoardState(ctx context.Context, s BoardState) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO boards(name, state, reason, since_ms, infra_errors_in_row)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET state = excluded.state,
		reason = excluded.reason, since_ms = excluded.since_ms, infra_errors_in_row = excluded.infra_errors_in_row`,
		s.Name, s.State, s.Reason, ms(s.Since), s.InfraErrorsInARow)
	if err != nil {
		return fmt.Errorf("store: state of board %s: %w", s.Name, err)
	}
	return nil
}

// BoardStates returns every persisted board state by name.
func (db *DB) BoardStates(ctx context.Context) (map[string]BoardState, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT name, state, reason, since_ms, infra_errors_in_row FROM boards")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]BoardState{}
	for rows.Next() {
		var s BoardState
		var since int64
		if err := rows.Scan(&s.Name, &s.State, &s.Reason, &since, &s.InfraErrorsInARow); err != nil {
			return nil, err
		}
		s.Since = fromMS(since)
		out[s.Name] = s
	}
	return out, rows.Err()
}

// Token is an API token. The secret itself is never stored: only its SHA-256.
type Token struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	Hash     []byte    `json:"-"`
	Created  time.Time `json:"created"`
	Revoked  time.Time `json:"revoked,omitzero"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// InsertToken stores a new token.
func (db *DB) InsertToken(ctx context.Context, t Token) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO tokens(id, name, role, hash, created_ms) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Role, t.Hash, ms(t.Created))
	if err != nil {
		return fmt.Errorf("store: token %s: %w", t.ID, err)
	}
	return nil
}

// TokenByID returns a token (revoked ones included).
func (db *DB) TokenByID(ctx context.Context, id string) (*Token, error) {
	var t Token
	var created, revoked, used int64
	err := db.r.QueryRowContext(ctx, `SELECT id, name, role, hash, created_ms, revoked_ms, last_used_ms
		FROM tokens WHERE id = ?`, id).Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &created, &revoked, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	t.Created, t.Revoked, t.LastUsed = fromMS(created), fromMS(revoked), fromMS(used)
	return &t, nil
}

// Tokens lists all tokens, oldest first.
func (db *DB) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, name, role, created_ms, revoked_ms, last_used_ms FROM tokens ORDER BY created_ms, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var created, revoked, used int64
		if err := rows.Scan(&t.ID, &t.Name, &t.Role, &created, &revoked, &used); err != nil {
			return nil, err
		}
		t.Created, t.Revoked, t.LastUsed = fromMS(created), fromMS(revoked), fromMS(used)
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken marks a token revoked.
func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := db.w.ExecContext(ctx, "UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms = 0", ms(at), id)
	if err != nil {
		return fmt.Errorf("store: revoke token %s: %w", id, err)
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return fmt.Errorf("token %s (or it is already revoked): %w", id, ErrNotFound)
	}
	return nil
}

// TouchToken records a token's last use.
func (db *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := db.w.ExecContext(ctx, "UPDATE tokens SET last_used_ms = ? WHERE id = ?", ms(at), id)
	return err
}

// AuditRecord is who did what to what.
type AuditRecord struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Detail string    `json:"detail,omitempty"`
}

// Audit appends an audit record.
func (db *DB) Audit(ctx context.Context, r AuditRecord) error {
	_, err := db.w.ExecContext(ctx, "INSERT INTO audit(at_ms, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
		ms(r.At), r.Actor, r.Action, r.Target, r.Detail)
	if err != nil {
		return fmt.Errorf("store: audit %s %s: %w", r.Action, r.Target, err)
	}
	return nil
}

// AuditLog returns the newest audit records first, at most limit.
func (db *DB) AuditLog(ctx context.Context, limit int) ([]AuditRecord, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT at_ms, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?", limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var r AuditRecord
		var at int64
		if err := rows.Scan(&at, &r.Actor, &r.Action, &r.Target, &r.Detail); err != nil {
			return nil, err
		}
		r.At = fromMS(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Prune deletes final jobs that ended before t (with their attempts and
// events), board log records older than t, and firmware rows no job uses.
// It returns the sha256s of the firmware rows it deleted, so the caller can
// remove their files.
func (db *DB) Prune(ctx context.Context, before time.Time) ([]string, error) {
	var gone []string
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE state IN (?, ?, ?, ?) AND ended_ms > 0 AND ended_ms < ?`,
			StatePassed, StateFailed, StateError, StateCancelled, ms(before)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM board_log WHERE at_ms < ?`, ms(before)); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT sha256 FROM firmware f WHERE created_ms < ?
			AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.firmware_sha256 = f.sha256)`, ms(before))
		if err != nil {
			return err
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return err
			}
			gone = append(gone, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, s := range gone {
			if _, err := tx.ExecContext(ctx, "DELETE FROM firmware WHERE sha256 = ?", s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: prune: %w", err)
	}
	if err := db.pruneSegments(ctx); err != nil {
		return gone, fmt.Errorf("store: prune: console files: %w", err)
	}
	return gone, nil
}

// UsedBytes is the space the database's live pages take (the file itself
// only shrinks with VACUUM; freed pages are reused) and the console
// segment files.
func (db *DB) UsedBytes(ctx context.Context) (int64, error) {
	var pages, free, size int64
	if err := db.r.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return 0, err
	}
	if err := db.r.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
		return 0, err
	}
	if err := db.r.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
		return 0, err
	}
	used := (pages - free) * size
	ents, err := os.ReadDir(db.files.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	for _, e := range ents {
		_, sizes, err := segments(filepath.Join(db.files.dir, e.Name()))
		if err != nil {
			continue
		}
		for _, n := range sizes {
			used += n
		}
	}
	return used, nil
}

// NthFinished returns the end time of the n-th oldest finished job (1-based),
// and false when there are fewer.
func (db *DB) NthFinished(ctx context.Context, n int) (time.Time, bool, error) {
	var at int64
	err := db.r.QueryRowContext(ctx, `SELECT ended_ms FROM jobs WHERE state IN (?, ?, ?, ?) AND ended_ms > 0
		ORDER BY ended_ms LIMIT 1 OFFSET ?`, StatePassed, StateFailed, StateError, StateCancelled, n-1).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return fromMS(at), true, nil
}

// CountFinished is the number of jobs in a final state.
func (db *DB) CountFinished(ctx context.Context) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE state IN (?, ?, ?, ?)`,
		StatePassed, StateFailed, StateError, StateCancelled).Scan(&n)
	return n, err
}
