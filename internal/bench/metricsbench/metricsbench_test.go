package metricsbench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// TestGeneratedHistory checks the generator on a real server: the rows land where they should,
// every value is one the API would accept, negative and positive follow internal/event's rule,
// the views fill the rollups, and the two sides of the benchmark agree on every count.
func TestGeneratedHistory(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	const total = 20_000
	to := time.Now().UTC().Truncate(time.Second)
	span := 2 * time.Minute
	st, err := load(ctx, db, total, 7_000, to, span, 1, 10*time.Second, func(uint64) {})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := db.CountEvents(ctx); err != nil || n != total {
		t.Fatalf("%d events stored (%v), want %d", n, err, total)
	}
	var rolled uint64
	if err := db.Conn().QueryRow(ctx, "SELECT sumMerge(events) FROM overview_1s").Scan(&rolled); err != nil || rolled != total {
		t.Fatalf("overview_1s holds %d events (%v), want %d", rolled, err, total)
	}
	if st.TblRows["events"] != total {
		t.Errorf("load stats: %d rows in events, want %d", st.TblRows["events"], total)
	}

	rows, err := db.Conn().Query(ctx, `SELECT event_id, occurred_at, toString(moment), toString(channel), touchpoint,
		toString(stage), toString(outcome), customer_id, journey_id, csat, nps, ces, sentiment, wait_ms, handle_ms,
		negative, positive, region, product, segment, agent_team FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n, csat, nps, ces, wait int
	for rows.Next() {
		var (
			e        event.Event
			neg, pos uint8
		)
		if err := rows.Scan(&e.EventID, &e.OccurredAt, &e.Moment, &e.Channel, &e.Touchpoint, &e.Stage, &e.Outcome,
			&e.CustomerID, &e.JourneyID, &e.CSAT, &e.NPS, &e.CES, &e.Sentiment, &e.WaitMS, &e.HandleMS,
			&neg, &pos, &e.Region, &e.Product, &e.Segment, &e.AgentTeam); err != nil {
			t.Fatal(err)
		}
		n++
		if e.OccurredAt.Before(to.Add(-span)) || !e.OccurredAt.Before(to) {
			t.Fatalf("event at %v, outside [%v, %v)", e.OccurredAt, to.Add(-span), to)
		}
		if errs := event.Validate(&e, to, 24*time.Hour); len(errs) > 0 {
			t.Fatalf("generated event %+v is invalid: %v", e, errs)
		}
		if (neg == 1) != e.Negative() || (pos == 1) != e.Positive() {
			t.Fatalf("event %+v: negative %d positive %d, want %v %v", e, neg, pos, e.Negative(), e.Positive())
		}
		for _, c := range []struct {
			set bool
			n   *int
		}{{e.CSAT != nil, &csat}, {e.NPS != nil, &nps}, {e.CES != nil, &ces}, {e.WaitMS != nil, &wait}} {
			if c.set {
				*c.n++
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	share := func(k int) float64 { return float64(k) / float64(n) }
	for _, c := range []struct {
		name     string
		got      float64
		min, max float64
	}{
		{"csat", share(csat), 0.27, 0.33}, {"nps", share(nps), 0.13, 0.17}, {"ces", share(ces), 0.13, 0.17},
		{"wait_ms (service contacts)", share(wait), 0.25, 0.31},
	} {
		if c.got < c.min || c.got > c.max {
			t.Errorf("%s in %.3f of the events, want %.2f to %.2f", c.name, c.got, c.min, c.max)
		}
	}

	for _, w := range []string{"5m", "1h"} {
		length, _ := windowLength(w)
		view := apiView(length, w)
		_, roll, err := apiSet(view).run(ctx, db, to.Add(-time.Second))
		if err != nil {
			t.Fatal(err)
		}
		_, raw, err := rawTick(ctx, db, view, to.Add(-time.Second))
		if err != nil {
			t.Fatal(err)
		}
		a := compareKPI(roll[qKPI], raw[qKPI])
		if !a.CountsEqual || a.Events == 0 {
			t.Errorf("window %s: rollup and raw counts differ (%+v)", w, a)
		}
		if a.WaitP50 > 0.05 || a.WaitP90 > 0.05 {
			t.Errorf("window %s: wait percentiles off by %.3f and %.3f, want at most 0.049", w, a.WaitP50, a.WaitP90)
		}
		if _, _, err := hubSet(view).run(ctx, db, to); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]uint64{"1M": 1_000_000, "50M": 50_000_000, "500k": 500_000, " 1500 ": 1500} {
		if got, err := parseCount(in); err != nil || got != want {
			t.Errorf("parseCount(%q) = %d, %v; want %d", in, got, err, want)
		}
		if in = strings.TrimSpace(in); countName(want) != in {
			t.Errorf("countName(%d) = %q, want %q", want, countName(want), in)
		}
	}
	for _, bad := range []string{"", "M", "1G", "-1"} {
		if _, err := parseCount(bad); err == nil {
			t.Errorf("parseCount(%q): no error", bad)
		}
	}
}

// TestExportData checks the export measurement's events: as many as asked, on as many distinct
// touchpoints, within the 30 days before the end, every one valid for the API.
func TestExportData(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	end := time.Now().UTC().Truncate(time.Second)
	for off := uint64(0); off < 3_000; off += 1_000 {
		if err := db.Conn().Exec(ctx, exportSQL(off, 1_000, 3_000, 300, end)); err != nil {
			t.Fatal(err)
		}
	}
	var n, touchpoints uint64
	var first, last time.Time
	if err := db.Conn().QueryRow(ctx, "SELECT count(), uniqExact(touchpoint), min(occurred_at), max(occurred_at) FROM events").
		Scan(&n, &touchpoints, &first, &last); err != nil {
		t.Fatal(err)
	}
	if n != 3_000 || touchpoints != 300 || first.Before(end.Add(-30*24*time.Hour)) || !last.Before(end) {
		t.Fatalf("%d events on %d touchpoints from %v to %v; want 3000 on 300 within the 30 days before %v", n, touchpoints, first, last, end)
	}
	rows, err := db.Conn().Query(ctx, `SELECT event_id, occurred_at, toString(moment), toString(channel), touchpoint,
		toString(outcome), csat, nps, wait_ms, negative, positive FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e        event.Event
			neg, pos uint8
		)
		if err := rows.Scan(&e.EventID, &e.OccurredAt, &e.Moment, &e.Channel, &e.Touchpoint, &e.Outcome, &e.CSAT, &e.NPS,
			&e.WaitMS, &neg, &pos); err != nil {
			t.Fatal(err)
		}
		if errs := event.Validate(&e, end, 31*24*time.Hour); len(errs) > 0 {
			t.Fatalf("event %+v is invalid: %v", e, errs)
		}
		if (neg == 1) != e.Negative() || (pos == 1) != e.Positive() {
			t.Fatalf("event %+v: negative %d positive %d, want %v %v", e, neg, pos, e.Negative(), e.Positive())
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
