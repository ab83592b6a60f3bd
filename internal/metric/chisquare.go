package metric

import (
	"fmt"
	"math"
)

// ChiSquarePValue returns the probability that a χ² variable with df degrees of freedom is at
// least chi2: the p-value of a χ² test. It is Q(df/2, chi2/2), the regularized upper
// incomplete gamma function. chi2 <= 0 gives 1. df < 1 is a bug in the caller and panics.
func ChiSquarePValue(chi2 float64, df int) float64 {
	if df < 1 {
		panic(fmt.Sprintf("metric: chi-square with %d degrees of freedom", df))
	}
	if math.IsNaN(chi2) {
		return math.NaN()
	}
	if chi2 <= 0 {
		return 1
	}
	return upperGammaQ(float64(df)/2, chi2/2)
}

// Accuracy and safety limits of the gamma series and continued fraction. Neither is near its
// iteration limit for the df of at most 10 (11 channels) that the dashboard uses: both converge
// in a few dozen terms there.
const (
	gammaEpsilon = 1e-15
	gammaTiny    = 1e-300 // stands in for a zero denominator in Lentz's method
	gammaMaxIter = 10_000
)

// upperGammaQ is the regularized upper incomplete gamma function
//
//	Q(a, x) = Γ(a, x) / Γ(a) = 1 − P(a, x),   a > 0, x >= 0,
//
// computed as in Numerical Recipes (§6.2, gammq): by the series of P when x < a + 1, where it
// converges fast, and otherwise by the continued fraction of Q, which converges fast there and
// avoids the cancellation of 1 − P when Q is small (the p-values that matter).
func upperGammaQ(a, x float64) float64 {
	switch {
	case math.IsNaN(a) || math.IsNaN(x) || a <= 0 || x < 0:
		return math.NaN()
	case x == 0:
		return 1
	case math.IsInf(x, 1):
		return 0
	case x < a+1:
		return 1 - lowerGammaSeries(a, x)
	default:
		return upperGammaFraction(a, x)
	}
}

// gammaPrefactor is x^a e^(−x) / Γ(a), computed in logs so that neither factor overflows.
func gammaPrefactor(a, x float64) float64 {
	lg, _ := math.Lgamma(a) // a > 0, so Γ(a) > 0 and the sign is +1
	return math.Exp(a*math.Log(x) - x - lg)
}

// lowerGammaSeries is P(a, x) = x^a e^(−x) / Γ(a) × Σ_{k>=0} x^k / (a (a+1) … (a+k)).
func lowerGammaSeries(a, x float64) float64 {
	ap := a
	term := 1 / a
	sum := term
	for range gammaMaxIter {
		ap++
		term *= x / ap
		sum += term
		if math.Abs(term) < math.Abs(sum)*gammaEpsilon {
			break
		}
	}
	return min(1, sum*gammaPrefactor(a, x))
}

// upperGammaFraction is Q(a, x) = x^a e^(−x) / Γ(a) × 1/(x+1−a− 1·(1−a)/(x+3−a− 2·(2−a)/(x+5−a− …))),
// evaluated by the modified Lentz method.
func upperGammaFraction(a, x float64) float64 {
	b := x + 1 - a
	c := 1 / gammaTiny
	d := 1 / b
	h := d
	for i := 1; i <= gammaMaxIter; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < gammaTiny {
			d = gammaTiny
		}
		c = b + an/c
		if math.Abs(c) < gammaTiny {
			c = gammaTiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < gammaEpsilon {
			break
		}
	}
	return max(0, min(1, h*gammaPrefactor(a, x)))
}
