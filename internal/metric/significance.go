package metric

import "math"

// The tests below say whether a figure really moved: a share, a mean or an event rate of the
// current window against the same figure of a baseline (trailing hours, the same time last
// week). Alerts fire on them and screens colour with them, so both judge a change alike.
//
// Every test answers Z, the signed size of the difference in standard errors (Z > 0: the
// current figure is the higher one), and P, the two-sided p-value: the chance of a difference
// at least this large, in either direction, if both periods had the same underlying rate. A
// caller that cares about one direction checks the sign of Z; at a level alpha on P, that is
// a one-sided test at alpha/2. OK is false when the data cannot answer (a period without data,
// or no variation at all); Z and P are then 0 and must not be used.
//
// The normal approximation behind a z test is poor in the far tail for skewed data (a share
// near 0 or 1, few answers), and alerts look exactly there: at p < 0.0001 the plain pooled
// z test of 30 answers at a true share of 2% says "significant" 27 times as often as it
// should. So each test below adds what keeps its real false-positive rate near its nominal
// one at small n (a continuity correction, an exact test below an expected count of 5, the
// larger of two variance estimates); significance_test.go measures it by exact enumeration.

// NormalCDF is Φ(z), the standard normal distribution function.
func NormalCDF(z float64) float64 {
	return 0.5 * math.Erfc(-z/math.Sqrt2)
}

// twoSided is the two-sided p-value of a standard normal statistic: 2 × (1 − Φ(|z|)),
// computed with erfc so that it keeps its precision far in the tail (1 − Φ would round to 0).
func twoSided(z float64) float64 {
	return math.Erfc(math.Abs(z) / math.Sqrt2)
}

// Test is the outcome of a significance test. Z > 0 means the current figure is higher than
// the baseline's; P is the two-sided p-value. OK is false when the test could not be made (too
// little data, or no variance at all): Z and P are then zero and mean nothing.
type Test struct {
	Z, P float64
	OK   bool
}

// minExpected is the smallest expected count of each outcome in each sample for which a z test
// of counts is trusted; below it the tests use exact binomial or hypergeometric tails. It is
// the textbook rule of thumb for the normal approximation.
const minExpected = 5

// TwoProportions compares the share x1/n1 of the current period with the share x0/n0 of the
// baseline by the pooled two-proportion z test: under "same share" both estimate the pooled
// p = (x1 + x0) / (n1 + n0), and
//
//	Z = (x1/n1 − x0/n0 ∓ c) / sqrt(p (1 − p) (1/n1 + 1/n0)),   c = ½ (1/n1 + 1/n0)
//
// with Yates's continuity correction c taken towards zero (Z is 0 when the difference is
// smaller than c). P is the two-sided p-value of Z, except when an expected count (n1 p,
// n1 (1 − p), n0 p or n0 (1 − p)) is below 5: the normal approximation fails there, and P is
// Fisher's exact test instead (twice its one-sided p-value in the direction of the difference,
// at most 1). OK is false without data in either period, with counts that cannot occur
// (x > n), or when every answer of both periods is the same (no variance).
func TwoProportions(x1, n1, x0, n0 uint64) Test {
	if n1 == 0 || n0 == 0 || x1 > n1 || x0 > n0 {
		return Test{}
	}
	fn1, fn0 := float64(n1), float64(n0)
	p := float64(x1+x0) / (fn1 + fn0)
	if p <= 0 || p >= 1 {
		return Test{}
	}
	d := float64(x1)/fn1 - float64(x0)/fn0
	se := math.Sqrt(p * (1 - p) * (1/fn1 + 1/fn0))
	z := corrected(d, 0.5*(1/fn1+1/fn0)) / se
	if min(fn1, fn0)*min(p, 1-p) >= minExpected {
		return Test{Z: z, P: twoSided(z), OK: true}
	}
	return Test{Z: z, P: fisher(x1, n1, x0, n0, d), OK: true}
}

// corrected moves d towards zero by c, stopping at zero: a continuity correction.
func corrected(d, c float64) float64 {
	switch {
	case d > c:
		return d - c
	case d < -c:
		return d + c
	}
	return 0
}

// fisher is the two-sided p-value of Fisher's exact test of a 2×2 table (x1 of n1 against x0
// of n0), as twice the one-sided p-value in the direction of d = x1/n1 − x0/n0: given the
// K = x1 + x0 successes in all, x1 is hypergeometric, and the tail from x1 away from the
// centre is summed.
func fisher(x1, n1, x0, n0 uint64, d float64) float64 {
	if d == 0 {
		return 1
	}
	k, n, bigN := float64(x1+x0), float64(n1), float64(n1+n0)
	lo, hi := max(0, k-float64(n0)), min(n, k)
	x := float64(x1)
	logP := lchoose(k, x) + lchoose(bigN-k, n-x) - lchoose(bigN, n)
	// P(X = j+1) / P(X = j) of the hypergeometric distribution.
	ratio := func(j float64) float64 { return (k - j) * (n - j) / ((j + 1) * (bigN - k - n + j + 1)) }
	return min(1, 2*tail(logP, x, lo, hi, d > 0, ratio))
}

