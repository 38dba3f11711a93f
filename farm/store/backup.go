package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Backup writes a consistent snapshot of the store at src into dest, a
// file that must not exist, with VACUUM INTO: one read transaction, so it
// sees every write committed before it began (those still in the -wal file
// included) and none half-done, while another process (hilfarm serve) goes
// on writing. src is never created or migrated.
func Backup(ctx context.Context, src, dest string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("store %s: %w", src, err)
	}
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("backup %s: %w", dest, os.ErrExist)
	}
	db, err := sql.Open("sqlite", "file:"+src+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("store %s: %w", src, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dest); err != nil {
		os.Remove(dest)
		return fmt.Errorf("store %s: backup into %s: %w", src, dest, err)
	}
	return nil
}

// ErrCorrupt: a store file failed SQLite's integrity check.
var ErrCorrupt = errors.New("store integrity check failed")

// IntegrityCheck runs PRAGMA integrity_check and foreign_key_check on the
// store file at path without changing it.
func IntegrityCheck(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("store %s: integrity check: %w", path, err)
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return fmt.Errorf("store %s: integrity check: %w", path, err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store %s: integrity check: %w", path, err)
	}
	var fk int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pragma_foreign_key_check").Scan(&fk); err != nil {
		return fmt.Errorf("store %s: foreign key check: %w", path, err)
	}
	if fk > 0 {
		problems = append(problems, fmt.Sprintf("%d rows break a foreign key", fk))
	}
	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5], "...")
		}
		return fmt.Errorf("store %s: %w: %s", path, ErrCorrupt, strings.Join(problems, "; "))
	}
	return nil
}

// JobCount is the number of jobs in the store.
func (db *DB) JobCount(ctx context.Context) (int, error) {
	var n int
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM jobs").Scan(&n); err != nil {
		return 0, fmt.Errorf("store %s: count jobs: %w", db.path, err)
	}
	return n, nil
}
