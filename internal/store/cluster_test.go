package store_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/truthboard/truthboard/internal/store"
)

// Every migration has a form for a cluster: each table a replicated local table and a
// Distributed one under its own name, each view reading and writing local tables, every DDL
// statement on the cluster.
func TestEveryMigrationHasAClusterForm(t *testing.T) {
	single, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := store.ClusterMigrations("tb_cluster", "tb")
	if err != nil {
		t.Fatal(err)
	}
	if len(cluster) != len(single) {
		t.Fatalf("%d migrations in cluster form, %d for one server", len(cluster), len(single))
	}
	createTable := regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS (\w+)\b`)
	replicated := regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS tb\.(\w+)_local ON CLUSTER tb_cluster .* ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/\{shard\}/tb/(\w+)_local', '\{replica\}'`)
	distributed := regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS tb\.(\w+) ON CLUSTER tb_cluster AS tb\.(\w+)_local ENGINE = Distributed\('tb_cluster', 'tb', '(\w+)_local', (cityHash64\(event_id\)|rand\(\))\)$`)
	view := regexp.MustCompile(`^CREATE MATERIALIZED VIEW IF NOT EXISTS tb\.\w+ ON CLUSTER tb_cluster TO tb\.\w+_local AS `)
	for i, m := range single {
		got := strings.ReplaceAll(strings.Join(cluster[i].Statements, "\n;\n"), "`", "")
		for _, stmt := range m.Statements {
			table := createTable.FindStringSubmatch(stmt)
			if table == nil {
				continue
			}
			name := table[1]
			if !strings.Contains(got, "tb."+name+"_local ON CLUSTER") || !strings.Contains(got, "tb."+name+" ON CLUSTER tb_cluster AS tb."+name+"_local ENGINE = Distributed") {
				t.Errorf("migration %04d_%s: table %s has no replicated %s_local and Distributed %s in cluster form:\n%s", m.Version, m.Name, name, name, name, got)
			}
		}
		for _, stmt := range cluster[i].Statements {
			oneLine := strings.ReplaceAll(strings.Join(strings.Fields(stmt), " "), "`", "")
			switch {
			case strings.HasPrefix(stmt, "CREATE TABLE") && strings.Contains(stmt, "ENGINE = Distributed"):
				d := distributed.FindStringSubmatch(oneLine)
				if d == nil || d[1] != d[2] || d[2] != d[3] {
					t.Errorf("migration %04d_%s: a Distributed table not over its own local table: %s", m.Version, m.Name, oneLine)
				} else if hasEventID := strings.HasPrefix(d[1], "event"); hasEventID != (d[4] == "cityHash64(event_id)") {
					t.Errorf("migration %04d_%s: %s is sharded by %s: the tables of events must keep an event's copies on one shard (cityHash64(event_id)), the others spread (rand())", m.Version, m.Name, d[1], d[4])
				}
			case strings.HasPrefix(stmt, "CREATE TABLE"):
				r := replicated.FindStringSubmatch(oneLine)
				if r == nil || r[1] != r[2] {
					t.Errorf("migration %04d_%s: a local table not replicated at its own path: %s", m.Version, m.Name, oneLine)
				}
			case strings.HasPrefix(stmt, "CREATE MATERIALIZED VIEW"):
				if !view.MatchString(oneLine) || !strings.Contains(oneLine, "FROM tb.events_local") {
					t.Errorf("migration %04d_%s: a view that does not read and write the server's own local tables: %s", m.Version, m.Name, oneLine)
				}
			case strings.HasPrefix(stmt, "INSERT INTO"):
			default:
				t.Errorf("migration %04d_%s: a statement neither a table, a view nor an insert: %s", m.Version, m.Name, oneLine)
			}
		}
	}
}
