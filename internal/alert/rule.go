package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
)

// Metric is a figure a rule watches.
type Metric string

// The metrics, with the unit of their values, targets and minimum changes.
const (
	CSAT         Metric = "csat"          // top-2-box share, 0–1
	NPS          Metric = "nps"           // NPS points, −100–100
	CES          Metric = "ces"           // mean CES, 1–7 (7 easiest)
	NegativeRate Metric = "negative_rate" // share of events that were negative moments, 0–1
	Abandonment  Metric = "abandonment"   // share of events with an outcome that were abandoned, 0–1
	WaitP90      Metric = "wait_p90"      // 90th percentile of wait_ms, in ms
	Volume       Metric = "volume"        // events in the window
)

// Metrics lists every metric, in the order the defaults and the documentation use.
var Metrics = []Metric{CSAT, NPS, CES, NegativeRate, Abandonment, WaitP90, Volume}

// HigherIsBetter says which way a metric is good: a drop of CSAT, NPS, CES or volume is bad, a
// rise of the negative rate, abandonment or wait p90 is bad. Rules only ever watch the bad way.
func (m Metric) HigherIsBetter() bool {
	switch m {
	case NegativeRate, Abandonment, WaitP90:
		return false
	}
	return true
}

// share reports whether the metric is a proportion (tested with TwoProportions and Wilson).
func (m Metric) share() bool { return m == CSAT || m == NegativeRate || m == Abandonment }

// relative reports whether a change of the metric is measured as a ratio (wait p90, volume)
// rather than a difference.
func (m Metric) relative() bool { return m == WaitP90 || m == Volume }

// title is the metric as a sentence names it.
func (m Metric) title() string {
	switch m {
	case CSAT, NPS, CES:
		return strings.ToUpper(string(m))
	case NegativeRate:
		return "Negative rate"
	case Abandonment:
		return "Abandonment"
	case WaitP90:
		return "Wait p90"
	case Volume:
		return "Volume"
	}
	return string(m)
}

// Kind is what makes a rule fire.
type Kind string

const (
	// Target fires when the figure's whole 95% interval is on the wrong side of Rule.Target.
	Target Kind = "target"
	// Change fires when the figure moved the wrong way against a baseline, significantly and by
	// at least Rule.MinChange.
	Change Kind = "change"
)

// Baseline is what a change rule compares the current window with.
type Baseline string

const (
	// Trailing is the BaselineHours hours just before the current window.
	Trailing Baseline = "trailing"
	// LastWeek is the same window one week (168 h, in UTC) earlier: it has the same time of day
	// and day of week, so opening hours and daily rhythms do not look like changes.
	LastWeek Baseline = "last_week"
)

// Severities a rule may carry, as the severity label.
var Severities = []string{"info", "warning", "critical"}

// FilterNames are the filters a rule may have beyond its moment and channel, in order: each
// narrows it to one value (one touchpoint, region, product, segment or agent team); set ones
// combine with AND, and a rule with any reads the detail rollups. They are also the names of
// the alert's labels for them.
var FilterNames = []string{"touchpoint", "region", "product", "segment", "agent_team"}

