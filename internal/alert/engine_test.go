package alert

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
)

// t0 is the time of the first evaluation of the tests.
var t0 = time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)

var voice = Key{"service", "voice"}

// csatCell is a cell with n CSAT answers, top2 of them 4 or 5 (and as many events, none
// negative, so the other metrics have nothing to say).
func csatCell(n, top2 uint64) rollup.Counts {
	return rollup.Counts{Events: n, CSATN: n, CSATTop2: top2}
}

// grid is the counts of several cells: every moment on web, voice and chat, each like c.
func grid(c rollup.Counts) map[Key]rollup.Counts {
	m := map[Key]rollup.Counts{}
	for _, mo := range []string{"zmot", "fmot", "smot", "tmot", "service"} {
		for _, ch := range []string{"web", "voice", "chat"} {
			m[Key{mo, ch}] = c
		}
	}
	return m
}

// with returns a copy of m with cell k set to c.
func with(m map[Key]rollup.Counts, k Key, c rollup.Counts) map[Key]rollup.Counts {
	out := map[Key]rollup.Counts{}
	for key, v := range m {
		out[key] = v
	}
	out[k] = c
	return out
}

// changeRules are the default rules but volume's, whose counts these tests do not model.
func changeRules() []Rule {
	return slices.DeleteFunc(DefaultRules(), func(r Rule) bool { return r.Metric == Volume })
}

