package metricsbench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store"
)

// The diagnosis runs the view's queries against variants of the rollup tables, built from the
// real ones in the benchmark's own database, to show where a tick's time goes and what a schema
// change would save. It measures; it changes nothing outside truthboard_mbench_*.

// probe is a variant of a rollup table.
type probe struct {
	name   string
	table  string        // the table it reads
	source string        // the rollup table it replaces
	res    time.Duration // its resolution
	create string        // how it is built, empty for a table of the schema
	noHist bool          // leave the wait histogram out of the queries
}

const probeEngine = " ENGINE = AggregatingMergeTree PARTITION BY toYYYYMMDD(t) ORDER BY (t, moment, channel) SETTINGS index_granularity = "

// reaggregate copies overview_1s into steps of n seconds, merging the states.
func reaggregate(table string, n int) string {
	return fmt.Sprintf(`INSERT INTO %s SELECT toDateTime(intDiv(toUInt32(t), %d) * %d) AS step, moment, channel,
	sumMergeState(events), sumMergeState(csat_n), sumMergeState(csat_top2), sumMergeState(nps_n),
	sumMergeState(nps_promoters), sumMergeState(nps_detractors), sumMergeState(ces_n), sumMergeState(ces_sum),
	sumMergeState(negative), sumMergeState(with_outcome), sumMergeState(abandoned), sumMergeState(wait_n),
	sumMapMergeState(wait_hist)
FROM overview_1s GROUP BY step, moment, channel`, table, n, n)
}

// The schema's rollups have 1,024-row granules since commit 5530e8f, those of migration 0016
// 256-row ones; the variants with other granules show what that buys, the former tables of the
// 5m, 15m, 1h and 24h windows what the 10 s, 30 s, 2 min and 30 min rollups (migrations 0012,
// 0016, 0013) buy.
var probes = map[string][]probe{
	"5m": {
		{name: "`overview_10s` as the schema defines it", table: "overview_10s", source: "overview_10s", res: 10 * time.Second},
		{name: "`overview_10s`, `WithoutWait` (no histogram)", table: "overview_10s", source: "overview_10s", res: 10 * time.Second, noHist: true},
		{name: "`overview_10s` with 8,192-row granules", table: "probe_10s_g8192", source: "overview_10s", res: 10 * time.Second,
			create: "CREATE TABLE probe_10s_g8192 AS overview_10s" + probeEngine + "8192;INSERT INTO probe_10s_g8192 SELECT * FROM overview_10s"},
		{name: "`overview_10s` with 256-row granules", table: "probe_10s_g256", source: "overview_10s", res: 10 * time.Second,
			create: "CREATE TABLE probe_10s_g256 AS overview_10s" + probeEngine + "256;INSERT INTO probe_10s_g256 SELECT * FROM overview_10s"},
		{name: "`overview_1s`, the table of the 5m window before 0012", table: "overview_1s", source: "overview_10s", res: time.Second},
	},
	"15m": {
		{name: "`overview_30s` as the schema defines it", table: "overview_30s", source: "overview_30s", res: 30 * time.Second},
		{name: "`overview_30s`, `WithoutWait` (no histogram)", table: "overview_30s", source: "overview_30s", res: 30 * time.Second, noHist: true},
		{name: "`overview_30s` with 1,024-row granules", table: "probe_30s_g1024", source: "overview_30s", res: 30 * time.Second,
			create: "CREATE TABLE probe_30s_g1024 AS overview_30s" + probeEngine + "1024;INSERT INTO probe_30s_g1024 SELECT * FROM overview_30s"},
		{name: "`overview_10s`, the table of the 15m window before 0016", table: "overview_10s", source: "overview_30s", res: 10 * time.Second},
	},
	"1h": {
		{name: "`overview_2m` as the schema defines it", table: "overview_2m", source: "overview_2m", res: 2 * time.Minute},
		{name: "`overview_2m`, `WithoutWait` (no histogram)", table: "overview_2m", source: "overview_2m", res: 2 * time.Minute, noHist: true},
		{name: "`overview_2m` with 1,024-row granules", table: "probe_2m_g1024", source: "overview_2m", res: 2 * time.Minute,
			create: "CREATE TABLE probe_2m_g1024 AS overview_2m" + probeEngine + "1024;INSERT INTO probe_2m_g1024 SELECT * FROM overview_2m"},
		{name: "`overview_1m`, the table of the 1h window before 0016 (trend step 1 min)", table: "overview_1m", source: "overview_2m", res: time.Minute},
		{name: "a 5 min rollup (trend step 5 min, 12 points), 256-row granules", table: "probe_5m_g256", source: "overview_2m", res: 5 * time.Minute,
			create: "CREATE TABLE probe_5m_g256 AS overview_1s" + probeEngine + "256;" + reaggregate("probe_5m_g256", 300)},
	},
	"24h": {
		{name: "`overview_30m` as the schema defines it", table: "overview_30m", source: "overview_30m", res: 30 * time.Minute},
		{name: "`overview_30m`, `WithoutWait` (no histogram)", table: "overview_30m", source: "overview_30m", res: 30 * time.Minute, noHist: true},
		{name: "`overview_1m`, the table of the 24h window before 0013", table: "overview_1m", source: "overview_30m", res: time.Minute},
		{name: "a 10 min rollup, 1,024-row granules", table: "probe_10m_g1024", source: "overview_30m", res: 10 * time.Minute,
			create: "CREATE TABLE probe_10m_g1024 AS overview_1s" + probeEngine + "1024;" + reaggregate("probe_10m_g1024", 600)},
	},
	// The long windows' rollup (migration 0008) against the table that would answer without it,
	// and for 30d a daily rollup, which the schema leaves out (the audit would count a day of raw
	// events per run to check it).
	"7d": {
		{name: "`overview_1h` as the schema defines it", table: "overview_1h", source: "overview_1h", res: time.Hour},
		{name: "`overview_1h`, `WithoutWait` (no histogram)", table: "overview_1h", source: "overview_1h", res: time.Hour, noHist: true},
		{name: "`overview_1m`, the table of the 24h window", table: "overview_1m", source: "overview_1h", res: time.Minute},
	},
	"30d": {
		{name: "`overview_1h` as the schema defines it", table: "overview_1h", source: "overview_1h", res: time.Hour},
		{name: "`overview_1h`, `WithoutWait` (no histogram)", table: "overview_1h", source: "overview_1h", res: time.Hour, noHist: true},
		{name: "`overview_1m`, the table of the 24h window", table: "overview_1m", source: "overview_1h", res: time.Minute},
		{name: "a daily rollup, 1,024-row granules", table: "probe_1d_g1024", source: "overview_1h", res: 24 * time.Hour,
			create: "CREATE TABLE probe_1d_g1024 AS overview_1s" + probeEngine + "1024;" + reaggregate("probe_1d_g1024", 86400)},
	},
}

