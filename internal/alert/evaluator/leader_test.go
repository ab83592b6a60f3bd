package evaluator_test

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/alert/evaluator"
	"github.com/truthboard/truthboard/internal/alert/notify"
	"github.com/truthboard/truthboard/internal/alert/notify/notifytest"
	"github.com/truthboard/truthboard/internal/claim"
	"github.com/truthboard/truthboard/internal/claim/claimtest"
)

// nodeLease opens, on its own NATS connection, a node's lease on the alert evaluator.
func nodeLease(t *testing.T, url, owner string) *claim.Lease {
	t.Helper()
	c, err := claim.Open(context.Background(), claim.Options{URL: url}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l, err := c.Lease(context.Background(), claim.LeaseOptions{Key: "alert-evaluator", Owner: owner, Renew: 100 * time.Millisecond, TTL: time.Second},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	t.Cleanup(l.Stop)
	return l
}

// TestTwoNodesDeliverEachAlertOnce runs two nodes' evaluators over one history, each with the
// webhook, gated by the cluster's lease: both show the alert, the webhook hears its firing once
// and, after the holder stops and the other node takes over, its resolve once; the history
// holds each transition once.
func TestTwoNodesDeliverEachAlertOnce(t *testing.T) {
	in := newIncident(t)
	nats := claimtest.Start(t)
	receiver := notifytest.NewReceiver[notify.WebhookPayload](t, nil)
	clk := &clock{}
	clk.Set(in.at(15 * time.Minute))
	la, lb := nodeLease(t, nats.URL(), "node-a"), nodeLease(t, nats.URL(), "node-b")
	notifytest.Eventually(t, "one node holds the lease", func() bool { return la.Held() || lb.Held() })
	a := in.evaluatorWith(t, clk, evaluator.Options{Webhooks: []evaluator.Sender{webhookTo(t, receiver.URL, fast)}, Leader: la.Held})
	b := in.evaluatorWith(t, clk, evaluator.Options{Webhooks: []evaluator.Sender{webhookTo(t, receiver.URL, fast)}, Leader: lb.Held})
	holder, other := la, lb
	if lb.Held() {
		holder, other = lb, la
	}
	if la.Held() && lb.Held() {
		t.Fatal("both nodes hold the lease")
	}

	for m := 15 * time.Minute; m <= 20*time.Minute; m += time.Minute {
		evaluate(t, a, clk, in.at(m))
		evaluate(t, b, clk, in.at(m))
	}
	firedAt := in.at(17 * time.Minute)
	in.checkFiring(t, a, firedAt) // the follower shows the alert too
	in.checkFiring(t, b, firedAt)
	receiver.WaitFor(t, "firing", func(p notify.WebhookPayload) bool { return p.Status == notify.StatusFiring })

	// The holder stops (a node shut down): the other takes over and delivers the resolve.
	holder.Stop()
	notifytest.Eventually(t, "the other node takes the lease", other.Held)
	for m := 21 * time.Minute; m <= 40*time.Minute; m += time.Minute {
		evaluate(t, a, clk, in.at(m))
		evaluate(t, b, clk, in.at(m))
	}
	if n := len(a.Active()) + len(b.Active()); n != 0 {
		t.Fatalf("%d alerts still active after the recovery", n)
	}
	receiver.WaitFor(t, "resolved", func(p notify.WebhookPayload) bool { return p.Status == notify.StatusResolved })
	var statuses []string
	for _, p := range receiver.Payloads(t) {
		statuses = append(statuses, string(p.Status))
	}
	if !slices.Equal(statuses, []string{"firing", "resolved"}) {
		t.Errorf("the webhook received %v, want [firing resolved]: each alert once, from one node", statuses)
	}

	ts, err := in.db.AlertHistory(context.Background(), in.T0, in.T0.Add(2*time.Hour), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []alert.State
	for _, tr := range slices.Backward(ts) {
		got = append(got, tr.To)
	}
	if !slices.Equal(got, []alert.State{alert.Pending, alert.Firing, alert.Resolved}) {
		t.Errorf("history %v, want each transition once: pending, firing, resolved", got)
	}
}

// TestTakeOverAnnouncesWhatNoLeaderAnnounced: an alert that fires while no node leads (the
// holder died, its lease not yet expired) is announced by the node that takes over, once.
func TestTakeOverAnnouncesWhatNoLeaderAnnounced(t *testing.T) {
	in := newIncident(t)
	var leading atomic.Bool
	told := &recorder{}
	clk := &clock{}
	clk.Set(in.at(15 * time.Minute))
	ev := in.evaluatorWith(t, clk, evaluator.Options{Webhooks: []evaluator.Sender{told}, Leader: leading.Load})
	for m := 15 * time.Minute; m <= 18*time.Minute; m += time.Minute {
		evaluate(t, ev, clk, in.at(m))
	}
	in.checkFiring(t, ev, in.at(17*time.Minute)) // shown on this node's screens
	if c := told.take(); len(c) != 0 {
		t.Fatalf("a node that does not lead handed %v to delivery", c)
	}
	leading.Store(true)
	evaluate(t, ev, clk, in.at(19*time.Minute))
	evaluate(t, ev, clk, in.at(20*time.Minute))
	if c, want := told.take(), [][]string{{"firing CSATDrop service/voice"}}; !slices.EqualFunc(c, want, slices.Equal) {
		t.Fatalf("after taking over, handed to delivery %v, want %v", c, want)
	}
}