// Rule is one alerting rule with every setting given (ParseRule fills in the defaults).
type Rule struct {
	// Name is the alertname label: 1 to 64 letters, digits, '_', '-' or '.', unique among the
	// rules.
	Name   string
	Metric Metric
	Kind   Kind
	// Moment and Channel restrict the rule to one moment and/or channel; empty means every one:
	// the rule is judged separately for every moment × channel in scope that has enough data.
	Moment, Channel string
	// Filters maps names of FilterNames to the one value each must have; nil for none.
	Filters map[string]string
	// Window is the current window, one of rollup.Windows (e.g. 15m).
	Window time.Duration

	// Target (target rules): the figure must be at least it (CSAT, NPS, CES, volume) or at most
	// it (negative rate, abandonment, wait p90), in the metric's unit.
	Target float64

	// Baseline and BaselineHours (change rules): what the window is compared with.
	Baseline      Baseline
	BaselineHours int
	// Alpha (change rules) is the level the test's two-sided p-value must be below to fire.
	Alpha float64
	// MinChange (change rules) is the smallest change worth an alert, in the bad direction:
	// share points as a fraction for CSAT, negative rate and abandonment (0.05 = 5 points), NPS
	// points, CES points, and a ratio for wait p90 (0.5: p90 up 50%) and volume (0.5: down 50%).
	MinChange float64
	// RecoveryP (change rules): a firing alert recovers when p >= RecoveryP or the change is
	// below half MinChange (a band between firing and recovering, so that it does not flap).
	RecoveryP float64

	// MinN is the smallest n of the current window to judge it (for volume: the number of
	// events the baseline's rate expects in the window). MinBaselineN is the same for the
	// baseline of a change rule.
	MinN, MinBaselineN uint64
	// For is how long the condition must hold before a pending alert fires; KeepFiringFor how
	// long the recovery condition must hold before a firing alert resolves.
	For, KeepFiringFor time.Duration
	// Severity is the severity label: info, warning or critical.
	Severity string
}

// Defaults, and why (see also the package documentation).
const (
	// DefaultAlpha is 0.00001: the default rules run about 330 tests at every evaluation (6
	// metrics × 5 moments × 11 channels) on a window that turns over about 4 times an hour, and
	// the answers of one customer journey are not independent (repeat contacts), so the tests'
	// tails are fatter than nominal. 0.0001 (0.05/330, Bonferroni per window) raised false alarms
	// in steady demo traffic, in thin cells at night where the minimum change does not protect
	// and the baseline's dispersion is near 1; 0.00001 raised none and fires on the demo's
	// incidents as fast: `truthboard-tools alert-bench` measures both (docs/benchmarks.md,
	// "Alerts: false alarms and time to fire").
	DefaultAlpha = 1e-5
	// DefaultRecoveryP is the p-value above which a firing alert counts as recovered.
	DefaultRecoveryP = 0.05
	// DefaultMinN is the least n in the current window: below 30 answers a share moves by 3
	// points or more with each answer.
	DefaultMinN = 30
	// DefaultMinBaselineN is the least n of a baseline.
	DefaultMinBaselineN = 100
	// DefaultVolumeMinN is the least number of events a volume rule's baseline must expect in
	// the window: a halving of fewer is hard to tell from chance.
	DefaultVolumeMinN = 100
	// DefaultFor and DefaultKeepFiringFor: a condition must hold 2 minutes to fire, and the
	// recovery 2 minutes to resolve.
	DefaultFor           = 2 * time.Minute
	DefaultKeepFiringFor = 2 * time.Minute
	// DefaultWindow is the current window of a rule (DefaultVolumeWindow for volume).
	DefaultWindow       = 15 * time.Minute
	DefaultVolumeWindow = time.Hour
	// DefaultBaselineHours is the length of a trailing baseline.
	DefaultBaselineHours = 3
	// MaxBaselineHours bounds a trailing baseline; longer comparisons belong to last_week.
	MaxBaselineHours = 24
	// DefaultSeverity is the severity of a rule that names none.
	DefaultSeverity = "warning"
	// MinWaitBaseMS is the smallest baseline p90 a wait rise is measured against: from 0 ms
	// (an IVR answers at once) any wait would be an infinite rise, and a few seconds more of
	// a wait of a few seconds is no incident.
	MinWaitBaseMS = 10_000
)

// DefaultMinChange is the smallest change of each metric a change rule fires on by default.
var DefaultMinChange = map[Metric]float64{
	CSAT:         0.05, // 5 share points
	NPS:          10,   // NPS points
	CES:          0.3,  // on the 1–7 scale
	NegativeRate: 0.05,
	Abandonment:  0.05,
	WaitP90:      0.5, // p90 up by half
	Volume:       0.5, // volume down by half
}

// defaultNames are the alertnames of the default rules.
var defaultNames = map[Metric]string{
	CSAT: "CSATDrop", NPS: "NPSDrop", CES: "CESDrop", NegativeRate: "NegativeRateRise",
	Abandonment: "AbandonmentRise", WaitP90: "WaitP90Rise", Volume: "VolumeDrop",
}