// binomialTwoSided is the two-sided p-value of an exact binomial test of x successes out of n
// at success probability p, as twice the one-sided p-value in the direction of x − n p.
func binomialTwoSided(x, n uint64, p float64) float64 {
	fx, fn := float64(x), float64(n)
	if fx == fn*p {
		return 1
	}
	logP := lchoose(fn, fx) + fx*math.Log(p) + (fn-fx)*math.Log1p(-p)
	ratio := func(j float64) float64 { return (fn - j) / (j + 1) * p / (1 - p) }
	return min(1, 2*tail(logP, fx, 0, fn, fx > fn*p, ratio))
}

// tail sums a discrete distribution on lo..hi from x to hi (upper) or down to lo, given
// log P(X = x) and ratio(j) = P(X = j+1) / P(X = j). The tests call it for the tail away from
// the centre, where the terms fall geometrically, so it stops once they no longer add to the
// sum; the distributions here are log-concave, so terms never grow again after falling.
func tail(logP, x, lo, hi float64, upper bool, ratio func(float64) float64) float64 {
	term := math.Exp(logP)
	sum := term
	if upper {
		for j := x; j < hi; j++ {
			term *= ratio(j)
			sum += term
			if term <= sum*1e-17 {
				break
			}
		}
		return sum
	}
	for j := x; j > lo; j-- {
		term /= ratio(j - 1)
		sum += term
		if term <= sum*1e-17 {
			break
		}
	}
	return sum
}

// lchoose is ln C(n, k).
func lchoose(n, k float64) float64 {
	a, _ := math.Lgamma(n + 1)
	b, _ := math.Lgamma(k + 1)
	c, _ := math.Lgamma(n - k + 1)
	return a - b - c
}

// MeanDifference compares the mean of the current period with the baseline's by Welch's z
// test: Z = (mean1 − mean0) / sqrt(var1/n1 + var0/n0), where var1 and var0 are the sample
// variances of the answers. It is a large-sample test (the normal distribution, not Student's t):
// the alert rules ask for at least 30 answers. OK is false with fewer than 2 answers in either
// period, or when both variances are 0.
func MeanDifference(mean1, var1 float64, n1 uint64, mean0, var0 float64, n0 uint64) Test {
	if n1 < 2 || n0 < 2 || !(var1 >= 0) || !(var0 >= 0) {
		return Test{}
	}
	se := math.Sqrt(var1/float64(n1) + var0/float64(n0))
	z := (mean1 - mean0) / se
	if !(se > 0) || math.IsNaN(z) || math.IsInf(z, 0) {
		return Test{}
	}
	return Test{Z: z, P: twoSided(z), OK: true}
}

// moreCautious returns the test of a and b that claims less (the smaller |Z|), among those that
// could be made.
func moreCautious(a, b Test) Test {
	switch {
	case !a.OK:
		return b
	case !b.OK:
		return a
	case math.Abs(b.Z) < math.Abs(a.Z):
		return b
	}
	return a
}

// NPSVariance is the sample variance of n NPS answers, in NPS points²: each answer scores
// +100 (a promoter), 0 (a passive) or −100 (a detractor), the NPS is their mean, and the
// variance is 100² × ((promoters + detractors) / n − (NPS/100)²) × n / (n − 1). It is 0 with
// fewer than 2 answers or counts that cannot occur.
func NPSVariance(promoters, detractors, n uint64) float64 {
	if n < 2 || promoters+detractors > n {
		return 0
	}
	fn := float64(n)
	m := float64(promoters)/fn - float64(detractors)/fn
	v := (float64(promoters+detractors)/fn - m*m) * fn / (fn - 1)
	return max(0, v) * 100 * 100
}

