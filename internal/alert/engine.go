package alert

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
)

// Key is one moment × channel: the cell a rule is judged in.
type Key struct{ Moment, Channel string }

// Span is a period of one rollup table to read: From <= t < To.
type Span struct {
	Table    string
	From, To time.Time
}

// Query is one read of the rollups that an evaluation needs: the counts per moment × channel of
// the current window and of the baseline, with the filters of the rules that share it. Rules
// with the same window, baseline and filters share one Query, so the default rules need two
// (15 minutes against the trailing 3 hours; an hour against last week), whatever the number of
// screens or cells.
type Query struct {
	// ID names the query in Input.
	ID      string
	Filters rollup.Filters
	// Current is the window, exactly as a screen showing the same window reads it
	// (rollup.Query.Plan): its last step is the one filling now.
	Current Span
	// Baseline is the period compared with, on a table with minute steps; Table is "" when
	// the query's rules are all target rules and need none.
	Baseline Span
	// Part is the length of the baseline's parts (see Data.BaselineParts): the window, up to
	// DispersionPart. 0 without a baseline.
	Part time.Duration
	// BaselineKnown is true when the engine still holds the counts of this very baseline from
	// an earlier evaluation: the reader leaves Data.Baseline and BaselineParts nil, and the
	// engine uses its own. A baseline moves once a minute, so it is read once a minute, not
	// at every evaluation (events that arrive late for it count from the next minute's read).
	BaselineKnown bool
}

// DispersionPart is the longest part a baseline is cut into to see how much a figure varies
// from one window to the next: 15 minutes give a 3-hour baseline 12 parts.
const DispersionPart = 15 * time.Minute

// PartStart is the start of the baseline's first part: Baseline.From cut to a whole multiple of
// Part since the Unix epoch (the steps of a rollup query's trend series).
func (q Query) PartStart() time.Time {
	return q.Baseline.From.Truncate(q.Part)
}

// Data is the answer to a Query: the summed rollup counts per moment × channel of each period.
// A cell without events may be missing.
type Data struct {
	Query    Query
	Current  map[Key]rollup.Counts
	Baseline map[Key]rollup.Counts
	// BaselineParts are the baseline's counts cut into consecutive parts of Query.Part: part i
	// covers [PartStart + i × Part, PartStart + (i+1) × Part) within the baseline. A cell's
	// slice may be shorter than the baseline (its last parts had no events), or missing; the
	// engine then judges without them, as if the figure varied no more than chance explains.
	BaselineParts map[Key][]rollup.Counts
}

// Input is everything one evaluation looks at: the time, the answers to Engine.Queries, and
// what the server observed itself.
type Input struct {
	Now  time.Time
	Data []Data
	// Observed are the conditions of each source of Config.Sources, by its name. A source left
	// out (its read failed) keeps its alerts as they are; a source given with no condition
	// resolves them all.
	Observed map[string][]Condition
}

// Condition is an alert the server observes itself rather than judges from the rollups: a
// screen gone silent (internal/screen). Its source has already waited its own delay, so it
// fires as soon as it is observed, and it resolves at the first evaluation that no longer
// observes it.
type Condition struct {
	// Labels identify it; alertname is set to the source's name.
	Labels map[string]string
	// Annotations: summary and description, as for a rule's alert; since.
	Annotations map[string]string
	// Since is when what it reports began (the alert's ActiveAt); zero: the evaluation's time.
	Since time.Time
}

// State is where an alert stands.
type State string

const (
	// Inactive: the condition does not hold (or held too briefly to fire).
	Inactive State = "inactive"
	// Pending: the condition holds, for less than the rule's For so far.
	Pending State = "pending"
	// Firing: the condition held for For; it stays firing until the recovery condition has
	// held for KeepFiringFor.
	Firing State = "firing"
	// Resolved: a firing alert recovered (only as the end of a Transition).
	Resolved State = "resolved"
)

