package metric

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

func TestScores(t *testing.T) {
	var r Rules // DefaultMinN = 5
	const tol = 1e-12
	tests := []struct {
		name string
		got  Figure
		want Figure
	}{
		// CSAT = top-2-box answers / answers.
		{"csat 6 of 8", r.CSAT(8, 6), value(0.75, 8)},                                 // 6 / 8 = 0.75
		{"csat 3 of 12", r.CSAT(12, 3), value(0.25, 12)},                              // 3 / 12 = 0.25
		{"csat 0 of 5 is a real 0", r.CSAT(5, 0), value(0, 5)},                        // 0 / 5 = 0, n = min n
		{"csat below min n", r.CSAT(4, 4), none(4)},                                   // 4 < 5
		{"csat no answers", r.CSAT(0, 0), none(0)},                                    // nothing to divide by
		{"csat top2 above n", r.CSAT(10, 11), none(10)},                               // cannot occur
		{"csat negative top2", r.CSAT(10, -1), none(10)},                              // cannot occur
		{"nps 5 promoters 2 detractors of 10", r.NPS(10, 5, 2), value(30, 10)},        // 100 × (5 − 2) / 10
		{"nps all detractors", r.NPS(7, 0, 7), value(-100, 7)},                        // 100 × (0 − 7) / 7
		{"nps all promoters", r.NPS(6, 6, 0), value(100, 6)},                          // 100 × (6 − 0) / 6
		{"nps 3 passives of 8", r.NPS(8, 1, 4), value(-37.5, 8)},                      // 100 × (1 − 4) / 8 = −300 / 8
		{"nps balanced is a real 0", r.NPS(20, 10, 10), value(0, 20)},                 // 100 × 0 / 20
		{"nps below min n", r.NPS(4, 4, 0), none(4)},                                  // 4 < 5
		{"nps more promoters+detractors than n", r.NPS(10, 6, 5), none(10)},           // 11 > 10
		{"ces 6 answers summing 30", r.CES(6, 30), value(5, 6)},                       // 30 / 6
		{"ces all 1", r.CES(5, 5), value(1, 5)},                                       // 5 / 5
		{"ces all 7", r.CES(9, 63), value(7, 9)},                                      // 63 / 9
		{"ces 7 answers summing 25", r.CES(7, 25), value(25.0/7, 7)},                  // 3.571428…
		{"ces below min n", r.CES(3, 12), none(3)},                                    // 3 < 5
		{"ces sum above 7n", r.CES(6, 43), none(6)},                                   // 43 > 42
		{"ces sum below n", r.CES(6, 5), none(6)},                                     // 5 < 6
		{"negative rate 30 of 200", r.NegativeRate(200, 30), value(0.15, 200)},        // 30 / 200
		{"negative rate below min n", r.NegativeRate(4, 1), none(4)},                  // 4 < 5
		{"negative rate no events", r.NegativeRate(0, 0), none(0)},                    // nothing to divide by
		{"abandonment 10 of 40 with outcome", r.Abandonment(40, 10), value(0.25, 40)}, // 10 / 40
		{"abandonment below min n", r.Abandonment(2, 2), none(2)},                     // 2 < 5
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFigure(t, tt.got, tt.want, tol)
		})
	}
}

func TestRecovery(t *testing.T) {
	var r Rules
	tests := []struct {
		name                       string
		closed, recovered, pending int64
		want                       Recovery
		json                       string
	}{
		// 5 of the 20 closed negative moments recovered: 5 / 20 = 0.25; 7 still open.
		{"rate", 20, 5, 7, Recovery{Rate: value(0.25, 20), Pending: 7},
			`{"rate":{"value":0.25,"n":20},"pending":7}`},
		// Only 3 closed (< 5): no rate yet, but the 12 pending are still reported.
		{"below min n", 3, 1, 12, Recovery{Rate: none(3), Pending: 12},
			`{"rate":{"value":null,"n":3},"pending":12}`},
		// Nothing has closed yet: the open ones do not make it 0%.
		{"all pending", 0, 0, 9, Recovery{Rate: none(0), Pending: 9},
			`{"rate":{"value":null,"n":0},"pending":9}`},
		{"none recovered is a real 0", 8, 0, 0, Recovery{Rate: value(0, 8), Pending: 0},
			`{"rate":{"value":0,"n":8},"pending":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Recovery(tt.closed, tt.recovered, tt.pending)
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.json {
				t.Fatalf("got %s, want %s", b, tt.json)
			}
		})
	}
}

// TestNPSRange checks that any possible counts give an NPS in [−100, 100].
func TestNPSRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var r Rules
	for range 10_000 {
		n := rng.Int64N(1000)
		promoters := rng.Int64N(n + 1)
		detractors := rng.Int64N(n - promoters + 1)
		f := r.NPS(n, promoters, detractors)
		if f.OK != (n >= DefaultMinN) {
			t.Fatalf("NPS(%d, %d, %d) = %+v: has a value %v, want %v", n, promoters, detractors, f, f.OK, n >= DefaultMinN)
		}
		if f.OK && (f.Value < -100 || f.Value > 100) {
			t.Fatalf("NPS(%d, %d, %d) = %v, outside [−100, 100]", n, promoters, detractors, f.Value)
		}
	}
}