// diagnosis is the p50 of each query per probe of one window.
type diagnosis struct {
	Window string
	Size   uint64
	Probes []probe
	// P50 per probe: KPIs+compare, grid, trend, the hub's two queries.
	P50   [][nDiag]time.Duration
	Rows  [][nDiag]uint64
	Skip  []string // why a probe was left out
	Iters int
}

const nDiag = 5

var diagQueries = [nDiag]string{"(a) KPIs+compare", "(b, d) grid", "(c) trend", "hub grid", "hub trend"}

// diagnose runs the probes of window w at the end of the history h, iters times in turn.
func diagnose(ctx context.Context, h *history, w string, iters int) (diagnosis, error) {
	d := diagnosis{Window: w, Iters: iters}
	length, _ := windowLength(w)
	view := apiView(length, w)
	hub := hubSet(view)
	qs := [nDiag]rollup.Query{view[qKPI], view[qGrid], view[qTrend], hub[0].q, hub[1].q}
	now := h.end.Add(-time.Second)

	var sqls [][nDiag]string
	for _, p := range probes[w] {
		if p.create != "" {
			// A probe table a killed or -reuse run left behind holds rows of an older history:
			// build it again.
			ok := true
			for _, stmt := range append([]string{"DROP TABLE IF EXISTS " + p.table}, strings.Split(p.create, ";")...) {
				if err := h.db.Conn().Exec(ctx, stmt); err != nil {
					d.Skip = append(d.Skip, fmt.Sprintf("%s: %v", p.name, err))
					ok = false
					break
				}
			}
			if !ok {
				continue
			}
		}
		var s [nDiag]string
		for i, q := range qs {
			q.WithoutWait = q.WithoutWait || p.noHist
			if q.Step > 0 {
				q.Step = rollup.TrendStep(q.Window, p.res)
			}
			plan := q.Plan(now)
			if plan.Table != p.source {
				return d, fmt.Errorf("probe %s: the window %s reads %s, not %s", p.name, w, plan.Table, p.source)
			}
			plan.Resolution = p.res
			plan.To = now.Truncate(p.res).Add(p.res)
			plan.From, plan.PrevFrom, plan.PrevTo = plan.To.Add(-q.Window), plan.To.Add(-2*q.Window), plan.To.Add(-q.Window)
			sql, _ := store.RollupSQL(q, plan)
			s[i] = strings.Replace(sql, "\nFROM "+p.source+"\n", "\nFROM "+p.table+"\n", 1)
		}
		if !strings.Contains(s[0], "\nFROM "+p.table+"\n") {
			d.Skip = append(d.Skip, p.name+": store.RollupSQL changed, the table could not be swapped")
			continue
		}
		d.Probes, sqls = append(d.Probes, p), append(sqls, s)
	}

	times := make([][nDiag][]time.Duration, len(d.Probes))
	d.Rows = make([][nDiag]uint64, len(d.Probes))
	exec := func(ctx context.Context, sql string) error {
		rows, err := h.db.Conn().Query(ctx, sql)
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		rows.Close()
		return rows.Err()
	}
	for i := range d.Probes {
		for j := range nDiag {
			n, err := readRows(ctx, func(ctx context.Context) error { return exec(ctx, sqls[i][j]) })
			if err != nil {
				return d, fmt.Errorf("probe %s, %s: %w", d.Probes[i].name, diagQueries[j], err)
			}
			d.Rows[i][j] = n
		}
	}
	for it := range iters {
		for k := range d.Probes {
			i := (k + it) % len(d.Probes)
			for j := range nDiag {
				start := time.Now()
				if err := exec(ctx, sqls[i][j]); err != nil {
					return d, fmt.Errorf("probe %s, %s: %w", d.Probes[i].name, diagQueries[j], err)
				}
				times[i][j] = append(times[i][j], time.Since(start))
			}
		}
	}
	d.P50 = make([][nDiag]time.Duration, len(d.Probes))
	for i := range d.Probes {
		for j := range nDiag {
			d.P50[i][j] = benchkit.Percentile(times[i][j], 0.5)
		}
	}
	return d, nil
}
