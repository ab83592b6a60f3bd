package evaluator_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/alert/evaluator"
	"github.com/truthboard/truthboard/internal/alert/notify/notifytest"
	"github.com/truthboard/truthboard/internal/screen"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// A paired screen whose connection closes and stays silent beyond the fleet's offline delay is
// a firing ScreenOffline alert in Alertmanager (with its screen, name and group), in the
// evaluator's active alerts, and resolves once the screen is back.
func TestScreenOfflineAlert(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	const after = 2 * time.Second
	fleet := screen.New(db, screen.Options{Node: "node-a", Poll: 100 * time.Millisecond, Flush: 200 * time.Millisecond, OfflineAfter: after},
		slog.New(slog.DiscardHandler))
	fleet.Start()
	t.Cleanup(fleet.Stop)

	// Paired as a TV is: it waits with a code, an admin enters it, the TV takes its credential
	// and connects.
	w, err := fleet.Wait(ctx, "10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := fleet.Pair(ctx, w.Code, "Wall 3", screen.Show{View: "tv"}, screen.Place{Group: "floor 2"})
	if err != nil {
		t.Fatalf("pair: %v", err)
	}
	if _, ok := <-w.Paired(); !ok {
		t.Fatal("the TV got no credential")
	}
	conn := fleet.Connect(sc.ID, func([]byte) bool { return true })

	amBase := notifytest.StartAlertmanager(t, "http://127.0.0.1:9/unused")
	offline := screen.OfflineAlerts{Store: db, After: after}
	engine, err := alert.NewEngine(alert.Config{Rules: alert.DefaultRules(), Sources: []string{offline.Alertname()}})
	if err != nil {
		t.Fatal(err)
	}
	ev := evaluator.New(engine, db, evaluator.Options{Interval: time.Hour, PublicURL: publicURL,
		Alertmanagers: []evaluator.Sender{alertmanagerAt(t, amBase)}, Observers: []evaluator.Observer{offline}},
		slog.New(slog.DiscardHandler))
	ev.Start(ctx)
	t.Cleanup(ev.Stop)
	// evaluated polls an evaluation, as the loop would make one, every 100 ms at most.
	var last time.Time
	evaluated := func(cond func() bool) func() bool {
		return func() bool {
			if time.Since(last) >= 100*time.Millisecond {
				ev.Evaluate(ctx)
				last = time.Now()
			}
			return cond()
		}
	}

	ev.Evaluate(ctx)
	if a := ev.Active(); len(a) != 0 {
		t.Fatalf("a connected screen: active alerts %+v; want none", a)
	}
	closedAt := time.Now()
	conn.Close()
	notifytest.Eventually(t, "the silent screen listed by Alertmanager", evaluated(func() bool {
		_, ok := notifytest.ListAlerts(t, amBase)[screen.OfflineAlert]
		return ok
	}))
	if silent := time.Since(closedAt); silent < after {
		t.Errorf("the alert came %s after the screen left; want no sooner than the offline delay, %s", silent, after)
	}
	got := notifytest.ListAlerts(t, amBase)[screen.OfflineAlert]
	want := map[string]string{"alertname": "ScreenOffline", "screen": sc.ID, "screen_name": "Wall 3", "group": "floor 2", "severity": "warning"}
	for k, v := range want {
		if got.Labels[k] != v {
			t.Errorf("Alertmanager's labels %v; want %s=%q", got.Labels, k, v)
		}
	}
	if got.Annotations["since"] == "" || got.GeneratorURL != publicURL+"/screens" {
		t.Errorf("Alertmanager's alert: annotations %v, link %q; want since when, and the screens page", got.Annotations, got.GeneratorURL)
	}
	if a := ev.Active(); len(a) != 1 || a[0].State != alert.Firing || a[0].Labels["screen"] != sc.ID {
		t.Errorf("the evaluator's active alerts: %+v; want the screen's, firing", a)
	}

	// Back: the alert resolves.
	conn = fleet.Connect(sc.ID, func([]byte) bool { return true })
	notifytest.Eventually(t, "the alert resolved in Alertmanager", evaluated(func() bool {
		_, ok := notifytest.ListAlerts(t, amBase)[screen.OfflineAlert]
		return !ok
	}))
	if a := ev.Active(); len(a) != 0 {
		t.Errorf("active after the screen came back: %+v; want none", a)
	}

	// Silent again, then unpaired: the alert resolves too.
	conn.Close()
	notifytest.Eventually(t, "the screen's second alert firing", evaluated(func() bool { return len(ev.Active()) == 1 }))
	if _, err := fleet.Send(ctx, sc.ID, screen.Unpair, nil); err != nil {
		t.Fatalf("unpair: %v", err)
	}
	notifytest.Eventually(t, "the alert of the unpaired screen resolved in Alertmanager", evaluated(func() bool {
		_, ok := notifytest.ListAlerts(t, amBase)[screen.OfflineAlert]
		return !ok && len(ev.Active()) == 0
	}))
}
