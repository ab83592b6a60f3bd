package metric

import "math"

// Z95 is the standard normal quantile for a two-sided 95% interval: Φ⁻¹(0.975).
const Z95 = 1.959963984540054

// Wilson returns the 95% Wilson score interval of a proportion of successes out of n. It is
// used instead of the textbook p ± z·sqrt(p(1−p)/n) because that interval collapses to a
// point at 0% or 100% and spills outside [0, 1] for the small n of a single channel, while
// Wilson's stays inside [0, 1] and keeps its coverage. With n = 0 (or counts that cannot
// occur) nothing is known and the interval is [0, 1].
func Wilson(successes, n int64) (low, high float64) {
	if n <= 0 || successes < 0 || successes > n {
		return 0, 1
	}
	nf := float64(n)
	p := float64(successes) / nf
	z2 := Z95 * Z95
	denom := 1 + z2/nf
	center := (p + z2/(2*nf)) / denom
	half := Z95 / denom * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	// In exact arithmetic low <= p <= high, with low = 0 at p = 0 and high = 1 at p = 1;
	// rounding can miss those by an ulp, so pin them.
	low = min(max(center-half, 0), p)
	high = max(min(center+half, 1), p)
	if successes == 0 {
		low = 0
	}
	if successes == n {
		high = 1
	}
	return low, high
}
