// Package chart builds the ECharts options of the dashboards with go-echarts, from the rollup
// results. It is pure: figures in, JSON-ready option maps out. The server sends a chart's full
// options once (in a snapshot) and afterwards only its series data (in updates), which the
// browser merges with setOption, so a chart is never rebuilt and never flickers.
//
// Every chart keeps its categories fixed (moments and channels in vocabulary order, a time
// axis for trends), so that an update never has to change an axis.
package chart

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
)

// Options is one chart's ECharts option object.
type Options map[string]any

// empty is how ECharts is told that a point has no value: a gap, never a zero.
const empty = "-"

// value is a figure's value for a chart, scaled, or the empty marker without enough data.
func value(f metric.Figure, scale float64) any {
	if !f.OK {
		return empty
	}
	return round(f.Value*scale, 2)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// validator is what every go-echarts chart offers.
type validator interface {
	Validate()
	JSON() map[string]any
}

// toOptions turns a go-echarts chart into a plain map, as the browser will receive it.
func toOptions(c validator) Options {
	c.Validate()
	return plain(c.JSON())
}

// plain is v as the browser will receive it: JSON objects as maps, numbers as float64.
func plain(v any) Options {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("chart: options do not marshal: %v", err)) // only our own types go in
	}
	var o Options
	if err := json.Unmarshal(b, &o); err != nil {
		panic(fmt.Sprintf("chart: options do not unmarshal: %v", err))
	}
	return o
}

// SeriesOnly is the part of an option object that changes from tick to tick: each series'
// data, by position. ECharts merges it into the chart it has.
func SeriesOnly(o Options) Options {
	list, _ := o["series"].([]any)
	out := make([]any, len(list))
	for i, s := range list {
		m, _ := s.(map[string]any)
		out[i] = map[string]any{"data": m["data"]}
	}
	return Options{"series": out}
}

// The colours of a judged change, and the codes that the heatmap's visual map reads from a
// cell's fourth value. A cell is coloured by the judgement of its changes against the previous
// period (see rollup.Judge), never by where its CSAT sits on a scale: a red cell is a figure
// that got significantly and materially worse, a grey one did not move beyond chance.
const (
	ColorWorse   = "#d73027"
	ColorBetter  = "#1a9850"
	ColorNeutral = "#b8c4d1"
	ColorTooFew  = "#e4e9ef"

	cellWorse   = -1
	cellNeutral = 0
	cellBetter  = 1
	cellTooFew  = 2
)

// HeatmapFigures are the figures whose changes colour a heatmap cell: those of the KPI tiles.
// One of them significantly worse makes the cell worse; better, when none is worse.
var HeatmapFigures = []string{"csat", "nps", "ces", "negative_rate", "abandonment", "wait_p90_ms"}

