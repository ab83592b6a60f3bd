// Package alertbench is `truthboard-tools alert-bench`: it measures how honest the default alert
// rules are on the demo's traffic, and what their evaluation costs:
//
//	eval "$(scripts/clickhouse.sh env)"
//	go run ./cmd/truthboard-tools alert-bench -out docs/benchmarks.md
//
// Everything runs on simulated time, so hours of traffic take minutes. For each seed, the demo's
// generator (internal/demo, the traffic of `truthboard serve` with demo traffic: its journeys,
// daily rhythm and late events) produces events with their occurred_at in simulated time; they
// are inserted through internal/store into a database of their own (truthboard_abench_<random>,
// dropped at the end) as the simulated clock reaches the time they are sent, so the rollups
// fill as they would in a server. An alert evaluator (internal/alert/evaluator, the server's,
// with the default rules) is stepped on that clock every Step, each step one Evaluate; the
// history it records in ClickHouse is then read back:
//
//   - false alarms: after Baseline of history (the default rules compare 15 minutes with the 3
//     hours before), Steady of steady traffic; every alert that fires in it is a false alarm;
//   - time to fire: then the incidents, one after the other, each in a slot of its own (the
//     alerts of one resolve before the next starts); the time from an incident's start to the
//     first alert on its channel, and to each alert that fires there;
//   - cost: every evaluation's time and queries, against the live executive feed's tick on the
//     same data at the same simulated instants (a live.Hub in this process, the 5-minute
//     executive view that screens show by default).
//
// The volume rule compares an hour with the same hour a week earlier: with LastWeek, the hours
// a week before the measured ones are filled too, with the same traffic (another seed), so that
// it is judged as it would be after a week of running. Duplicates are left out of the traffic
// (the server removes them before they are stored).
package alertbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/alert/evaluator"
	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/store"
)

// Options configure a measurement; DefaultOptions gives the defaults.
type Options struct {
	ClickHouse benchkit.ClickHouse
	// Rate is the demo's mean events per second (40: the rate of scripts/up.sh).
	Rate float64
	// Seeds: each is a run of its own, on a database of its own.
	Seeds []int64
	// IncidentSeeds is how many of the seeds (the first ones) also run the incidents after the
	// steady traffic; the others measure false alarms only.
	IncidentSeeds int
	// Origin is when the first seed's simulated history starts; each next seed starts
	// OriginStep later, so that the seeds' steady traffic falls at other times of day (the
	// demo's rate follows the hour: 0.4 times the mean at 02:00, 1.6 times at 14:00).
	Origin     time.Time
	OriginStep time.Duration
	// Baseline is the history before the measured steady traffic: the default rules' trailing
	// 3 hours, full, plus their 15-minute window.
	Baseline time.Duration
	// Steady is the steady traffic in which every alert that fires is a false alarm.
	Steady time.Duration
	// Incidents are injected one after the other after the steady traffic, each lasting
	// IncidentLength at the start of a slot of Slot.
	Incidents      []Incident
	IncidentLength time.Duration
	Slot           time.Duration
	// LastWeek fills the hours a week before the measured ones, for the volume rule.
	LastWeek bool
	// CompareAlpha, when above 0, also runs the default rules at this level instead of
	// alert.DefaultAlpha, in an engine of its own fed the same reads (no extra query), so that
	// the report sets the two levels side by side on the same traffic.
	CompareAlpha float64
	// Step is the simulated time between evaluations.
	Step time.Duration
	// LiveEvery: every LiveEvery-th evaluation, the live executive feed's tick is measured at
	// the same simulated instant.
	LiveEvery int
	// Keep keeps the databases for inspection.
	Keep bool
	Log  *slog.Logger
}

// Incident is a demo incident on one channel (demo.Outage or demo.Spike).
type Incident struct {
	Channel string
	Kind    demo.IncidentKind
}

func (i Incident) String() string { return i.Channel + ":" + string(i.Kind) }

