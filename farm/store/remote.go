package store

import (
	"context"
	"database/sql"
	"fmt"
)

// SetAttemptBoard names the board a running attempt runs on, for a job
// whose board is chosen elsewhere (a rack behind the hub picks it after
// the attempt started here). The job's board follows its attempt's.
func (db *DB) SetAttemptBoard(ctx context.Context, jobID string, n int, board string) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE attempts SET board = ? WHERE job_id = ? AND n = ? AND state = ?`,
			board, jobID, n, StateRunning); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE jobs SET board = ? WHERE id = ? AND state = ?`, board, jobID, StateRunning)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: board of attempt %d of job %s: %w", n, jobID, err)
	}
	return nil
}
