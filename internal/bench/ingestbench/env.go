package ingestbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/store"
)

// benchEnv is what every suite shares: the ClickHouse server, the command line and the log.
type benchEnv struct {
	log     *slog.Logger
	command string
	ch      benchkit.ClickHouse
}

// benchDB is a fresh, migrated database of the benchmark's own.
type benchDB struct {
	*store.Store
	name string
	ch   benchkit.ClickHouse
}

// openBenchDB creates and migrates truthboard_bench_<random>. Drop it with drop.
func (e *benchEnv) openBenchDB(ctx context.Context) (*benchDB, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "truthboard_bench_" + hex.EncodeToString(b[:])
	s, err := store.Open(ctx, e.ch.Store(name))
	if err != nil {
		return nil, fmt.Errorf("%w (start a local server with: eval \"$(scripts/clickhouse.sh env)\")", err)
	}
	db := &benchDB{Store: s, name: name, ch: e.ch}
	if _, err := s.Migrate(ctx); err != nil {
		db.drop()
		return nil, fmt.Errorf("migrate %s: %w", name, err)
	}
	return db, nil
}

// drop removes the database; it runs at the end whatever happened, so it ignores ctx.
func (db *benchDB) drop() {
	_ = db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_ = db.ch.DropDatabase(ctx, db.name)
}

// waitRows waits until the raw table holds want rows: a 202 means durable in the server's
// spool, and its drainer inserts soon after. It returns the rows last counted.
func (db *benchDB) waitRows(ctx context.Context, want uint64, within time.Duration) (uint64, error) {
	deadline := time.Now().Add(within)
	for {
		n, err := db.CountEvents(ctx)
		if err != nil || n >= want || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reset empties every table of the database but the migration record, and waits until
// ClickHouse runs no merge in it, so that each phase starts from the same empty schema with the
// same materialized views. TRUNCATE TABLE works on ClickHouse 18.16 and leaves the views
// firing (checked by hand on 18.16.1).
func (db *benchDB) reset(ctx context.Context) error {
	rows, err := db.Conn().Query(ctx, `SELECT name FROM system.tables
		WHERE database = ? AND engine NOT IN ('MaterializedView', 'View') AND name != 'schema_migrations'`, db.name)
	if err != nil {
		return fmt.Errorf("list tables of %s: %w", db.name, err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		if err := db.Conn().Exec(ctx, "TRUNCATE TABLE "+db.name+"."+t); err != nil {
			return fmt.Errorf("truncate %s: %w", t, err)
		}
	}
	return db.waitMerges(ctx, 60*time.Second)
}

// queryCount is the number of queries the ClickHouse server has started since it started
// (system.events Query), or 0 when it cannot be read.
func (db *benchDB) queryCount(ctx context.Context) int64 {
	var n uint64
	if err := db.Conn().QueryRow(ctx, "SELECT value FROM system.events WHERE event = 'Query'").Scan(&n); err != nil {
		return 0
	}
	return int64(n)
}

// waitMerges waits until no merge runs in the database, or the timeout.
func (db *benchDB) waitMerges(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var n uint64
		if err := db.Conn().QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = ?", db.name).Scan(&n); err != nil {
			return fmt.Errorf("count merges: %w", err)
		}
		if n == 0 || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
