package rollup_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// testNow is the clock of these tests: 10:17:42.5, so a 5m window on overview_1s is
// [10:12:43, 10:17:43).
var testNow = time.Date(2026, 3, 10, 10, 17, 42, 500_000_000, time.UTC)

func mustQuery(t *testing.T, query string) rollup.Query {
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

// waits returns the histogram of the given wait times.
func waits(ms ...uint32) (h [metric.Buckets]uint64) {
	for _, v := range ms {
		h[metric.BucketOf(v)]++
	}
	return h
}

// compareGroups are what the store returns for by=moment,channel&compare=previous: the current
// period of four keys (fmot/web in two parts, which Build must add up), one key with only
// previous events, and one with no events at all.
func compareGroups() []rollup.Group {
	return []rollup.Group{
		{Moment: "service", Channel: "voice", Counts: rollup.Counts{Events: 7, CSATN: 6, CSATTop2: 3, NPSN: 0,
			CESN: 6, CESSum: 24, Negative: 4, WithOutcome: 7, Abandoned: 2, WaitN: 7,
			Wait: waits(5_000, 12_000, 30_000, 45_000, 60_000, 90_000, 400_000)}},
		{Moment: "fmot", Channel: "web", Counts: rollup.Counts{Events: 10, CSATN: 8, CSATTop2: 6, NPSN: 5, NPSPromoters: 2,
			NPSDetractors: 1, CESN: 5, CESSum: 26, Negative: 3, WithOutcome: 6, Abandoned: 1, WaitN: 6,
			Wait: waits(0, 1, 10, 100, 1000, 10_000)}},
		{Moment: "zmot", Channel: "app", Counts: rollup.Counts{Events: 3, CSATN: 3, CSATTop2: 3}},
		{Moment: "fmot", Channel: "web", Counts: rollup.Counts{Events: 2, CSATN: 1, CSATTop2: 1}},
		{Moment: "tmot", Channel: "email"}, // no events: no row
		{Moment: "fmot", Channel: "web", Previous: true, Counts: rollup.Counts{Events: 8, CSATN: 10, CSATTop2: 5, NPSN: 6,
			NPSPromoters: 1, NPSDetractors: 3, CESN: 2, CESSum: 9, Negative: 2, WithOutcome: 5, Abandoned: 0}},
		{Moment: "service", Channel: "chat", Previous: true, Counts: rollup.Counts{Events: 4, CSATN: 4, CSATTop2: 2}},
	}
}

func figure(v float64, n int64) metric.Figure { return metric.Figure{Value: v, OK: true, N: n} }

func sameFigure(a, b metric.Figure) bool {
	return a.OK == b.OK && a.N == b.N && (!a.OK || math.Abs(a.Value-b.Value) <= 1e-12*max(1, math.Abs(b.Value)))
}

func TestBuildRowsTotalsAndDeltas(t *testing.T) {
	q := mustQuery(t, "window=5m&by=channel,moment&compare=previous")
	p := q.Plan(testNow)
	res := rollup.Build(q, p, compareGroups(), metric.Rules{})

	if res.Window != "5m" || !res.From.Equal(p.From) || !res.To.Equal(p.To) || res.Resolution != "10s" || res.Step != "" ||
		!slices.Equal(res.By, []string{"moment", "channel"}) {
		t.Errorf("header: %s [%v, %v) %s step %q by %v", res.Window, res.From, res.To, res.Resolution, res.Step, res.By)
	}

	// Rows: moments in journey order, channels in vocabulary order; fmot/web added up; the
	// key without events left out; the key with only previous events kept.
	var keys []string
	for _, r := range res.Rows {
		keys = append(keys, r.Moment+"/"+r.Channel)
	}
	if want := []string{"zmot/app", "fmot/web", "service/voice", "service/chat"}; !slices.Equal(keys, want) {
		t.Fatalf("rows %v, want %v", keys, want)
	}

	web := res.Rows[1]
	for _, c := range []struct {
		name      string
		got, want metric.Figure
	}{
		{"csat", web.CSAT, figure(7.0/9, 9)},
		{"nps", web.NPS, figure(20, 5)},
		{"ces", web.CES, figure(5.2, 5)},
		{"negative_rate", web.NegativeRate, figure(3.0/12, 12)},
		{"abandonment", web.Abandonment, figure(1.0/6, 6)},
		{"previous csat", web.Previous.CSAT, figure(0.5, 10)},
		{"previous nps", web.Previous.NPS, figure(100*(1-3)/6.0, 6)},
		{"previous ces", web.Previous.CES, metric.Figure{N: 2}}, // n below 5: no value
		{"previous abandonment", web.Previous.Abandonment, figure(0, 5)},
	} {
		if !sameFigure(c.got, c.want) {
			t.Errorf("fmot/web %s = %+v, want %+v", c.name, c.got, c.want)
		}
	}
	if web.Events != 12 || web.RatePerSecond != 12.0/300 || web.Previous.Events != 8 {
		t.Errorf("fmot/web events %d, rate %v, previous %d; want 12, 0.04, 8", web.Events, web.RatePerSecond, web.Previous.Events)
	}
	// p50 of 0, 1, 10, 100, 1000, 10000 ms is the 3rd: 10 ms, within the histogram's bound.
	if w := web.WaitP50MS; !w.OK || w.N != 6 || math.Abs(w.Value-10)/10 > metric.QuantileRelativeError {
		t.Errorf("fmot/web wait p50 = %+v, want about 10 ms", w)
	}
	if w := web.WaitP90MS; !w.OK || math.Abs(w.Value-10_000)/10_000 > metric.QuantileRelativeError {
		t.Errorf("fmot/web wait p90 = %+v, want about 10000 ms", w)
	}
	d := web.Delta
	if d.Events != 4 || !d.CSAT.OK || math.Abs(d.CSAT.By-(7.0/9-0.5)) > 1e-12 || !d.NPS.OK || math.Abs(d.NPS.By-(20+100*2/6.0)) > 1e-12 ||
		d.CES.OK || d.WaitP50MS.OK || !d.Abandonment.OK {
		t.Errorf("fmot/web delta = %+v", *d)
	}

	// Too few answers: n is reported, the value is not.
	if z := res.Rows[0]; z.CSAT.OK || z.CSAT.N != 3 || z.NPS.OK || z.NPS.N != 0 || z.WaitP50MS.OK {
		t.Errorf("zmot/app = %+v, want figures without value", z.Metrics)
	}
	// Only in the previous period: zero now, a negative delta, no change of figures.
	if c := res.Rows[3]; c.Events != 0 || c.CSAT.OK || c.Previous.Events != 4 || c.Delta.Events != -4 || c.Delta.CSAT.OK {
		t.Errorf("service/chat = %+v previous %+v delta %+v", c.Metrics, *c.Previous, *c.Delta)
	}

	// The total adds every group up.
	tot := res.Total
	if tot.Moment != "" || tot.Channel != "" || tot.Events != 22 || tot.Previous.Events != 12 || tot.Delta.Events != 10 ||
		!sameFigure(tot.CSAT, figure(13.0/18, 18)) || !sameFigure(tot.CES, figure(50.0/11, 11)) ||
		tot.WaitP50MS.N != 13 || !sameFigure(tot.Previous.CSAT, figure(7.0/14, 14)) {
		t.Errorf("total = %+v previous %+v delta %+v", tot.Metrics, *tot.Previous, *tot.Delta)
	}
}

func TestBuildWithoutGrouping(t *testing.T) {
	q := mustQuery(t, "window=1h")
	p := q.Plan(testNow)
	res := rollup.Build(q, p, []rollup.Group{{Counts: rollup.Counts{Events: 36, CSATN: 5, CSATTop2: 5}}}, metric.Rules{})
	if len(res.Rows) != 0 || res.Rows == nil || res.By == nil || res.Total.Events != 36 || res.Total.RatePerSecond != 0.01 ||
		!sameFigure(res.Total.CSAT, figure(1, 5)) || res.Total.Previous != nil || res.Total.Delta != nil || res.Total.Series != nil {
		t.Errorf("result = %+v", res)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"by":[]`, `"rows":[]`, `"resolution":"2m"`, `"nps":{"value":null,"n":0}`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
	for _, absent := range []string{`"step"`, `"previous"`, `"delta"`, `"series"`, `"moment"`} {
		if bytes.Contains(b, []byte(absent)) {
			t.Errorf("JSON has %s: %s", absent, b)
		}
	}

	// Nothing at all: a total of zero with every figure empty, never an error or a zero value.
	empty := rollup.Build(q, p, nil, metric.Rules{})
	if empty.Total.Events != 0 || empty.Total.CSAT.OK || empty.Total.NegativeRate.OK || len(empty.Rows) != 0 {
		t.Errorf("empty result = %+v", empty)
	}
}

func TestBuildMinN(t *testing.T) {
	q := mustQuery(t, "window=5m")
	p := q.Plan(testNow)
	g := []rollup.Group{{Counts: rollup.Counts{Events: 4, CSATN: 4, CSATTop2: 4, NPSN: 4, NPSPromoters: 4, CESN: 4, CESSum: 28,
		WithOutcome: 4, WaitN: 4, Wait: waits(1, 2, 3, 4)}}}
	res := rollup.Build(q, p, g, metric.Rules{})
	m := res.Total
	for _, f := range []metric.Figure{m.CSAT, m.NPS, m.CES, m.NegativeRate, m.Abandonment, m.WaitP50MS, m.WaitP90MS} {
		if f.OK || f.N != 4 {
			t.Errorf("figure %+v from 4 answers has a value; default minimum n is 5", f)
		}
	}
	res = rollup.Build(q, p, g, metric.Rules{MinN: 4})
	if !res.Total.CSAT.OK || !res.Total.WaitP90MS.OK {
		t.Errorf("with MinN 4: %+v", res.Total.Metrics)
	}
}

func TestBuildOrdersTouchpoints(t *testing.T) {
	q := mustQuery(t, "window=1h&by=touchpoint")
	p := q.Plan(testNow)
	var groups []rollup.Group
	for _, tp := range []string{"search", "checkout", "billing_call", "Zeta", "checkout"} {
		groups = append(groups, rollup.Group{Touchpoint: tp, Counts: rollup.Counts{Events: 1}})
	}
	res := rollup.Build(q, p, groups, metric.Rules{})
	var got []string
	for _, r := range res.Rows {
		got = append(got, r.Touchpoint)
	}
	if want := []string{"Zeta", "billing_call", "checkout", "search"}; !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v (byte order)", got, want)
	}
	if res.Rows[2].Events != 2 || res.Total.Events != 5 || res.Resolution != "1m" {
		t.Errorf("checkout %d events, total %d, resolution %s", res.Rows[2].Events, res.Total.Events, res.Resolution)
	}
}

func TestBuildSeries(t *testing.T) {
	q := mustQuery(t, "window=1m&by=moment&series=true")
	p := q.Plan(testNow) // [10:16:43, 10:17:43) at 2 s steps
	at := func(m, s int) time.Time { return time.Date(2026, 3, 10, 10, m, s, 0, time.UTC) }
	groups := []rollup.Group{
		{Moment: "service", Bucket: at(16, 42), Counts: rollup.Counts{Events: 1}}, // first bucket, half in the window
		{Moment: "service", Bucket: at(17, 0), Counts: rollup.Counts{Events: 5, CSATN: 5, CSATTop2: 4}},
		{Moment: "zmot", Bucket: at(17, 0), Counts: rollup.Counts{Events: 2}},
		{Moment: "service", Bucket: at(17, 42), Counts: rollup.Counts{Events: 2}}, // last bucket, filling now
	}
	res := rollup.Build(q, p, groups, metric.Rules{})
	if res.Step != "2s" || len(res.Rows) != 2 || res.Rows[0].Moment != "zmot" {
		t.Fatalf("step %q, rows %+v", res.Step, res.Rows)
	}
	for _, row := range append([]rollup.Row{res.Total}, res.Rows...) {
		// Every step from the one holding From to the one holding To − 1 s, empty ones included.
		if len(row.Series) != 31 || !row.Series[0].T.Equal(at(16, 42)) || !row.Series[30].T.Equal(at(17, 42)) {
			t.Fatalf("%q: %d points from %v", row.Moment, len(row.Series), row.Series[0].T)
		}
		var sum uint64
		for i, pt := range row.Series {
			if i > 0 && !pt.T.Equal(row.Series[i-1].T.Add(2*time.Second)) {
				t.Errorf("%q: point %d at %v after %v", row.Moment, i, pt.T, row.Series[i-1].T)
			}
			if pt.Events == 0 && (pt.CSAT.OK || pt.RatePerSecond != 0) {
				t.Errorf("%q: empty point %v has figures %+v", row.Moment, pt.T, pt.Metrics)
			}
			sum += pt.Events
		}
		if sum != row.Events {
			t.Errorf("%q: points add up to %d events, the row has %d", row.Moment, sum, row.Events)
		}
	}
	svc := res.Rows[1].Series
	if svc[0].Events != 1 || svc[9].Events != 5 || svc[9].RatePerSecond != 2.5 || !sameFigure(svc[9].CSAT, figure(0.8, 5)) ||
		svc[30].Events != 2 || res.Total.Series[9].Events != 7 {
		t.Errorf("service points %+v, %+v, %+v", svc[0].Metrics, svc[9].Metrics, svc[30].Metrics)
	}
}

func TestBuildConsistency(t *testing.T) {
	q := mustQuery(t, "window=1h&by=moment,channel")
	p := q.Plan(testNow)
	groups := []rollup.Group{
		{Moment: "service", Channel: "chat", Counts: rollup.Counts{CSATN: 50, CSATTop2: 40}},
		{Moment: "service", Channel: "voice", Counts: rollup.Counts{CSATN: 100, CSATTop2: 55}},
		{Moment: "service", Channel: "ivr", Counts: rollup.Counts{CSATN: 10, CSATTop2: 2}}, // under 30: excluded
		{Moment: "service", Channel: "email", Counts: rollup.Counts{Events: 9}},            // no csat: not shown
		{Moment: "service", Channel: "voice", Previous: true, Counts: rollup.Counts{CSATN: 1000, CSATTop2: 1}},
		{Moment: "fmot", Channel: "web", Counts: rollup.Counts{CSATN: 40, CSATTop2: 30}}, // one channel: no index
		{Moment: "tmot", Channel: "email", Counts: rollup.Counts{Events: 3}},             // no csat: no moment
	}
	res := rollup.BuildConsistency(q, p, groups, metric.Rules{})
	if res.Window != "1h" || !res.From.Equal(p.From) || !res.To.Equal(p.To) || len(res.Moments) != 2 {
		t.Fatalf("result = %+v", res)
	}
	fmot, svc := res.Moments[0], res.Moments[1]
	if fmot.Moment != "fmot" || fmot.CCI.OK || fmot.CCI.N != 40 || fmot.Heterogeneity != nil || fmot.Gap != nil || len(fmot.Channels) != 1 {
		t.Errorf("fmot = %+v", fmot)
	}
	var chans []string
	for _, c := range svc.Channels {
		chans = append(chans, c.Channel)
	}
	if svc.Moment != "service" || !slices.Equal(chans, []string{"voice", "ivr", "chat"}) {
		t.Fatalf("service channels %v, want voice, ivr, chat (vocabulary order)", chans)
	}
	want := metric.Rules{}.Consistency([]metric.ChannelCounts{
		{Channel: "voice", N: 100, Top2: 55}, {Channel: "ivr", N: 10, Top2: 2}, {Channel: "chat", N: 50, Top2: 40}})
	if !sameFigure(svc.CCI, want.Index) || svc.CCI.N != 150 || *svc.Heterogeneity != *want.Heterogeneity ||
		svc.Gap.Best.Channel != "chat" || svc.Gap.Worst.Channel != "voice" {
		t.Errorf("service = %+v, heterogeneity %+v, gap %+v", svc, svc.Heterogeneity, svc.Gap)
	}
	if ivr := svc.Channels[1]; !ivr.Excluded || ivr.N != 10 || !sameFigure(ivr.CSAT, figure(0.2, 10)) || ivr.Low <= 0 || ivr.High >= 1 {
		t.Errorf("ivr = %+v", ivr)
	}
}

// TestBuildGolden pins the JSON of a Build result: a change of the API's shape or of a figure
// shows up here. Run go test ./internal/rollup/ -run Golden -update to rewrite it after a
// deliberate change (and update docs/api.md).
func TestBuildGolden(t *testing.T) {
	q := mustQuery(t, "window=5m&by=moment,channel&compare=previous")
	res := rollup.Build(q, q.Plan(testNow), compareGroups(), metric.Rules{})
	got, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "build.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("JSON differs from %s (run with -update if the change is intended):\n%s", path, got)
	}
}

func TestBuildNamesSteps(t *testing.T) {
	for _, tc := range []struct{ query, resolution, step string }{
		{"window=1m&series=true", "1s", "2s"},
		{"window=5m&series=true", "10s", "10s"},
		{"window=15m&series=true", "30s", "30s"},
		{"window=1h&series=true", "2m", "2m"},
		{"window=1h&series=true&region=north", "1m", "1m"},
		{"window=24h&series=true", "30m", "30m"},
		{"window=24h&series=true&region=north", "1h", "1h"},
		{"window=15m&by=touchpoint", "1m", ""},
	} {
		q := mustQuery(t, tc.query)
		res := rollup.Build(q, q.Plan(testNow), nil, metric.Rules{})
		if res.Resolution != tc.resolution || res.Step != tc.step {
			t.Errorf("%s: resolution %q, step %q; want %q, %q", tc.query, res.Resolution, res.Step, tc.resolution, tc.step)
		}
	}
}

func TestAttachRecovery(t *testing.T) {
	q := mustQuery(t, "window=1h&by=moment&recovery=true")
	p := q.Plan(testNow)
	res := rollup.Build(q, p, []rollup.Group{
		{Moment: "fmot", Counts: rollup.Counts{Events: 10}},
		{Moment: "service", Counts: rollup.Counts{Events: 20}},
	}, metric.Rules{})
	rollup.AttachRecovery(&res, []rollup.RecoveryGroup{
		{Moment: "service", Recovered: 6, Lost: 2, Pending: 3},
		{Moment: "tmot", Recovered: 1}, // no row of its own: counts in the total only
	}, metric.Rules{})
	fmot, svc := res.Rows[0].Recovery, res.Rows[1].Recovery
	if fmot == nil || fmot.Rate.OK || fmot.Rate.N != 0 || fmot.Pending != 0 {
		t.Errorf("fmot recovery = %+v, want no rate and nothing pending", fmot)
	}
	if svc == nil || !sameFigure(svc.Rate, figure(0.75, 8)) || svc.Pending != 3 {
		t.Errorf("service recovery = %+v, want 6 of 8 and 3 pending", svc)
	}
	if tot := res.Total.Recovery; tot == nil || !sameFigure(tot.Rate, figure(7.0/9, 9)) || tot.Pending != 3 {
		t.Errorf("total recovery = %+v, want 7 of 9 and 3 pending", tot)
	}
}

// TestBuildSeriesPartialBuckets: the bucket the window starts in and those that end after the
// events have arrived are partial, with the seconds they cover: up to the plan's Now, or only
// up to the newest events' step when those are older (events still on their way), unless they
// are so old that the traffic has stopped.
func TestBuildSeriesPartialBuckets(t *testing.T) {
	q := mustQuery(t, "window=5m&by=moment&series=true")
	at := func(m, s int) time.Time { return time.Date(2026, 3, 10, 10, m, s, 0, time.UTC) }
	// A plan on the one-second table, which 5m no longer reads, so that the window starts inside
	// a 10 s bucket: [10:12:43, 10:17:43) at 10 s steps, now 10:17:42.5.
	p := rollup.Plan{Table: "overview_1s", Resolution: time.Second, From: at(12, 43), To: at(17, 43), Now: testNow}
	for _, tc := range []struct {
		name   string
		newest time.Time
		// tail are the seconds covered by the buckets of 10:17:20, :30 and :40; −1: whole.
		tail []float64
	}{
		{"events up to now", at(17, 42), []float64{-1, -1, 2.5}},
		{"newest events a second old", at(17, 41), []float64{-1, -1, 2}},
		{"newest events 13 s old: still on their way", at(17, 29), []float64{-1, 0, 0}},
		{"newest events 15 s old", at(17, 27), []float64{8, 0, 0}},
		{"no events for 2 minutes: the traffic stopped", at(15, 30), []float64{-1, -1, 2.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			groups := []rollup.Group{
				{Moment: "service", Bucket: at(12, 40), Newest: at(12, 45), Counts: rollup.Counts{Events: 3}},
				{Moment: "service", Bucket: at(15, 0), Newest: at(15, 3), Counts: rollup.Counts{Events: 10}},
				{Moment: "service", Bucket: tc.newest.Truncate(10 * time.Second), Newest: tc.newest, Counts: rollup.Counts{Events: 1}},
			}
			pts := rollup.Build(q, p, groups, metric.Rules{}).Rows[0].Series
			if first := pts[0]; !first.Partial || first.Seconds != 7 || !first.T.Equal(at(12, 40)) {
				t.Errorf("first bucket %v partial %v, %v s; want 10:12:40, partial, 7 s (from 10:12:43)", first.T, first.Partial, first.Seconds)
			}
			tail := pts[len(pts)-3:]
			for i, pt := range pts[1:] {
				want := -1.0
				if k := i + 1 - (len(pts) - 3); k >= 0 {
					want = tc.tail[k]
				}
				if pt.Partial != (want >= 0) || pt.Partial && pt.Seconds != want || !pt.Partial && pt.Seconds != 0 {
					t.Errorf("bucket %v partial %v, %v s; want %v s (−1: whole)", pt.T.Format(time.TimeOnly), pt.Partial, pt.Seconds, want)
				}
			}
			if !tail[2].T.Equal(at(17, 40)) {
				t.Errorf("last bucket at %v, want 10:17:40", tail[2].T)
			}
		})
	}
}
