// Package storetest gives tests a real ClickHouse database of their own: a fresh, migrated
// database per test, dropped when the test ends. The server is the one named by
// TRUTHBOARD_CLICKHOUSE_ADDR (scripts/test.sh starts a local one); there is no mock.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/store"
)

// Addr is the ClickHouse server the tests use.
func Addr() string {
	if a := os.Getenv("TRUTHBOARD_CLICKHOUSE_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:9000"
}

// Protocol is how the tests speak to that server: TRUTHBOARD_CLICKHOUSE_PROTOCOL, "native" when
// unset ("http" for the modern ClickHouse of clickhouse/compat/server.js).
func Protocol() string {
	if p := os.Getenv("TRUTHBOARD_CLICKHOUSE_PROTOCOL"); p != "" {
		return p
	}
	return store.ProtocolNative
}

// SkipOnChdb skips t when the test server is the modern ClickHouse of clickhouse/compat/server.js
// (scripts/test.sh sets TRUTHBOARD_TEST_CLICKHOUSE=chdb for that run): chdb runs one query at a
// time in one process, so a test that needs queries running side by side cannot run there. why
// says what the test needs; clickhouse/compat/README.md lists every such test.
func SkipOnChdb(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("TRUTHBOARD_TEST_CLICKHOUSE") == "chdb" {
		t.Skipf("not on chdb: %s (clickhouse/compat/README.md)", why)
	}
}

// Options names a new, unique test database on the test server.
func Options(t testing.TB) store.Options {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return store.Options{
		Addr:             Addr(),
		Protocol:         Protocol(),
		Database:         "truthboard_test_" + hex.EncodeToString(b[:]),
		User:             os.Getenv("TRUTHBOARD_CLICKHOUSE_USER"),
		Password:         os.Getenv("TRUTHBOARD_CLICKHOUSE_PASSWORD"),
		DialTimeout:      5 * time.Second,
		MaxExecutionTime: 60 * time.Second,
	}
}

// Open returns a store on a fresh, migrated database that is dropped when the test ends. It
// fails the test, never skips it, when no ClickHouse answers: run the tests with scripts/test.sh.
func Open(t testing.TB) *store.Store {
	t.Helper()
	o := Options(t)
	ctx := context.Background()
	s, err := store.Open(ctx, o)
	if err != nil {
		t.Fatalf("no ClickHouse for the test (run the tests with scripts/test.sh, which starts one): %v", err)
	}
	t.Cleanup(func() {
		_ = s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+o.Database)
		s.Close()
	})
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	return s
}
