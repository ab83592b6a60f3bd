package metricsbench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store"
)

// rawMeasures compute from the raw rows the sums a rollup row holds (as the materialized views
// in clickhouse/migrations define them), and the exact wait percentiles instead of the
// log-bucket histogram.
const rawMeasures = `count(), countIf(isNotNull(csat)), countIf(ifNull(csat, 0) >= 4), countIf(isNotNull(nps)),
	countIf(isNotNull(nps) AND ifNull(nps, 0) >= 9), countIf(isNotNull(nps) AND ifNull(nps, 0) <= 6),
	countIf(isNotNull(ces)), sum(ifNull(ces, 0)), sum(negative), countIf(outcome != ''),
	countIf(outcome = 'abandoned'), countIf(isNotNull(wait_ms)),
	quantilesExactIf(0.5, 0.9)(assumeNotNull(wait_ms), isNotNull(wait_ms))`

// rawSQL is the baseline of a rollup query: the same window, grouping, comparison and buckets,
// read from the raw table events.
func rawSQL(q rollup.Query, p rollup.Plan) string {
	var sel, group []string
	for _, d := range q.By {
		sel, group = append(sel, d), append(group, d)
	}
	start := p.From
	if q.Compare {
		start = p.PrevFrom
		sel, group = append(sel, "occurred_at < toDateTime("+unix(p.From)+") AS previous"), append(group, "previous")
	}
	if q.Step > 0 {
		step := strconv.Itoa(int(q.Step.Seconds()))
		// toUInt32: the product alone is a UInt64.
		sel, group = append(sel, "toUInt32(intDiv(toUInt32(occurred_at), "+step+") * "+step+") AS bucket"), append(group, "bucket")
	}
	sel = append(sel, rawMeasures)
	sql := "SELECT " + strings.Join(sel, ", ") + "\nFROM events\nWHERE occurred_at >= toDateTime(" + unix(start) +
		") AND occurred_at < toDateTime(" + unix(p.To) + ")"
	if len(group) > 0 {
		sql += "\nGROUP BY " + strings.Join(group, ", ")
	}
	return sql
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// rawGroup is a group of the baseline: the rollup's sums (without the wait histogram) and the
// exact wait percentiles.
type rawGroup struct {
	rollup.Group
	WaitP50, WaitP90 float64
}

// rawQuery runs the baseline of q and computes the same figures: rollup.MetricsOf per group
// with the exact percentiles, or BuildConsistency.
func rawQuery(ctx context.Context, db *store.Store, i int, q rollup.Query, p rollup.Plan) ([]rawGroup, error) {
	rows, err := db.Conn().Query(ctx, rawSQL(q, p))
	if err != nil {
		return nil, fmt.Errorf("raw %s: %w", queryNames[i], err)
	}
	defer rows.Close()
	var out []rawGroup
	for rows.Next() {
		var (
			g        rawGroup
			previous uint8
			bucket   uint32
			qs       []uint32
			dest     []any
		)
		for _, d := range q.By {
			switch d {
			case "moment":
				dest = append(dest, &g.Moment)
			case "channel":
				dest = append(dest, &g.Channel)
			}
		}
		if q.Compare {
			dest = append(dest, &previous)
		}
		if q.Step > 0 {
			dest = append(dest, &bucket)
		}
		c := &g.Counts
		dest = append(dest, &c.Events, &c.CSATN, &c.CSATTop2, &c.NPSN, &c.NPSPromoters, &c.NPSDetractors,
			&c.CESN, &c.CESSum, &c.Negative, &c.WithOutcome, &c.Abandoned, &c.WaitN, &qs)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read raw %s: %w", queryNames[i], err)
		}
		g.Previous = previous == 1
		if q.Step > 0 {
			g.Bucket = time.Unix(int64(bucket), 0).UTC()
		}
		if c.WaitN > 0 && len(qs) == 2 {
			g.WaitP50, g.WaitP90 = float64(qs[0]), float64(qs[1])
		} else {
			g.WaitP50, g.WaitP90 = math.NaN(), math.NaN()
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read raw %s: %w", queryNames[i], err)
	}
	period := q.Window
	if q.Step > 0 {
		period = q.Step
	}
	if i == qConsistency {
		groups := make([]rollup.Group, len(out))
		for j := range out {
			groups[j] = out[j].Group
		}
		runtime.KeepAlive(rollup.BuildConsistency(q, p, groups, metric.Rules{}))
	} else {
		ms := make([]rollup.Metrics, len(out))
		for j := range out {
			ms[j] = rollup.MetricsOf(&out[j].Counts, period, metric.Rules{})
			ms[j].WaitP50MS = metric.Figure{Value: out[j].WaitP50, OK: !math.IsNaN(out[j].WaitP50), N: int64(out[j].WaitN)}
			ms[j].WaitP90MS = metric.Figure{Value: out[j].WaitP90, OK: !math.IsNaN(out[j].WaitP90), N: int64(out[j].WaitN)}
		}
		runtime.KeepAlive(ms)
	}
	return out, nil
}

// rawTick runs the executive view at now from the raw table; it returns each query's time.
func rawTick(ctx context.Context, db *store.Store, view [nQueries]rollup.Query, now time.Time) ([nQueries]time.Duration, [nQueries][]rawGroup, error) {
	var (
		t   [nQueries]time.Duration
		out [nQueries][]rawGroup
	)
	for i, q := range view {
		p := q.Plan(now)
		start := time.Now()
		groups, err := rawQuery(ctx, db, i, q, p)
		if err != nil {
			return t, out, err
		}
		t[i], out[i] = time.Since(start), groups
	}
	return t, out, nil
}

// agreement compares the KPI query of the rollups with the raw table at the same instant: every
// count of the current and the previous period must be equal; the wait p50 and p90 of the
// histogram may differ from the exact ones by the bucket width (at most 4.9%).
type agreement struct {
	CountsEqual      bool
	Events           uint64  // current period
	WaitP50, WaitP90 float64 // largest relative difference of the histogram's percentiles, current period
}

func compareKPI(roll []rollup.Group, raw []rawGroup) agreement {
	var rc, rp, xc, xp rollup.Counts
	var p50, p90 float64 = math.NaN(), math.NaN()
	for i := range roll {
		if roll[i].Previous {
			rp.Add(&roll[i].Counts)
		} else {
			rc.Add(&roll[i].Counts)
		}
	}
	for i := range raw {
		if raw[i].Previous {
			xp.Add(&raw[i].Counts)
		} else {
			xc.Add(&raw[i].Counts)
			p50, p90 = raw[i].WaitP50, raw[i].WaitP90
		}
	}
	same := func(a, b rollup.Counts) bool {
		a.Wait, b.Wait = [metric.Buckets]uint64{}, [metric.Buckets]uint64{}
		return a == b
	}
	a := agreement{CountsEqual: same(rc, xc) && same(rp, xp), Events: rc.Events}
	rel := func(fig metric.Figure, exact float64) float64 {
		if !fig.OK || math.IsNaN(exact) || exact == 0 {
			return math.NaN()
		}
		return math.Abs(fig.Value-exact) / exact
	}
	a.WaitP50 = rel(metric.Rules{}.Percentile(rc.Wait[:], 0.5), p50)
	a.WaitP90 = rel(metric.Rules{}.Percentile(rc.Wait[:], 0.9), p90)
	return a
}
