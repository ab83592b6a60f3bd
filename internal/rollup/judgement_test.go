package rollup_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
)

// judged runs Judge on two periods' counts, as Build does for a 5-minute window.
func judged(cur, prev rollup.Counts) *rollup.Judgements {
	r := metric.Rules{}
	cm, pm := rollup.MetricsOf(&cur, 5*time.Minute, r), rollup.MetricsOf(&prev, 5*time.Minute, r)
	return rollup.Judge(&cur, &prev, &cm, &pm, 5*time.Minute, 5*time.Minute)
}

// lognormalWaits are n waits whose median is median ms (sigma 0.8), from a fixed seed.
func lognormalWaits(n int, median float64, seed uint64) (h [metric.Buckets]uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for range n {
		h[metric.BucketOf(uint32(median*math.Exp(0.8*rng.NormFloat64())))]++
	}
	return h
}

func waitCounts(h [metric.Buckets]uint64) rollup.Counts {
	var n uint64
	for _, k := range h {
		n += k
	}
	return rollup.Counts{WaitN: n, Wait: h}
}

func TestJudge(t *testing.T) {
	csat := func(n, top2 uint64) rollup.Counts { return rollup.Counts{CSATN: n, CSATTop2: top2} }
	nps := func(n, promoters, detractors uint64) rollup.Counts {
		return rollup.Counts{NPSN: n, NPSPromoters: promoters, NPSDetractors: detractors}
	}
	ces := func(n uint64, mean float64) rollup.Counts {
		return rollup.Counts{CESN: n, CESSum: uint64(math.Round(mean * float64(n)))}
	}
	outcomes := func(n, abandoned uint64) rollup.Counts {
		return rollup.Counts{Events: n, WithOutcome: n, Abandoned: abandoned}
	}
	negative := func(n, neg uint64) rollup.Counts { return rollup.Counts{Events: n, Negative: neg} }
	for _, tc := range []struct {
		name      string
		figure    string
		cur, prev rollup.Counts
		verdict   rollup.Verdict
		reason    rollup.Reason
	}{
		// A 30-point drop of CSAT on 1,000 answers a side: real and large.
		{"csat drop, large n", "csat", csat(1000, 400), csat(1000, 700), rollup.Worse, rollup.Significant},
		{"csat rise, large n", "csat", csat(1000, 700), csat(1000, 400), rollup.Better, rollup.Significant},
		// The same drop on 10 answers a side: shown, never coloured.
		{"csat drop, tiny n", "csat", csat(10, 4), csat(10, 7), rollup.Neutral, rollup.TooFew},
		{"csat drop, n just below the minimum on one side", "csat", csat(29, 5), csat(1000, 700), rollup.Neutral, rollup.TooFew},
		{"csat, n at the minimum on both sides", "csat", csat(30, 6), csat(30, 27), rollup.Worse, rollup.Significant},
		// "▲ +9.9 pts" on a handful of answers.
		{"csat +9.9 pts on 12 answers", "csat", csat(12, 10), csat(11, 8), rollup.Neutral, rollup.TooFew},
		// 2 points on 100,000 answers a side: certain, but too small to matter.
		{"csat -2 pts, huge n", "csat", csat(100_000, 71_000), csat(100_000, 73_000), rollup.Neutral, rollup.TooSmall},
		// Exactly the minimum change counts (no rounding away of 0.55 − 0.50).
		{"csat exactly -5 pts, huge n", "csat", csat(100_000, 50_000), csat(100_000, 55_000), rollup.Worse, rollup.Significant},
		// 6 points on 100 answers a side: large enough, but within chance (p ≈ 0.34).
		{"csat -6 pts, n 100", "csat", csat(100, 70), csat(100, 76), rollup.Neutral, rollup.NotSignificant},
		{"csat unchanged", "csat", csat(500, 350), csat(500, 350), rollup.Neutral, rollup.NotSignificant},
		{"csat no previous answers", "csat", csat(500, 350), rollup.Counts{}, rollup.Neutral, rollup.TooFew},

		// The voice outage: abandonment 8% → 16% on 600 contacts a side (z ≈ 4.3).
		{"abandonment 8% to 16%", "abandonment", outcomes(600, 96), outcomes(600, 48), rollup.Worse, rollup.Significant},
		{"abandonment 8% to 10%, huge n", "abandonment", outcomes(50_000, 5000), outcomes(50_000, 4000), rollup.Neutral, rollup.TooSmall},
		{"negative moments 28% to 38%", "negative_rate", negative(2000, 760), negative(2000, 560), rollup.Worse, rollup.Significant},
		{"negative moments 38% to 28%", "negative_rate", negative(2000, 560), negative(2000, 760), rollup.Better, rollup.Significant},

		// NPS +30 (700 promoters, 100 detractors) against +10 (400, 300): variance 6,100 and
		// 6,900 per answer, z ≈ 5.5.
		{"nps +10 to +30", "nps", nps(1000, 400, 100), nps(1000, 400, 300), rollup.Better, rollup.Significant},
		{"nps -5 points, huge n", "nps", nps(100_000, 40_000, 35_000), nps(100_000, 40_000, 30_000), rollup.Neutral, rollup.TooSmall},
		{"nps -20 points, 40 answers", "nps", nps(40, 12, 14), nps(40, 14, 8), rollup.Neutral, rollup.NotSignificant},

		// CES 4.5 → 5.0: variance bounded by (μ − 1)(7 − μ), 8.75 and 8; z ≈ 3.9 at 1,000 a
		// side, 1.7 at 200.
		{"ces 4.5 to 5.0, n 1000", "ces", ces(1000, 5.0), ces(1000, 4.5), rollup.Better, rollup.Significant},
		{"ces 4.5 to 5.0, n 200", "ces", ces(200, 5.0), ces(200, 4.5), rollup.Neutral, rollup.NotSignificant},
		// "CES ▼ −0.01" in red.
		{"ces -0.01", "ces", ces(5000, 5.19), ces(5000, 5.20), rollup.Neutral, rollup.NotSignificant},
		{"ces -0.2, huge n", "ces", ces(100_000, 5.0), ces(100_000, 5.2), rollup.Neutral, rollup.TooSmall},

		// Waits: four times longer (the outage), the same distribution drawn again, and 10%
		// longer on a huge n (real, too small).
		{"wait p90 x4", "wait_p90_ms", waitCounts(lognormalWaits(400, 240_000, 1)), waitCounts(lognormalWaits(400, 60_000, 2)), rollup.Worse, rollup.Significant},
		{"wait p90 /4", "wait_p90_ms", waitCounts(lognormalWaits(400, 60_000, 1)), waitCounts(lognormalWaits(400, 240_000, 2)), rollup.Better, rollup.Significant},
		{"wait p90 same", "wait_p90_ms", waitCounts(lognormalWaits(400, 60_000, 3)), waitCounts(lognormalWaits(400, 60_000, 4)), rollup.Neutral, rollup.NotSignificant},
		{"wait p90 x1.1, huge n", "wait_p90_ms", waitCounts(lognormalWaits(200_000, 66_000, 5)), waitCounts(lognormalWaits(200_000, 60_000, 6)), rollup.Neutral, rollup.TooSmall},
		{"wait p50 x4", "wait_p50_ms", waitCounts(lognormalWaits(400, 240_000, 1)), waitCounts(lognormalWaits(400, 60_000, 2)), rollup.Worse, rollup.Significant},
		{"wait p90 x4 on 20 waits", "wait_p90_ms", waitCounts(lognormalWaits(20, 240_000, 1)), waitCounts(lognormalWaits(20, 60_000, 2)), rollup.Neutral, rollup.TooFew},

		// Volume doubled: a real change, but volume is neither good nor bad.
		{"volume doubled", "events", rollup.Counts{Events: 2000}, rollup.Counts{Events: 1000}, rollup.Neutral, rollup.Significant},
		{"volume +5%", "events", rollup.Counts{Events: 105_000}, rollup.Counts{Events: 100_000}, rollup.Neutral, rollup.TooSmall},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, _ := judged(tc.cur, tc.prev).Get(tc.figure)
			if j.Verdict != tc.verdict || j.Reason != tc.reason {
				t.Errorf("%s: %s (%s), p = %v (tested %v), n = %d / %d; want %s (%s)",
					tc.figure, j.Verdict, j.Reason, j.P, j.Tested, j.N, j.NPrevious, tc.verdict, tc.reason)
			}
			if want := rollup.Criteria[tc.figure].Test; j.Test != want {
				t.Errorf("test %q, want %q", j.Test, want)
			}
			if j.Tested != (tc.reason != rollup.TooFew) {
				t.Errorf("tested = %v with reason %s", j.Tested, j.Reason)
			}
			if tc.verdict != rollup.Neutral && j.P >= rollup.JudgeAlpha {
				t.Errorf("coloured with p = %v", j.P)
			}
		})
	}
}

