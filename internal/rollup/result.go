package rollup

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/metric"
)

// Counts are the sums a rollup row holds. They add up across rows of any table and resolution.
type Counts struct {
	Events        uint64
	CSATN         uint64
	CSATTop2      uint64
	NPSN          uint64
	NPSPromoters  uint64
	NPSDetractors uint64
	CESN          uint64
	CESSum        uint64
	Negative      uint64
	WithOutcome   uint64
	Abandoned     uint64
	WaitN         uint64
	// Wait counts wait_ms per bucket of metric.BucketOf.
	Wait [metric.Buckets]uint64
}

// Add adds o to c.
func (c *Counts) Add(o *Counts) {
	c.Events += o.Events
	c.CSATN += o.CSATN
	c.CSATTop2 += o.CSATTop2
	c.NPSN += o.NPSN
	c.NPSPromoters += o.NPSPromoters
	c.NPSDetractors += o.NPSDetractors
	c.CESN += o.CESN
	c.CESSum += o.CESSum
	c.Negative += o.Negative
	c.WithOutcome += o.WithOutcome
	c.Abandoned += o.Abandoned
	c.WaitN += o.WaitN
	for i, n := range o.Wait {
		c.Wait[i] += n
	}
}

// Group is one row the store returns for a query: the keys it is grouped by, whether it
// belongs to the previous period, its trend bucket (zero without a Step) and its sums.
type Group struct {
	Moment, Channel, Touchpoint, Region, AgentTeam string
	Previous                                       bool
	Bucket                                         time.Time
	// Newest is the latest time step of the group with events (its rollup t).
	Newest time.Time
	Counts
}

// Metrics are the figures of one group over one period.
type Metrics struct {
	Events uint64 `json:"events"`
	// RatePerSecond is events divided by the window's length.
	RatePerSecond float64       `json:"rate_per_s"`
	CSAT          metric.Figure `json:"csat"`
	NPS           metric.Figure `json:"nps"`
	CES           metric.Figure `json:"ces"`
	NegativeRate  metric.Figure `json:"negative_rate"`
	Abandonment   metric.Figure `json:"abandonment"`
	WaitP50MS     metric.Figure `json:"wait_p50_ms"`
	WaitP90MS     metric.Figure `json:"wait_p90_ms"`
}

// Deltas are the changes of a group's figures against the previous period.
type Deltas struct {
	Events       int64         `json:"events"`
	CSAT         metric.Change `json:"csat"`
	NPS          metric.Change `json:"nps"`
	CES          metric.Change `json:"ces"`
	NegativeRate metric.Change `json:"negative_rate"`
	Abandonment  metric.Change `json:"abandonment"`
	WaitP50MS    metric.Change `json:"wait_p50_ms"`
	WaitP90MS    metric.Change `json:"wait_p90_ms"`
}

// Point is one bucket of a trend series.
type Point struct {
	T time.Time `json:"t"`
	Metrics
	// Partial marks a bucket that the figures do not cover whole: the first one, when the
	// window starts inside it, and the last one, which is still filling. Its volume is lower
	// than a whole bucket's by nature, so a chart must not draw it as a drop. RatePerSecond is
	// still events over the whole bucket.
	Partial bool `json:"partial,omitempty"`
	// Seconds is, for a partial bucket, how much of it the figures cover: from the window's
	// start or the bucket's, to the bucket's end or to when its events had arrived.
	Seconds float64 `json:"seconds,omitempty"`
}

// Row is one group of the answer.
type Row struct {
	Moment     string `json:"moment,omitempty"`
	Channel    string `json:"channel,omitempty"`
	Touchpoint string `json:"touchpoint,omitempty"`
	Region     string `json:"region,omitempty"`
	AgentTeam  string `json:"agent_team,omitempty"`
	Metrics
	Previous *Metrics `json:"previous,omitempty"`
	Delta    *Deltas  `json:"delta,omitempty"`
	// Judgement says, for every delta, whether the change is real and matters (see Judge).
	Judgement *Judgements `json:"judgement,omitempty"`
	Series    []Point     `json:"series,omitempty"`
	// Recovery is present when the query asked for it.
	Recovery *metric.Recovery `json:"recovery,omitempty"`
}

// RecoveryGroup counts the negative moments of one group of a window by their fate: recovered
// (a later positive event of the journey within 7 days, window closed), lost (window closed
// without one) and pending (window still open). Negative moments without a journey_id cannot
// be recovered and are not counted.
type RecoveryGroup struct {
	Moment, Channel, Touchpoint, Region, AgentTeam string
	Recovered, Lost, Pending                       uint64
}