// DefaultOptions: 40 events/s, six seeds of two hours of steady traffic at six times of day (the
// first also with incidents),
// an outage on every channel and a spike on every contact-centre channel, evaluated every 10 s.
func DefaultOptions() Options {
	o := Options{
		ClickHouse:     benchkit.ClickHouseFromEnv(),
		Rate:           40,
		Seeds:          []int64{1, 2, 3, 4, 5, 6},
		IncidentSeeds:  1,
		Origin:         time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC),
		OriginStep:     4 * time.Hour,
		Baseline:       3*time.Hour + 15*time.Minute,
		Steady:         2 * time.Hour,
		IncidentLength: 15 * time.Minute,
		Slot:           35 * time.Minute,
		LastWeek:       true,
		CompareAlpha:   1e-4,
		Step:           10 * time.Second, // the server's default TRUTHBOARD_ALERT_INTERVAL
		LiveEvery:      30,
	}
	for _, ch := range []string{"voice", "ivr", "chat", "messaging", "email", "web", "app", "store", "field_service", "social", "review_site"} {
		o.Incidents = append(o.Incidents, Incident{ch, demo.Outage})
	}
	for _, ch := range []string{"voice", "ivr", "chat", "messaging", "email"} {
		o.Incidents = append(o.Incidents, Incident{ch, demo.Spike})
	}
	return o
}

// Report is what a measurement found.
type Report struct {
	Options Options
	// ClickHouse is the server's version.
	ClickHouse string
	Runs       []SeedRun
}

// SeedRun is one seed's run.
type SeedRun struct {
	Seed int64
	// SteadyStart is when its steady traffic started (simulated).
	SteadyStart time.Time
	Events      uint64 // inserted, the baseline's included, last week's not
	// LastWeekEvents fill the hours a week earlier (Options.LastWeek).
	LastWeekEvents uint64
	// Outcome is what the default rules did; Compare what they did at Options.CompareAlpha.
	Outcome
	Compare *Outcome
	// Evaluations and their cost: time per evaluation (ms) and queries per evaluation.
	Evaluations  int
	EvalMS       []float64
	EvalQueries  []int
	LiveMS       []float64
	LiveQueries  []int
	RealDuration time.Duration
}

// Outcome is what one set of rules did in a run.
type Outcome struct {
	// Steady: the alerts that fired in the steady traffic (false alarms), and those that went
	// pending there and dropped without firing (near misses).
	FalseAlarms []Fired
	NearMisses  int
	Incidents   []IncidentResult
}

// Fired is an alert that fired: its alertname and cell, when (from the start of the steady
// traffic or of its incident), and its summary.
type Fired struct {
	Name, Moment, Channel string
	After                 time.Duration
	Summary               string
}

func (f Fired) cell() string { return f.Name + " " + f.Moment + " › " + f.Channel }

// IncidentResult is what fired during one incident's slot.
type IncidentResult struct {
	Incident Incident
	Start    time.Time
	// OnChannel fired on the incident's channel, in order; Elsewhere on other channels.
	OnChannel, Elsewhere []Fired
	// Resolved is when the last alert on the channel resolved, after the incident's end; zero
	// when one still fired at the end of the slot.
	Resolved    time.Duration
	StillFiring int
	PendingOnly int // went pending on the channel without firing
}

// Measure runs every seed and returns the report.
func Measure(ctx context.Context, o Options) (Report, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := o.validate(); err != nil {
		return Report{}, err
	}
	rep := Report{Options: o}
	for i, seed := range o.Seeds {
		run, version, err := runSeed(ctx, o, o.Origin.Add(time.Duration(i)*o.OriginStep), seed, i < o.IncidentSeeds)
		if err != nil {
			return rep, fmt.Errorf("seed %d: %w", seed, err)
		}
		rep.ClickHouse = version
		rep.Runs = append(rep.Runs, run)
	}
	return rep, nil
}

func (o Options) validate() error {
	var errs []error
	if !(o.Rate > 0 && o.Rate <= demo.MaxRate) {
		errs = append(errs, fmt.Errorf("-rate %v: want events per second above 0 and at most %d", o.Rate, demo.MaxRate))
	}
	if len(o.Seeds) == 0 {
		errs = append(errs, errors.New("-seeds: give at least one seed"))
	}
	if o.Step < time.Second || o.Step > time.Minute {
		errs = append(errs, fmt.Errorf("-step %v: want 1s to 1m (the server evaluates every second; 10s–15s keeps the run short)", o.Step))
	}
	if o.Baseline < 15*time.Minute || o.Steady <= 0 {
		errs = append(errs, fmt.Errorf("-baseline %v, -steady %v: want a baseline of at least 15m and some steady traffic", o.Baseline, o.Steady))
	}
	if len(o.Incidents) > 0 && (o.IncidentLength <= 0 || o.Slot < o.IncidentLength) {
		errs = append(errs, fmt.Errorf("-incident-length %v, -slot %v: want a slot at least as long as an incident", o.IncidentLength, o.Slot))
	}
	for _, inc := range o.Incidents {
		if _, err := demo.ParseIncident(inc.Channel + ":" + string(inc.Kind) + ":+0s:1m"); err != nil {
			errs = append(errs, fmt.Errorf("-incidents: %w", err))
		}
	}
	if o.CompareAlpha < 0 || o.CompareAlpha > 0.05 {
		errs = append(errs, fmt.Errorf("-compare-alpha %v: want a level above 0 and at most 0.05 (0: compare nothing)", o.CompareAlpha))
	}
	if o.LiveEvery < 1 {
		errs = append(errs, fmt.Errorf("-live-every %d: want 1 or more", o.LiveEvery))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", benchkit.ErrUsage, err)
	}
	return nil
}

