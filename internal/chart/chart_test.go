package chart_test

import (
	"bytes"
	"encoding/json"
	"flag"
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

// gridRows are a moment × channel grid: a few cells with enough answers, one below the
// minimum n (shown as a gap), and cells without events (not in the rows: gaps too).
func gridRows() []rollup.Row {
	row := func(m, c string, events uint64, n, top2 int64) rollup.Row {
		return rollup.Row{Moment: m, Channel: c, Metrics: rollup.Metrics{Events: events, CSAT: csat(n, top2)}}
	}
	return []rollup.Row{
		row("zmot", "web", 120, 40, 30),
		row("fmot", "web", 80, 20, 17),
		row("fmot", "store", 30, 10, 5),
		row("smot", "field_service", 25, 3, 3), // below the minimum n: a gap, never 100 %
		row("tmot", "review_site", 12, 8, 2),
		row("service", "voice", 90, 50, 31),
		row("service", "chat", 60, 24, 20),
	}
}

var t0 = time.Date(2026, 3, 14, 9, 26, 0, 0, time.UTC)

// trendRows are per-moment series of three 10 s buckets; fmot's middle bucket has too few
// csat answers and tmot has no row at all.
func trendRows() []rollup.Row {
	point := func(i int, events uint64, n, top2 int64) rollup.Point {
		return rollup.Point{T: t0.Add(time.Duration(i) * 10 * time.Second), Metrics: rollup.Metrics{Events: events, CSAT: csat(n, top2)}}
	}
	return []rollup.Row{
		{Moment: "zmot", Series: []rollup.Point{point(0, 10, 6, 5), point(1, 12, 8, 6), point(2, 9, 5, 5)}},
		{Moment: "fmot", Series: []rollup.Point{point(0, 7, 5, 4), point(1, 3, 2, 2), point(2, 8, 6, 3)}},
		{Moment: "smot", Series: []rollup.Point{point(0, 0, 0, 0), point(1, 4, 0, 0), point(2, 5, 5, 1)}},
		{Moment: "service", Series: []rollup.Point{point(0, 20, 10, 7), point(1, 22, 11, 9), point(2, 18, 9, 6)}},
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
		{"gauge_nps", chart.Gauge("NPS", rules.NPS(40, 22, 8), 1, -100, 100)},
		{"gauge_csat_no_data", chart.Gauge("CSAT %", csat(3, 3), 100, 0, 100)},
		{"funnel", chart.Funnel(gridRows())},
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
		"gauge":        chart.Gauge("NPS", rules.NPS(40, 22, 8), 1, -100, 100),
		"funnel":       chart.Funnel(gridRows()),
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
	cell := map[[2]int]any{}
	for _, d := range data {
		v := d.(map[string]any)["value"].([]any)
		cell[[2]int{int(v[0].(float64)), int(v[1].(float64))}] = v[2]
	}
	at := func(m, c string) any {
		return cell[[2]int{index(event.Channels, c), index(event.Moments, m)}]
	}
	for _, tc := range []struct {
		moment, channel string
		want            any
	}{
		{"zmot", "web", 75.0},
		{"fmot", "store", 50.0},
		{"smot", "field_service", "-"}, // 3 answers: below the minimum n
		{"tmot", "voice", "-"},         // no events
	} {
		if got := at(tc.moment, tc.channel); got != tc.want {
			t.Errorf("%s × %s = %v, want %v", tc.moment, tc.channel, got, tc.want)
		}
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
	if len(s) != len(event.Moments) {
		t.Fatalf("%d lines, want one per moment", len(s))
	}
	for i, m := range event.Moments {
		if s[i]["name"] != m {
			t.Errorf("line %d is %v, want %s", i, s[i]["name"], m)
		}
	}
	fmot := s[1]["data"].([]any)
	mid := fmot[1].(map[string]any)["value"].([]any)
	if mid[0] != float64(t0.Add(10*time.Second).UnixMilli()) || mid[1] != "-" {
		t.Errorf("fmot's second point = %v, want [ms of t0+10s, \"-\"]", mid)
	}
	// A moment without events is an empty line, never data: null (which an update would
	// merge as "keep the old points").
	if d, ok := s[3]["data"].([]any); !ok || len(d) != 0 {
		t.Errorf("tmot without a row has data %#v, want []", s[3]["data"])
	}
}

func TestGaugeWithoutData(t *testing.T) {
	item := func(o chart.Options) map[string]any {
		return series(t, o)[0]["data"].([]any)[0].(map[string]any)
	}
	// Not enough data: no number, no needle, and a reason, all on the data item so that an
	// update (data only) can bring the value back.
	// The item keeps the chart's name whatever n is (a renamed item makes ECharts swing the
	// needle from the start of the dial).
	none := item(chart.SeriesOnly(chart.Gauge("CSAT %", csat(3, 3), 100, 0, 100)))
	detail, _ := none["detail"].(map[string]any)
	if none["value"] != "-" || none["name"] != "CSAT %" || detail["formatter"] != "not enough data" || none["itemStyle"] == nil {
		t.Errorf("gauge without data = %v", none)
	}
	some := item(chart.SeriesOnly(chart.Gauge("CSAT %", csat(40, 30), 100, 0, 100)))
	detail, _ = some["detail"].(map[string]any)
	if some["value"] != 75.0 || some["name"] != "CSAT %" || detail["formatter"] != "{value}" || some["itemStyle"] != nil {
		t.Errorf("gauge with data = %v", some)
	}
	s := series(t, chart.Gauge("CES", rules.CES(10, 50), 1, 1, 7))[0]
	if s["min"] != 1.0 || s["max"] != 7.0 {
		t.Errorf("CES gauge range %v..%v, want 1..7", s["min"], s["max"])
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
