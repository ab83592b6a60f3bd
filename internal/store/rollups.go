package store

import (
	"context"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
)

// rollupTables are the only tables Rollup reads; a Plan naming another is a bug.
var rollupTables = map[string]bool{"overview_1s": true, "overview_10s": true, "overview_30s": true, "overview_2m": true, "overview_1m": true, "overview_30m": true, "overview_1h": true, "detail_1m": true, "detail_1h": true}

// measures are the sums of every rollup table, in the order of rollup.Counts.
const measures = `max(t), sumMerge(events), sumMerge(csat_n), sumMerge(csat_top2), sumMerge(nps_n),
	sumMerge(nps_promoters), sumMerge(nps_detractors), sumMerge(ces_n), sumMerge(ces_sum),
	sumMerge(negative), sumMerge(with_outcome), sumMerge(abandoned), sumMerge(wait_n)`

// The wait-time histogram; a query WithoutWait selects nothing in its place, so that its groups
// carry no arrays to send and scan (a trend of 1h is hundreds of groups).
const waitHistogram = `tupleElement(sumMapMerge(wait_hist), 1), tupleElement(sumMapMerge(wait_hist), 2)`

// RollupSQL is the query behind Rollup and the values bound to it. Filter values are bound,
// never spliced into the text; table names and times come from the Plan.
func RollupSQL(q rollup.Query, p rollup.Plan) (string, []any) { return rollupSQL(q, p, false) }

// rollupSQL is RollupSQL, with ordered: its groups sorted by the grouping keys (RollupEach).
//
// With a comparison the query reads both periods at once and tells them apart by previous:
// the window just before is one range of t; last week's window for a window under 7d is a
// second range, before a gap; for a 30d window it overlaps the current one, whose rows of the
// overlap then count in both periods (arrayJoin makes them two).
func rollupSQL(q rollup.Query, p rollup.Plan, ordered bool) (string, []any) {
	if !rollupTables[p.Table] {
		panic("rollup: unknown table " + p.Table)
	}
	var sel, group []string
	for _, d := range q.By {
		sel, group = append(sel, d), append(group, d)
	}
	from, to := "toDateTime("+unix(p.From)+")", "toDateTime("+unix(p.To)+")"
	where := []string{"t >= " + from, "t < " + to}
	if q.Compare {
		prevFrom, prevTo := "toDateTime("+unix(p.PrevFrom)+")", "toDateTime("+unix(p.ComparedTo())+")"
		previous := "t < " + from + " AS previous"
		switch end := p.ComparedTo(); {
		case end.Equal(p.From):
			where[0] = "t >= " + prevFrom
		case end.Before(p.From):
			where = []string{"(t >= " + prevFrom + " AND t < " + prevTo + " OR t >= " + from + " AND t < " + to + ")"}
		default:
			where[0] = "t >= " + prevFrom
			previous = "arrayJoin(arrayFilter(x -> x = 1 AND t < " + prevTo + " OR x = 0 AND t >= " + from + ", [0, 1])) AS previous"
		}
		sel, group = append(sel, previous), append(group, "previous")
	}
	if q.Step > 0 {
		step := strconv.Itoa(int(q.Step.Seconds()))
		bucket := "intDiv(toUInt32(t), " + step + ") * " + step
		if q.Compare { // the previous period is one total, not a trend: all in bucket 0
			bucket = "if(previous = 1, 0, " + bucket + ")"
		}
		// toUInt32: the product alone is a UInt64, which does not scan into the uint32 below.
		sel, group = append(sel, "toUInt32("+bucket+") AS bucket"), append(group, "bucket")
	}
	sel = append(sel, measures)
	if !q.WithoutWait {
		sel = append(sel, waitHistogram)
	}
	where, args := filterConditions(where, q.Filters)
	sql := "SELECT " + strings.Join(sel, ", ") + "\nFROM " + p.Table + "\nWHERE " + strings.Join(where, " AND ")
	if len(group) > 0 {
		sql += "\nGROUP BY " + strings.Join(group, ", ")
	}
	if ordered && len(q.By) > 0 {
		// Enum8 sorts by number, which is the vocabulary's order, and String by bytes: the
		// order of the API's rows (rollup.Build).
		sql += "\nORDER BY " + strings.Join(q.By, ", ")
	}
	return sql, args
}

// Rollup runs a metrics query against the rollup table of its plan.
func (s *Store) Rollup(ctx context.Context, q rollup.Query, p rollup.Plan) ([]rollup.Group, error) {
	var out []rollup.Group
	for g, err := range s.rollupGroups(ctx, q, p, false) {
		if err != nil {
			return nil, err
		}
		out = append(out, *g)
	}
	return out, nil
}

// RollupEach runs a metrics query like Rollup but yields its groups one at a time, as
// ClickHouse sends them, sorted by the grouping keys so that the groups of one row come
// together: an answer too large to hold at once (an export of a month by touchpoint) is built
// and written row by row. The group yielded is reused for the next one. An error ends the
// sequence. Breaking out of it still reads the rest of the answer from ClickHouse (the driver
// drains it): cancel ctx first to stop the query.
func (s *Store) RollupEach(ctx context.Context, q rollup.Query, p rollup.Plan) iter.Seq2[*rollup.Group, error] {
	return s.rollupGroups(ctx, q, p, true)
}

