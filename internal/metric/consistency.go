package metric

import "math"

// ChannelCounts are one channel's csat answers for a moment, as a rollup returns them.
type ChannelCounts struct {
	Channel string
	N       int64 // csat answers
	Top2    int64 // answers of 4 or 5
}

// ChannelCSAT is one channel's line of the consistency view.
type ChannelCSAT struct {
	Channel string `json:"channel"`
	// CSAT is the channel's top-2-box share, with the usual minimum-n rule.
	CSAT Figure `json:"csat"`
	// Low and High are the 95% Wilson interval of the share ([0, 1] without answers), so
	// the dashboard can show how far apart two channels really are.
	Low  float64 `json:"low"`
	High float64 `json:"high"`
	// Excluded is true when the channel has fewer than MinChannelN answers (or counts that
	// cannot occur): it is shown, but left out of the index, the test and the gap.
	Excluded bool `json:"excluded"`
}

// Heterogeneity is the χ² test of whether the included channels share one top-2-box rate.
type Heterogeneity struct {
	ChiSquare float64 `json:"chi_square"`
	DF        int     `json:"df"` // included channels − 1
	// PValue is the chance of a χ² at least this large if every channel had the same
	// rate: small means the channels really differ.
	PValue float64 `json:"p_value"`
	// I2 is the share of the spread beyond what chance explains, max(0, (χ² − df) / χ²),
	// in [0, 1); 0 when χ² is 0.
	I2 float64 `json:"i2"`
}

// Gap is the distance between the best and the worst included channel.
type Gap struct {
	Best  ChannelCSAT `json:"best"`
	Worst ChannelCSAT `json:"worst"`
	// By is the best share minus the worst, in [0, 1].
	By float64 `json:"by"`
}

// Consistency is the Channel Consistency Index of a moment and what it is made of.
type Consistency struct {
	// Index is the CCI in [0, 1], 1 meaning the same experience in every channel; its n is
	// the number of csat answers of the included channels. It has no value with fewer than
	// two included channels.
	Index Figure `json:"index"`
	// Heterogeneity and Gap are nil (JSON null) when Index has no value.
	Heterogeneity *Heterogeneity `json:"heterogeneity"`
	Gap           *Gap           `json:"gap"`
	// Channels are all the channels given, in the order given, included or not.
	Channels []ChannelCSAT `json:"channels"`
}

// Consistency returns the Channel Consistency Index of one moment over its channels.
//
// With N answers over the k included channels, channel c having n_c answers of which a share
// p_c is top-2-box, and the pooled share p = Σ n_c p_c / N:
//
//	χ² = Σ n_c (p_c − p)² / (p (1 − p))
//	CCI = 1 − sqrt(max(0, χ² − (k − 1)) / N), clamped to [0, 1]
//
// χ² − (k − 1) removes what chance alone adds on average (the expectation of χ² when all
// channels share one rate is k − 1), and sqrt(… / N) is Cramér's V of the 2 × k table (here
// corrected for chance), an effect size that does not grow with volume: a busy moment is not
// called inconsistent merely because its χ² is large, which is what the p-value tells. When every answer is top-2-box, or none is
// (p = 0 or 1), all channels agree exactly: χ² = 0 and CCI = 1.
func (r Rules) Consistency(channels []ChannelCounts) Consistency {
	out := Consistency{Channels: make([]ChannelCSAT, len(channels))}
	var included []int
	var n, top2 int64
	for i, c := range channels {
		low, high := Wilson(c.Top2, c.N)
		valid := c.N > 0 && c.Top2 >= 0 && c.Top2 <= c.N
		out.Channels[i] = ChannelCSAT{
			Channel:  c.Channel,
			CSAT:     r.CSAT(c.N, c.Top2),
			Low:      low,
			High:     high,
			Excluded: !valid || c.N < r.minChannelN(),
		}
		if !out.Channels[i].Excluded {
			included = append(included, i)
			n += c.N
			top2 += c.Top2
		}
	}
	out.Index = Figure{N: n}
	if len(included) < 2 || n < r.minN() {
		return out
	}

	df := len(included) - 1
	var chi2 float64
	if top2 > 0 && top2 < n {
		p := float64(top2) / float64(n)
		for _, i := range included {
			c := channels[i]
			d := float64(c.Top2)/float64(c.N) - p
			chi2 += float64(c.N) * d * d
		}
		chi2 /= p * (1 - p)
	}
	cci := 1 - math.Sqrt(max(0, chi2-float64(df))/float64(n))
	out.Index = r.figure(min(1, max(0, cci)), n)

	i2 := 0.0
	if chi2 > 0 {
		i2 = max(0, (chi2-float64(df))/chi2)
	}
	out.Heterogeneity = &Heterogeneity{
		ChiSquare: chi2,
		DF:        df,
		PValue:    ChiSquarePValue(chi2, df),
		I2:        i2,
	}

	// Best and worst by share (from the counts: a channel's CSAT figure can lack a value when
	// MinChannelN is set below MinN); on a tie the channel given first wins, so the answer
	// does not flicker between refreshes.
	share := func(i int) float64 { return float64(channels[i].Top2) / float64(channels[i].N) }
	best, worst := included[0], included[0]
	for _, i := range included[1:] {
		if share(i) > share(best) {
			best = i
		}
		if share(i) < share(worst) {
			worst = i
		}
	}
	out.Gap = &Gap{
		Best:  out.Channels[best],
		Worst: out.Channels[worst],
		By:    share(best) - share(worst),
	}
	return out
}
