package store

import (
	"context"
	"fmt"
)

// RevokedToken is a token id and name with when it was revoked (unix ms).
type RevokedToken struct {
	ID, Name  string
	RevokedMS int64
}

// RevokedAfter lists the tokens revoked after revokedMS (unix ms), oldest
// revocation first. RevokedAfter(ctx, 0) lists every revoked token.
func (db *DB) RevokedAfter(ctx context.Context, revokedMS int64) ([]RevokedToken, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT id, name, revoked_ms FROM tokens WHERE revoked_ms > ? ORDER BY revoked_ms", revokedMS)
	if err != nil {
		return nil, fmt.Errorf("store: revoked tokens: %w", err)
	}
	defer rows.Close()
	var out []RevokedToken
	for rows.Next() {
		var t RevokedToken
		if err := rows.Scan(&t.ID, &t.Name, &t.RevokedMS); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
