package demo

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/truthboard/truthboard/internal/event"
)

// Generator simulates customer journeys and returns their events in the order they are sent,
// without any I/O. Two generators made from the same Config and start time return the same
// events. A Generator is not safe for concurrent use.
type Generator struct {
	rng       *rand.Rand
	loc       *time.Location // of the start time: the diurnal curve follows its hours
	now       int64          // the time of the last item processed, in Unix nanoseconds
	diurnal   bool
	meanRate  float64 // journeys per second, averaged over a day
	peakRate  float64 // journeys per second at the diurnal peak: the bound for thinning
	dupShare  float64
	lateShare float64
	windows   []window
	prefix    string // of event and journey IDs: unique per start time and seed
	journeys  uint64
	queue     queue
	warming   bool // simulating the journeys in flight before the start: nothing is sent
}

// window is an incident in absolute time.
type window struct {
	channel  string
	kind     IncidentKind
	from, to int64
	rate     float64 // spike: extra journeys per second
}

// NewGenerator returns a generator whose first event is due at start. It uses the model fields
// of cfg (Rate, Diurnal, Incidents, DuplicateShare, LateShare, Seed) and ignores the others;
// incident offsets count from start.
func NewGenerator(cfg Config, start time.Time) (*Generator, error) {
	if errs := cfg.validateModel(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	g := &Generator{
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7472757468626f61)),
		loc:       start.Location(),
		diurnal:   cfg.Diurnal,
		meanRate:  cfg.Rate / eventsPerJourney(),
		dupShare:  cfg.DuplicateShare,
		lateShare: cfg.LateShare,
		prefix: "demo-" + strconv.FormatInt(start.UnixMilli(), 36) + "-" +
			strconv.FormatUint(uint64(cfg.Seed), 36),
	}
	g.peakRate = g.meanRate
	if g.diurnal {
		g.peakRate *= 1 + diurnalAmplitude
	}
	t0 := start.UnixNano()
	for i, inc := range cfg.Incidents {
		w := window{channel: inc.Channel, kind: inc.Kind, from: t0 + int64(inc.Start)}
		w.to = w.from + int64(inc.Duration)
		if inc.Kind == Spike {
			w.rate = spikeJourneys * cfg.Rate
			g.push(item{at: w.from + g.expGap(w.rate), kind: itemSpike, inc: i})
		}
		g.windows = append(g.windows, w)
	}
	// Start the simulation before the start and drop what happens until then, so that the
	// journeys in flight at the start are those of a steady state.
	g.warming = true
	g.push(item{at: t0 - int64(warmup) + g.expGap(g.peakRate), kind: itemArrival})
	for g.queue.top().at < t0 {
		g.advance()
	}
	g.warming = false
	g.now = t0
	return g, nil
}

// Next returns the next event, advancing the simulated time as far as needed.
func (g *Generator) Next() event.Event {
	for {
		if e, ok := g.advance(); ok {
			return e
		}
	}
}

