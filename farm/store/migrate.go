package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; append only, never edit a shipped entry.
var migrations = []string{
	// 1: the initial schema.
	`CREATE TABLE firmware (
	   sha256     TEXT PRIMARY KEY,
	   size       INTEGER NOT NULL,
	   name       TEXT NOT NULL,
	   created_ms INTEGER NOT NULL
	 ) STRICT;

	 CREATE TABLE jobs (
	   id               TEXT PRIMARY KEY,
	   spec_name        TEXT NOT NULL,
	   spec_src         BLOB NOT NULL,
	   spec_filename    TEXT NOT NULL,
	   firmware_sha256  TEXT NOT NULL REFERENCES firmware(sha256),
	   firmware_name    TEXT NOT NULL,
	   firmware_version TEXT NOT NULL,
	   selector         TEXT NOT NULL,  -- JSON specs.Selector (spec's, merged with submit options)
	   vars             TEXT NOT NULL,  -- JSON object of overrides
	   labels           TEXT NOT NULL,  -- JSON object
	   priority         INTEGER NOT NULL,
	   submitter        TEXT NOT NULL,
	   state            TEXT NOT NULL,  -- queued, running, passed, failed, error, cancelled
	   reason           TEXT NOT NULL DEFAULT '',
	   board            TEXT NOT NULL DEFAULT '',
	   attempts         INTEGER NOT NULL DEFAULT 0,
	   created_ms       INTEGER NOT NULL,
	   started_ms       INTEGER NOT NULL DEFAULT 0,
	   ended_ms         INTEGER NOT NULL DEFAULT 0,
	   result           TEXT NOT NULL DEFAULT ''  -- JSON runner result of the final attempt
	 ) STRICT;
	 CREATE INDEX jobs_queue ON jobs(state, priority DESC, created_ms);
	 CREATE INDEX jobs_created ON jobs(created_ms);

	 CREATE TABLE attempts (
	   job_id       TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	   n            INTEGER NOT NULL,
	   board        TEXT NOT NULL,
	   state        TEXT NOT NULL,  -- running, passed, failed, error, cancelled
	   reason       TEXT NOT NULL DEFAULT '',
	   started_ms   INTEGER NOT NULL,
	   ended_ms     INTEGER NOT NULL DEFAULT 0,
	   log_start    INTEGER NOT NULL DEFAULT 0,  -- board log offsets of the attempt's console slice
	   log_end      INTEGER NOT NULL DEFAULT -1,
	   result       TEXT NOT NULL DEFAULT '',
	   PRIMARY KEY (job_id, n)
	 ) STRICT;
	 CREATE INDEX attempts_board ON attempts(board, started_ms);

	 CREATE TABLE events (
	   job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	   seq    INTEGER NOT NULL,
	   at_ms  INTEGER NOT NULL,
	   type   TEXT NOT NULL,
	   data   TEXT NOT NULL,
	   PRIMARY KEY (job_id, seq)
	 ) STRICT, WITHOUT ROWID;

	 CREATE TABLE board_log (
	   board  TEXT NOT NULL,
	   offset INTEGER NOT NULL,  -- byte offset of data in the board's console stream
	   at_ms  INTEGER NOT NULL,
	   kind   TEXT NOT NULL,     -- data, or a marker: power-on, power-off, flash-start, ...
	   data   BLOB NOT NULL
	 ) STRICT;
	 CREATE INDEX board_log_offset ON board_log(board, offset);
	 CREATE INDEX board_log_time ON board_log(at_ms);

	 CREATE TABLE boards (
	   name      TEXT PRIMARY KEY,
	   state     TEXT NOT NULL,
	   reason    TEXT NOT NULL DEFAULT '',
	   since_ms  INTEGER NOT NULL,
	   infra_errors_in_row INTEGER NOT NULL DEFAULT 0
	 ) STRICT;

	 CREATE TABLE tokens (
	   id          TEXT PRIMARY KEY,   -- public part, shown in lists
	   name        TEXT NOT NULL,
	   role        TEXT NOT NULL,
	   hash        BLOB NOT NULL,      -- SHA-256 of the secret
	   created_ms  INTEGER NOT NULL,
	   revoked_ms  INTEGER NOT NULL DEFAULT 0,
	   last_used_ms INTEGER NOT NULL DEFAULT 0
	 ) STRICT;

	 CREATE TABLE audit (
	   id     INTEGER PRIMARY KEY,
	   at_ms  INTEGER NOT NULL,
	   actor  TEXT NOT NULL,
	   action TEXT NOT NULL,
	   target TEXT NOT NULL,
	   detail TEXT NOT NULL DEFAULT ''
	 ) STRICT;`,

	// 2: provenance of a candidate (issue 17): its SSH signature and who
	// made it, and an optional CycloneDX SBOM with its summary.
	`ALTER TABLE jobs ADD COLUMN signature BLOB NOT NULL DEFAULT x'';       -- armored SSH signature as submitted
	 ALTER TABLE jobs ADD COLUMN signature_status TEXT NOT NULL DEFAULT ''; -- verified, unsigned, not-checked
	 ALTER TABLE jobs ADD COLUMN signer TEXT NOT NULL DEFAULT '';           -- JSON Signer when verified
	 ALTER TABLE jobs ADD COLUMN sbom TEXT NOT NULL DEFAULT '';             -- JSON SBOMSummary
	 ALTER TABLE jobs ADD COLUMN firmware_size INTEGER NOT NULL DEFAULT 0;
	 UPDATE jobs SET firmware_size = coalesce((SELECT size FROM firmware WHERE firmware.sha256 = jobs.firmware_sha256), 0);
	 CREATE TABLE job_sbom (
	   job_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
	   data   BLOB NOT NULL
	 ) STRICT;`,

	// 3: the job listing's indexes, labels table and tests summary (joblist.go).
	migrationJobListing,

	// 4: idempotency keys of submissions (farm: Idempotency-Key header).
	`CREATE TABLE idempotency (
	   actor      TEXT NOT NULL,  -- the token (id) that sent the key
	   key        TEXT NOT NULL,
	   job_id     TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	   created_ms INTEGER NOT NULL,
	   PRIMARY KEY (actor, key)
	 ) STRICT;
	 CREATE INDEX idempotency_created ON idempotency(created_ms);`,

	// 5: spread campaigns (issue 16): a job's spread and its shard jobs (campaign.go).
	migrationCampaigns,

	// 6: console bytes in segment files (consolefiles.go): a data record's
	// length and segment; its data column is then empty.
	`ALTER TABLE board_log ADD COLUMN ext INTEGER NOT NULL DEFAULT 0;
	 ALTER TABLE board_log ADD COLUMN seg INTEGER NOT NULL DEFAULT 0;`,
}

// SchemaVersion is the schema version this binary writes.
var SchemaVersion = len(migrations)

func (db *DB) migrate(ctx context.Context) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("database schema v%d is newer than this binary (v%d): use a newer hilfarm", v, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations)))
		return err
	})
}
