package store

// What the rollup audit (internal/audit) asks of ClickHouse: counts of the raw table and of
// each rollup per time bucket, the raw rows stored twice, and the two repairs: removing extra
// copies from the raw table and rebuilding a rollup's buckets from it.
//
// Why repairs are needed at all: a materialized view is not atomic with the insert into its
// source. ClickHouse writes the raw block, then each view's block in turn; a crash in between
// (kill -9, OOM) leaves some rollups with the insert and others without, and the writer's retry
// (which finds no key in event_keys if that view was among those skipped) inserts the raw rows
// again. The raw table is the truth: the audit rebuilds every rollup from it.
//
// Both repairs are mutations (ALTER TABLE … DELETE WHERE), which ClickHouse 18.16 and current
// releases both have (18.16 has no lightweight DELETE). A mutation applies only to the parts
// that exist when it is created: rows inserted after it are kept. So each repair creates the
// mutation and inserts the replacement rows at once, without waiting for the mutation to
// finish, and nothing is ever missing in between.

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/truthboard/truthboard/internal/event"
)

// Rollup is a table fed from the raw table by a materialized view, as the audit sees it.
type Rollup struct {
	Table string
	// Bucket is the span of time the audit compares and rebuilds as a whole: the table's own
	// step, or a minute for the per-second, 10-second and 30-second tables (a minute of overview_1s is 55
	// rows at most, while comparing seconds would cost 60 times more rows for the same finding).
	Bucket time.Duration
	// Labels says the table is keyed by moment and channel, so counts compare per label.
	Labels bool
	// timeColumn is the column of the bucket's time; count sums its events.
	timeColumn, count string
}

// Rollups are every table fed from events, in the order the audit checks them.
var Rollups = []Rollup{
	{Table: "event_keys", Bucket: time.Minute, timeColumn: "occurred_at", count: "count()"},
	{Table: "overview_1s", Bucket: time.Minute, Labels: true, timeColumn: "t", count: "sumMerge(events)"},
	{Table: "overview_10s", Bucket: time.Minute, Labels: true, timeColumn: "t", count: "sumMerge(events)"},
	{Table: "overview_30s", Bucket: time.Minute, Labels: true, timeColumn: "t", count: "sumMerge(events)"},
	{Table: "overview_2m", Bucket: 2 * time.Minute, Labels: true, timeColumn: "t", count: "sumMerge(events)"},
	{Table: "overview_1m", Bucket: time.Minute, Labels: true, timeColumn: "t", count: "sumMerge(events)"},
	{Table: "overview_30m", Bucket: 30 * time.Minute, Labels: true, timeColumn: "t", count: "sumMerge(events)"},
	{Table: "overview_1h", Bucket: time.Hour, Labels: true, timeColumn: "t", count: "sumMerge(events)"},
	{Table: "detail_1m", Bucket: time.Minute, Labels: true, timeColumn: "t", count: "sumMerge(events)"},
	{Table: "detail_1h", Bucket: time.Hour, Labels: true, timeColumn: "t", count: "sumMerge(events)"},
	{Table: "touchpoint_1h", Bucket: time.Hour, Labels: true, timeColumn: "t", count: "sumMerge(events)"},
}

// Keep is how long the table keeps data, given the raw table's retention.
func (r Rollup) Keep(rawRetention time.Duration) time.Duration {
	for _, t := range retained {
		if t.table == r.Table {
			return t.keep(rawRetention)
		}
	}
	panic("store: no retention for " + r.Table)
}

// Bucket is one time bucket (its start, in Unix seconds) of one moment and channel; both are
// empty for a table without labels.
type Bucket struct {
	Start           int64
	Moment, Channel string
}

// Counts are events per bucket.
type Counts map[Bucket]uint64

// Range is the times from From (included) to To (excluded).
type Range struct{ From, To time.Time }

