// Package rollup describes what the dashboards ask of the rollup tables and turns the sums
// they return into metrics. It is pure: parsing a query, choosing the table and the exact
// window it reads, and building figures from counts. internal/store runs the SQL.
//
// Which table answers a query:
//
//	no filter but moment/channel, grouped by moment/channel: overview_1s for 1m, overview_10s for
//	                                                         5m (and 1m with compare=last_week),
//	                                                         overview_30s for 15m, overview_2m
//	                                                         for 1h, overview_30m for 24h,
//	                                                         overview_1h for 7d and 30d
//	filtered by touchpoint, and otherwise by moment, channel, detail_1m up to 1h, else
//	region or agent_team only:                              touchpoint_1h
//	any other filter, or grouped by touchpoint, region or    detail_1m up to 1h, else detail_1h
//	agent_team:
//
// The window is exact and reported: it ends at the end of the current step of the chosen
// table (so the step that is filling now is included) and starts one window length earlier.
package rollup

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/truthboard/truthboard/internal/event"
)

// Windows are the rolling windows the API offers, by name.
var Windows = []struct {
	Name   string
	Length time.Duration
}{
	{"1m", time.Minute}, {"5m", 5 * time.Minute}, {"15m", 15 * time.Minute},
	{"1h", time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour},
}

// Week is how far back compare=last_week looks: 168 hours, so the same time of day and day of
// the week in UTC.
const Week = 7 * 24 * time.Hour

// Dimensions a query can group by, in the order they appear in a row. region and agent_team are
// the level below a touchpoint in the drill-down: its regions, or its teams, compared.
var Dimensions = []string{"moment", "channel", "touchpoint", "region", "agent_team"}

// Filters narrow a query; each field holds the accepted values (OR), fields combine with AND.
type Filters struct {
	Moment, Channel, Touchpoint, Region, Product, Segment, AgentTeam []string
}

// Field returns the filter of the named parameter.
func (f *Filters) Field(param string) *[]string {
	switch param {
	case "moment":
		return &f.Moment
	case "channel":
		return &f.Channel
	case "touchpoint":
		return &f.Touchpoint
	case "region":
		return &f.Region
	case "product":
		return &f.Product
	case "segment":
		return &f.Segment
	case "agent_team":
		return &f.AgentTeam
	}
	return nil
}

// FilterDimensions are the filters whose values exist only in the data (GET /v1/filter-values
// lists them): moment and channel are fixed vocabularies.
var FilterDimensions = []string{"touchpoint", "region", "product", "segment", "agent_team"}

// FilterValue is one value of a filter dimension and its events in a window.
type FilterValue struct {
	Value  string `json:"value"`
	Events uint64 `json:"events"`
}

// FilterParams are the query parameters that filter, in a stable order.
var FilterParams = []string{"moment", "channel", "touchpoint", "region", "product", "segment", "agent_team"}

// Query is one question to the rollups.
type Query struct {
	Window     time.Duration
	WindowName string
	// By are the grouping dimensions, a subset of Dimensions in their order; empty: totals only.
	By      []string
	Filters Filters
	// Compare adds a second period and the deltas against it: the same window one period
	// earlier (compare=previous), or one week earlier with LastWeek.
	Compare bool
	// LastWeek, with Compare, compares with the same window one week earlier
	// (compare=last_week): the same hours of the same day of the week.
	LastWeek bool
	// Step, when above 0, splits the window into buckets of this length (a trend series).
	Step time.Duration
	// WithoutWait leaves the wait-time histogram out (wait_p50_ms and wait_p90_ms have no
	// value): merging it is most of a query's cost, and views without wait figures skip it.
	WithoutWait bool
	// Recovery adds the recovery rate of the window's negative moments, read from the raw
	// events (a later positive event of the same journey within 7 days recovers one).
	Recovery bool
}

// Comparison names the period a query compares with, as the compare parameter does: previous,
// last_week, or "" without Compare.
func (q Query) Comparison() string {
	switch {
	case !q.Compare:
		return ""
	case q.LastWeek:
		return "last_week"
	}
	return "previous"
}

// ParamError is a bad query parameter; the API answers it with 400.
type ParamError struct {
	Param   string
	Message string
}

func (e *ParamError) Error() string {
	if e.Param == "" {
		return "parameter \"\": " + e.Message // a query string such as ?=x
	}
	return fmt.Sprintf("parameter %s: %s", e.Param, e.Message)
}

// Limits of filter values: few enough to keep the SQL small, long enough for any real value.
const (
	MaxFilterValues = 50
	// MaxFilterLen is the length of the longest filter value, in characters: the longest
	// touchpoint an event may have (region, product, segment and agent_team are shorter).
	MaxFilterLen = event.MaxIDLen
)

