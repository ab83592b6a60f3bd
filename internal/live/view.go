package live

import (
	"context"
	"time"

	"github.com/truthboard/truthboard/internal/chart"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
)

// Source answers the feeds' queries; *store.Store in production.
type Source interface {
	Rollup(ctx context.Context, q rollup.Query, p rollup.Plan) ([]rollup.Group, error)
}

// view is what one tick of a feed computed.
type view struct {
	data    any
	charts  map[string]any // full options
	updates map[string]any // series data only
	newest  *time.Time
}

// ExecutiveData are the figures of the executive view and the TV wall.
type ExecutiveData struct {
	Window string    `json:"window"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// KPIs are the totals of the window with the previous period and the deltas.
	KPIs rollup.Row `json:"kpis"`
	// Grid is one row per moment × channel with events.
	Grid []rollup.Row `json:"grid"`
	// Consistency is the Channel Consistency Index per moment.
	Consistency []rollup.MomentConsistency `json:"consistency"`
	// Touchpoints is the breakdown by moment, channel and touchpoint (drill-down view only).
	Touchpoints []rollup.Row `json:"touchpoints,omitempty"`
}

// buildView runs the queries of a subscription's view and builds its charts: two queries for
// the executive view (moment × channel with the previous period; the trend per moment), three
// for the drill-down (plus the touchpoint breakdown). It returns how many queries it ran.
func buildView(ctx context.Context, src Source, sub Subscription, now time.Time, rules metric.Rules) (*view, int, error) {
	queries := 0
	run := func(q rollup.Query) (rollup.Plan, []rollup.Group, error) {
		p := q.Plan(now)
		queries++
		g, err := src.Rollup(ctx, q, p)
		return p, g, err
	}

	gridQ := sub.Query
	gridQ.By, gridQ.Compare, gridQ.Step = []string{"moment", "channel"}, true, 0
	gridP, gridG, err := run(gridQ)
	if err != nil {
		return nil, queries, err
	}
	grid := rollup.Build(gridQ, gridP, gridG, rules)
	cons := rollup.BuildConsistency(gridQ, gridP, gridG, rules)

	trendQ := sub.Query
	trendQ.By, trendQ.Compare = []string{"moment"}, false
	trendQ.Step = rollup.TrendStep(trendQ.Window, trendQ.Plan(now).Resolution)
	trendP, trendG, err := run(trendQ)
	if err != nil {
		return nil, queries, err
	}
	trend := rollup.Build(trendQ, trendP, trendG, rules)

	data := ExecutiveData{
		Window: gridQ.WindowName, From: gridP.From, To: gridP.To,
		KPIs: grid.Total, Grid: grid.Rows, Consistency: cons.Moments,
	}
	for i := range data.Grid { // the grid's own previous periods would only weigh on the wire
		data.Grid[i].Previous, data.Grid[i].Delta = nil, nil
	}
	charts := map[string]chart.Options{
		"heatmap":      chart.Heatmap(grid.Rows),
		"trend_volume": chart.Trend("Events per moment", trend.Rows, chart.Volume),
		"trend_csat":   chart.Trend("CSAT per moment (%)", trend.Rows, chart.CSATPercent),
		"gauge_nps":    chart.Gauge("NPS", grid.Total.NPS, 1, -100, 100),
		"gauge_csat":   chart.Gauge("CSAT %", grid.Total.CSAT, 100, 0, 100),
		"gauge_ces":    chart.Gauge("CES", grid.Total.CES, 1, 1, 7),
		"funnel":       chart.Funnel(grid.Rows),
	}
	if sub.View == "drilldown" {
		// One chart per moment, with or without answers: the set of charts is fixed by the
		// snapshot, and an update naming a chart the screen never had options for would not draw.
		byMoment := map[string]rollup.MomentConsistency{}
		for _, m := range cons.Moments {
			byMoment[m.Moment] = m
		}
		for _, m := range event.Moments {
			mc, ok := byMoment[m]
			if !ok {
				mc = rollup.MomentConsistency{Moment: m}
			}
			charts["channels_"+m] = chart.ChannelBars(mc)
		}
		tpQ := sub.Query
		tpQ.By, tpQ.Compare, tpQ.Step = []string{"moment", "channel", "touchpoint"}, false, 0
		tpP, tpG, err := run(tpQ)
		if err != nil {
			return nil, queries, err
		}
		data.Touchpoints = rollup.Build(tpQ, tpP, tpG, rules).Rows
	}

	v := &view{data: data, charts: map[string]any{}, updates: map[string]any{}, newest: newest(gridG)}
	for name, o := range charts {
		v.charts[name] = o
		v.updates[name] = chart.SeriesOnly(o)
	}
	return v, queries, nil
}

// newest is the latest event time of the current period's groups, nil without events.
func newest(groups []rollup.Group) *time.Time {
	var t time.Time
	for _, g := range groups {
		if !g.Previous && g.Newest.After(t) {
			t = g.Newest
		}
	}
	if t.IsZero() {
		return nil
	}
	return &t
}
