package chart_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/chart"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var rules = metric.Rules{}

// csat is a CSAT figure of n answers with top2 of them 4 or 5 (no value below the minimum n).
func csat(n, top2 int64) metric.Figure { return rules.CSAT(n, top2) }

// gridRows are a moment × channel grid as the live feed builds it (moment × channel, compared
// with the previous period): a few cells with enough answers, one below the minimum n (shown
// as "-"), cells without events (not in the rows: not drawn), and judged changes: service ×
// voice drops 30 CSAT points on 500 answers a side (worse), service × chat drops as much on 20
// (too few to judge), service × email rises 20 points on 400 (better), zmot × web moves one
// answer in 40 (no significant change).
func gridRows() []rollup.Row {
	q, err := rollup.ParseQuery(url.Values{"window": {"5m"}, "by": {"moment,channel"}, "compare": {"previous"}})
	if err != nil {
		panic(err)
	}
	group := func(m, c string, previous bool, events, n, top2 uint64) rollup.Group {
		return rollup.Group{Moment: m, Channel: c, Previous: previous,
			Counts: rollup.Counts{Events: events, CSATN: n, CSATTop2: top2}}
	}
	groups := []rollup.Group{
		group("zmot", "web", false, 120, 40, 30), group("zmot", "web", true, 110, 40, 31),
		group("fmot", "web", false, 80, 20, 17),
		group("fmot", "store", false, 30, 10, 5),
		group("smot", "field_service", false, 25, 3, 3), // below the minimum n: "-", never 100 %
		group("tmot", "review_site", false, 12, 8, 2),
		group("service", "voice", false, 900, 500, 200), group("service", "voice", true, 900, 500, 350),
		group("service", "chat", false, 25, 20, 8), group("service", "chat", true, 25, 20, 14),
		group("service", "email", false, 700, 400, 320), group("service", "email", true, 700, 400, 240),
	}
	// Abandonment doubles on voice as well: the cell lists both changes, the surer one first.
	groups[6].WithOutcome, groups[6].Abandoned = 600, 96
	groups[7].WithOutcome, groups[7].Abandoned = 600, 48
	return rollup.Build(q, q.Plan(t0), groups, rules).Rows
}

var t0 = time.Date(2026, 3, 14, 9, 26, 0, 0, time.UTC)

// trendRows are per-moment series of four 10 s buckets, the first cut by the window's start (7
// of its 10 s) and the last still filling (6 s in; service's only 4 s, too little to draw);
// fmot's second bucket has too few csat answers and tmot has no row at all.
func trendRows() []rollup.Row {
	point := func(i int, events uint64, n, top2 int64) rollup.Point {
		p := rollup.Point{T: t0.Add(time.Duration(i) * 10 * time.Second), Metrics: rollup.Metrics{Events: events,
			RatePerSecond: float64(events) / 10, CSAT: csat(n, top2)}}
		switch i {
		case 0:
			p.Partial, p.Seconds = true, 7
		case 3:
			p.Partial, p.Seconds = true, 6
		}
		return p
	}
	svc := []rollup.Point{point(0, 14, 7, 5), point(1, 22, 11, 9), point(2, 18, 9, 6), point(3, 4, 2, 2)}
	svc[3].Seconds = 4
	return []rollup.Row{
		{Moment: "zmot", Series: []rollup.Point{point(0, 7, 6, 5), point(1, 12, 8, 6), point(2, 9, 5, 5), point(3, 6, 5, 4)}},
		{Moment: "fmot", Series: []rollup.Point{point(0, 5, 5, 4), point(1, 3, 2, 2), point(2, 8, 6, 3), point(3, 3, 0, 0)}},
		{Moment: "smot", Series: []rollup.Point{point(0, 0, 0, 0), point(1, 4, 0, 0), point(2, 5, 5, 1), point(3, 0, 0, 0)}},
		{Moment: "service", Series: svc},
	}
}