// onceParams are the parameters that take one value: a second one is refused rather than
// silently ignored.
var onceParams = []string{"window", "compare", "series", "recovery"}

// ParseQuery reads window, by, compare and the filters from URL parameters. Unknown parameters
// are refused so a typo does not silently show unfiltered data; the first one in name order is
// named, so the same query always gets the same answer.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{}
	params := make([]string, 0, len(v))
	for p := range v {
		params = append(params, p)
	}
	sort.Strings(params)
	for _, p := range params {
		switch {
		case p != "by" && !slices.Contains(onceParams, p) && !slices.Contains(FilterParams, p):
			return q, &ParamError{p, "unknown parameter; use window, by, compare, series, recovery, format, or a filter: " + strings.Join(FilterParams, ", ")}
		case len(v[p]) > 1 && slices.Contains(onceParams, p):
			return q, &ParamError{p, fmt.Sprintf("given %d times; give it once", len(v[p]))}
		}
	}
	name := v.Get("window")
	if name == "" {
		name = "5m"
	}
	for _, w := range Windows {
		if w.Name == name {
			q.Window, q.WindowName = w.Length, w.Name
		}
	}
	if q.Window == 0 {
		return q, &ParamError{"window", fmt.Sprintf("%q is not a window; use one of %s", name, windowNames())}
	}
	for _, list := range v["by"] {
		for _, d := range strings.Split(list, ",") {
			d = strings.TrimSpace(d)
			if d == "" {
				continue
			}
			if !slices.Contains(Dimensions, d) {
				return q, &ParamError{"by", fmt.Sprintf("%q is not a dimension; use any of %s, comma-separated", d, strings.Join(Dimensions, ", "))}
			}
			if !slices.Contains(q.By, d) {
				q.By = append(q.By, d)
			}
		}
	}
	sort.Slice(q.By, func(i, j int) bool { return slices.Index(Dimensions, q.By[i]) < slices.Index(Dimensions, q.By[j]) })
	switch c := v.Get("compare"); c {
	case "", "none":
	case "previous":
		q.Compare = true
	case "last_week":
		q.Compare, q.LastWeek = true, true
	default:
		return q, &ParamError{"compare", fmt.Sprintf("%q is not a comparison; use compare=previous (the window just before), compare=last_week (the same window a week earlier), or leave it out", c)}
	}
	for _, p := range FilterParams {
		vals, err := filterValues(p, v[p])
		if err != nil {
			return q, err
		}
		*q.Filters.Field(p) = vals
	}
	switch rc := v.Get("recovery"); rc {
	case "", "false":
	case "true":
		q.Recovery = true
	default:
		return q, &ParamError{"recovery", fmt.Sprintf("%q: use recovery=true to add the recovery rate, or leave it out", rc)}
	}
	switch sr := v.Get("series"); sr {
	case "", "false":
	case "true":
		_, res := q.table()
		q.Step = TrendStep(q.Window, res)
	default:
		return q, &ParamError{"series", fmt.Sprintf("%q: use series=true for a trend line per row, or leave it out", sr)}
	}
	return q, nil
}

func windowNames() string {
	names := make([]string, len(Windows))
	for i, w := range Windows {
		names[i] = w.Name
	}
	return strings.Join(names, ", ")
}

// filterValues splits and checks the values of one filter; moment and channel must be known
// values, the others are free text bound as query parameters, never spliced into SQL. Every
// value taken is valid UTF-8 without NUL, trimmed, without commas, of 1 to MaxFilterLen
// characters, and given once.
func filterValues(param string, raw []string) ([]string, error) {
	var vals []string
	for _, list := range raw {
		for _, s := range strings.Split(list, ",") {
			if s = strings.TrimSpace(s); s == "" || slices.Contains(vals, s) {
				continue
			}
			if msg := filterValueProblem(s); msg != "" {
				return nil, &ParamError{param, msg}
			}
			switch param {
			case "moment":
				if !slices.Contains(event.Moments, s) {
					return nil, &ParamError{param, fmt.Sprintf("%q is not a moment; use %s", s, strings.Join(event.Moments, ", "))}
				}
			case "channel":
				if !slices.Contains(event.Channels, s) {
					return nil, &ParamError{param, fmt.Sprintf("%q is not a channel; use %s", s, strings.Join(event.Channels, ", "))}
				}
			}
			if len(vals) == MaxFilterValues {
				return nil, &ParamError{param, fmt.Sprintf("at most %d values are allowed per filter", MaxFilterValues)}
			}
			vals = append(vals, s)
		}
	}
	return vals, nil
}

