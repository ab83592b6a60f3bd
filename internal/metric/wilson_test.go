package metric

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestWilson(t *testing.T) {
	tests := []struct {
		name            string
		successes, n    int64
		wantLow, wantHi float64
		tol             float64
	}{
		// 8 of 10: p = 0.8, z² = 3.841459, z²/n = 0.3841459, denominator 1.3841459;
		// centre (0.8 + 0.1920729) / 1.3841459 = 0.716743;
		// half-width 1.959964 / 1.3841459 × sqrt(0.8 × 0.2 / 10 + 3.841459 / 400)
		//          = 1.416009 × sqrt(0.0256036) = 0.226575
		// → [0.490168, 0.943318].
		{"8 of 10", 8, 10, 0.4902, 0.9433, 1e-4},
		// Published values: Newcombe, "Two-sided confidence intervals for the single
		// proportion", Statistics in Medicine 17 (1998), table II, method 3 (score, no
		// continuity correction).
		{"Newcombe 81 of 263", 81, 263, 0.2553, 0.3662, 1e-4},
		{"Newcombe 15 of 148", 15, 148, 0.0624, 0.1605, 1e-4},
		{"Newcombe 0 of 20", 0, 20, 0, 0.1611, 1e-4},
		{"Newcombe 1 of 29", 1, 29, 0.0061, 0.1718, 1e-4},
		// 10 of 10: centre (1 + 0.1920729) / 1.3841459 = 0.861244, half-width
		// 1.416009 × sqrt(0 + 0.0096036) = 0.138766 → [0.722478, 1] (the top pinned to 1).
		{"10 of 10", 10, 10, 0.7225, 1, 1e-4},
		// 80 of 100: denominator 1.0384146; centre 0.8192073 / 1.0384146 = 0.788902;
		// half-width 1.887456 × sqrt(0.0016 + 0.0000960) = 0.077731 → [0.711171, 0.866633].
		{"80 of 100", 80, 100, 0.7112, 0.8666, 1e-4},
		// Nothing known: the whole of [0, 1].
		{"n = 0", 0, 0, 0, 1, 0},
		{"negative n", 0, -3, 0, 1, 0},
		{"more successes than n", 11, 10, 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			low, high := Wilson(tt.successes, tt.n)
			if math.Abs(low-tt.wantLow) > tt.tol || math.Abs(high-tt.wantHi) > tt.tol {
				t.Fatalf("Wilson(%d, %d) = [%.6f, %.6f], want [%.4f, %.4f] ±%g",
					tt.successes, tt.n, low, high, tt.wantLow, tt.wantHi, tt.tol)
			}
		})
	}
}

// TestWilsonContainsEstimate checks that the interval always lies in [0, 1] and contains the
// observed share, including at the edges 0 and n where rounding could push it out.
func TestWilsonContainsEstimate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(s, n int64) {
		low, high := Wilson(s, n)
		p := float64(s) / float64(n)
		if !(0 <= low && low <= p && p <= high && high <= 1) {
			t.Fatalf("Wilson(%d, %d) = [%v, %v] does not contain %v within [0, 1]", s, n, low, high, p)
		}
		if s > 0 && low == 0 || s < n && high == 1 {
			t.Fatalf("Wilson(%d, %d) = [%v, %v]: an end is pinned that should not be", s, n, low, high)
		}
	}
	for n := int64(1); n <= 200; n++ {
		for s := int64(0); s <= n; s++ {
			check(s, n)
		}
	}
	for range 10_000 {
		n := 1 + rng.Int64N(10_000_000)
		check(rng.Int64N(n+1), n)
		check(0, n)
		check(n, n)
	}
}