// serviceConsistency is the service moment: voice and chat counted, ivr excluded (n < 30)
// and drawn grey, the other channels without answers.
func serviceConsistency() rollup.MomentConsistency {
	line := func(ch string, n, top2 int64, excluded bool) rollup.ChannelLine {
		low, high := metric.Wilson(top2, n)
		return rollup.ChannelLine{Channel: ch, N: n, CSAT: csat(n, top2), Low: low, High: high, Excluded: excluded}
	}
	cons := rules.Consistency([]metric.ChannelCounts{{Channel: "voice", N: 100, Top2: 55}, {Channel: "chat", N: 50, Top2: 40}})
	return rollup.MomentConsistency{
		Moment: "service",
		CCI:    cons.Index,
		Channels: []rollup.ChannelLine{
			line("voice", 100, 55, false),
			line("ivr", 10, 2, true),
			line("chat", 50, 40, false),
		},
	}
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		opts chart.Options
	}{
		{"heatmap", chart.Heatmap(gridRows())},
		{"heatmap_empty", chart.Heatmap(nil)},
		{"trend_volume", chart.Trend("Events per moment", trendRows(), chart.Volume)},
		{"trend_csat", chart.Trend("CSAT per moment (%)", trendRows(), chart.CSATPercent)},
		{"channel_bars", chart.ChannelBars(serviceConsistency())},
		{"channel_bars_no_answers", chart.ChannelBars(rollup.MomentConsistency{Moment: "fmot"})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, tc.opts)
			// An update carries the same series data, nothing else.
			golden(t, tc.name+".update", chart.SeriesOnly(tc.opts))
		})
	}
}

// golden compares o's JSON with testdata/<name>.golden.json; -update rewrites the file.
func golden(t *testing.T, name string, o chart.Options) {
	t.Helper()
	got, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
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
		t.Fatalf("%v (run go test ./internal/chart/ -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("options differ from %s (run with -update if the change is intended):\n%s", path, got)
	}
}

// series returns the option's series list.
func series(t *testing.T, o chart.Options) []map[string]any {
	t.Helper()
	list, ok := o["series"].([]any)
	if !ok {
		t.Fatalf("series = %T, want a list", o["series"])
	}
	out := make([]map[string]any, len(list))
	for i, s := range list {
		out[i] = s.(map[string]any)
	}
	return out
}

func TestSeriesOnlyKeepsDataInOrder(t *testing.T) {
	for name, o := range map[string]chart.Options{
		"heatmap":      chart.Heatmap(gridRows()),
		"trend":        chart.Trend("t", trendRows(), chart.Volume),
		"channel_bars": chart.ChannelBars(serviceConsistency()),
	} {
		t.Run(name, func(t *testing.T) {
			u := chart.SeriesOnly(o)
			if len(u) != 1 {
				t.Fatalf("update keys = %v, want only series", u)
			}
			full, only := series(t, o), series(t, u)
			if len(full) != len(only) {
				t.Fatalf("%d series in the update, %d in the options", len(only), len(full))
			}
			for i := range full {
				if len(only[i]) != 1 {
					t.Errorf("series %d of the update = %v, want only data", i, only[i])
				}
				if !reflect.DeepEqual(only[i]["data"], full[i]["data"]) {
					t.Errorf("series %d: update data %v, want %v", i, only[i]["data"], full[i]["data"])
				}
			}
		})
	}
	if u := chart.SeriesOnly(chart.Options{"title": map[string]any{}}); len(series(t, u)) != 0 {
		t.Errorf("options without series: update %v, want an empty series list", u)
	}
}