// Alert is one alert: a rule in one moment × channel, pending or firing (or, in a Transition,
// just resolved or dropped).
type Alert struct {
	// Fingerprint identifies the alert across evaluations and restarts: the FNV-1a hash of its
	// sorted labels, computed as Prometheus and Alertmanager compute theirs.
	Fingerprint string `json:"fingerprint"`
	// Labels: alertname (the rule's name), metric, moment, channel, severity, and the rule's
	// filters (touchpoint, region, product, segment, agent_team) when it has any.
	Labels map[string]string `json:"labels"`
	// Annotations: summary (one sentence in plain words) and description (the test and its
	// thresholds).
	Annotations map[string]string `json:"annotations"`
	State       State             `json:"state"`
	// ActiveAt is when the condition started to hold (the alert went pending); FiredAt when it
	// fired; ResolvedAt when it resolved or dropped (in a Transition). Zero when not yet.
	ActiveAt    time.Time   `json:"active_at"`
	FiredAt     time.Time   `json:"fired_at,omitzero"`
	ResolvedAt  time.Time   `json:"resolved_at,omitzero"`
	Observation Observation `json:"observation"`
	// Silenced is true while a silence matches the alert: it keeps changing state, and
	// delivery skips it. SilencedBy lists the IDs of the matching silences.
	Silenced   bool     `json:"silenced"`
	SilencedBy []string `json:"silenced_by,omitempty"`
	// AcknowledgedBy is who acknowledged the alert, until it resolves.
	AcknowledgedBy string    `json:"acknowledged_by,omitempty"`
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
}

// Transition is one change of an alert: From → To at At, with the alert as it was then (its
// State is To). An acknowledgement is recorded as a Transition with From == To.
type Transition struct {
	At    time.Time `json:"at"`
	From  State     `json:"from"`
	To    State     `json:"to"`
	Alert Alert     `json:"alert"`
}

// Result is the outcome of one evaluation.
type Result struct {
	// Transitions are the changes of this evaluation, in rule and cell order: store them, and
	// deliver those of alerts that are not silenced.
	Transitions []Transition
	// Active are every pending and firing alert after it (see Engine.Active).
	Active []Alert
}

// DefaultNoDataTimeout is how long a firing alert may go without enough data before it
// resolves without a verdict. A channel that falls silent during an incident must not read
// as a recovery, so missing data holds a firing alert; but a cell that stays quiet for good
// (a closed store) must not fire forever.
const DefaultNoDataTimeout = time.Hour

// Config configures an Engine.
type Config struct {
	// Rules are the rules to evaluate, exactly (DefaultRules, or ParseRules of a rules file).
	Rules []Rule
	// Clock tells the time of acknowledgements and silences; nil means time.Now. Evaluations
	// take their time from Input.Now.
	Clock func() time.Time
	// NoDataTimeout: see DefaultNoDataTimeout; 0 means the default.
	NoDataTimeout time.Duration
	// Sources are the alertnames of the conditions the server observes itself (Input.Observed),
	// e.g. "ScreenOffline": no rule may take one of these names.
	Sources []string
}

// Engine evaluates the rules at each tick and keeps the state of every alert. Its methods are
// safe for concurrent use: one loop evaluates, while the web edge reads, acknowledges and
// silences.
type Engine struct {
	clock   func() time.Time
	noData  time.Duration
	sources map[string]bool

	mu     sync.Mutex
	rules  []Rule
	byName map[string]int
	// queryOf[i] is the ID of the query rule i reads (see queryIDs).
	queryOf []string
	// baselines are the baselines last read, by query ID (see Query.BaselineKnown).
	baselines map[string]Data
	series    map[string]*series // by fingerprint
	silences  map[string]Silence // by ID
}

// series is the state of one pending or firing alert.
type series struct {
	rule        string
	key         Key
	fingerprint string
	labels      map[string]string
	annotations map[string]string
	state       State
	activeAt    time.Time
	firedAt     time.Time
	obs         Observation
	// recoveringSince is when the recovery condition started to hold without a break;
	// noDataSince when data became too few, without a break. Zero when not.
	recoveringSince, noDataSince time.Time
	ackBy                        string
	ackAt                        time.Time
}

