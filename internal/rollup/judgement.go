package rollup

import (
	"encoding/json"
	"math"
	"time"

	"github.com/truthboard/truthboard/internal/metric"
)

// A screen may colour a change green or red only when it is real and matters: the change of a
// figure against the previous period must be statistically significant (a two-sided test at
// JudgeAlpha, by the tests of internal/metric that the alerts use too), large enough to matter
// (Criterion.MinChange), and rest on at least JudgeMinN answers in both periods. Anything else
// is shown neutral, with its n. Judge decides this for every delta the API and the live feed
// send; the pages only paint what it says.
//
// The numbers below are the only place where these thresholds live.
const (
	// JudgeAlpha is the largest two-sided p-value of a change that counts as real. 1%, not
	// 5%: an executive screen tests 6 figures in each of up to 55 moment × channel cells at
	// every tick, so at 5% steady traffic would keep a few cells coloured by chance alone.
	JudgeAlpha = 0.001
	// JudgeMinN is the smallest n, in each period, of a figure whose change is judged. Below
	// it the normal approximations of the tests are poor and one answer moves a share by
	// several points; the delta is still shown, neutral, with its n.
	JudgeMinN = 30
)

// Direction says which way a figure is good.
type Direction int

// The directions of the figures.
const (
	// NoDirection: the change can be real but is neither good nor bad (volume).
	NoDirection  Direction = 0
	UpIsBetter   Direction = 1
	DownIsBetter Direction = -1
)

// The tests, by the name the JSON gives them.
const (
	// TestTwoProportions is the pooled two-proportion z-test of a share, with Fisher's exact
	// test at small expected counts (metric.TwoProportions): CSAT top-2-box, negative rate,
	// abandonment.
	TestTwoProportions = "two_proportions"
	// TestMeanDifference is the z-test of the difference of two means (metric.NPSChange: NPS
	// as the mean of +100 / 0 / −100 per answer, variances from the counts; metric.CESChange:
	// CES as the mean of 1–7, whose variance the rollups do not keep, so it is bounded by
	// (μ − 1)(7 − μ), which can only make the test claim less).
	TestMeanDifference = "mean_difference"
	// TestShareAbove tests a wait percentile (metric.QuantileShift): the share of the current
	// period's waits above the histogram bucket of the previous period's percentile against
	// the previous period's own share above it. A p90 that really rose puts clearly more than
	// 10% of the waits above the old p90.
	TestShareAbove = "share_above_previous"
	// TestPoissonRate compares two event rates, counts over the seconds they were counted in
	// (metric.PoissonRate).
	TestPoissonRate = "poisson_rate"
)

// Criterion is how the change of one figure is judged.
type Criterion struct {
	// Test names the test of significance (one of the Test* constants).
	Test string
	// Better is the direction in which the figure is good.
	Better Direction
	// MinChange is the smallest change that matters: in the figure's unit (0.05 is 5 points
	// of a share, 10 is 10 NPS points), or, when Relative, as a ratio above 1 (0.25: the
	// figure grew by a quarter, or fell to 1/1.25 of what it was).
	MinChange float64
	Relative  bool
}

// Criteria are the criteria of every figure that has a delta, by its JSON name.
var Criteria = map[string]Criterion{
	// Volume has no good or bad side: its change is tested and reported, never coloured.
	"events": {Test: TestPoissonRate, Better: NoDirection, MinChange: 0.20, Relative: true},
	"csat":   {Test: TestTwoProportions, Better: UpIsBetter, MinChange: 0.05},
	"nps":    {Test: TestMeanDifference, Better: UpIsBetter, MinChange: 10},
	"ces":    {Test: TestMeanDifference, Better: UpIsBetter, MinChange: 0.3},
	// Negative moments run at 20–30% of events: 5 points is a change anyone would act on.
	"negative_rate": {Test: TestTwoProportions, Better: DownIsBetter, MinChange: 0.05},
	// Abandonment runs at a few percent, where 3 points is already a third more lost customers.
	"abandonment": {Test: TestTwoProportions, Better: DownIsBetter, MinChange: 0.03},
	"wait_p50_ms": {Test: TestShareAbove, Better: DownIsBetter, MinChange: 0.25, Relative: true},
	"wait_p90_ms": {Test: TestShareAbove, Better: DownIsBetter, MinChange: 0.25, Relative: true},
}

// Verdict is what a screen may say of a change.
type Verdict string

// The verdicts.
const (
	Better  Verdict = "better"
	Worse   Verdict = "worse"
	Neutral Verdict = "neutral"
)

// Reason says why a change got its verdict.
type Reason string

