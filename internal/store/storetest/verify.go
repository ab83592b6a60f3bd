package storetest

import (
	"context"
	"fmt"
	"slices"
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