// NewEngine returns an engine for c.Rules, which must be valid and uniquely named.
func NewEngine(c Config) (*Engine, error) {
	e := &Engine{clock: c.Clock, noData: c.NoDataTimeout, series: map[string]*series{}, silences: map[string]Silence{},
		baselines: map[string]Data{}, sources: map[string]bool{}}
	for _, name := range c.Sources {
		e.sources[name] = true
	}
	if e.clock == nil {
		e.clock = time.Now
	}
	if e.noData <= 0 {
		e.noData = DefaultNoDataTimeout
	}
	if err := e.SetRules(c.Rules); err != nil {
		return nil, err
	}
	return e, nil
}

// SetRules replaces the rules. Alerts of a rule that is gone, or whose labels changed, resolve
// at the next evaluation; the others keep their state.
func (e *Engine) SetRules(rules []Rule) error {
	byName := map[string]int{}
	for i, r := range rules {
		if err := r.validate(i); err != nil {
			return err
		}
		if e.sources[r.Name] {
			return &RuleError{Index: i, Name: r.Name, Field: "name", Message: fmt.Sprintf("%q names the alerts the server raises itself; give the rule another name", r.Name)}
		}
		if j, dup := byName[r.Name]; dup {
			return &RuleError{Index: i, Name: r.Name, Field: "name", Message: fmt.Sprintf("rules[%d] has the same name; names must be unique", j)}
		}
		byName[r.Name] = i
	}
	rules = slices.Clone(rules)
	for i := range rules {
		rules[i].Filters = maps.Clone(rules[i].Filters) // the caller's maps stay the caller's
	}
	queryOf := queryIDs(rules)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules, e.byName, e.queryOf = rules, byName, queryOf
	for id := range e.baselines {
		if !slices.Contains(queryOf, id) {
			delete(e.baselines, id) // no rule reads it any more
		}
	}
	return nil
}

// Rules returns the rules.
func (e *Engine) Rules() []Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.rules)
}

// queryIDs names the read each rule needs. Rules with the same window and filters read the
// same current window; change rules also need the same baseline to share a read, and a target
// rule (which needs no baseline) joins any read of its window and filters. Moment and channel
// only narrow the read of the detail tables; the overview tables are read whole (every cell of
// them is small).
func queryIDs(rules []Rule) []string {
	ids := make([]string, len(rules))
	current := map[string]string{} // window and filters → the first query reading them
	// Change rules first, so that a target rule finds their reads whatever the order.
	for _, kind := range []Kind{Change, Target} {
		for i := range rules {
			r := &rules[i]
			if r.Kind != kind {
				continue
			}
			w, _ := windowName(r.Window)
			key := w
			if len(r.Filters) > 0 {
				key += "|" + r.Moment + "|" + r.Channel
				for _, name := range FilterNames {
					key += "|" + r.Filters[name]
				}
			}
			switch id, ok := current[key]; {
			case kind == Target && ok:
				ids[i] = id
				continue
			case kind == Target:
				ids[i] = key
			case r.Baseline == Trailing:
				ids[i] = fmt.Sprintf("%s|%s%dh", key, r.Baseline, r.BaselineHours)
			default:
				ids[i] = key + "|" + string(r.Baseline)
			}
			if _, ok := current[key]; !ok {
				current[key] = ids[i]
			}
		}
	}
	return ids
}

// queryFilters are the rollup filters of a rule's read.
func queryFilters(r *Rule) rollup.Filters {
	var f rollup.Filters
	if len(r.Filters) == 0 {
		return f
	}
	set := func(name, v string) {
		if v != "" {
			*f.Field(name) = []string{v}
		}
	}
	set("moment", r.Moment)
	set("channel", r.Channel)
	for name, v := range r.Filters {
		set(name, v)
	}
	return f
}

// week is the offset of the last_week baseline: 168 hours, in UTC.
const week = 7 * 24 * time.Hour