// counting is the evaluator's store, counting the ClickHouse queries of each evaluation and
// keeping the last answer (for the engine of Options.CompareAlpha).
type counting struct {
	*store.Store
	queries int
	last    []alert.Data
}

func (c *counting) AlertData(ctx context.Context, qs []alert.Query) ([]alert.Data, error) {
	for _, q := range qs {
		c.queries++
		if q.Baseline.Table != "" && !q.BaselineKnown { // read once a minute, kept in between
			c.queries++
		}
	}
	d, err := c.Store.AlertData(ctx, qs)
	c.last = d
	return d, err
}

// feeder inserts the generator's events into the store as the simulated clock reaches the
// time they are sent, in chunks of simulated time (ClickHouse wants few, large inserts).
type feeder struct {
	db     *store.Store
	gen    *demo.Generator
	chunk  time.Duration
	upTo   time.Time // every event sent before it is inserted
	events uint64
}

// until inserts every event sent before t (rounded up to a whole chunk).
func (f *feeder) until(ctx context.Context, t time.Time) error {
	for f.upTo.Before(t) {
		end := f.upTo.Add(f.chunk)
		// Due includes the events sent exactly at end; the next chunk's are after it.
		evs := f.gen.Due(end.Add(-time.Nanosecond), 1<<30)
		if err := f.db.InsertEvents(ctx, evs, end); err != nil {
			return fmt.Errorf("insert %d demo events sent before %s: %w", len(evs), end.Format(time.RFC3339), err)
		}
		f.events += uint64(len(evs))
		f.upTo = end
	}
	return nil
}