// timeCondition is ranges as a condition on column, merged where they touch.
func timeCondition(column string, ranges []Range) string {
	rs := append([]Range(nil), ranges...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].From.Before(rs[j].From) })
	var merged []Range
	for _, r := range rs {
		if n := len(merged); n > 0 && !r.From.After(merged[n-1].To) {
			if r.To.After(merged[n-1].To) {
				merged[n-1].To = r.To
			}
			continue
		}
		merged = append(merged, r)
	}
	if len(merged) == 0 {
		return "0"
	}
	conds := make([]string, len(merged))
	for i, r := range merged {
		conds[i] = "(" + column + " >= toDateTime(" + unix(r.From) + ") AND " + column + " < toDateTime(" + unix(r.To) + "))"
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// RawCounts counts the raw table's events per bucket of step, moment and channel.
func (s *Store) RawCounts(ctx context.Context, step time.Duration, ranges []Range) (_ Counts, err error) {
	defer markUnavailable(&err)
	return s.counts(ctx, "events", "occurred_at", "count()", step, true, ranges)
}

// RollupCounts counts the events a rollup holds per bucket of r.Bucket (and moment and
// channel, for a table with labels).
func (s *Store) RollupCounts(ctx context.Context, r Rollup, ranges []Range) (_ Counts, err error) {
	defer markUnavailable(&err)
	return s.counts(ctx, r.Table, r.timeColumn, r.count, r.Bucket, r.Labels, ranges)
}

func (s *Store) counts(ctx context.Context, table, column, count string, step time.Duration, labels bool, ranges []Range) (Counts, error) {
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	st := strconv.FormatInt(int64(step/time.Second), 10)
	bucket := "toUInt32(intDiv(toUInt32(" + column + "), " + st + ") * " + st + ")"
	sel, group := bucket+" AS b, '', ''", "b"
	if labels {
		sel, group = bucket+" AS b, toString(moment), toString(channel)", "b, moment, channel"
	}
	rows, err := conn.Query(ctx, "SELECT "+sel+", "+count+" FROM "+table+" WHERE "+timeCondition(column, ranges)+" GROUP BY "+group)
	if err != nil {
		return nil, fmt.Errorf("count %s per %v: %w", table, step, err)
	}
	defer rows.Close()
	out := Counts{}
	for rows.Next() {
		var (
			start uint32
			b     Bucket
			n     uint64
		)
		if err := rows.Scan(&start, &b.Moment, &b.Channel, &n); err != nil {
			return nil, fmt.Errorf("count %s: %w", table, err)
		}
		b.Start = int64(start)
		out[b] += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count %s: %w", table, err)
	}
	return out, nil
}

// DuplicateKeys returns the keys of raw rows stored more than once within ranges, at most
// limit of them.
func (s *Store) DuplicateKeys(ctx context.Context, ranges []Range, limit int) (_ []event.Key, err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, `SELECT event_id, toUInt32(occurred_at) AS at FROM events WHERE `+
		timeCondition("occurred_at", ranges)+` GROUP BY event_id, occurred_at HAVING count() > 1 LIMIT `+strconv.Itoa(limit))
	if err != nil {
		return nil, fmt.Errorf("look for events stored twice: %w", err)
	}
	defer rows.Close()
	var keys []event.Key
	for rows.Next() {
		var k event.Key
		var at uint32
		if err := rows.Scan(&k.EventID, &at); err != nil {
			return nil, fmt.Errorf("look for events stored twice: %w", err)
		}
		k.Second = int64(at)
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// removalChunk is the most keys one removal names: its condition is part of the query text,
// and a mutation's text is kept on the server's disk.
const removalChunk = 1000

// RemoveDuplicates leaves one copy of each raw row of keys and returns how many rows went.
// The rollups still count the removed copies (and the copy put back): rebuild the buckets of
// keys afterwards. It must not run on two servers at once (they would share events_repair).
func (s *Store) RemoveDuplicates(ctx context.Context, keys []event.Key) (removed uint64, err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return 0, err
	}
	// What a crash left in events_repair goes back first: step 3 puts back all it holds.
	if _, err := s.FinishRemoval(ctx); err != nil {
		return 0, err
	}
	cols := strings.Join(eventColumns, ", ")
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), removalChunk)]
		keys = keys[len(chunk):]
		cond, args := keysCondition(chunk)
		var before, after uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE "+cond, args...).Scan(&before); err != nil {
			return removed, fmt.Errorf("count duplicated events: %w", err)
		}
		// 1. One copy of each event the deletion will take (the condition may take more than
		// the duplicated keys: every row it takes is saved, so none is lost).
		if err := conn.Exec(ctx, "INSERT INTO events_repair ("+cols+") SELECT "+cols+" FROM events WHERE "+cond+
			" LIMIT 1 BY occurred_at, event_id", args...); err != nil {
			return removed, fmt.Errorf("save one copy of %d duplicated events: %w", len(chunk), err)
		}
		// 2. Delete every copy, 3. put the saved copy back at once: the mutation leaves rows
		// inserted after it alone, so the events are never missing.
		if err := conn.Exec(ctx, "ALTER TABLE "+s.ddlTable("events")+" DELETE WHERE "+cond, args...); err != nil {
			return removed, fmt.Errorf("delete duplicated events: %w", err)
		}
		if err := conn.Exec(ctx, "INSERT INTO events ("+cols+") SELECT "+cols+" FROM events_repair"); err != nil {
			return removed, fmt.Errorf("put back one copy of %d duplicated events (kept in events_repair; the next audit retries): %w", len(chunk), err)
		}
		if err := waitMutations(ctx, conn, s.database, s.partsTable("events")); err != nil {
			return removed, err
		}
		if err := conn.Exec(ctx, "TRUNCATE TABLE "+s.ddlTable("events_repair")); err != nil {
			return removed, fmt.Errorf("empty events_repair: %w", err)
		}
		if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE "+cond, args...).Scan(&after); err != nil {
			return removed, fmt.Errorf("count duplicated events: %w", err)
		}
		removed += before - min(before, after)
	}
	return removed, nil
}

