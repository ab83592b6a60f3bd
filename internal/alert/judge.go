package alert

import (
	"math"
	"time"

	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
)

// Observation is what one evaluation saw of one alert's moment × channel. Value, N, Low and
// High describe the current window; Target belongs to target rules; Baseline, BaselineN, Z, P
// and Change to change rules (they are 0 otherwise).
type Observation struct {
	// Value is the figure in the metric's unit: a share 0–1 (CSAT, negative rate,
	// abandonment), NPS points, mean CES, p90 in ms, or events in the window (volume).
	Value float64 `json:"value"`
	// N is the number of answers (events for the negative rate and volume, events with an
	// outcome for abandonment, waits for wait p90) behind Value.
	N uint64 `json:"n"`
	// Low and High are the 95% interval of Value (target rules).
	Low  float64 `json:"low"`
	High float64 `json:"high"`
	// Target is the rule's target (target rules).
	Target float64 `json:"target"`
	// Baseline is the baseline's figure (for volume: the events its rate expects in the current
	// window) and BaselineN its n (change rules).
	Baseline  float64 `json:"baseline"`
	BaselineN uint64  `json:"baseline_n"`
	// Z and P are the test's statistic and two-sided p-value (change rules).
	Z float64 `json:"z"`
	P float64 `json:"p"`
	// Change is Value − Baseline, or for wait p90 and volume the relative change
	// (Value − Baseline) / Baseline (change rules).
	Change float64 `json:"change"`
	// Dispersion is how much more the figure varied between the windows of the baseline than
	// chance explains (metric.Overdispersion, at least 1); the test's standard error was
	// widened by its square root (change rules judged with enough data). The history does not
	// keep it (0 there).
	Dispersion float64 `json:"dispersion"`
}

// verdict is what one evaluation says of a rule's condition for one moment × channel.
type verdict int

const (
	// noData: not enough data to judge either way; a pending alert drops, a firing one holds.
	noData verdict = iota
	// breach: the firing condition holds.
	breach
	// recovered: the separate recovery condition holds.
	recovered
	// hold: between the two (hysteresis): a firing alert keeps firing, a pending one drops.
	hold
)

// bucketBounds[i] is the largest ms bucket i of the wait histogram holds.
var bucketBounds = metric.BucketBounds()

// figure is the metric's value for counts c and the n behind it; ok is false when there is
// nothing to compute it from. For volume it is the number of events.
func figure(m Metric, c *rollup.Counts) (v float64, n uint64, ok bool) {
	ratio := func(part, whole uint64) (float64, uint64, bool) {
		if whole == 0 || part > whole {
			return 0, whole, false
		}
		return float64(part) / float64(whole), whole, true
	}
	switch m {
	case CSAT:
		return ratio(c.CSATTop2, c.CSATN)
	case NegativeRate:
		return ratio(c.Negative, c.Events)
	case Abandonment:
		return ratio(c.Abandoned, c.WithOutcome)
	case NPS:
		if c.NPSN == 0 || c.NPSPromoters+c.NPSDetractors > c.NPSN {
			return 0, c.NPSN, false
		}
		return 100 * (float64(c.NPSPromoters) - float64(c.NPSDetractors)) / float64(c.NPSN), c.NPSN, true
	case CES:
		if c.CESN == 0 || c.CESSum < c.CESN || c.CESSum > 7*c.CESN {
			return 0, c.CESN, false
		}
		return float64(c.CESSum) / float64(c.CESN), c.CESN, true
	case WaitP90:
		for _, k := range c.Wait {
			n += k
		}
		v, ok = metric.Quantile(c.Wait[:], 0.9)
		return v, n, ok
	case Volume:
		return float64(c.Events), c.Events, true
	}
	return 0, 0, false
}

// changeTest is the significance test of a change rule's metric between the two periods,
// whose lengths are the exposures (they matter for volume only).
func changeTest(m Metric, cur, base *rollup.Counts, curExp, baseExp time.Duration) metric.Test {
	switch m {
	case CSAT:
		return metric.TwoProportions(cur.CSATTop2, cur.CSATN, base.CSATTop2, base.CSATN)
	case NegativeRate:
		return metric.TwoProportions(cur.Negative, cur.Events, base.Negative, base.Events)
	case Abandonment:
		return metric.TwoProportions(cur.Abandoned, cur.WithOutcome, base.Abandoned, base.WithOutcome)
	case NPS:
		return metric.NPSChange(cur.NPSPromoters, cur.NPSDetractors, cur.NPSN, base.NPSPromoters, base.NPSDetractors, base.NPSN)
	case CES:
		return metric.CESChange(cur.CESSum, cur.CESN, base.CESSum, base.CESN)
	case WaitP90:
		return metric.QuantileShift(cur.Wait[:], base.Wait[:], 0.9)
	case Volume:
		return metric.PoissonRate(cur.Events, curExp.Seconds(), base.Events, baseExp.Seconds())
	}
	return metric.Test{}
}

