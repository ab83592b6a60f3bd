package notify

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/alert/notify/notifytest"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// fast retries, so the tests do not wait out production backoffs.
var fast = Delivery{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

func newTestWebhook(t *testing.T, d Delivery, urls ...string) *Webhook {
	t.Helper()
	w, err := NewWebhook(WebhookConfig{URLs: urls, ExternalURL: "http://truthboard.test", Delivery: d})
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	t.Cleanup(func() { closeNow(t, w) })
	return w
}

// TestWebhookPayload checks the version 4 payload a receiver gets: one per alertname, the
// labels common to the group, firing while one alert fires, and no second notification of an
// alert given again in the same status.
func TestWebhookPayload(t *testing.T) {
	rcv := newReceiver(t, nil)
	w := newTestWebhook(t, fast, rcv.URL)

	voice, chat := csatAlert("voice"), csatAlert("chat")
	wait := csatAlert("voice")
	wait.Labels["alertname"], wait.Labels["metric"] = "WaitP90AboveTarget", "wait_p90"
	w.Send([]Alert{voice, chat, wait})
	w.Send([]Alert{voice, chat, wait}) // the next tick: no change
	chat.Status = StatusResolved
	w.Send([]Alert{voice, chat, wait})

	_, resolved := rcv.WaitFor(t, "with chat resolved", func(p WebhookPayload) bool {
		return len(p.Alerts) == 1 && p.Alerts[0].Status == StatusResolved
	})
	got := rcv.Payloads(t)
	if len(got) != 3 {
		t.Fatalf("%d payloads, want 3 (CSAT firing, wait firing, chat resolved): %+v", len(got), got)
	}
	csat, waitP := got[0], got[1]
	if csat.GroupKey != `{}:{alertname="CSATBelowTarget"}` || waitP.GroupKey != `{}:{alertname="WaitP90AboveTarget"}` {
		t.Errorf("group keys %q %q", csat.GroupKey, waitP.GroupKey)
	}
	for _, p := range got {
		if p.Version != "4" || p.Receiver != "truthboard" || p.ExternalURL != "http://truthboard.test" || p.TruncatedAlerts != 0 {
			t.Errorf("payload head %+v", p)
		}
	}
	if csat.Status != StatusFiring || len(csat.Alerts) != 2 {
		t.Fatalf("CSAT payload %+v, want 2 firing alerts", csat)
	}
	wantCommon := map[string]string{"alertname": "CSATBelowTarget", "metric": "csat", "moment": "smot", "severity": "warning"}
	if !maps.Equal(csat.CommonLabels, wantCommon) || !maps.Equal(csat.GroupLabels, map[string]string{"alertname": "CSATBelowTarget"}) {
		t.Errorf("commonLabels %v groupLabels %v, want %v and the alertname", csat.CommonLabels, csat.GroupLabels, wantCommon)
	}
	if _, ok := csat.CommonAnnotations["summary"]; ok || len(waitP.CommonAnnotations) != 2 {
		t.Errorf("commonAnnotations %v and %v: the summaries differ by channel, so only the single alert's are common",
			csat.CommonAnnotations, waitP.CommonAnnotations)
	}
	for i, a := range csat.Alerts {
		in := []Alert{voice, chat}[i]
		if a.Fingerprint != Fingerprint(in.Labels) || a.Labels["channel"] != in.Labels["channel"] ||
			a.Labels["moment"] != "smot" || a.Labels["metric"] != "csat" || a.GeneratorURL != in.GeneratorURL ||
			!a.StartsAt.Equal(in.StartsAt) || !a.EndsAt.IsZero() {
			t.Errorf("alert %d: %+v, want %+v", i, a, in)
		}
	}
	if r := resolved.Alerts[0]; r.Labels["channel"] != "chat" || r.EndsAt.IsZero() || r.EndsAt.Before(r.StartsAt) || resolved.Status != StatusResolved {
		t.Errorf("resolved payload %+v", resolved)
	}
}

// TestWebhookRetries runs a receiver that fails in each way a receiver fails, then recovers:
// every failed attempt is counted and retried, and the notification arrives once.
func TestWebhookRetries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(rcv *receiver, proxy *storetest.Proxy) (heal func())
	}{
		{"answers 500", func(rcv *receiver, _ *storetest.Proxy) func() {
			rcv.SetAnswer(func(int, *http.Request) int { return http.StatusInternalServerError })
			return func() { rcv.SetAnswer(nil) }
		}},
		{"answers 429", func(rcv *receiver, _ *storetest.Proxy) func() {
			rcv.SetAnswer(func(int, *http.Request) int { return http.StatusTooManyRequests })
			return func() { rcv.SetAnswer(nil) }
		}},
		{"is down", func(_ *receiver, proxy *storetest.Proxy) func() {
			proxy.Cut()
			return proxy.Restore
		}},
		{"hangs past the timeout", func(_ *receiver, proxy *storetest.Proxy) func() {
			proxy.Hold()
			return proxy.Release
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, nil)
			proxy := storetest.NewProxy(t, strings.TrimPrefix(rcv.URL, "http://"))
			heal := tc.fault(rcv, proxy)
			d := fast
			d.Timeout, d.MaxAttempts = 100*time.Millisecond, 1<<20
			w := newTestWebhook(t, d, "http://"+proxy.Addr()+"/hook")
			w.Send([]Alert{csatAlert("voice")})
			notifytest.Eventually(t, "retrying", func() bool { return w.Stats()[0].Retries >= 3 })
			heal()
			rcv.WaitFor(t, "after the receiver recovered", func(p WebhookPayload) bool { return p.Status == StatusFiring })
			notifytest.Eventually(t, "counted as sent", func() bool { return w.Stats()[0].Sent == 1 })
			s := w.Stats()[0]
			if s.Failed < 3 || s.Retries != s.Failed || s.Dropped != 0 || s.AlertsSent != 1 || s.Kind != "webhook" {
				t.Errorf("stats %+v: want every failed attempt retried, then one notification sent", s)
			}
		})
	}
}

