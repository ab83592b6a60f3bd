package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// A rollup a later migration added to a database that already held events lacks the events
// stored before it (its view fills it from then on): a window reaching further back reads the
// finer table that answers in its place, so the figures stay whole; a window within the new
// table's time reads the new table.
func TestLaterRollupAnswersOnlyWhereItIsComplete(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	// An event every hour for 20 days, all of them stored before the "upgrade".
	var evs []event.Event
	for i, at := 0, now.Add(-20*24*time.Hour); at.Before(now.Add(-time.Hour)); i, at = i+1, at.Add(time.Hour) {
		evs = append(evs, event.Event{EventID: fmt.Sprintf("e%d", i), OccurredAt: at, Moment: "service",
			Channel: "voice", Touchpoint: "billing_call", Region: []string{"north", "south"}[i%2]})
	}
	if err := db.InsertEvents(ctx, evs, now); err != nil {
		t.Fatal(err)
	}
	// The upgrade: touchpoint_1h made now, empty, on a database whose first migration ran 40
	// days ago; then one event three hours later, which the new table gets.
	for _, stmt := range []string{
		"TRUNCATE TABLE touchpoint_1h",
		"INSERT INTO schema_migrations (version, name, applied_at) SELECT 1, 'first', now() - 40 * 86400",
	} {
		if err := db.Conn().Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	late := event.Event{EventID: "after", OccurredAt: now.Add(3 * time.Hour).Truncate(time.Second), Moment: "service",
		Channel: "voice", Touchpoint: "billing_call", Region: "north"}
	if err := db.InsertEvents(ctx, []event.Event{late}, now); err != nil {
		t.Fatal(err)
	}
	o := storetest.Options(t)
	o.Database = db.Database()
	upgraded, err := store.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer upgraded.Close()

	count := func(s *store.Store, query string, at time.Time) (uint64, string) {
		t.Helper()
		q := parse(t, query)
		p := q.Plan(at)
		groups, err := s.Rollup(ctx, q, p)
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, g := range groups {
			if !g.Previous {
				n += g.Events
			}
		}
		return n, p.Table
	}
	const month = "window=30d&by=region&touchpoint=billing_call"
	if n, table := count(upgraded, month, now); n != uint64(len(evs)) {
		t.Errorf("30 days of a touchpoint's regions after the upgrade: %d events, want %d (the plan names %s, which lacks the older ones)", n, len(evs), table)
	}
	// A day that starts after the upgrade reads the new table: with the finer one emptied, it
	// still counts the event stored since.
	if err := db.Conn().Exec(ctx, "TRUNCATE TABLE detail_1h"); err != nil {
		t.Fatal(err)
	}
	if n, _ := count(upgraded, "window=24h&by=region&touchpoint=billing_call", now.Add(26*time.Hour)); n != 1 {
		t.Errorf("a day after the upgrade: %d events, want the 1 stored since, from touchpoint_1h", n)
	}
}