// DefaultRules are the rules that run without any configuration: for every moment × channel with
// enough data, a significant drop of CSAT, NPS, CES and a significant rise of the negative rate,
// abandonment and wait p90 over 15 minutes against the 3 hours before; and a halving of the
// volume over an hour against the same hour last week (a trailing baseline would fire every
// evening when a store or contact centre closes; last week's hour has the same opening hours).
func DefaultRules() []Rule {
	rules := make([]Rule, 0, len(Metrics))
	for _, m := range Metrics {
		rules = append(rules, defaultRule(defaultNames[m], m, Change))
	}
	return rules
}

// defaultRule is a rule with every default of its metric and kind.
func defaultRule(name string, m Metric, k Kind) Rule {
	r := Rule{
		Name: name, Metric: m, Kind: k, Window: DefaultWindow, MinN: DefaultMinN,
		For: DefaultFor, KeepFiringFor: DefaultKeepFiringFor, Severity: DefaultSeverity,
	}
	if m == Volume {
		r.Window = DefaultVolumeWindow
	}
	if k == Change {
		r.Baseline, r.BaselineHours = Trailing, DefaultBaselineHours
		r.Alpha, r.RecoveryP, r.MinChange = DefaultAlpha, DefaultRecoveryP, DefaultMinChange[m]
		r.MinBaselineN = DefaultMinBaselineN
		if m == Volume {
			r.Baseline, r.BaselineHours, r.MinN = LastWeek, 0, DefaultVolumeMinN
		}
	}
	return r
}

// RuleError is a rule that cannot be used, with where and what to fix. Index is the rule's
// position in the file's "rules" array (0-based), or −1 for a single rule (ParseRule).
type RuleError struct {
	Index   int
	Name    string // the rule's name, when it has one
	Field   string // the JSON field at fault, "" for the rule as a whole
	Message string
}