// TestWebhookGivesUp checks the two ends of retrying: a receiver that refuses the payload (400)
// gets it once, one that keeps failing gets MaxAttempts attempts; the alerts are then dropped.
func TestWebhookGivesUp(t *testing.T) {
	for _, tc := range []struct {
		status                 int
		failed, retries, calls int
	}{
		{http.StatusBadRequest, 1, 0, 1},
		{http.StatusServiceUnavailable, 3, 2, 3},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			var mu sync.Mutex
			calls := 0
			rcv := newReceiver(t, func(int, *http.Request) int { mu.Lock(); calls++; mu.Unlock(); return tc.status })
			d := fast
			d.MaxAttempts = 3
			w := newTestWebhook(t, d, rcv.URL)
			w.Send([]Alert{csatAlert("voice"), csatAlert("chat")})
			notifytest.Eventually(t, "dropped", func() bool { return w.Stats()[0].Dropped == 2 })
			s := w.Stats()[0]
			mu.Lock()
			defer mu.Unlock()
			if s.Failed != uint64(tc.failed) || s.Retries != uint64(tc.retries) || calls != tc.calls || s.Sent != 0 {
				t.Errorf("stats %+v after %d requests: want %d failed, %d retries, %d requests", s, calls, tc.failed, tc.retries, tc.calls)
			}
		})
	}
}

