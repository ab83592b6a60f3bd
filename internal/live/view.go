package live

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/truthboard/truthboard/internal/chart"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
)

// Source answers the feeds' queries; *store.Store in production.
type Source interface {
	Rollup(ctx context.Context, q rollup.Query, p rollup.Plan) ([]rollup.Group, error)
	// LatestNegatives lists the newest raw negative moments of the plan's window that pass the
	// query's filters, at most limit of them.
	LatestNegatives(ctx context.Context, q rollup.Query, p rollup.Plan, limit int) ([]rollup.NegativeEvent, error)
}

// timedSource observes the duration of every query of src.
type timedSource struct {
	src      Source
	duration prometheus.Observer
}

func (s timedSource) Rollup(ctx context.Context, q rollup.Query, p rollup.Plan) ([]rollup.Group, error) {
	defer s.observe(time.Now())
	return s.src.Rollup(ctx, q, p)
}

func (s timedSource) LatestNegatives(ctx context.Context, q rollup.Query, p rollup.Plan, limit int) ([]rollup.NegativeEvent, error) {
	defer s.observe(time.Now())
	return s.src.LatestNegatives(ctx, q, p, limit)
}

func (s timedSource) observe(started time.Time) { s.duration.Observe(time.Since(started).Seconds()) }

// errNoQuerySlot says that a feed's query found no free slot before its tick's timeout.
var errNoQuerySlot = errors.New("no free live query slot: the live feeds use all of their share of the database's connections")

// slotSource runs at most cap(slots) queries of src at once: the live feeds' share of the
// database's connections (Options.MaxQueries). A query waits for a free slot until its
// context ends; a context already ended (a stopped feed) never queries.
type slotSource struct {
	src   Source
	slots chan struct{}
}

func (s slotSource) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errNoQuerySlot
		}
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil { // both were ready and the slot won: still give up
		<-s.slots
		return err
	}
	return nil
}

func (s slotSource) Rollup(ctx context.Context, q rollup.Query, p rollup.Plan) ([]rollup.Group, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-s.slots }()
	return s.src.Rollup(ctx, q, p)
}

func (s slotSource) LatestNegatives(ctx context.Context, q rollup.Query, p rollup.Plan, limit int) ([]rollup.NegativeEvent, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-s.slots }()
	return s.src.LatestNegatives(ctx, q, p, limit)
}

// drilldownNegatives is how many latest negative moments the drill-down lists.
const drilldownNegatives = rollup.DefaultNegatives

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
	// Negatives are the window's latest negative moments, newest first (drill-down view only).
	Negatives []rollup.NegativeEvent `json:"negatives,omitempty"`
	// Members compares the members of the level below the drill path (drill-down view only).
	Members *Members `json:"members,omitempty"`
}

// Members are the level below a drill-down's path, compared: the moments (no moment chosen),
// the channels of a moment, or the touchpoints of a channel (the touchpoint chosen among
// them), each with its n, its change against the previous period and the judgement of it.
type Members struct {
	// Level is the dimension the rows differ by: moment, channel or touchpoint.
	Level string       `json:"level"`
	Rows  []rollup.Row `json:"rows"`
}

// memberLevel is the level below the drill path of filters f.
func memberLevel(f rollup.Filters) string {
	switch {
	case len(f.Channel) > 0 || len(f.Touchpoint) > 0:
		return "touchpoint"
	case len(f.Moment) > 0:
		return "channel"
	}
	return "moment"
}

// compareMembers builds the comparison of the level below the drill path from the touchpoint groups
// (moment × channel × touchpoint, both periods).
func compareMembers(q rollup.Query, p rollup.Plan, groups []rollup.Group, level string, rules metric.Rules) *Members {
	regrouped := make([]rollup.Group, len(groups))
	for i, g := range groups {
		switch level {
		case "moment":
			g.Channel, g.Touchpoint = "", ""
		case "channel":
			// One row per channel, whatever moments the path holds.
			g.Moment, g.Touchpoint = "", ""
		}
		regrouped[i] = g
	}
	q.By = slices.Clone(rollup.Dimensions[:slices.Index(rollup.Dimensions, level)+1])
	rows := rollup.Build(q, p, regrouped, rules).Rows
	for i := range rows {
		rows[i].Previous = nil
	}
	return &Members{Level: level, Rows: rows}
}