// Generate returns the next n events.
func (g *Generator) Generate(n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// Due returns up to n of the events due at or before now, oldest first; the rest stay for the
// next call.
func (g *Generator) Due(now time.Time, n int) []event.Event {
	limit := now.UnixNano()
	var out []event.Event
	for len(out) < n && g.queue.top().at <= limit {
		if e, ok := g.advance(); ok {
			out = append(out, e)
		}
	}
	return out
}

// Now returns the simulated time: when the last event returned was sent. An event's
// occurred_at equals it, except for late events (earlier) and duplicates (the original's).
func (g *Generator) Now() time.Time { return time.Unix(0, g.now).In(g.loc) }

// advance processes the earliest item of the queue; ok reports whether it produced an event.
func (g *Generator) advance() (e event.Event, ok bool) {
	it := g.queue.pop()
	g.now = it.at
	switch it.kind {
	case itemArrival:
		g.push(item{at: it.at + g.expGap(g.peakRate), kind: itemArrival})
		// Thinning (Lewis and Shedler): candidates come at the peak rate and are kept with
		// probability rate(t) / peak, which gives a Poisson process of rate rate(t).
		if g.diurnal && g.rng.Float64()*(1+diurnalAmplitude) >= diurnal(time.Unix(0, it.at).In(g.loc)) {
			return e, false
		}
		return g.emit(g.newJourney(), it.at), true
	case itemSpike:
		w := g.windows[it.inc]
		if next := it.at + g.expGap(w.rate); next < w.to {
			g.push(item{at: next, kind: itemSpike, inc: it.inc})
		}
		return g.emit(g.newSpikeJourney(w.channel), it.at), true
	case itemStep:
		return g.emit(it.j, it.at), true
	case itemResend:
		return *it.ev, true
	}
	panic("demo: unknown queue item")
}

// emit produces the journey's event due at, schedules its next step, and makes the event late
// or sends it again now and then.
func (g *Generator) emit(j *journey, at int64) event.Event {
	e := g.step(j, at)
	if j.phase != phaseDone {
		g.push(item{at: j.next, kind: itemStep, j: j})
	}
	if g.warming {
		return e
	}
	if g.lateShare > 0 && g.rng.Float64() < g.lateShare {
		late := math.Exp(math.Log(float64(lateMin)) + g.rng.Float64()*math.Log(float64(lateMax)/float64(lateMin)))
		e.OccurredAt = e.OccurredAt.Add(-time.Duration(late)).Truncate(time.Millisecond)
	}
	if g.dupShare > 0 && g.rng.Float64() < g.dupShare {
		dup := clone(e)
		g.push(item{at: at + int64(dupMin) + g.rng.Int64N(int64(dupMax-dupMin)), kind: itemResend, ev: &dup})
	}
	return e
}

// expGap draws the gap to the next event of a Poisson process of the rate (per second).
func (g *Generator) expGap(rate float64) int64 {
	return int64(g.rng.ExpFloat64() / rate * float64(time.Second))
}

func (g *Generator) push(it item) {
	it.seq = g.queue.seq
	g.queue.seq++
	g.queue.push(it)
}

// clone copies an event deeply, so that a duplicate does not share pointers with the original.
func clone(e event.Event) event.Event {
	c := e
	c.CSAT, c.NPS, c.CES = clonePtr(e.CSAT), clonePtr(e.NPS), clonePtr(e.CES)
	c.Sentiment, c.WaitMS, c.HandleMS = clonePtr(e.Sentiment), clonePtr(e.WaitMS), clonePtr(e.HandleMS)
	if e.Attributes != nil {
		c.Attributes = make(map[string]string, len(e.Attributes))
		for k, v := range e.Attributes {
			c.Attributes[k] = v
		}
	}
	return c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// eventsPerJourney is the mean number of events of a journey without incidents, measured once
// on 50,000 simulated journeys; it turns the event rate into a journey arrival rate.
var eventsPerJourney = sync.OnceValue(func() float64 {
	g := &Generator{rng: rand.New(rand.NewPCG(1, 2)), warming: true}
	const n = 50_000
	events := 0
	for range n {
		j := g.newJourney()
		for at := int64(0); ; at = j.next {
			g.step(j, at)
			events++
			if j.phase == phaseDone {
				break
			}
		}
	}
	return float64(events) / n
})

// The event queue: a binary min-heap of items by time, then by insertion order, so that a
// run is reproducible.

type itemKind uint8

const (
	itemArrival itemKind = iota // a candidate journey start
	itemSpike                   // a journey start of a spike incident
	itemStep                    // the next event of a journey
	itemResend                  // a duplicate of an event already sent
)

type item struct {
	at   int64
	seq  uint64
	kind itemKind
	inc  int          // itemSpike: index of the window
	j    *journey     // itemStep
	ev   *event.Event // itemResend
}

type queue struct {
	items []item
	seq   uint64
}

func (q *queue) less(a, b int) bool {
	x, y := &q.items[a], &q.items[b]
	return x.at < y.at || x.at == y.at && x.seq < y.seq
}

func (q *queue) top() *item { return &q.items[0] }

func (q *queue) push(it item) {
	q.items = append(q.items, it)
	for i := len(q.items) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.items[i], q.items[p] = q.items[p], q.items[i]
		i = p
	}
}

func (q *queue) pop() item {
	it := q.items[0]
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	q.items[last] = item{} // drop the references
	q.items = q.items[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && q.less(l, m) {
			m = l
		}
		if r < last && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q.items[i], q.items[m] = q.items[m], q.items[i]
		i = m
	}
	return it
}
