package benchkit_test

import (
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
)

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // unsorted: Summarize sorts a copy
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	want := benchkit.Summary[time.Duration]{N: 100, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got := benchkit.Summarize(d); got != want {
		t.Errorf("Summarize(1..100 ms) = %+v, want %+v", got, want)
	}
	if d[0] != 100*time.Millisecond {
		t.Errorf("Summarize changed its input: first value %v", d[0])
	}
	if got := benchkit.Summarize[int64](nil); got != (benchkit.Summary[int64]{}) {
		t.Errorf("Summarize(nothing) = %+v", got)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, tt := range []struct {
		q    float64
		want float64
	}{{0.01, 1}, {0.2, 1}, {0.21, 2}, {0.5, 3}, {0.9, 5}, {1, 5}} {
		if got := benchkit.Percentile(xs, tt.q); got != tt.want {
			t.Errorf("Percentile(1..5, %v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := benchkit.Percentile([]time.Duration{}, 0.5); got != 0 {
		t.Errorf("Percentile(nothing) = %v", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		xs   []int64
		want int64
	}{{[]int64{3, 1, 2}, 2}, {[]int64{4, 1, 3, 2}, 2}, {[]int64{10, 20}, 15}, {nil, 0}} {
		if got := benchkit.Median(tt.xs); got != tt.want {
			t.Errorf("Median(%v) = %d, want %d", tt.xs, got, tt.want)
		}
	}
	if got := benchkit.Median([]float64{1, 2}); got != 1.5 {
		t.Errorf("Median(1, 2) = %v, want 1.5", got)
	}
}