func (e *RuleError) Error() string {
	var b strings.Builder
	if e.Index >= 0 {
		fmt.Fprintf(&b, "rules[%d]", e.Index)
		if e.Name != "" {
			fmt.Fprintf(&b, " %q", e.Name)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q: ", e.Field)
	}
	b.WriteString(e.Message)
	return b.String()
}

// ruleJSON is a rule as written in a file or sent to the API. Pointers tell a field left out
// (its default) from a zero given on purpose ("for": "0s" fires at once).
type ruleJSON struct {
	Name          string            `json:"name,omitempty"`
	Metric        string            `json:"metric,omitempty"`
	Kind          string            `json:"kind,omitempty"`
	Moment        string            `json:"moment,omitempty"`
	Channel       string            `json:"channel,omitempty"`
	Filters       map[string]string `json:"filters,omitempty"`
	Window        *string           `json:"window,omitempty"`
	Target        *float64          `json:"target,omitempty"`
	Baseline      *string           `json:"baseline,omitempty"`
	BaselineHours *int              `json:"baseline_hours,omitempty"`
	Alpha         *float64          `json:"alpha,omitempty"`
	MinChange     *float64          `json:"min_change,omitempty"`
	RecoveryP     *float64          `json:"recovery_p,omitempty"`
	MinN          *uint64           `json:"min_n,omitempty"`
	MinBaselineN  *uint64           `json:"min_baseline_n,omitempty"`
	For           *string           `json:"for,omitempty"`
	KeepFiringFor *string           `json:"keep_firing_for,omitempty"`
	Severity      *string           `json:"severity,omitempty"`
}

// changeOnly are the fields that only change rules take.
var changeOnly = []string{"baseline", "baseline_hours", "alpha", "min_change", "recovery_p", "min_baseline_n"}

// ruleFields are the fields of a rule, for the message about an unknown one.
const ruleFields = "name, metric, kind, moment, channel, filters, window, target, baseline, baseline_hours, alpha, min_change, recovery_p, min_n, min_baseline_n, for, keep_firing_for, severity"

// ParseRule reads one rule in the JSON form of the rules file (docs/alert-rules.md), fills in
// the defaults of its metric and kind, and validates it. Errors are *RuleError with Index −1.
func ParseRule(data []byte) (Rule, error) {
	return parseRule(data, -1)
}

func parseRule(data []byte, index int) (Rule, error) {
	var j ruleJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Rule{}, decodeError(err, index, nameOf(data))
	}
	if dec.More() {
		return Rule{}, &RuleError{Index: index, Message: "more than one JSON value; send one rule object"}
	}
	fail := func(field, format string, args ...any) (Rule, error) {
		return Rule{}, &RuleError{Index: index, Name: j.Name, Field: field, Message: fmt.Sprintf(format, args...)}
	}
	// The metric and kind choose the defaults, so they are checked first.
	m := Metric(j.Metric)
	if !slices.Contains(Metrics, m) {
		if j.Metric == "" {
			return fail("metric", "missing; use one of %s", metricNames())
		}
		return fail("metric", "%q is not a metric; use one of %s", j.Metric, metricNames())
	}
	k := Kind(j.Kind)
	switch {
	case j.Kind == "":
		return fail("kind", `missing; use "target" (the figure against a fixed value) or "change" (against a baseline)`)
	case k != Target && k != Change:
		return fail("kind", `%q is not a kind; use "target" or "change"`, j.Kind)
	}
	r := defaultRule(j.Name, m, k)
	r.Moment, r.Channel = j.Moment, j.Channel
	if len(j.Filters) > 0 {
		r.Filters = j.Filters
	}
	if j.Window != nil {
		w, ok := windowLength(*j.Window)
		if !ok {
			return fail("window", "%q is not a window; use one of %s", *j.Window, windowNames())
		}
		r.Window = w
	}
	if k == Target {
		given := map[string]bool{"baseline": j.Baseline != nil, "baseline_hours": j.BaselineHours != nil,
			"alpha": j.Alpha != nil, "min_change": j.MinChange != nil, "recovery_p": j.RecoveryP != nil,
			"min_baseline_n": j.MinBaselineN != nil}
		for _, f := range changeOnly {
			if given[f] {
				return fail(f, `applies to change rules only; remove it, or set "kind": "change"`)
			}
		}
		if j.Target == nil {
			return fail("target", "missing; a target rule needs the value to hold, e.g. %s", targetExample(m))
		}
		r.Target = *j.Target
	} else {
		if j.Target != nil {
			return fail("target", `applies to target rules only; remove it, or set "kind": "target"`)
		}
		if j.Baseline != nil {
			switch r.Baseline = Baseline(*j.Baseline); r.Baseline {
			case LastWeek:
				r.BaselineHours = 0
			case Trailing:
				r.BaselineHours = DefaultBaselineHours
			default:
				return fail("baseline", `%q is not a baseline; use "trailing" (the hours before the window) or "last_week" (the same window a week earlier)`, *j.Baseline)
			}
		}
		if j.BaselineHours != nil {
			if r.Baseline != Trailing {
				return fail("baseline_hours", `applies to the "trailing" baseline only; remove it`)
			}
			r.BaselineHours = *j.BaselineHours
		}
		setFloat(&r.Alpha, j.Alpha)
		setFloat(&r.MinChange, j.MinChange)
		setFloat(&r.RecoveryP, j.RecoveryP)
		if j.MinBaselineN != nil {
			r.MinBaselineN = *j.MinBaselineN
		}
	}
	if j.MinN != nil {
		r.MinN = *j.MinN
	}
	for _, d := range []struct {
		field string
		src   *string
		dst   *time.Duration
	}{{"for", j.For, &r.For}, {"keep_firing_for", j.KeepFiringFor, &r.KeepFiringFor}} {
		if d.src == nil {
			continue
		}
		v, err := time.ParseDuration(*d.src)
		if err != nil {
			return fail(d.field, `%q is not a duration; write e.g. "2m", "90s" or "0s"`, *d.src)
		}
		*d.dst = v
	}
	if j.Severity != nil {
		r.Severity = *j.Severity
	}
	if err := r.validate(index); err != nil {
		return Rule{}, err
	}
	return r, nil
}

