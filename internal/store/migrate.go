package store

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/truthboard/truthboard/clickhouse"
)

// Migration is one numbered schema change from clickhouse/migrations.
type Migration struct {
	Version    uint32
	Name       string
	Statements []string
}

// Migrations reads the embedded schema, in version order.
func Migrations() ([]Migration, error) {
	files, err := fs.Glob(clickhouse.Migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, f := range files {
		base := strings.TrimSuffix(path.Base(f), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_what.sql", f)
		}
		text, err := fs.ReadFile(clickhouse.Migrations, f)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: uint32(v), Name: name, Statements: SplitStatements(string(text))})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("two migrations numbered %d", ms[i].Version)
		}
	}
	return ms, nil
}

// SplitStatements splits a migration into statements: a statement ends with a semicolon at the end
// of a line; lines starting with -- are comments.
func SplitStatements(text string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		trimmed := strings.TrimRight(line, " \t\r")
		if strings.HasSuffix(trimmed, ";") {
			cur.WriteString(strings.TrimSuffix(trimmed, ";"))
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return out
}

// Migrate applies every migration not yet recorded in schema_migrations, in order. Statements
// are written to be idempotent (IF NOT EXISTS), so a crash between a statement and its record
// only repeats harmless work.
func (s *Store) Migrate(ctx context.Context) (applied []Migration, err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	applied, err = migrate(ctx, conn, s.opts.Cluster, s.database)
	s.cover.Store(readCoverage(ctx, conn))
	return applied, err
}

// migrate is Migrate on a connection of its own: Bootstrap applies the schema before the
// store's methods may use the connection.
// On a cluster, the migrations' cluster forms are applied (cluster.go); dial created the
// shared schema_migrations.
func migrate(ctx context.Context, conn driver.Conn, cluster, database string) (applied []Migration, err error) {
	var ms []Migration
	if cluster != "" {
		ms, err = ClusterMigrations(cluster, database)
	} else {
		ms, err = Migrations()
	}
	if err != nil {
		return nil, err
	}
	if cluster == "" {
		err = conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version UInt32, name String, applied_at DateTime DEFAULT now()
		) ENGINE = MergeTree ORDER BY version`)
		if err != nil {
			return nil, fmt.Errorf("create schema_migrations: %w", err)
		}
	}
	done := map[uint32]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, err
		}
		done[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		for i, stmt := range m.Statements {
			if err := conn.Exec(ctx, stmt); err != nil {
				return applied, fmt.Errorf("migration %04d_%s, statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := conn.Exec(ctx,
			// INSERT … VALUES through Exec waits forever on ClickHouse 18.16; INSERT … SELECT does not.
			"INSERT INTO schema_migrations (version, name) SELECT ?, ?", m.Version, m.Name); err != nil {
			return applied, fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
		}
		applied = append(applied, m)
	}
	return applied, nil
}
