package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

func TestDisplayTokens(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	created := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	a, secretA := auth.NewDisplayToken("Wall 3", created)
	b, _ := auth.NewDisplayToken("Lobby", created.Add(time.Minute))
	for _, tok := range []auth.DisplayToken{a, b} {
		if err := s.CreateDisplayToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	revokedAt := created.Add(time.Hour)
	for i := 0; i < 2; i++ { // the second revocation changes nothing
		found, err := s.RevokeDisplayToken(ctx, a.ID, revokedAt.Add(time.Duration(i)*time.Hour))
		if err != nil || !found {
			t.Fatalf("revoke %s: found %v, %v", a.ID, found, err)
		}
	}
	if found, err := s.RevokeDisplayToken(ctx, "00000000deadbeef", revokedAt); err != nil || found {
		t.Fatalf("revoke unknown id: found %v, %v; want not found", found, err)
	}

	got, err := s.DisplayTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []auth.DisplayToken{a, b}
	want[0].RevokedAt = revokedAt
	if len(got) != len(want) {
		t.Fatalf("got %d tokens, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("token %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if got[0].SecretSHA256 != sha256.Sum256([]byte(secretA[len(auth.DisplayTokenPrefix)+len(a.ID)+1:])) {
		t.Errorf("stored hash is not the SHA-256 of the secret")
	}

	// Nothing in the table is the secret itself.
	var leaked uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM display_tokens WHERE position(concat(id, name, secret_sha256), ?) > 0",
		secretA[len(secretA)-20:]).Scan(&leaked); err != nil || leaked != 0 {
		t.Errorf("rows containing the secret: %d, %v", leaked, err)
	}
}

// The token table and its query on modern ClickHouse: the migration itself is checked by
// TestMigrationsOnModernClickHouse; this checks the reading query's answer.
func TestDisplayTokensOnModernClickHouse(t *testing.T) {
	stmts := append(MigrationStatements(t),
		`INSERT INTO display_tokens (id, name, secret_sha256, created_at, revoked, changed_at)
		 SELECT 'aaaaaaaaaaaaaaaa', 'Wall 3', repeat('0', 64), toDateTime('2026-03-02 10:00:00'), 0, toDateTime('2026-03-02 10:00:00')`,
		`INSERT INTO display_tokens (id, name, secret_sha256, created_at, revoked, changed_at)
		 SELECT 'bbbbbbbbbbbbbbbb', 'Lobby', repeat('1', 64), toDateTime('2026-03-02 10:01:00'), 0, toDateTime('2026-03-02 10:01:00')`,
		`INSERT INTO display_tokens (id, name, secret_sha256, created_at, revoked, changed_at)
		 SELECT id, name, secret_sha256, created_at, 1, toDateTime('2026-03-02 11:00:00')
		 FROM display_tokens WHERE id = 'aaaaaaaaaaaaaaaa' AND revoked = 0 LIMIT 1`,
	)
	rep := RunOnModernClickHouse(t, stmts, []string{store.DisplayTokensSQL})
	if len(rep.Queries) != 1 || !rep.Queries[0].OK {
		return // reported by RunOnModernClickHouse
	}
	rows := rep.Queries[0].Rows
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2: %v", len(rows), rows)
	}
	var cols []string
	for _, m := range rep.Queries[0].Meta {
		cols = append(cols, m.Name)
	}
	want := [][]string{{`"aaaaaaaaaaaaaaaa"`, `"Wall 3"`, `1`}, {`"bbbbbbbbbbbbbbbb"`, `"Lobby"`, `0`}}
	for i, w := range want {
		r := rows[i]
		got := []string{string(r[cols[0]]), string(r[cols[1]]), string(r[cols[4]])}
		if !equalJSON(got, w) {
			t.Errorf("row %d: id, name, revoked = %v, want %v (row %v)", i, got, w, r)
		}
	}
}

func equalJSON(a, b []string) bool {
	for i := range a {
		var x, y any
		if json.Unmarshal([]byte(a[i]), &x) != nil || json.Unmarshal([]byte(b[i]), &y) != nil {
			return false
		}
		// ClickHouse's JSON writes UInt8 as a number; compare by value.
		xb, _ := json.Marshal(x)
		yb, _ := json.Marshal(y)
		if string(xb) != string(yb) {
			return false
		}
	}
	return len(a) == len(b)
}
