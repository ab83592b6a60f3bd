package alert_test

import (
	"flag"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
)

// demoSeed chooses the simulated traffic of TestDemoTraffic; other seeds measure other days:
// go test -run TestDemoTraffic -v ./internal/alert -args -demo-seed=3
var demoSeed = flag.Int64("demo-seed", 7, "seed of the demo traffic TestDemoTraffic simulates")

// simStep is the resolution of the simulated rollups and the interval of the evaluations.
const simStep = 10 * time.Second

// rollups plays the overview rollup tables for the simulation: the counts of each moment ×
// channel summed over every 10-second step, kept as running totals so that any span of whole
// steps is one subtraction. Events must come in time order (no late events).
type rollups struct {
	start time.Time
	// cum[k][i] is the sum of cell k's events before start + i steps.
	cum  map[alert.Key][]rollup.Counts
	open map[alert.Key]*rollup.Counts // the step filling now
	step int                          // index of the step filling now
}

func newRollups(start time.Time) *rollups {
	return &rollups{start: start, cum: map[alert.Key][]rollup.Counts{}, open: map[alert.Key]*rollup.Counts{}}
}

// advance closes the steps before the one holding t.
func (r *rollups) advance(t time.Time) {
	target := int(t.Sub(r.start) / simStep)
	for ; r.step < target; r.step++ {
		for k, c := range r.cum {
			next := c[len(c)-1]
			if o := r.open[k]; o != nil {
				next.Add(o)
			}
			r.cum[k] = append(c, next)
		}
		clear(r.open)
	}
}

func (r *rollups) add(e *event.Event) {
	r.advance(e.OccurredAt)
	k := alert.Key{Moment: e.Moment, Channel: e.Channel}
	if _, ok := r.cum[k]; !ok {
		r.cum[k] = make([]rollup.Counts, r.step+1)
	}
	o := r.open[k]
	if o == nil {
		o = &rollup.Counts{}
		r.open[k] = o
	}
	o.AddEvent(e)
}

