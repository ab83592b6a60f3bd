package metric

import (
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/truthboard/truthboard/internal/event"
)

// closedFormBucket is the bucket formula as BucketSQL writes it for ClickHouse, in floating
// point: 0 for 0, else min(LastBucket, 1 + floor(ln(ms) / ln(1.1))).
func closedFormBucket(ms uint32) int {
	if ms == 0 {
		return 0
	}
	return int(min(LastBucket, 1+math.Floor(math.Log(float64(ms))/math.Log(BucketRatio))))
}

func TestBucketConstants(t *testing.T) {
	if MaxDurationMS != event.MaxDurationMS {
		t.Fatalf("MaxDurationMS = %d, event.MaxDurationMS = %d", MaxDurationMS, event.MaxDurationMS)
	}
	if want := math.Sqrt(BucketRatio) - 1; math.Abs(QuantileRelativeError-want) > 1e-16 {
		t.Fatalf("QuantileRelativeError = %v, want sqrt(1.1) − 1 = %v", QuantileRelativeError, want)
	}
	// ln(86,400,000) / ln(1.1) = 18.2745 / 0.0953102 = 191.74, so MaxDurationMS is in
	// bucket 1 + 191 = 192.
	if got := closedFormBucket(MaxDurationMS); got != LastBucket {
		t.Fatalf("closed form puts MaxDurationMS in bucket %d, LastBucket = %d", got, LastBucket)
	}
	want := "toUInt8(if(wait_ms = 0, 0, least(192, 1 + floor(log(wait_ms) / log(1.1)))))"
	if got := BucketSQL("wait_ms"); got != want {
		t.Fatalf("BucketSQL:\n got %s\nwant %s", got, want)
	}
}

func TestBucketOf(t *testing.T) {
	// Bucket i >= 1 holds [1.1^(i−1), 1.1^i). Powers of 1.1 worked out with bc -l:
	// 1.1^7 = 1.9487, 1.1^8 = 2.1436, 1.1^23 = 8.9543, 1.1^24 = 9.8497, 1.1^25 = 10.8347,
	// 1.1^72 = 955.594, 1.1^73 = 1051.153, 1.1^74 = 1156.27, 1.1^190 = 73,216,704.967,
	// 1.1^191 = 80,538,375.463.
	tests := []struct {
		ms   uint32
		want int
	}{
		{0, 0},                   // its own bucket
		{1, 1},                   // 1.1^0 = 1 <= 1 < 1.1
		{2, 8},                   // 1.1^7 = 1.95 <= 2 < 1.1^8 = 2.14
		{9, 24},                  // 1.1^23 = 8.95 <= 9 < 1.1^24 = 9.85
		{10, 25},                 // 1.1^24 = 9.85 <= 10 < 1.1^25 = 10.83
		{955, 72},                // 1.1^71 = 868.7 <= 955 < 1.1^72 = 955.59
		{956, 73},                // 1.1^72 = 955.59 <= 956
		{1000, 73},               // ln 1000 / ln 1.1 = 72.48
		{1051, 73},               // 1051 < 1.1^73 = 1051.15
		{1052, 74},               // 1.1^73 = 1051.15 <= 1052
		{73_216_704, 190},        // just below 1.1^190 = 73,216,704.967
		{73_216_705, 191},        // 0.033 above it: the tightest boundary of all
		{80_538_375, 191},        // 1.1^191 = 80,538,375.46
		{80_538_376, 192},        // the last bucket
		{MaxDurationMS, 192},     // 86,400,000
		{MaxDurationMS + 1, 192}, // invalid: clamped
		{math.MaxUint32, 192},    // 1 + floor(232.7) clamped
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			if got := BucketOf(tt.ms); got != tt.want {
				t.Fatalf("BucketOf(%d) = %d, want %d", tt.ms, got, tt.want)
			}
			if got := closedFormBucket(tt.ms); got != tt.want {
				t.Fatalf("closed form of %d = %d, want %d", tt.ms, got, tt.want)
			}
		})
	}
}

