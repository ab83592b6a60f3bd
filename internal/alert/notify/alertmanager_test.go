package notify

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/alert/notify/notifytest"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

func csatAlert(channel string) Alert {
	return Alert{
		Labels: map[string]string{
			"alertname": "CSATBelowTarget", "metric": "csat", "moment": "smot",
			"channel": channel, "severity": "warning",
		},
		Annotations: map[string]string{
			"summary":     "CSAT of smot › " + channel + " is below its target",
			"description": "CSAT 71% (n=412, 95% CI 66–75%) is below the 80% target.",
		},
		StartsAt:     time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond),
		GeneratorURL: "http://truthboard.test/drilldown?moment=smot&channel=" + channel,
		Status:       StatusFiring,
	}
}

// TestAlertmanagerDelivers pushes an alert to a real Alertmanager and follows it through: it is
// listed with its labels, routed to the receiver, kept firing past its first endsAt by the
// resends, then resolved. The same alert sent by the Webhook sender has the same payload shape
// as Alertmanager's own notification.
func TestAlertmanagerDelivers(t *testing.T) {
	viaAM := newReceiver(t, nil)
	direct := newReceiver(t, nil)
	base := notifytest.StartAlertmanager(t, viaAM.URL+"/from-alertmanager")

	urls, err := ParseAlertmanagerURLs(base)
	if err != nil {
		t.Fatal(err)
	}
	am, err := NewAlertmanager(AlertmanagerConfig{URLs: urls, ResendInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	am.Start()
	defer closeNow(t, am)
	wh, err := NewWebhook(WebhookConfig{URLs: []string{direct.URL}, Receiver: "test", ExternalURL: base})
	if err != nil {
		t.Fatal(err)
	}
	wh.Start()
	defer closeNow(t, wh)

	a := csatAlert("voice")
	fp := Fingerprint(a.Labels)
	am.Send([]Alert{a})
	wh.Send([]Alert{a})

	// Listed by Alertmanager, as sent.
	var listed notifytest.GettableAlert
	notifytest.Eventually(t, "listed by Alertmanager", func() bool {
		var ok bool
		listed, ok = notifytest.ListAlerts(t, base)["CSATBelowTarget"]
		return ok
	})
	if !maps.Equal(listed.Labels, a.Labels) || !maps.Equal(listed.Annotations, a.Annotations) {
		t.Errorf("Alertmanager lists labels %v annotations %v, want %v %v", listed.Labels, listed.Annotations, a.Labels, a.Annotations)
	}
	if listed.Fingerprint != fp {
		t.Errorf("Alertmanager's fingerprint %s, Fingerprint() %s", listed.Fingerprint, fp)
	}
	if listed.Status.State != "active" || !listed.StartsAt.Equal(a.StartsAt) || listed.GeneratorURL != a.GeneratorURL {
		t.Errorf("Alertmanager lists state %q startsAt %s generatorURL %q, want active %s %q",
			listed.Status.State, listed.StartsAt, listed.GeneratorURL, a.StartsAt, a.GeneratorURL)
	}
	if len(listed.Receivers) != 1 || listed.Receivers[0].Name != "test" {
		t.Errorf("routed to %v, want the receiver test", listed.Receivers)
	}

	// Routed by Alertmanager to the receiver, and sent directly: the same payload, field for field.
	amIdx, amFiring := viaAM.WaitFor(t, "firing from Alertmanager", func(p WebhookPayload) bool { return p.Status == StatusFiring })
	directIdx, directFiring := direct.WaitFor(t, "firing from the Webhook sender", func(p WebhookPayload) bool { return p.Status == StatusFiring })
	if got, want := jsonShape(direct.Raw(t, directIdx)), jsonShape(viaAM.Raw(t, amIdx)); got != want {
		t.Errorf("the webhook payload's fields differ from Alertmanager's:\n ours: %s\n  its: %s", got, want)
	}
	for _, p := range []WebhookPayload{amFiring, directFiring} {
		if p.Version != "4" || p.GroupKey != `{}:{alertname="CSATBelowTarget"}` || len(p.Alerts) != 1 {
			t.Fatalf("payload version %q groupKey %q with %d alerts", p.Version, p.GroupKey, len(p.Alerts))
		}
		got := p.Alerts[0]
		if got.Fingerprint != fp || got.Status != StatusFiring || !maps.Equal(got.Labels, a.Labels) ||
			!got.StartsAt.Equal(a.StartsAt) || !got.EndsAt.IsZero() || got.GeneratorURL != a.GeneratorURL {
			t.Errorf("payload alert %+v, want %+v with fingerprint %s and no endsAt", got, a, fp)
		}
	}
	if !maps.Equal(amFiring.CommonLabels, directFiring.CommonLabels) || !maps.Equal(amFiring.GroupLabels, directFiring.GroupLabels) ||
		amFiring.ExternalURL != directFiring.ExternalURL {
		t.Errorf("group fields differ: Alertmanager %+v, ours %+v", amFiring, directFiring)
	}

	// Alertmanager resolves by itself an alert whose endsAt passes: the resends move it on, so
	// the alert is still firing after its first endsAt.
	firstEnd := listed.EndsAt
	if d := time.Until(firstEnd); d < 2*time.Second || d > 5*time.Second {
		t.Errorf("endsAt %s ahead, want 4 resend intervals (4s)", d)
	}
	notifytest.Eventually(t, "firing past its first endsAt", func() bool {
		now := time.Now()
		l, ok := notifytest.ListAlerts(t, base)["CSATBelowTarget"]
		if !ok {
			t.Fatalf("Alertmanager dropped the firing alert (first endsAt %s, now %s)", firstEnd, now)
		}
		return now.After(firstEnd.Add(500*time.Millisecond)) && l.EndsAt.After(now)
	})

	// Resolved: no longer listed, and notified as resolved, with its end time.
	a.Status, a.EndsAt = StatusResolved, time.Now().UTC().Truncate(time.Millisecond)
	am.Send([]Alert{a})
	wh.Send([]Alert{a})
	notifytest.Eventually(t, "resolved in Alertmanager", func() bool {
		_, ok := notifytest.ListAlerts(t, base)["CSATBelowTarget"]
		return !ok
	})
	for _, r := range []*receiver{viaAM, direct} {
		_, p := r.WaitFor(t, "resolved", func(p WebhookPayload) bool { return p.Status == StatusResolved })
		if len(p.Alerts) != 1 || p.Alerts[0].Status != StatusResolved || !p.Alerts[0].EndsAt.Equal(a.EndsAt) || p.Alerts[0].Fingerprint != fp {
			t.Errorf("resolved payload %+v, want the alert resolved at %s", p, a.EndsAt)
		}
	}
	// A receiver has a payload before its sender has read the answer and counted it.
	notifytest.Eventually(t, "both notifications counted", func() bool {
		return am.Stats()[0].Sent >= 2 && wh.Stats()[0].Sent >= 2
	})
	for _, s := range append(am.Stats(), wh.Stats()...) {
		if s.Sent < 2 || s.Failed != 0 || s.Retries != 0 || s.Dropped != 0 {
			t.Errorf("%s stats %+v: want 2 or more sent, none failed", s.Kind, s)
		}
	}
	if got := wh.Stats()[0].Sent; got != 2 {
		t.Errorf("the webhook sent %d notifications, want 2 (firing, resolved): a status change is notified once", got)
	}
}

// jsonShape is the field names of a JSON value, recursively (the names inside labels and
// annotations are the alert's, not the format's, and are left out).
func jsonShape(v any) string {
	switch v := v.(type) {
	case map[string]any:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if strings.HasSuffix(k, "Labels") || strings.HasSuffix(k, "Annotations") || k == "labels" || k == "annotations" {
				parts = append(parts, k)
				continue
			}
			parts = append(parts, k+jsonShape(v[k]))
		}
		return "{" + strings.Join(parts, " ") + "}"
	case []any:
		if len(v) == 0 {
			return "[]"
		}
		return "[" + jsonShape(v[0]) + "]"
	default:
		return ""
	}
}

// TestAlertmanagerOutage puts a proxy between the sender and a real Alertmanager and takes
// Alertmanager away (connections refused), then makes it hang: the sender retries (counted)
// without blocking Send, its queue keeps at most QueueSize alerts (the oldest dropped, counted)
// and one state per alert (the newest), and once Alertmanager answers again it holds the
// newest state of every alert that was kept.
func TestAlertmanagerOutage(t *testing.T) {
	rcv := newReceiver(t, nil)
	base := notifytest.StartAlertmanager(t, rcv.URL)
	proxy := storetest.NewProxy(t, strings.TrimPrefix(base, "http://"))
	am, err := NewAlertmanager(AlertmanagerConfig{
		URLs:           []string{"http://" + proxy.Addr()},
		ResendInterval: time.Hour, // no resend during the test: what arrives is what was queued
		Delivery: Delivery{
			QueueSize: 100, Timeout: 200 * time.Millisecond, MaxAttempts: 1 << 20,
			MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	am.Start()
	defer closeNow(t, am)
	stats := func() DestinationStats { return am.Stats()[0] }
	named := func(name string, status Status) Alert {
		a := csatAlert("chat")
		a.Labels["alertname"], a.Status = name, status
		return a
	}

	proxy.Cut()
	am.Send([]Alert{named("X", StatusFiring)})
	notifytest.Eventually(t, "retrying X", func() bool { return stats().Retries >= 2 })

	// The worker holds X; Y and Z1…Z150 wait, 151 alerts in a queue of 100: the 51 oldest go.
	am.Send([]Alert{named("Y", StatusFiring)})
	for i := 1; i <= 150; i++ {
		am.Send([]Alert{named(fmt.Sprintf("Z%d", i), StatusFiring)})
	}
	if s := stats(); s.Queued != 100 || s.Dropped != 51 {
		t.Fatalf("queued %d dropped %d, want 100 and 51", s.Queued, s.Dropped)
	}
	// A new state of a waiting alert replaces it: nothing more is dropped.
	am.Send([]Alert{named("Z150", StatusResolved)})
	if s := stats(); s.Queued != 100 || s.Dropped != 51 {
		t.Fatalf("after resolving a waiting alert: queued %d dropped %d, want 100 and 51", s.Queued, s.Dropped)
	}
	// X resolved waits behind the firing X in flight, and pushes out the oldest waiting, Z51.
	am.Send([]Alert{named("X", StatusResolved)})
	if s := stats(); s.Queued != 100 || s.Dropped != 52 {
		t.Fatalf("after resolving X: queued %d dropped %d, want 100 and 52", s.Queued, s.Dropped)
	}

	// Alertmanager hangs: attempts fail by the request timeout.
	proxy.Hold()
	proxy.Restore()
	failed := stats().Failed
	notifytest.Eventually(t, "timing out on a hung Alertmanager", func() bool { return stats().Failed >= failed+2 })
	proxy.Release()

	var want []string
	for i := 52; i < 150; i++ {
		want = append(want, fmt.Sprintf("Z%d", i))
	}
	slices.Sort(want)
	var got []string
	notifytest.Eventually(t, "Alertmanager holding the newest states", func() bool {
		got = slices.Sorted(maps.Keys(notifytest.ListAlerts(t, base)))
		return slices.Equal(got, want) && stats().Queued == 0
	})
	s := stats()
	if s.Sent < 2 || s.AlertsSent != 101 || s.Dropped != 52 {
		t.Errorf("stats %+v: want X, then the 100 waiting alerts, sent; 52 dropped", s)
	}
	if s.Failed < 4 || s.Retries != s.Failed {
		t.Errorf("stats %+v: every failed attempt of X was retried until it passed", s)
	}
}

// TestAlertmanagerRefusesBadAlert shows that what Alertmanager refuses (a 400) is not retried,
// and that an alert Alertmanager would refuse never reaches it, so it cannot make the valid
// alerts of its batch fail.
func TestAlertmanagerRefusesBadAlert(t *testing.T) {
	base := notifytest.StartAlertmanager(t, "http://127.0.0.1:9/unused")
	am, err := NewAlertmanager(AlertmanagerConfig{URLs: []string{base}})
	if err != nil {
		t.Fatal(err)
	}
	am.Start()
	defer closeNow(t, am)

	good := csatAlert("email")
	bad := csatAlert("app")
	bad.Labels["bad-label"] = "x"
	am.Send([]Alert{bad, good})
	// Alertmanager lists the alert as soon as it has it; the sender counts it once it has read
	// the answer, a moment later.
	notifytest.Eventually(t, "the valid alert listed and counted as sent", func() bool {
		_, ok := notifytest.ListAlerts(t, base)["CSATBelowTarget"]
		return ok && am.Stats()[0].AlertsSent == 1
	})
	if s := am.Stats()[0]; s.Dropped != 1 || s.Failed != 0 || s.AlertsSent != 1 {
		t.Errorf("stats %+v: want the invalid alert dropped, the valid one sent", s)
	}

	// Bypass the validation to see Alertmanager's own answer to a bad alert.
	d := am.dests[0]
	d.push("bad", 1, postableAlert{Labels: map[string]string{"bad-label": "x"}, StartsAt: time.Now()})
	notifytest.Eventually(t, "the refused alert dropped", func() bool { return am.Stats()[0].Dropped == 2 })
	if s := am.Stats()[0]; s.Failed != 1 || s.Retries != 0 {
		t.Errorf("stats %+v: a 400 is one failed attempt, not retried", s)
	}
	resp, err := http.Get(base + "/-/healthy")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("Alertmanager unhealthy after the bad alert: %v", err)
	}
	resp.Body.Close()
}

// TestAlertmanagerCloseDelivers shows that Close delivers what waits when Alertmanager answers:
// a resolve given just before shutdown is not lost.
func TestAlertmanagerCloseDelivers(t *testing.T) {
	base := notifytest.StartAlertmanager(t, "http://127.0.0.1:9/unused")
	am, err := NewAlertmanager(AlertmanagerConfig{URLs: []string{base}})
	if err != nil {
		t.Fatal(err)
	}
	a := csatAlert("store")
	am.Send([]Alert{a}) // before Start: waits in the queue
	am.Start()
	notifytest.Eventually(t, "listed", func() bool { _, ok := notifytest.ListAlerts(t, base)["CSATBelowTarget"]; return ok })
	a.Status = StatusResolved
	am.Send([]Alert{a})
	ctx, cancel := context.WithTimeout(context.Background(), notifytest.WaitLimit)
	defer cancel()
	if err := am.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := am.workers.running.Load(); n != 0 {
		t.Fatalf("%d goroutines still running after Close returned", n)
	}
	if _, ok := notifytest.ListAlerts(t, base)["CSATBelowTarget"]; ok {
		t.Error("the resolve given before Close did not reach Alertmanager")
	}
	am.Send([]Alert{a}) // a repeat: nothing to send
	if s := am.Stats()[0]; s.AlertsSent != 2 || s.Dropped != 0 {
		t.Errorf("stats %+v: want both states sent, nothing dropped", s)
	}
	am.Send([]Alert{csatAlert("web")}) // after Close: counted, not sent
	if s := am.Stats()[0]; s.AlertsSent != 2 || s.Dropped != 1 {
		t.Errorf("stats %+v: want the alert given after Close dropped", s)
	}
}
