package rollup

import (
	"slices"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/metric"
)

var (
	momentOrder  = event.Moments
	channelOrder = event.Channels
)

// rank is the position of v in order, unknown values last.
func rank(order []string, v string) int {
	if i := slices.Index(order, v); i >= 0 {
		return i
	}
	return len(order)
}

// ChannelLine is one channel of a moment's consistency: its csat answers n, its top-2-box
// share (null below the minimum n), the 95% Wilson interval and whether it is left out of the
// index for having fewer answers than the channel minimum.
type ChannelLine struct {
	Channel  string        `json:"channel"`
	N        int64         `json:"n"`
	CSAT     metric.Figure `json:"csat"`
	Low      float64       `json:"low"`
	High     float64       `json:"high"`
	Excluded bool          `json:"excluded"`
}

// MomentConsistency is the Channel Consistency Index of one moment.
type MomentConsistency struct {
	Moment        string                `json:"moment"`
	CCI           metric.Figure         `json:"cci"`
	Heterogeneity *metric.Heterogeneity `json:"heterogeneity"`
	Gap           *metric.Gap           `json:"gap"`
	Channels      []ChannelLine         `json:"channels"`
}

// ConsistencyResult is the answer of GET /v1/consistency.
type ConsistencyResult struct {
	Window  string              `json:"window"`
	From    time.Time           `json:"from"`
	To      time.Time           `json:"to"`
	Moments []MomentConsistency `json:"moments"`
}

// BuildConsistency computes the index of every moment from groups keyed by moment and channel
// (the current period only), moments in journey order, channels in vocabulary order.
func BuildConsistency(q Query, p Plan, groups []Group, r metric.Rules) ConsistencyResult {
	byMoment := map[string]map[string]*metric.ChannelCounts{}
	for _, g := range groups {
		if g.Previous || g.CSATN == 0 {
			continue
		}
		m := byMoment[g.Moment]
		if m == nil {
			m = map[string]*metric.ChannelCounts{}
			byMoment[g.Moment] = m
		}
		c := m[g.Channel]
		if c == nil {
			c = &metric.ChannelCounts{Channel: g.Channel}
			m[g.Channel] = c
		}
		c.N += int64(g.CSATN)
		c.Top2 += int64(g.CSATTop2)
	}
	res := ConsistencyResult{Window: q.WindowName, From: p.From, To: p.To, Moments: []MomentConsistency{}}
	for _, moment := range momentOrder {
		chans := byMoment[moment]
		if len(chans) == 0 {
			continue
		}
		var counts []metric.ChannelCounts
		for _, ch := range channelOrder {
			if c := chans[ch]; c != nil {
				counts = append(counts, *c)
			}
		}
		cons := r.Consistency(counts)
		mc := MomentConsistency{Moment: moment, CCI: cons.Index, Heterogeneity: cons.Heterogeneity, Gap: cons.Gap}
		for i, line := range cons.Channels {
			mc.Channels = append(mc.Channels, ChannelLine{
				Channel: line.Channel, N: counts[i].N, CSAT: line.CSAT,
				Low: line.Low, High: line.High, Excluded: line.Excluded,
			})
		}
		res.Moments = append(res.Moments, mc)
	}
	return res
}
