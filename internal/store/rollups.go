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
var rollupTables = map[string]bool{"overview_1s": true, "overview_10s": true, "overview_30s": true, "overview_2m": true, "overview_1m": true, "overview_30m": true, "overview_1h": true, "detail_1m": true, "detail_1h": true, "touchpoint_1h": true}

// measures are the sums of every rollup table, in the order of rollup.Counts.
const measures = `max(t), sumMerge(events), sumMerge(csat_n), sumMerge(csat_top2), sumMerge(nps_n),
	sumMerge(nps_promoters), sumMerge(nps_detractors), sumMerge(ces_n), sumMerge(ces_sum),
	sumMerge(negative), sumMerge(with_outcome), sumMerge(abandoned), sumMerge(wait_n)`

// The wait-time histogram; a query WithoutWait selects nothing in its place, so that its groups
// carry no arrays to send and scan (a trend of 1h is hundreds of groups).
const waitHistogram = `tupleElement(sumMapMerge(wait_hist), 1), tupleElement(sumMapMerge(wait_hist), 2)`

// RollupSQL is the query behind Rollup and the values bound to it. Filter values are bound,
// never spliced into the text; table names and times come from the Plan.
func RollupSQL(q rollup.Query, p rollup.Plan) (string, []any) {
	return rollupSQL(q, p, false, keyRange{})
}

// keyRange bounds the grouping keys of a page of RollupEach: from <= keys < to, as tuples of
// the values of q.By; a nil bound is open.
type keyRange struct{ from, to []any }

// rollupSQL is RollupSQL, with ordered: its groups sorted by the grouping keys (RollupEach),
// and only those of keys in r.
//
// With a comparison the query reads both periods at once and tells them apart by previous:
// the window just before is one range of t; last week's window for a window under 7d is a
// second range, before a gap; for a 30d window it overlaps the current one, whose rows of the
// overlap then count in both periods (arrayJoin makes them two).
func rollupSQL(q rollup.Query, p rollup.Plan, ordered bool, r keyRange) (string, []any) {
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
	where, args = r.conditions(q.By, where, args)
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

// conditions adds the bounds of r on the keys by to where, their values bound as arguments.
// Tuples compare as the ORDER BY of the keys sorts (Enum8 by number, a string bound to it
// taken as the enum's value).
func (r keyRange) conditions(by []string, where []string, args []any) ([]string, []any) {
	keys := "(" + strings.Join(by, ", ") + ")"
	marks := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(by)), ", ") + ")"
	if r.from != nil {
		where, args = append(where, keys+" >= "+marks), append(args, r.from...)
	}
	if r.to != nil {
		where, args = append(where, keys+" < "+marks), append(args, r.to...)
	}
	return where, args
}

// maxGroups is the most groups Rollup reads for one query: each is 1.6 KB in Go (its wait
// histogram) before the answer is built, and a grouping by touchpoint, region and team can have
// as many groups as the data has combinations. A larger answer streams through RollupEach (the
// CSV export) instead.
var maxGroups = 100_000

// TooManyGroupsError is Rollup's answer to a query of more than its limit of groups.
type TooManyGroupsError struct{ Limit int }

func (e *TooManyGroupsError) Error() string {
	return fmt.Sprintf("the answer has more than %d groups", e.Limit)
}

// GroupLimit is the limit the query went over, for the HTTP edge (which does not import store).
func (e *TooManyGroupsError) GroupLimit() int { return e.Limit }

