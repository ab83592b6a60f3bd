package metric

import (
	"fmt"
	"math"
	"math/big"
	"sort"
)

// Durations (wait_ms, handle_ms) are summarised by a fixed log-scale histogram instead of
// t-digests: ClickHouse computes the bucket index of each event at insert time, the rollups
// keep one count per bucket, and counts add up exactly across windows, moments and channels
// (merged digests only approximate), so Quantile reads any percentile of any roll-up off the
// summed counts.
//
// The buckets, for a duration of ms milliseconds (an integer in 0..MaxDurationMS):
//
//	bucket(0)  = 0
//	bucket(ms) = min(LastBucket, 1 + floor(ln(ms) / ln(BucketRatio)))   for ms >= 1
//
// so bucket i (1 <= i < LastBucket) holds [1.1^(i−1), 1.1^i) and bucket LastBucket holds
// everything from 1.1^191 ≈ 80.5 million ms up, including values beyond MaxDurationMS, which
// event validation rejects. That is Buckets = 193 buckets.
//
// Exactness in floating point: 1.1^i = 11^i / 10^i is never an integer for i >= 1, so no
// integer ms lies on a bucket boundary, and every integer in 1..MaxDurationMS is at least
// 4.7e−9 (in units of the index; the closest is ms = 73,216,705, 0.033 above 1.1^190) from
// the nearest boundary. The rounding error of ln(ms) / ln(1.1) in double precision is about
// 1e−13 (a few ulps of a number below 193), 10,000 times smaller, so the closed form gives the
// same bucket in Go, in ClickHouse's log() and in any libm whose log is off by a few ulps.
// ln(1) is exactly 0 in IEEE arithmetic, so 1 ms is always bucket 1. The tests check all of
// this against exact rational arithmetic and, unless -short, every integer in the range.
// Measured when this was written: BucketSQL on ClickHouse 18.16.1 and on 26.7 (chdb) puts
// every integer 0..MaxDurationMS in the same bucket as BucketOf.
//
// Error bound: Quantile finds the bucket holding the sample of the requested rank exactly and
// answers the geometric middle sqrt(lo × hi) of the integers lo..hi that the bucket can hold.
// As hi / lo < 1.1, the answer is within a factor sqrt(1.1) of the true sample:
//
//	|answer − exact| / exact <= sqrt(1.1) − 1 = 0.048809  (4.89%)
//
// for any percentile of integer durations in 0..MaxDurationMS (0 ms is answered exactly, as is
// any bucket that holds a single integer, such as 1 ms). Values above MaxDurationMS, were any
// to slip through, are clamped into the last bucket and carry no bound.
const (
	// BucketRatio is the ratio between consecutive bucket boundaries.
	BucketRatio = 1.1
	// MaxDurationMS is the largest valid duration, the same as event.MaxDurationMS (a test
	// keeps them equal).
	MaxDurationMS = 86_400_000
	// LastBucket is the index of the last bucket, the one holding MaxDurationMS.
	LastBucket = 192
	// Buckets is the number of buckets, including bucket 0 for 0 ms.
	Buckets = LastBucket + 1
	// QuantileRelativeError is the largest relative error of Quantile for valid durations:
	// sqrt(BucketRatio) − 1.
	QuantileRelativeError = 0.04880884817015163
)

var (
	// bucketUpper[i] is the largest integer ms in bucket i: floor(1.1^i), computed exactly,
	// and MaxDurationMS for the last bucket.
	bucketUpper [Buckets]uint32
	// bucketMiddle[i] is the value Quantile answers for bucket i.
	bucketMiddle [Buckets]float64
)

