package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// compatDay is the hours of compat insert A's events (10:59:30 onwards, 2026-03-02).
var compatDay = []store.Range{{From: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 2, 13, 0, 0, 0, time.UTC)}}

// TestRollupsAreEveryView checks that the audit knows every table a materialized view feeds,
// so a new rollup cannot be left out of it, and that each can be rebuilt.
func TestRollupsAreEveryView(t *testing.T) {
	targets, err := store.ViewTargets()
	if err != nil {
		t.Fatal(err)
	}
	var audited []string
	for _, r := range store.Rollups {
		audited = append(audited, r.Table)
		if _, err := store.RebuildSQL(r, compatDay); err != nil {
			t.Errorf("rebuild %s: %v", r.Table, err)
		}
	}
	slices.Sort(targets)
	slices.Sort(audited)
	if !slices.Equal(targets, audited) {
		t.Errorf("the migrations' views feed %v, the audit checks %v", targets, audited)
	}
}

// TestRepairs damages a database as a crash in mid-insert does (raw rows and some rollups
// twice), then checks each primitive of the audit against the damage: counts, duplicate
// keys, their removal, the rebuild of every rollup, and the completion of a removal that a
// crash interrupted.
func TestRepairs(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	exec := func(sql string) {
		t.Helper()
		if err := db.Conn().Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(compatInsertA("a", 700))
	// The crash: 70 events inserted again, their rows reaching the raw table, the detail
	// rollups and event_keys but not the overviews (whose rows are taken away again).
	exec("INSERT INTO events SELECT * FROM events WHERE event_id LIKE 'compat-a-%' AND toUInt32(substring(event_id, 10)) % 10 = 3")
	exec("ALTER TABLE overview_1s DELETE WHERE t >= toDateTime('2026-03-02 11:00:00') AND t < toDateTime('2026-03-02 11:01:00')")
	waitMutations(t, db)

	raw, err := db.RawCounts(ctx, time.Minute, compatDay)
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, n := range raw {
		total += n
	}
	if total != 770 {
		t.Errorf("raw counts add up to %d, want 770", total)
	}
	keys, err := db.DuplicateKeys(ctx, compatDay, 1000)
	if err != nil || len(keys) != 70 {
		t.Fatalf("duplicate keys: %d, %v; want 70", len(keys), err)
	}
	removed, err := db.RemoveDuplicates(ctx, keys)
	if err != nil || removed != 70 {
		t.Fatalf("remove duplicates: %d removed, %v; want 70", removed, err)
	}
	for id, n := range storetest.StoredIDs(t, db) {
		if n != 1 {
			t.Errorf("%s stored %d times after the removal", id, n)
		}
	}
	if diffs, _ := storetest.RollupDifferences(ctx, db); len(diffs) == 0 {
		t.Fatal("the rollups agree before any rebuild: the test damaged nothing")
	}
	for _, r := range store.Rollups {
		if err := db.RebuildRollup(ctx, r, compatDay); err != nil {
			t.Fatalf("rebuild %s: %v", r.Table, err)
		}
		got, err := db.RollupCounts(ctx, r, compatDay)
		if err != nil {
			t.Fatal(err)
		}
		var sum uint64
		for _, n := range got {
			sum += n
		}
		if sum != 700 {
			t.Errorf("%s counts %d events after its rebuild, want 700", r.Table, sum)
		}
	}
	storetest.AssertRollupsAgree(t, db)

	// A removal cut off between its deletion and its putting back: the saved copies are in
	// events_repair, the raw rows gone. The next removal (or audit) puts them back, once.
	exec("INSERT INTO events_repair SELECT * FROM events WHERE event_id IN ('compat-a-1', 'compat-a-2')")
	exec("ALTER TABLE events DELETE WHERE event_id IN ('compat-a-1', 'compat-a-2', 'compat-a-5')")
	waitMutations(t, db)
	restored, err := db.FinishRemoval(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := storetest.StoredIDs(t, db)
	if restored != 2 || ids["compat-a-1"] != 1 || ids["compat-a-2"] != 1 || len(ids) != 699 {
		t.Errorf("finish removal: %d restored, compat-a-1 ×%d, compat-a-2 ×%d, %d ids; want 2 restored, each once, 699 ids (compat-a-5 was deleted without a saved copy)",
			restored, ids["compat-a-1"], ids["compat-a-2"], len(ids))
	}
	if again, err := db.FinishRemoval(ctx); err != nil || again != 0 {
		t.Errorf("a second finish: %d restored, %v; want nothing to do", again, err)
	}
}

func waitMutations(t *testing.T, db *store.Store) {
	t.Helper()
	for {
		pending, err := db.PendingMutations(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRepairsOnModernClickHouse runs the audit's repairs on modern ClickHouse: the removal of
// duplicates (saved copy, deletion, putting back) and each rollup's rebuild, then checks that
// every rollup counts the raw table's events.
func TestRepairsOnModernClickHouse(t *testing.T) {
	// chdb runs a mutation in the background like any server; the check waits for each, which
	// the audit does by polling system.mutations.
	wait := " SETTINGS mutations_sync = 2"
	statements := append(MigrationStatements(t), compatInsertA("a", 700),
		"INSERT INTO events SELECT * FROM events WHERE toUInt32(substring(event_id, 10)) % 10 = 3",
		// the removal of duplicates, as RemoveDuplicates runs it
		"INSERT INTO events_repair SELECT * FROM events WHERE toUInt32(substring(event_id, 10)) % 10 = 3 LIMIT 1 BY occurred_at, event_id",
		"ALTER TABLE events DELETE WHERE toUInt32(substring(event_id, 10)) % 10 = 3"+wait,
		"INSERT INTO events SELECT * FROM events_repair WHERE (occurred_at, event_id) NOT IN (SELECT occurred_at, event_id FROM events WHERE occurred_at IN (SELECT occurred_at FROM events_repair)) LIMIT 1 BY occurred_at, event_id",
		"TRUNCATE TABLE events_repair",
	)
	var queries []string
	for _, r := range store.Rollups {
		rebuild, err := store.RebuildSQL(r, compatDay)
		if err != nil {
			t.Fatal(err)
		}
		statements = append(statements, store.DeleteBucketsSQL(r, compatDay)+wait, rebuild)
		count := "sumMerge(events)"
		if r.Table == "event_keys" {
			count = "count()"
		}
		queries = append(queries, "SELECT toUInt64("+count+") AS n FROM "+r.Table)
	}
	queries = append(queries, "SELECT count() AS n, uniqExact(event_id) AS ids FROM events")
	rep := RunOnModernClickHouse(t, statements, queries)
	for _, q := range rep.Queries {
		if len(q.Rows) != 1 || string(q.Rows[0]["n"]) != `"700"` {
			t.Errorf("%s on modern ClickHouse: %v, want 700", q.SQL, q.Rows)
		}
	}
}