func TestBucketBounds(t *testing.T) {
	b := BucketBounds()
	if len(b) != Buckets {
		t.Fatalf("%d bounds, want %d", len(b), Buckets)
	}
	// floor(1.1^i): 1.1^1 = 1.1, 1.1^8 = 2.14, 1.1^25 = 10.83, 1.1^72 = 955.59.
	for i, want := range map[int]uint32{0: 0, 1: 1, 2: 1, 7: 1, 8: 2, 25: 10, 72: 955, 73: 1051, 191: 80_538_375, 192: MaxDurationMS} {
		if b[i] != want {
			t.Errorf("bound %d = %d, want %d", i, b[i], want)
		}
	}
	if !slices.IsSorted(b) {
		t.Error("bounds not sorted")
	}
	for i := 1; i < Buckets; i++ {
		if b[i] > b[i-1] {
			// The first and last ms of every non-empty bucket are in it.
			if got := BucketOf(b[i-1] + 1); got != i {
				t.Errorf("BucketOf(%d) = %d, want %d (first of bucket)", b[i-1]+1, got, i)
			}
			if got := BucketOf(b[i]); got != i {
				t.Errorf("BucketOf(%d) = %d, want %d (last of bucket)", b[i], got, i)
			}
		}
	}
	b[5] = 12345
	if BucketBounds()[5] == 12345 {
		t.Fatal("BucketBounds returned the package's own table")
	}
}

// TestBucketClosedFormMargin proves, in exact rational arithmetic, that no integer ms in
// 1..MaxDurationMS is close enough to a bucket boundary 1.1^i for floating-point rounding of
// ln(ms) / ln(1.1) to move it across: the integers on either side of each boundary below the
// last bucket are at least 4.7e−9 away in units of the index, while the rounding error of the
// closed form in double precision is below 1e−13.
func TestBucketClosedFormMargin(t *testing.T) {
	ln11 := math.Log(1.1)
	minMargin := math.Inf(1)
	num, den := big.NewInt(1), big.NewInt(1) // 1.1^i = num / den
	for i := 1; i < LastBucket; i++ {
		num.Mul(num, big.NewInt(11))
		den.Mul(den, big.NewInt(10))
		boundary := new(big.Rat).SetFrac(num, den)
		if boundary.IsInt() {
			t.Fatalf("1.1^%d is an integer", i)
		}
		floor := new(big.Int).Quo(num, den)
		for _, x := range []*big.Int{floor, new(big.Int).Add(floor, big.NewInt(1))} {
			// |x − 1.1^i| / 1.1^i, and ln(x) − i ln(1.1) = ln(x / 1.1^i) ≈ that relative
			// distance; divided by ln(1.1) it is the distance in index units.
			d := new(big.Rat).Sub(new(big.Rat).SetInt(x), boundary)
			d.Abs(d).Quo(d, boundary)
			rel, _ := d.Float64()
			minMargin = min(minMargin, math.Log1p(rel)/ln11)
		}
	}
	if minMargin < 4.7e-9 {
		t.Fatalf("an integer is %.3g (index units) from a boundary; the doc comment promises 4.7e-9", minMargin)
	}
	t.Logf("smallest distance of an integer from a bucket boundary: %.3g index units", minMargin)
}

// TestBucketClosedFormEveryInteger compares the closed form with the exact table for every
// valid duration (86.4 million of them, about a second).
func TestBucketClosedFormEveryInteger(t *testing.T) {
	if testing.Short() {
		t.Skip("86.4 million durations")
	}
	bucket := 0
	for ms := uint32(0); ms <= MaxDurationMS; ms++ {
		for ms > bucketUpper[bucket] {
			bucket++ // walking the exact table: monotonic by construction
		}
		if got := closedFormBucket(ms); got != bucket {
			t.Fatalf("closed form of %d = %d, exact table says %d", ms, got, bucket)
		}
	}
}

func TestBucketOfMonotonic(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100_000 {
		a, b := rng.Uint32(), rng.Uint32()
		if a > b {
			a, b = b, a
		}
		if BucketOf(a) > BucketOf(b) {
			t.Fatalf("BucketOf(%d) = %d > BucketOf(%d) = %d", a, BucketOf(a), b, BucketOf(b))
		}
	}
}