// Heatmap is the moment × channel grid: each cell shows its CSAT (top-2-box %, "-" below the
// minimum n) and is coloured by the judgement of its figures' changes against the previous
// period. A data item is {"value": [x, y, csat % or "-", code], "n": csat n, "csat": the CSAT
// change, "changes": the other figures' significant changes}, the last two as Change
// describes them; code is -1 worse, 0 no significant change, 1 better, 2 too few answers to
// judge anything, "-" for a cell without events (not drawn).
func Heatmap(rows []rollup.Row) Options {
	h := charts.NewHeatMap()
	h.SetGlobalOptions(
		charts.WithTitleOpts(opts.Title{Title: "CSAT % by moment and channel",
			Subtitle: "colour: significant change against the previous period"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(false)}), // one series: the visual map explains it
		// Every channel labelled (ECharts would skip some on a narrow screen); the journey
		// reads top to bottom.
		// No striped background: a cell without events is blank, unlike one with too few answers.
		charts.WithXAxisOpts(opts.XAxis{Type: "category", Data: event.Channels, AxisLabel: allLabels}),
		charts.WithYAxisOpts(opts.YAxis{Type: "category", Data: event.Moments, Inverse: opts.Bool(true)}),
		// The axis names inside the chart (a phone's narrow grid would cut the moments off),
		// the colour legend under them.
		charts.WithGridOpts(opts.Grid{Top: "70", Left: "8", Right: "16", Bottom: "40", ContainLabel: opts.Bool(true)}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}),
	)
	byCell := map[[2]string]*rollup.Row{}
	for i := range rows {
		byCell[[2]string{rows[i].Moment, rows[i].Channel}] = &rows[i]
	}
	var data []opts.HeatMapData
	var extras []map[string]any
	for y, m := range event.Moments {
		for x, c := range event.Channels {
			r := byCell[[2]string{m, c}]
			if r == nil {
				data = append(data, opts.HeatMapData{Value: []any{x, y, empty, empty}})
				extras = append(extras, nil)
				continue
			}
			code, changes := judgeCell(r)
			data = append(data, opts.HeatMapData{Value: []any{x, y, value(r.CSAT, 100), code}})
			extra := map[string]any{"n": r.CSAT.N, "events": r.Events, "csat": Change(r, "csat")}
			if len(changes) > 0 {
				extra["changes"] = changes
			}
			extras = append(extras, extra)
		}
	}
	h.AddSeries("CSAT %", data)
	o := toOptions(h)
	series := o["series"].([]any)[0].(map[string]any)
	// The fourth value is the judgement: it decides whether a cell is drawn and its colour.
	series["encode"] = map[string]any{"x": 0, "y": 1, "value": 3, "tooltip": 2}
	// Dark bold figures with a light outline read on every cell colour, on the light and the
	// dark (TV) theme alike.
	series["label"] = map[string]any{
		"show": true, "color": "#111", "fontWeight": "bold", "textBorderColor": "#fff", "textBorderWidth": 2,
	}
	// A gap between cells, in the page's background.
	series["itemStyle"] = map[string]any{"borderColor": "#fff", "borderWidth": 2}
	// ECharts redraws every cell at each update and fades new labels in from nothing: with
	// animation the figures would pulse at every tick.
	series["animation"] = false
	for i, item := range series["data"].([]any) {
		for k, v := range extras[i] {
			item.(map[string]any)[k] = v
		}
	}
	o["visualMap"] = []any{map[string]any{
		"type": "piecewise", "dimension": 3, "orient": "horizontal", "left": "center", "bottom": 0,
		"pieces": []any{
			map[string]any{"value": cellWorse, "label": "worse", "color": ColorWorse},
			map[string]any{"value": cellNeutral, "label": "no significant change", "color": ColorNeutral},
			map[string]any{"value": cellBetter, "label": "better", "color": ColorBetter},
			map[string]any{"value": cellTooFew, "label": fmt.Sprintf("too few to judge (n < %d)", rollup.JudgeMinN), "color": ColorTooFew},
		},
	}}
	return plain(o) // the additions above as the browser will see them, like the rest
}

// judgeCell is a cell's code and its figures' significant changes, the smallest p first.
func judgeCell(r *rollup.Row) (code int, changes []map[string]any) {
	if r.Judgement == nil {
		return cellTooFew, nil
	}
	code = cellTooFew
	type hit struct {
		name string
		j    rollup.Judgement
	}
	var hits []hit
	for _, name := range HeatmapFigures {
		j, _ := r.Judgement.Get(name)
		if j.Tested && code == cellTooFew {
			code = cellNeutral
		}
		switch j.Verdict {
		case rollup.Worse:
			code = cellWorse
			hits = append(hits, hit{name, j})
		case rollup.Better:
			if code != cellWorse {
				code = cellBetter
			}
			hits = append(hits, hit{name, j})
		}
	}
	sort.SliceStable(hits, func(a, b int) bool {
		if (hits[a].j.Verdict == rollup.Worse) != (hits[b].j.Verdict == rollup.Worse) {
			return hits[a].j.Verdict == rollup.Worse
		}
		return hits[a].j.P < hits[b].j.P
	})
	for _, h := range hits {
		changes = append(changes, Change(r, h.name))
	}
	return code, changes
}