func TestHeatmapCells(t *testing.T) {
	o := chart.Heatmap(gridRows())
	data := series(t, o)[0]["data"].([]any)
	if want := len(event.Moments) * len(event.Channels); len(data) != want {
		t.Fatalf("%d cells, want %d (every moment × channel)", len(data), want)
	}
	cell := map[[2]int]map[string]any{}
	for _, d := range data {
		item := d.(map[string]any)
		v := item["value"].([]any)
		cell[[2]int{int(v[0].(float64)), int(v[1].(float64))}] = item
	}
	at := func(m, c string) map[string]any {
		return cell[[2]int{index(event.Channels, c), index(event.Moments, m)}]
	}
	for _, tc := range []struct {
		moment, channel string
		csat, code      any
		n               any
	}{
		{"zmot", "web", 75.0, 0.0, 40.0},         // judged: no significant change
		{"fmot", "store", 50.0, 2.0, 10.0},       // too few answers to judge
		{"smot", "field_service", "-", 2.0, 3.0}, // 3 answers: "not enough data", still drawn
		{"tmot", "voice", "-", "-", nil},         // no events: not drawn
		{"service", "voice", 40.0, -1.0, 500.0},  // −30 points on 500 answers: worse
		{"service", "chat", 40.0, 2.0, 20.0},     // −30 points on 20 answers: too few
		{"service", "email", 80.0, 1.0, 400.0},   // +20 points on 400 answers: better
	} {
		item := at(tc.moment, tc.channel)
		v := item["value"].([]any)
		if v[2] != tc.csat || v[3] != tc.code || item["n"] != tc.n {
			t.Errorf("%s × %s = %v n %v, want CSAT %v, code %v, n %v", tc.moment, tc.channel, v, item["n"], tc.csat, tc.code, tc.n)
		}
	}
	// The worse cell says why, surest change first; CSAT's own change is always there.
	voice := at("service", "voice")
	changes, _ := voice["changes"].([]any)
	if len(changes) != 2 || changes[0].(map[string]any)["figure"] != "csat" || changes[1].(map[string]any)["figure"] != "abandonment" {
		t.Fatalf("service × voice changes = %v, want csat then abandonment", changes)
	}
	abandon := changes[1].(map[string]any)
	if abandon["verdict"] != "worse" || abandon["by"] != 0.08 || abandon["n"] != 600.0 || abandon["n_previous"] != 600.0 ||
		abandon["p"].(float64) >= rollup.JudgeAlpha {
		t.Errorf("abandonment change = %v", abandon)
	}
	if c := voice["csat"].(map[string]any); c["by"] != -0.3 || c["verdict"] != "worse" || c["n"] != 500.0 {
		t.Errorf("service × voice csat = %v", c)
	}
	if c := at("service", "chat")["csat"].(map[string]any); c["by"] != -0.3 || c["verdict"] != "neutral" || c["reason"] != "too_few" || c["p"] != nil {
		t.Errorf("service × chat csat = %v, want the same drop, neutral, too few", c)
	}
	if _, ok := at("zmot", "web")["changes"]; ok {
		t.Errorf("a cell without significant changes lists some: %v", at("zmot", "web"))
	}
	// The visual map colours by the judgement code, not by CSAT.
	vm := o["visualMap"].([]any)[0].(map[string]any)
	if vm["dimension"] != 3.0 || vm["type"] != "piecewise" {
		t.Errorf("visual map %v, want pieces over the judgement (dimension 3)", vm)
	}
	xAxis := o["xAxis"].([]any)[0].(map[string]any)
	yAxis := o["yAxis"].([]any)[0].(map[string]any)
	if !reflect.DeepEqual(texts(xAxis["data"]), event.Channels) || !reflect.DeepEqual(texts(yAxis["data"]), event.Moments) {
		t.Errorf("axes %v × %v, want channels × moments in vocabulary order", xAxis["data"], yAxis["data"])
	}
}

