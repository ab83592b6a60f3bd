package metric

import (
	"math"
	"testing"
)

func TestChiSquarePValueTable(t *testing.T) {
	// Critical values of the χ² distribution as printed in statistical tables (e.g. NIST/
	// SEMATECH e-Handbook of Statistical Methods, §1.3.6.7.4), given to 3 decimals, so the
	// p-value is checked to 1e-3.
	tests := []struct {
		chi2 float64
		df   int
		want float64
	}{
		{0.455, 1, 0.50},
		{2.706, 1, 0.10},
		{3.841, 1, 0.05},
		{6.635, 1, 0.01},
		{10.828, 1, 0.001},
		{5.991, 2, 0.05},
		{9.210, 2, 0.01},
		{7.815, 3, 0.05},
		{11.345, 3, 0.01},
		{9.488, 4, 0.05},
		{13.277, 4, 0.01},
		{18.307, 10, 0.05},
		{23.209, 10, 0.01},
		{2.558, 10, 0.99},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			if got := ChiSquarePValue(tt.chi2, tt.df); math.Abs(got-tt.want) > 1e-3 {
				t.Fatalf("ChiSquarePValue(%v, %d) = %.6f, want %v", tt.chi2, tt.df, got, tt.want)
			}
		})
	}
}

// TestChiSquarePValueClosedForms checks the series and the continued fraction (x below and
// above a + 1) against the closed forms for small df, to near machine precision:
//
//	df = 1: Q = erfc(sqrt(x/2))
//	df = 2: Q = e^(−x/2)
//	df = 3: Q = erfc(sqrt(x/2)) + sqrt(2x/π) e^(−x/2)
//	df = 4: Q = e^(−x/2) (1 + x/2)
//	df = 6: Q = e^(−x/2) (1 + x/2 + (x/2)²/2)
func TestChiSquarePValueClosedForms(t *testing.T) {
	closed := map[int]func(x float64) float64{
		1: func(x float64) float64 { return math.Erfc(math.Sqrt(x / 2)) },
		2: func(x float64) float64 { return math.Exp(-x / 2) },
		3: func(x float64) float64 {
			return math.Erfc(math.Sqrt(x/2)) + math.Sqrt(2*x/math.Pi)*math.Exp(-x/2)
		},
		4: func(x float64) float64 { return math.Exp(-x/2) * (1 + x/2) },
		6: func(x float64) float64 { h := x / 2; return math.Exp(-h) * (1 + h + h*h/2) },
	}
	for df, want := range closed {
		for x := 0.001; x < 300; x *= 1.07 {
			got, w := ChiSquarePValue(x, df), want(x)
			// Relative accuracy, except where Q is so close to 1 that only the absolute
			// error of 1 − P is meaningful.
			if math.Abs(got-w) > 1e-12*w+1e-14 {
				t.Fatalf("df %d, χ² %v: got %.17g, want %.17g (rel. error %.2g)", df, x, got, w, math.Abs(got-w)/w)
			}
		}
	}
}

func TestChiSquarePValueEdges(t *testing.T) {
	tests := []struct {
		name string
		chi2 float64
		df   int
		want float64
	}{
		{"zero", 0, 3, 1},
		{"negative", -1, 3, 1},
		{"infinite", math.Inf(1), 3, 0},
		{"far tail underflows to 0", 5000, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ChiSquarePValue(tt.chi2, tt.df); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got := ChiSquarePValue(math.NaN(), 1); !math.IsNaN(got) {
		t.Fatalf("NaN χ²: got %v, want NaN", got)
	}
	t.Run("df 0 panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		ChiSquarePValue(1, 0)
	})
}

// TestChiSquarePValueMonotone checks that the p-value falls as χ² grows and stays in [0, 1].
func TestChiSquarePValueMonotone(t *testing.T) {
	for df := 1; df <= 10; df++ {
		prev := 1.0
		for x := 0.0; x < 100; x += 0.01 {
			p := ChiSquarePValue(x, df)
			if p < 0 || p > 1 || p > prev+1e-15 {
				t.Fatalf("df %d: p(%v) = %v after %v", df, x, p, prev)
			}
			prev = p
		}
	}
}