// keysCondition selects the raw rows of keys: event ids bound as a set, seconds as numbers.
func keysCondition(keys []event.Key) (string, []any) {
	ids, seconds := make([]any, 0, len(keys)), make([]string, 0, len(keys))
	seen := map[int64]bool{}
	for _, k := range keys {
		ids = append(ids, k.EventID)
		if !seen[k.Second] {
			seen[k.Second] = true
			seconds = append(seconds, "toDateTime("+strconv.FormatInt(k.Second, 10)+")")
		}
	}
	return "occurred_at IN (" + strings.Join(seconds, ", ") + ") AND event_id IN ?", []any{clickhouse.GroupSet{Value: ids}}
}

// FinishRemoval completes a removal of duplicates that a crash interrupted: once the raw
// table's mutations are done, every row of events_repair whose event the raw table lacks is
// put back, and events_repair is emptied. It returns how many rows it put back.
func (s *Store) FinishRemoval(ctx context.Context) (restored uint64, err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return 0, err
	}
	var saved uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM events_repair").Scan(&saved); err != nil || saved == 0 {
		return 0, err
	}
	if err := waitMutations(ctx, conn, s.database, s.partsTable("events")); err != nil {
		return 0, err
	}
	cols := strings.Join(eventColumns, ", ")
	missing := "(occurred_at, event_id) NOT IN (SELECT occurred_at, event_id FROM events WHERE occurred_at IN (SELECT occurred_at FROM events_repair))"
	if err := conn.QueryRow(ctx, "SELECT count() FROM events_repair WHERE "+missing).Scan(&restored); err != nil {
		return 0, fmt.Errorf("look for events a removal left out: %w", err)
	}
	if restored > 0 {
		if err := conn.Exec(ctx, "INSERT INTO events ("+cols+") SELECT "+cols+" FROM events_repair WHERE "+missing+
			" LIMIT 1 BY occurred_at, event_id"); err != nil {
			return 0, fmt.Errorf("put back %d events a removal left out: %w", restored, err)
		}
	}
	if err := conn.Exec(ctx, "TRUNCATE TABLE "+s.ddlTable("events_repair")); err != nil {
		return restored, fmt.Errorf("empty events_repair: %w", err)
	}
	return restored, nil
}

// PendingMutations counts the unfinished mutations per table of the database. While a table
// has one, its counts are about to change: the audit leaves it for the next run.
func (s *Store) PendingMutations(ctx context.Context) (_ map[string]int, err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, "SELECT table, toUInt64(count()) FROM system.mutations WHERE database = ? AND is_done = 0 GROUP BY table", s.database)
	if err != nil {
		return nil, fmt.Errorf("list pending mutations: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var table string
		var n uint64
		if err := rows.Scan(&table, &n); err != nil {
			return nil, fmt.Errorf("list pending mutations: %w", err)
		}
		out[strings.TrimSuffix(table, localSuffix)] += int(n)
	}
	return out, rows.Err()
}