// Rollup runs a metrics query against the rollup table of its plan. It reads at most
// maxGroups groups: a query of more gets a *TooManyGroupsError.
func (s *Store) Rollup(ctx context.Context, q rollup.Query, p rollup.Plan) ([]rollup.Group, error) {
	var out []rollup.Group
	for g, err := range s.rollupGroups(ctx, q, p, false, keyRange{}) {
		if err != nil {
			return nil, err
		}
		if len(out) == maxGroups {
			return nil, &TooManyGroupsError{maxGroups}
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
//
// ClickHouse 18.16 sends the sorted groups of a query as one block, which the driver holds
// whole (max_block_size does not split a sort's output there): an answer of more than
// PageGroups groups is read in pages of consecutive keys, one query each, in key order, so that
// no more than about pageGroups groups are held at once. The pages' bounds come from a first
// query of the keys alone; each page reads the window again, and the pages, asked one after
// the other, see the events stored by then.
func (s *Store) RollupEach(ctx context.Context, q rollup.Query, p rollup.Plan) iter.Seq2[*rollup.Group, error] {
	return func(yield func(*rollup.Group, error) bool) {
		bounds, err := s.pageBounds(ctx, q, p)
		if err != nil {
			markUnavailable(&err)
			yield(nil, err)
			return
		}
		for i := 0; i <= len(bounds); i++ {
			var r keyRange
			if i > 0 {
				r.from = bounds[i-1]
			}
			if i < len(bounds) {
				r.to = bounds[i]
			}
			for g, err := range s.rollupGroups(ctx, q, p, true, r) {
				if !yield(g, err) || err != nil {
					return
				}
			}
		}
	}
}

// pageGroups is about how many groups one page of RollupEach holds: a group is about 60 bytes
// in the driver's block, and up to 193 wait buckets more.
var pageGroups = 100_000

// pageBounds lists the first keys of the pages of RollupEach after the first one: none when
// the answer fits in one page. A page holds pageGroups / (groups per key) keys: a key has one
// group per trend bucket, and one more for the comparison period.
func (s *Store) pageBounds(ctx context.Context, q rollup.Query, p rollup.Plan) ([][]any, error) {
	p = s.answering(q, p)
	perKey := 1
	if q.Step > 0 {
		perKey = int((p.To.Sub(p.From)+q.Step-1)/q.Step) + 1 // +1: a window that starts inside a bucket
	}
	if q.Compare {
		perKey++
	}
	if len(q.By) == 0 {
		return nil, nil
	}
	perPage := max(1, pageGroups/perKey)
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	keys := strings.Join(q.By, ", ")
	from := p.From // and the comparison period, which may have keys the window lacks
	if q.Compare && p.PrevFrom.Before(from) {
		from = p.PrevFrom
	}
	where, args := filterConditions([]string{"t >= toDateTime(" + unix(from) + ")", "t < toDateTime(" + unix(p.To) + ")"}, q.Filters)
	rows, err := conn.Query(ctx, "SELECT "+keys+" FROM "+p.Table+" WHERE "+strings.Join(where, " AND ")+
		" GROUP BY "+keys+" ORDER BY "+keys, args...)
	if err != nil {
		return nil, fmt.Errorf("query the keys of %s: %w", p.Table, err)
	}
	defer rows.Close()
	var (
		bounds [][]any
		n      int
	)
	vals := make([]string, len(q.By))
	dest := make([]any, len(q.By))
	for i := range vals {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read the keys of %s: %w", p.Table, err)
		}
		if n > 0 && n%perPage == 0 {
			b := make([]any, len(vals))
			for i, v := range vals {
				b[i] = v
			}
			bounds = append(bounds, b)
		}
		n++
	}
	return bounds, rows.Err()
}

func (s *Store) rollupGroups(ctx context.Context, q rollup.Query, p rollup.Plan, ordered bool, r keyRange) iter.Seq2[*rollup.Group, error] {
	p = s.answering(q, p)
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
		sql, args := rollupSQL(q, p, ordered, r)
		if !ordered {
			// Rollup stops at maxGroups: one more tells it the answer is larger.
			sql += "\nLIMIT " + strconv.Itoa(maxGroups+1)
		}
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
			dest = append(dest, dimensionOf(d, &g.Moment, &g.Channel, &g.Touchpoint, &g.Region, &g.AgentTeam))
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

// dimensionOf is where a row's value of dimension d (one of rollup.Dimensions) is scanned to.
func dimensionOf(d string, moment, channel, touchpoint, region, agentTeam *string) *string {
	switch d {
	case "moment":
		return moment
	case "channel":
		return channel
	case "touchpoint":
		return touchpoint
	case "region":
		return region
	case "agent_team":
		return agentTeam
	}
	panic("store: unknown dimension " + d)
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
			dest = append(dest, dimensionOf(d, &g.Moment, &g.Channel, &g.Touchpoint, &g.Region, &g.AgentTeam))
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
