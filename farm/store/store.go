// Package store keeps the controller's state in one SQLite file
// (modernc.org/sqlite, no cgo): jobs and their attempts, job events, board
// console logs (their bytes in segment files beside it: consolefiles.go),
// board states, tokens and the audit trail.
//
// The database runs in WAL mode with foreign keys on. Writes go through a
// single connection (BEGIN IMMEDIATE), reads through a small pool of
// read-only connections, so readers never block the writer. Times are
// stored as UTC unix milliseconds. The schema is migrated at Open by
// numbered, append-only migrations recorded in PRAGMA user_version.
//
// A *DB is safe for concurrent use.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// DB is an open store.
type DB struct {
	w     *sql.DB // the single writer
	r     *sql.DB // read-only pool
	path  string
	files *logFiles // console segment files (consolefiles.go)
}

func dsn(path string, extra ...string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	// SQLite's default 4 KiB pages. (64 KiB pages were tried for console
	// floods; those bytes now go to segment files (consolefiles.go), and
	// big pages made every small commit write a 64 KiB WAL frame and let
	// the WAL grow to 64 MiB before a checkpoint: an 8 MiB data disk
	// filled on its own.)
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_journal_mode", "WAL")
	q.Add("_synchronous", "NORMAL")
	for i := 0; i+1 < len(extra); i += 2 {
		q.Add(extra[i], extra[i+1])
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the store at path and migrates it.
func Open(ctx context.Context, path string) (*DB, error) {
	w, err := sql.Open("sqlite", dsn(path, "_txlock", "immediate"))
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store %s: open: %w", path, err)
	}
	db := &DB{w: w, path: path, files: &logFiles{dir: consoleDir(path)}}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(path, "_pragma", "query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	db.r = r
	return db, nil
}

// Close closes the store.
func (db *DB) Close() error {
	return errors.Join(db.r.Close(), db.w.Close(), db.files.close())
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// IntegrityCheck runs PRAGMA integrity_check and returns its verdict ("ok" when sound).
func (db *DB) IntegrityCheck(ctx context.Context) (string, error) {
	var s string
	err := db.r.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&s)
	return s, err
}

// Backup writes a consistent copy of the database to path (VACUUM INTO).
func (db *DB) Backup(ctx context.Context, path string) error {
	_, err := db.w.ExecContext(ctx, "VACUUM INTO ?", path)
	return err
}

// IsBusy reports whether err is SQLITE_BUSY (any extended code).
func IsBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// IsConstraint reports whether err is a constraint violation (unique, foreign key, check).
func IsConstraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// ms converts a time to stored form; the zero time is stored as 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UTC().UnixMilli()
}

// fromMS converts stored milliseconds back; 0 is the zero time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// tx runs fn in a write transaction and commits it.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
