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
	b, err := json.Marshal(c.JSON())
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

// Heatmap is the moment × channel grid of CSAT (top-2-box %, empty below the minimum n).
func Heatmap(rows []rollup.Row) Options {
	h := charts.NewHeatMap()
	h.SetGlobalOptions(
		charts.WithTitleOpts(opts.Title{Title: "CSAT by moment and channel (%)"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(false)}), // one series: the visual map explains it
		// Every channel labelled (ECharts would skip some on a narrow screen); the journey
		// reads top to bottom.
		charts.WithXAxisOpts(opts.XAxis{Type: "category", Data: event.Channels, SplitArea: &opts.SplitArea{Show: opts.Bool(true)},
			AxisLabel: allLabels}),
		charts.WithYAxisOpts(opts.YAxis{Type: "category", Data: event.Moments, SplitArea: &opts.SplitArea{Show: opts.Bool(true)},
			Inverse: opts.Bool(true)}),
		// Room under the slanted channel names for the colour scale.
		charts.WithGridOpts(opts.Grid{Bottom: "100"}),
		charts.WithVisualMapOpts(opts.VisualMap{
			Min: 0, Max: 100, Calculable: opts.Bool(true), Orient: "horizontal", Left: "center", Bottom: "0",
			InRange: &opts.VisualMapInRange{Color: []string{"#d73027", "#fee08b", "#1a9850"}},
		}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}),
	)
	cell := map[[2]string]metric.Figure{}
	for _, r := range rows {
		cell[[2]string{r.Moment, r.Channel}] = r.CSAT
	}
	var data []opts.HeatMapData
	for y, m := range event.Moments {
		for x, c := range event.Channels {
			f, ok := cell[[2]string{m, c}]
			v := any(empty)
			if ok {
				v = value(f, 100)
			}
			data = append(data, opts.HeatMapData{Value: []any{x, y, v}})
		}
	}
	h.AddSeries("CSAT %", data)
	o := toOptions(h)
	// Dark bold figures with a light outline read on every cell colour, red to green, on the
	// light and the dark (TV) theme alike.
	o["series"].([]any)[0].(map[string]any)["label"] = map[string]any{
		"show": true, "color": "#111", "fontWeight": "bold", "textBorderColor": "#fff", "textBorderWidth": 2,
	}
	return o
}

// allLabels labels every category of an axis, slanted so that eleven channels fit. (go-echarts
// writes the interval as the string "0", which ECharts reads as the number.)
var allLabels = &opts.AxisLabel{Interval: "0", Rotate: 30}

// Trend is a line per moment over the window's buckets of one measure of the rows' series.
// measure picks the value of a point, e.g. events or CSAT %.
func Trend(title string, rows []rollup.Row, measure func(p rollup.Point) any) Options {
	l := charts.NewLine()
	l.SetGlobalOptions(
		charts.WithTitleOpts(opts.Title{Title: title}),
		charts.WithXAxisOpts(opts.XAxis{Type: "time"}),
		charts.WithYAxisOpts(opts.YAxis{Type: "value"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom"}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
	)
	byMoment := map[string]rollup.Row{}
	for _, r := range rows {
		byMoment[r.Moment] = r
	}
	for _, m := range event.Moments {
		// Never nil: a moment without events gets an empty line ([]), not "data": null, which
		// an update would merge as "leave the old points".
		data := []opts.LineData{}
		for _, p := range byMoment[m].Series {
			data = append(data, opts.LineData{Value: []any{p.T.UnixMilli(), measure(p)}})
		}
		// Small symbols: a point between two gaps has no line to either side and would
		// otherwise not be drawn at all.
		l.AddSeries(m, data, charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(true), SymbolSize: 4, ConnectNulls: opts.Bool(false)}))
	}
	o := toOptions(l)
	// hideOverlap (ECharts 5.2) drops time labels that would overlap on a narrow chart;
	// go-echarts v2.6 has no field for it.
	for _, a := range o["xAxis"].([]any) {
		a.(map[string]any)["axisLabel"] = map[string]any{"hideOverlap": true}
	}
	return o
}

// Volume is the measure of a trend point: its events.
func Volume(p rollup.Point) any { return p.Events }

// CSATPercent is the measure of a trend point: its CSAT in %, a gap below the minimum n.
func CSATPercent(p rollup.Point) any { return value(p.CSAT, 100) }

// Gauge is a dial of one KPI over its range.
func Gauge(name string, f metric.Figure, scale float64, min, max int) Options {
	g := charts.NewGauge()
	g.SetGlobalOptions(charts.WithTitleOpts(opts.Title{Title: name}), charts.WithLegendOpts(opts.Legend{Show: opts.Bool(false)}))
	// The item's name stays the same from tick to tick: ECharts takes a renamed item for a new
	// one and swings the needle in from the start of the dial at every update. The n is on the
	// KPI tile beside every gauge; a second line under the value collides with it on a TV.
	g.AddSeries(name, []opts.GaugeData{{Name: name, Value: value(f, scale)}},
		charts.WithSeriesOpts(func(s *charts.SingleSeries) {
			s.Min, s.Max = min, max
		}))
	o := toOptions(g)
	item := o["series"].([]any)[0].(map[string]any)["data"].([]any)[0].(map[string]any)
	item["detail"] = map[string]any{"formatter": "{value}"}
	if !f.OK {
		// ECharts would write NaN and point the needle at an arbitrary place: hide the needle
		// and say why. Both are set on the data item (go-echarts' GaugeData has no field for
		// them) so that an update with a value brings the needle and the number back.
		item["itemStyle"] = map[string]any{"color": "transparent"}
		item["detail"] = map[string]any{"formatter": "not enough data", "fontSize": 16}
	}
	return o
}

// Funnel is the journey funnel zmot → tmot by events (service contacts happen at any point
// and are left out).
func Funnel(rows []rollup.Row) Options {
	f := charts.NewFunnel()
	f.SetGlobalOptions(charts.WithTitleOpts(opts.Title{Title: "Journey funnel (events)"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom"}))
	events := map[string]uint64{}
	for _, r := range rows {
		events[r.Moment] += r.Events
	}
	var data []opts.FunnelData
	for _, m := range event.Moments {
		if m == "service" {
			continue
		}
		data = append(data, opts.FunnelData{Name: m, Value: events[m]})
	}
	f.AddSeries("events", data, charts.WithSeriesOpts(func(s *charts.SingleSeries) { s.Sort = "none" }))
	return toOptions(f)
}

// ChannelBars shows one moment's CSAT per channel with its 95% Wilson interval as a floating
// bar from low to high (a transparent base stacked under the interval), so two channels whose
// intervals do not overlap visibly differ. Channels left out of the index are drawn grey.
func ChannelBars(m rollup.MomentConsistency) Options {
	b := charts.NewBar()
	title := "CSAT by channel: " + m.Moment
	if m.CCI.OK {
		title += fmt.Sprintf(" (CCI %.2f)", m.CCI.Value)
	}
	b.SetGlobalOptions(
		charts.WithTitleOpts(opts.Title{Title: title}),
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