// TestJudgeRunsTheMetricTests: each figure's p-value is that of its test in internal/metric
// (the one the alerts use), on the counts of the right periods in the right order.
func TestJudgeRunsTheMetricTests(t *testing.T) {
	cur := rollup.Counts{Events: 900, CSATN: 500, CSATTop2: 300, NPSN: 400, NPSPromoters: 100, NPSDetractors: 180,
		CESN: 300, CESSum: 1200, Negative: 400, WithOutcome: 700, Abandoned: 120}
	prev := rollup.Counts{Events: 1000, CSATN: 520, CSATTop2: 390, NPSN: 420, NPSPromoters: 160, NPSDetractors: 120,
		CESN: 310, CESSum: 1550, Negative: 300, WithOutcome: 720, Abandoned: 60}
	cur.Wait, prev.Wait = lognormalWaits(700, 200_000, 1), lognormalWaits(720, 60_000, 2)
	cur.WaitN, prev.WaitN = 700, 720
	js := judged(cur, prev)
	for _, tc := range []struct {
		name string
		want metric.Test
	}{
		{"events", metric.PoissonRate(900, 300, 1000, 300)},
		{"csat", metric.TwoProportions(300, 500, 390, 520)},
		{"nps", metric.NPSChange(100, 180, 400, 160, 120, 420)},
		{"ces", metric.CESChange(1200, 300, 1550, 310)},
		{"negative_rate", metric.TwoProportions(400, 900, 300, 1000)},
		{"abandonment", metric.TwoProportions(120, 700, 60, 720)},
		{"wait_p50_ms", metric.QuantileShift(cur.Wait[:], prev.Wait[:], 0.5)},
		{"wait_p90_ms", metric.QuantileShift(cur.Wait[:], prev.Wait[:], 0.9)},
	} {
		j, _ := js.Get(tc.name)
		if !tc.want.OK || !j.Tested || j.P != tc.want.P {
			t.Errorf("%s: p = %v (tested %v), want the metric test's %v (ok %v)", tc.name, j.P, j.Tested, tc.want.P, tc.want.OK)
		}
		if tc.name != "events" && j.Verdict != rollup.Worse {
			t.Errorf("%s: %s (%s), want worse", tc.name, j.Verdict, j.Reason)
		}
	}
}

