package metric

import "time"

// RecoveryWindow is how long after a negative moment a positive event of the same journey
// still counts as recovering it. Until it has passed, the moment is "pending".
const RecoveryWindow = 7 * 24 * time.Hour

// The figures below take counts, not events, because the counts come from ClickHouse rollups
// that are summed over a window. n comes first in every signature, as it does in every Figure.
//
// Counts that cannot occur (a part larger than its whole, a negative count, a CES sum outside
// what n answers of 1–7 can add up to) give a figure with no value rather than a share above
// 100% or a score off its scale: they mean a bug upstream, and a wrong number on a wallboard is
// worse than a missing one.

// CSAT is the top-2-box share of csat answers: the share of the n answers that were 4 or 5
// (top2 of them), in [0, 1].
func (r Rules) CSAT(n, top2 int64) Figure {
	return r.share(n, top2)
}

// NPS is the Net Promoter Score of n nps answers: 100 × (promoters (9–10) − detractors
// (0–6)) / n, in [−100, 100].
func (r Rules) NPS(n, promoters, detractors int64) Figure {
	if n <= 0 || promoters < 0 || detractors < 0 || promoters+detractors > n {
		return Figure{N: n}
	}
	return r.figure(100*float64(promoters-detractors)/float64(n), n)
}

// CES is the mean Customer Effort Score of n ces answers (1–7) that add up to sum.
func (r Rules) CES(n, sum int64) Figure {
	if n <= 0 || sum < n || sum > 7*n {
		return Figure{N: n}
	}
	return r.figure(float64(sum)/float64(n), n)
}

// NegativeRate is the share of events that were negative moments, in [0, 1]; its n is the
// number of events.
func (r Rules) NegativeRate(events, negative int64) Figure {
	return r.share(events, negative)
}

// Abandonment is the share of events with an outcome whose outcome was abandoned, in [0, 1];
// its n is the number of events with an outcome (events without one say nothing either way).
func (r Rules) Abandonment(withOutcome, abandoned int64) Figure {
	return r.share(withOutcome, abandoned)
}

// Recovery is the recovery rate of negative moments and how many are still undecided.
type Recovery struct {
	// Rate is recovered / closed, where closed counts the negative moments whose
	// RecoveryWindow has passed; its n is closed. Moments still inside their window are left
	// out, because counting them as unrecovered would make every rate dip at "now".
	Rate Figure `json:"rate"`
	// Pending is the number of negative moments whose window is still open.
	Pending int64 `json:"pending"`
}

// Recovery returns the recovery rate from the number of negative moments whose 7-day window
// has closed, how many of those were recovered, and how many are still pending.
func (r Rules) Recovery(closed, recovered, pending int64) Recovery {
	return Recovery{Rate: r.share(closed, recovered), Pending: pending}
}

// share is part / whole as a Figure of n = whole.
func (r Rules) share(whole, part int64) Figure {
	if whole <= 0 || part < 0 || part > whole {
		return Figure{N: whole}
	}
	return r.figure(float64(part)/float64(whole), whole)
}
