package store_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// alertNow is the time of the alert tests' evaluations: mid-second, so that the windows' edges
// (whole seconds and minutes) are not the evaluation's time.
var alertNow = time.Date(2026, 3, 2, 14, 7, 37, 500e6, time.UTC)

// expectedCells sums, per moment × channel, the events that a span of its table holds (the
// rollup time of an event is its time cut to the table's step) and that match the filters.
func expectedCells(evs []event.Event, sp alert.Span, f rollup.Filters) map[alert.Key]rollup.Counts {
	step := time.Second
	switch {
	case strings.HasSuffix(sp.Table, "_1m"):
		step = time.Minute
	case strings.HasSuffix(sp.Table, "_1h"):
		step = time.Hour
	}
	match := func(vals []string, v string) bool { return len(vals) == 0 || slices.Contains(vals, v) }
	out := map[alert.Key]rollup.Counts{}
	for i := range evs {
		e := &evs[i]
		t := e.OccurredAt.Truncate(step)
		if t.Before(sp.From) || !t.Before(sp.To) || !match(f.Moment, e.Moment) || !match(f.Channel, e.Channel) ||
			!match(f.Region, e.Region) || !match(f.AgentTeam, e.AgentTeam) {
			continue
		}
		k := alert.Key{Moment: e.Moment, Channel: e.Channel}
		c := out[k]
		c.AddEvent(e)
		out[k] = c
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// alertEvents are events around the default rules' windows at alertNow: inside and just outside
// the current window, the trailing baseline and last week's hour, in three cells and two regions.
func alertEvents() []event.Event {
	var evs []event.Event
	add := func(id string, at time.Time, moment, channel, region string, i int) {
		e := event.Event{EventID: id, OccurredAt: at, Moment: moment, Channel: channel, Touchpoint: "tp", Region: region,
			CSAT: ptr(uint8(1 + i%5)), NPS: ptr(uint8(i % 11)), CES: ptr(uint8(1 + i%7)), WaitMS: ptr(uint32(i * 7919 % 600000))}
		switch i % 4 {
		case 0:
			e.Outcome = "abandoned"
		case 1:
			e.Outcome = "resolved"
		case 2:
			e.CSAT = nil
		}
		evs = append(evs, e)
	}
	times := []struct {
		name string
		at   time.Time
	}{
		{"current", alertNow.Add(-5 * time.Minute)},
		{"now", alertNow.Add(-100 * time.Millisecond)},                        // the second filling now
		{"before-window", time.Date(2026, 3, 2, 13, 52, 37, 900e6, time.UTC)}, // 1 s before the 15m window
		{"window-start", time.Date(2026, 3, 2, 13, 52, 38, 0, time.UTC)},
		{"gap", time.Date(2026, 3, 2, 13, 52, 10, 0, time.UTC)}, // between baseline and window
		{"baseline", time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)},
		{"baseline-start", time.Date(2026, 3, 2, 10, 52, 0, 0, time.UTC)},
		{"before-baseline", time.Date(2026, 3, 2, 10, 51, 59, 0, time.UTC)},
		{"last-week", time.Date(2026, 2, 23, 13, 30, 0, 0, time.UTC)},
		{"last-week-end", time.Date(2026, 2, 23, 14, 8, 0, 0, time.UTC)}, // just after its hour
	}
	cells := []alert.Key{{Moment: "service", Channel: "voice"}, {Moment: "fmot", Channel: "web"}, {Moment: "service", Channel: "chat"}}
	for ti, tm := range times {
		for ci, c := range cells {
			for i := range 3 + ti + ci {
				region := []string{"north", "south"}[i%2]
				add(fmt.Sprintf("%s-%d-%d", tm.name, ci, i), tm.at.Add(time.Duration(i)*time.Millisecond), c.Moment, c.Channel, region, i+ti)
			}
		}
	}
	return evs
}

// TestAlertDataCountsWhatWasInserted: the engine's input, read in one query set, holds per
// moment × channel exactly the counts of the events of each period, for the default rules and
// for a filtered rule (read from the detail tables).
func TestAlertDataCountsWhatWasInserted(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	evs := alertEvents()
	if err := s.InsertEvents(ctx, evs, alertNow); err != nil {
		t.Fatal(err)
	}
	rules := alert.DefaultRules()
	north, err := alert.ParseRule([]byte(`{"name": "NorthVoice", "metric": "csat", "kind": "change",
		"moment": "service", "channel": "voice", "filters": {"region": "north"}}`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := alert.NewEngine(alert.Config{Rules: append(rules, north)})
	if err != nil {
		t.Fatal(err)
	}
	qs := e.Queries(alertNow)
	if len(qs) != 3 {
		t.Fatalf("%d queries, want 3", len(qs))
	}
	data, err := s.AlertData(ctx, qs)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != len(qs) {
		t.Fatalf("%d answers to %d queries", len(data), len(qs))
	}
	for i, d := range data {
		if !reflect.DeepEqual(d.Query, qs[i]) {
			t.Errorf("answer %d is for query %+v, want %+v", i, d.Query, qs[i])
		}
		for _, p := range []struct {
			name string
			got  map[alert.Key]rollup.Counts
			span alert.Span
		}{{"current", d.Current, qs[i].Current}, {"baseline", d.Baseline, qs[i].Baseline}} {
			want := expectedCells(evs, p.span, qs[i].Filters)
			if len(want) == 0 {
				t.Fatalf("query %s, %s: the test inserted no events in %+v", qs[i].ID, p.name, p.span)
			}
			if !reflect.DeepEqual(p.got, want) {
				t.Errorf("query %s, %s (%s %s – %s):\n got %v\nwant %v", qs[i].ID, p.name, p.span.Table,
					p.span.From.Format(time.TimeOnly), p.span.To.Format(time.TimeOnly), summarize(p.got), summarize(want))
			}
		}
	}
	// The baseline's parts, read in the same query: each part holds its own events.
	for i, d := range data {
		q := qs[i]
		want := map[alert.Key][]rollup.Counts{}
		for from := q.PartStart(); from.Before(q.Baseline.To); from = from.Add(q.Part) {
			sp := alert.Span{Table: q.Baseline.Table, From: from, To: from.Add(q.Part)}
			if sp.From.Before(q.Baseline.From) {
				sp.From = q.Baseline.From
			}
			if sp.To.After(q.Baseline.To) {
				sp.To = q.Baseline.To
			}
			p := int(from.Sub(q.PartStart()) / q.Part)
			for k, c := range expectedCells(evs, sp, q.Filters) {
				ps := want[k]
				for len(ps) <= p {
					ps = append(ps, rollup.Counts{})
				}
				ps[p] = c
				want[k] = ps
			}
		}
		if !reflect.DeepEqual(d.BaselineParts, want) {
			t.Errorf("query %s, baseline parts of %s:\n got %v\nwant %v", q.ID, q.Part, d.BaselineParts, want)
		}
	}
	if got := data[2].Current; len(got) != 1 || got[alert.Key{Moment: "service", Channel: "voice"}].Events == 0 {
		t.Errorf("the filtered rule read other cells or none: %v", summarize(got))
	}

	// Once evaluated, the baselines are the engine's until they move: the next read leaves
	// them out, and reads the current windows again.
	e.Evaluate(alert.Input{Now: alertNow, Data: data})
	again, err := s.AlertData(ctx, e.Queries(alertNow.Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range again {
		if !d.Query.BaselineKnown || d.Baseline != nil || d.BaselineParts != nil || len(d.Current) == 0 {
			t.Errorf("query %s a second later: known %v, baseline %v, %d current cells; want only the current window read",
				d.Query.ID, d.Query.BaselineKnown, d.Baseline, len(d.Current))
		}
		if want := expectedCells(evs, d.Query.Current, d.Query.Filters); !reflect.DeepEqual(d.Current, want) {
			t.Errorf("query %s a second later: current %v, want %v", d.Query.ID, summarize(d.Current), summarize(want))
		}
	}
}

func summarize(m map[alert.Key]rollup.Counts) string {
	var parts []string
	for k, c := range m {
		parts = append(parts, fmt.Sprintf("%s/%s: %d events, csat %d/%d, wait %d", k.Moment, k.Channel, c.Events, c.CSATTop2, c.CSATN, c.WaitN))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// cells of the history test: the baseline at 82% CSAT everywhere; the drop at 61% in two cells.
var (
	histVoice    = alert.Key{Moment: "service", Channel: "voice"}
	histWeb      = alert.Key{Moment: "fmot", Channel: "web"}
	histBaseline = map[alert.Key]rollup.Counts{
		histVoice: {Events: 3100, CSATN: 3100, CSATTop2: 2542}, histWeb: {Events: 3100, CSATN: 3100, CSATTop2: 2542}}
	histDrop = map[alert.Key]rollup.Counts{
		histVoice: {Events: 240, CSATN: 240, CSATTop2: 146}, histWeb: {Events: 240, CSATN: 240, CSATTop2: 146}}
	histVoiceOnly = map[alert.Key]rollup.Counts{
		histVoice: {Events: 240, CSATN: 240, CSATTop2: 146}, histWeb: {Events: 240, CSATN: 240, CSATTop2: 197}}
)

// unkept is an alert as the history holds it: without the observation's dispersion.
func unkept(a alert.Alert) alert.Alert {
	a.Observation.Dispersion = 0
	return a
}

// rulesButVolume are the default rules but volume's, whose counts the history tests do not model.
func rulesButVolume() []alert.Rule {
	return slices.DeleteFunc(alert.DefaultRules(), func(r alert.Rule) bool { return r.Metric == alert.Volume })
}

// evaluate runs one evaluation of e at now on the given counts.
func evaluate(e *alert.Engine, now time.Time, cur map[alert.Key]rollup.Counts) alert.Result {
	in := alert.Input{Now: now}
	for _, q := range e.Queries(now) {
		in.Data = append(in.Data, alert.Data{Query: q, Current: cur, Baseline: histBaseline})
	}
	return e.Evaluate(in)
}

// TestAlertHistoryAndRestart stores the transitions of a real evaluation sequence (an alert that
// fires and is acknowledged, one that drops while pending), lists them back, and restarts: an
// engine restored from the store keeps the firing alert firing, acknowledged, and emits nothing
// while the drop lasts.
func TestAlertHistoryAndRestart(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	clock := alertNow
	rules := rulesButVolume()
	e, err := alert.NewEngine(alert.Config{Rules: rules, Clock: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	var all []alert.Transition
	step := func(now time.Time, cur map[alert.Key]rollup.Counts) {
		res := evaluate(e, now, cur)
		if err := s.AppendAlertTransitions(ctx, res.Transitions); err != nil {
			t.Fatal(err)
		}
		all = append(all, res.Transitions...)
	}
	step(alertNow, histDrop)                                     // two alerts pending
	step(alertNow.Add(time.Minute), histVoiceOnly)               // fmot › web drops without firing
	step(alertNow.Add(2*time.Minute), histVoiceOnly)             // service › voice fires
	step(alertNow.Add(2*time.Minute+time.Second), histVoiceOnly) // nothing
	clock = alertNow.Add(3*time.Minute + 250*time.Millisecond)
	active := e.Active()
	if len(active) != 1 || active[0].State != alert.Firing {
		t.Fatalf("active %+v, want one firing alert", active)
	}
	ack, err := e.Acknowledge(active[0].Fingerprint, "ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAlertTransitions(ctx, []alert.Transition{ack}); err != nil {
		t.Fatal(err)
	}
	all = append(all, ack)
	if len(all) != 5 {
		t.Fatalf("%d transitions, want 5 (2 pending, 1 dropped, 1 firing, 1 acknowledgement)", len(all))
	}

	// The history, newest first, exactly as it was written.
	hist, err := s.AlertHistory(ctx, alertNow.Add(-time.Hour), alertNow.Add(time.Hour), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(all)
	for i := range want {
		want[i].Alert = unkept(want[i].Alert)
	}
	slices.SortFunc(want, func(a, b alert.Transition) int { // newest first, then by fingerprint
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return strings.Compare(a.Alert.Fingerprint, b.Alert.Fingerprint)
	})
	if len(hist) != len(want) {
		t.Fatalf("history has %d rows, want %d", len(hist), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(hist[i], want[i]) {
			t.Errorf("history row %d:\n got %+v\nwant %+v", i, hist[i], want[i])
		}
	}
	if got, _ := s.AlertHistory(ctx, alertNow.Add(-time.Hour), alertNow.Add(time.Hour), "", 2); len(got) != 2 || !got[0].At.Equal(clock) {
		t.Errorf("limit 2: %d rows, first at %v; want the acknowledgement first", len(got), got)
	}
	fp := active[0].Fingerprint
	if got, _ := s.AlertHistory(ctx, alertNow.Add(-time.Hour), alertNow.Add(time.Hour), fp, 100); len(got) != 3 {
		t.Errorf("history of %s: %d rows, want 3 (pending, firing, acknowledged)", fp, len(got))
	}
	if got, _ := s.AlertHistory(ctx, alertNow.Add(time.Minute), alertNow.Add(2*time.Minute), "", 100); len(got) != 1 || got[0].To != alert.Inactive {
		t.Errorf("history of [+1m, +2m): %+v, want the drop only (the firing at +2m is outside)", got)
	}
	if _, err := s.AlertHistory(ctx, alertNow, alertNow.Add(time.Hour), "", 0); err == nil {
		t.Error("limit 0 was accepted")
	}

	// The restart.
	latest, err := s.LatestAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := e.Active()
	if len(before) != 1 || !reflect.DeepEqual(latest, []alert.Alert{unkept(before[0])}) {
		t.Fatalf("latest states:\n got %+v\nwant %+v", latest, before)
	}
	restarted, err := alert.NewEngine(alert.Config{Rules: rules, Clock: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	restarted.Restore(latest, nil)
	for i := range 12 {
		res := evaluate(restarted, alertNow.Add(4*time.Minute+time.Duration(i)*10*time.Second), histVoiceOnly)
		if len(res.Transitions) != 0 {
			t.Fatalf("the restarted engine announced %+v", res.Transitions)
		}
		if len(res.Active) != 1 || res.Active[0].Fingerprint != fp || res.Active[0].State != alert.Firing ||
			res.Active[0].AcknowledgedBy != "ops@example.com" || !res.Active[0].FiredAt.Equal(before[0].FiredAt) {
			t.Fatalf("after the restart: %+v", res.Active)
		}
	}
}

// TestAlertSilencesStored: silences and their early ends are stored; those in force come back.
func TestAlertSilencesStored(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	clock := alertNow
	e, err := alert.NewEngine(alert.Config{Rules: alert.DefaultRules(), Clock: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := e.Silence([]alert.Matcher{{Name: "moment", Value: "fmot"}, {Name: "alertname", Value: "CSATDrop"}}, alertNow.Add(time.Hour), "checkout migration")
	if err != nil {
		t.Fatal(err)
	}
	ended, err := e.Silence([]alert.Matcher{{Name: "channel", Value: "chat"}}, alertNow.Add(2*time.Hour), "vendor outage")
	if err != nil {
		t.Fatal(err)
	}
	clock = alertNow.Add(10 * time.Minute)
	expired, err := e.Expire(ended.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, sl := range []alert.Silence{kept, ended, expired} {
		if err := s.AddAlertSilence(ctx, sl); err != nil {
			t.Fatal(err)
		}
	}
	// At +5 min both are in force, the vendor one ending at +10 min (its early end), first.
	got, err := s.AlertSilences(ctx, alertNow.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !reflect.DeepEqual(got[0], expired) || !reflect.DeepEqual(got[1], kept) {
		t.Fatalf("silences at +5m:\n got %+v\nwant %+v and %+v", got, expired, kept)
	}
	if got, _ := s.AlertSilences(ctx, alertNow.Add(11*time.Minute)); len(got) != 1 || !reflect.DeepEqual(got[0], kept) {
		t.Fatalf("silences at +11m: %+v, want only %+v", got, kept)
	}
	if got, _ := s.AlertSilences(ctx, alertNow.Add(time.Hour)); len(got) != 0 {
		t.Errorf("silences after the end: %+v", got)
	}
	// A restored engine flags the silenced alert.
	restored, err := alert.NewEngine(alert.Config{Rules: rulesButVolume(), Clock: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	live, err := s.AlertSilences(ctx, clock)
	if err != nil {
		t.Fatal(err)
	}
	restored.Restore(nil, live)
	res := evaluate(restored, clock, histDrop)
	if len(res.Transitions) != 2 {
		t.Fatalf("%d transitions, want 2", len(res.Transitions))
	}
	for _, tr := range res.Transitions {
		if want := tr.Alert.Labels["moment"] == "fmot"; tr.Alert.Silenced != want {
			t.Errorf("%v: silenced %v, want %v", tr.Alert.Labels, tr.Alert.Silenced, want)
		}
	}
}

// TestAlertQueriesOnModernClickHouse runs the history's SQL on modern ClickHouse; the tests
// above run it on 18.16.
func TestAlertQueriesOnModernClickHouse(t *testing.T) {
	row := func(atNS int64, fp, from, to string) string {
		return fmt.Sprintf(`INSERT INTO alert_transitions (%s) VALUES (toDateTime(%d), %d, '%s', 'CSATDrop', '%s', '%s',
			['alertname', 'channel'], ['CSATDrop', 'voice'], 'summary', 'description', 1, 2, 0, 0.61, 240, 0, 0, 0, 0.82, 3100,
			-7.9, 0.00001, -0.21, [], 'ops', 3)`,
			strings.Join(store.AlertTransitionColumns, ", "), atNS/1e9, atNS, fp, from, to)
	}
	at := alertNow.UnixNano()
	statements := append(MigrationStatements(t),
		row(at, "aaaa", "inactive", "pending"),
		row(at+1, "aaaa", "pending", "firing"),
		row(at+2, "bbbb", "inactive", "pending"),
		row(at+3, "bbbb", "pending", "inactive"),
		`INSERT INTO alert_silences (id, matcher_names, matcher_values, starts_at_ns, ends_at_ns, reason, changed_at)
		 VALUES ('s1', ['channel'], ['voice'], 1, 2000000000000000000, 'why', now()),
		        ('s1', ['channel'], ['voice'], 1, 1000, 'why', now()),
		        ('s2', ['moment'], ['fmot'], 1, 2000000000000000000, 'why', now())`)
	hist, args := store.AlertHistorySQL(alertNow.Add(-time.Hour), alertNow.Add(time.Hour), "aaaa", 10)
	for _, a := range args {
		if s, ok := a.(string); ok {
			hist = strings.Replace(hist, "?", "'"+s+"'", 1)
		} else {
			hist = strings.Replace(hist, "?", fmt.Sprint(a), 1)
		}
	}
	rep := RunOnModernClickHouse(t, statements, []string{
		store.LatestAlertsSQL, hist, strings.Replace(store.AlertSilencesSQL, "?", "5000", 1)})
	if q := rep.Queries[0]; len(q.Rows) != 1 || string(q.Rows[0]["fingerprint"]) != `"aaaa"` || string(q.Rows[0]["to_state"]) != `"firing"` {
		t.Errorf("latest states on modern ClickHouse: %v, want aaaa firing", q.Rows)
	}
	if q := rep.Queries[1]; len(q.Rows) != 2 {
		t.Errorf("history of aaaa on modern ClickHouse: %d rows, want 2", len(q.Rows))
	}
	if q := rep.Queries[2]; len(q.Rows) != 1 || string(q.Rows[0]["id"]) != `"s2"` {
		t.Errorf("silences on modern ClickHouse: %v, want s2 only", q.Rows)
	}
}

// BenchmarkAlertData measures the reads of one evaluation of the default rules over 3 h 20 min
// of demo traffic at 40 events/s (the rate of scripts/up.sh): with the baselines (once a
// minute) and without (the other evaluations), against one screen's read of the same window
// (the executive grid: 15 minutes by moment and channel, with the previous period), in the
// same run:
//
//	go test -run '^$' -bench AlertData -benchtime 50x ./internal/store/
func BenchmarkAlertData(b *testing.B) {
	s := storetest.Open(b)
	ctx := context.Background()
	cfg := demo.DefaultConfig()
	cfg.Rate = 40
	start := alertNow.Add(-3*time.Hour - 20*time.Minute)
	gen, err := demo.NewGenerator(cfg, start)
	if err != nil {
		b.Fatal(err)
	}
	var n int
	for t := start.Add(10 * time.Minute); !t.After(alertNow); t = t.Add(10 * time.Minute) {
		evs := gen.Due(t, 1<<30)
		if err := s.InsertEvents(ctx, evs, t); err != nil {
			b.Fatal(err)
		}
		n += len(evs)
	}
	e, err := alert.NewEngine(alert.Config{Rules: alert.DefaultRules()})
	if err != nil {
		b.Fatal(err)
	}
	qs := e.Queries(alertNow)
	b.Logf("%d events; %d queries", n, len(qs))
	b.Run("alert-with-baselines", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.AlertData(ctx, qs); err != nil {
				b.Fatal(err)
			}
		}
	})
	data, err := s.AlertData(ctx, qs)
	if err != nil {
		b.Fatal(err)
	}
	e.Evaluate(alert.Input{Now: alertNow, Data: data})
	known := e.Queries(alertNow.Add(time.Second))
	b.Run("alert-baselines-known", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.AlertData(ctx, known); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("screen-grid", func(b *testing.B) {
		q, err := rollup.ParseQuery(map[string][]string{"window": {"15m"}, "by": {"moment,channel"}, "compare": {"previous"}})
		if err != nil {
			b.Fatal(err)
		}
		p := q.Plan(alertNow)
		for b.Loop() {
			if _, err := s.Rollup(ctx, q, p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
