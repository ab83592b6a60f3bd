package benchkit

import (
	"math"
	"slices"
)

// number is what the statistics below take: durations, nanoseconds, counts, rates.
type number interface {
	~int | ~int64 | ~uint64 | ~float64
}

// Percentile is the nearest-rank percentile q (0 < q <= 1) of xs: the smallest value with at
// least q of the values at or below it. Zero for no values; xs is left as it is.
func Percentile[T number](xs []T, q float64) T {
	if len(xs) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return rank(s, q)
}

// rank is the nearest-rank percentile q of sorted values. The small tolerance keeps q·n that is
// a whole number in exact arithmetic (0.9 × 100) from rounding up to the next rank.
func rank[T number](sorted []T, q float64) T {
	i := int(math.Ceil(q*float64(len(sorted))-1e-9)) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Summary is a distribution in five figures; all zero for no values.
type Summary[T number] struct {
	N                  int
	P50, P90, P99, Max T
}

// Summarize is the nearest-rank percentiles of xs, which it leaves as they are.
func Summarize[T number](xs []T) Summary[T] {
	if len(xs) == 0 {
		return Summary[T]{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Summary[T]{N: len(s), P50: rank(s, 0.50), P90: rank(s, 0.90), P99: rank(s, 0.99), Max: s[len(s)-1]}
}

// Median is the middle value of xs, or the mean of the middle two of an even count; zero for
// no values.
func Median[T number](xs []T) T {
	if len(xs) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	return (s[(n-1)/2] + s[n/2]) / 2
}