// span sums every cell over [from, to), both on step boundaries; like a rollup table, it holds
// what has happened so far of a span that ends in the future (a minute filling now).
func (r *rollups) span(from, to time.Time) map[alert.Key]rollup.Counts {
	i, j := int(from.Sub(r.start)/simStep), min(int(to.Sub(r.start)/simStep), r.step)
	if from.Sub(r.start)%simStep != 0 || to.Sub(r.start)%simStep != 0 {
		panic(fmt.Sprintf("span %s–%s is not on step boundaries", from, to))
	}
	out := map[alert.Key]rollup.Counts{}
	for k, c := range r.cum {
		i, j := max(i, 0), min(j, len(c)-1)
		if j <= i {
			continue
		}
		out[k] = minus(c[j], c[i])
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func minus(a, b rollup.Counts) rollup.Counts {
	d := rollup.Counts{Events: a.Events - b.Events, CSATN: a.CSATN - b.CSATN, CSATTop2: a.CSATTop2 - b.CSATTop2,
		NPSN: a.NPSN - b.NPSN, NPSPromoters: a.NPSPromoters - b.NPSPromoters, NPSDetractors: a.NPSDetractors - b.NPSDetractors,
		CESN: a.CESN - b.CESN, CESSum: a.CESSum - b.CESSum, Negative: a.Negative - b.Negative,
		WithOutcome: a.WithOutcome - b.WithOutcome, Abandoned: a.Abandoned - b.Abandoned, WaitN: a.WaitN - b.WaitN}
	for i := range d.Wait {
		d.Wait[i] = a.Wait[i] - b.Wait[i]
	}
	return d
}

// TestDemoTraffic runs the default rules on simulated demo traffic (internal/demo, 40 events
// per second, the rate of scripts/up.sh, with its daily rhythm), evaluated every 10 seconds as
// the server does: after an hour that fills the baselines (a third of their 3 hours: thinner
// baselines, which only make a false alarm likelier), an hour of steady traffic must raise no
// alert at all; then a 20-minute voice outage must fire the voice alerts a person expects (CSAT
// down, abandonment up) within minutes, and everything must resolve after it.
// The rollups are summed in memory from the generator's events, exactly as the overview tables
// sum them; the volume rule has no week of history here and stays silent.
func TestDemoTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates 3 hours of demo traffic")
	}
	start := time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)
	const (
		warmUp   = time.Hour
		steady   = time.Hour
		outage   = 20 * time.Minute
		recovery = 40 * time.Minute
	)
	cfg := demo.DefaultConfig()
	cfg.Rate, cfg.Seed = 40, *demoSeed
	// Duplicates are removed at ingest and late events reach the rollups late: neither is part
	// of what the rules judge at the time, and late ones would break the running totals.
	cfg.DuplicateShare, cfg.LateShare = 0, 0
	cfg.Incidents = demo.Incidents{{Channel: "voice", Kind: demo.Outage, Start: warmUp + steady, Duration: outage}}
	gen, err := demo.NewGenerator(cfg, start)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := alert.NewEngine(alert.Config{Rules: alert.DefaultRules()})
	if err != nil {
		t.Fatal(err)
	}
	sums := newRollups(start)
	incident := start.Add(warmUp + steady)
	end := incident.Add(outage + recovery)
	var (
		falseAlarms   []string
		firedInOutage = map[string]time.Duration{}
		evaluations   int
		last          alert.Result
	)
	for tick := start.Add(simStep); !tick.After(end); tick = tick.Add(simStep) {
		// Evaluate half a second before the tick, so that every span the engine asks for ends on
		// a step boundary (the current window ends with the second filling now).
		now := tick.Add(-500 * time.Millisecond)
		for _, e := range gen.Due(now, 1<<30) {
			sums.add(&e)
		}
		sums.advance(tick)
		in := alert.Input{Now: now}
		for _, q := range engine.Queries(now) {
			d := alert.Data{Query: q, Current: sums.span(q.Current.From, q.Current.To)}
			if q.Baseline.Table != "" {
				d.Baseline = sums.span(q.Baseline.From, q.Baseline.To)
				d.BaselineParts = map[alert.Key][]rollup.Counts{}
				for from := q.PartStart(); from.Before(q.Baseline.To); from = from.Add(q.Part) {
					for k, c := range sums.span(maxTime(from, q.Baseline.From), minTime(from.Add(q.Part), q.Baseline.To)) {
						i := int(from.Sub(q.PartStart()) / q.Part)
						ps := d.BaselineParts[k]
						for len(ps) <= i {
							ps = append(ps, rollup.Counts{})
						}
						ps[i] = c
						d.BaselineParts[k] = ps
					}
				}
			}
			in.Data = append(in.Data, d)
		}
		last = engine.Evaluate(in)
		evaluations++
		for _, tr := range last.Transitions {
			if tr.To != alert.Firing || tr.From == alert.Firing {
				continue
			}
			name := tr.Alert.Labels["alertname"] + " " + tr.Alert.Labels["moment"] + "/" + tr.Alert.Labels["channel"]
			switch {
			case now.Before(start.Add(warmUp)):
				t.Logf("during the warm-up (baselines still filling), %s: %s", now.Sub(start), tr.Alert.Annotations["summary"])
			case now.Before(incident):
				falseAlarms = append(falseAlarms, tr.Alert.Annotations["summary"])
			default:
				if _, seen := firedInOutage[name]; !seen {
					firedInOutage[name] = now.Sub(incident)
				}
				t.Logf("%s after the outage began: %s", now.Sub(incident).Round(time.Second), tr.Alert.Annotations["summary"])
			}
		}
	}
	t.Logf("%d evaluations of %d rules over %s", evaluations, len(alert.DefaultRules()), end.Sub(start))
	if len(falseAlarms) > 0 {
		t.Errorf("%d alerts fired in %s of steady traffic:\n%v", len(falseAlarms), steady, falseAlarms)
	}
	var names []string
	for n := range firedInOutage {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Logf("time to fire: %-40s %s", n, firedInOutage[n].Round(time.Second))
	}
	for _, want := range []string{"CSATDrop service/voice", "AbandonmentRise service/voice"} {
		ttf, ok := firedInOutage[want]
		switch {
		case !ok:
			t.Errorf("the voice outage did not fire %s", want)
		case ttf > 10*time.Minute:
			t.Errorf("%s fired %s after the outage began, want within 10 minutes", want, ttf)
		}
	}
	for _, a := range last.Active {
		t.Errorf("still %s %s after the outage ended: %s", a.State, end.Sub(incident.Add(outage)), a.Annotations["summary"])
	}
}
