package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store"
)

// TestAPIQueriesOnModernClickHouse runs the SQL behind /v1/metrics, /v1/consistency and the
// live feeds (every rollup table, grouping, comparison, trend and filter), the recovery query and
// the drill-down's latest negative moments on modern ClickHouse; the rest of the suite runs them
// on 18.16.
func TestAPIQueriesOnModernClickHouse(t *testing.T) {
	now := time.Date(2026, 3, 2, 11, 30, 0, 0, time.UTC) // the time of compat insert A's events
	var queries []string
	add := func(sql string, args []any) {
		quote := func(x any) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(x.(string)) + "'" }
		for _, a := range args { // bind as the driver does: a filter set as a quoted tuple, a key as a quoted string
			set, ok := a.(clickhouse.GroupSet)
			if !ok {
				sql = strings.Replace(sql, "?", quote(a), 1)
				continue
			}
			var vals []string
			for _, x := range set.Value {
				vals = append(vals, quote(x))
			}
			sql = strings.Replace(sql, "?", "("+strings.Join(vals, ", ")+")", 1)
		}
		queries = append(queries, sql)
	}
	cases := []struct {
		window  string
		by      []string
		compare string
		series  bool
		region  []string
		// touchpoint filters the query: with it, 24h and longer windows read touchpoint_1h.
		touchpoint []string
	}{
		{"5m", nil, "previous", false, nil, nil},                                           // overview_1s, KPIs
		{"15m", []string{"moment", "channel"}, "previous", false, nil, nil},                // overview_1s, grid
		{"1h", []string{"moment"}, "", true, nil, nil},                                     // overview_1m, trend
		{"1h", []string{"touchpoint"}, "", false, nil, nil},                                // detail_1m
		{"24h", []string{"channel"}, "previous", true, []string{"eu", "x'y"}, nil},         // detail_1h, filtered
		{"15m", []string{"moment"}, "last_week", true, nil, nil},                           // overview_1m, a gap before the window
		{"7d", []string{"moment", "channel"}, "previous", true, nil, nil},                  // overview_1h
		{"7d", []string{"touchpoint"}, "last_week", false, []string{"eu"}, nil},            // detail_1h, last week adjoins
		{"30d", nil, "last_week", true, nil, nil},                                          // overview_1h, last week overlaps
		{"30d", []string{"touchpoint"}, "last_week", true, []string{"eu"}, nil},            // detail_1h, overlaps
		{"30d", []string{"region"}, "previous", false, nil, []string{"checkout"}},          // touchpoint_1h, a touchpoint's regions
		{"7d", []string{"agent_team"}, "last_week", true, []string{"eu"}, []string{"x'y"}}, // touchpoint_1h, its teams
	}
	for _, c := range cases {
		v := map[string][]string{"window": {c.window}, "by": {strings.Join(c.by, ",")}}
		if c.compare != "" {
			v["compare"] = []string{c.compare}
		}
		if c.series {
			v["series"] = []string{"true"}
		}
		if c.region != nil {
			v["region"] = c.region
		}
		if c.touchpoint != nil {
			v["touchpoint"] = c.touchpoint
		}
		q, err := rollup.ParseQuery(v)
		if err != nil {
			t.Fatal(err)
		}
		p := q.Plan(now)
		add(store.RollupSQL(q, p))
		add(store.RollupOrderedSQL(q, p))
		if len(q.By) > 0 { // a page of RollupEach: keys from a bound to another
			from, to := make([]any, len(q.By)), make([]any, len(q.By))
			for i, d := range q.By {
				from[i], to[i] = map[string]string{"moment": "fmot", "channel": "app"}[d], "zzz"
				if d == "moment" || d == "channel" {
					to[i] = map[string]string{"moment": "service", "channel": "email"}[d]
				}
			}
			add(store.RollupPageSQL(q, p, from, to))
		}
		add(store.RecoverySQL(q, p, now))
		add(store.LatestNegativesSQL(q, p, 20))
	}
	// The drill-down's negative moments of one cell: the sort key's prefix narrows.
	cell := rollup.Query{Filters: rollup.Filters{Moment: []string{"service"}, Channel: []string{"voice", "chat"}, AgentTeam: []string{"team_a"}}}
	add(store.LatestNegativesSQL(cell, rollup.Plan{From: now.Add(-time.Hour), To: now}, 5))
	statements := append(MigrationStatements(t), compatInsertA("a", 500))
	rep := RunOnModernClickHouse(t, statements, queries)
	// compat insert A has one negative service event on voice or chat for team_a: number 49.
	if last := rep.Queries[len(rep.Queries)-1]; len(last.Rows) != 1 || string(last.Rows[0]["event_id"]) != `"compat-a-49"` {
		t.Errorf("latest negatives of one cell on modern ClickHouse: %d rows %v, want compat-a-49", len(last.Rows), last.Rows)
	}
}
