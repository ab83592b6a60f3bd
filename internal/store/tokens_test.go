package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// credentialKind is one kind of stored credential with its table and Store methods.
type credentialKind struct {
	kind   auth.Kind
	table  string
	query  string // the reading query, for the modern-ClickHouse check
	create func(*store.Store, context.Context, auth.Credential) error
	revoke func(*store.Store, context.Context, string, time.Time) (bool, error)
	list   func(*store.Store, context.Context) ([]auth.Credential, error)
}

var credentialKinds = []credentialKind{
	{auth.DisplayTokenKind, "display_tokens", store.DisplayTokensSQL,
		(*store.Store).CreateDisplayToken, (*store.Store).RevokeDisplayToken, (*store.Store).DisplayTokens},
	{auth.IngestKeyKind, "ingest_keys", store.IngestKeysSQL,
		(*store.Store).CreateIngestKey, (*store.Store).RevokeIngestKey, (*store.Store).IngestKeys},
}

func TestCredentials(t *testing.T) {
	s := storetest.Open(t)
	for _, k := range credentialKinds {
		t.Run(k.table, func(t *testing.T) { testCredentials(t, s, k) })
	}
}

func testCredentials(t *testing.T, s *store.Store, k credentialKind) {
	ctx := context.Background()
	created := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	a, secretA := k.kind.New("Wall 3", created)
	b, _ := k.kind.New("Lobby", created.Add(time.Minute))
	for _, c := range []auth.Credential{a, b} {
		if err := k.create(s, ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	revokedAt := created.Add(time.Hour)
	for i := 0; i < 2; i++ { // the second revocation changes nothing
		found, err := k.revoke(s, ctx, a.ID, revokedAt.Add(time.Duration(i)*time.Hour))
		if err != nil || !found {
			t.Fatalf("revoke %s: found %v, %v", a.ID, found, err)
		}
	}
	if found, err := k.revoke(s, ctx, "00000000deadbeef", revokedAt); err != nil || found {
		t.Fatalf("revoke unknown id: found %v, %v; want not found", found, err)
	}

	got, err := k.list(s, ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []auth.Credential{a, b}
	want[0].RevokedAt = revokedAt
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if got[0].SecretSHA256 != sha256.Sum256([]byte(secretA[len(k.kind.Prefix)+len(a.ID)+1:])) {
		t.Errorf("stored hash is not the SHA-256 of the secret")
	}

	// Nothing in the table is the secret itself.
	var leaked uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM "+k.table+" WHERE position(concat(id, name, secret_sha256), ?) > 0",
		secretA[len(secretA)-20:]).Scan(&leaked); err != nil || leaked != 0 {
		t.Errorf("rows containing the secret: %d, %v", leaked, err)
	}
}

// The credential tables and their query on modern ClickHouse: the migrations themselves are
// checked by TestMigrationsOnModernClickHouse; this checks the reading queries' answers.
func TestCredentialsOnModernClickHouse(t *testing.T) {
	stmts := MigrationStatements(t)
	var queries []string
	for _, k := range credentialKinds {
		r := strings.NewReplacer("TABLE", k.table)
		stmts = append(stmts,
			r.Replace(`INSERT INTO TABLE (id, name, secret_sha256, created_at, revoked, changed_at)
			 SELECT 'aaaaaaaaaaaaaaaa', 'Wall 3', repeat('0', 64), toDateTime('2026-03-02 10:00:00'), 0, toDateTime('2026-03-02 10:00:00')`),
			r.Replace(`INSERT INTO TABLE (id, name, secret_sha256, created_at, revoked, changed_at)
			 SELECT 'bbbbbbbbbbbbbbbb', 'Lobby', repeat('1', 64), toDateTime('2026-03-02 10:01:00'), 0, toDateTime('2026-03-02 10:01:00')`),
			r.Replace(`INSERT INTO TABLE (id, name, secret_sha256, created_at, revoked, changed_at)
			 SELECT id, name, secret_sha256, created_at, 1, toDateTime('2026-03-02 11:00:00')
			 FROM TABLE WHERE id = 'aaaaaaaaaaaaaaaa' AND revoked = 0 LIMIT 1`),
		)
		queries = append(queries, k.query)
	}
	rep := RunOnModernClickHouse(t, stmts, queries)
	for i, k := range credentialKinds {
		q := rep.Queries[i]
		if !q.OK {
			continue // reported by RunOnModernClickHouse
		}
		if len(q.Rows) != 2 {
			t.Errorf("%s: got %d rows, want 2: %v", k.table, len(q.Rows), q.Rows)
			continue
		}
		var cols []string
		for _, m := range q.Meta {
			cols = append(cols, m.Name)
		}
		want := [][]string{{`"aaaaaaaaaaaaaaaa"`, `"Wall 3"`, `1`}, {`"bbbbbbbbbbbbbbbb"`, `"Lobby"`, `0`}}
		for j, w := range want {
			r := q.Rows[j]
			got := []string{string(r[cols[0]]), string(r[cols[1]]), string(r[cols[4]])}
			if !equalJSON(got, w) {
				t.Errorf("%s row %d: id, name, revoked = %v, want %v (row %v)", k.table, j, got, w, r)
			}
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
