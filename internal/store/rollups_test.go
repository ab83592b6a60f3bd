package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// TestRollupComparisons reads every table of the long windows and every shape of comparison
// (the window just before; last week, after a gap or overlapping a 30-day window) on ClickHouse
// 18.16, and checks the events counted per group, period and trend bucket against the events
// inserted, counted here by their times. RollupEach must yield the same groups as Rollup, sorted
// by key.
func TestRollupComparisons(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 10, 10, 17, 42, 0, time.UTC)
	touchpoints := []string{"checkout", "=HYPERLINK()", "delivery_call"}
	channels := []string{"web", "voice", "chat"}
	// One event every 37 minutes over 40 days, touchpoint and channel turning at different
	// paces so that every group has events in every period.
	var evs []event.Event
	for i, at := 0, now.Add(-40*24*time.Hour); at.Before(now); i, at = i+1, at.Add(37*time.Minute) {
		evs = append(evs, event.Event{EventID: fmt.Sprintf("e%d", i), OccurredAt: at, Moment: "service",
			Channel: channels[i%len(channels)], Touchpoint: touchpoints[i/2%len(touchpoints)]})
	}
	if err := db.InsertEvents(ctx, evs, now); err != nil {
		t.Fatal(err)
	}
	count := func(from, to time.Time, keep func(e *event.Event) bool) uint64 {
		var n uint64
		for i := range evs {
			if e := &evs[i]; !e.OccurredAt.Before(from) && e.OccurredAt.Before(to) && keep(e) {
				n++
			}
		}
		return n
	}

	for _, query := range []string{
		"window=1h&compare=previous&by=channel",
		"window=15m&compare=last_week&by=channel&series=true",
		"window=24h&compare=last_week&by=touchpoint",
		"window=7d&compare=previous&by=channel&series=true",
		"window=7d&compare=last_week&by=touchpoint",
		"window=30d&compare=last_week&by=channel&series=true",
		"window=30d&compare=last_week&by=touchpoint&region=",
		"window=30d&compare=previous&by=channel,touchpoint",
	} {
		t.Run(query, func(t *testing.T) {
			q := parse(t, query)
			p := q.Plan(now)
			groups, err := db.Rollup(ctx, q, p)
			if err != nil {
				t.Fatal(err)
			}
			var each []rollup.Group
			for g, err := range db.RollupEach(ctx, q, p) {
				if err != nil {
					t.Fatal(err)
				}
				each = append(each, *g)
			}
			// In pages of a few keys each, the same groups in the same order.
			restore := store.SetPageGroups(7)
			var paged []rollup.Group
			for g, err := range db.RollupEach(ctx, q, p) {
				if err != nil {
					t.Fatal(err)
				}
				paged = append(paged, *g)
			}
			restore()
			// The groups of one key come together, keys in the answer's order, the groups of a
			// key in no particular order of period and bucket: compare them in that order.
			first := map[rollup.RowKey]int{}
			for i, g := range each {
				if _, ok := first[g.Key()]; !ok {
					first[g.Key()] = i
				}
			}
			canonical := func(gs []rollup.Group) {
				slices.SortStableFunc(gs, func(a, b rollup.Group) int {
					if c := first[a.Key()] - first[b.Key()]; c != 0 {
						return c
					}
					if a.Previous != b.Previous {
						return map[bool]int{true: 1, false: -1}[a.Previous]
					}
					return a.Bucket.Compare(b.Bucket)
				})
			}
			canonical(paged)
			canonical(each)
			if !slices.EqualFunc(paged, each, func(a, b rollup.Group) bool {
				return a.Key() == b.Key() && a.Previous == b.Previous && a.Bucket.Equal(b.Bucket) && a.Counts == b.Counts
			}) {
				t.Errorf("RollupEach in pages of 7 groups yielded %d groups, unlike the %d of one page", len(paged), len(each))
			}
			if len(each) != len(groups) {
				t.Fatalf("RollupEach yielded %d groups, Rollup %d", len(each), len(groups))
			}
			for i := 1; i < len(each); i++ {
				a, b := each[i-1], each[i]
				if k, l := []string{a.Moment, a.Channel, a.Touchpoint}, []string{b.Moment, b.Channel, b.Touchpoint}; slices.Compare(rank(k), rank(l)) > 0 {
					t.Fatalf("RollupEach: group %v before %v, want them sorted by key", k, l)
				}
			}
			var total uint64
			for _, g := range groups {
				from, to := p.From, p.To
				if g.Previous {
					from, to = p.PrevFrom, p.PrevTo
				}
				if q.Step > 0 && !g.Previous { // the bucket's part of the window
					if g.Bucket.After(from) {
						from = g.Bucket
					}
					if end := g.Bucket.Add(q.Step); end.Before(to) {
						to = end
					}
				}
				want := count(from, to, func(e *event.Event) bool {
					return (g.Channel == "" || e.Channel == g.Channel) && (g.Touchpoint == "" || e.Touchpoint == g.Touchpoint)
				})
				if g.Events != want || want == 0 {
					t.Errorf("%s %s previous=%v bucket %v: %d events, the inserted events in [%v, %v) are %d",
						g.Channel, g.Touchpoint, g.Previous, g.Bucket, g.Events, from, to, want)
				}
				total += g.Events
			}
			all := func(*event.Event) bool { return true }
			if want := count(p.From, p.To, all) + count(p.PrevFrom, p.PrevTo, all); total != want {
				t.Errorf("the groups count %d events, both periods hold %d", total, want)
			}
		})
	}
}

// rank orders keys as the API does: moment and channel in vocabulary order, then touchpoint.
func rank(k []string) []string {
	return []string{fmt.Sprintf("%02d", slices.Index(event.Moments, k[0])), fmt.Sprintf("%02d", slices.Index(event.Channels, k[1])), k[2]}
}

func parse(t *testing.T, query string) rollup.Query {
	t.Helper()
	v, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	q, err := rollup.ParseQuery(v)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestRollupReadsAtMostMaxGroups: a query of more groups than Rollup reads at once gets an error
// saying so (the HTTP edge answers it 400, naming by), not an answer cut short.
func TestRollupReadsAtMostMaxGroups(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 10, 10, 17, 42, 0, time.UTC)
	var evs []event.Event
	for i := range 6 {
		evs = append(evs, event.Event{EventID: fmt.Sprintf("m%d", i), OccurredAt: now.Add(-time.Duration(i) * time.Minute),
			Moment: "service", Channel: "voice", Touchpoint: fmt.Sprintf("tp%d", i)})
	}
	if err := db.InsertEvents(ctx, evs, now); err != nil {
		t.Fatal(err)
	}
	q := parse(t, "window=1h&by=touchpoint")
	defer store.SetMaxGroups(6)()
	if groups, err := db.Rollup(ctx, q, q.Plan(now)); err != nil || len(groups) != 6 {
		t.Fatalf("6 groups with a limit of 6: %d groups, %v", len(groups), err)
	}
	store.SetMaxGroups(5)
	groups, err := db.Rollup(ctx, q, q.Plan(now))
	var many *store.TooManyGroupsError
	if !errors.As(err, &many) || many.GroupLimit() != 5 || groups != nil {
		t.Fatalf("6 groups with a limit of 5: %d groups, %v; want a TooManyGroupsError of 5", len(groups), err)
	}
}