// Change describes the change of one of a row's figures for a chart's tooltip: {"figure",
// "value" (the figure's value, or null), "by" (the change, or null), "verdict", "reason",
// "test", "p" (null when no test ran), "n", "n_previous"}, values rounded for the wire.
func Change(r *rollup.Row, name string) map[string]any {
	out := map[string]any{"figure": name, "value": nil, "by": nil, "verdict": rollup.Neutral, "reason": rollup.TooFew, "p": nil}
	f, _ := r.Figure(name)
	out["n"] = f.N
	if f.OK {
		out["value"] = significant(f.Value, 4)
	}
	if r.Delta != nil {
		if c, _ := r.Delta.Change(name); c.OK {
			out["by"] = significant(c.By, 4)
		}
	}
	if r.Judgement != nil {
		j, _ := r.Judgement.Get(name)
		out["verdict"], out["reason"], out["test"], out["n_previous"] = j.Verdict, j.Reason, j.Test, j.NPrevious
		if j.Tested {
			out["p"] = significant(j.P, 2)
		}
	}
	return out
}

// significant rounds v to the given number of significant digits (a p-value of 3.1e-07 stays
// one), so the wire carries no more digits than a screen shows.
func significant(v float64, digits int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', digits, 64), 64)
	return r
}

// allLabels labels every category of an axis, slanted so that eleven channels fit. (go-echarts
// writes the interval as the string "0", which ECharts reads as the number.)
var allLabels = &opts.AxisLabel{Interval: "0", Rotate: 30}

// minPartialShare is the smallest part of a trend bucket that a partial bucket must cover to
// be drawn: a bucket a few seconds old says too little about its rate or its shares, and the
// events of its last second may still be on their way.
const minPartialShare = 0.5