// Queries returns the reads an evaluation at now needs, one per distinct window, baseline and
// filters of the rules, in the order of the rules.
func (e *Engine) Queries(now time.Time) []Query {
	e.mu.Lock()
	defer e.mu.Unlock()
	var qs []Query
	seen := map[string]int{}
	for i := range e.rules {
		r := &e.rules[i]
		id := e.queryOf[i]
		j, ok := seen[id]
		if !ok {
			q := Query{ID: id, Filters: queryFilters(r)}
			p := rollup.Query{Window: r.Window, Filters: q.Filters}.Plan(now)
			q.Current = Span{Table: p.Table, From: p.From, To: p.To}
			j, seen[id] = len(qs), len(qs)
			qs = append(qs, q)
		}
		if r.Kind == Change && qs[j].Baseline.Table == "" {
			qs[j].Baseline, qs[j].Part = baselineSpan(r, qs[j]), min(r.Window, DispersionPart)
			known, ok := e.baselines[id]
			qs[j].BaselineKnown = ok && known.Query.Baseline == qs[j].Baseline && known.Query.Part == qs[j].Part
		}
	}
	return qs
}

// baselineSpan is the baseline of change rule r for the current window of q, on the minute
// table (the detail one when the query has filters beyond moment and channel): the
// BaselineHours before the window, or the window a week earlier, both cut at whole minutes
// (which leaves a gap of less than a minute before a window of the one-second table).
func baselineSpan(r *Rule, q Query) Span {
	table := "overview_1m"
	if (rollup.Query{Filters: q.Filters}).Detailed() {
		table = "detail_1m"
	}
	end := q.Current.From.Truncate(time.Minute)
	if r.Baseline == LastWeek {
		from := end.Add(-week)
		return Span{Table: table, From: from, To: from.Add(r.Window)}
	}
	return Span{Table: table, From: end.Add(-time.Duration(r.BaselineHours) * time.Hour), To: end}
}

// Labels returns the labels of rule r's alert for cell k.
func (r *Rule) Labels(k Key) map[string]string {
	l := map[string]string{
		"alertname": r.Name, "metric": string(r.Metric), "moment": k.Moment, "channel": k.Channel,
		"severity": r.Severity,
	}
	for name, v := range r.Filters {
		l[name] = v
	}
	return l
}

// Fingerprint is the fingerprint of a label set: a 64-bit FNV-1a hash of the labels sorted by
// name, in 16 hex digits, as Prometheus and Alertmanager compute it (model.LabelSet), so that an
// alert has the same ID here, in delivery and in Alertmanager.
func Fingerprint(labels map[string]string) string {
	ls := make(model.LabelSet, len(labels))
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

func (r *Rule) inScope(k Key) bool {
	return (r.Moment == "" || r.Moment == k.Moment) && (r.Channel == "" || r.Channel == k.Channel)
}

// Evaluate judges every rule in every cell of in, moves the alerts' states, and returns the
// transitions and the active alerts. A rule whose query is missing from in (its read failed)
// is skipped: its alerts keep their state, since a failed read says nothing about customers.
func (e *Engine) Evaluate(in Input) Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := in.Now
	data := map[string]*Data{}
	for i := range in.Data {
		d := in.Data[i] // a copy: the caller's Data stays as it was
		if !e.withBaseline(&d) {
			continue // its baseline is neither read nor known: judge the query's rules later
		}
		data[d.Query.ID] = &d
	}
	var out []Transition
	existing := map[string][]Key{} // rule name → cells with an alert
	for _, s := range e.series {
		existing[s.rule] = append(existing[s.rule], s.key)
	}
	for i := range e.rules {
		r := &e.rules[i]
		d := data[e.queryOf[i]]
		if d == nil {
			continue
		}
		// The current window's last step is filling now: it is measured up to now.
		end := d.Query.Current.To
		if now.Before(end) {
			end = now
		}
		curExp := end.Sub(d.Query.Current.From)
		baseExp := d.Query.Baseline.To.Sub(d.Query.Baseline.From)
		for _, k := range cells(r, d, existing[r.Name]) {
			cur, base := d.Current[k], d.Baseline[k]
			obs, v := judge(r, &cur, &base, curExp, baseExp, parts(d, k)...)
			out = e.step(out, r, k, obs, v, now)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(in.Observed)) {
		if e.sources[name] {
			out = e.observe(out, name, in.Observed[name], now)
		}
	}
	out = e.resolveOrphans(out, now)
	return Result{Transitions: out, Active: e.active(now)}
}

// observe fires the conditions of source name that are new and resolves its alerts that are
// no longer observed. A condition still observed keeps its alert, with its new annotations.
func (e *Engine) observe(out []Transition, name string, conds []Condition, now time.Time) []Transition {
	seen := map[string]bool{}
	for _, c := range conds {
		labels := cloneMap(c.Labels)
		labels["alertname"] = name
		fp := Fingerprint(labels)
		if seen[fp] {
			continue
		}
		seen[fp] = true
		if s := e.series[fp]; s != nil {
			s.annotations = cloneMap(c.Annotations)
			continue
		}
		since := c.Since
		if since.IsZero() || since.After(now) {
			since = now
		}
		s := &series{rule: name, fingerprint: fp, labels: labels, annotations: cloneMap(c.Annotations),
			state: Firing, activeAt: since, firedAt: now}
		e.series[fp] = s
		out = append(out, e.transition(s, Inactive, now))
	}
	var gone []*series
	for fp, s := range e.series {
		if s.rule == name && !seen[fp] {
			gone = append(gone, s)
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].fingerprint < gone[j].fingerprint })
	for _, s := range gone {
		out = e.resolve(out, s, nil, now)
	}
	return out
}

