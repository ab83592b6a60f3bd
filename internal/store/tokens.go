package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
)

// CreateDisplayToken records a new display token (its secret's hash, never the secret).
func (s *Store) CreateDisplayToken(ctx context.Context, t auth.DisplayToken) error {
	// INSERT … VALUES through Exec waits forever on ClickHouse 18.16; INSERT … SELECT does not.
	err := s.conn.Exec(ctx, `INSERT INTO display_tokens (id, name, secret_sha256, created_at, revoked, changed_at)
		SELECT ?, ?, ?, toDateTime(?), 0, toDateTime(?)`,
		t.ID, t.Name, hex.EncodeToString(t.SecretSHA256[:]), t.CreatedAt.Unix(), t.CreatedAt.Unix())
	if err != nil {
		return fmt.Errorf("create display token %s: %w", t.ID, err)
	}
	return nil
}

// RevokeDisplayToken marks the token id revoked at at. found is false when no such token
// exists; revoking a revoked token again changes nothing.
func (s *Store) RevokeDisplayToken(ctx context.Context, id string, at time.Time) (found bool, err error) {
	tokens, err := s.displayTokens(ctx, id)
	if err != nil {
		return false, err
	}
	if len(tokens) == 0 {
		return false, nil
	}
	if tokens[0].Revoked() {
		return true, nil
	}
	err = s.conn.Exec(ctx, `INSERT INTO display_tokens (id, name, secret_sha256, created_at, revoked, changed_at)
		SELECT id, name, secret_sha256, created_at, 1, toDateTime(?)
		FROM display_tokens WHERE id = ? AND revoked = 0 LIMIT 1`, at.Unix(), id)
	if err != nil {
		return true, fmt.Errorf("revoke display token %s: %w", id, err)
	}
	return true, nil
}

// DisplayTokens lists every display token, revoked ones too, oldest first.
func (s *Store) DisplayTokens(ctx context.Context) ([]auth.DisplayToken, error) {
	return s.displayTokens(ctx, "")
}

// displayTokensSelect and displayTokensGroup read the state of each token from the log of
// display_tokens (see clickhouse/migrations/0003_display_tokens.sql); a WHERE may go between.
const (
	displayTokensSelect = `SELECT id, any(name), any(secret_sha256), min(created_at), max(revoked),
		toUInt32(maxIf(changed_at, revoked = 1))
	FROM display_tokens`
	displayTokensGroup = ` GROUP BY id ORDER BY min(created_at), id`
)

func (s *Store) displayTokens(ctx context.Context, id string) ([]auth.DisplayToken, error) {
	q := displayTokensSelect
	var args []any
	if id != "" {
		q += " WHERE id = ?"
		args = append(args, id)
	}
	q += displayTokensGroup
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read display tokens: %w", err)
	}
	defer rows.Close()
	var out []auth.DisplayToken
	for rows.Next() {
		var (
			t         auth.DisplayToken
			sum       string
			revoked   uint8
			revokedAt uint32
		)
		if err := rows.Scan(&t.ID, &t.Name, &sum, &t.CreatedAt, &revoked, &revokedAt); err != nil {
			return nil, fmt.Errorf("read display tokens: %w", err)
		}
		b, err := hex.DecodeString(sum)
		if err != nil || len(b) != len(t.SecretSHA256) {
			return nil, fmt.Errorf("read display tokens: token %s has a malformed secret_sha256", t.ID)
		}
		copy(t.SecretSHA256[:], b)
		t.CreatedAt = t.CreatedAt.UTC()
		if revoked == 1 {
			// max(revoked) = 1 implies a revoked row, so revokedAt is its time (never 0 in practice).
			t.RevokedAt = time.Unix(int64(max(revokedAt, 1)), 0).UTC()
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read display tokens: %w", err)
	}
	return out, nil
}
