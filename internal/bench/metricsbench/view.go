package metricsbench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store"
)

// step is one query of a tick and the building of its answer.
type step struct {
	name  string
	q     rollup.Query
	build func(q rollup.Query, p rollup.Plan, groups []rollup.Group)
}

// querySet is what one executive view asks of ClickHouse per tick.
type querySet []step

// The API set: the four requests a client of the HTTP API makes for one executive view.
const (
	qKPI         = iota // all KPIs with the previous period: /v1/metrics?window=W&compare=previous
	qGrid               // the moment × channel grid: /v1/metrics?window=W&by=moment,channel
	qTrend              // a trend per moment: /v1/metrics?window=W&by=moment&series=true
	qConsistency        // /v1/consistency?window=W (by moment, channel)
	nQueries
)

var queryNames = [nQueries]string{"KPIs+compare", "moment×channel grid", "trends by moment", "consistency"}

func build(q rollup.Query, p rollup.Plan, g []rollup.Group) {
	runtime.KeepAlive(rollup.Build(q, p, g, metric.Rules{}))
}

func buildConsistency(q rollup.Query, p rollup.Plan, g []rollup.Group) {
	runtime.KeepAlive(rollup.BuildConsistency(q, p, g, metric.Rules{}))
}

// apiView is the API set of one window, the queries rollup.ParseQuery builds from the URL
// parameters above.
func apiView(window time.Duration, name string) [nQueries]rollup.Query {
	base := rollup.Query{Window: window, WindowName: name}
	kpi, grid, trend, cons := base, base, base, base
	kpi.Compare = true
	grid.By = []string{"moment", "channel"}
	trend.By = []string{"moment"}
	// series=true: the step follows the window and the resolution of the table it reads.
	trend.Step = rollup.TrendStep(window, trend.Plan(time.Unix(0, 0)).Resolution)
	cons.By = []string{"moment", "channel"}
	return [nQueries]rollup.Query{kpi, grid, trend, cons}
}

func apiSet(view [nQueries]rollup.Query) querySet {
	return querySet{
		{queryNames[qKPI], view[qKPI], build},
		{queryNames[qGrid], view[qGrid], build},
		{queryNames[qTrend], view[qTrend], build},
		{queryNames[qConsistency], view[qConsistency], buildConsistency},
	}
}

// hubSet is what the live hub (internal/live, buildView) runs per tick for the executive view,
// its two queries live.ExecutiveQueries: the grid by moment and channel with the previous period
// and the wait histogram, whose groups give the KPIs (the total), the grid and the consistency;
// the trend per moment without the histogram. Its charts are left out.
func hubSet(view [nQueries]rollup.Query) querySet {
	grid, trend := live.ExecutiveQueries(rollup.Query{Window: view[qKPI].Window, WindowName: view[qKPI].WindowName}, time.Unix(0, 0))
	return querySet{
		{"hub: grid + compare", grid, func(q rollup.Query, p rollup.Plan, groups []rollup.Group) {
			build(q, p, groups)
			buildConsistency(q, p, groups)
		}},
		{"hub: trend, no histogram", trend, build},
	}
}

// tickTimes are the durations of one tick of a set: each query (SQL, transfer and scan into
// groups by store.Rollup) and the building of its answer (pure Go).
type tickTimes struct {
	Query, Build []time.Duration
}

func (t tickTimes) total() time.Duration {
	var d time.Duration
	for i := range t.Query {
		d += t.Query[i] + t.Build[i]
	}
	return d
}

// run runs the set at now from the rollups, one query after the other, as the API and the hub
// do: Plan, store.Rollup, then the building of the answer.
func (s querySet) run(ctx context.Context, db *store.Store, now time.Time) (tickTimes, [][]rollup.Group, error) {
	t := tickTimes{Query: make([]time.Duration, len(s)), Build: make([]time.Duration, len(s))}
	out := make([][]rollup.Group, len(s))
	for i, st := range s {
		p := st.q.Plan(now)
		start := time.Now()
		groups, err := db.Rollup(ctx, st.q, p)
		if err != nil {
			return t, out, fmt.Errorf("%s: %w", st.name, err)
		}
		built := time.Now()
		st.build(st.q, p, groups)
		t.Query[i], t.Build[i] = built.Sub(start), time.Since(built)
		out[i] = groups
	}
	return t, out, nil
}

// readRows runs f with a context that counts the rows ClickHouse reports having read.
func readRows(ctx context.Context, f func(ctx context.Context) error) (rows uint64, err error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithProgress(func(p *clickhouse.Progress) { rows += p.Rows }))
	err = f(ctx)
	return rows, err
}
