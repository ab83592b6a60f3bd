package alert

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// annotate writes the summary and description of the alert s of rule r in cell k, for its
// current state and observation. The summary is one sentence a person acts on, e.g.
//
//	CSAT for service › voice dropped to 61% (n=240) from 82% (n=3,100) in the trailing 3 h, p<0.001
func annotate(r *Rule, k Key, s *series, noData time.Duration) map[string]string {
	return map[string]string{"summary": summary(r, k, s, noData), "description": description(r)}
}

func summary(r *Rule, k Key, s *series, noData time.Duration) string {
	o := &s.obs
	subject := r.Metric.title() + " for " + where(r, k)
	if s.state == Resolved && !s.noDataSince.IsZero() {
		return fmt.Sprintf("%s: too few answers to judge for %s (n=%s, %s needed); resolved without a verdict",
			subject, shortDuration(noData), formatN(o.N), formatN(r.MinN))
	}
	var b strings.Builder
	b.WriteString(subject)
	if r.Kind == Target {
		v := formatValue(r.Metric, o.Value)
		side := "below"
		if !r.Metric.HigherIsBetter() {
			side = "above"
		}
		switch s.state {
		case Resolved:
			fmt.Fprintf(&b, " is back at %s%s, within the target of %s", v, nPart(r.Metric, o.N), formatValue(r.Metric, r.Target))
		case Inactive:
			fmt.Fprintf(&b, " is %s%s: %s the target of %s for less than %s", v, nPart(r.Metric, o.N), side, formatValue(r.Metric, r.Target), shortDuration(r.For))
		default:
			fmt.Fprintf(&b, " is %s in the last %s (%s95%% interval %s–%s), %s the target of %s", v, windowPhrase(r.Window),
				nPrefix(r.Metric, o.N), formatValue(r.Metric, o.Low), formatValue(r.Metric, o.High), side, formatValue(r.Metric, r.Target))
		}
	} else {
		verb := "dropped"
		if !r.Metric.HigherIsBetter() {
			verb = "rose"
		}
		cur, base := formatValue(r.Metric, o.Value)+nPart(r.Metric, o.N), formatValue(r.Metric, o.Baseline)+nPart(r.Metric, o.BaselineN)
		if r.Metric == Volume {
			cur += " in " + windowPhrase(r.Window)
		}
		switch s.state {
		case Resolved:
			fmt.Fprintf(&b, " recovered: %s against %s %s, %s", cur, base, baselinePhrase(r), formatP(o.P))
		case Inactive:
			fmt.Fprintf(&b, " %s to %s from %s %s for less than %s", verb, cur, base, baselinePhrase(r), shortDuration(r.For))
		default:
			fmt.Fprintf(&b, " %s to %s from %s %s, %s", verb, cur, base, baselinePhrase(r), formatP(o.P))
		}
	}
	if !s.noDataSince.IsZero() && s.state == Firing {
		fmt.Fprintf(&b, "; too few answers to judge since %s (n=%s)", s.noDataSince.UTC().Format("15:04 UTC"), formatN(o.N))
	}
	return b.String()
}

// nPart is " (n=240)", or nothing for volume, whose value is its n.
func nPart(m Metric, n uint64) string {
	if m == Volume {
		return ""
	}
	return " (n=" + formatN(n) + ")"
}

func nPrefix(m Metric, n uint64) string {
	if m == Volume {
		return ""
	}
	return "n=" + formatN(n) + ", "
}

func description(r *Rule) string {
	way, side := "drop", "below"
	if !r.Metric.HigherIsBetter() {
		way, side = "rise", "above"
	}
	enough := fmt.Sprintf("with n ≥ %s", formatN(r.MinN))
	if r.Metric == Volume && r.Kind == Change {
		enough = fmt.Sprintf("with at least %s events expected", formatN(r.MinN))
	}
	if r.Kind == Target {
		if r.Metric == Volume {
			enough = "whatever the count"
		}
		return fmt.Sprintf("Judges %s over the last %s on its 95%% %s. Fires when the whole interval is %s the target of %s, %s, for %s; resolves when %s is back within the target for %s.",
			r.Metric.title(), windowPhrase(r.Window), intervalName(r.Metric), side, formatValue(r.Metric, r.Target), enough,
			shortDuration(r.For), r.Metric.title(), shortDuration(r.KeepFiringFor))
	}
	baseline := fmt.Sprintf("the %d h before it", r.BaselineHours)
	if r.Baseline == LastWeek {
		baseline = "the same window a week earlier"
	}
	return fmt.Sprintf("Compares %s over the last %s with %s by %s, widened as much as the baseline varies beyond chance. Fires when p < %s for a %s of at least %s, %s and a baseline n ≥ %s, for %s; resolves when p ≥ %s or the %s is under %s, for %s.",
		r.Metric.title(), windowPhrase(r.Window), baseline, testName(r.Metric), strconv.FormatFloat(r.Alpha, 'g', -1, 64),
		way, formatChange(r.Metric, r.MinChange), enough, formatN(r.MinBaselineN), shortDuration(r.For),
		strconv.FormatFloat(r.RecoveryP, 'g', -1, 64), way, formatChange(r.Metric, r.MinChange/2), shortDuration(r.KeepFiringFor))
}

