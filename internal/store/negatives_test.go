package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// TestLatestNegatives lists hand-made events: only negative moments of the window that pass
// the filters, newest first to the millisecond, at most the limit, with their reasons.
func TestLatestNegatives(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	from := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	p := rollup.Plan{From: from, To: from.Add(time.Hour)}
	f := func(v float64) *float64 { return &v }
	w := func(v uint32) *uint32 { return &v }
	at := func(d time.Duration) time.Time { return from.Add(d) }
	evs := []event.Event{
		// Negative, in the window.
		{EventID: "csat", OccurredAt: at(10*time.Minute + 250*time.Millisecond), Moment: "service", Channel: "voice",
			Touchpoint: "billing_call", CSAT: u8(2), NPS: u8(8), WaitMS: w(95_000), Region: "north", Segment: "smb",
			AgentTeam: "tier 1", JourneyID: "j1", Product: "mobile"},
		{EventID: "same-second-later", OccurredAt: at(10*time.Minute + 900*time.Millisecond), Moment: "service", Channel: "chat",
			Touchpoint: "chat_session", Outcome: "abandoned", Sentiment: f(-0.5), Region: "south"},
		{EventID: "nps", OccurredAt: at(30 * time.Minute), Moment: "fmot", Channel: "web", Touchpoint: "checkout",
			NPS: u8(3), CES: u8(2), Region: "north"},
		{EventID: "first-second", OccurredAt: at(0), Moment: "zmot", Channel: "web", Touchpoint: "search",
			Outcome: "failed", Region: "it's"},
		{EventID: "last-ms", OccurredAt: at(time.Hour - time.Millisecond), Moment: "service", Channel: "voice",
			Touchpoint: "billing_call", Outcome: "unresolved", Region: "north", AgentTeam: "tier 2"},
		// Not negative, in the window.
		{EventID: "happy", OccurredAt: at(20 * time.Minute), Moment: "service", Channel: "voice", Touchpoint: "billing_call",
			CSAT: u8(5), NPS: u8(10), Outcome: "resolved", Region: "north"},
		{EventID: "neutral", OccurredAt: at(40 * time.Minute), Moment: "fmot", Channel: "web", Touchpoint: "checkout",
			CSAT: u8(3), CES: u8(4), Sentiment: f(-0.2), Outcome: "escalated"},
		// Negative, outside the window.
		{EventID: "before", OccurredAt: at(-time.Millisecond), Moment: "service", Channel: "voice", Touchpoint: "billing_call", CSAT: u8(1)},
		{EventID: "at-end", OccurredAt: at(time.Hour), Moment: "service", Channel: "voice", Touchpoint: "billing_call", CSAT: u8(1)},
		{EventID: "yesterday", OccurredAt: at(-24 * time.Hour), Moment: "fmot", Channel: "web", Touchpoint: "checkout", CSAT: u8(1)},
	}
	if err := s.InsertEvents(ctx, evs, from); err != nil {
		t.Fatal(err)
	}
	ids := func(list []rollup.NegativeEvent) []string {
		var out []string
		for _, n := range list {
			out = append(out, n.EventID)
		}
		return out
	}

	t.Run("all, with every field", func(t *testing.T) {
		got, err := s.LatestNegatives(ctx, rollup.Query{}, p, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"last-ms", "nps", "same-second-later", "csat", "first-second"}; !slices.Equal(ids(got), want) {
			t.Fatalf("events %q, want %q", ids(got), want)
		}
		reasons := map[string][]string{
			"last-ms": {"outcome unresolved"}, "nps": {"nps 3", "ces 2"},
			"same-second-later": {"sentiment -0.5", "outcome abandoned"}, "csat": {"csat 2"},
			"first-second": {"outcome failed"},
		}
		for _, n := range got {
			if !slices.Equal(n.Reasons, reasons[n.EventID]) {
				t.Errorf("%s: reasons %q, want %q", n.EventID, n.Reasons, reasons[n.EventID])
			}
		}
		c := got[3]
		want := rollup.NegativeEvent{EventID: "csat", OccurredAt: at(10*time.Minute + 250*time.Millisecond),
			Moment: "service", Channel: "voice", Touchpoint: "billing_call", Region: "north", Product: "mobile",
			Segment: "smb", AgentTeam: "tier 1", JourneyID: "j1"}
		if c.EventID != want.EventID || !c.OccurredAt.Equal(want.OccurredAt) || c.OccurredAt.Location() != time.UTC ||
			c.Moment != want.Moment || c.Channel != want.Channel || c.Touchpoint != want.Touchpoint ||
			c.Region != want.Region || c.Product != want.Product || c.Segment != want.Segment ||
			c.AgentTeam != want.AgentTeam || c.JourneyID != want.JourneyID || c.Outcome != "" ||
			c.CSAT == nil || *c.CSAT != 2 || c.NPS == nil || *c.NPS != 8 || c.CES != nil || c.Sentiment != nil ||
			c.WaitMS == nil || *c.WaitMS != 95_000 {
			t.Errorf("csat event = %+v, want %+v with csat 2, nps 8, wait 95000 ms", c, want)
		}
		if s := got[2].Sentiment; s == nil || *s != -0.5 || got[2].Outcome != "abandoned" {
			t.Errorf("same-second-later: sentiment %v outcome %q", s, got[2].Outcome)
		}
	})

	for _, tc := range []struct {
		name    string
		filters rollup.Filters
		limit   int
		want    []string
	}{
		{"limit", rollup.Filters{}, 2, []string{"last-ms", "nps"}},
		{"limit met by the window's last seconds", rollup.Filters{}, 1, []string{"last-ms"}},
		{"moment", rollup.Filters{Moment: []string{"service"}}, 0, []string{"last-ms", "same-second-later", "csat"}},
		{"moment and channel", rollup.Filters{Moment: []string{"service"}, Channel: []string{"voice"}}, 0, []string{"last-ms", "csat"}},
		{"two channels", rollup.Filters{Channel: []string{"chat", "web"}}, 0, []string{"nps", "same-second-later", "first-second"}},
		{"touchpoint", rollup.Filters{Touchpoint: []string{"checkout"}}, 0, []string{"nps"}},
		{"region with a quote", rollup.Filters{Region: []string{"it's"}}, 0, []string{"first-second"}},
		{"region and team", rollup.Filters{Region: []string{"north"}, AgentTeam: []string{"tier 1"}}, 0, []string{"csat"}},
		{"segment", rollup.Filters{Segment: []string{"smb"}, Product: []string{"mobile"}}, 0, []string{"csat"}},
		{"nothing matches", rollup.Filters{Moment: []string{"tmot"}}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.LatestNegatives(ctx, rollup.Query{Filters: tc.filters}, p, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Fatalf("events %q, want %q", ids(got), tc.want)
			}
		})
	}

	// The search widens from the window's last 10 s to its last 2 min, hour and day, to all of
	// it: whichever slice the newest negatives fall in, the answer is the window's newest, in
	// order.
	t.Run("newest across the slices", func(t *testing.T) {
		end := p.To
		var spread []event.Event
		for _, x := range []struct {
			id  string
			ago time.Duration
		}{{"s5a", 5 * time.Second}, {"s5b", 6 * time.Second}, {"s90a", 90 * time.Second}, {"s90b", 100 * time.Second}, {"m10", 10 * time.Minute}} {
			spread = append(spread, event.Event{EventID: x.id, OccurredAt: end.Add(-x.ago), Moment: "smot", Channel: "store", Touchpoint: "till", CSAT: u8(1)})
		}
		if err := s.InsertEvents(ctx, spread, from); err != nil {
			t.Fatal(err)
		}
		q := rollup.Query{Filters: rollup.Filters{Moment: []string{"smot"}}}
		for limit, want := range map[int][]string{
			2: {"s5a", "s5b"},
			3: {"s5a", "s5b", "s90a"},
			5: {"s5a", "s5b", "s90a", "s90b", "m10"},
			9: {"s5a", "s5b", "s90a", "s90b", "m10"},
		} {
			got, err := s.LatestNegatives(ctx, q, p, limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), want) {
				t.Errorf("limit %d: %q, want %q", limit, ids(got), want)
			}
		}
	})

	t.Run("limit is clamped", func(t *testing.T) {
		var many []event.Event
		for i := range 130 {
			many = append(many, event.Event{EventID: fmt.Sprintf("many-%03d", i), OccurredAt: at(50*time.Minute + time.Duration(i)*time.Millisecond),
				Moment: "tmot", Channel: "review_site", Touchpoint: "review", CSAT: u8(1)})
		}
		if err := s.InsertEvents(ctx, many, from); err != nil {
			t.Fatal(err)
		}
		q := rollup.Query{Filters: rollup.Filters{Moment: []string{"tmot"}}}
		for limit, want := range map[int]int{0: rollup.DefaultNegatives, 1000: rollup.MaxNegatives, 7: 7} {
			got, err := s.LatestNegatives(ctx, q, p, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != want || got[0].EventID != "many-129" {
				t.Errorf("limit %d: %d events from %q, want %d from many-129", limit, len(got), ids(got)[:1], want)
			}
		}
	})

	// The query narrows by the table's sort key and partitions: ClickHouse refuses it under
	// force_primary_key and force_index_by_date otherwise.
	t.Run("uses the primary key", func(t *testing.T) {
		fctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"force_primary_key": 1, "force_index_by_date": 1}))
		for _, f := range []rollup.Filters{{}, {Moment: []string{"service"}, Channel: []string{"voice"}}, {Region: []string{"north"}}} {
			sql, args := store.LatestNegativesSQL(rollup.Query{Filters: f}, p, 20)
			rows, err := s.Conn().Query(fctx, sql, args...)
			if err != nil {
				t.Fatalf("filters %+v: %v\n%s", f, err, sql)
			}
			rows.Close()
		}
		if sql, _ := store.LatestNegativesSQL(rollup.Query{}, p, 20); !strings.Contains(sql, "PREWHERE negative = 1") {
			t.Errorf("the query does not read the negative column first:\n%s", sql)
		}
	})
}