func setFloat(dst, src *float64) {
	if src != nil {
		*dst = *src
	}
}

// nameOf digs the name out of a rule that did not decode, for its error message.
func nameOf(data []byte) string {
	var n struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(data, &n)
	return n.Name
}

// decodeError turns a JSON decoding error into a RuleError that names the field.
func decodeError(err error, index int, name string) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	e := &RuleError{Index: index, Name: name}
	switch {
	case errors.As(err, &typeErr):
		e.Field = typeErr.Field
		e.Message = fmt.Sprintf("want %s, got a JSON %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		if typeErr.Field == "" {
			e.Message = fmt.Sprintf("a rule is a JSON object, not a JSON %s", typeErr.Value)
		}
	case errors.As(err, &syntaxErr):
		e.Message = "not valid JSON: " + err.Error()
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		e.Field = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		e.Message = "unknown field; a rule has " + ruleFields
	default:
		e.Message = "not valid JSON: " + err.Error()
	}
	return e
}

// jsonKind names a Go kind the way a JSON author thinks of it.
func jsonKind(kind string) string {
	switch {
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case strings.HasPrefix(kind, "uint"):
		return "a whole number of 0 or more"
	case strings.HasPrefix(kind, "int"):
		return "a whole number"
	case kind == "string":
		return "a string"
	case kind == "map":
		return `an object of strings, e.g. {"region": "north"}`
	}
	return kind
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Validate checks a rule with every field set (as ParseRule returns it, or built in Go).
func (r Rule) Validate() error { return r.validate(-1) }

func (r Rule) validate(index int) error {
	fail := func(field, format string, args ...any) error {
		return &RuleError{Index: index, Name: r.Name, Field: field, Message: fmt.Sprintf(format, args...)}
	}
	if !nameRE.MatchString(r.Name) {
		if r.Name == "" {
			return fail("name", "missing; give the rule a name, e.g. \"VoiceCSATBelowTarget\": it is the alertname label")
		}
		return fail("name", "%q: use 1 to 64 letters, digits, '_', '-' or '.'", r.Name)
	}
	if !slices.Contains(Metrics, r.Metric) {
		return fail("metric", "%q is not a metric; use one of %s", r.Metric, metricNames())
	}
	if r.Moment != "" && !slices.Contains(event.Moments, r.Moment) {
		return fail("moment", "%q is not a moment; use one of %s, or leave it out for every moment", r.Moment, strings.Join(event.Moments, ", "))
	}
	if r.Channel != "" && !slices.Contains(event.Channels, r.Channel) {
		return fail("channel", "%q is not a channel; use one of %s, or leave it out for every channel", r.Channel, strings.Join(event.Channels, ", "))
	}
	for name, v := range r.Filters {
		if !slices.Contains(FilterNames, name) {
			return fail("filters", "%q is not a filter; use %s", name, strings.Join(FilterNames, ", "))
		}
		if msg := filterProblem(v); msg != "" {
			return fail("filters", "%s: %s", name, msg)
		}
	}
	if _, ok := windowName(r.Window); !ok {
		return fail("window", "%s is not a window; use one of %s", r.Window, windowNames())
	}
	switch r.Kind {
	case Target:
		if msg := targetProblem(r.Metric, r.Target); msg != "" {
			return fail("target", "%s", msg)
		}
	case Change:
		switch r.Baseline {
		case Trailing:
			if r.BaselineHours < 1 || r.BaselineHours > MaxBaselineHours {
				return fail("baseline_hours", "%d is out of range; use 1 to %d hours (or the last_week baseline)", r.BaselineHours, MaxBaselineHours)
			}
		case LastWeek:
		default:
			return fail("baseline", `%q is not a baseline; use "trailing" (the hours before the window) or "last_week" (the same window a week earlier)`, r.Baseline)
		}
		if !(r.Alpha > 0 && r.Alpha <= 0.05) {
			return fail("alpha", "%v is out of range; use a level above 0 and at most 0.05, e.g. 0.00001 (about 330 cells are tested at once)", r.Alpha)
		}
		if !(r.RecoveryP > r.Alpha && r.RecoveryP <= 0.5) {
			return fail("recovery_p", "%v is out of range; use a p-value above alpha (%v) and at most 0.5, e.g. 0.05", r.RecoveryP, r.Alpha)
		}
		if msg := minChangeProblem(r.Metric, r.MinChange); msg != "" {
			return fail("min_change", "%s", msg)
		}
		if r.MinBaselineN < metric.DefaultMinN {
			return fail("min_baseline_n", "%d is too small; use at least %d", r.MinBaselineN, metric.DefaultMinN)
		}
	default:
		return fail("kind", `%q is not a kind; use "target" or "change"`, r.Kind)
	}
	if r.MinN < metric.DefaultMinN && !(r.Metric == Volume && r.Kind == Target) {
		return fail("min_n", "%d is too small; use at least %d (below it a figure is not shown at all)", r.MinN, metric.DefaultMinN)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"for", r.For}, {"keep_firing_for", r.KeepFiringFor}} {
		if d.v < 0 || d.v > 24*time.Hour {
			return fail(d.field, "%s is out of range; use 0s to 24h", d.v)
		}
	}
	if !slices.Contains(Severities, r.Severity) {
		return fail("severity", "%q is not a severity; use one of %s", r.Severity, strings.Join(Severities, ", "))
	}
	return nil
}

