package store

import (
	"context"
	"fmt"
	"time"

	"github.com/truthboard/truthboard/internal/account"
)

// Accounts are an append-only log (clickhouse/migrations/0010_accounts.sql): a row per
// creation or change with the whole account after it, and one with deleted = 1 at deletion.

// CreateAccount records a new account (its password's hash, never the password).
func (s *Store) CreateAccount(ctx context.Context, a account.Account) error {
	return s.writeAccount(ctx, a, "create")
}

// UpdateAccount records a change of an account's role or password hash.
func (s *Store) UpdateAccount(ctx context.Context, a account.Account) error {
	return s.writeAccount(ctx, a, "update")
}

func (s *Store) writeAccount(ctx context.Context, a account.Account, what string) (err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return err
	}
	deleted := 0
	if a.Deleted() {
		deleted = 1
	}
	changed := a.ChangedAt
	if a.Deleted() {
		changed = a.DeletedAt
	}
	// INSERT … VALUES through Exec waits forever on ClickHouse 18.16; INSERT … SELECT does not.
	err = conn.Exec(ctx, `INSERT INTO accounts (id, username, role, password_hash, created_at, deleted, changed_at, version)
		SELECT ?, ?, ?, ?, toDateTime(?), toUInt8(?), toDateTime(?), toUInt64(?)`,
		a.ID, a.Username, string(a.Role), a.PasswordHash, a.CreatedAt.Unix(), deleted, changed.Unix(), uint64(time.Now().UnixNano()))
	if err != nil {
		return fmt.Errorf("%s account %s: %w", what, a.ID, err)
	}
	return nil
}

// DeleteAccount marks the account id deleted at at. found is false when no such account
// exists; deleting a deleted account again changes nothing.
func (s *Store) DeleteAccount(ctx context.Context, id string, at time.Time) (found bool, err error) {
	all, err := s.accounts(ctx, id)
	if err != nil {
		return false, err
	}
	if len(all) == 0 {
		return false, nil
	}
	a := all[0]
	if a.Deleted() {
		return true, nil
	}
	a.DeletedAt = at.UTC()
	return true, s.writeAccount(ctx, a, "delete")
}

// Accounts lists every account, deleted ones too, oldest first.
func (s *Store) Accounts(ctx context.Context) ([]account.Account, error) {
	return s.accounts(ctx, "")
}

func (s *Store) accounts(ctx context.Context, id string) (_ []account.Account, err error) {
	defer markUnavailable(&err)
	q := `SELECT id, argMax(username, version), argMax(role, version), argMax(password_hash, version),
		min(created_at), toUInt32(argMax(changed_at, version)), max(deleted)
	FROM accounts`
	var args []any
	if id != "" {
		q += " WHERE id = ?"
		args = append(args, id)
	}
	q += " GROUP BY id ORDER BY min(created_at), id"
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read accounts: %w", err)
	}
	defer rows.Close()
	var out []account.Account
	for rows.Next() {
		var (
			a       account.Account
			role    string
			changed uint32
			deleted uint8
		)
		if err := rows.Scan(&a.ID, &a.Username, &role, &a.PasswordHash, &a.CreatedAt, &changed, &deleted); err != nil {
			return nil, fmt.Errorf("read accounts: %w", err)
		}
		a.Role = account.Role(role)
		a.CreatedAt = a.CreatedAt.UTC()
		a.ChangedAt = time.Unix(int64(changed), 0).UTC()
		if deleted == 1 {
			a.DeletedAt = a.ChangedAt
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read accounts: %w", err)
	}
	return out, nil
}
