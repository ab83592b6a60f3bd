package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// A ClickHouse cluster (Options.Cluster, a cluster of the servers' remote_servers) keeps every
// table twice over:
//
//   - X_local on every server, a Replicated*MergeTree of the same engine, replicated between the
//     replicas of a shard through the keeper (ZooKeeper or ClickHouse Keeper), at
//     /clickhouse/tables/{shard}/<database>/X_local: the {shard} and {replica} macros come from
//     each server's configuration;
//   - X, a Distributed table over the X_local of every shard, under the name the queries use,
//     so that the same queries answer from one server or from the cluster. Rows are sharded by
//     cityHash64(event_id) in the tables of events, so that every copy of an event (the
//     duplicate check, the audit) is on one shard; by rand() elsewhere.
//
// Materialized views are created on every server and read the server's own events_local, so
// that each shard rolls up its own events into its own rollups' X_local. Every statement is
// ON CLUSTER (run by every server through the keeper's DDL queue) and IF NOT EXISTS, so the
// migrations may run from every node at once; schema_migrations is one replicated table shared
// by all servers.

// clusterEngines are the engines a migration may use, each with its replicated form.
var clusterEngines = map[string]bool{
	"MergeTree": true, "AggregatingMergeTree": true, "SummingMergeTree": true, "ReplacingMergeTree": true,
}

var (
	reCreateTable = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS (\w+)\s*(\(.*\))\s*ENGINE\s*=\s*(\w+)(.*)$`)
	reCreateAs    = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS (\w+)\s+AS\s+(\w+)\s*$`)
	reCreateView  = regexp.MustCompile(`(?s)^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\s+TO\s+(\w+)\s+AS\s+(.*)$`)
	reFromTable   = regexp.MustCompile(`\bFROM\s+(\w+)\b`)
	reInsert      = regexp.MustCompile(`(?s)^INSERT INTO \w+`)
	reEventID     = regexp.MustCompile(`\bevent_id\s+String\b`)
)

// clusterSchema turns the migrations' statements, written for one server, into their forms for
// a cluster: it remembers each table's engine and sharding key for the statements after it.
type clusterSchema struct {
	cluster, database string
	tables            map[string]clusterTable
}

type clusterTable struct {
	engine string // the engine's name and what follows it (PARTITION BY, ORDER BY, SETTINGS)
	key    string // the Distributed table's sharding key
}

func newClusterSchema(cluster, database string) *clusterSchema {
	return &clusterSchema{cluster: cluster, database: database, tables: map[string]clusterTable{}}
}

// quoteString quotes a ClickHouse string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

// localSuffix ends the name of a table's local table on a cluster.
const localSuffix = "_local"

// LocalTable is the name of the table that holds a cluster's rows of table on each server.
func LocalTable(table string) string { return table + localSuffix }

// ddlTable is how a statement that changes table's rows in place (ALTER … DELETE, DROP
// PARTITION, TRUNCATE) names it: on a cluster, its local table on every server (a Distributed
// table holds no rows), through the keeper's DDL queue. ClickHouse runs such a statement on one
// replica per shard, and replication brings it to the others.
func (s *Store) ddlTable(table string) string {
	if s.opts.Cluster == "" {
		return table
	}
	return quoteIdent(s.database) + "." + quoteIdent(LocalTable(table)) + " ON CLUSTER " + quoteIdent(s.opts.Cluster)
}

// partsTable is the name of table's parts and mutations in system.parts and system.mutations:
// on a cluster, those of its local table on the server this node is connected to.
func (s *Store) partsTable(table string) string {
	if s.opts.Cluster == "" {
		return table
	}
	return LocalTable(table)
}

// forms returns the statements that make stmt's effect on the cluster.
func (c *clusterSchema) forms(stmt string) ([]string, error) {
	db, on := quoteIdent(c.database), " ON CLUSTER "+quoteIdent(c.cluster)
	switch {
	case reCreateTable.MatchString(stmt):
		m := reCreateTable.FindStringSubmatch(stmt)
		name, columns, engine, rest := m[1], m[2], m[3], m[4]
		if !clusterEngines[engine] {
			return nil, fmt.Errorf("table %s: engine %s has no replicated form", name, engine)
		}
		key := "rand()"
		if reEventID.MatchString(columns) {
			key = "cityHash64(event_id)"
		}
		c.tables[name] = clusterTable{engine: engine + rest, key: key}
		return c.tableForms(name, columns, engine+rest, key), nil
	case reCreateAs.MatchString(stmt):
		m := reCreateAs.FindStringSubmatch(stmt)
		name, source := m[1], m[2]
		t, ok := c.tables[source]
		if !ok {
			return nil, fmt.Errorf("table %s is made as %s, which no earlier migration creates", name, source)
		}
		c.tables[name] = t
		return c.tableForms(name, "AS "+db+"."+quoteIdent(LocalTable(source)), t.engine, t.key), nil
	case reCreateView.MatchString(stmt):
		m := reCreateView.FindStringSubmatch(stmt)
		view, target, query := m[1], m[2], m[3]
		if _, ok := c.tables[target]; !ok {
			return nil, fmt.Errorf("view %s writes to %s, which no earlier migration creates", view, target)
		}
		var unknown error
		query = reFromTable.ReplaceAllStringFunc(query, func(from string) string {
			table := reFromTable.FindStringSubmatch(from)[1]
			if _, ok := c.tables[table]; !ok {
				unknown = fmt.Errorf("view %s reads %s, which no earlier migration creates", view, table)
				return from
			}
			return "FROM " + db + "." + quoteIdent(LocalTable(table))
		})
		if unknown != nil {
			return nil, unknown
		}
		return []string{"CREATE MATERIALIZED VIEW IF NOT EXISTS " + db + "." + quoteIdent(view) + on +
			" TO " + db + "." + quoteIdent(LocalTable(target)) + " AS " + query}, nil
	case reInsert.MatchString(stmt):
		// Through the Distributed tables, which shard the rows like any insert.
		return []string{stmt}, nil
	}
	first, _, _ := strings.Cut(stmt, "\n")
	return nil, fmt.Errorf("no cluster form for the statement %q: write it as CREATE TABLE IF NOT EXISTS … ENGINE = …, CREATE TABLE IF NOT EXISTS … AS …, CREATE MATERIALIZED VIEW IF NOT EXISTS … TO … AS …, or INSERT INTO …, or teach internal/store/cluster.go its form", first)
}

