package demo

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/truthboard/truthboard/internal/event"
)

// start of the simulated runs: a Tuesday morning.
var testStart = time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)

func newTestGenerator(t testing.TB, change func(*Config)) *Generator {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Rate, cfg.Diurnal, cfg.DuplicateShare, cfg.LateShare = 50, false, 0, 0
	if change != nil {
		change(&cfg)
	}
	g, err := NewGenerator(cfg, testStart)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// specProblems checks an event against the rules of SPEC.md ("Event"), written out here
// rather than taken from package event, as the server will see the event at sentAt.
func specProblems(e *event.Event, sentAt time.Time) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	text := func(field, s string, lo, hi int) {
		if n := utf8.RuneCountInString(s); n < lo || n > hi || !utf8.ValidString(s) {
			bad("%s %q: want %d–%d characters", field, s, lo, hi)
		}
	}
	enum := func(field, s string, list []string, required bool) {
		if (s != "" || required) && !slices.Contains(list, s) {
			bad("%s %q: not in %v", field, s, list)
		}
	}
	text("event_id", e.EventID, 1, 100)
	switch {
	case e.OccurredAt.IsZero():
		bad("occurred_at missing")
	case e.OccurredAt.After(sentAt.Add(5 * time.Minute)):
		bad("occurred_at %v more than 5 min after %v", e.OccurredAt, sentAt)
	case e.OccurredAt.Before(sentAt.Add(-30 * 24 * time.Hour)):
		bad("occurred_at %v older than the retention", e.OccurredAt)
	}
	enum("moment", e.Moment, []string{"zmot", "fmot", "smot", "tmot", "service"}, true)
	enum("channel", e.Channel, []string{"web", "app", "store", "voice", "ivr", "chat", "messaging", "email", "social", "review_site", "field_service"}, true)
	text("touchpoint", e.Touchpoint, 1, 100)
	enum("stage", e.Stage, []string{"initial_contact", "purchase", "delivery_installation", "service_interaction", "post_purchase_follow_up"}, false)
	enum("outcome", e.Outcome, []string{"resolved", "unresolved", "abandoned", "transferred", "escalated", "completed", "failed"}, false)
	text("customer_id", e.CustomerID, 0, 256)
	text("journey_id", e.JourneyID, 0, 256)
	if e.CSAT != nil && (*e.CSAT < 1 || *e.CSAT > 5) {
		bad("csat %d", *e.CSAT)
	}
	if e.NPS != nil && *e.NPS > 10 {
		bad("nps %d", *e.NPS)
	}
	if e.CES != nil && (*e.CES < 1 || *e.CES > 7) {
		bad("ces %d", *e.CES)
	}
	if s := e.Sentiment; s != nil && !(*s >= -1 && *s <= 1) {
		bad("sentiment %v", *s)
	}
	for name, v := range map[string]*uint32{"wait_ms": e.WaitMS, "handle_ms": e.HandleMS} {
		if v != nil && *v > 86_400_000 {
			bad("%s %d", name, *v)
		}
	}
	for name, v := range map[string]string{"region": e.Region, "product": e.Product, "segment": e.Segment, "agent_team": e.AgentTeam} {
		text(name, v, 0, 64)
	}
	if len(e.Attributes) > 25 {
		bad("%d attributes", len(e.Attributes))
	}
	for k, v := range e.Attributes {
		text("attribute key", k, 1, 40)
		text("attribute "+k, v, 0, 100)
	}
	return p
}