// countsOf returns the per-bucket counts of some durations.
func countsOf(ms ...uint32) []uint64 {
	counts := make([]uint64, Buckets)
	for _, m := range ms {
		counts[BucketOf(m)]++
	}
	return counts
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name   string
		counts []uint64
		q      float64
		want   float64
		ok     bool
	}{
		// Ten waits: 0, 0, 1, 1, 1, 10, 10, 10, 10, 10. Buckets 0, 1 and 25 each hold a
		// single integer, so the answers are exact.
		// p50: rank ceil(0.5 × 10) = 5 → the 5th smallest, 1 ms.
		{"p50 exact", countsOf(0, 0, 1, 1, 1, 10, 10, 10, 10, 10), 0.5, 1, true},
		// p90: rank 9 → 10 ms.
		{"p90 exact", countsOf(0, 0, 1, 1, 1, 10, 10, 10, 10, 10), 0.9, 10, true},
		// p20: rank 2 → 0 ms.
		{"p20 zero", countsOf(0, 0, 1, 1, 1, 10, 10, 10, 10, 10), 0.2, 0, true},
		{"q 0 is the smallest", countsOf(0, 0, 1, 1, 1, 10, 10, 10, 10, 10), 0, 0, true},
		{"q 1 is the largest", countsOf(0, 0, 1, 1, 1, 10, 10, 10, 10, 10), 1, 10, true},
		// Seven 1 ms and three 10 ms: p70 is rank 7 → 1 ms. In binary 0.7 × 10 is
		// 7.000000000000001, which must not become rank 8.
		{"p70 rank rounding", countsOf(1, 1, 1, 1, 1, 1, 1, 10, 10, 10), 0.7, 1, true},
		// One wait of 1000 ms, in bucket 73 = integers 956..1051: the geometric middle
		// sqrt(956 × 1051) = sqrt(1,004,756) = 1002.375 (1000 is 0.24% off).
		{"middle of a wide bucket", countsOf(1000), 0.5, 1002.3751792617373, true},
		// A short slice: buckets past its end are empty. Bucket 8 = integers 2..2.
		{"short slice", []uint64{0, 0, 0, 0, 0, 0, 0, 0, 4}, 0.9, 2, true},
		{"no data", make([]uint64, Buckets), 0.5, 0, false},
		{"nil", nil, 0.5, 0, false},
		{"q above 1", countsOf(5), 1.5, 0, false},
		{"q below 0", countsOf(5), -0.1, 0, false},
		{"q NaN", countsOf(5), math.NaN(), 0, false},
		{"too many buckets", make([]uint64, Buckets+1), 0.5, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Quantile(tt.counts, tt.q)
			if ok != tt.ok || math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("Quantile(q=%v) = %v, %v; want %v, %v", tt.q, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestQuantileErrorBound compares Quantile with the exact nearest-rank quantiles of random
// samples of every shape the dashboard sees (zeros, a few ms, seconds, hours, a day) and
// checks the relative error against QuantileRelativeError.
func TestQuantileErrorBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	sample := func() uint32 {
		switch k := rng.IntN(20); {
		case k == 0:
			return 0
		case k < 4:
			return uint32(1 + rng.IntN(30)) // a few ms, where buckets hold single integers
		case k == 4:
			return MaxDurationMS - uint32(rng.IntN(10_000_000)) // the last bucket
		default: // log-uniform over 1 ms .. 1 day
			return uint32(math.Exp(rng.Float64() * math.Log(MaxDurationMS)))
		}
	}
	worst := 0.0
	for trial := range 2_000 {
		size := 1 + rng.IntN(1+trial)
		ms := make([]uint32, size)
		for i := range ms {
			ms[i] = sample()
		}
		counts := countsOf(ms...)
		slices.Sort(ms)
		for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 1, rng.Float64()} {
			rank := max(1, int(math.Ceil(q*float64(size)-1e-9)))
			exact := float64(ms[rank-1])
			got, ok := Quantile(counts, q)
			if !ok {
				t.Fatalf("no quantile from %d samples", size)
			}
			if exact == 0 {
				if got != 0 {
					t.Fatalf("q %v of %d samples: got %v, want exactly 0", q, size, got)
				}
				continue
			}
			rel := math.Abs(got-exact) / exact
			worst = max(worst, rel)
			if rel > QuantileRelativeError+1e-12 {
				t.Fatalf("q %v of %d samples: got %v, exact %v, relative error %.4f > %.4f",
					q, size, got, exact, rel, QuantileRelativeError)
			}
		}
	}
	t.Logf("worst relative error seen: %.4f (bound %.4f)", worst, QuantileRelativeError)
}

func TestPercentile(t *testing.T) {
	var r Rules
	// Four calls are below DefaultMinN: no p90, n = 4.
	checkFigure(t, r.Percentile(countsOf(1, 1, 10, 10), 0.9), none(4), 0)
	// Five calls 1, 1, 1, 10, 10: p90 rank ceil(4.5) = 5 → 10 ms.
	checkFigure(t, r.Percentile(countsOf(1, 1, 1, 10, 10), 0.9), value(10, 5), 1e-12)
	checkFigure(t, r.Percentile(nil, 0.5), none(0), 0)
}