// parts are the baseline parts of cell k in d, each with its length within the baseline.
func parts(d *Data, k Key) []part {
	q := &d.Query
	counts := d.BaselineParts[k]
	if q.Part <= 0 || len(counts) == 0 {
		return nil
	}
	out := make([]part, 0, len(counts))
	from := q.PartStart()
	for i := 0; ; i++ {
		start, end := from.Add(time.Duration(i)*q.Part), from.Add(time.Duration(i+1)*q.Part)
		if !start.Before(q.Baseline.To) {
			break
		}
		if start.Before(q.Baseline.From) {
			start = q.Baseline.From
		}
		if end.After(q.Baseline.To) {
			end = q.Baseline.To
		}
		p := part{exposure: end.Sub(start)}
		if i < len(counts) {
			p.counts = counts[i]
		}
		out = append(out, p)
	}
	return out
}

// withBaseline fills in the baseline of d from the engine's copy when the reader left it out
// (Query.BaselineKnown), or keeps a copy of a baseline read; false when d needs a baseline the
// engine does not have (the rules changed between Queries and Evaluate).
func (e *Engine) withBaseline(d *Data) bool {
	q := &d.Query
	if q.Baseline.Table == "" {
		return true
	}
	if !q.BaselineKnown || d.Baseline != nil {
		e.baselines[q.ID] = Data{Query: *q, Baseline: d.Baseline, BaselineParts: d.BaselineParts}
		return true
	}
	known, ok := e.baselines[q.ID]
	if !ok || known.Query.Baseline != q.Baseline || known.Query.Part != q.Part {
		return false
	}
	d.Baseline, d.BaselineParts = known.Baseline, known.BaselineParts
	return true
}

// cells are the cells rule r is judged in: those in its scope with data in either period, and
// those where it has an alert (judged without data if need be), in moment and channel order.
func cells(r *Rule, d *Data, alerted []Key) []Key {
	set := map[Key]bool{}
	for _, m := range []map[Key]rollup.Counts{d.Current, d.Baseline} {
		for k := range m {
			if r.inScope(k) {
				set[k] = true
			}
		}
	}
	for _, k := range alerted {
		set[k] = true
	}
	keys := make([]Key, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return lessKey(keys[i], keys[j]) })
	return keys
}

func lessKey(a, b Key) bool {
	if a.Moment != b.Moment {
		return rank(event.Moments, a.Moment) < rank(event.Moments, b.Moment)
	}
	return rank(event.Channels, a.Channel) < rank(event.Channels, b.Channel)
}

