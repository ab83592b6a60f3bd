package metric

import (
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// threeChannels is the hand-worked example of TestConsistency:
//
//	web   80 of 100 top-2-box, p = 0.8
//	voice 60 of 100,           p = 0.6
//	chat  35 of 50,            p = 0.7
//	app   20 of 20,            p = 1.0, but n = 20 < 30: shown, excluded
//
// N = 250, pooled p = 175 / 250 = 0.7, p (1 − p) = 0.21
// χ² = (100 × 0.1² + 100 × 0.1² + 50 × 0²) / 0.21 = 2 / 0.21 = 9.5238095, df = 3 − 1 = 2
// CCI = 1 − sqrt((9.5238095 − 2) / 250) = 1 − sqrt(0.0300952) = 1 − 0.1734798 = 0.8265202
// p-value (df 2: Q = e^(−χ²/2)) = e^(−4.7619048) = 0.0085493
// I² = (9.5238095 − 2) / 9.5238095 = 1 − 2 × 0.21 / 2 = 0.79
// gap: best web 0.8 − worst voice 0.6 = 0.2 (app's 1.0 does not count)
var threeChannels = []ChannelCounts{
	{Channel: "web", N: 100, Top2: 80},
	{Channel: "voice", N: 100, Top2: 60},
	{Channel: "app", N: 20, Top2: 20},
	{Channel: "chat", N: 50, Top2: 35},
}

func TestConsistency(t *testing.T) {
	const tol = 1e-6
	tests := []struct {
		name     string
		rules    Rules
		channels []ChannelCounts
		index    Figure
		het      *Heterogeneity // nil: expect none
		best     string
		worst    string
		gap      float64
		excluded []bool
	}{
		{
			name: "three channels and an excluded one", channels: threeChannels,
			index:    value(0.8265202, 250),
			het:      &Heterogeneity{ChiSquare: 9.5238095, DF: 2, PValue: 0.0085493, I2: 0.79},
			best:     "web",
			worst:    "voice",
			gap:      0.2,
			excluded: []bool{false, false, true, false},
		},
		{
			// web 30 of 40 (0.75), voice 10 of 40 (0.25): N = 80, p = 0.5, p (1 − p) = 0.25,
			// χ² = (40 × 0.25² + 40 × 0.25²) / 0.25 = 5 / 0.25 = 20, df 1,
			// CCI = 1 − sqrt(19 / 80) = 1 − 0.4873397 = 0.5126603, I² = 19 / 20 = 0.95,
			// p-value = erfc(sqrt(20 / 2)) = 7.744e−6.
			name: "two channels far apart",
			channels: []ChannelCounts{
				{Channel: "web", N: 40, Top2: 30},
				{Channel: "voice", N: 40, Top2: 10},
			},
			index:    value(0.5126603, 80),
			het:      &Heterogeneity{ChiSquare: 20, DF: 1, PValue: 7.744216e-6, I2: 0.95},
			best:     "web",
			worst:    "voice",
			gap:      0.5,
			excluded: []bool{false, false},
		},
		{
			// web 32 of 40 (0.8), voice 28 of 40 (0.7): N = 80, p = 0.75, p (1 − p) = 0.1875,
			// χ² = (40 × 0.05² × 2) / 0.1875 = 0.2 / 0.1875 = 1.0666667 (df 1), so
			// χ² − df = 0.0666667 and CCI = 1 − sqrt(0.0666667 / 80) = 1 − 0.0288675 = 0.9711325;
			// I² = 0.0666667 / 1.0666667 = 0.0625; p-value = erfc(sqrt(0.5333333)) = 0.3016996.
			name: "two channels within chance",
			channels: []ChannelCounts{
				{Channel: "web", N: 40, Top2: 32},
				{Channel: "voice", N: 40, Top2: 28},
			},
			index:    value(0.9711325, 80),
			het:      &Heterogeneity{ChiSquare: 1.0666667, DF: 1, PValue: 0.3016996, I2: 0.0625},
			best:     "web",
			worst:    "voice",
			gap:      0.1,
			excluded: []bool{false, false},
		},
		{
			// Every answer top-2-box: p = 1, all agree: χ² = 0, CCI = 1, p-value 1, I² 0.
			// All shares tie, so the first channel given is both best and worst.
			name: "p = 1",
			channels: []ChannelCounts{
				{Channel: "web", N: 40, Top2: 40},
				{Channel: "voice", N: 35, Top2: 35},
			},
			index:    value(1, 75),
			het:      &Heterogeneity{ChiSquare: 0, DF: 1, PValue: 1, I2: 0},
			best:     "web",
			worst:    "web",
			gap:      0,
			excluded: []bool{false, false},
		},
		{
			name: "p = 0",
			channels: []ChannelCounts{
				{Channel: "web", N: 40, Top2: 0},
				{Channel: "voice", N: 35, Top2: 0},
				{Channel: "chat", N: 31, Top2: 0},
			},
			index:    value(1, 106),
			het:      &Heterogeneity{ChiSquare: 0, DF: 2, PValue: 1, I2: 0},
			best:     "web",
			worst:    "web",
			gap:      0,
			excluded: []bool{false, false, false},
		},
		{
			// Only web has 30 answers: one channel cannot be compared with anything.
			// The index's n is web's 100.
			name: "one included channel",
			channels: []ChannelCounts{
				{Channel: "web", N: 100, Top2: 80},
				{Channel: "voice", N: 29, Top2: 1},
			},
			index:    none(100),
			excluded: []bool{false, true},
		},
		{name: "no channels", index: none(0), excluded: []bool{}},
		{
			// Counts that cannot occur are shown and excluded, never counted.
			name: "impossible counts",
			channels: []ChannelCounts{
				{Channel: "web", N: 100, Top2: 80},
				{Channel: "voice", N: 100, Top2: 101},
				{Channel: "chat", N: 100, Top2: -1},
			},
			index:    none(100),
			excluded: []bool{false, true, true},
		},
		{
			// MinChannelN 10 lets voice's 12 answers in. web 9 of 12 (0.75), voice 3 of 12
			// (0.25): N = 24, p = 0.5, χ² = (12 × 0.25² × 2) / 0.25 = 6, df 1,
			// CCI = 1 − sqrt(5 / 24) = 1 − 0.4564355 = 0.5435645, I² = 5 / 6 = 0.8333333,
			// p-value = erfc(sqrt(3)) = 0.0143059.
			name:  "configured channel minimum",
			rules: Rules{MinChannelN: 10},
			channels: []ChannelCounts{
				{Channel: "web", N: 12, Top2: 9},
				{Channel: "voice", N: 12, Top2: 3},
				{Channel: "chat", N: 9, Top2: 9},
			},
			index:    value(0.5435645, 24),
			het:      &Heterogeneity{ChiSquare: 6, DF: 1, PValue: 0.0143059, I2: 0.8333333},
			best:     "web",
			worst:    "voice",
			gap:      0.5,
			excluded: []bool{false, false, true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.rules.Consistency(tt.channels)
			checkFigure(t, got.Index, tt.index, tol)
			if len(got.Channels) != len(tt.excluded) {
				t.Fatalf("%d channels back, want %d", len(got.Channels), len(tt.excluded))
			}
			for i, c := range got.Channels {
				if c.Channel != tt.channels[i].Channel || c.Excluded != tt.excluded[i] {
					t.Fatalf("channel %d = %s excluded %v, want %s excluded %v",
						i, c.Channel, c.Excluded, tt.channels[i].Channel, tt.excluded[i])
				}
			}
			if tt.het == nil {
				if got.Heterogeneity != nil || got.Gap != nil {
					t.Fatalf("got heterogeneity %+v and gap %+v, want none", got.Heterogeneity, got.Gap)
				}
				return
			}
			h := got.Heterogeneity
			if h == nil || got.Gap == nil {
				t.Fatalf("got heterogeneity %+v and gap %+v, want both", h, got.Gap)
			}
			if h.DF != tt.het.DF || math.Abs(h.ChiSquare-tt.het.ChiSquare) > tol ||
				math.Abs(h.PValue-tt.het.PValue) > tol || math.Abs(h.I2-tt.het.I2) > tol {
				t.Fatalf("heterogeneity %+v, want %+v", *h, *tt.het)
			}
			g := got.Gap
			if g.Best.Channel != tt.best || g.Worst.Channel != tt.worst || math.Abs(g.By-tt.gap) > 1e-12 {
				t.Fatalf("gap %s − %s = %v, want %s − %s = %v", g.Best.Channel, g.Worst.Channel, g.By, tt.best, tt.worst, tt.gap)
			}
		})
	}
}

// TestConsistencyIntervals checks the Wilson intervals that come with the channels of the
// hand-worked example (values worked in TestWilson: 80 of 100 → [0.7112, 0.8666]; 60 of 100:
// denominator 1.0384146, centre 0.6192073 / 1.0384146 = 0.596303, half-width
// 1.887456 × sqrt(0.0024 + 0.0000960) = 0.094298 → [0.5020, 0.6906]).
func TestConsistencyIntervals(t *testing.T) {
	got := Rules{}.Consistency(threeChannels)
	for _, want := range []struct {
		i         int
		low, high float64
	}{{0, 0.7112, 0.8666}, {1, 0.5020, 0.6906}} {
		c := got.Channels[want.i]
		if math.Abs(c.Low-want.low) > 1e-4 || math.Abs(c.High-want.high) > 1e-4 {
			t.Errorf("%s: [%v, %v], want [%v, %v]", c.Channel, c.Low, c.High, want.low, want.high)
		}
	}
	if g := got.Gap; g.Best.Low != got.Channels[0].Low || g.Worst.High != got.Channels[1].High {
		t.Errorf("gap does not carry the channels' intervals: %+v", g)
	}
}

// TestConsistencyGolden pins the JSON the dashboard receives for the hand-worked example.
// Run go test ./internal/metric/ -run Golden -update to rewrite it after a deliberate change.
func TestConsistencyGolden(t *testing.T) {
	got, err := json.MarshalIndent(Rules{}.Consistency(threeChannels), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "consistency.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	// Numbers are compared to 1e-12, not byte for byte: compilers may fuse multiply-adds on
	// some CPUs (arm64), which changes the last digit, not the answer.
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !jsonClose(g, w) {
		t.Fatalf("JSON differs from %s (run with -update if the change is intended):\n%s", path, got)
	}
}

// jsonClose reports whether two decoded JSON values are equal, numbers to a relative 1e-12.
func jsonClose(a, b any) bool {
	switch a := a.(type) {
	case float64:
		b, ok := b.(float64)
		return ok && math.Abs(a-b) <= 1e-12*max(1, math.Abs(b))
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !jsonClose(a[i], b[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if w, ok := b[k]; !ok || !jsonClose(v, w) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// TestConsistencyProperties checks on random moments that the index stays in [0, 1], I² in
// [0, 1), the p-value in [0, 1], every Wilson interval contains its share, and the gap is the
// largest difference of included shares.
func TestConsistencyProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var r Rules
	for range 5_000 {
		k := 1 + rng.IntN(11)
		channels := make([]ChannelCounts, k)
		for i := range channels {
			n := rng.Int64N(2_000)
			if rng.IntN(4) == 0 {
				n = rng.Int64N(40) // around MinChannelN
			}
			// Shares cluster or spread, so both small and large χ² occur.
			base := rng.Float64()
			top2 := int64(math.Round(float64(n) * min(1, max(0, base+rng.NormFloat64()*0.05))))
			channels[i] = ChannelCounts{Channel: string(rune('a' + i)), N: n, Top2: top2}
		}
		got := r.Consistency(channels)
		if got.Index.OK && (got.Index.Value < 0 || got.Index.Value > 1) {
			t.Fatalf("CCI %v outside [0, 1] for %+v", got.Index.Value, channels)
		}
		for i, c := range got.Channels {
			p := float64(channels[i].Top2) / float64(channels[i].N)
			if channels[i].N > 0 && !(c.Low <= p && p <= c.High) {
				t.Fatalf("%s: [%v, %v] does not contain %v", c.Channel, c.Low, c.High, p)
			}
			if c.Excluded != (channels[i].N < DefaultMinChannelN) {
				t.Fatalf("%s with n %d: excluded %v", c.Channel, channels[i].N, c.Excluded)
			}
		}
		if h := got.Heterogeneity; h != nil {
			if h.I2 < 0 || h.I2 >= 1 || h.PValue < 0 || h.PValue > 1 || h.ChiSquare < 0 {
				t.Fatalf("heterogeneity out of range: %+v", *h)
			}
			lo, hi := math.Inf(1), math.Inf(-1)
			for i, c := range got.Channels {
				if !c.Excluded {
					p := float64(channels[i].Top2) / float64(channels[i].N)
					lo, hi = min(lo, p), max(hi, p)
				}
			}
			if math.Abs(got.Gap.By-(hi-lo)) > 1e-12 {
				t.Fatalf("gap %v, want %v − %v", got.Gap.By, hi, lo)
			}
		}
	}
}

// TestConsistencySameShare checks that channels with exactly the same top-2-box share (of any
// sizes) give CCI = 1, χ² = 0 and I² = 0.
func TestConsistencySameShare(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var r Rules
	for range 5_000 {
		// Share a / b in lowest terms or not; channel c has b × m_c answers, a × m_c top-2-box.
		b := 1 + rng.Int64N(20)
		a := rng.Int64N(b + 1)
		k := 2 + rng.IntN(10)
		channels := make([]ChannelCounts, k)
		for i := range channels {
			m := (DefaultMinChannelN+b-1)/b + rng.Int64N(500)
			channels[i] = ChannelCounts{Channel: string(rune('a' + i)), N: b * m, Top2: a * m}
		}
		got := r.Consistency(channels)
		if !got.Index.OK || got.Index.Value != 1 {
			t.Fatalf("share %d/%d: CCI %+v, want 1", a, b, got.Index)
		}
		if h := got.Heterogeneity; h.ChiSquare != 0 || h.I2 != 0 || h.PValue != 1 {
			t.Fatalf("share %d/%d: %+v, want χ² 0, I² 0, p 1", a, b, *h)
		}
		if got.Gap.By != 0 {
			t.Fatalf("share %d/%d: gap %v", a, b, got.Gap.By)
		}
	}
}