// TestSendNeverBlocks holds the receiver's first request unanswered and sends a thousand
// notifications more: Send returns every time, the queue keeps its bound by dropping the
// oldest (counted), and once the receiver answers it gets the newest, in order.
func TestSendNeverBlocks(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	rcv := newReceiver(t, func(n int, r *http.Request) int {
		if n == 1 {
			once.Do(func() { close(entered) })
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return http.StatusOK
	})
	d := fast
	d.QueueSize, d.Timeout = 10, time.Hour
	w := newTestWebhook(t, d, rcv.URL)
	alert := func(i int) Alert {
		a := csatAlert("voice")
		a.Labels["alertname"] = fmt.Sprintf("A%04d", i)
		return a
	}
	w.Send([]Alert{alert(0)})
	<-entered

	for i := 1; i <= 1000; i++ {
		w.Send([]Alert{alert(i)}) // would hang the test if it waited for the receiver
	}
	if s := w.Stats()[0]; s.Queued != 10 || s.QueueCapacity != 10 || s.Dropped != 990 {
		t.Fatalf("queued %d of %d, dropped %d: want 10 of 10, 990", s.Queued, s.QueueCapacity, s.Dropped)
	}
	close(release)
	notifytest.Eventually(t, "the queue delivered", func() bool { return w.Stats()[0].Sent == 11 })
	var got []string
	for _, p := range rcv.Payloads(t) {
		got = append(got, p.CommonLabels["alertname"])
	}
	want := []string{"A0000"}
	for i := 991; i <= 1000; i++ {
		want = append(want, fmt.Sprintf("A%04d", i))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("received %v, want the first then the 10 newest in order %v", got, want)
	}
}

// TestCloseJoinsWorkers closes senders whose destination hangs: Close cancels the request in
// flight when its context ends and returns only after every goroutine has returned, with an
// error that counts what was lost; Send after Close drops and counts.
func TestCloseJoinsWorkers(t *testing.T) {
	baseline := runtime.NumGoroutine()
	entered := make(chan struct{}, 2)
	cancelled := make(chan struct{}, 2)
	rcv := newReceiver(t, func(_ int, r *http.Request) int {
		entered <- struct{}{}
		<-r.Context().Done()
		cancelled <- struct{}{}
		return http.StatusOK
	})
	d := fast
	d.Timeout = time.Hour
	w, err := NewWebhook(WebhookConfig{URLs: []string{rcv.URL}, Delivery: d})
	if err != nil {
		t.Fatal(err)
	}
	am, err := NewAlertmanager(AlertmanagerConfig{URLs: []string{rcv.URL}, Delivery: d})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []interface {
		Start()
		Send([]Alert)
		Close(context.Context) error
		Stats() []DestinationStats
	}{w, am} {
		s.Start()
		s.Send([]Alert{csatAlert("voice"), csatAlert("chat")})
		<-entered
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // no time to deliver what waits
		err := s.Close(ctx)
		<-cancelled // the request in flight was cancelled
		if err == nil || !strings.Contains(err.Error(), "2 alerts not delivered") {
			t.Errorf("Close: %v, want 2 alerts not delivered", err)
		}
		s.Send([]Alert{csatAlert("web")})
		if st := s.Stats()[0]; st.Dropped != 3 || st.Queued != 0 {
			t.Errorf("%s stats after Close %+v, want 3 dropped", st.Kind, st)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
	if n := w.workers.running.Load() + am.workers.running.Load(); n != 0 {
		t.Fatalf("%d goroutines still running after Close returned", n)
	}
	// Nothing else of the senders lingers (idle connections, timers): the goroutines settle
	// back to the count before the test, once the receiver is closed too.
	rcv.Close()
	notifytest.Eventually(t, fmt.Sprintf("back to %d goroutines", baseline), func() bool { return runtime.NumGoroutine() <= baseline })
}

// TestCloseGivesUpOnDownDestination: with the receiver down and alerts waiting, Close does
// not wait out the backoff (an hour here) nor try each waiting notification: one last attempt,
// then everything is dropped and counted. Without a context deadline, Close would hang if it
// waited.
func TestCloseGivesUpOnDownDestination(t *testing.T) {
	rcv := newReceiver(t, nil)
	proxy := storetest.NewProxy(t, strings.TrimPrefix(rcv.URL, "http://"))
	proxy.Cut()
	w, err := NewWebhook(WebhookConfig{URLs: []string{"http://" + proxy.Addr()},
		Delivery: Delivery{MinBackoff: time.Hour, MaxAttempts: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	w.Send([]Alert{csatAlert("voice")})
	notifytest.Eventually(t, "failing", func() bool { return w.Stats()[0].Failed == 1 })
	for _, ch := range []string{"web", "app", "store", "chat"} {
		a := csatAlert(ch)
		a.Labels["alertname"] = "Other" + ch
		w.Send([]Alert{a})
	}
	err = w.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "5 alerts not delivered") {
		t.Errorf("Close: %v, want 5 alerts not delivered", err)
	}
	if s := w.Stats()[0]; s.Failed != 2 || s.Retries != 1 || s.Dropped != 5 || s.Queued != 0 {
		t.Errorf("stats %+v: want the first notification tried once more, then all 5 alerts dropped", s)
	}
}

// TestInvalidAlerts shows that an alert Alertmanager would refuse is dropped, counted and
// logged at Send, and the valid ones of the same call are delivered.
func TestInvalidAlerts(t *testing.T) {
	rcv := newReceiver(t, nil)
	w := newTestWebhook(t, fast, rcv.URL)
	noName := csatAlert("voice")
	delete(noName.Labels, "alertname")
	badName := csatAlert("voice")
	badName.Annotations["1st"] = "x"
	badStatus := csatAlert("voice")
	badStatus.Status = "pending"
	w.Send([]Alert{noName, badName, badStatus, csatAlert("chat")})
	_, p := rcv.WaitFor(t, "with the valid alert", func(WebhookPayload) bool { return true })
	if len(p.Alerts) != 1 || p.Alerts[0].Labels["channel"] != "chat" {
		t.Errorf("payload %+v, want the chat alert alone", p)
	}
	if s := w.Stats()[0]; s.Dropped != 3 {
		t.Errorf("stats %+v, want the 3 invalid alerts dropped", s)
	}
}

// TestTruncate cuts a group larger than the queue, as Alertmanager's max_alerts does.
func TestTruncate(t *testing.T) {
	var alerts []Alert
	for _, ch := range []string{"web", "app", "store", "voice"} {
		alerts = append(alerts, normalize(csatAlert(ch), time.Now()))
	}
	ps := webhookPayloads(alerts, "r", "", 3)
	if len(ps) != 1 || len(ps[0].Alerts) != 3 || ps[0].TruncatedAlerts != 1 {
		t.Fatalf("payloads %+v, want one of 3 alerts with 1 truncated", ps)
	}
}

func TestBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: 100, 2: 200, 3: 400, 4: 800, 5: 1000, 60: 1000} {
		for range 100 {
			got := backoff(attempt, 100, 1000)
			if got < want/2 || got > want {
				t.Fatalf("backoff(%d) = %d, want between %d and %d", attempt, got, want/2, want)
			}
		}
	}
}
