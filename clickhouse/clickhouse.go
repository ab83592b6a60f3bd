// Package clickhouse embeds the ClickHouse schema: numbered migrations in migrations/, applied in
// order by internal/store and recorded in the schema_migrations table. Every statement must run on
// ClickHouse 18.16 and on modern ClickHouse (24.x and later); the test suite checks both.
package clickhouse

import "embed"

// Migrations holds migrations/NNNN_name.sql. A file may hold several statements separated by a
// semicolon at the end of a line.
//
//go:embed migrations/*.sql
var Migrations embed.FS