// minPartN is the least n of a baseline subgroup that counts towards its dispersion.
const minPartN = metric.DefaultMinN

// dispersion is the overdispersion of metric m between the parts of baseline base (see
// metric.Overdispersion): each part's figure against the baseline's, weighted by its n (for
// volume: its rate, weighted by its length).
func dispersion(m Metric, base *rollup.Counts, parts []part) float64 {
	if len(parts) < metric.MinSubgroups {
		return 1
	}
	means, weights := make([]float64, len(parts)), make([]float64, len(parts))
	share := func(i int, x, n uint64) {
		if n >= minPartN && x <= n {
			means[i], weights[i] = float64(x)/float64(n), float64(n)
		}
	}
	shareVariance := func(x, n uint64) float64 {
		if n == 0 {
			return 0
		}
		p := float64(x) / float64(n)
		return p * (1 - p)
	}
	var variance float64
	switch m {
	case CSAT:
		for i := range parts {
			share(i, parts[i].counts.CSATTop2, parts[i].counts.CSATN)
		}
		variance = shareVariance(base.CSATTop2, base.CSATN)
	case NegativeRate:
		for i := range parts {
			share(i, parts[i].counts.Negative, parts[i].counts.Events)
		}
		variance = shareVariance(base.Negative, base.Events)
	case Abandonment:
		for i := range parts {
			share(i, parts[i].counts.Abandoned, parts[i].counts.WithOutcome)
		}
		variance = shareVariance(base.Abandoned, base.WithOutcome)
	case WaitP90:
		b, ok := metric.QuantileBucket(base.Wait[:], 0.9)
		if !ok {
			return 1
		}
		for i := range parts {
			x, n := metric.Above(parts[i].counts.Wait[:], b)
			share(i, x, n)
		}
		variance = shareVariance(metric.Above(base.Wait[:], b))
	case NPS, CES:
		for i := range parts {
			if v, n, ok := figure(m, &parts[i].counts); ok && n >= minPartN {
				means[i], weights[i] = v, float64(n)
			}
		}
		if v, n, ok := figure(m, base); ok && n >= 2 {
			if m == NPS {
				variance = metric.NPSVariance(base.NPSPromoters, base.NPSDetractors, base.NPSN)
			} else {
				variance = metric.CESVarianceBound(v) * float64(n) / float64(n-1)
			}
		}
	case Volume:
		var events uint64
		var seconds float64
		for i := range parts {
			if s := parts[i].exposure.Seconds(); s > 0 {
				means[i], weights[i] = float64(parts[i].counts.Events)/s, s
				events, seconds = events+parts[i].counts.Events, seconds+s
			}
		}
		if seconds > 0 {
			variance = float64(events) / seconds // a Poisson count's variance is its mean
		}
	}
	return metric.Overdispersion(means, weights, variance)
}

// badWay is +1 when a rise of the metric is bad, −1 when a drop is.
func badWay(m Metric) float64 {
	if m.HigherIsBetter() {
		return -1
	}
	return 1
}

// part is one subgroup of a baseline: its counts and its length.
type part struct {
	counts   rollup.Counts
	exposure time.Duration
}

// judge evaluates rule r for one moment × channel: cur are the counts of the current window
// (measured over curExp so far), base those of the baseline (over baseExp), and parts the
// baseline cut into consecutive windows, from which the test learns how much the figure varies
// beyond chance.
func judge(r *Rule, cur, base *rollup.Counts, curExp, baseExp time.Duration, parts ...part) (Observation, verdict) {
	if r.Kind == Target {
		return judgeTarget(r, cur, curExp)
	}
	return judgeChange(r, cur, base, curExp, baseExp, parts)
}

