package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// TestCoarseOverviewsAnswerLikeTheFineOnes checks the rollups of migrations 0012, 0013 and 0016
// on ClickHouse 18.16: overview_10s, overview_30s, overview_2m and overview_30m count, per time
// step, moment and channel, what the raw table holds, and a window they answer gives every
// figure (counts, sums and the wait histogram, current and previous period, trend buckets)
// exactly as a finer table (the one that answered it before) over the same interval.
func TestCoarseOverviewsAnswerLikeTheFineOnes(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 10, 10, 30, 0, 0, time.UTC)
	moments := []string{"fmot", "service", "tmot"}
	channels := []string{"web", "voice", "chat", "email"}
	// Events every 7 s over the last 2 h and the same 20 minutes a week earlier, every 3 min 7 s
	// over the 2 days before, with answers, waits and outcomes that turn at different paces, so
	// that every step of every table has events of several cells and values.
	var evs []event.Event
	add := func(at time.Time) {
		i := len(evs)
		e := event.Event{EventID: fmt.Sprintf("e%d", i), OccurredAt: at, Moment: moments[i%len(moments)],
			Channel: channels[i/2%len(channels)], Touchpoint: "checkout", JourneyID: fmt.Sprintf("j%d", i%97)}
		csat, nps, wait := uint8(1+i%5), uint8(i%11), uint32(i*37%90_000)
		e.CSAT, e.NPS = &csat, &nps
		if i%3 != 0 {
			e.WaitMS = &wait
		}
		if i%4 == 0 {
			e.Outcome = "abandoned"
		}
		evs = append(evs, e)
	}
	for at := now.Add(-rollup.Week - 20*time.Minute); at.Before(now.Add(-rollup.Week)); at = at.Add(7 * time.Second) {
		add(at)
	}
	for at := now.Add(-50 * time.Hour); at.Before(now.Add(-2 * time.Hour)); at = at.Add(187 * time.Second) {
		add(at)
	}
	for at := now.Add(-2 * time.Hour); at.Before(now); at = at.Add(7 * time.Second) {
		add(at)
	}
	if err := db.InsertEvents(ctx, evs, now); err != nil {
		t.Fatal(err)
	}
	storetest.AssertRollupsAgree(t, db) // every rollup table against the raw one, step by step

	for _, tc := range []struct {
		query, table, before string
		step                 time.Duration // of the table before
	}{
		{"window=5m&compare=previous&by=moment,channel", "overview_10s", "overview_1s", time.Second},
		{"window=5m&by=moment&series=true", "overview_10s", "overview_1s", time.Second},
		{"window=15m&compare=previous", "overview_30s", "overview_10s", 10 * time.Second},
		{"window=15m&compare=previous&by=moment,channel", "overview_30s", "overview_1s", time.Second},
		{"window=15m&by=moment&series=true", "overview_30s", "overview_10s", 10 * time.Second},
		{"window=15m&compare=last_week&by=channel", "overview_30s", "overview_1m", time.Minute},
		{"window=1h&compare=previous&by=moment,channel", "overview_2m", "overview_1m", time.Minute},
		{"window=1h&by=moment&series=true", "overview_2m", "overview_1m", time.Minute},
		{"window=1h&compare=last_week", "overview_2m", "overview_1m", time.Minute},
		{"window=24h&compare=previous&by=moment,channel", "overview_30m", "overview_1m", time.Minute},
		{"window=24h&by=moment&series=true", "overview_30m", "overview_1m", time.Minute},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q := parse(t, tc.query)
			compared := 0
			for _, at := range []time.Time{now.Add(-5 * time.Second), now.Add(-30*time.Minute - 5*time.Second), now.Add(-time.Hour - 20*time.Second), now.Add(-3 * time.Minute)} {
				p := q.Plan(at)
				if !p.From.Truncate(tc.step).Equal(p.From) || !p.To.Truncate(tc.step).Equal(p.To) {
					continue // the table before cannot cut this interval
				}
				compared++
				if p.Table != tc.table {
					t.Fatalf("the window reads %s, want %s", p.Table, tc.table)
				}
				got, err := db.Rollup(ctx, q, p)
				if err != nil {
					t.Fatal(err)
				}
				before := p
				before.Table = tc.before
				want, err := db.Rollup(ctx, q, before)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) == 0 {
					t.Fatalf("at %v: no groups", at)
				}
				if g, w := groupText(got), groupText(want); g != w {
					t.Errorf("at %v, %s answers\n%s\n%s answers\n%s", at, tc.table, g, tc.before, w)
				}
			}
			if compared < 2 {
				t.Fatalf("%d instants compared, want at least 2", compared)
			}
		})
	}
}

// groupText is the groups of an answer as sorted text, every count and wait bucket included;
// Newest, the start of the latest step with events, depends on the resolution and is left out.
func groupText(groups []rollup.Group) string {
	lines := make([]string, len(groups))
	for i, g := range groups {
		g.Newest = time.Time{}
		lines[i] = fmt.Sprintf("%+v", g)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