// ExecutiveQueries are the two queries of the executive view's tick for the subscription's
// query sub (its window and filters) at now. grid: by moment and channel with the previous
// period and the wait histogram, whose groups give the KPIs, the heatmap, the funnel and the
// consistency. trend: by moment in trend buckets, without the histogram, since the trend lines
// show no wait figure. Merging the histogram is most of a query's cost, and cutting it into
// trend buckets multiplied the groups to merge and scan (docs/benchmarks.md, Metrics).
func ExecutiveQueries(sub rollup.Query, now time.Time) (grid, trend rollup.Query) {
	grid, trend = sub, sub
	grid.By, grid.Compare, grid.Step = []string{"moment", "channel"}, true, 0
	trend.By, trend.Compare, trend.WithoutWait = []string{"moment"}, false, true
	trend.Step = rollup.TrendStep(trend.Window, trend.Plan(now).Resolution)
	return grid, trend
}

// buildView runs the queries of a subscription's view and builds its charts: two for the
// executive view (ExecutiveQueries), four for the drill-down (plus the touchpoint breakdown and
// the latest negative moments). It returns how many queries it ran.
func buildView(ctx context.Context, src Source, sub Subscription, now time.Time, rules metric.Rules) (*view, int, error) {
	queries := 0
	run := func(q rollup.Query) (rollup.Plan, []rollup.Group, error) {
		p := q.Plan(now)
		queries++
		g, err := src.Rollup(ctx, q, p)
		return p, g, err
	}

	// The grid of the window and of the previous period, with the wait histogram: every view
	// shows wait p90 (a broken contact centre shows in its waits first). The trend per moment
	// in a second query without it. Both plans are made at the same now, on the same table.
	q := sub.Query
	if sub.View == "drilldown" {
		// The drill path narrows the tiles, the tables and the negative moments, never the
		// grid: after a click the heatmap and the consistency charts still compare every
		// moment and channel (under the other filters: region, product, segment, team).
		q.Filters.Moment, q.Filters.Channel, q.Filters.Touchpoint = nil, nil, nil
	}
	gridQ, trendQ := ExecutiveQueries(q, now)
	p, groups, err := run(gridQ)
	if err != nil {
		return nil, queries, err
	}
	grid := rollup.Build(gridQ, p, groups, rules)
	cons := rollup.BuildConsistency(gridQ, p, groups, rules)
	trendP, trendG, err := run(trendQ)
	if err != nil {
		return nil, queries, err
	}
	trend := rollup.Build(trendQ, trendP, trendG, rules)

	data := ExecutiveData{
		Window: gridQ.WindowName, From: p.From, To: p.To,
		KPIs: grid.Total, Grid: slices.Clone(grid.Rows), Consistency: cons.Moments,
	}
	// The grid's previous periods, deltas and judgements would only weigh on the wire: the
	// heatmap's cells carry what a screen shows of them.
	for i := range data.Grid {
		data.Grid[i].Previous, data.Grid[i].Delta, data.Grid[i].Judgement = nil, nil, nil
	}
	charts := map[string]chart.Options{
		"heatmap":      chart.Heatmap(grid.Rows),
		"trend_volume": chart.Trend("Events per second by moment", trend.Rows, chart.Volume),
		"trend_csat":   chart.Trend("CSAT per moment (%)", trend.Rows, chart.CSATPercent),
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
		// The touchpoints with their changes and the judgements of them; their previous
		// periods stay on the server. A chosen touchpoint is shown among its siblings.
		path := sub.Query.Filters
		tpQ := sub.Query
		tpQ.By, tpQ.Compare, tpQ.Step = []string{"moment", "channel", "touchpoint"}, true, 0
		tpQ.Filters.Touchpoint = nil
		tpP, tpG, err := run(tpQ)
		if err != nil {
			return nil, queries, err
		}
		data.Touchpoints = rollup.Build(tpQ, tpP, tpG, rules).Rows
		for i := range data.Touchpoints {
			data.Touchpoints[i].Previous = nil
		}
		data.Members = compareMembers(tpQ, tpP, tpG, memberLevel(path), rules)
		// The tiles are the drill path's: its touchpoints' groups summed.
		chosen := tpG
		if len(path.Touchpoint) > 0 {
			chosen = nil
			for _, g := range tpG {
				if slices.Contains(path.Touchpoint, g.Touchpoint) {
					chosen = append(chosen, g)
				}
			}
		}
		kpiQ := tpQ
		kpiQ.By = nil
		data.KPIs = rollup.Build(kpiQ, tpP, chosen, rules).Total

		// The last step of the drill path: single events, over the touchpoints' exact window
		// and the path's filters, so the list agrees with the table above it.
		negQ := tpQ
		negQ.Filters.Touchpoint = path.Touchpoint
		queries++
		data.Negatives, err = src.LatestNegatives(ctx, negQ, tpP, drilldownNegatives)
		if err != nil {
			return nil, queries, err
		}
	}

	v := &view{data: data, charts: map[string]any{}, updates: map[string]any{}, newest: newest(groups)}
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