func TestGeneratedEventsAreValid(t *testing.T) {
	stages := map[string]string{"zmot": "initial_contact", "fmot": "purchase", "smot": "delivery_installation",
		"service": "service_interaction", "tmot": "post_purchase_follow_up"}
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"steady", nil},
		{"incidents, duplicates and late events", func(c *Config) {
			c.Diurnal, c.DuplicateShare, c.LateShare = true, 0.05, 0.05
			for _, s := range []string{"voice:outage:+1m:5m", "web:outage:+2m:5m", "email:outage:+0s:10m",
				"field_service:outage:+1m:5m", "review_site:outage:+1m:5m", "chat:spike:+3m:3m",
				"store:spike:+1m:2m", "social:spike:+1m:2m", "review_site:spike:+1m:2m", "field_service:spike:+1m:2m"} {
				inc, err := ParseIncident(s)
				if err != nil {
					t.Fatal(err)
				}
				c.Incidents = append(c.Incidents, inc)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGenerator(t, tt.change)
			seen := map[string]map[string]bool{"moment": {}, "channel": {}, "stage": {}, "outcome": {}, "moment/channel": {}}
			problems := 0
			for range 30_000 {
				e := g.Next()
				for _, p := range specProblems(&e, g.Now()) {
					if problems++; problems <= 10 {
						t.Errorf("event %s: %s", e.EventID, p)
					}
				}
				if want := stages[e.Moment]; e.Stage != want {
					t.Fatalf("event %s: moment %s with stage %q, want %q", e.EventID, e.Moment, e.Stage, want)
				}
				if (e.AgentTeam != "") && e.Moment != "service" {
					t.Fatalf("event %s: agent_team %q outside service", e.EventID, e.AgentTeam)
				}
				if e.JourneyID == "" || e.CustomerID == "" || e.Region == "" || e.Product == "" || e.Segment == "" {
					t.Fatalf("event %s lacks a journey, customer or dimension: %+v", e.EventID, e)
				}
				seen["moment"][e.Moment] = true
				seen["channel"][e.Channel] = true
				seen["stage"][e.Stage] = true
				seen["outcome"][e.Outcome] = true
				seen["moment/channel"][e.Moment+"/"+e.Channel] = true
			}
			for kind, list := range map[string][]string{"moment": event.Moments, "channel": event.Channels, "stage": event.Stages, "outcome": event.Outcomes} {
				for _, v := range list {
					if !seen[kind][v] {
						t.Errorf("no event with %s %s in 30,000", kind, v)
					}
				}
			}
			t.Logf("%d moment/channel pairs", len(seen["moment/channel"]))
		})
	}
}

func TestReproducible(t *testing.T) {
	a := newTestGenerator(t, func(c *Config) { c.DuplicateShare, c.LateShare, c.Seed = 0.01, 0.01, 42 })
	b := newTestGenerator(t, func(c *Config) { c.DuplicateShare, c.LateShare, c.Seed = 0.01, 0.01, 42 })
	other := newTestGenerator(t, func(c *Config) { c.DuplicateShare, c.LateShare, c.Seed = 0.01, 0.01, 43 })
	x, y, z := a.Generate(5000), b.Generate(5000), other.Generate(5000)
	if !reflect.DeepEqual(x, y) {
		t.Error("two generators with the same seed and start differ")
	}
	if reflect.DeepEqual(x[:100], z[:100]) {
		t.Error("generators with seeds 42 and 43 give the same events")
	}
}

func TestRate(t *testing.T) {
	peak := time.Date(2025, 3, 4, 13, 50, 0, 0, time.UTC)  // 20 minutes around 14:00
	trough := time.Date(2025, 3, 4, 1, 50, 0, 0, time.UTC) // and around 02:00
	tests := []struct {
		name    string
		start   time.Time
		diurnal bool
		want    float64 // times Rate
	}{
		{"flat", testStart, false, 1},
		{"diurnal peak", peak, true, 1 + diurnalAmplitude},
		{"diurnal trough", trough, true, 1 - diurnalAmplitude},
		{"diurnal off at the trough", trough, false, 1},
	}
	const rate, window = 50.0, 20 * time.Minute
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Rate, cfg.Diurnal, cfg.DuplicateShare, cfg.LateShare = rate, tt.diurnal, 0, 0
			g, err := NewGenerator(cfg, tt.start)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for g.Next(); g.Now().Before(tt.start.Add(window)); g.Next() {
				n++
			}
			got := float64(n) / window.Seconds() / rate
			t.Logf("rate = %.3f × Rate", got)
			// cos is above 0.98 within 10 minutes of the peak; the rest is sampling noise.
			if math.Abs(got-tt.want) > 0.06*tt.want {
				t.Errorf("rate = %.3f × Rate, want %.2f × Rate ± 6%%", got, tt.want)
			}
		})
	}
}