// NPSChange compares the NPS of the current period (promoters p1 and detractors d1 of n1
// answers) with the baseline's, as MeanDifference of the answers' scores (+100, 0, −100).
// Each period's own variance (Welch) misjudges small samples that happen to agree (30
// detractors have no variance, so any baseline looks far away), and the pooled variance
// misjudges a baseline with almost no detractors; the test takes whichever of the two gives
// the smaller |Z|. Measured by exact enumeration (significance_test.go), its false-positive
// rate at P < 0.0001 then stays below the nominal level from 30 answers up.
func NPSChange(p1, d1, n1, p0, d0, n0 uint64) Test {
	if n1 < 2 || n0 < 2 || p1+d1 > n1 || p0+d0 > n0 {
		return Test{}
	}
	m1 := 100 * (float64(p1) - float64(d1)) / float64(n1)
	m0 := 100 * (float64(p0) - float64(d0)) / float64(n0)
	welch := MeanDifference(m1, NPSVariance(p1, d1, n1), n1, m0, NPSVariance(p0, d0, n0), n0)
	vp := NPSVariance(p1+p0, d1+d0, n1+n0)
	return moreCautious(welch, MeanDifference(m1, vp, n1, m0, vp, n0))
}

// CESVarianceBound is the largest variance that answers of 1 to 7 with the given mean can
// have: (mean − 1) × (7 − mean), by the Bhatia–Davis inequality. The rollups keep the count and
// the sum of CES answers but not the sum of their squares, so the real variance is unknown;
// this bound is never below it (for CES answers it is typically 2 to 4 times larger), so a
// test that uses it can only claim less than the data would support, never more.
func CESVarianceBound(mean float64) float64 {
	if !(mean >= 1 && mean <= 7) {
		return 0
	}
	return (mean - 1) * (7 - mean)
}

// CESChange compares the mean CES of the current period (sum1 of n1 answers of 1–7) with the
// baseline's by MeanDifference, with CESVarianceBound in place of each variance (scaled by
// n/(n − 1), the bound of a sample variance). Like NPSChange it also tries the bound of the
// pooled mean for both periods and keeps the test with the smaller |Z|. OK is false with fewer
// than 2 answers in a period or sums that n answers of 1–7 cannot add up to.
func CESChange(sum1, n1, sum0, n0 uint64) Test {
	if n1 < 2 || n0 < 2 || sum1 < n1 || sum1 > 7*n1 || sum0 < n0 || sum0 > 7*n0 {
		return Test{}
	}
	bound := func(sum, n uint64) float64 {
		fn := float64(n)
		return CESVarianceBound(float64(sum)/fn) * fn / (fn - 1)
	}
	m1, m0 := float64(sum1)/float64(n1), float64(sum0)/float64(n0)
	own := MeanDifference(m1, bound(sum1, n1), n1, m0, bound(sum0, n0), n0)
	vp := bound(sum1+sum0, n1+n0)
	return moreCautious(own, MeanDifference(m1, vp, n1, m0, vp, n0))
}

// PoissonRate compares the event rate of the current period (count1 events over exposure1,
// e.g. seconds) with the baseline's (count0 over exposure0) by the conditional binomial test:
// given the N = count1 + count0 events of both periods, and equal rates, count1 is binomial with
// N trials and probability q = exposure1 / (exposure1 + exposure0). Z is its continuity-
// corrected z statistic (count1 − N q ∓ ½) / sqrt(N q (1 − q)); P is its two-sided p-value, or
// the exact binomial test's (twice the one-sided tail) when N q or N (1 − q) is below 5. Unlike
// a test on the log of the rate ratio it needs no event in the current period, so a channel
// that falls silent is a clear drop.
//
// Counts of real traffic vary more than a Poisson process does (bursts, campaigns, time of
// day), so with thousands of events P is tiny for any change: a volume alert must also ask for
// a large change.
func PoissonRate(count1 uint64, exposure1 float64, count0 uint64, exposure0 float64) Test {
	if !(exposure1 > 0) || !(exposure0 > 0) || math.IsInf(exposure1, 0) || math.IsInf(exposure0, 0) {
		return Test{}
	}
	n := count1 + count0
	if n == 0 {
		return Test{}
	}
	q := exposure1 / (exposure1 + exposure0)
	fn := float64(n)
	z := corrected(float64(count1)-fn*q, 0.5) / math.Sqrt(fn*q*(1-q))
	if fn*min(q, 1-q) >= minExpected {
		return Test{Z: z, P: twoSided(z), OK: true}
	}
	return Test{Z: z, P: binomialTwoSided(count1, n, q), OK: true}
}

// QuantileBucket is the histogram bucket (see BucketOf) that holds the q-quantile of the
// durations counted in counts, by the nearest rank as in Quantile. ok is false when there are no
// durations or q is out of range.
func QuantileBucket(counts []uint64, q float64) (bucket int, ok bool) {
	if !(q >= 0 && q <= 1) || len(counts) > Buckets {
		return 0, false
	}
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0, false
	}
	// The tolerance keeps q × total from landing one rank too high when it is an integer
	// in exact arithmetic but not in binary (0.7 × 10 is 7.000000000000001).
	rank := uint64(max(1, math.Ceil(q*float64(total)-1e-9)))
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return i, true
		}
	}
	panic("metric: quantile rank beyond the total") // rank <= total by construction
}