// filterValueProblem says what is wrong with a filter value, or "".
func filterValueProblem(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "a value is not valid UTF-8 (percent-encode the UTF-8 bytes of the text)"
	case strings.IndexByte(s, 0) >= 0:
		return "a value contains the NUL character"
	}
	if n := utf8.RuneCountInString(s); n > MaxFilterLen {
		return fmt.Sprintf("a value is longer than %d characters (got %d)", MaxFilterLen, n)
	}
	return ""
}

// Detailed reports whether the query needs the detail tables: a filter beyond moment and
// channel, or a grouping by touchpoint, region or agent_team.
func (q Query) Detailed() bool {
	f := q.Filters
	return len(f.Touchpoint)+len(f.Region)+len(f.Product)+len(f.Segment)+len(f.AgentTeam) > 0 ||
		slices.ContainsFunc(q.By, func(d string) bool { return d != "moment" && d != "channel" })
}

// Plan is where and over which exact interval a query reads.
type Plan struct {
	Table string
	// Resolution is the table's step.
	Resolution time.Duration
	// From and To bound the window: From <= t < To. PrevFrom and PrevTo bound the period it is
	// compared with: the window just before (PrevTo = From), or with LastWeek the window a week
	// earlier, which leaves a gap before From for windows under 7d and overlaps the window for
	// 30d. A zero PrevTo means From (plans made by hand before PrevTo existed).
	From, To, PrevFrom, PrevTo time.Time
	// Now is when the plan was made: the current period has counted events from From to Now
	// only, and the trend's last bucket is still filling.
	Now time.Time
}

// Plan chooses the table and the exact window for a query asked at now.
func (q Query) Plan(now time.Time) Plan {
	var p Plan
	p.Table, p.Resolution = q.table()
	p.To = now.UTC().Truncate(p.Resolution).Add(p.Resolution)
	p.From = p.To.Add(-q.Window)
	p.PrevFrom, p.PrevTo = p.From.Add(-q.Window), p.From
	if q.LastWeek {
		p.PrevFrom, p.PrevTo = p.From.Add(-Week), p.To.Add(-Week)
	}
	p.Now = now.UTC()
	return p
}

// ComparedTo is where the comparison period ends: PrevTo, or From when PrevTo is not set.
func (p Plan) ComparedTo() time.Time {
	if p.PrevTo.IsZero() {
		return p.From
	}
	return p.PrevTo
}

// table chooses the rollup table that answers the query, and its resolution: the coarsest
// overview whose step is still the trend's step or finer (for 1h, whose trend steps by 2
// minutes: 30 points), so that a tick reads about the same one or two thousand rows whatever
// the window (measured in docs/benchmarks.md, Metrics). A comparison
// with last week reads a week back, further than the one-second table keeps
// (store.Overview1sRetention): the 1m window then reads the 10-second table.
func (q Query) table() (string, time.Duration) {
	switch detailed := q.Detailed(); {
	case !detailed && q.Window <= time.Minute && !q.LastWeek:
		return "overview_1s", time.Second
	case !detailed && q.Window <= 5*time.Minute:
		return "overview_10s", 10 * time.Second
	case !detailed && q.Window <= 15*time.Minute:
		return "overview_30s", 30 * time.Second
	case !detailed && q.Window <= time.Hour:
		return "overview_2m", 2 * time.Minute
	case !detailed && q.Window <= 24*time.Hour:
		return "overview_30m", 30 * time.Minute
	case !detailed:
		return "overview_1h", time.Hour
	case q.Window <= time.Hour:
		return "detail_1m", time.Minute
	case q.ofTouchpoints():
		return "touchpoint_1h", time.Hour
	default:
		return "detail_1h", time.Hour
	}
}

// ofTouchpoints reports whether the query is about chosen touchpoints and needs none of the
// dimensions touchpoint_1h leaves out (product, segment): that table, sorted by touchpoint
// first, reads only their rows, where detail_1h reads every row of the window.
func (q Query) ofTouchpoints() bool {
	f := q.Filters
	return len(f.Touchpoint) > 0 && len(f.Product)+len(f.Segment) == 0
}

// TrendStep is the bucket length of a trend line for a window: about 30 to 60 points.
func TrendStep(window time.Duration, resolution time.Duration) time.Duration {
	var step time.Duration
	switch {
	case window <= time.Minute:
		step = 2 * time.Second
	case window <= 5*time.Minute:
		step = 10 * time.Second
	case window <= 15*time.Minute:
		step = 30 * time.Second
	case window <= time.Hour:
		step = time.Minute
	case window <= 24*time.Hour:
		step = 30 * time.Minute
	case window <= 7*24*time.Hour:
		step = 4 * time.Hour
	default:
		step = 24 * time.Hour
	}
	return max(step, resolution)
}
