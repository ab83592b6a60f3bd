package metric

import (
	"encoding/json"
	"math"
	"testing"
)

// checkFigure fails unless got has want's n and either both have no value or their values
// are within tol.
func checkFigure(t *testing.T, got, want Figure, tol float64) {
	t.Helper()
	if got.N != want.N || got.OK != want.OK {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got.OK && math.Abs(got.Value-want.Value) > tol {
		t.Fatalf("got value %.12g, want %.12g (±%g)", got.Value, want.Value, tol)
	}
	if !got.OK && got.Value != 0 {
		t.Fatalf("figure without a value carries %v; want 0 so nothing can leak it", got.Value)
	}
}

func value(v float64, n int64) Figure { return Figure{Value: v, OK: true, N: n} }
func none(n int64) Figure             { return Figure{N: n} }

func TestFigureJSON(t *testing.T) {
	var r Rules
	tests := []struct {
		name string
		in   any
		want string
	}{
		// 3 answers < DefaultMinN 5: null, and the n still says how many there were.
		{"below min n", r.CSAT(3, 3), `{"value":null,"n":3}`},
		{"no data", r.CSAT(0, 0), `{"value":null,"n":0}`},
		// 6 of 8 answers were 4 or 5: 6 / 8 = 0.75.
		{"value", r.CSAT(8, 6), `{"value":0.75,"n":8}`},
		// A real zero stays a zero: 0 of 5.
		{"zero is a value", r.CSAT(5, 0), `{"value":0,"n":5}`},
		{"hand-built NaN", Figure{Value: math.NaN(), OK: true, N: 9}, `{"value":null,"n":9}`},
		{"hand-built without OK", Figure{Value: 42, N: 9}, `{"value":null,"n":9}`},
		// NPS 100 × (5 − 2) / 10 = 30 and 100 × (3 − 4) / 10 = −10: a delta of 40 points.
		{"delta", Delta(r.NPS(10, 5, 2), r.NPS(10, 3, 4)), `40`},
		{"delta from no data", Delta(r.NPS(10, 5, 2), r.NPS(4, 3, 0)), `null`},
		{"delta to no data", Delta(r.NPS(4, 3, 0), r.NPS(10, 5, 2)), `null`},
		{"in a struct", struct {
			CSAT  Figure `json:"csat"`
			Delta Change `json:"delta"`
		}{r.CSAT(2, 1), Change{}}, `{"csat":{"value":null,"n":2},"delta":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Fatalf("got %s, want %s", b, tt.want)
			}
		})
	}
}

func TestFigureJSONRoundTrip(t *testing.T) {
	for _, f := range []Figure{none(0), none(3), value(0, 5), value(0.75, 8), value(-37.5, 16)} {
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		var got Figure
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got != f {
			t.Fatalf("%s decoded to %+v, want %+v", b, got, f)
		}
	}
	for _, c := range []Change{{}, {By: 0, OK: true}, {By: -0.125, OK: true}} {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var got Change
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got != c {
			t.Fatalf("%s decoded to %+v, want %+v", b, got, c)
		}
	}
}

func TestDelta(t *testing.T) {
	tests := []struct {
		name      string
		cur, prev Figure
		want      Change
	}{
		// CSAT 0.75 now, 0.5 before: +0.25.
		{"up", value(0.75, 8), value(0.5, 10), Change{By: 0.25, OK: true}},
		// CES 4 now, 5.5 before: −1.5.
		{"down", value(4, 20), value(5.5, 30), Change{By: -1.5, OK: true}},
		{"flat", value(30, 10), value(30, 50), Change{By: 0, OK: true}},
		{"no previous", value(30, 10), none(2), Change{}},
		{"no current", none(0), value(30, 10), Change{}},
		{"neither", none(1), none(1), Change{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Delta(tt.cur, tt.prev); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRulesMinN(t *testing.T) {
	tests := []struct {
		name  string
		rules Rules
		n     int64
		want  Figure
	}{
		// The zero Rules uses DefaultMinN = 5: 4 is not enough, 5 is.
		{"default, 4", Rules{}, 4, none(4)},
		{"default, 5", Rules{}, 5, value(1, 5)},
		{"negative means default", Rules{MinN: -1}, 4, none(4)},
		{"min 1, 1", Rules{MinN: 1}, 1, value(1, 1)},
		{"min 10, 9", Rules{MinN: 10}, 9, none(9)},
		{"min 10, 10", Rules{MinN: 10}, 10, value(1, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every answer top-2-box, so a figure with a value is exactly 1.
			checkFigure(t, tt.rules.CSAT(tt.n, tt.n), tt.want, 0)
		})
	}
}