// RebuildRollup replaces the rows of r in ranges (whole buckets of r.Bucket) by what its
// materialized view makes of the raw rows of the same times: the view's own query, read from
// the migrations, so a rebuild and the view cannot disagree. It returns once the deletion of
// the old rows is done.
//
// Rows inserted by the view between the deletion and the rebuilt rows' read of the raw table
// are counted twice (the deletion keeps them, the rebuild counts them too): the next audit sees
// it and rebuilds again, which is why the audit repairs only buckets that stay unchanged while
// it looks.
func (s *Store) RebuildRollup(ctx context.Context, r Rollup, ranges []Range) (err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return err
	}
	if len(ranges) == 0 {
		return nil
	}
	rebuild, err := RebuildSQL(r, ranges)
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, "ALTER TABLE "+s.ddlTable(r.Table)+" DELETE WHERE "+timeCondition(r.timeColumn, ranges)); err != nil {
		return fmt.Errorf("delete the buckets of %s to rebuild: %w", r.Table, err)
	}
	if err := conn.Exec(ctx, rebuild); err != nil {
		return fmt.Errorf("rebuild the buckets of %s from events (the next audit retries): %w", r.Table, err)
	}
	return waitMutations(ctx, conn, s.database, s.partsTable(r.Table))
}

// DeleteBucketsSQL is the mutation that deletes r's rows of ranges, on one server.
func DeleteBucketsSQL(r Rollup, ranges []Range) string {
	return "ALTER TABLE " + r.Table + " DELETE WHERE " + timeCondition(r.timeColumn, ranges)
}

// RebuildSQL is the insert that rebuilds r's rows of ranges from the raw table.
func RebuildSQL(r Rollup, ranges []Range) (string, error) {
	views, err := viewQueries()
	if err != nil {
		return "", err
	}
	v, ok := views[r.Table]
	if !ok {
		return "", fmt.Errorf("rebuild %s: no materialized view feeds it in the migrations", r.Table)
	}
	query := v.query[:v.from] + " WHERE " + timeCondition("occurred_at", ranges) + v.query[v.from:]
	cols := strings.Join(v.columns, ", ")
	return "INSERT INTO " + r.Table + " (" + cols + ") SELECT " + cols + " FROM (" + query + ")", nil
}

// view is the query of a materialized view, where its WHERE goes (right after FROM events),
// and the names of its columns.
type view struct {
	query   string
	from    int
	columns []string
}

var (
	viewHeader = regexp.MustCompile(`(?s)^CREATE MATERIALIZED VIEW IF NOT EXISTS \w+ TO (\w+) AS\s+(SELECT\s.*)$`)
	fromEvents = regexp.MustCompile(`\bFROM events\b`)
	// A column of the view's SELECT: "expr AS name" or a bare column name, one per line or
	// comma-separated on one line.
	columnAlias = regexp.MustCompile(`(?:\bAS (\w+)|^(\w+))\s*$`)
)

// viewQueries reads the materialized views of the migrations, by target table; a later
// migration's view replaces an earlier one's.
var viewQueries = sync.OnceValues(func() (map[string]view, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	out := map[string]view{}
	for _, m := range ms {
		for _, stmt := range m.Statements {
			match := viewHeader.FindStringSubmatch(stmt)
			if match == nil {
				continue
			}
			table, query := match[1], match[2]
			loc := fromEvents.FindAllStringIndex(query, -1)
			if len(loc) != 1 {
				return nil, fmt.Errorf("migration %04d_%s: the view into %s must read FROM events once", m.Version, m.Name, table)
			}
			v := view{query: query, from: loc[0][1]}
			for _, part := range splitColumns(strings.TrimPrefix(query[:loc[0][0]], "SELECT")) {
				c := columnAlias.FindStringSubmatch(strings.TrimSpace(part))
				if c == nil {
					return nil, fmt.Errorf("migration %04d_%s: the view into %s: name the column %q with AS", m.Version, m.Name, table, part)
				}
				v.columns = append(v.columns, c[1]+c[2])
			}
			out[table] = v
		}
	}
	return out, nil
})

// splitColumns splits a SELECT list at its top-level commas.
func splitColumns(list string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range list {
		switch c {
		case '(', '[':
			depth++
		case ')', ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, list[start:i])
				start = i + 1
			}
		}
	}
	return append(out, list[start:])
}

// waitMutations returns once table has no unfinished mutation.
func waitMutations(ctx context.Context, conn driver.Conn, database, table string) error {
	for {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND table = ? AND is_done = 0", database, table).Scan(&n); err != nil {
			return fmt.Errorf("wait for the mutations of %s: %w", table, err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d mutations of %s still running: %w", n, table, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
