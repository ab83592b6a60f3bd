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

// Options names a new, unique test database on the test server.
func Options(t testing.TB) store.Options {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return store.Options{
		Addr:             Addr(),
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
