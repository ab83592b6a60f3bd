package evaluator_test

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/alert/alerttest"
	"github.com/truthboard/truthboard/internal/alert/evaluator"
	"github.com/truthboard/truthboard/internal/alert/notify"
	"github.com/truthboard/truthboard/internal/alert/notify/notifytest"
	"github.com/truthboard/truthboard/internal/annotation"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// publicURL is where the alerts' links point.
const publicURL = "http://truthboard.test:8080"

// clock is the evaluations' time, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// incident is the designed data of these tests, around T0 (a whole hour, three hours ago, so
// that every time of the test is in the past for Alertmanager too):
//
//   - service › voice, 40 CSAT answers a minute (600 in a 15-minute window): 85% top-2-box
//     from T0−3h20m, 55% from T0 to T0+30m, 85% again until T0+70m;
//   - service › chat, the same drop with one answer a minute: 15 in a window, too few to judge
//     (the default rules want 30), so it must never fire.
type incident struct {
	T0   time.Time
	db   *store.Store
	fp   string            // the fingerprint of the voice alert
	want map[string]string // its labels
}

func newIncident(t *testing.T) *incident {
	t.Helper()
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	db := storetest.Open(t)
	var evs []event.Event
	for _, cell := range []struct {
		channel   string
		perMinute int
	}{{"voice", 40}, {"chat", 1}} {
		for _, tr := range []alerttest.Traffic{
			{From: t0.Add(-200 * time.Minute), To: t0, Top2: 0.85},
			{From: t0, To: t0.Add(30 * time.Minute), Top2: 0.55},
			{From: t0.Add(30 * time.Minute), To: t0.Add(70 * time.Minute), Top2: 0.85},
		} {
			tr.Moment, tr.Channel, tr.PerMinute = "service", cell.channel, cell.perMinute
			evs = append(evs, tr.Events("incident")...)
		}
	}
	if err := db.InsertEvents(context.Background(), evs, t0); err != nil {
		t.Fatalf("insert the designed events: %v", err)
	}
	want := map[string]string{"alertname": "CSATDrop", "metric": "csat", "moment": "service", "channel": "voice", "severity": "warning"}
	return &incident{T0: t0, db: db, fp: alert.Fingerprint(want), want: want}
}

// at is T0 plus d and half a second: evaluations fall mid-second, as they do in a server.
func (in *incident) at(d time.Duration) time.Time { return in.T0.Add(d + 500*time.Millisecond) }

// evaluatorOn makes an evaluator of the default rules over the incident's store, on clk, with
// the senders given; it is started (restoring the history) and stopped when the test ends.
// Its loop never ticks during a test (an hour's interval): the test calls Evaluate.
func (in *incident) evaluatorOn(t *testing.T, clk *clock, webhooks, alertmanagers []evaluator.Sender) *evaluator.Evaluator {
	t.Helper()
	return in.evaluatorWith(t, clk, evaluator.Options{Webhooks: webhooks, Alertmanagers: alertmanagers})
}

// evaluatorWith is evaluatorOn with the senders and the leader of opts.
func (in *incident) evaluatorWith(t *testing.T, clk *clock, opts evaluator.Options) *evaluator.Evaluator {
	t.Helper()
	engine, err := alert.NewEngine(alert.Config{Rules: alert.DefaultRules(), Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	opts.Interval, opts.PublicURL, opts.Now, opts.Annotations = time.Hour, publicURL, clk.Now, in.db
	ev := evaluator.New(engine, in.db, opts, slog.New(slog.DiscardHandler))
	ev.Start(context.Background())
	t.Cleanup(ev.Stop)
	return ev
}

// evaluate runs one evaluation at clock time at, failing the test if it failed.
func evaluate(t *testing.T, ev *evaluator.Evaluator, clk *clock, at time.Time) {
	t.Helper()
	clk.Set(at)
	before := ev.Stats()
	ev.Evaluate(context.Background())
	if st := ev.Stats(); st.Failures != before.Failures {
		t.Fatalf("evaluation at %s failed: %s", at.Format(time.RFC3339), st.LastError)
	}
}

// fast delivery: the tests do not wait out production backoffs.
var fast = notify.Delivery{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: 2 * time.Second, MaxAttempts: 1 << 20,
	Logger: slog.New(slog.DiscardHandler)}

func webhookTo(t *testing.T, url string, d notify.Delivery) *notify.Webhook {
	t.Helper()
	wh, err := notify.NewWebhook(notify.WebhookConfig{URLs: []string{url}, ExternalURL: publicURL, Delivery: d})
	if err != nil {
		t.Fatal(err)
	}
	wh.Start()
	t.Cleanup(func() { closeNow(wh) })
	return wh
}

func alertmanagerAt(t *testing.T, base string) *notify.Alertmanager {
	t.Helper()
	am, err := notify.NewAlertmanager(notify.AlertmanagerConfig{URLs: []string{base}, Delivery: fast})
	if err != nil {
		t.Fatal(err)
	}
	am.Start()
	t.Cleanup(func() { closeNow(am) })
	return am
}

// closeNow closes a sender without waiting for its queue.
func closeNow(c interface{ Close(context.Context) error }) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Close(ctx)
}

// recorder is a Sender that keeps what the evaluator hands to delivery, call by call, as
// "status alertname moment/channel": what people are told, before any network.
type recorder struct {
	mu    sync.Mutex
	calls [][]string
}

func (r *recorder) Send(alerts []notify.Alert) {
	var call []string
	for _, a := range alerts {
		call = append(call, string(a.Status)+" "+a.Labels["alertname"]+" "+a.Labels["moment"]+"/"+a.Labels["channel"])
	}
	r.mu.Lock()
	r.calls = append(r.calls, call)
	r.mu.Unlock()
}

// take returns the calls since the last take.
func (r *recorder) take() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// activeSummary lists the active alerts as "state alertname moment/channel".
func activeSummary(as []alert.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, string(a.State)+" "+a.Labels["alertname"]+" "+a.Labels["moment"]+"/"+a.Labels["channel"])
	}
	return out
}