// The reasons.
const (
	// Significant: significant and large enough (better or worse; neutral for volume).
	Significant Reason = "significant"
	// TooSmall: significant, but smaller than the criterion's MinChange.
	TooSmall Reason = "too_small"
	// NotSignificant: the test's p-value is JudgeAlpha or more.
	NotSignificant Reason = "not_significant"
	// TooFew: a period has fewer than JudgeMinN answers (or the figure has no value).
	TooFew Reason = "too_few"
	// Untestable: the test cannot be computed (no variance in either period).
	Untestable Reason = "untestable"
)

// Judgement is the verdict on one change, with what it rests on.
type Judgement struct {
	Verdict Verdict
	Reason  Reason
	// Test is the criterion's test, run or not.
	Test string
	// P is the two-sided p-value of the test; Tested is false when it did not run.
	P      float64
	Tested bool
	// N and NPrevious are the figure's n in the two periods.
	N, NPrevious int64
}

type judgementJSON struct {
	Verdict   Verdict  `json:"verdict"`
	Reason    Reason   `json:"reason"`
	Test      string   `json:"test"`
	P         *float64 `json:"p"`
	N         int64    `json:"n"`
	NPrevious int64    `json:"n_previous"`
}

// MarshalJSON writes {"verdict", "reason", "test", "p" (null when no test ran), "n",
// "n_previous"}.
func (j Judgement) MarshalJSON() ([]byte, error) {
	w := judgementJSON{Verdict: j.Verdict, Reason: j.Reason, Test: j.Test, N: j.N, NPrevious: j.NPrevious}
	if j.Tested && !math.IsNaN(j.P) {
		w.P = &j.P
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (j *Judgement) UnmarshalJSON(b []byte) error {
	var w judgementJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*j = Judgement{Verdict: w.Verdict, Reason: w.Reason, Test: w.Test, N: w.N, NPrevious: w.NPrevious}
	if w.P != nil {
		j.P, j.Tested = *w.P, true
	}
	return nil
}

// Judgements are the verdicts on a row's deltas, field by field like Deltas.
type Judgements struct {
	Events       Judgement `json:"events"`
	CSAT         Judgement `json:"csat"`
	NPS          Judgement `json:"nps"`
	CES          Judgement `json:"ces"`
	NegativeRate Judgement `json:"negative_rate"`
	Abandonment  Judgement `json:"abandonment"`
	WaitP50MS    Judgement `json:"wait_p50_ms"`
	WaitP90MS    Judgement `json:"wait_p90_ms"`
}

// figureFields are the figures that have a delta, by JSON name, in the order of Deltas, with
// where each one's figure, change and judgement are (volume has no Figure: figure is nil).
var figureFields = []struct {
	name      string
	figure    func(*Metrics) metric.Figure
	change    func(*Deltas) metric.Change
	judgement func(*Judgements) Judgement
}{
	{"events", nil, nil, func(j *Judgements) Judgement { return j.Events }},
	{"csat", func(m *Metrics) metric.Figure { return m.CSAT }, func(d *Deltas) metric.Change { return d.CSAT },
		func(j *Judgements) Judgement { return j.CSAT }},
	{"nps", func(m *Metrics) metric.Figure { return m.NPS }, func(d *Deltas) metric.Change { return d.NPS },
		func(j *Judgements) Judgement { return j.NPS }},
	{"ces", func(m *Metrics) metric.Figure { return m.CES }, func(d *Deltas) metric.Change { return d.CES },
		func(j *Judgements) Judgement { return j.CES }},
	{"negative_rate", func(m *Metrics) metric.Figure { return m.NegativeRate }, func(d *Deltas) metric.Change { return d.NegativeRate },
		func(j *Judgements) Judgement { return j.NegativeRate }},
	{"abandonment", func(m *Metrics) metric.Figure { return m.Abandonment }, func(d *Deltas) metric.Change { return d.Abandonment },
		func(j *Judgements) Judgement { return j.Abandonment }},
	{"wait_p50_ms", func(m *Metrics) metric.Figure { return m.WaitP50MS }, func(d *Deltas) metric.Change { return d.WaitP50MS },
		func(j *Judgements) Judgement { return j.WaitP50MS }},
	{"wait_p90_ms", func(m *Metrics) metric.Figure { return m.WaitP90MS }, func(d *Deltas) metric.Change { return d.WaitP90MS },
		func(j *Judgements) Judgement { return j.WaitP90MS }},
}

// Each calls fn with every judgement and its figure's JSON name, in the order of Deltas.
func (js *Judgements) Each(fn func(name string, j Judgement)) {
	for _, f := range figureFields {
		fn(f.name, f.judgement(js))
	}
}

// Get returns the judgement of the figure by its JSON name, as Each names them.
func (js *Judgements) Get(name string) (j Judgement, ok bool) {
	for _, f := range figureFields {
		if f.name == name {
			return f.judgement(js), true
		}
	}
	return Judgement{}, false
}

// Figure returns the figure of m by its JSON name (csat, nps, ces, negative_rate, abandonment,
// wait_p50_ms, wait_p90_ms); ok is false for another name, and for "events": volume is no
// Figure.
func (m *Metrics) Figure(name string) (f metric.Figure, ok bool) {
	for _, x := range figureFields {
		if x.name == name && x.figure != nil {
			return x.figure(m), true
		}
	}
	return metric.Figure{}, false
}

// Change returns the change of the figure of d by its JSON name, as Metrics.Figure names them.
func (d *Deltas) Change(name string) (c metric.Change, ok bool) {
	for _, x := range figureFields {
		if x.name == name && x.change != nil {
			return x.change(d), true
		}
	}
	return metric.Change{}, false
}

// Judge judges the changes of a group's figures from its counts in the previous period to its
// counts in the current one. cur and prev are the figures MetricsOf made of them. current and
// previous are how long each period's counts were collected: the window, or less for a
// current period whose end has not come yet (which matters only to volume).
func Judge(cur, prev *Counts, curM, prevM *Metrics, current, previous time.Duration) *Judgements {
	events := func(m *Metrics) metric.Figure {
		return metric.Figure{Value: float64(m.Events), OK: true, N: int64(min(m.Events, math.MaxInt64))}
	}
	return &Judgements{
		Events: judge(Criteria["events"], events(curM), events(prevM),
			metric.PoissonRate(cur.Events, current.Seconds(), prev.Events, previous.Seconds())),
		CSAT: judge(Criteria["csat"], curM.CSAT, prevM.CSAT,
			metric.TwoProportions(cur.CSATTop2, cur.CSATN, prev.CSATTop2, prev.CSATN)),
		NPS: judge(Criteria["nps"], curM.NPS, prevM.NPS,
			metric.NPSChange(cur.NPSPromoters, cur.NPSDetractors, cur.NPSN, prev.NPSPromoters, prev.NPSDetractors, prev.NPSN)),
		CES:          judge(Criteria["ces"], curM.CES, prevM.CES, metric.CESChange(cur.CESSum, cur.CESN, prev.CESSum, prev.CESN)),
		NegativeRate: judge(Criteria["negative_rate"], curM.NegativeRate, prevM.NegativeRate, metric.TwoProportions(cur.Negative, cur.Events, prev.Negative, prev.Events)),
		Abandonment:  judge(Criteria["abandonment"], curM.Abandonment, prevM.Abandonment, metric.TwoProportions(cur.Abandoned, cur.WithOutcome, prev.Abandoned, prev.WithOutcome)),
		WaitP50MS:    judge(Criteria["wait_p50_ms"], curM.WaitP50MS, prevM.WaitP50MS, metric.QuantileShift(cur.Wait[:], prev.Wait[:], 0.5)),
		WaitP90MS:    judge(Criteria["wait_p90_ms"], curM.WaitP90MS, prevM.WaitP90MS, metric.QuantileShift(cur.Wait[:], prev.Wait[:], 0.9)),
	}
}

// judge turns a test of the change from prev to cur into a verdict by criterion c.
func judge(c Criterion, cur, prev metric.Figure, t metric.Test) Judgement {
	j := Judgement{Verdict: Neutral, Test: c.Test, N: cur.N, NPrevious: prev.N}
	if cur.N < JudgeMinN || prev.N < JudgeMinN || !cur.OK || !prev.OK {
		j.Reason = TooFew
		return j
	}
	if !t.OK || math.IsNaN(t.P) {
		j.Reason = Untestable
		return j
	}
	j.P, j.Tested = t.P, true
	change := cur.Value - prev.Value
	// The test's statistic and the figure must move the same way (they can disagree only at
	// the edges of a wait histogram's buckets); otherwise the test is not about this change.
	if t.P >= JudgeAlpha || change == 0 || (t.Z > 0) != (change > 0) {
		j.Reason = NotSignificant
		return j
	}
	if !matters(c, cur.Value, prev.Value) {
		j.Reason = TooSmall
		return j
	}
	j.Reason = Significant
	switch {
	case c.Better == NoDirection:
	case (change > 0) == (c.Better == UpIsBetter):
		j.Verdict = Better
	default:
		j.Verdict = Worse
	}
	return j
}

// matters reports whether the change from prev to cur is at least c's MinChange. The
// tolerance keeps a change of exactly MinChange (0.55 − 0.50) from missing it by an ulp.
func matters(c Criterion, cur, prev float64) bool {
	const tolerance = 1e-9
	if !c.Relative {
		return math.Abs(cur-prev) >= c.MinChange-tolerance
	}
	if prev <= 0 || cur <= 0 {
		return cur != prev // from nothing to something (a wait of 0 ms, then waits) is any ratio
	}
	ratio := cur / prev
	return ratio >= 1+c.MinChange-tolerance || 1/ratio >= 1+c.MinChange-tolerance
}
