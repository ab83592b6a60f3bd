package metric

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestNormalCDF(t *testing.T) {
	tests := []struct{ z, want float64 }{
		{0, 0.5},
		{Z95, 0.975},
		{-Z95, 0.025},
		{1, 0.8413447460685429},
		{-3, 0.0013498980316300957},
		{-8, 6.22096057427178e-16}, // far tail: 1 − Φ(8) computed as 1 − x would be 0
		{math.Inf(1), 1},
		{math.Inf(-1), 0},
	}
	for _, tt := range tests {
		if got := NormalCDF(tt.z); !near(got, tt.want, 1e-12*max(1, tt.want)) && !near(got/tt.want, 1, 1e-9) {
			t.Errorf("NormalCDF(%v) = %v, want %v", tt.z, got, tt.want)
		}
	}
}

func TestTwoProportions(t *testing.T) {
	tests := []struct {
		name           string
		x1, n1, x0, n0 uint64
		want           Test
		tolP           float64
	}{
		// pooled p = 2688/3340 = 0.804790; d = 146/240 − 2542/3100 = −0.211667;
		// Yates c = ½ (1/240 + 1/3100) = 0.002245; se = sqrt(p (1−p) (1/240 + 1/3100)) = 0.026557;
		// Z = −(0.211667 − 0.002245) / 0.026557 = −7.8858, P = erfc(7.8858/√2).
		{"CSAT 61% of 240 against 82% of 3100", 146, 240, 2542, 3100, Test{Z: -7.885762, P: 3.1262e-15, OK: true}, 1e-18},
		// p = 0.525, d = −0.15, c = 0.01, se = sqrt(0.525 × 0.475 × 0.02) = 0.070622;
		// Z = −0.14 / 0.070622 = −1.98238, P = 0.047437.
		{"45 of 100 against 60 of 100", 45, 100, 60, 100, Test{Z: -1.982379, P: 0.047437, OK: true}, 1e-6},
		// Expected counts of 2 (p = ½, n = 4): Fisher's exact test. The "lady tasting tea"
		// table 3/4 against 1/4: one-sided P(X >= 3) = (16 + 1)/70, two-sided 34/70 = 0.485714
		// (R: fisher.test(matrix(c(3, 1, 1, 3), 2))$p.value). Z is still the corrected z:
		// (0.5 − 0.25) / sqrt(0.25 × 0.5) = 0.707107.
		{"Fisher: tea tasting", 3, 4, 1, 4, Test{Z: 0.707107, P: 34.0 / 70, OK: true}, 1e-9},
		{"no variance", 0, 30, 0, 3000, Test{}, 0},
		{"all the same", 30, 30, 3000, 3000, Test{}, 0},
		{"no current data", 0, 0, 10, 100, Test{}, 0},
		{"no baseline", 5, 10, 0, 0, Test{}, 0},
		{"impossible counts", 11, 10, 5, 10, Test{}, 0},
		{"equal shares", 50, 100, 500, 1000, Test{Z: 0, P: 1, OK: true}, 1e-12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TwoProportions(tt.x1, tt.n1, tt.x0, tt.n0)
			if got.OK != tt.want.OK || !near(got.Z, tt.want.Z, 1e-5) || !near(got.P, tt.want.P, tt.tolP) {
				t.Fatalf("TwoProportions(%d, %d, %d, %d) = %+v, want %+v (P ±%g)", tt.x1, tt.n1, tt.x0, tt.n0, got, tt.want, tt.tolP)
			}
		})
	}
}

