package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
)

// Display tokens and stored ingest keys are both auth.Credential records, each kind in a table
// of its own with the same columns (clickhouse/migrations/0003_display_tokens.sql and
// 0005_ingest_keys.sql): an append-only log of creations and revocations.

// CreateDisplayToken records a new display token (its secret's hash, never the secret).
func (s *Store) CreateDisplayToken(ctx context.Context, t auth.DisplayToken) error {
	return s.createCredential(ctx, displayTokensTable, t)
}

// RevokeDisplayToken marks the token id revoked at at. found is false when no such token
// exists; revoking a revoked token again changes nothing.
func (s *Store) RevokeDisplayToken(ctx context.Context, id string, at time.Time) (found bool, err error) {
	return s.revokeCredential(ctx, displayTokensTable, id, at)
}

// DisplayTokens lists every display token, revoked ones too, oldest first.
func (s *Store) DisplayTokens(ctx context.Context) ([]auth.DisplayToken, error) {
	return s.credentials(ctx, displayTokensTable, "")
}

// credentialTable is a table of credentials, and the noun of its rows in errors.
type credentialTable struct{ name, noun string }

var (
	displayTokensTable = credentialTable{"display_tokens", "display token"}
	ingestKeysTable    = credentialTable{"ingest_keys", "ingest key"}
)

func (s *Store) createCredential(ctx context.Context, table credentialTable, c auth.Credential) (err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return err
	}
	// INSERT … VALUES through Exec waits forever on ClickHouse 18.16; INSERT … SELECT does not.
	err = conn.Exec(ctx, `INSERT INTO `+table.name+` (id, name, secret_sha256, created_at, revoked, changed_at)
		SELECT ?, ?, ?, toDateTime(?), 0, toDateTime(?)`,
		c.ID, c.Name, hex.EncodeToString(c.SecretSHA256[:]), c.CreatedAt.Unix(), c.CreatedAt.Unix())
	if err != nil {
		return fmt.Errorf("create %s %s: %w", table.noun, c.ID, err)
	}
	return nil
}

func (s *Store) revokeCredential(ctx context.Context, table credentialTable, id string, at time.Time) (found bool, err error) {
	defer markUnavailable(&err)
	cs, err := s.credentials(ctx, table, id)
	if err != nil {
		return false, err
	}
	if len(cs) == 0 {
		return false, nil
	}
	if cs[0].Revoked() {
		return true, nil
	}
	conn, err := s.connection()
	if err != nil {
		return true, err
	}
	err = conn.Exec(ctx, `INSERT INTO `+table.name+` (id, name, secret_sha256, created_at, revoked, changed_at)
		SELECT id, name, secret_sha256, created_at, 1, toDateTime(?)
		FROM `+table.name+` WHERE id = ? AND revoked = 0 LIMIT 1`, at.Unix(), id)
	if err != nil {
		return true, fmt.Errorf("revoke %s %s: %w", table.noun, id, err)
	}
	return true, nil
}

// credentialsSelect, a table name, then credentialsGroup read the state of each credential
// from its log; a WHERE may go before credentialsGroup.
const (
	credentialsSelect = `SELECT id, any(name), any(secret_sha256), min(created_at), max(revoked),
		toUInt32(maxIf(changed_at, revoked = 1))
	FROM `
	credentialsGroup = ` GROUP BY id ORDER BY min(created_at), id`
	// displayTokensSelect + displayTokensGroup is the query of DisplayTokens (export_test.go).
	displayTokensSelect = credentialsSelect + "display_tokens"
	displayTokensGroup  = credentialsGroup
)

func (s *Store) credentials(ctx context.Context, table credentialTable, id string) (_ []auth.Credential, err error) {
	defer markUnavailable(&err)
	q := credentialsSelect + table.name
	var args []any
	if id != "" {
		q += " WHERE id = ?"
		args = append(args, id)
	}
	q += credentialsGroup
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read %ss: %w", table.noun, err)
	}
	defer rows.Close()
	var out []auth.Credential
	for rows.Next() {
		var (
			c         auth.Credential
			sum       string
			revoked   uint8
			revokedAt uint32
		)
		if err := rows.Scan(&c.ID, &c.Name, &sum, &c.CreatedAt, &revoked, &revokedAt); err != nil {
			return nil, fmt.Errorf("read %ss: %w", table.noun, err)
		}
		b, err := hex.DecodeString(sum)
		if err != nil || len(b) != len(c.SecretSHA256) {
			return nil, fmt.Errorf("read %ss: %s %s has a malformed secret_sha256 in table %s", table.noun, table.noun, c.ID, table.name)
		}
		copy(c.SecretSHA256[:], b)
		c.CreatedAt = c.CreatedAt.UTC()
		if revoked == 1 {
			// max(revoked) = 1 implies a revoked row, so revokedAt is its time (never 0 in practice).
			c.RevokedAt = time.Unix(int64(max(revokedAt, 1)), 0).UTC()
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %ss: %w", table.noun, err)
	}
	return out, nil
}