// AttachRecovery adds the recovery rate to the rows and the total of res.
func AttachRecovery(res *Result, groups []RecoveryGroup, r metric.Rules) {
	var total RecoveryGroup
	byKey := map[RowKey]RecoveryGroup{}
	for _, g := range groups {
		total.Recovered, total.Lost, total.Pending = total.Recovered+g.Recovered, total.Lost+g.Lost, total.Pending+g.Pending
		byKey[KeyOf(g.Moment, g.Channel, g.Touchpoint, g.Region, g.AgentTeam)] = g
	}
	rate := func(g RecoveryGroup) *metric.Recovery {
		rec := r.Recovery(int64(g.Recovered+g.Lost), int64(g.Recovered), int64(g.Pending))
		return &rec
	}
	res.Total.Recovery = rate(total)
	for i := range res.Rows {
		row := &res.Rows[i]
		row.Recovery = rate(byKey[row.Key()])
	}
}

// Result is the answer of GET /v1/metrics.
type Result struct {
	Window     string    `json:"window"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Resolution string    `json:"resolution"`
	Step       string    `json:"step,omitempty"`
	// Compare names the period of previous and delta (previous or last_week), which
	// PreviousFrom and PreviousTo bound; all three are absent without compare.
	Compare      string     `json:"compare,omitempty"`
	PreviousFrom *time.Time `json:"previous_from,omitempty"`
	PreviousTo   *time.Time `json:"previous_to,omitempty"`
	By           []string   `json:"by"`
	Total        Row        `json:"total"`
	Rows         []Row      `json:"rows"`
}

// MetricsOf computes the figures of counts over a period of the given length.
func MetricsOf(c *Counts, period time.Duration, r metric.Rules) Metrics {
	return Metrics{
		Events:        c.Events,
		RatePerSecond: float64(c.Events) / period.Seconds(),
		CSAT:          r.CSAT(int64(c.CSATN), int64(c.CSATTop2)),
		NPS:           r.NPS(int64(c.NPSN), int64(c.NPSPromoters), int64(c.NPSDetractors)),
		CES:           r.CES(int64(c.CESN), int64(c.CESSum)),
		NegativeRate:  r.NegativeRate(int64(c.Events), int64(c.Negative)),
		Abandonment:   r.Abandonment(int64(c.WithOutcome), int64(c.Abandoned)),
		WaitP50MS:     r.Percentile(c.Wait[:], 0.5),
		WaitP90MS:     r.Percentile(c.Wait[:], 0.9),
	}
}

func deltasOf(cur, prev *Metrics) *Deltas {
	return &Deltas{
		Events:       int64(cur.Events) - int64(prev.Events),
		CSAT:         metric.Delta(cur.CSAT, prev.CSAT),
		NPS:          metric.Delta(cur.NPS, prev.NPS),
		CES:          metric.Delta(cur.CES, prev.CES),
		NegativeRate: metric.Delta(cur.NegativeRate, prev.NegativeRate),
		Abandonment:  metric.Delta(cur.Abandonment, prev.Abandonment),
		WaitP50MS:    metric.Delta(cur.WaitP50MS, prev.WaitP50MS),
		WaitP90MS:    metric.Delta(cur.WaitP90MS, prev.WaitP90MS),
	}
}

// RowKey is what tells the rows of an answer apart: the values of its dimensions ("" for a
// dimension it is not grouped by).
type RowKey struct{ moment, channel, touchpoint, region, agentTeam string }

// KeyOf is the key of a row with these values of the dimensions.
func KeyOf(moment, channel, touchpoint, region, agentTeam string) RowKey {
	return RowKey{moment, channel, touchpoint, region, agentTeam}
}

// Key is the key of the row g belongs to.
func (g *Group) Key() RowKey { return KeyOf(g.Moment, g.Channel, g.Touchpoint, g.Region, g.AgentTeam) }

// Key is the key of row r.
func (r *Row) Key() RowKey { return KeyOf(r.Moment, r.Channel, r.Touchpoint, r.Region, r.AgentTeam) }

// Dimension is the value of dimension d (one of Dimensions) of row r.
func (r *Row) Dimension(d string) string {
	switch d {
	case "moment":
		return r.Moment
	case "channel":
		return r.Channel
	case "touchpoint":
		return r.Touchpoint
	case "region":
		return r.Region
	case "agent_team":
		return r.AgentTeam
	}
	panic("rollup: unknown dimension " + d)
}

type acc struct {
	cur, prev Counts
	buckets   map[time.Time]*Counts
}

// Build turns the groups of a query into its answer: one row per key combination in the
// window (sorted by the dimensions' order), a total over all rows, and, when asked, the previous
// period with deltas and a trend series per row.
func Build(q Query, p Plan, groups []Group, r metric.Rules) Result {
	res := Result{
		Window: q.WindowName, From: p.From, To: p.To,
		Resolution: durationName(p.Resolution), By: q.By, Rows: []Row{},
	}
	if res.By == nil {
		res.By = []string{}
	}
	if q.Step > 0 {
		res.Step = durationName(q.Step)
	}
	if q.Compare {
		from, to := p.PrevFrom, p.ComparedTo()
		res.Compare, res.PreviousFrom, res.PreviousTo = q.Comparison(), &from, &to
	}
	rows := map[RowKey]*acc{}
	total := &acc{}
	var newest time.Time
	for i := range groups {
		g := &groups[i]
		if !g.Previous && g.Newest.After(newest) {
			newest = g.Newest
		}
		k := g.Key()
		a := rows[k]
		if a == nil {
			a = &acc{}
			rows[k] = a
		}
		for _, x := range []*acc{a, total} {
			switch {
			case g.Previous:
				x.prev.Add(&g.Counts)
			default:
				x.cur.Add(&g.Counts)
				if q.Step > 0 {
					if x.buckets == nil {
						x.buckets = map[time.Time]*Counts{}
					}
					b := x.buckets[g.Bucket]
					if b == nil {
						b = &Counts{}
						x.buckets[g.Bucket] = b
					}
					b.Add(&g.Counts)
				}
			}
		}
	}
	makeRow := func(k RowKey, a *acc) Row {
		row := Row{Moment: k.moment, Channel: k.channel, Touchpoint: k.touchpoint, Region: k.region, AgentTeam: k.agentTeam,
			Metrics: MetricsOf(&a.cur, q.Window, r)}
		if q.Compare {
			prev := MetricsOf(&a.prev, q.Window, r)
			row.Previous, row.Delta = &prev, deltasOf(&row.Metrics, &prev)
			row.Judgement = Judge(&a.cur, &a.prev, &row.Metrics, &prev, counted(p, q.Window), q.Window)
		}
		if q.Step > 0 {
			row.Series = series(a.buckets, p, q.Step, newest, r)
		}
		return row
	}
	res.Total = makeRow(RowKey{}, total)
	for k, a := range rows {
		if len(q.By) == 0 || a.cur.Events == 0 && a.prev.Events == 0 {
			continue
		}
		res.Rows = append(res.Rows, makeRow(k, a))
	}
	sort.Slice(res.Rows, func(i, j int) bool { return lessRow(res.Rows[i], res.Rows[j]) })
	return res
}

// durationName writes a step the way windows are named: "1m", "1h" and "1d", not Go's "1m0s",
// "1h0m0s" and "24h0m0s"; time.ParseDuration reads all but days.
func durationName(d time.Duration) string {
	if day := 24 * time.Hour; d >= day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// counted is how long the current period of plan p has been counting events: the window, less
// the part of its last step that has not come yet. (A query made without a Now counts whole.)
func counted(p Plan, window time.Duration) time.Duration {
	if p.Now.IsZero() || !p.Now.Before(p.To) {
		return window
	}
	return max(time.Second, p.Now.Sub(p.From))
}

// maxArrivalLag is how far behind the plan's Now the newest events may be and still be taken
// for events on their way (in the spool, in a batch) rather than for traffic that stopped: a
// trend bucket after them is then partial, not empty.
const maxArrivalLag = time.Minute

// series lists every bucket of the window, empty ones included, so a chart never has gaps. A
// bucket is partial when the figures do not cover it whole: the first when the window starts
// inside it, and any bucket that ends after the time up to which events have arrived. That is
// the plan's Now, or the end of the newest events' step when it is older but by less than
// maxArrivalLag: events reach the rollups a second or more after they happen, and the buckets
// they have not all reached yet would otherwise look emptier than they are. Without a Now,
// every bucket up to the window's end counts whole.
func series(buckets map[time.Time]*Counts, p Plan, step time.Duration, newest time.Time, r metric.Rules) []Point {
	filled := p.To
	if !p.Now.IsZero() && p.Now.Before(filled) {
		filled = p.Now
	}
	if arrived := newest.Add(p.Resolution); !newest.IsZero() && arrived.Before(filled) && filled.Sub(arrived) < maxArrivalLag {
		filled = arrived
	}
	var pts []Point
	for t := p.From.Truncate(step); t.Before(p.To); t = t.Add(step) {
		c := buckets[t]
		if c == nil {
			c = &Counts{}
		}
		pt := Point{T: t, Metrics: MetricsOf(c, step, r)}
		from, to := t, t.Add(step)
		if p.From.After(from) {
			from = p.From
		}
		if filled.Before(to) {
			to = filled
		}
		if !from.Equal(t) || !to.Equal(t.Add(step)) {
			pt.Partial, pt.Seconds = true, max(0, to.Sub(from).Seconds())
		}
		pts = append(pts, pt)
	}
	return pts
}

// lessRow orders rows by moment and channel in journey and vocabulary order, then touchpoint,
// region and agent team.
func lessRow(a, b Row) bool {
	if a.Moment != b.Moment {
		return rank(momentOrder, a.Moment) < rank(momentOrder, b.Moment)
	}
	if a.Channel != b.Channel {
		return rank(channelOrder, a.Channel) < rank(channelOrder, b.Channel)
	}
	if a.Touchpoint != b.Touchpoint {
		return a.Touchpoint < b.Touchpoint
	}
	if a.Region != b.Region {
		return a.Region < b.Region
	}
	return a.AgentTeam < b.AgentTeam
}