// rank is the position of v in order, unknown values last in name order.
func rank(order []string, v string) string {
	if i := slices.Index(order, v); i >= 0 {
		return fmt.Sprintf("%03d", i)
	}
	return "999" + v
}

// step moves the alert of rule r in cell k by one evaluation's verdict v, appending its
// transition to out.
func (e *Engine) step(out []Transition, r *Rule, k Key, obs Observation, v verdict, now time.Time) []Transition {
	labels := r.Labels(k)
	fp := Fingerprint(labels)
	s := e.series[fp]
	if s == nil {
		if v != breach {
			return out
		}
		s = &series{rule: r.Name, key: k, fingerprint: fp, labels: labels, state: Pending, activeAt: now, obs: obs}
		if r.For == 0 {
			s.state, s.firedAt = Firing, now
		}
		s.annotations = annotate(r, k, s, e.noData)
		e.series[fp] = s
		return append(out, e.transition(s, Inactive, now))
	}
	switch s.state {
	case Pending:
		if v != breach {
			// The condition went away before For: the alert drops without ever firing.
			s.obs = obs
			s.state = Inactive
			s.annotations = annotate(r, k, s, e.noData)
			delete(e.series, fp)
			return append(out, e.transition(s, Pending, now))
		}
		s.obs = obs
		if now.Sub(s.activeAt) >= r.For {
			s.state, s.firedAt = Firing, now
			s.annotations = annotate(r, k, s, e.noData)
			return append(out, e.transition(s, Pending, now))
		}
		s.annotations = annotate(r, k, s, e.noData)
		return out
	}
	// Firing.
	switch v {
	case breach, hold:
		s.obs, s.recoveringSince, s.noDataSince = obs, time.Time{}, time.Time{}
	case recovered:
		s.obs, s.noDataSince = obs, time.Time{}
		if s.recoveringSince.IsZero() {
			s.recoveringSince = now
		}
		if now.Sub(s.recoveringSince) >= r.KeepFiringFor {
			return e.resolve(out, s, r, now)
		}
	case noData:
		// The last observation with data stays; only its n moves, so a screen sees how thin
		// the data has become.
		s.obs.N, s.recoveringSince = obs.N, time.Time{}
		if s.noDataSince.IsZero() {
			s.noDataSince = now
		}
		if now.Sub(s.noDataSince) >= e.noData {
			return e.resolve(out, s, r, now)
		}
	}
	s.annotations = annotate(r, k, s, e.noData)
	return out
}

// resolve ends firing alert s.
func (e *Engine) resolve(out []Transition, s *series, r *Rule, now time.Time) []Transition {
	s.state = Resolved
	if r != nil {
		s.annotations = annotate(r, s.key, s, e.noData)
	}
	delete(e.series, s.fingerprint)
	return append(out, e.transition(s, Firing, now))
}

// resolveOrphans ends the alerts whose rule is gone or now gives other labels (a changed
// severity or filter): they can no longer be judged. A pending one drops, a firing one resolves.
func (e *Engine) resolveOrphans(out []Transition, now time.Time) []Transition {
	var orphans []*series
	for fp, s := range e.series {
		if e.sources[s.rule] {
			continue // resolved by its source (observe), not by a rule
		}
		i, ok := e.byName[s.rule]
		if !ok || Fingerprint(e.rules[i].Labels(s.key)) != fp {
			orphans = append(orphans, s)
		}
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].fingerprint < orphans[j].fingerprint })
	for _, s := range orphans {
		s.annotations = cloneMap(s.annotations)
		s.annotations["summary"] = strings.TrimSuffix(s.annotations["summary"], ".") + "; the rule was removed or changed"
		from := s.state
		if from == Pending {
			s.state = Inactive
		} else {
			s.state = Resolved
		}
		delete(e.series, s.fingerprint)
		out = append(out, e.transition(s, from, now))
	}
	return out
}