// share is a count out of a total, with a two-proportion z statistic against another.
type share struct{ k, n int }

func (s share) p() float64 { return float64(s.k) / float64(s.n) }

func (s share) z(o share) float64 {
	p := float64(s.k+o.k) / float64(s.n+o.n)
	return (s.p() - o.p()) / math.Sqrt(p*(1-p)*(1/float64(s.n)+1/float64(o.n)))
}

func TestIncidents(t *testing.T) {
	const phase = 20 * time.Minute // before the incident, then during it
	type stats struct {
		csat, abandoned share
		volume          map[string]int // by moment/channel
	}
	collect := func(t *testing.T, incident string) (before, during stats) {
		inc, err := ParseIncident(incident)
		if err != nil {
			t.Fatal(err)
		}
		g := newTestGenerator(t, func(c *Config) { c.Rate, c.Incidents = 100, Incidents{inc} })
		before.volume, during.volume = map[string]int{}, map[string]int{}
		for {
			e := g.Next()
			at := g.Now().Sub(testStart)
			if at >= 2*phase {
				return before, during
			}
			s := &before
			if at >= phase {
				s = &during
			}
			s.volume[e.Moment+"/"+e.Channel]++
			if e.Channel != inc.Channel {
				continue
			}
			if e.CSAT != nil {
				s.csat.n++
				if *e.CSAT >= 4 {
					s.csat.k++
				}
			}
			if e.Outcome != "" {
				s.abandoned.n++
				if e.Outcome == "abandoned" {
					s.abandoned.k++
				}
			}
		}
	}

	t.Run("voice outage", func(t *testing.T) {
		before, during := collect(t, "voice:outage:+20m:20m")
		t.Logf("voice CSAT top-2-box %.2f (n %d) → %.2f (n %d); abandonment %.2f (n %d) → %.2f (n %d)",
			before.csat.p(), before.csat.n, during.csat.p(), during.csat.n,
			before.abandoned.p(), before.abandoned.n, during.abandoned.p(), during.abandoned.n)
		if z := before.csat.z(during.csat); z < 5 || before.csat.p()-during.csat.p() < 0.2 {
			t.Errorf("voice CSAT top-2-box %.2f → %.2f (z = %.1f): want a drop of at least 0.2", before.csat.p(), during.csat.p(), z)
		}
		if z := during.abandoned.z(before.abandoned); z < 5 || during.abandoned.p()-before.abandoned.p() < 0.2 {
			t.Errorf("voice abandonment %.2f → %.2f (z = %.1f): want a rise of at least 0.2", before.abandoned.p(), during.abandoned.p(), z)
		}
		for _, ch := range []string{"chat", "messaging", "email"} {
			if b, d := before.volume["service/"+ch], during.volume["service/"+ch]; float64(d) < 1.15*float64(b) {
				t.Errorf("%s volume %d → %d: want customers to switch from voice to it", ch, b, d)
			}
		}
		if b, d := before.volume["service/voice"], during.volume["service/voice"]; float64(d) > 0.8*float64(b) {
			t.Errorf("voice volume %d → %d: want a fall", b, d)
		}
	})

	t.Run("chat spike", func(t *testing.T) {
		before, during := collect(t, "chat:spike:+20m:20m")
		if b, d := before.volume["service/chat"], during.volume["service/chat"]; float64(d) < 3*float64(b) {
			t.Errorf("chat volume %d → %d: want a burst", b, d)
		}
		if b, d := before.volume["zmot/web"], during.volume["zmot/web"]; math.Abs(float64(d-b)) > 0.1*float64(b) {
			t.Errorf("web volume %d → %d: a chat spike should not move it", b, d)
		}
	})
}