func judgeChange(r *Rule, cur, base *rollup.Counts, curExp, baseExp time.Duration, parts []part) (Observation, verdict) {
	var o Observation
	v1, n1, ok1 := figure(r.Metric, cur)
	v0, n0, ok0 := figure(r.Metric, base)
	o.Value, o.N, o.BaselineN = v1, n1, n0
	enough := ok1 && ok0 && n1 >= r.MinN && n0 >= r.MinBaselineN
	switch r.Metric {
	case Volume:
		// The baseline's figure is the number of events its rate expects in the current window,
		// and MinN applies to it: a silent channel has n = 0 and must still be judged.
		if baseExp <= 0 || curExp <= 0 {
			return o, noData
		}
		o.Baseline = v0 * curExp.Seconds() / baseExp.Seconds()
		enough = o.Baseline >= float64(r.MinN) && n0 >= r.MinBaselineN
		if o.Baseline > 0 {
			o.Change = v1/o.Baseline - 1
		}
	case WaitP90:
		o.Baseline = v0
		o.Change = (v1 - v0) / max(v0, MinWaitBaseMS)
	default:
		o.Baseline = v0
		o.Change = v1 - v0
	}
	if !enough {
		return o, noData
	}
	o.Dispersion = dispersion(r.Metric, base, parts)
	t := changeTest(r.Metric, cur, base, curExp, baseExp).Widen(o.Dispersion)
	o.Z, o.P = t.Z, t.P
	way := badWay(r.Metric)
	bad := o.Change * way
	switch {
	case t.OK && t.P < r.Alpha && t.Z*way > 0 && bad >= r.MinChange:
		return o, breach
	case !t.OK || t.P >= r.RecoveryP || t.Z*way <= 0 || bad < r.MinChange/2:
		return o, recovered
	}
	return o, hold
}

func judgeTarget(r *Rule, cur *rollup.Counts, curExp time.Duration) (Observation, verdict) {
	o := Observation{Target: r.Target}
	v, n, ok := figure(r.Metric, cur)
	o.Value, o.N = v, n
	switch r.Metric {
	case Volume:
		// The count so far, scaled to the whole window (the step that is filling now is part of
		// the window but not over yet).
		if curExp <= 0 {
			return o, noData
		}
		scale := r.Window.Seconds() / curExp.Seconds()
		lo, hi := metric.PoissonInterval(n)
		o.Value, o.Low, o.High = v*scale, lo*scale, hi*scale
	default:
		if !ok || n < r.MinN {
			return o, noData
		}
		o.Low, o.High = interval(r.Metric, cur, v, n)
	}
	if r.Metric.HigherIsBetter() {
		switch {
		case o.High < r.Target:
			return o, breach
		case o.Value >= r.Target:
			return o, recovered
		}
		return o, hold
	}
	switch {
	case o.Low > r.Target:
		return o, breach
	case o.Value <= r.Target:
		return o, recovered
	}
	return o, hold
}

// interval is the 95% interval of the current figure v of n answers: Wilson's for shares, the
// normal interval for NPS and CES (with the largest variance its mean allows for CES), and for
// wait p90 the distribution-free interval of a quantile, the values at ranks
// n (0.9 ± 1.96 sqrt(0.09/n)), widened to the edges of their histogram buckets.
func interval(m Metric, c *rollup.Counts, v float64, n uint64) (low, high float64) {
	switch m {
	case CSAT:
		return wilson(c.CSATTop2, n)
	case NegativeRate:
		return wilson(c.Negative, n)
	case Abandonment:
		return wilson(c.Abandoned, n)
	case NPS:
		return metric.MeanInterval(v, metric.NPSVariance(c.NPSPromoters, c.NPSDetractors, n), n)
	case CES:
		return metric.MeanInterval(v, metric.CESVarianceBound(v)*float64(n)/float64(n-1), n)
	case WaitP90:
		half := metric.Z95 * math.Sqrt(0.9*0.1/float64(n))
		bLo, _ := metric.QuantileBucket(c.Wait[:], max(0, 0.9-half))
		bHi, _ := metric.QuantileBucket(c.Wait[:], min(1, 0.9+half))
		if bLo > 0 {
			low = float64(bucketBounds[bLo-1]) + 1
		}
		return low, float64(bucketBounds[bHi])
	}
	return math.Inf(-1), math.Inf(1)
}

func wilson(x, n uint64) (low, high float64) {
	return metric.Wilson(int64(min(x, math.MaxInt64)), int64(min(n, math.MaxInt64)))
}