// Trend is a line per moment over the window's buckets of one measure of the rows' series.
// measure picks the value of a point, e.g. events per second or CSAT %. Partial buckets (the
// first, cut by the window's start, and the last, still filling) are not part of the solid
// line: each moment has a second, dashed series of the same name (ECharts gives both the
// same colour and one legend entry) that joins them to their whole neighbour, so a bucket
// still filling reads as provisional, not as a drop. A partial bucket covering less than half
// of its step is left out.
func Trend(title string, rows []rollup.Row, measure func(p rollup.Point) any) Options {
	l := charts.NewLine()
	l.SetGlobalOptions(
		charts.WithTitleOpts(opts.Title{Title: title}),
		charts.WithXAxisOpts(opts.XAxis{Type: "time"}),
		charts.WithYAxisOpts(opts.YAxis{Type: "value"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom", Data: event.Moments}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
	)
	byMoment := map[string]rollup.Row{}
	for _, r := range rows {
		byMoment[r.Moment] = r
	}
	// Small symbols: a point between two gaps has no line to either side and would otherwise
	// not be drawn at all.
	line := opts.LineChart{ShowSymbol: opts.Bool(true), SymbolSize: 4, ConnectNulls: opts.Bool(false)}
	dashed := make([][]opts.LineData, len(event.Moments))
	for i, m := range event.Moments {
		solid, partial := trendLines(byMoment[m].Series, measure)
		l.AddSeries(m, solid, charts.WithLineChartOpts(line))
		dashed[i] = partial
	}
	for i, m := range event.Moments {
		l.AddSeries(m, dashed[i], charts.WithLineChartOpts(line),
			charts.WithLineStyleOpts(opts.LineStyle{Type: "dashed"}))
	}
	o := toOptions(l)
	// No update animation: points change at every tick and partial buckets move between the
	// two lines; while ECharts morphed the old lines into the new ones (a second, the length
	// of a tick) screenshots caught the newest segments undrawn, points without lines.
	for _, s := range o["series"].([]any) {
		s.(map[string]any)["animation"] = false
	}
	// hideOverlap (ECharts 5.2) drops time labels that would overlap on a narrow chart;
	// go-echarts v2.6 has no field for it.
	for _, a := range o["xAxis"].([]any) {
		a.(map[string]any)["axisLabel"] = map[string]any{"hideOverlap": true}
	}
	return o
}

// trendLines splits a series into the points of its solid line (whole buckets) and of its
// dashed one (partial buckets with their whole neighbours); every other point of each is a gap.
// Never nil: a moment without events gets empty lines ([]), not "data": null, which an update
// would merge as "leave the old points".
func trendLines(pts []rollup.Point, measure func(p rollup.Point) any) (solid, dashed []opts.LineData) {
	solid, dashed = []opts.LineData{}, []opts.LineData{}
	if len(pts) == 0 {
		return solid, dashed
	}
	var step float64
	if len(pts) > 1 {
		step = pts[1].T.Sub(pts[0].T).Seconds()
	}
	shown := func(i int) bool {
		return i >= 0 && i < len(pts) && (!pts[i].Partial || pts[i].Seconds >= minPartialShare*step)
	}
	for i, p := range pts {
		s, d := any(empty), any(empty)
		v := measure(p)
		switch {
		case !shown(i):
		case p.Partial:
			d = v
		default:
			s = v
			// A whole bucket next to a shown partial one also starts or ends the dashed line.
			for _, j := range []int{i - 1, i + 1} {
				if shown(j) && pts[j].Partial {
					d = v
				}
			}
		}
		solid = append(solid, opts.LineData{Value: []any{p.T.UnixMilli(), s}})
		dashed = append(dashed, opts.LineData{Value: []any{p.T.UnixMilli(), d}})
	}
	return solid, dashed
}

// Volume is the measure of a trend point: its events per second, over the part of the bucket
// that its figures cover when it is partial, so a bucket still filling is not a drop.
func Volume(p rollup.Point) any {
	if p.Partial {
		if p.Seconds <= 0 {
			return empty
		}
		return round(float64(p.Events)/p.Seconds, 2)
	}
	return round(p.RatePerSecond, 2)
}

// CSATPercent is the measure of a trend point: its CSAT in %, a gap below the minimum n.
func CSATPercent(p rollup.Point) any { return value(p.CSAT, 100) }

// ChannelBars shows one moment's CSAT per channel with its 95% Wilson interval as a floating
// bar from low to high (a transparent base stacked under the interval), so two channels whose
// intervals do not overlap visibly differ. Channels left out of the index are drawn grey.
func ChannelBars(m rollup.MomentConsistency) Options {
	b := charts.NewBar()
	// The moment and its index in the title, what the bars are in the subtitle: short lines
	// that fit a chart a fifth of a screen wide.
	title := m.Moment
	if m.CCI.OK {
		title += fmt.Sprintf(" · CCI %.2f", m.CCI.Value)
	}
	b.SetGlobalOptions(
		charts.WithTitleOpts(opts.Title{Title: title, Subtitle: "CSAT % by channel, 95% interval"}),
		charts.WithXAxisOpts(opts.XAxis{Type: "category", AxisLabel: allLabels}),
		charts.WithYAxisOpts(opts.YAxis{Type: "value", Min: 0, Max: 100}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		// The transparent base of the intervals is no series to show or hide.
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom", Data: []string{"CSAT %", "95% interval"}}),
	)
	lines := map[string]rollup.ChannelLine{}
	for _, c := range m.Channels {
		lines[c.Channel] = c
	}
	var share, base, interval []opts.BarData
	for _, ch := range event.Channels {
		c, ok := lines[ch]
		if !ok {
			share = append(share, opts.BarData{Value: empty})
			base = append(base, opts.BarData{Value: empty})
			interval = append(interval, opts.BarData{Value: empty})
			continue
		}
		color := "#4575b4"
		if c.Excluded {
			color = "#999999"
		}
		share = append(share, opts.BarData{Value: value(c.CSAT, 100), ItemStyle: &opts.ItemStyle{Color: color}})
		base = append(base, opts.BarData{Value: round(c.Low*100, 2)})
		interval = append(interval, opts.BarData{Value: round((c.High-c.Low)*100, 2)})
	}
	b.SetXAxis(event.Channels)
	b.AddSeries("CSAT %", share)
	b.AddSeries("interval base", base, charts.WithBarChartOpts(opts.BarChart{Stack: "ci"}),
		charts.WithItemStyleOpts(opts.ItemStyle{Color: "transparent"}))
	b.AddSeries("95% interval", interval, charts.WithBarChartOpts(opts.BarChart{Stack: "ci", BarWidth: "8%"}),
		charts.WithItemStyleOpts(opts.ItemStyle{Color: "rgba(0,0,0,0.35)"}))
	return toOptions(b)
}
