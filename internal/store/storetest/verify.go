package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/truthboard/truthboard/internal/store"
)

// StoredIDs counts the raw rows per event_id.
func StoredIDs(t testing.TB, db *store.Store) map[string]int {
	t.Helper()
	rows, err := db.Conn().Query(context.Background(), "SELECT event_id, count() FROM events GROUP BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		got[id] = int(n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// AssertStoredOnce checks that the raw table holds exactly the events want, each once, and
// that the per-second rollup counts the same events per moment and channel: a duplicate that
// reached the rollups would show there even if the raw table were deduplicated later.
func AssertStoredOnce(t testing.TB, db *store.Store, want []string) {
	t.Helper()
	AssertStoredOnceWithin(t, db, want, nil)
}

// AssertStoredOnceWithin is AssertStoredOnce where the events of maybe may be stored (once)
// or not: a request sent as a crash happened, whose answer never came.
func AssertStoredOnceWithin(t testing.TB, db *store.Store, want []string, maybe map[string]bool) {
	t.Helper()
	got := StoredIDs(t, db)
	var missing, twice, extra []string
	wantSet := make(map[string]bool, len(want))
	for _, id := range want {
		if wantSet[id] {
			t.Fatalf("test bug: %s listed twice", id)
		}
		wantSet[id] = true
		if got[id] == 0 {
			missing = append(missing, id)
		}
	}
	total := 0
	for id, n := range got {
		total += n
		if n > 1 {
			twice = append(twice, fmt.Sprintf("%s×%d", id, n))
		}
		if !wantSet[id] && !maybe[id] {
			extra = append(extra, id)
		}
	}
	if len(missing)+len(twice)+len(extra) > 0 {
		slices.Sort(missing)
		slices.Sort(twice)
		slices.Sort(extra)
		t.Fatalf("raw table: %d ids stored, want %d: missing %v, stored more than once %v, never sent %v",
			len(got), len(want), head(missing), head(twice), head(extra))
	}
	raw := countsBy(t, db, "SELECT toString(moment), toString(channel), count() FROM events GROUP BY moment, channel")
	rolled := countsBy(t, db, "SELECT toString(moment), toString(channel), sumMerge(events) FROM overview_1s GROUP BY moment, channel")
	var rawTotal uint64
	for k, n := range raw {
		rawTotal += n
		if rolled[k] != n {
			t.Errorf("overview_1s counts %d events for %s, the raw table %d", rolled[k], k, n)
		}
	}
	for k, n := range rolled {
		if _, ok := raw[k]; !ok {
			t.Errorf("overview_1s counts %d events for %s, the raw table none", n, k)
		}
	}
	if rawTotal != uint64(total) {
		t.Errorf("raw table holds %d rows, counted %d by event_id", rawTotal, total)
	}
}

// countsBy runs a query of (moment, channel, n) rows.
func countsBy(t testing.TB, db *store.Store, query string) map[string]uint64 {
	t.Helper()
	rows, err := db.Conn().Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]uint64{}
	for rows.Next() {
		var moment, channel string
		var n uint64
		if err := rows.Scan(&moment, &channel, &n); err != nil {
			t.Fatal(err)
		}
		got[moment+"/"+channel] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func head(s []string) []string {
	if len(s) > 10 {
		return append(s[:10:10], fmt.Sprintf("… (%d in all)", len(s)))
	}
	return s
}

// rollupChecks are the rollup tables with their time step, and the raw query of the same
// figures: a test's own statement of what each rollup must hold, independent of the code that
// audits them.
var rollupChecks = []struct{ table, step string }{
	{"overview_1s", "1"}, {"overview_10s", "10"}, {"overview_30s", "30"}, {"overview_2m", "120"}, {"overview_1m", "60"}, {"overview_30m", "1800"}, {"overview_1h", "3600"}, {"detail_1m", "60"}, {"detail_1h", "3600"}, {"touchpoint_1h", "3600"},
}

// RollupDifferences compares every rollup table with the raw table, per time step, moment and
// channel, on the events, CSAT responses, negative moments and wait times they count, and
// event_keys with the raw table's keys. It returns one line per difference (at most 10 per
// table), none when everything agrees.
func RollupDifferences(ctx context.Context, db *store.Store) ([]string, error) {
	var diffs []string
	for _, c := range rollupChecks {
		bucket := "toUInt32(intDiv(toUInt32(%s), " + c.step + ") * " + c.step + ")"
		raw, err := figures(ctx, db, "SELECT "+fmt.Sprintf(bucket, "occurred_at")+` AS b, toString(moment), toString(channel),
			count(), countIf(isNotNull(csat)), sum(toUInt64(negative)), countIf(isNotNull(wait_ms))
			FROM events GROUP BY b, moment, channel`)
		if err != nil {
			return nil, err
		}
		rolled, err := figures(ctx, db, "SELECT "+fmt.Sprintf(bucket, "t")+` AS b, toString(moment), toString(channel),
			sumMerge(events), sumMerge(csat_n), sumMerge(negative), sumMerge(wait_n)
			FROM `+c.table+` GROUP BY b, moment, channel`)
		if err != nil {
			return nil, err
		}
		diffs = append(diffs, compareFigures(c.table, raw, rolled)...)
	}
	keys := func(table string) (map[string][4]uint64, error) {
		return figures(ctx, db, `SELECT toUInt32(occurred_at), event_id, '', count(), toUInt64(0), toUInt64(0), toUInt64(0) FROM `+table+` GROUP BY occurred_at, event_id`)
	}
	raw, err := keys("events")
	if err != nil {
		return nil, err
	}
	stored, err := keys("event_keys")
	if err != nil {
		return nil, err
	}
	return append(diffs, compareFigures("event_keys", raw, stored)...), nil
}

// AssertRollupsAgree fails t with the differences RollupDifferences finds.
func AssertRollupsAgree(t testing.TB, db *store.Store) {
	t.Helper()
	diffs, err := RollupDifferences(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Fatalf("the rollups disagree with the raw table:\n%s", strings.Join(diffs, "\n"))
	}
}

// figures runs a query of (bucket, two labels, four counts) rows into a map by bucket/labels.
func figures(ctx context.Context, db *store.Store, query string) (map[string][4]uint64, error) {
	rows, err := db.Conn().Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	defer rows.Close()
	out := map[string][4]uint64{}
	for rows.Next() {
		var (
			b    uint32
			l, m string
			f    [4]uint64
		)
		if err := rows.Scan(&b, &l, &m, &f[0], &f[1], &f[2], &f[3]); err != nil {
			return nil, fmt.Errorf("%s: %w", query, err)
		}
		out[fmt.Sprintf("%d/%s/%s", b, l, m)] = f
	}
	return out, rows.Err()
}

func compareFigures(table string, raw, rolled map[string][4]uint64) []string {
	var diffs []string
	for k, want := range raw {
		if got := rolled[k]; got != want {
			diffs = append(diffs, fmt.Sprintf("%s %s: %v, raw %v", table, k, got, want))
		}
	}
	for k, got := range rolled {
		if _, ok := raw[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s %s: %v, raw none", table, k, got))
		}
	}
	slices.Sort(diffs)
	return head(diffs)
}