// transition records that s went from → s.state at now.
func (e *Engine) transition(s *series, from State, now time.Time) Transition {
	a := e.snapshot(s, now)
	if s.state == Resolved || s.state == Inactive {
		a.ResolvedAt = now
	}
	return Transition{At: now, From: from, To: s.state, Alert: a}
}

// snapshot is the Alert of s as of now (silences are matched at now).
func (e *Engine) snapshot(s *series, now time.Time) Alert {
	a := Alert{
		Fingerprint: s.fingerprint, Labels: cloneMap(s.labels), Annotations: cloneMap(s.annotations),
		State: s.state, ActiveAt: s.activeAt, FiredAt: s.firedAt, Observation: s.obs,
		AcknowledgedBy: s.ackBy, AcknowledgedAt: s.ackAt,
	}
	a.SilencedBy = e.silencedBy(s.labels, now)
	a.Silenced = len(a.SilencedBy) > 0
	return a
}

func cloneMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Active returns every pending and firing alert: firing first, then by severity (critical
// first), moment, channel and alertname. Silences are matched at the engine's clock.
func (e *Engine) Active() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.active(e.clock())
}

var severityRank = map[string]int{"critical": 0, "warning": 1, "info": 2}

func (e *Engine) active(now time.Time) []Alert {
	out := make([]Alert, 0, len(e.series))
	for _, s := range e.series {
		out = append(out, e.snapshot(s, now))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.State != b.State {
			return a.State == Firing
		}
		if sa, sb := severityRank[a.Labels["severity"]], severityRank[b.Labels["severity"]]; sa != sb {
			return sa < sb
		}
		ka, kb := Key{a.Labels["moment"], a.Labels["channel"]}, Key{b.Labels["moment"], b.Labels["channel"]}
		if ka != kb {
			return lessKey(ka, kb)
		}
		if a.Labels["alertname"] != b.Labels["alertname"] {
			return a.Labels["alertname"] < b.Labels["alertname"]
		}
		return a.Fingerprint < b.Fingerprint
	})
	return out
}

// Restore brings back the alerts and silences of before a restart (the latest state of each
// alert from the history, the silences still in force), so that a firing alert keeps firing
// and is not announced again. Only pending and firing alerts are taken; an alert whose rule
// is gone resolves at the next evaluation.
func (e *Engine) Restore(alerts []Alert, silences []Silence) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range alerts {
		if a.State != Pending && a.State != Firing {
			continue
		}
		fp := Fingerprint(a.Labels)
		s := &series{
			rule: a.Labels["alertname"], key: Key{a.Labels["moment"], a.Labels["channel"]},
			fingerprint: fp, labels: cloneMap(a.Labels), annotations: cloneMap(a.Annotations),
			state: a.State, activeAt: a.ActiveAt, firedAt: a.FiredAt, obs: a.Observation,
			ackBy: a.AcknowledgedBy, ackAt: a.AcknowledgedAt,
		}
		e.series[fp] = s
	}
	for _, sl := range silences {
		e.silences[sl.ID] = sl
	}
}

// ErrUnknownAlert is the error of Acknowledge for a fingerprint that is not pending or firing.
var ErrUnknownAlert = errors.New("no pending or firing alert has this fingerprint")

// MaxByLen bounds who acknowledged, created or expired something, in bytes.
const MaxByLen = 200

// Acknowledge records that by has seen the alert with this fingerprint; the acknowledgement
// lasts until the alert resolves. The returned Transition (From == To) is for the history.
func (e *Engine) Acknowledge(fingerprint, by string) (Transition, error) {
	by = strings.TrimSpace(by)
	if by == "" || len(by) > MaxByLen {
		return Transition{}, &InputError{Field: "by", Message: fmt.Sprintf("acknowledge: say who acknowledges, in 1 to %d bytes", MaxByLen)}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.series[fingerprint]
	if s == nil {
		return Transition{}, fmt.Errorf("acknowledge %s: %w", fingerprint, ErrUnknownAlert)
	}
	now := e.clock()
	s.ackBy, s.ackAt = by, now
	return Transition{At: now, From: s.state, To: s.state, Alert: e.snapshot(s, now)}, nil
}