func TestJudgementJSON(t *testing.T) {
	js := judged(rollup.Counts{CSATN: 1000, CSATTop2: 400}, rollup.Counts{CSATN: 1000, CSATTop2: 700})
	b, err := json.Marshal(js)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if c := m["csat"]; c["verdict"] != "worse" || c["reason"] != "significant" || c["test"] != "two_proportions" ||
		c["n"] != 1000.0 || c["n_previous"] != 1000.0 || c["p"].(float64) >= 1e-6 {
		t.Errorf("csat = %v", c)
	}
	if n := m["nps"]; n["p"] != nil || n["verdict"] != "neutral" || n["reason"] != "too_few" {
		t.Errorf("nps without answers = %v, want p null", n)
	}
	var back rollup.Judgements
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != *js {
		t.Errorf("round trip: %+v, want %+v", back, *js)
	}
}

// TestCriteria keeps the table of criteria complete: every delta has one, with a known test
// and a positive minimum change.
func TestCriteria(t *testing.T) {
	var js rollup.Judgements
	n := 0
	js.Each(func(name string, _ rollup.Judgement) {
		n++
		c, ok := rollup.Criteria[name]
		if !ok {
			t.Errorf("%s has no criterion", name)
		}
		switch c.Test {
		case rollup.TestTwoProportions, rollup.TestMeanDifference, rollup.TestShareAbove, rollup.TestPoissonRate:
		default:
			t.Errorf("%s: unknown test %q", name, c.Test)
		}
		if c.MinChange <= 0 {
			t.Errorf("%s: minimum change %v", name, c.MinChange)
		}
	})
	if n != len(rollup.Criteria) {
		t.Errorf("%d criteria for %d judgements", len(rollup.Criteria), n)
	}
	var d rollup.Deltas
	b, _ := json.Marshal(d)
	var fields map[string]any
	_ = json.Unmarshal(b, &fields)
	if len(fields) != n {
		t.Errorf("Deltas has %d fields, Judgements %d", len(fields), n)
	}
	for f := range fields {
		if _, ok := rollup.Criteria[f]; !ok {
			t.Errorf("delta %s has no criterion", f)
		}
	}
}