func TestDuplicatesReuseEventIDs(t *testing.T) {
	g := newTestGenerator(t, func(c *Config) { c.DuplicateShare = 0.05 })
	type sent struct {
		e  event.Event
		at time.Time
	}
	first := map[string]sent{}
	dups := 0
	const n = 40_000
	for range n {
		e := g.Next()
		orig, ok := first[e.EventID]
		if !ok {
			first[e.EventID] = sent{clone(e), g.Now()}
			continue
		}
		dups++
		if !reflect.DeepEqual(e, orig.e) {
			t.Fatalf("duplicate of %s differs from the original:\n%+v\n%+v", e.EventID, e, orig.e)
		}
		if d := g.Now().Sub(orig.at); d < dupMin || d > dupMax {
			t.Errorf("duplicate of %s sent %v after it, want %v–%v", e.EventID, d, dupMin, dupMax)
		}
	}
	if got := float64(dups) / float64(n-dups); math.Abs(got-0.05) > 0.006 {
		t.Errorf("duplicate share %.4f, want 0.05", got)
	}
}

func TestLateEvents(t *testing.T) {
	g := newTestGenerator(t, func(c *Config) { c.LateShare = 0.05 })
	late := 0
	const n = 40_000
	for range n {
		e := g.Next()
		age := g.Now().Sub(e.OccurredAt)
		switch {
		case age < 0:
			t.Fatalf("event %s occurred at %v, after it was sent at %v", e.EventID, e.OccurredAt, g.Now())
		case age > time.Minute:
			late++
			if age < lateMin || age > lateMax+time.Millisecond {
				t.Errorf("late event %s is %v late, want %v–%v", e.EventID, age, lateMin, lateMax)
			}
		case age > time.Millisecond:
			t.Errorf("event %s is %v late: neither on time nor late", e.EventID, age)
		}
	}
	if got := float64(late) / n; math.Abs(got-0.05) > 0.006 {
		t.Errorf("late share %.4f, want 0.05", got)
	}
}

// TestScoresAgreeWithinJourney checks the hidden quality: a journey's scores in one moment
// predict its scores in another.
func TestScoresAgreeWithinJourney(t *testing.T) {
	g := newTestGenerator(t, func(c *Config) { c.Rate = 100 })
	type pair struct{ service, tmot []float64 }
	journeys := map[string]*pair{}
	for range 150_000 {
		e := g.Next()
		if e.CSAT == nil {
			continue
		}
		p := journeys[e.JourneyID]
		if p == nil {
			p = &pair{}
			journeys[e.JourneyID] = p
		}
		switch e.Moment {
		case "service":
			p.service = append(p.service, float64(*e.CSAT))
		case "tmot":
			p.tmot = append(p.tmot, float64(*e.CSAT))
		}
	}
	var xs, ys []float64
	for _, p := range journeys {
		if len(p.service) > 0 && len(p.tmot) > 0 {
			xs, ys = append(xs, p.service[0]), append(ys, p.tmot[0])
		}
	}
	r := correlation(xs, ys)
	t.Logf("service vs. tmot CSAT of the same journey: r = %.2f over %d journeys", r, len(xs))
	if len(xs) < 500 || r < 0.3 {
		t.Errorf("r = %.2f over %d journeys: want at least 0.3 over 500", r, len(xs))
	}
}

func correlation(xs, ys []float64) float64 {
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= float64(len(xs))
	my /= float64(len(ys))
	var sxy, sxx, syy float64
	for i := range xs {
		dx, dy := xs[i]-mx, ys[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	return sxy / math.Sqrt(sxx*syy)
}

func TestNewGeneratorRejectsBadModel(t *testing.T) {
	_, err := NewGenerator(Config{Rate: -1}, testStart)
	if err == nil {
		t.Fatal("NewGenerator accepted --rate -1")
	}
}

func BenchmarkNext(b *testing.B) {
	g := newTestGenerator(b, func(c *Config) { c.DuplicateShare, c.LateShare = 0.01, 0.01 })
	b.ReportAllocs()
	for b.Loop() {
		g.Next()
	}
}