// tableForms creates a table's replicated X_local (its columns or AS clause given) and its
// Distributed X.
func (c *clusterSchema) tableForms(name, columnsOrAs, engine, key string) []string {
	db, on, local := quoteIdent(c.database), " ON CLUSTER "+quoteIdent(c.cluster), LocalTable(name)
	engineName, rest := engine, ""
	if i := strings.IndexAny(engine, " \n\t("); i >= 0 {
		engineName, rest = engine[:i], engine[i:]
	}
	args := quoteString("/clickhouse/tables/{shard}/"+c.database+"/"+local) + ", '{replica}'"
	// An engine's own parameters (SummingMergeTree(columns)) follow the replication's.
	if trimmed := strings.TrimLeft(rest, " \n\t"); strings.HasPrefix(trimmed, "(") {
		if end := strings.Index(trimmed, ")"); end > 0 {
			if own := strings.TrimSpace(trimmed[1:end]); own != "" {
				args += ", " + own
			}
			rest = trimmed[end+1:]
		}
	}
	return []string{
		"CREATE TABLE IF NOT EXISTS " + db + "." + quoteIdent(local) + on + " " + columnsOrAs +
			" ENGINE = Replicated" + engineName + "(" + args + ")" + rest,
		"CREATE TABLE IF NOT EXISTS " + db + "." + quoteIdent(name) + on + " AS " + db + "." + quoteIdent(local) +
			" ENGINE = Distributed(" + quoteString(c.cluster) + ", " + quoteString(c.database) + ", " + quoteString(local) + ", " + key + ")",
	}
}

// ClusterMigrations are the migrations in their forms for cluster (see clusterSchema), for
// tests and for `truthboard migrate` to show.
func ClusterMigrations(cluster, database string) ([]Migration, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	c := newClusterSchema(cluster, database)
	for i, m := range ms {
		var out []string
		for j, stmt := range m.Statements {
			forms, err := c.forms(stmt)
			if err != nil {
				return nil, fmt.Errorf("migration %04d_%s, statement %d: %w", m.Version, m.Name, j+1, err)
			}
			out = append(out, forms...)
		}
		ms[i].Statements = out
	}
	return ms, nil
}

// createClusterBase creates the database on every server of the cluster, and the shared
// schema_migrations, when they are missing: a DDL ON CLUSTER waits for every server, so it is
// not sent when there is nothing to do (a node restarting while a replica is down).
func createClusterBase(ctx context.Context, conn driver.Conn, cluster, database string) error {
	exists := func(query string, args ...any) (bool, error) {
		var n uint64
		err := conn.QueryRow(ctx, query, args...).Scan(&n)
		return n > 0, err
	}
	on := " ON CLUSTER " + quoteIdent(cluster)
	ok, err := exists("SELECT count() FROM system.clusters WHERE cluster = ?", cluster)
	if err != nil {
		return fmt.Errorf("look for cluster %s: %w", cluster, err)
	}
	if !ok {
		return fmt.Errorf("ClickHouse has no cluster %q in its remote_servers: set -clickhouse-cluster (TRUTHBOARD_CLICKHOUSE_CLUSTER) to one of SELECT cluster FROM system.clusters, or add it (deploy/cluster/ has an example)", cluster)
	}
	if ok, err = exists("SELECT count() FROM system.databases WHERE name = ?", database); err != nil {
		return err
	} else if !ok {
		if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(database)+on); err != nil {
			return fmt.Errorf("create database %s on cluster %s: %w", database, cluster, err)
		}
	}
	if ok, err = exists("SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_migrations'", database); err != nil {
		return err
	} else if !ok {
		// One replica set for the whole cluster ("all", not {shard}): every server sees every
		// migration's record.
		err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+quoteIdent(database)+".schema_migrations"+on+
			" (version UInt32, name String, applied_at DateTime DEFAULT now())"+
			" ENGINE = ReplicatedMergeTree("+quoteString("/clickhouse/tables/all/"+database+"/schema_migrations")+", '{replica}') ORDER BY version")
		if err != nil {
			return fmt.Errorf("create schema_migrations on cluster %s: %w", cluster, err)
		}
	}
	return nil
}