func TestTrendPoints(t *testing.T) {
	o := chart.Trend("CSAT", trendRows(), chart.CSATPercent)
	s := series(t, o)
	if len(s) != 2*len(event.Moments) {
		t.Fatalf("%d lines, want two per moment (whole and partial buckets)", len(s))
	}
	for i, m := range event.Moments {
		if s[i]["name"] != m || s[len(event.Moments)+i]["name"] != m {
			t.Errorf("lines %d and %d are %v and %v, want %s twice", i, len(event.Moments)+i, s[i]["name"], s[len(event.Moments)+i]["name"], m)
		}
		if ls, _ := s[len(event.Moments)+i]["lineStyle"].(map[string]any); ls["type"] != "dashed" {
			t.Errorf("partial line of %s has style %v, want dashed", m, ls)
		}
	}
	values := func(line map[string]any) []any {
		var out []any
		for _, d := range line["data"].([]any) {
			out = append(out, d.(map[string]any)["value"].([]any)[1])
		}
		return out
	}
	for _, tc := range []struct {
		moment        int
		solid, dashed []any
	}{
		// Whole buckets solid; each partial one dashed, joined to its whole neighbour.
		{0, []any{"-", 75.0, 100.0, "-"}, []any{83.33, 75.0, 100.0, 80.0}},
		// fmot's second bucket has too few answers; its last has none.
		{1, []any{"-", "-", 50.0, "-"}, []any{80.0, "-", 50.0, "-"}},
		// service's last bucket covers 4 s of 10: left out, not drawn as a drop.
		{4, []any{"-", 81.82, 66.67, "-"}, []any{71.43, 81.82, "-", "-"}},
	} {
		if got := values(s[tc.moment]); !reflect.DeepEqual(got, tc.solid) {
			t.Errorf("%s solid line %v, want %v", event.Moments[tc.moment], got, tc.solid)
		}
		if got := values(s[len(event.Moments)+tc.moment]); !reflect.DeepEqual(got, tc.dashed) {
			t.Errorf("%s dashed line %v, want %v", event.Moments[tc.moment], got, tc.dashed)
		}
	}
	// A moment without events is an empty line, never data: null (which an update would
	// merge as "keep the old points").
	if d, ok := s[3]["data"].([]any); !ok || len(d) != 0 {
		t.Errorf("tmot without a row has data %#v, want []", s[3]["data"])
	}
	if d, ok := s[len(event.Moments)+3]["data"].([]any); !ok || len(d) != 0 {
		t.Errorf("tmot's partial line without a row has data %#v, want []", s[len(event.Moments)+3]["data"])
	}
}

// TestVolumeOfPartialBuckets: a bucket still filling is measured over the seconds it covers,
// so 6 events in the first 6 s of a 10 s bucket are as many per second as 10 in a whole one.
func TestVolumeOfPartialBuckets(t *testing.T) {
	s := series(t, chart.Trend("Events", trendRows(), chart.Volume))
	var got []any
	for _, d := range s[len(event.Moments)]["data"].([]any) { // zmot, dashed
		got = append(got, d.(map[string]any)["value"].([]any)[1])
	}
	if want := []any{1.0, 1.2, 0.9, 1.0}; !reflect.DeepEqual(got, want) {
		t.Errorf("zmot events per second %v, want %v (7 in 7 s, 12 and 9 in 10 s, 6 in 6 s)", got, want)
	}
}

func TestChannelBarsExcludedGrey(t *testing.T) {
	s := series(t, chart.ChannelBars(serviceConsistency()))
	if len(s) != 3 {
		t.Fatalf("%d series, want share, interval base, interval", len(s))
	}
	share := s[0]["data"].([]any)
	ivr := share[index(event.Channels, "ivr")].(map[string]any)
	voice := share[index(event.Channels, "voice")].(map[string]any)
	if c := ivr["itemStyle"].(map[string]any)["color"]; c != "#999999" {
		t.Errorf("excluded ivr drawn %v, want grey", c)
	}
	if c := voice["itemStyle"].(map[string]any)["color"]; c == "#999999" {
		t.Errorf("included voice drawn grey")
	}
	if web := share[index(event.Channels, "web")].(map[string]any); web["value"] != "-" {
		t.Errorf("web without answers = %v, want a gap", web["value"])
	}
	if s[1]["stack"] != s[2]["stack"] || s[1]["stack"] == nil {
		t.Errorf("interval base and interval stacks %v, %v: want the same stack", s[1]["stack"], s[2]["stack"])
	}
}

func index(list []string, v string) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

func texts(v any) []string {
	list, _ := v.([]any)
	out := make([]string, len(list))
	for i, x := range list {
		out[i], _ = x.(string)
	}
	return out
}