// filterProblem says what is wrong with a filter value, or "".
func filterProblem(s string) string {
	switch {
	case s == "":
		return "the value is empty; give one, or leave the filter out"
	case !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0:
		return "the value is not valid text"
	case strings.TrimSpace(s) != s:
		return fmt.Sprintf("%q has spaces around it; remove them", s)
	case utf8.RuneCountInString(s) > rollup.MaxFilterLen:
		return fmt.Sprintf("longer than %d characters", rollup.MaxFilterLen)
	}
	return ""
}

func targetProblem(m Metric, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "not a number"
	}
	switch m {
	case CSAT, NegativeRate, Abandonment:
		if !(v > 0 && v < 1) {
			return fmt.Sprintf("%v is out of range; a %s target is a share above 0 and below 1, e.g. %s", v, m, targetExample(m))
		}
	case NPS:
		if !(v > -100 && v < 100) {
			return fmt.Sprintf("%v is out of range; an NPS target is above -100 and below 100, e.g. %s", v, targetExample(m))
		}
	case CES:
		if !(v > 1 && v < 7) {
			return fmt.Sprintf("%v is out of range; a CES target is above 1 and below 7, e.g. %s", v, targetExample(m))
		}
	case WaitP90:
		if !(v > 0 && v <= metric.MaxDurationMS) {
			return fmt.Sprintf("%v is out of range; a wait_p90 target is in milliseconds, above 0 and at most %d, e.g. %s", v, metric.MaxDurationMS, targetExample(m))
		}
	case Volume:
		if !(v >= 1) {
			return fmt.Sprintf("%v is out of range; a volume target is a number of events in the window, at least 1, e.g. %s", v, targetExample(m))
		}
	}
	return ""
}

func targetExample(m Metric) string {
	return map[Metric]string{CSAT: "0.8 (80% top-2-box)", NPS: "20", CES: "5", NegativeRate: "0.15 (15%)",
		Abandonment: "0.1 (10%)", WaitP90: "180000 (3 minutes)", Volume: "500"}[m]
}

func minChangeProblem(m Metric, v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "not a number"
	case m.share() && !(v > 0 && v < 1):
		return fmt.Sprintf("%v is out of range; for %s it is in share points as a fraction above 0 and below 1, e.g. 0.05 (5 points)", v, m)
	case m == NPS && !(v > 0 && v < 200):
		return fmt.Sprintf("%v is out of range; for nps it is in NPS points above 0 and below 200, e.g. 10", v)
	case m == CES && !(v > 0 && v < 6):
		return fmt.Sprintf("%v is out of range; for ces it is above 0 and below 6, e.g. 0.3", v)
	case m == WaitP90 && !(v > 0 && v <= 100):
		return fmt.Sprintf("%v is out of range; for wait_p90 it is a relative rise above 0 and at most 100, e.g. 0.5 (p90 up 50%%)", v)
	case m == Volume && !(v > 0 && v < 1):
		return fmt.Sprintf("%v is out of range; for volume it is a relative drop above 0 and below 1, e.g. 0.5 (volume halved)", v)
	}
	return ""
}