// checkFiring checks that the voice alert, and nothing else, is active and firing.
func (in *incident) checkFiring(t *testing.T, ev *evaluator.Evaluator, firedAt time.Time) {
	t.Helper()
	active := ev.Active()
	if len(active) != 1 || active[0].State != alert.Firing {
		t.Fatalf("active alerts %v, want only the voice CSAT drop firing", activeSummary(active))
	}
	a := active[0]
	if !maps.Equal(a.Labels, in.want) || a.Fingerprint != in.fp || !a.FiredAt.Equal(firedAt) {
		t.Errorf("firing alert %v %s fired at %s, want %v %s fired at %s", a.Labels, a.Fingerprint, a.FiredAt, in.want, in.fp, firedAt)
	}
}

// TestAlertLifecycle runs the default rules over the designed incident: the voice CSAT drop
// goes pending, fires after the pending period and is delivered once to a webhook and to a real
// Alertmanager; the thin chat cell never fires; a restart restores the firing alert without
// announcing it to the webhook again; once the data is back to normal the alert resolves once
// and both destinations hear it; the history holds each transition once.
func TestAlertLifecycle(t *testing.T) {
	in := newIncident(t)
	direct := notifytest.NewReceiver[notify.WebhookPayload](t, nil)
	viaAM := notifytest.NewReceiver[notify.WebhookPayload](t, nil)
	amBase := notifytest.StartAlertmanager(t, viaAM.URL)
	clk := &clock{}
	clk.Set(in.at(15 * time.Minute))
	wh1, am1, told1 := webhookTo(t, direct.URL, fast), alertmanagerAt(t, amBase), &recorder{}
	ev := in.evaluatorOn(t, clk, []evaluator.Sender{wh1, told1}, []evaluator.Sender{am1})
	firingCall := [][]string{{"firing CSATDrop service/voice"}}

	// Pending for the 2 minutes of the rule, announced to no one.
	for _, m := range []time.Duration{15, 16} {
		evaluate(t, ev, clk, in.at(m*time.Minute))
		if got := activeSummary(ev.Active()); !slices.Equal(got, []string{"pending CSATDrop service/voice"}) {
			t.Fatalf("at T0+%dm: active %v, want the voice CSAT drop pending", m, got)
		}
	}
	if c := told1.take(); len(c) != 0 {
		t.Fatalf("a pending alert was handed to delivery: %v", c)
	}
	firedAt := in.at(17 * time.Minute)
	evaluate(t, ev, clk, firedAt)
	in.checkFiring(t, ev, firedAt)
	if c := told1.take(); !slices.EqualFunc(c, firingCall, slices.Equal) {
		t.Fatalf("handed to delivery %v, want %v", c, firingCall)
	}
	if o := ev.Active()[0].Observation; o.N != 600 || o.Value != 0.55 || o.Baseline < 0.84 || o.BaselineN != 7200 || o.P >= 0.0001 {
		t.Errorf("observation %+v, want 600 answers at 55%% against about 85%% of 7,200 with p < 0.0001", o)
	}

	// Delivered to the webhook: version 4, firing, the labels, a link to the drill-down of
	// the cell, the fingerprint.
	_, p := direct.WaitFor(t, "firing", func(p notify.WebhookPayload) bool { return p.Status == notify.StatusFiring })
	wantURL := publicURL + "/drilldown?channel=voice&moment=service"
	if p.Version != "4" || len(p.Alerts) != 1 || p.ExternalURL != publicURL {
		t.Fatalf("payload %+v, want version 4 with one alert", p)
	}
	if a := p.Alerts[0]; a.Status != notify.StatusFiring || !maps.Equal(a.Labels, in.want) || a.GeneratorURL != wantURL ||
		a.Fingerprint != in.fp || !a.StartsAt.Equal(firedAt) || !a.EndsAt.IsZero() {
		t.Errorf("webhook alert %+v, want firing %v since %s, link %s, fingerprint %s", a, in.want, firedAt, wantURL, in.fp)
	}
	if a := p.Alerts[0]; a.Annotations["summary"] == "" {
		t.Errorf("webhook alert without a summary: %v", a.Annotations)
	}
	// Listed by Alertmanager.
	var listed notifytest.GettableAlert
	notifytest.Eventually(t, "listed by Alertmanager", func() bool {
		var ok bool
		listed, ok = notifytest.ListAlerts(t, amBase)["CSATDrop"]
		return ok
	})
	if !maps.Equal(listed.Labels, in.want) || listed.Fingerprint != in.fp || listed.GeneratorURL != wantURL ||
		listed.Status.State != "active" || !listed.StartsAt.Equal(firedAt) {
		t.Errorf("Alertmanager lists %+v, want %v (%s) active since %s linking to %s", listed, in.want, in.fp, firedAt, wantURL)
	}

	// Still firing: nothing new to deliver.
	for m := 18 * time.Minute; m <= 20*time.Minute; m += time.Minute {
		evaluate(t, ev, clk, in.at(m))
		in.checkFiring(t, ev, firedAt)
	}
	if c := told1.take(); len(c) != 0 {
		t.Fatalf("a firing alert was handed to delivery again: %v", c)
	}

	// A restart: a new engine and evaluator on the same history, new senders (a new process).
	ev.Stop()
	clk.Set(in.at(21 * time.Minute))
	wh2, am2, told2, toldAM2 := webhookTo(t, direct.URL, fast), alertmanagerAt(t, amBase), &recorder{}, &recorder{}
	ev2 := in.evaluatorOn(t, clk, []evaluator.Sender{wh2, told2}, []evaluator.Sender{am2, toldAM2})
	in.checkFiring(t, ev2, firedAt)
	// Alertmanager gets it again (it needs resends to keep it open), the webhook does not.
	if c, w := toldAM2.take(), told2.take(); !slices.EqualFunc(c, firingCall, slices.Equal) || len(w) != 0 {
		t.Fatalf("restored: handed to Alertmanager %v and to the webhooks %v, want %v and nothing", c, w, firingCall)
	}
	notifytest.Eventually(t, "the restored alert sent to Alertmanager", func() bool { return am2.Stats()[0].AlertsSent == 1 })

	// The drop ends at T0+30m; once the window holds normal data the alert recovers, and
	// resolves after 2 minutes of recovery.
	var resolvedAt time.Time
	for m := 21 * time.Minute; m <= 60*time.Minute; m += time.Minute {
		evaluate(t, ev2, clk, in.at(m))
		active := ev2.Active()
		switch {
		case len(active) == 1 && resolvedAt.IsZero():
			in.checkFiring(t, ev2, firedAt)
		case len(active) == 0 && resolvedAt.IsZero():
			resolvedAt = in.at(m)
		case len(active) != 0:
			t.Fatalf("at T0+%s, after resolving at %s: active %v", m, resolvedAt, activeSummary(active))
		}
	}
	if resolvedAt.IsZero() || resolvedAt.Before(in.T0.Add(32*time.Minute)) {
		t.Fatalf("resolved at %s, want after T0+32m (normal data from T0+30m, then 2 minutes of recovery)", resolvedAt)
	}
	t.Logf("fired at T0+%s, resolved at T0+%s", firedAt.Sub(in.T0), resolvedAt.Sub(in.T0))
	resolvedCall := [][]string{{"resolved CSATDrop service/voice"}}
	if c, a := told2.take(), toldAM2.take(); !slices.EqualFunc(c, resolvedCall, slices.Equal) || !slices.EqualFunc(a, resolvedCall, slices.Equal) {
		t.Fatalf("handed to the webhooks %v and to Alertmanager %v, want %v to both", c, a, resolvedCall)
	}

	// Resolved, to both.
	_, p = direct.WaitFor(t, "resolved", func(p notify.WebhookPayload) bool { return p.Status == notify.StatusResolved })
	if a := p.Alerts[0]; len(p.Alerts) != 1 || a.Fingerprint != in.fp || !a.EndsAt.Equal(resolvedAt) || !a.StartsAt.Equal(firedAt) {
		t.Errorf("resolved payload %+v, want %s from %s to %s", p, in.fp, firedAt, resolvedAt)
	}
	notifytest.Eventually(t, "resolved in Alertmanager", func() bool {
		_, ok := notifytest.ListAlerts(t, amBase)["CSATDrop"]
		return !ok
	})
	viaAM.WaitFor(t, "resolved, routed by Alertmanager", func(p notify.WebhookPayload) bool {
		return p.Status == notify.StatusResolved && len(p.Alerts) == 1 && p.Alerts[0].Fingerprint == in.fp
	})
	// Once each: the webhook received the firing and the resolve, nothing else (one worker
	// delivers in order, so a repeat would stand between them).
	var statuses []string
	for _, p := range direct.Payloads(t) {
		statuses = append(statuses, string(p.Status))
	}
	if !slices.Equal(statuses, []string{"firing", "resolved"}) {
		t.Errorf("the webhook received %v, want [firing resolved]", statuses)
	}

	// The history: each transition once, the restart added none; the chat cell has none.
	ts, err := in.db.AlertHistory(context.Background(), in.T0, in.T0.Add(2*time.Hour), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range slices.Backward(ts) { // oldest first
		if tr.Alert.Fingerprint != in.fp {
			t.Errorf("a transition of another alert: %s %v %s → %s", tr.At, tr.Alert.Labels, tr.From, tr.To)
			continue
		}
		got = append(got, string(tr.From)+"→"+string(tr.To)+"@"+tr.At.Sub(in.T0).String())
	}
	want := []string{
		"inactive→pending@15m0.5s", "pending→firing@17m0.5s",
		"firing→resolved@" + resolvedAt.Sub(in.T0).String(),
	}
	if !slices.Equal(got, want) {
		t.Errorf("history %v, want %v", got, want)
	}

	// One annotation tagged "alert" on the trend charts: the region from the firing to the
	// resolve, scoped to the alert's cell, the restart notwithstanding.
	notes, err := in.db.Annotations(context.Background(), annotation.Filter{From: in.T0, To: in.T0.Add(2 * time.Hour), Tags: []string{"alert"}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || notes[0].Time != firedAt.UnixMilli() || notes[0].TimeEnd != resolvedAt.UnixMilli() ||
		notes[0].Moment != "service" || notes[0].Channel != "voice" || !strings.Contains(notes[0].Text, "CSATDrop fired, then resolved") ||
		!slices.Equal(notes[0].Tags, []string{"alert", "csat"}) {
		t.Errorf("alert annotations %+v, want one region from %s to %s on service/voice", notes, firedAt, resolvedAt)
	}
}

// TestFailingWebhook runs the incident with webhooks that answer 500 and that are down: the
// evaluations go on, the alert fires, resolves and is recorded as with a healthy receiver, and
// only the senders' counters show the failures.
func TestFailingWebhook(t *testing.T) {
	in := newIncident(t)
	failing := notifytest.NewReceiver[notify.WebhookPayload](t, func(int, *http.Request) int { return http.StatusInternalServerError })
	down := notifytest.NewReceiver[notify.WebhookPayload](t, nil)
	down.Close() // nothing listens at its address any more
	clk := &clock{}
	clk.Set(in.at(15 * time.Minute))
	whFailing, whDown := webhookTo(t, failing.URL, fast), webhookTo(t, down.URL+"/hook", fast)
	ev := in.evaluatorOn(t, clk, []evaluator.Sender{whFailing, whDown}, nil)

	var firing, resolved int
	for m := 15 * time.Minute; m <= 60*time.Minute; m += time.Minute {
		evaluate(t, ev, clk, in.at(m))
		switch active := ev.Active(); {
		case m < 17*time.Minute:
			if got := activeSummary(active); !slices.Equal(got, []string{"pending CSATDrop service/voice"}) {
				t.Fatalf("at T0+%s: active %v, want the voice CSAT drop pending", m, got)
			}
		case len(active) == 1:
			in.checkFiring(t, ev, in.at(17*time.Minute))
			firing++
		default:
			if len(active) != 0 {
				t.Fatalf("at T0+%s: active %v", m, activeSummary(active))
			}
			resolved++
		}
	}
	if firing < 15 || resolved < 5 {
		t.Errorf("firing at %d evaluations, resolved at %d: want it to fire, then resolve", firing, resolved)
	}
	if st := ev.Stats(); st.Evaluations != 46 || st.Failures != 0 || st.LastError != "" {
		t.Errorf("evaluator stats %+v, want 46 evaluations without failure", st)
	}
	ts, err := in.db.AlertHistory(context.Background(), in.T0, in.T0.Add(2*time.Hour), in.fp, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 {
		t.Errorf("%d transitions recorded, want 3 (pending, firing, resolved)", len(ts))
	}
	for name, wh := range map[string]*notify.Webhook{"answering 500": whFailing, "down": whDown} {
		notifytest.Eventually(t, "retrying the webhook "+name, func() bool { return wh.Stats()[0].Retries >= 3 })
		if s := wh.Stats()[0]; s.Sent != 0 || s.Failed < 3 || s.Dropped != 0 {
			t.Errorf("webhook %s: stats %+v, want failures retried, nothing sent nor dropped", name, s)
		}
	}
	if len(failing.Payloads(t)) != 0 || failing.Requests() < 3 {
		t.Errorf("the failing receiver got %d requests, kept %d payloads", failing.Requests(), len(failing.Payloads(t)))
	}
}

// TestSilences runs the incident under silences: an alert that fires while silenced is
// announced to no one, and is announced when the silence ends while it still fires; an alert
// silenced after it was announced still has its resolve delivered, so that neither a webhook
// receiver nor Alertmanager keeps open an alert that is over.
func TestSilences(t *testing.T) {
	in := newIncident(t)
	direct := notifytest.NewReceiver[notify.WebhookPayload](t, nil)
	amBase := notifytest.StartAlertmanager(t, "http://127.0.0.1:9/unused")
	clk := &clock{}
	clk.Set(in.at(14 * time.Minute))
	told := &recorder{}
	ev := in.evaluatorOn(t, clk, []evaluator.Sender{webhookTo(t, direct.URL, fast), told}, []evaluator.Sender{alertmanagerAt(t, amBase)})
	ctx := context.Background()
	voice := []alert.Matcher{{Name: "channel", Value: "voice"}}

	// Silenced from before it goes pending until T0+20m: it fires at T0+17m, silenced.
	if _, err := ev.Silence(ctx, voice, in.T0.Add(20*time.Minute), "planned maintenance of the voice platform"); err != nil {
		t.Fatal(err)
	}
	for m := 15 * time.Minute; m < 20*time.Minute; m += time.Minute {
		evaluate(t, ev, clk, in.at(m))
	}
	if active := ev.Active(); len(active) != 1 || active[0].State != alert.Firing || !active[0].Silenced {
		t.Fatalf("active %v, want the voice alert firing and silenced", activeSummary(active))
	}
	if c := told.take(); len(c) != 0 {
		t.Fatalf("a silenced alert was handed to delivery: %v", c)
	}
	// The silence is over and the alert still fires: now people hear of it, once.
	evaluate(t, ev, clk, in.at(20*time.Minute))
	evaluate(t, ev, clk, in.at(21*time.Minute))
	if c := told.take(); !slices.EqualFunc(c, [][]string{{"firing CSATDrop service/voice"}}, slices.Equal) {
		t.Fatalf("after the silence ended: handed to delivery %v, want the firing alert once", c)
	}
	direct.WaitFor(t, "firing", func(p notify.WebhookPayload) bool { return p.Status == notify.StatusFiring })
	notifytest.Eventually(t, "listed by Alertmanager", func() bool { _, ok := notifytest.ListAlerts(t, amBase)["CSATDrop"]; return ok })

	// Silenced again while someone works on it; it resolves under the silence.
	if _, err := ev.Silence(ctx, voice, in.T0.Add(3*time.Hour), "the voice team is on it"); err != nil {
		t.Fatal(err)
	}
	for m := 22 * time.Minute; m <= 60*time.Minute; m += time.Minute {
		evaluate(t, ev, clk, in.at(m))
	}
	if active := ev.Active(); len(active) != 0 {
		t.Fatalf("active %v after the data was back to normal", activeSummary(active))
	}
	if c := told.take(); !slices.EqualFunc(c, [][]string{{"resolved CSATDrop service/voice"}}, slices.Equal) {
		t.Fatalf("handed to delivery %v, want the resolve of the announced alert, silenced or not", c)
	}
	direct.WaitFor(t, "resolved", func(p notify.WebhookPayload) bool { return p.Status == notify.StatusResolved })
	notifytest.Eventually(t, "resolved in Alertmanager", func() bool { _, ok := notifytest.ListAlerts(t, amBase)["CSATDrop"]; return !ok })
}