func testName(m Metric) string {
	switch m {
	case NPS:
		return "a z test of the NPS (the more cautious of Welch's and the pooled variance)"
	case CES:
		return "a z test of the mean CES (with the largest variance its mean allows)"
	case WaitP90:
		return "a two-proportion test of the share of waits above the baseline's p90"
	case Volume:
		return "a conditional binomial test of the event rates"
	}
	return "a two-proportion z test (continuity-corrected; Fisher's exact test at small counts)"
}

func intervalName(m Metric) string {
	switch m {
	case NPS, CES:
		return "normal interval"
	case WaitP90:
		return "order-statistic interval"
	case Volume:
		return "Poisson score interval"
	}
	return "Wilson interval"
}

// where is "service › voice", with the rule's filters: "service › voice (region north)".
func where(r *Rule, k Key) string {
	s := k.Moment + " › " + k.Channel
	var fs []string
	for _, name := range FilterNames {
		if v := r.Filters[name]; v != "" {
			fs = append(fs, strings.ReplaceAll(name, "_", " ")+" "+v)
		}
	}
	if len(fs) > 0 {
		s += " (" + strings.Join(fs, ", ") + ")"
	}
	return s
}

func baselinePhrase(r *Rule) string {
	if r.Baseline == LastWeek {
		return "the same time last week"
	}
	return fmt.Sprintf("in the trailing %d h", r.BaselineHours)
}

// windowPhrase is a window as a sentence says it: "15 min", "1 h".
func windowPhrase(w time.Duration) string {
	if w < time.Hour {
		return fmt.Sprintf("%d min", int(w/time.Minute))
	}
	return fmt.Sprintf("%d h", int(w/time.Hour))
}

// shortDuration is "2m", "90s", "1h" rather than Go's "2m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatValue writes a figure in its unit: "61%", "+12", "4.20", "3.5 min", "1,200 events".
func formatValue(m Metric, v float64) string {
	switch m {
	case CSAT, NegativeRate, Abandonment:
		pct := v * 100
		if math.Abs(pct) < 10 && pct != math.Trunc(pct) {
			return strconv.FormatFloat(pct, 'f', 1, 64) + "%"
		}
		return strconv.FormatFloat(pct, 'f', 0, 64) + "%"
	case NPS:
		return fmt.Sprintf("%+.0f", v)
	case CES:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case WaitP90:
		return formatMS(v)
	case Volume:
		return formatN(uint64(math.Round(max(0, v)))) + " events"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// formatChange writes a minimum change: "5 points", "10 points", "0.3", "50%".
func formatChange(m Metric, v float64) string {
	switch {
	case m.share():
		return strconv.FormatFloat(v*100, 'g', 3, 64) + " points"
	case m == NPS:
		return strconv.FormatFloat(v, 'g', 3, 64) + " points"
	case m.relative():
		return strconv.FormatFloat(v*100, 'g', 3, 64) + "%"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func formatMS(ms float64) string {
	switch {
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	case ms < 60_000:
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + " s"
	case ms < 3_600_000:
		return strconv.FormatFloat(ms/60_000, 'f', 1, 64) + " min"
	}
	return strconv.FormatFloat(ms/3_600_000, 'f', 1, 64) + " h"
}

// formatN writes a count with thousands separators: 3,100.
func formatN(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatP writes a p-value the way reports do: p<0.0001, p<0.001, p=0.012.
func formatP(p float64) string {
	switch {
	case p < 0.0001:
		return "p<0.0001"
	case p < 0.001:
		return "p<0.001"
	}
	return "p=" + strconv.FormatFloat(p, 'g', 2, 64)
}