func metricNames() string {
	names := make([]string, len(Metrics))
	for i, m := range Metrics {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}

func windowLength(name string) (time.Duration, bool) {
	for _, w := range rollup.Windows {
		if w.Name == name {
			return w.Length, true
		}
	}
	return 0, false
}

func windowName(d time.Duration) (string, bool) {
	for _, w := range rollup.Windows {
		if w.Length == d {
			return w.Name, true
		}
	}
	return "", false
}

func windowNames() string {
	names := make([]string, len(rollup.Windows))
	for i, w := range rollup.Windows {
		names[i] = w.Name
	}
	return strings.Join(names, ", ")
}

// rulesFile is the JSON form of a rules file.
type rulesFile struct {
	// Defaults keeps the default rules beside the file's (true when left out); a rule of the
	// file with the name of a default rule replaces it.
	Defaults *bool             `json:"defaults"`
	Rules    []json.RawMessage `json:"rules"`
}

// ParseRules reads a rules file (docs/alert-rules.md): its rules, with the default rules unless
// it says "defaults": false. Errors name the rule (rules[i]) and the field, and say what to do.
func ParseRules(data []byte) ([]Rule, error) {
	var f rulesFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) {
			line, col := position(data, syntaxErr.Offset)
			return nil, fmt.Errorf("line %d, column %d: not valid JSON: %w", line, col, err)
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return nil, fmt.Errorf("%s at the top level; a rules file has \"defaults\" and \"rules\"", strings.TrimPrefix(err.Error(), "json: "))
		}
		return nil, fmt.Errorf(`not a rules file ({"defaults": true, "rules": [...]}): %w`, err)
	}
	var rules []Rule
	if f.Defaults == nil || *f.Defaults {
		rules = DefaultRules()
	}
	seen := map[string]int{}
	for i, raw := range f.Rules {
		r, err := parseRule(raw, i)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[r.Name]; dup {
			return nil, &RuleError{Index: i, Name: r.Name, Field: "name", Message: fmt.Sprintf("rules[%d] has the same name; names must be unique", j)}
		}
		seen[r.Name] = i
		if d := slices.IndexFunc(rules, func(x Rule) bool { return x.Name == r.Name }); d >= 0 {
			rules[d] = r // replaces the default rule of that name
			continue
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// position is the line and column (1-based) of a byte offset.
func position(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// MarshalJSON writes a rule in the JSON form ParseRule reads, every setting given.
func (r Rule) MarshalJSON() ([]byte, error) {
	w, _ := windowName(r.Window)
	j := ruleJSON{Name: r.Name, Metric: string(r.Metric), Kind: string(r.Kind), Moment: r.Moment, Channel: r.Channel,
		Window: &w, MinN: &r.MinN, Severity: &r.Severity}
	if len(r.Filters) > 0 {
		j.Filters = r.Filters
	}
	forS, keepS := r.For.String(), r.KeepFiringFor.String()
	j.For, j.KeepFiringFor = &forS, &keepS
	if r.Kind == Target {
		j.Target = &r.Target
	} else {
		b := string(r.Baseline)
		j.Baseline, j.Alpha, j.MinChange, j.RecoveryP, j.MinBaselineN = &b, &r.Alpha, &r.MinChange, &r.RecoveryP, &r.MinBaselineN
		if r.Baseline == Trailing {
			j.BaselineHours = &r.BaselineHours
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a rule as ParseRule does, so that a rule can sit inside other JSON.
func (r *Rule) UnmarshalJSON(data []byte) error {
	parsed, err := ParseRule(data)
	if err != nil {
		return err
	}
	*r = parsed
	return nil
}