func runSeed(ctx context.Context, o Options, origin time.Time, seed int64, withIncidents bool) (SeedRun, string, error) {
	run := SeedRun{Seed: seed}
	began := time.Now()
	var b [6]byte
	_, _ = rand.Read(b[:])
	database := "truthboard_abench_" + hex.EncodeToString(b[:])
	db, err := store.Open(ctx, o.ClickHouse.Store(database))
	if err != nil {
		return run, "", fmt.Errorf("%w (start a local server with: eval \"$(scripts/clickhouse.sh env)\")", err)
	}
	defer db.Close()
	if !o.Keep {
		defer func() {
			dropCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := o.ClickHouse.DropDatabase(dropCtx, database); err != nil {
				o.Log.Warn("database not dropped", "database", database, "err", err)
			}
		}()
	}
	if _, err := db.Migrate(ctx); err != nil {
		return run, "", err
	}

	// The timeline.
	steadyStart := origin.Add(o.Baseline)
	run.SteadyStart = steadyStart
	steadyEnd := steadyStart.Add(o.Steady)
	end := steadyEnd
	cfg := demo.DefaultConfig()
	cfg.Rate, cfg.Seed, cfg.DuplicateShare = o.Rate, seed, 0
	if withIncidents {
		for i, inc := range o.Incidents {
			start := steadyEnd.Add(time.Duration(i) * o.Slot)
			cfg.Incidents = append(cfg.Incidents, demo.Incident{Channel: inc.Channel, Kind: inc.Kind, Start: start.Sub(origin), Duration: o.IncidentLength})
			run.Incidents = append(run.Incidents, IncidentResult{Incident: inc, Start: start})
		}
		end = steadyEnd.Add(time.Duration(len(o.Incidents)) * o.Slot)
	}
	gen, err := demo.NewGenerator(cfg, origin)
	if err != nil {
		return run, "", err
	}
	f := &feeder{db: db, gen: gen, chunk: 5 * time.Minute, upTo: origin}
	// The baseline in large inserts, then in chunks as the clock goes.
	f.chunk = 30 * time.Minute
	if err := f.until(ctx, steadyStart.Add(-time.Hour)); err != nil {
		return run, "", err
	}
	f.chunk = 5 * time.Minute
	if o.LastWeek {
		if run.LastWeekEvents, err = fillLastWeek(ctx, db, o, seed, steadyStart, end); err != nil {
			return run, "", err
		}
	}

	// The simulated clock, read by the engine, the evaluator and the live hub.
	var simNanos atomic.Int64
	simNow := func() time.Time { return time.Unix(0, simNanos.Load()).UTC() }
	engine, err := alert.NewEngine(alert.Config{Rules: alert.DefaultRules(), Clock: simNow})
	if err != nil {
		return run, "", err
	}
	src := &counting{Store: db}
	var compare *alert.Engine // the default rules at CompareAlpha, fed the same reads
	var compared []alert.Transition
	if o.CompareAlpha > 0 {
		rules := alert.DefaultRules()
		for i := range rules {
			if rules[i].Kind == alert.Change {
				rules[i].Alpha = o.CompareAlpha
			}
		}
		if compare, err = alert.NewEngine(alert.Config{Rules: rules, Clock: simNow}); err != nil {
			return run, "", fmt.Errorf("-compare-alpha: %w", err)
		}
	}
	ev := evaluator.New(engine, src, evaluator.Options{Interval: time.Hour, Now: simNow}, o.Log)
	hub := live.NewHub(db, live.Options{Tick: time.Hour, Now: simNow}, o.Log)
	defer hub.Close()
	executive, err := live.ParseClientMessage([]byte(`{"type": "subscribe", "view": "executive", "window": "5m"}`))
	if err != nil {
		return run, "", fmt.Errorf("the executive view's subscription: %w", err)
	}

	o.Log.Info("alert-bench: evaluating", "seed", seed, "from", steadyStart, "to", end, "incidents", len(run.Incidents))
	for at := steadyStart; at.Before(end); at = at.Add(o.Step) {
		now := at.Add(500 * time.Millisecond) // mid-second, as a server's ticks fall
		if err := f.until(ctx, now); err != nil {
			return run, "", err
		}
		simNanos.Store(now.UnixNano())
		before := src.queries
		ev.Evaluate(ctx)
		st := ev.Stats()
		if st.LastError != "" {
			return run, "", fmt.Errorf("evaluation at %s: %s", now.Format(time.RFC3339), st.LastError)
		}
		if compare != nil {
			compared = append(compared, compare.Evaluate(alert.Input{Now: now, Data: src.last}).Transitions...)
		}
		run.Evaluations++
		run.EvalMS = append(run.EvalMS, ms(st.LastDuration))
		run.EvalQueries = append(run.EvalQueries, src.queries-before)
		if run.Evaluations%o.LiveEvery == 1 || o.LiveEvery == 1 {
			took, queries, err := liveTick(ctx, hub, executive)
			if err != nil {
				return run, "", err
			}
			run.LiveMS, run.LiveQueries = append(run.LiveMS, ms(took)), append(run.LiveQueries, queries)
		}
		if run.Evaluations%360 == 0 {
			o.Log.Info("alert-bench", "seed", seed, "simulated", now.Sub(steadyStart).String(), "evaluations", run.Evaluations, "events", f.events)
		}
	}
	run.Events = f.events

	ts, err := history(ctx, db, origin, end.Add(time.Hour))
	if err != nil {
		return run, "", err
	}
	template := run.Incidents
	run.Outcome = classify(ts, template, steadyStart, steadyEnd, o)
	if compare != nil {
		c := classify(compared, template, steadyStart, steadyEnd, o)
		run.Compare = &c
	}
	run.RealDuration = time.Since(began)
	return run, db.ServerVersion(), nil
}

// week is the offset of the volume rule's baseline.
const week = 7 * 24 * time.Hour