// TestTwoProportionsRareEventBecomesCommon: a share that was 0 in the baseline and is a third
// now is an overwhelming change, although the z test's validity rule fails (the expected count
// in the current period is 0.1): the exact test must say so, with the right tail.
func TestTwoProportionsRareEventBecomesCommon(t *testing.T) {
	got := TwoProportions(10, 30, 0, 3000)
	// Hypergeometric: all 10 successes fall among the 30 current answers:
	// P = C(30, 10) / C(3030, 10), doubled.
	want := 2 * math.Exp(lchoose(30, 10)-lchoose(3030, 10))
	if !got.OK || got.Z <= 0 || !near(got.P/want, 1, 1e-9) {
		t.Fatalf("TwoProportions(10, 30, 0, 3000) = %+v, want Z > 0 and P = %g", got, want)
	}
	// The lower tail: none of 30 against 300 of 3000. P(X = 0) = C(2730, 30) / C(3030, 30),
	// doubled.
	down := TwoProportions(0, 30, 300, 3000)
	want = 2 * math.Exp(lchoose(2730, 30)-lchoose(3030, 30))
	if !down.OK || down.Z >= 0 || !near(down.P/want, 1, 1e-9) {
		t.Fatalf("TwoProportions(0, 30, 300, 3000) = %+v, want Z < 0 and P = %g", down, want)
	}
}