func init() {
	// 11^i / 10^i in integers, so that the table is exact and independent of any log()
	// implementation; the closed form above is checked against it by the tests.
	num, den := big.NewInt(1), big.NewInt(1)
	eleven, ten := big.NewInt(11), big.NewInt(10)
	var q big.Int
	for i := 1; i < LastBucket; i++ {
		num.Mul(num, eleven)
		den.Mul(den, ten)
		bucketUpper[i] = uint32(q.Quo(num, den).Uint64())
	}
	bucketUpper[LastBucket] = MaxDurationMS
	if bucketUpper[LastBucket-1] >= MaxDurationMS {
		panic("metric: MaxDurationMS is not in the last bucket; LastBucket is wrong")
	}

	bucketMiddle[0] = 0
	for i := 1; i < Buckets; i++ {
		lo, hi := float64(bucketUpper[i-1])+1, float64(bucketUpper[i])
		if lo > hi {
			// No integer falls in this bucket, so valid data never counts here. Should a
			// count show up anyway, answer the middle of its real range 1.1^(i−1)..1.1^i.
			bucketMiddle[i] = math.Pow(BucketRatio, float64(i)-0.5)
			continue
		}
		bucketMiddle[i] = math.Sqrt(lo * hi)
	}
}

// BucketOf returns the histogram bucket of a duration of ms milliseconds, by the closed form
// documented with Buckets (computed here from an exact table, so it cannot drift with a log
// implementation); durations above MaxDurationMS go to the last bucket.
func BucketOf(ms uint32) int {
	if ms >= MaxDurationMS {
		return LastBucket
	}
	// The first bucket whose largest member is >= ms.
	return sort.Search(LastBucket, func(i int) bool { return bucketUpper[i] >= ms })
}

// BucketBounds returns, for each bucket i, the largest integer ms it holds: bucket i holds
// the ms with BucketBounds()[i−1] < ms <= BucketBounds()[i], bucket 0 holds only 0, and the
// last bound is MaxDurationMS. Some low buckets are empty (equal consecutive bounds), because
// between 1 and 10 ms consecutive boundaries are less than 1 ms apart. The slice is a copy.
func BucketBounds() []uint32 {
	b := make([]uint32, Buckets)
	copy(b, bucketUpper[:])
	return b
}

// BucketSQL returns the ClickHouse expression of the bucket index of column (a UInt32), as
// a UInt8: the closed form documented with Buckets, so that the materialized view and
// BucketOf agree. It runs on ClickHouse 18.16 and on 24.x–26.x. column is pasted in as it is: pass a
// column name from code, never user input. A NULL column gives NULL.
//
// Both branches of if() are evaluated: log(0) is −inf, which least() keeps and if() then
// discards, so 0 ms is bucket 0 without any error.
func BucketSQL(column string) string {
	return fmt.Sprintf("toUInt8(if(%[1]s = 0, 0, least(%[2]d, 1 + floor(log(%[1]s) / log(%[3]g)))))",
		column, LastBucket, BucketRatio)
}

// Quantile returns the q-quantile (0 <= q <= 1; 0.5 for p50, 0.9 for p90) in ms of the
// durations whose bucket counts are counts (counts[i] for bucket i; a shorter slice means
// the missing buckets are empty). The quantile is the nearest-rank one: the smallest duration
// with at least ceil(q × total) durations at or below it. ok is false when there are no
// durations, q is out of range, or counts has more than Buckets entries. The answer is within
// QuantileRelativeError of the exact one.
func Quantile(counts []uint64, q float64) (ms float64, ok bool) {
	b, ok := QuantileBucket(counts, q)
	if !ok {
		return 0, false
	}
	return bucketMiddle[b], true
}

// Percentile returns Quantile as a Figure whose n is the number of durations, so that a p90 of
// three calls shows as "not enough data".
func (r Rules) Percentile(counts []uint64, q float64) Figure {
	var total uint64
	for _, c := range counts {
		total += c
	}
	n := int64(min(total, math.MaxInt64))
	ms, ok := Quantile(counts, q)
	if !ok {
		return Figure{N: n}
	}
	return r.figure(ms, n)
}