// fillLastWeek inserts the traffic of a week before the measured span [from, to), with the
// volume rule's hour before it: the same rate and daily rhythm, from another seed.
func fillLastWeek(ctx context.Context, db *store.Store, o Options, seed int64, from, to time.Time) (uint64, error) {
	cfg := demo.DefaultConfig()
	cfg.Rate, cfg.Seed, cfg.DuplicateShare = o.Rate, seed+1_000_000, 0
	start := from.Add(-week - time.Hour)
	gen, err := demo.NewGenerator(cfg, start)
	if err != nil {
		return 0, err
	}
	f := &feeder{db: db, gen: gen, chunk: 30 * time.Minute, upTo: start}
	if err := f.until(ctx, to.Add(-week)); err != nil {
		return f.events, fmt.Errorf("last week's traffic: %w", err)
	}
	return f.events, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// liveTick measures one tick of a new feed of sub: the time from the subscription to its frame
// being offered (the feed's first tick runs at once: its queries, the charts, the encoding), and
// the queries it ran.
func liveTick(ctx context.Context, hub *live.Hub, sub live.Subscription) (time.Duration, int, error) {
	before := hub.Stats().Queries
	c := live.NewClient()
	started := time.Now()
	hub.Subscribe(c, sub)
	defer hub.Leave(c, live.ClientGone)
	select {
	case <-c.Wake():
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	case <-time.After(time.Minute):
		return 0, 0, errors.New("the live executive feed gave no frame within a minute")
	}
	took := time.Since(started)
	if msg, ok := c.TryNext(); !ok || strings.Contains(string(msg[:min(len(msg), 200)]), `"degraded":true`) {
		return 0, 0, errors.New("the live executive feed's frame is missing or degraded")
	}
	return took, int(hub.Stats().Queries - before), nil
}

// history reads every transition recorded from from to to, oldest first.
func history(ctx context.Context, db *store.Store, from, to time.Time) ([]alert.Transition, error) {
	out, err := db.AlertHistory(ctx, from, to, "", store.MaxAlertHistory)
	if err != nil {
		return nil, err
	}
	if len(out) == store.MaxAlertHistory {
		// Paging by time could split the transitions of one evaluation (they share its time).
		return nil, fmt.Errorf("%d or more transitions: the rules flap; run fewer incidents (-incidents) to see which", len(out))
	}
	slices.Reverse(out)
	return out, nil
}

// classify sorts the recorded transitions into false alarms and near misses of the steady
// traffic, and the alerts of each incident's slot.
func classify(ts []alert.Transition, incidents []IncidentResult, steadyStart, steadyEnd time.Time, o Options) Outcome {
	run := &Outcome{Incidents: slices.Clone(incidents)}
	slotOf := func(at time.Time) int {
		for i := range run.Incidents {
			if s := run.Incidents[i].Start; !at.Before(s) && at.Before(s.Add(o.Slot)) {
				return i
			}
		}
		return -1
	}
	lastResolve := map[int]time.Time{}
	for _, t := range ts {
		l := t.Alert.Labels
		f := Fired{Name: l["alertname"], Moment: l["moment"], Channel: l["channel"], Summary: t.Alert.Annotations["summary"]}
		at := t.At.Truncate(time.Second) // the evaluation's step, without the half second it runs after
		fires := t.To == alert.Firing && t.From != alert.Firing
		inSteady := !t.At.Before(steadyStart) && t.At.Before(steadyEnd)
		switch i := slotOf(t.At); {
		case inSteady && fires:
			f.After = at.Sub(steadyStart)
			run.FalseAlarms = append(run.FalseAlarms, f)
		case inSteady && t.From == alert.Pending && t.To == alert.Inactive:
			run.NearMisses++
		case i >= 0:
			r := &run.Incidents[i]
			f.After = at.Sub(r.Start)
			onChannel := l["channel"] == r.Incident.Channel
			switch {
			case fires && onChannel:
				r.OnChannel = append(r.OnChannel, f)
			case fires:
				r.Elsewhere = append(r.Elsewhere, f)
			case onChannel && t.From == alert.Pending && t.To == alert.Inactive:
				r.PendingOnly++
			case onChannel && t.To == alert.Resolved:
				lastResolve[i] = t.At
			}
		}
	}
	// What fired on a channel and had not resolved by the end of its slot.
	for i := range run.Incidents {
		r := &run.Incidents[i]
		slotEnd := r.Start.Add(o.Slot)
		still := map[string]bool{}
		for _, t := range ts {
			if t.At.Before(slotEnd) && t.Alert.Labels["channel"] == r.Incident.Channel && !t.At.Before(r.Start) {
				switch {
				case t.To == alert.Firing:
					still[t.Alert.Fingerprint] = true
				case t.To == alert.Resolved:
					delete(still, t.Alert.Fingerprint)
				}
			}
		}
		r.StillFiring = len(still)
		if at, ok := lastResolve[i]; ok && r.StillFiring == 0 {
			r.Resolved = at.Truncate(time.Second).Sub(r.Start.Add(o.IncidentLength))
		}
	}
	return *run
}