func newEngine(t *testing.T, rules []Rule) *Engine {
	t.Helper()
	e, err := NewEngine(Config{Rules: rules, Clock: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// eval evaluates e at now with the same current and baseline counts for every query.
func eval(e *Engine, now time.Time, cur, base map[Key]rollup.Counts) Result {
	var in Input
	in.Now = now
	for _, q := range e.Queries(now) {
		in.Data = append(in.Data, Data{Query: q, Current: cur, Baseline: base})
	}
	return e.Evaluate(in)
}

// moves summarises transitions as "alertname moment/channel from→to".
func moves(ts []Transition) []string {
	var out []string
	for _, t := range ts {
		l := t.Alert.Labels
		out = append(out, l["alertname"]+" "+l["moment"]+"/"+l["channel"]+" "+string(t.From)+"→"+string(t.To))
	}
	return out
}

var (
	// The baseline: 82% CSAT of 3,100 answers in every cell; the current window: 82% of 240.
	baseline = grid(csatCell(3100, 2542))
	steady   = grid(csatCell(240, 197))
	// The designed incident: service › voice at 61% (146 of 240).
	dropped = with(steady, voice, csatCell(240, 146))
)

// TestDesignedDropFiresOnceAndResolvesOnce: a 21-point CSAT drop on 240 answers fires exactly
// the expected alert after the pending period, and its recovery resolves it once.
func TestDesignedDropFiresOnceAndResolvesOnce(t *testing.T) {
	e := newEngine(t, changeRules())
	res := eval(e, t0, dropped, baseline)
	if got, want := moves(res.Transitions), []string{"CSATDrop service/voice inactive→pending"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first evaluation: %v, want %v", got, want)
	}
	a := res.Transitions[0].Alert
	wantLabels := map[string]string{"alertname": "CSATDrop", "metric": "csat", "moment": "service", "channel": "voice", "severity": "warning"}
	if !reflect.DeepEqual(a.Labels, wantLabels) || a.Fingerprint != Fingerprint(wantLabels) {
		t.Errorf("labels %v, fingerprint %s", a.Labels, a.Fingerprint)
	}
	if got, want := a.Annotations["summary"], "CSAT for service › voice dropped to 61% (n=240) from 82% (n=3,100) in the trailing 3 h, p<0.0001"; got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
	if d := a.Annotations["description"]; !strings.Contains(d, "p < 0.00001 for a drop of at least 5 points") || !strings.Contains(d, "the 3 h before it") {
		t.Errorf("description %q", d)
	}
	o := a.Observation
	if o.N != 240 || o.BaselineN != 3100 || o.P > 1e-10 || o.Z > -7 || !near(o.Change, 146.0/240-0.82, 1e-3) {
		t.Errorf("observation %+v", o)
	}

	var fired, resolved int
	count := func(ts []Transition) {
		for _, tr := range ts {
			if tr.To == Firing && tr.From != Firing {
				fired++
			}
			if tr.To == Resolved {
				resolved++
			}
			if tr.Alert.Fingerprint != a.Fingerprint {
				t.Errorf("a transition of another alert: %v", moves([]Transition{tr}))
			}
		}
	}
	// Pending for 2 minutes (ticks of 10 s), then firing.
	now := t0
	for range 11 {
		now = now.Add(10 * time.Second)
		res = eval(e, now, dropped, baseline)
		if len(res.Transitions) != 0 {
			t.Fatalf("at %s, before the pending period ended: %v", now.Sub(t0), moves(res.Transitions))
		}
		if len(res.Active) != 1 || res.Active[0].State != Pending {
			t.Fatalf("at %s: active %v, want one pending alert", now.Sub(t0), res.Active)
		}
	}
	now = now.Add(10 * time.Second) // 2 minutes after t0
	res = eval(e, now, dropped, baseline)
	if got, want := moves(res.Transitions), []string{"CSATDrop service/voice pending→firing"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after 2 minutes: %v, want %v", got, want)
	}
	count(res.Transitions)
	if fa := res.Transitions[0].Alert; !fa.FiredAt.Equal(now) || !fa.ActiveAt.Equal(t0) {
		t.Errorf("fired at %v (active at %v), want %v (%v)", fa.FiredAt, fa.ActiveAt, now, t0)
	}
	// Firing for 10 more minutes, then recovered for 5.
	for range 60 {
		now = now.Add(10 * time.Second)
		count(eval(e, now, dropped, baseline).Transitions)
	}
	recoveredAt := now.Add(10 * time.Second)
	for range 30 {
		now = now.Add(10 * time.Second)
		res = eval(e, now, steady, baseline)
		count(res.Transitions)
		if resolved == 1 && len(res.Transitions) == 1 {
			if got := now.Sub(recoveredAt); got != 2*time.Minute {
				t.Errorf("resolved %s after the recovery began, want 2m", got)
			}
			if s := res.Transitions[0].Alert.Annotations["summary"]; s != "CSAT for service › voice recovered: 82% (n=240) against 82% (n=3,100) in the trailing 3 h, p=1" {
				t.Errorf("resolved summary %q", s)
			}
		}
	}
	if fired != 1 || resolved != 1 {
		t.Fatalf("fired %d times and resolved %d times, want once each", fired, resolved)
	}
	if len(res.Active) != 0 {
		t.Fatalf("active after the recovery: %v", res.Active)
	}
}

// TestSmallNDoesNotFire: the same 21-point drop on 30 answers is not significant at the
// default level, and on 20 it is below the minimum n: neither fires, however long it lasts.
func TestSmallNDoesNotFire(t *testing.T) {
	for _, c := range []rollup.Counts{csatCell(30, 18), csatCell(20, 12)} {
		e := newEngine(t, changeRules())
		cur := with(steady, voice, c)
		for i := range 60 {
			if res := eval(e, t0.Add(time.Duration(i)*10*time.Second), cur, baseline); len(res.Transitions) != 0 {
				t.Fatalf("%d of %d answers: %v", c.CSATTop2, c.CSATN, moves(res.Transitions))
			}
		}
		r := changeRules()[0]
		obs, v := judge(&r, &c, new(csatCell(3100, 2542)), 15*time.Minute, 3*time.Hour)
		if c.CSATN == 30 && (v != hold || obs.P < DefaultAlpha || obs.P > 0.05) {
			t.Errorf("30 answers: verdict %v, p %v; want a p between the rule's alpha and 0.05 (neither firing nor recovered)", v, obs.P)
		}
		if c.CSATN == 20 && v != noData {
			t.Errorf("20 answers: verdict %v, want not enough data", v)
		}
	}
}

// borderline finds, for n current answers against the baseline, the most answers of 4 or 5
// that still breach (p just below alpha) and checks that one more is between the two
// conditions.
func borderline(t *testing.T, n uint64) (breaching, between rollup.Counts) {
	t.Helper()
	r := changeRules()[0]
	base := csatCell(3100, 2542)
	for x := n; x > 0; x-- {
		c := csatCell(n, x)
		if _, v := judge(&r, &c, &base, 15*time.Minute, 3*time.Hour); v == breach {
			next := csatCell(n, x+1)
			if _, v := judge(&r, &next, &base, 15*time.Minute, 3*time.Hour); v != hold {
				t.Fatalf("%d of %d breaches but %d is not between breach and recovery (%v)", x, n, x+1, v)
			}
			return c, next
		}
	}
	t.Fatal("no breach at all")
	return
}

// TestBorderlineDataDoesNotFlap feeds data that crosses the firing threshold at every tick
// (10 s apart): p just below alpha, then just above. It must never fire. Once a real breach
// has fired, data that swings between breaching, the band between and recovered must neither
// fire it again nor resolve it, until the recovery holds for 2 minutes without a break: one
// firing, one resolution in all.
func TestBorderlineDataDoesNotFlap(t *testing.T) {
	breaching, between := borderline(t, 100)
	recovered := csatCell(100, 82)
	e := newEngine(t, changeRules())
	var fired, resolved, transitions int
	now := t0
	tick := func(c rollup.Counts) Result {
		now = now.Add(10 * time.Second)
		res := eval(e, now, with(steady, voice, c), baseline)
		for _, tr := range res.Transitions {
			transitions++
			if tr.To == Firing && tr.From != Firing {
				fired++
			}
			if tr.To == Resolved {
				resolved++
			}
		}
		return res
	}
	// An hour of alternation across the firing threshold: pending, dropped, pending…
	for i := range 360 {
		tick([]rollup.Counts{breaching, between}[i%2])
	}
	if fired != 0 {
		t.Fatalf("borderline data fired %d times", fired)
	}
	// A hold, a recovery, a breach in turn: also never long enough.
	for i := range 360 {
		tick([]rollup.Counts{breaching, recovered, between}[i%3])
	}
	if fired != 0 {
		t.Fatalf("alternating data fired %d times", fired)
	}
	// A real breach of 3 minutes fires once.
	for range 18 {
		tick(breaching)
	}
	if fired != 1 {
		t.Fatalf("3 minutes of breach fired %d times, want 1", fired)
	}
	// Swinging between breach, the band and recovery for an hour: still the same firing alert.
	for i := range 360 {
		res := tick([]rollup.Counts{recovered, between, recovered, breaching, recovered}[i%5])
		if len(res.Active) != 1 || res.Active[0].State != Firing {
			t.Fatalf("tick %d: active %v, want the firing alert", i, res.Active)
		}
	}
	// Recovered, then in the band, in turn for half an hour: the recovery never holds 2
	// minutes without a break, so the alert keeps firing.
	for i := range 180 {
		tick([]rollup.Counts{recovered, recovered, between}[i%3])
	}
	if fired != 1 || resolved != 0 {
		t.Fatalf("swinging data: fired %d, resolved %d; want 1 and 0", fired, resolved)
	}
	for range 13 {
		tick(recovered)
	}
	if fired != 1 || resolved != 1 {
		t.Fatalf("after 2 minutes of recovery: fired %d, resolved %d; want 1 and 1", fired, resolved)
	}
	t.Logf("%d transitions in %s of borderline data (pending and dropped ones included)", transitions, now.Sub(t0))
}

// TestPendingDropsWithoutFiring: a breach that lasts less than For drops back to inactive,
// with a transition pending → inactive and no firing.
func TestPendingDropsWithoutFiring(t *testing.T) {
	e := newEngine(t, changeRules())
	eval(e, t0, dropped, baseline)
	res := eval(e, t0.Add(time.Minute), steady, baseline)
	if got, want := moves(res.Transitions), []string{"CSATDrop service/voice pending→inactive"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	if s := res.Transitions[0].Alert.Annotations["summary"]; !strings.HasSuffix(s, "for less than 2m") {
		t.Errorf("summary of a dropped alert: %q", s)
	}
	if res := eval(e, t0.Add(3*time.Minute), steady, baseline); len(res.Transitions)+len(res.Active) != 0 {
		t.Fatalf("after the drop: %v, active %v", moves(res.Transitions), res.Active)
	}
}

func TestForZeroFiresAtOnce(t *testing.T) {
	rules := changeRules()
	rules[0].For, rules[0].KeepFiringFor = 0, 0
	e := newEngine(t, rules)
	if got, want := moves(eval(e, t0, dropped, baseline).Transitions), []string{"CSATDrop service/voice inactive→firing"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	if got, want := moves(eval(e, t0.Add(time.Second), steady, baseline).Transitions), []string{"CSATDrop service/voice firing→resolved"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}

// fire brings the designed drop to firing and returns the time of its last evaluation.
func fire(t *testing.T, e *Engine) time.Time {
	t.Helper()
	eval(e, t0, dropped, baseline)
	now := t0.Add(2 * time.Minute)
	if res := eval(e, now, dropped, baseline); len(res.Active) != 1 || res.Active[0].State != Firing {
		t.Fatalf("the designed drop is not firing: %v", res.Active)
	}
	return now
}

// TestMissingDataHoldsAFiringAlert: a channel that falls silent during an incident has not
// recovered: the alert keeps firing, and resolves without a verdict only after the no-data
// timeout. A failed read (its query missing from the input) changes nothing at all.
func TestMissingDataHoldsAFiringAlert(t *testing.T) {
	e := newEngine(t, changeRules())
	now := fire(t, e)
	if res := e.Evaluate(Input{Now: now.Add(3 * time.Hour)}); len(res.Transitions) != 0 || len(res.Active) != 1 {
		t.Fatalf("a failed read: %v, active %d", moves(res.Transitions), len(res.Active))
	}
	silent := with(steady, voice, rollup.Counts{})
	for i := 1; i <= 59; i++ {
		res := eval(e, now.Add(time.Duration(i)*time.Minute), silent, baseline)
		if len(res.Transitions) != 0 || len(res.Active) != 1 || res.Active[0].State != Firing {
			t.Fatalf("%d min without data: %v, active %v", i, moves(res.Transitions), res.Active)
		}
		if i == 1 && !strings.Contains(res.Active[0].Annotations["summary"], "too few answers to judge since 14:03 UTC (n=0)") {
			t.Errorf("summary while silent: %q", res.Active[0].Annotations["summary"])
		}
	}
	res := eval(e, now.Add(61*time.Minute), silent, baseline)
	if got, want := moves(res.Transitions), []string{"CSATDrop service/voice firing→resolved"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after the no-data timeout: %v, want %v", got, want)
	}
	if s := res.Transitions[0].Alert.Annotations["summary"]; s != "CSAT for service › voice: too few answers to judge for 1h (n=0, 30 needed); resolved without a verdict" {
		t.Errorf("summary %q", s)
	}
}

// TestRestoreKeepsFiringWithoutAnnouncingAgain plays a restart: a new engine restored from the
// first one's active alerts (as store.LatestAlerts returns them) keeps the alert firing, with
// its times and acknowledgement, and emits nothing while the drop lasts; the recovery then
// resolves it once.
func TestRestoreKeepsFiringWithoutAnnouncingAgain(t *testing.T) {
	first := newEngine(t, changeRules())
	now := fire(t, first)
	if _, err := first.Acknowledge(first.Active()[0].Fingerprint, "ops"); err != nil {
		t.Fatal(err)
	}
	before := first.Active()

	second := newEngine(t, changeRules())
	second.Restore(before, nil)
	for i := 1; i <= 10; i++ {
		res := eval(second, now.Add(time.Duration(i)*10*time.Second), dropped, baseline)
		if len(res.Transitions) != 0 {
			t.Fatalf("after the restart: %v", moves(res.Transitions))
		}
		a := res.Active[0]
		if len(res.Active) != 1 || a.State != Firing || a.Fingerprint != before[0].Fingerprint ||
			!a.FiredAt.Equal(before[0].FiredAt) || !a.ActiveAt.Equal(t0) || a.AcknowledgedBy != "ops" {
			t.Fatalf("after the restart: %+v, want %+v", res.Active, before)
		}
	}
	var resolved int
	for i := range 20 {
		for _, tr := range eval(second, now.Add(time.Duration(100+i*10)*time.Second), steady, baseline).Transitions {
			if tr.From != Firing || tr.To != Resolved {
				t.Fatalf("unexpected %v", moves([]Transition{tr}))
			}
			resolved++
		}
	}
	if resolved != 1 {
		t.Fatalf("resolved %d times, want 1", resolved)
	}
}

// TestRemovedRuleResolves: when the rules change, the alerts of a rule that is gone resolve
// (firing) or drop (pending) at the next evaluation; those of the other rules stay.
func TestRemovedRuleResolves(t *testing.T) {
	e := newEngine(t, changeRules())
	now := fire(t, e)
	abandon := with(dropped, Key{"fmot", "web"}, rollup.Counts{Events: 240, CSATN: 240, CSATTop2: 197, WithOutcome: 240, Abandoned: 60})
	base := with(baseline, Key{"fmot", "web"}, rollup.Counts{Events: 3100, CSATN: 3100, CSATTop2: 2542, WithOutcome: 3100, Abandoned: 155})
	if got := moves(eval(e, now, abandon, base).Transitions); !reflect.DeepEqual(got, []string{"AbandonmentRise fmot/web inactive→pending"}) {
		t.Fatalf("abandonment: %v", got)
	}
	if err := e.SetRules(changeRules()[1:]); err != nil { // CSATDrop gone
		t.Fatal(err)
	}
	res := eval(e, now.Add(time.Second), abandon, base)
	if got, want := moves(res.Transitions), []string{"CSATDrop service/voice firing→resolved"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	if s := res.Transitions[0].Alert.Annotations["summary"]; !strings.HasSuffix(s, "; the rule was removed or changed") {
		t.Errorf("summary %q", s)
	}
	rules := changeRules()[1:]
	rules[3].Severity = "critical" // AbandonmentRise: new labels, a new alert
	if err := e.SetRules(rules); err != nil {
		t.Fatal(err)
	}
	res = eval(e, now.Add(2*time.Second), abandon, base)
	if got, want := moves(res.Transitions), []string{"AbandonmentRise fmot/web inactive→pending", "AbandonmentRise fmot/web pending→inactive"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	if res.Transitions[0].Alert.Labels["severity"] != "critical" {
		t.Errorf("the new alert has labels %v", res.Transitions[0].Alert.Labels)
	}
}

func TestSilenceAndAcknowledge(t *testing.T) {
	e := newEngine(t, changeRules())
	s, err := e.Silence([]Matcher{{"alertname", "CSATDrop"}, {"moment", "service"}}, t0.Add(time.Hour), "planned IVR migration")
	if err != nil {
		t.Fatal(err)
	}
	other := with(dropped, Key{"fmot", "web"}, csatCell(240, 146))
	res := eval(e, t0, other, baseline)
	if len(res.Transitions) != 2 {
		t.Fatalf("%v", moves(res.Transitions))
	}
	for _, tr := range res.Transitions {
		want := tr.Alert.Labels["moment"] == "service"
		if tr.Alert.Silenced != want || want != reflect.DeepEqual(tr.Alert.SilencedBy, []string{s.ID}) {
			t.Errorf("%v: silenced %v by %v, want %v", moves([]Transition{tr}), tr.Alert.Silenced, tr.Alert.SilencedBy, want)
		}
	}
	if got := e.Silences(); len(got) != 1 || got[0].ID != s.ID || got[0].Reason != "planned IVR migration" {
		t.Errorf("Silences = %+v", got)
	}
	if _, err := e.Expire(s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Expire(s.ID); !errors.Is(err, ErrUnknownSilence) {
		t.Errorf("expiring twice: %v", err)
	}
	for _, a := range e.Active() {
		if a.Silenced {
			t.Errorf("still silenced after the silence expired: %v", a.Labels)
		}
	}

	fp := res.Transitions[1].Alert.Fingerprint // service › voice
	tr, err := e.Acknowledge(fp, " ops@example.com ")
	if err != nil {
		t.Fatal(err)
	}
	if tr.From != Pending || tr.To != Pending || tr.Alert.AcknowledgedBy != "ops@example.com" || !tr.Alert.AcknowledgedAt.Equal(t0) {
		t.Errorf("acknowledgement %+v", tr)
	}
	if _, err := e.Acknowledge("0000000000000000", "ops"); !errors.Is(err, ErrUnknownAlert) {
		t.Errorf("acknowledging an unknown alert: %v", err)
	}
	if _, err := e.Acknowledge(fp, " "); err == nil {
		t.Error("an acknowledgement by nobody was accepted")
	} else if ie := (*InputError)(nil); !errors.As(err, &ie) || ie.Field != "by" {
		t.Errorf("an acknowledgement by nobody: %v, want an error naming the field by", err)
	}
	// The acknowledgement ends with the alert: after it drops and comes back, it is new.
	eval(e, t0.Add(time.Minute), steady, baseline)
	res = eval(e, t0.Add(2*time.Minute), dropped, baseline)
	if len(res.Active) != 1 || res.Active[0].AcknowledgedBy != "" {
		t.Errorf("a new alert carries the old acknowledgement: %+v", res.Active)
	}

	bad := []struct {
		matchers []Matcher
		until    time.Time
		reason   string
		field    string
		want     string
	}{
		{nil, t0.Add(time.Hour), "x", "matchers", "at least one matcher"},
		{[]Matcher{{"chanel", "voice"}}, t0.Add(time.Hour), "x", "matchers[0].name", `"chanel" is not a label`},
		{[]Matcher{{"channel", "voice"}, {"channel", ""}}, t0.Add(time.Hour), "x", "matchers[1].value", "give a value"},
		{[]Matcher{{"channel", "voice"}}, t0, "x", "ends_at", "must end in the future"},
		{[]Matcher{{"channel", "voice"}}, t0.Add(100 * 24 * time.Hour), "x", "ends_at", "at most 90 days"},
		{[]Matcher{{"channel", "voice"}}, t0.Add(time.Hour), "  ", "reason", "say why"},
	}
	for _, b := range bad {
		_, err := e.Silence(b.matchers, b.until, b.reason)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != b.field || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Silence(%v, %v, %q) = %v, want %q naming the field %s", b.matchers, b.until, b.reason, err, b.want, b.field)
		}
	}
}

// TestEveryMetricJudged: for each default rule, a designed bad change breaches, a change below
// the minimum does not, and too few data are not judged.
func TestEveryMetricJudged(t *testing.T) {
	var waitBase, waitSlow, waitBitSlow [metric.Buckets]uint64
	waitBase[metric.BucketOf(30_000)], waitBase[metric.BucketOf(120_000)] = 2700, 300
	waitSlow[metric.BucketOf(30_000)], waitSlow[metric.BucketOf(300_000)] = 120, 120
	waitBitSlow[metric.BucketOf(30_000)], waitBitSlow[metric.BucketOf(40_000)] = 120, 120
	tests := []struct {
		metric          Metric
		base, bad, fine rollup.Counts
		few             rollup.Counts // below a minimum n
	}{
		{NPS, rollup.Counts{NPSN: 3000, NPSPromoters: 1200, NPSDetractors: 600},
			rollup.Counts{NPSN: 240, NPSPromoters: 40, NPSDetractors: 120},
			rollup.Counts{NPSN: 240, NPSPromoters: 90, NPSDetractors: 60},
			rollup.Counts{NPSN: 29, NPSPromoters: 0, NPSDetractors: 29}},
		{CES, rollup.Counts{CESN: 3000, CESSum: 16500},
			rollup.Counts{CESN: 240, CESSum: 960},
			rollup.Counts{CESN: 240, CESSum: 1300},
			rollup.Counts{CESN: 10, CESSum: 10}},
		{NegativeRate, rollup.Counts{Events: 3000, Negative: 300},
			rollup.Counts{Events: 240, Negative: 60},
			rollup.Counts{Events: 240, Negative: 30},
			rollup.Counts{Events: 20, Negative: 20}},
		{Abandonment, rollup.Counts{Events: 3000, WithOutcome: 3000, Abandoned: 150},
			rollup.Counts{Events: 240, WithOutcome: 240, Abandoned: 40},
			rollup.Counts{Events: 240, WithOutcome: 240, Abandoned: 15},
			rollup.Counts{Events: 20, WithOutcome: 20, Abandoned: 20}},
		{WaitP90, rollup.Counts{Wait: waitBase}, rollup.Counts{Wait: waitSlow}, rollup.Counts{Wait: waitBitSlow}, rollup.Counts{}},
		{Volume, rollup.Counts{Events: 3000}, rollup.Counts{Events: 1000}, rollup.Counts{Events: 2000}, rollup.Counts{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.metric), func(t *testing.T) {
			r := DefaultRules()[slices.Index(Metrics, tt.metric)]
			curExp, baseExp := r.Window, 3*time.Hour
			if r.Baseline == LastWeek {
				baseExp = r.Window
			}
			if o, v := judge(&r, &tt.bad, &tt.base, curExp, baseExp); v != breach {
				t.Errorf("bad change: verdict %v, observation %+v; want a breach", v, o)
			}
			if o, v := judge(&r, &tt.fine, &tt.base, curExp, baseExp); v == breach {
				t.Errorf("small change: breach, observation %+v", o)
			}
			if o, v := judge(&r, &tt.few, &tt.base, curExp, baseExp); v != noData && tt.metric != Volume {
				t.Errorf("few data: verdict %v, observation %+v; want no verdict", v, o)
			}
			if _, v := judge(&r, &tt.bad, &tt.few, curExp, baseExp); v != noData {
				t.Errorf("a baseline with few data: verdict %v; want no verdict", v)
			}
		})
	}
	// A channel that falls silent is the clearest volume drop of all.
	r := DefaultRules()[slices.Index(Metrics, Volume)]
	if o, v := judge(&r, &rollup.Counts{}, &rollup.Counts{Events: 3000}, time.Hour, time.Hour); v != breach || o.Change != -1 {
		t.Errorf("silent channel: verdict %v, observation %+v", v, o)
	}
	// Wait p90 from 0 ms (an IVR answers at once) to 3 s is no alert: a rise is measured
	// against at least 10 s. To a minute it is.
	var instant, seconds, minute [metric.Buckets]uint64
	instant[0], seconds[metric.BucketOf(3000)], minute[metric.BucketOf(60_000)] = 3000, 240, 240
	w := DefaultRules()[slices.Index(Metrics, WaitP90)]
	if o, v := judge(&w, &rollup.Counts{Wait: seconds}, &rollup.Counts{Wait: instant}, 15*time.Minute, 3*time.Hour); v == breach {
		t.Errorf("0 ms → 3 s: breach, %+v", o)
	}
	if o, v := judge(&w, &rollup.Counts{Wait: minute}, &rollup.Counts{Wait: instant}, 15*time.Minute, 3*time.Hour); v != breach {
		t.Errorf("0 ms → 1 min: verdict %v, %+v; want a breach", v, o)
	}
}

func TestTargetRule(t *testing.T) {
	r, err := ParseRule([]byte(`{"name": "VoiceCSAT", "metric": "csat", "kind": "target", "target": 0.8,
		"moment": "service", "channel": "voice", "for": "0s", "keep_firing_for": "0s", "severity": "critical"}`))
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, []Rule{r})
	if qs := e.Queries(t0); len(qs) != 1 || qs[0].Baseline.Table != "" {
		t.Fatalf("a target rule's query: %+v, want one without a baseline", qs)
	}
	// 70% of 40: the Wilson interval [55%, 83%] reaches the target: not judged bad.
	if res := eval(e, t0, with(steady, voice, csatCell(40, 28)), nil); len(res.Transitions) != 0 {
		t.Fatalf("70%% of 40: %v", moves(res.Transitions))
	}
	// 70% of 400: [65%, 74%], all below 80%: fires at once (for 0s).
	res := eval(e, t0, with(steady, voice, csatCell(400, 280)), nil)
	if got, want := moves(res.Transitions), []string{"VoiceCSAT service/voice inactive→firing"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	if s := res.Transitions[0].Alert.Annotations["summary"]; s != "CSAT for service › voice is 70% in the last 15 min (n=400, 95% interval 65%–74%), below the target of 80%" {
		t.Errorf("summary %q", s)
	}
	// Other cells are out of the rule's scope, whatever their CSAT.
	if res := eval(e, t0.Add(time.Second), grid(csatCell(400, 100)), nil); len(res.Transitions) != 0 {
		t.Errorf("out of scope: %v", moves(res.Transitions))
	}
	// 78% is still below the target, but not all of its interval: it holds.
	if res := eval(e, t0.Add(2*time.Second), with(steady, voice, csatCell(400, 312)), nil); len(res.Transitions) != 0 || len(res.Active) != 1 {
		t.Errorf("78%%: %v, %d active", moves(res.Transitions), len(res.Active))
	}
	res = eval(e, t0.Add(3*time.Second), with(steady, voice, csatCell(400, 320)), nil)
	if got, want := moves(res.Transitions), []string{"VoiceCSAT service/voice firing→resolved"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("back at 80%%: %v, want %v", got, want)
	}
	if s := res.Transitions[0].Alert.Annotations["summary"]; s != "CSAT for service › voice is back at 80% (n=400), within the target of 80%" {
		t.Errorf("summary %q", s)
	}
}

func TestQueries(t *testing.T) {
	now := time.Date(2026, 3, 2, 14, 7, 37, 500e6, time.UTC)
	e := newEngine(t, DefaultRules())
	qs := e.Queries(now)
	if len(qs) != 2 {
		t.Fatalf("%d queries for the default rules, want 2: %+v", len(qs), qs)
	}
	cur := time.Date(2026, 3, 2, 14, 8, 0, 0, time.UTC) // the end of the 30 s step filling now
	want := Query{ID: "15m|trailing3h",
		Current:  Span{"overview_30s", cur.Add(-15 * time.Minute), cur},
		Baseline: Span{"overview_1m", time.Date(2026, 3, 2, 10, 53, 0, 0, time.UTC), time.Date(2026, 3, 2, 13, 53, 0, 0, time.UTC)},
		Part:     15 * time.Minute}
	if !reflect.DeepEqual(qs[0], want) {
		t.Errorf("query 0 = %+v\nwant %+v", qs[0], want)
	}
	hour := time.Date(2026, 3, 2, 14, 8, 0, 0, time.UTC) // the end of the 2 min step filling now
	want = Query{ID: "1h|last_week",
		Current:  Span{"overview_2m", hour.Add(-time.Hour), hour},
		Baseline: Span{"overview_1m", hour.Add(-time.Hour - week), hour.Add(-week)},
		Part:     15 * time.Minute}
	if !reflect.DeepEqual(qs[1], want) {
		t.Errorf("query 1 = %+v\nwant %+v", qs[1], want)
	}

	// A target rule of the same window reads the same current window: no more queries.
	target, err := ParseRule([]byte(`{"name": "T", "metric": "csat", "kind": "target", "target": 0.8}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetRules(append([]Rule{target}, DefaultRules()...)); err != nil {
		t.Fatal(err)
	}
	if got := e.Queries(now); len(got) != 2 || got[0].ID != "15m|trailing3h" {
		t.Errorf("the default rules and a 15m target rule: %d queries %+v, want the default rules' two", len(got), got)
	}
	if got := moves(eval(e, now, with(steady, voice, csatCell(400, 280)), nil).Transitions); !slices.Contains(got, "T service/voice inactive→pending") {
		t.Errorf("the target rule did not judge the shared read: %v", got)
	}

	filtered, err := ParseRules([]byte(`{"defaults": false, "rules": [
		{"name": "A", "metric": "csat", "kind": "change", "moment": "service", "filters": {"region": "north"}},
		{"name": "B", "metric": "nps", "kind": "change", "moment": "service", "filters": {"region": "north"}},
		{"name": "C", "metric": "csat", "kind": "change", "moment": "service", "window": "24h", "filters": {"agent_team": "billing"}},
		{"name": "D", "metric": "csat", "kind": "target", "target": 0.8, "channel": "voice"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetRules(filtered); err != nil {
		t.Fatal(err)
	}
	qs = e.Queries(now)
	if len(qs) != 3 {
		t.Fatalf("%d queries, want 3 (A and B share one): %+v", len(qs), qs)
	}
	if f := qs[0].Filters; !reflect.DeepEqual(f, rollup.Filters{Moment: []string{"service"}, Region: []string{"north"}}) ||
		qs[0].Current.Table != "detail_1m" || qs[0].Baseline.Table != "detail_1m" {
		t.Errorf("filtered query %+v", qs[0])
	}
	if qs[1].Current.Table != "detail_1h" || qs[1].Baseline.Table != "detail_1m" || qs[1].Baseline.To.Sub(qs[1].Baseline.From) != 3*time.Hour {
		t.Errorf("24h filtered query %+v", qs[1])
	}
	if qs[2].Current.Table != "overview_30s" || qs[2].Baseline.Table != "" || len(qs[2].Filters.Channel) != 0 {
		t.Errorf("target query %+v: the overview is read whole, without a baseline", qs[2])
	}
}

// TestFingerprintIsStable: the fingerprint of a label set never changes (alerts in the history
// and in Alertmanager are found by it), whatever the order the labels were given in.
func TestFingerprintIsStable(t *testing.T) {
	labels := map[string]string{"alertname": "CSATDrop", "metric": "csat", "moment": "service", "channel": "voice", "severity": "warning"}
	// FNV-1a over "alertname" 0xff "CSATDrop" 0xff "channel" 0xff "voice" 0xff … (names sorted),
	// computed apart from Go.
	if got, want := Fingerprint(labels), "40f5c0ccc00d9ecc"; got != want {
		t.Errorf("Fingerprint = %s, want %s", got, want)
	}
	if Fingerprint(labels) == Fingerprint(map[string]string{"alertname": "CSATDrop"}) {
		t.Error("different labels, same fingerprint")
	}
}

func near(a, b, tol float64) bool { return a-b <= tol && b-a <= tol }

// TestOverdispersedBaselineHoldsBack: a CSAT of 70% against 82% on 240 answers is a
// significant drop if answers were independent; but when the baseline's own 15-minute windows
// swing between 70% and 94%, 70% is a level it reaches every half hour, and no alert fires.
// The same baseline without that swing fires.
func TestOverdispersedBaselineHoldsBack(t *testing.T) {
	cur := with(steady, voice, csatCell(240, 168))
	run := func(swing bool) []string {
		e := newEngine(t, changeRules())
		var got []string
		for i := range 15 {
			now := t0.Add(time.Duration(i) * 10 * time.Second)
			in := Input{Now: now}
			for _, q := range e.Queries(now) {
				d := Data{Query: q, Current: cur, Baseline: baseline, BaselineParts: map[Key][]rollup.Counts{}}
				// 13 parts of the trailing 3 h (10:52 to 13:52 in parts cut at :00, :15, …),
				// 2542 answers of 4 or 5 of 3100 in all, as in the baseline.
				for p := range 13 {
					top2 := uint64(210)
					if swing {
						top2 = []uint64{168, 224}[p%2]
					}
					d.BaselineParts[voice] = append(d.BaselineParts[voice], csatCell(240, top2))
				}
				in.Data = append(in.Data, d)
			}
			got = append(got, moves(e.Evaluate(in).Transitions)...)
		}
		return got
	}
	if got := run(true); len(got) != 0 {
		t.Errorf("a drop to a level the baseline keeps reaching: %v", got)
	}
	if got, want := run(false), []string{"CSATDrop service/voice inactive→pending", "CSATDrop service/voice pending→firing"}; !reflect.DeepEqual(got, want) {
		t.Errorf("the same drop against a steady baseline: %v, want %v", got, want)
	}
	r := changeRules()[0]
	var ps []part
	for p := range 13 {
		ps = append(ps, part{counts: csatCell(240, []uint64{168, 224}[p%2]), exposure: 15 * time.Minute})
	}
	c, b := csatCell(240, 168), csatCell(3100, 2542)
	if o, _ := judge(&r, &c, &b, 15*time.Minute, 3*time.Hour, ps...); o.Dispersion < 5 {
		t.Errorf("dispersion of a baseline swinging ±12 points on 240 answers: %v, want above 5", o.Dispersion)
	}
}

// TestBaselineReadOncePerMinute: a baseline moves once a minute, so after an evaluation the
// engine marks it known until then; judged from its own copy, the alerts move exactly as with
// a fresh read. A known baseline the engine no longer has (the rules changed) skips its rules
// for one evaluation rather than judging them against nothing.
func TestBaselineReadOncePerMinute(t *testing.T) {
	e := newEngine(t, changeRules())
	now := time.Date(2026, 3, 2, 14, 0, 10, 0, time.UTC)
	if qs := e.Queries(now); qs[0].BaselineKnown {
		t.Fatalf("a baseline never read is known: %+v", qs[0])
	}
	lastFrom := e.Queries(now)[0].Current.From
	eval(e, now, dropped, baseline) // pending
	var fired bool
	for i := 1; i <= 12; i++ {
		at := now.Add(time.Duration(i) * 10 * time.Second)
		in := Input{Now: at}
		for _, q := range e.Queries(at) {
			// 14:00:10 to 14:02:10: the window starts about 13:45 to 13:47, and the baseline
			// ends at the minute the window starts in: known within each minute, not across.
			wantKnown := q.Current.From.Truncate(time.Minute) == lastFrom.Truncate(time.Minute)
			lastFrom = q.Current.From
			if q.BaselineKnown != wantKnown {
				t.Fatalf("at %s: known %v, want %v", at.Format(time.TimeOnly), q.BaselineKnown, wantKnown)
			}
			d := Data{Query: q, Current: dropped}
			if !q.BaselineKnown {
				d.Baseline = baseline
			}
			in.Data = append(in.Data, d)
		}
		for _, tr := range e.Evaluate(in).Transitions {
			fired = fired || tr.To == Firing
		}
	}
	if !fired {
		t.Fatal("the drop did not fire when judged against the engine's copy of the baseline")
	}

	rules := changeRules()
	for i := range rules {
		rules[i].BaselineHours = 4
	}
	at := now.Add(130 * time.Second)
	stale := e.Queries(at) // asked before the rules change…
	if err := e.SetRules(rules); err != nil {
		t.Fatal(err)
	}
	in := Input{Now: at}
	for _, q := range stale {
		q.ID = e.Queries(at)[0].ID // …answered after it, under the new query's name
		in.Data = append(in.Data, Data{Query: q, Current: steady})
	}
	if res := e.Evaluate(in); len(res.Transitions) != 0 || len(res.Active) != 1 {
		t.Errorf("a baseline the engine does not have: %v, %d active; want nothing judged", moves(res.Transitions), len(res.Active))
	}
}