func TestMeanDifference(t *testing.T) {
	tests := []struct {
		name   string
		m1, v1 float64
		n1     uint64
		m0, v0 float64
		n0     uint64
		want   Test
	}{
		// se = sqrt(4/100 + 9/100) = 0.360555, Z = 1/0.360555 = 2.773501, P = 0.0055457.
		{"Welch", 5, 4, 100, 4, 9, 100, Test{Z: 2.773501, P: 0.0055457, OK: true}},
		{"lower", 4, 9, 100, 5, 4, 100, Test{Z: -2.773501, P: 0.0055457, OK: true}},
		{"one answer", 5, 0, 1, 4, 1, 100, Test{}},
		{"no variance", 5, 0, 50, 4, 0, 50, Test{}},
		{"negative variance", 5, -1, 50, 4, 1, 50, Test{}},
		{"NaN variance", 5, math.NaN(), 50, 4, 1, 50, Test{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MeanDifference(tt.m1, tt.v1, tt.n1, tt.m0, tt.v0, tt.n0)
			if got.OK != tt.want.OK || !near(got.Z, tt.want.Z, 1e-5) || !near(got.P, tt.want.P, 1e-7) {
				t.Fatalf("MeanDifference = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNPSVarianceAndChange(t *testing.T) {
	// 400 promoters, 200 detractors of 1000: NPS 20; E[s²] = 0.6 × 100², so the variance is
	// (0.6 − 0.04) × 1000/999 × 10⁴ = 5605.6 points².
	if got := NPSVariance(400, 200, 1000); !near(got, 5605.6056, 1e-3) {
		t.Errorf("NPSVariance(400, 200, 1000) = %v, want 5605.6056", got)
	}
	for _, c := range [][3]uint64{{0, 0, 1}, {5, 6, 10}} {
		if got := NPSVariance(c[0], c[1], c[2]); got != 0 {
			t.Errorf("NPSVariance%v = %v, want 0", c, got)
		}
	}
	// 5 promoters and 20 detractors of 30 (NPS −50) against NPS 20 of 1000 answers.
	// Welch: Z = −70 / sqrt(6034.48/30 + 5605.61/1000) = −4.86822; pooled (405 and 220 of 1030):
	// Z = −4.98162. The smaller |Z| is Welch's: P = 1.12609e-06.
	got := NPSChange(5, 20, 30, 400, 200, 1000)
	if !got.OK || !near(got.Z, -4.868218, 1e-5) || !near(got.P, 1.12609e-06, 1e-10) {
		t.Errorf("NPSChange = %+v, want Z −4.868218, P 1.12609e-06", got)
	}
	// 30 detractors have no variance of their own: Welch alone would compare against the
	// baseline's spread only; the pooled variance is used.
	all := NPSChange(0, 30, 30, 400, 200, 1000)
	welch := MeanDifference(-100, 0, 30, 20, NPSVariance(400, 200, 1000), 1000)
	if !all.OK || all.Z >= 0 || math.Abs(all.Z) >= math.Abs(welch.Z) {
		t.Errorf("NPSChange of 30 detractors = %+v, want a drop more cautious than Welch's %+v", all, welch)
	}
	if got := NPSChange(5, 30, 30, 1, 1, 10); got.OK {
		t.Errorf("impossible counts: %+v", got)
	}
}

func TestCESVarianceBoundAndChange(t *testing.T) {
	for _, tt := range []struct{ mean, want float64 }{{1, 0}, {7, 0}, {4, 9}, {5, 8}, {0.5, 0}, {math.NaN(), 0}} {
		if got := CESVarianceBound(tt.mean); got != tt.want {
			t.Errorf("CESVarianceBound(%v) = %v, want %v", tt.mean, got, tt.want)
		}
	}
	// Mean 3 of 30 answers against mean 5 of 1000. Own bounds: 8 × 30/29 and 8 × 1000/999:
	// Z = −2 / sqrt(0.275862 + 0.008008) = −3.753792; pooled mean 5090/1030 = 4.941748: bound
	// 8.12… for both, Z = −3.787628. The smaller |Z| is the own bounds': P = 1.74180e-4.
	got := CESChange(90, 30, 5000, 1000)
	if !got.OK || !near(got.Z, -3.753792, 1e-5) || !near(got.P, 1.741795e-4, 1e-9) {
		t.Errorf("CESChange = %+v, want Z −3.753792, P 1.741795e-4", got)
	}
	// The bound is conservative: for answers whose real variance is known, the test with the
	// bound never claims more than the test with the real variance. 15 answers of 3 and 15 of 4
	// (variance 0.2586) against 500 of 5 and 500 of 6 (variance 0.2503).
	real := MeanDifference(3.5, 0.258621, 30, 5.5, 0.250250, 1000)
	bounded := CESChange(105, 30, 5500, 1000)
	if !bounded.OK || math.Abs(bounded.Z) >= math.Abs(real.Z) {
		t.Errorf("CESChange with the bound = %+v, claims more than with the real variance %+v", bounded, real)
	}
	for _, c := range [][4]uint64{{1, 1, 5, 1}, {29, 30, 5, 1}, {300, 30, 5000, 1000}} {
		if got := CESChange(c[0], c[1], c[2], c[3]); got.OK {
			t.Errorf("CESChange%v = %+v, want not OK", c, got)
		}
	}
}

func TestPoissonRate(t *testing.T) {
	tests := []struct {
		name string
		c1   uint64
		e1   float64
		c0   uint64
		e0   float64
		want Test
		tolP float64
	}{
		// q = ½, N = 10: Z = (0 − 5 + ½) / sqrt(2.5) = −2.846050, P = 0.0044265.
		{"silent after 10", 0, 60, 10, 60, Test{Z: -2.846050, P: 0.0044265, OK: true}, 1e-7},
		// q = ⅓, N = 6, N q = 2 < 5: exact, P(X = 0) = (2/3)^6 doubled = 0.175583.
		// Z = (0 − 2 + ½) / sqrt(6 × ⅓ × ⅔) = −1.299038.
		{"exact tail", 0, 1, 6, 2, Test{Z: -1.299038, P: 2 * math.Pow(2.0/3, 6), OK: true}, 1e-9},
		// Same rate: 100 in 1 h against 300 in 3 h.
		{"same rate", 100, 3600, 300, 10800, Test{Z: 0, P: 1, OK: true}, 1e-12},
		{"nothing at all", 0, 60, 0, 60, Test{}, 0},
		{"no exposure", 5, 0, 5, 60, Test{}, 0},
		{"infinite exposure", 5, math.Inf(1), 5, 60, Test{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PoissonRate(tt.c1, tt.e1, tt.c0, tt.e0)
			if got.OK != tt.want.OK || !near(got.Z, tt.want.Z, 1e-5) || !near(got.P, tt.want.P, tt.tolP) {
				t.Fatalf("PoissonRate = %+v, want %+v", got, tt.want)
			}
		})
	}
	// A halved rate on 150 events: Z ≈ −4, significant at 0.001.
	if got := PoissonRate(50, 3600, 100, 3600); !got.OK || got.Z > -3.9 || got.P > 1e-4 {
		t.Errorf("PoissonRate(50, 1h, 100, 1h) = %+v, want a clear drop", got)
	}
}

func TestQuantileShift(t *testing.T) {
	// Baseline: 1000 waits of 60 s, 100 of 180 s (p90 in the bucket of 60 s, 9.1% above it).
	var base, same, slower [Buckets]uint64
	b60, b180, b600 := BucketOf(60_000), BucketOf(180_000), BucketOf(600_000)
	base[b60], base[b180] = 1000, 100
	if b, ok := QuantileBucket(base[:], 0.9); !ok || b != b60 {
		t.Fatalf("QuantileBucket = %d, %v; want %d", b, ok, b60)
	}
	if above, n := Above(base[:], b60); above != 100 || n != 1100 {
		t.Fatalf("Above = %d of %d, want 100 of 1100", above, n)
	}
	same[b60], same[b180] = 100, 10
	if got := QuantileShift(same[:], base[:], 0.9); !got.OK || got.P < 0.5 {
		t.Errorf("same distribution: %+v, want no evidence of a shift", got)
	}
	// Now half of 200 waits are 10 minutes.
	slower[b60], slower[b600] = 100, 100
	got := QuantileShift(slower[:], base[:], 0.9)
	if !got.OK || got.Z <= 0 || got.P > 1e-10 {
		t.Errorf("slower: %+v, want a clear rise", got)
	}
	if got := QuantileShift(slower[:], make([]uint64, Buckets), 0.9); got.OK {
		t.Errorf("no baseline: %+v, want not OK", got)
	}
	if _, ok := QuantileBucket(base[:], 1.5); ok {
		t.Error("QuantileBucket accepted q = 1.5")
	}
}

func TestIntervals(t *testing.T) {
	lo, hi := MeanInterval(4, 1, 100)
	if !near(lo, 4-Z95/10, 1e-12) || !near(hi, 4+Z95/10, 1e-12) {
		t.Errorf("MeanInterval(4, 1, 100) = [%v, %v]", lo, hi)
	}
	if lo, hi := MeanInterval(4, 1, 0); !math.IsInf(lo, -1) || !math.IsInf(hi, 1) {
		t.Errorf("MeanInterval with n = 0 = [%v, %v], want everything", lo, hi)
	}
	// Count 0: [0, z²] = [0, 3.8415]; count 100: 101.92 ± 1.96 × sqrt(100.96) = [82.22, 121.62].
	if lo, hi := PoissonInterval(0); lo != 0 || !near(hi, Z95*Z95, 1e-12) {
		t.Errorf("PoissonInterval(0) = [%v, %v]", lo, hi)
	}
	if lo, hi := PoissonInterval(100); !near(lo, 82.22, 0.01) || !near(hi, 121.62, 0.01) {
		t.Errorf("PoissonInterval(100) = [%v, %v]", lo, hi)
	}
}

// binomialPMF is the Binomial(n, p) distribution, terms below 1e-15 set to 0.
func binomialPMF(n int, p float64) []float64 {
	out := make([]float64, n+1)
	for k := range out {
		v := math.Exp(lchoose(float64(n), float64(k)) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
		if v >= 1e-15 {
			out[k] = v
		}
	}
	return out
}

// The level the alert rules use by default and the size of change they ask for.
const (
	testAlpha  = 1e-4
	testEffect = 0.05
)

// falseAlarmRate is the exact probability, when both periods have the same share p, that a
// test says "significant at testAlpha, and at least testEffect in the direction dir": the sum
// over every outcome (x1, x0) of the two binomials.
func falseAlarmRate(n1, n0 int, p float64, dir float64, test func(x1, n1, x0, n0 uint64) Test) float64 {
	a, b := binomialPMF(n1, p), binomialPMF(n0, p)
	var rate float64
	for x1, pa := range a {
		if pa == 0 {
			continue
		}
		for x0, pb := range b {
			if pb == 0 {
				continue
			}
			d := float64(x1)/float64(n1) - float64(x0)/float64(n0)
			if d*dir < testEffect {
				continue
			}
			if r := test(uint64(x1), uint64(n1), uint64(x0), uint64(n0)); r.OK && r.P < testAlpha && r.Z*dir > 0 {
				rate += pa * pb
			}
		}
	}
	return rate
}

// plainZ is the textbook pooled z test without a continuity correction or an exact fallback.
func plainZ(x1, n1, x0, n0 uint64) Test {
	fn1, fn0 := float64(n1), float64(n0)
	p := float64(x1+x0) / (fn1 + fn0)
	if p <= 0 || p >= 1 {
		return Test{}
	}
	z := (float64(x1)/fn1 - float64(x0)/fn0) / math.Sqrt(p*(1-p)*(1/fn1+1/fn0))
	return Test{Z: z, P: twoSided(z), OK: true}
}

// TestTwoProportionsFalseAlarmRate measures, by exact enumeration, how often TwoProportions
// raises a false alarm at the alerts' level (P < 0.0001, a change of 5 points or more in the
// watched direction) when nothing changed, for a small current period against a large
// baseline and shares from 2% to 95%. It must stay within 1.5 times the nominal level; the
// textbook z test, measured the same way, is up to 27 times above it.
func TestTwoProportionsFalseAlarmRate(t *testing.T) {
	cases := []struct {
		p   float64
		dir float64 // −1: a drop is the alarm (CSAT), +1: a rise (abandonment, negative rate)
	}{{0.02, 1}, {0.05, 1}, {0.2, 1}, {0.5, -1}, {0.8, -1}, {0.95, -1}}
	for _, n1 := range []int{30, 100} {
		for _, c := range cases {
			rate := falseAlarmRate(n1, 3000, c.p, c.dir, TwoProportions)
			if rate > 1.5*testAlpha {
				t.Errorf("n1 = %d, p = %v: false alarms %.2e, want at most %.1e", n1, c.p, rate, 1.5*testAlpha)
			}
		}
	}
	// The enumeration can see the problem it guards against.
	if rate := falseAlarmRate(30, 3000, 0.02, 1, plainZ); rate < 10*testAlpha {
		t.Errorf("the plain z test at n = 30, p = 2%%: %.2e false alarms; the enumeration should show it far above %.0e", rate, testAlpha)
	}
}

// TestNPSChangeFalseAlarmRate measures NPSChange the same way over every outcome of 30 and 100
// current answers (promoters, passives, detractors), against a baseline of 3000 answers held
// at its expected counts: the rate of "P < 0.0001 and a drop of 10 points or more" when nothing
// changed must stay within 1.5 times the nominal level, whatever the mix; Welch's test alone
// is 200 times above it for a mix with 85% detractors.
func TestNPSChangeFalseAlarmRate(t *testing.T) {
	mixes := [][2]float64{{0.8, 0.05}, {0.4, 0.3}, {0.2, 0.6}, {0.1, 0.85}, {0.9, 0.02}, {0.95, 0.01}}
	rate := func(n int, prom, det float64, test func(p1, d1, n1, p0, d0, n0 uint64) Test) float64 {
		const n0 = 3000
		p0, d0 := uint64(math.Round(prom*n0)), uint64(math.Round(det*n0))
		mean := 100 * (prom - det)
		var sum float64
		for p := 0; p <= n; p++ {
			for d := 0; p+d <= n; d++ {
				a := n - p - d
				lp := lchoose(float64(n), float64(p)) + lchoose(float64(n-p), float64(d)) +
					float64(p)*math.Log(prom) + float64(d)*math.Log(det) + float64(a)*math.Log(1-prom-det)
				m := 100 * float64(p-d) / float64(n)
				if mean-m < 10 {
					continue
				}
				if r := test(uint64(p), uint64(d), uint64(n), p0, d0, n0); r.OK && r.P < testAlpha && r.Z < 0 {
					sum += math.Exp(lp)
				}
			}
		}
		return sum
	}
	for _, n := range []int{30, 100} {
		for _, mx := range mixes {
			if r := rate(n, mx[0], mx[1], NPSChange); r > 1.5*testAlpha {
				t.Errorf("n = %d, promoters %v, detractors %v: false alarms %.2e, want at most %.1e", n, mx[0], mx[1], r, 1.5*testAlpha)
			}
		}
	}
	welch := func(p1, d1, n1, p0, d0, n0 uint64) Test {
		return MeanDifference(100*(float64(p1)-float64(d1))/float64(n1), NPSVariance(p1, d1, n1), n1,
			100*(float64(p0)-float64(d0))/float64(n0), NPSVariance(p0, d0, n0), n0)
	}
	if r := rate(30, 0.1, 0.85, welch); r < 10*testAlpha {
		t.Errorf("Welch alone at n = 30 with 85%% detractors: %.2e false alarms; the enumeration should show it far above %.0e", r, testAlpha)
	}
}

func TestOverdispersion(t *testing.T) {
	n := func(k int, v float64) []float64 {
		out := make([]float64, k)
		for i := range out {
			out[i] = v
		}
		return out
	}
	// 8 subgroups of 100 at 20% and 40% in turn: mean 30%, variance 0.21 per answer;
	// χ² = 8 × 100 × 0.1² / 0.21 = 38.095, φ = χ² / 7 = 5.4422.
	alternating := []float64{0.2, 0.4, 0.2, 0.4, 0.2, 0.4, 0.2, 0.4}
	tests := []struct {
		name           string
		means, weights []float64
		variance, want float64
	}{
		{"alternating shares", alternating, n(8, 100), 0.21, 5.442177},
		{"identical subgroups: never below 1", n(8, 0.3), n(8, 100), 0.21, 1},
		{"five subgroups are too few", alternating[:5], n(5, 100), 0.21, 1},
		{"empty subgroups left out", append(alternating[:5:5], 0.9, 0.9), append(n(5, 100), 0, 0), 0.21, 1},
		{"no variance", alternating, n(8, 100), 0, 1},
		{"mismatched lengths", alternating, n(7, 100), 0.21, 1},
	}
	for _, tt := range tests {
		if got := Overdispersion(tt.means, tt.weights, tt.variance); !near(got, tt.want, 1e-5) {
			t.Errorf("%s: Overdispersion = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestWiden(t *testing.T) {
	z4 := Test{Z: 4, P: twoSided(4), OK: true}
	tests := []struct {
		name string
		in   Test
		phi  float64
		want Test
	}{
		// Z 4 → 2, P = 2 (1 − Φ(2)) = 0.0455003.
		{"fourfold variance", z4, 4, Test{Z: 2, P: 0.04550026, OK: true}},
		{"φ 1 changes nothing", z4, 1, z4},
		{"φ below 1 changes nothing", z4, 0.5, z4},
		{"an exact P above the widened one is kept", Test{Z: -4, P: 0.5, OK: true}, 4, Test{Z: -2, P: 0.5, OK: true}},
		{"no test", Test{}, 4, Test{}},
	}
	for _, tt := range tests {
		if got := tt.in.Widen(tt.phi); got.OK != tt.want.OK || !near(got.Z, tt.want.Z, 1e-9) || !near(got.P, tt.want.P, 1e-8) {
			t.Errorf("%s: %+v.Widen(%v) = %+v, want %+v", tt.name, tt.in, tt.phi, got, tt.want)
		}
	}
}
