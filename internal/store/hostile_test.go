package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// hostileValues are filter values that would change a query spliced into SQL as text: quotes
// and escapes, comment and statement syntax, the placeholders of the driver and of ClickHouse,
// LIKE wildcards, control characters and NUL (which ParseQuery refuses, but the store must not
// rely on that).
var hostileValues = []string{
	`' OR 1=1 --`, `\' OR 1=1 --`, `north') OR ('1'='1`, `x'); DROP TABLE events; --`,
	`'`, `''`, `\`, `\\'`, `?`, `\?`, `$1`, `@p`, `{region:String}`, `/* */`, `--`, `%`, `_`,
	"tab\there", "line\nbreak", "a\x00b", `é"ü`, "\u2028",
}

// TestFilterValuesAreBound checks every query builder two ways: the SQL text does not change
// with the filter values (they travel as arguments only), and ClickHouse answers a filter on
// each hostile value with exactly the events that carry it, no SQL error and nothing more.
func TestFilterValuesAreBound(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	at := now.Add(-time.Minute)
	one := uint8(1)
	var evs []event.Event
	for i, v := range append([]string{"north"}, hostileValues...) {
		// Every event is a negative moment of a journey, so that the negatives and the
		// recovery queries find it too.
		evs = append(evs, event.Event{EventID: fmt.Sprintf("h%d", i), OccurredAt: at, Moment: "service", Channel: "voice",
			Touchpoint: v, Region: v, CSAT: &one, JourneyID: fmt.Sprintf("j%d", i)})
	}
	for _, v := range hostileValues {
		for _, f := range []func(*rollup.Filters) *[]string{
			func(f *rollup.Filters) *[]string { return &f.Region },
			func(f *rollup.Filters) *[]string { return &f.Touchpoint },
		} {
			var hostile, neutral rollup.Query
			*f(&hostile.Filters), *f(&neutral.Filters) = []string{v}, []string{"north"}
			hostile.Window, neutral.Window = time.Hour, time.Hour
			p := hostile.Plan(now)
			for name, sql := range map[string]func(rollup.Query) string{
				"RollupSQL":          func(q rollup.Query) string { s, _ := store.RollupSQL(q, p); return s },
				"RecoverySQL":        func(q rollup.Query) string { s, _ := store.RecoverySQL(q, p, now); return s },
				"LatestNegativesSQL": func(q rollup.Query) string { s, _ := store.LatestNegativesSQL(q, p, 0); return s },
			} {
				if got, want := sql(hostile), sql(neutral); got != want {
					t.Errorf("%s with the value %q:\n%s\nwith a plain value:\n%s", name, v, got, want)
				}
			}
		}
	}

	s := storetest.Open(t)
	ctx := context.Background()
	if err := s.InsertEvents(ctx, evs, at); err != nil {
		t.Fatal(err)
	}
	for i, v := range append([]string{"north"}, hostileValues...) {
		want := fmt.Sprintf("h%d", i)
		for _, param := range []string{"region", "touchpoint"} {
			t.Run(fmt.Sprintf("%s=%q", param, v), func(t *testing.T) {
				q := rollup.Query{Window: time.Hour, WindowName: "1h", By: []string{"touchpoint"}}
				*q.Filters.Field(param) = []string{v}
				p := q.Plan(now)
				groups, err := s.Rollup(ctx, q, p)
				if err != nil {
					t.Fatalf("Rollup: %v", err)
				}
				if len(groups) != 1 || groups[0].Touchpoint != v || groups[0].Events != 1 {
					t.Errorf("Rollup: %+v, want one group of 1 event with touchpoint %q", groups, v)
				}
				negs, err := s.LatestNegatives(ctx, q, p, 0)
				if err != nil {
					t.Fatalf("LatestNegatives: %v", err)
				}
				if len(negs) != 1 || negs[0].EventID != want {
					t.Errorf("LatestNegatives: %+v, want only %s", negs, want)
				}
				rec, err := s.Recovery(ctx, q, p, now)
				if err != nil {
					t.Fatalf("Recovery: %v", err)
				}
				if len(rec) != 1 || rec[0].Touchpoint != v || rec[0].Recovered+rec[0].Lost+rec[0].Pending != 1 {
					t.Errorf("Recovery: %+v, want one negative moment with touchpoint %q", rec, v)
				}
			})
		}
	}
	if n, err := s.CountEvents(ctx); err != nil || n != uint64(len(evs)) {
		t.Fatalf("%d events after the queries (%v), want the %d inserted", n, err, len(evs))
	}
}