// Above returns how many of the durations counted in counts lie in buckets after bucket, so
// above the largest value bucket can hold (BucketBounds()[bucket]), and how many there are in
// all.
func Above(counts []uint64, bucket int) (above, n uint64) {
	for i, c := range counts {
		n += c
		if i > bucket {
			above += c
		}
	}
	return above, n
}

// QuantileShift tests whether the durations of the current period (their histogram counts,
// see BucketOf) lie above the baseline's q-quantile more often than the baseline's do: if the
// baseline's p90 is in bucket b, it compares the share of current durations above bucket b with
// the share of baseline durations above it, by TwoProportions. A rise of p90 means more than
// 10% of the durations now lie above the old p90, and comparing against the baseline's own
// share above the bucket (at most 10%, less when the bucket is wide) counts the histogram's
// coarseness and the baseline's own uncertainty. Z > 0 means longer current durations.
func QuantileShift(current, baseline []uint64, q float64) Test {
	b, ok := QuantileBucket(baseline, q)
	if !ok {
		return Test{}
	}
	x1, n1 := Above(current, b)
	x0, n0 := Above(baseline, b)
	return TwoProportions(x1, n1, x0, n0)
}

// MeanInterval is the 95% normal interval of a mean of n answers with sample variance
// variance: mean ± 1.96 sqrt(variance / n). With n = 0 it is (−∞, +∞): nothing is known.
func MeanInterval(mean, variance float64, n uint64) (low, high float64) {
	if n == 0 || !(variance >= 0) {
		return math.Inf(-1), math.Inf(1)
	}
	half := Z95 * math.Sqrt(variance/float64(n))
	return mean - half, mean + half
}

// PoissonInterval is the 95% score interval of the mean of a Poisson count, the analogue of
// Wilson's for counts: count + z²/2 ± z sqrt(count + z²/4). It is not empty at count 0
// ([0, 3.84]), so a silent channel is not judged on zero alone.
func PoissonInterval(count uint64) (low, high float64) {
	c, z2 := float64(count), Z95*Z95
	half := Z95 * math.Sqrt(c+z2/4)
	return max(0, c+z2/2-half), c + z2/2 + half
}

// MinSubgroups is the least number of baseline subgroups from which Overdispersion estimates
// anything: with fewer, its estimate is too noisy to act on, and it answers 1.
const MinSubgroups = 6

// Overdispersion estimates how much more a figure varies between the subgroups of a baseline
// (consecutive windows of it) than their sizes explain: Pearson's dispersion
//
//	φ = Σ w_i (m_i − m̄)² / variance / (k − 1)
//
// where m_i is subgroup i's estimate (a share, a mean, a rate), w_i its weight (its n, or its
// length for a rate), m̄ their weighted mean and variance the variance of one observation (p (1 −
// p) for a share, the answers' variance for a mean, the rate for a Poisson count). Real answers
// are not independent: one unhappy customer writes three negative reviews, a campaign brings a
// different crowd for an hour. The binomial and normal tests assume they are, and with φ > 1
// they claim too much: Test.Widen corrects them (the p′-chart of Laney, or a quasi-binomial
// model, do the same). Subgroups with w_i <= 0 are left out. The answer is at least 1 (never
// narrower than the model), and 1 with fewer than MinSubgroups subgroups.
func Overdispersion(means, weights []float64, variance float64) float64 {
	if len(means) != len(weights) || !(variance > 0) || math.IsInf(variance, 0) {
		return 1
	}
	var k int
	var sw, swm float64
	for i, w := range weights {
		if w > 0 {
			k++
			sw += w
			swm += w * means[i]
		}
	}
	if k < MinSubgroups {
		return 1
	}
	mean := swm / sw
	var chi2 float64
	for i, w := range weights {
		if w > 0 {
			d := means[i] - mean
			chi2 += w * d * d
		}
	}
	phi := chi2 / variance / float64(k-1)
	if math.IsNaN(phi) || math.IsInf(phi, 0) {
		return 1
	}
	return max(1, phi)
}

// Widen returns the test with its standard error multiplied by sqrt(phi), an overdispersion
// (see Overdispersion): Z is divided by sqrt(phi), and P is at least the p-value of that Z (an
// exact test's P, which Z does not give, is kept when it is larger). phi <= 1 changes nothing.
func (t Test) Widen(phi float64) Test {
	if !t.OK || !(phi > 1) || math.IsInf(phi, 0) {
		return t
	}
	t.Z /= math.Sqrt(phi)
	t.P = max(t.P, twoSided(t.Z))
	return t
}