func (s *Store) rollupGroups(ctx context.Context, q rollup.Query, p rollup.Plan, ordered bool) iter.Seq2[*rollup.Group, error] {
	return func(yield func(*rollup.Group, error) bool) {
		fail := func(err error) {
			markUnavailable(&err)
			yield(nil, err)
		}
		conn, err := s.connection()
		if err != nil {
			fail(err)
			return
		}
		sql, args := rollupSQL(q, p, ordered)
		rows, err := conn.Query(ctx, sql, args...)
		if err != nil {
			fail(fmt.Errorf("query %s: %w", p.Table, err))
			return
		}
		defer rows.Close()
		var (
			g        rollup.Group
			previous uint8
			bucket   uint32
			keys     []uint8
			counts   []uint64
			dest     []any
		)
		for _, d := range q.By {
			switch d {
			case "moment":
				dest = append(dest, &g.Moment)
			case "channel":
				dest = append(dest, &g.Channel)
			case "touchpoint":
				dest = append(dest, &g.Touchpoint)
			}
		}
		if q.Compare {
			dest = append(dest, &previous)
		}
		if q.Step > 0 {
			dest = append(dest, &bucket)
		}
		c := &g.Counts
		dest = append(dest, &g.Newest, &c.Events, &c.CSATN, &c.CSATTop2, &c.NPSN, &c.NPSPromoters, &c.NPSDetractors,
			&c.CESN, &c.CESSum, &c.Negative, &c.WithOutcome, &c.Abandoned, &c.WaitN)
		if !q.WithoutWait {
			dest = append(dest, &keys, &counts)
		}
		for rows.Next() {
			c.Wait = [metric.Buckets]uint64{}
			if err := rows.Scan(dest...); err != nil {
				fail(fmt.Errorf("read %s: %w", p.Table, err))
				return
			}
			for i, k := range keys {
				if int(k) < metric.Buckets {
					c.Wait[k] += counts[i]
				}
			}
			g.Previous = previous == 1
			g.Bucket = time.Time{}
			if q.Step > 0 {
				g.Bucket = time.Unix(int64(bucket), 0).UTC()
			}
			if !yield(&g, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			fail(fmt.Errorf("read %s: %w", p.Table, err))
		}
	}
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// RecoveryWindowSeconds is metric.RecoveryWindow in seconds, for SQL.
const recoveryWindowSeconds = int64(metric.RecoveryWindow / time.Second)

// RecoverySQL is the query behind Recovery: the window's negative moments (filtered like the
// rollups) joined by journey to the later positive events of any channel. ClickHouse 18.16 joins
// on equality only, so each journey's positive times come as an array and the 7-day condition
// is an arrayExists.
func RecoverySQL(q rollup.Query, p rollup.Plan, now time.Time) (string, []any) {
	var keys []string
	keys = append(keys, q.By...)
	where := []string{"negative = 1", "journey_id != ''",
		"occurred_at >= toDateTime(" + unix(p.From) + ")", "occurred_at < toDateTime(" + unix(p.To) + ")"}
	where, args := filterConditions(where, q.Filters)
	w := strconv.FormatInt(recoveryWindowSeconds, 10)
	recovered := "arrayExists(x -> x > t AND x <= t + " + w + ", positives)"
	// Closed: t + 7 days < now. t is in whole seconds, now may not be: compare with now rounded
	// up, or a moment exactly 7 days before a now of 10:17:42.5 would stay pending.
	closed := "t + " + w + " < " + strconv.FormatInt(now.Add(time.Second-1).Unix(), 10)
	sel := append(append([]string{}, keys...),
		"countIf("+closed+" AND "+recovered+")",
		"countIf("+closed+" AND NOT "+recovered+")",
		"countIf(NOT ("+closed+"))")
	sql := "SELECT " + strings.Join(sel, ", ") + `
FROM (
	SELECT ` + strings.Join(append(append([]string{}, keys...), "journey_id", "toUInt32(occurred_at) AS t"), ", ") + `
	FROM events WHERE ` + strings.Join(where, " AND ") + `
) AS negatives ANY LEFT JOIN (
	SELECT journey_id, groupArray(toUInt32(occurred_at)) AS positives FROM events
	WHERE positive = 1 AND journey_id != ''
	  AND occurred_at > toDateTime(` + unix(p.From) + `) AND occurred_at <= toDateTime(` + strconv.FormatInt(p.To.Unix()+recoveryWindowSeconds, 10) + `)
	GROUP BY journey_id
) AS journeys USING journey_id` // modern ClickHouse requires the aliases
	if len(keys) > 0 {
		sql += "\nGROUP BY " + strings.Join(keys, ", ")
	}
	return sql, args
}

// Recovery counts the fate of the window's negative moments per group, as of now.
func (s *Store) Recovery(ctx context.Context, q rollup.Query, p rollup.Plan, now time.Time) (_ []rollup.RecoveryGroup, err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	sql, args := RecoverySQL(q, p, now)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query recovery: %w", err)
	}
	defer rows.Close()
	var out []rollup.RecoveryGroup
	for rows.Next() {
		var g rollup.RecoveryGroup
		var dest []any
		for _, d := range q.By {
			switch d {
			case "moment":
				dest = append(dest, &g.Moment)
			case "channel":
				dest = append(dest, &g.Channel)
			case "touchpoint":
				dest = append(dest, &g.Touchpoint)
			}
		}
		dest = append(dest, &g.Recovered, &g.Lost, &g.Pending)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read recovery: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// filterConditions adds a condition per filter of f to where, its values bound as a tuple by
// the driver (quoted, never spliced as text), and returns the conditions with their arguments.
func filterConditions(where []string, f rollup.Filters) ([]string, []any) {
	var args []any
	for _, param := range rollup.FilterParams {
		vals := *f.Field(param)
		if len(vals) == 0 {
			continue
		}
		set := make([]any, len(vals))
		for i, v := range vals {
			set[i] = v
		}
		where, args = append(where, param+" IN ?"), append(args, clickhouse.GroupSet{Value: set})
	}
	return where, args
}
