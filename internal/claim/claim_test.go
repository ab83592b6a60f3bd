package claim_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/claim"
	"github.com/truthboard/truthboard/internal/claim/claimtest"
	"github.com/truthboard/truthboard/internal/event"
)

func open(t *testing.T, url string) *claim.Claims {
	t.Helper()
	c, err := claim.Open(context.Background(), claim.Options{URL: url}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func keys(n int, prefix string) []event.Key {
	ks := make([]event.Key, n)
	for i := range ks {
		ks[i] = event.Key{EventID: fmt.Sprintf("%s-%d", prefix, i), Second: 1_800_000_000 + int64(i%7)}
	}
	return ks
}

// Two nodes claiming the same events at the same moment: each event has exactly one owner,
// and each node is told the same owner when it asks again.
func TestTwoNodesClaimingAtOnceGetOneOwnerEach(t *testing.T) {
	n := claimtest.Start(t)
	a, b := open(t, n.URL()), open(t, n.URL())
	ks := keys(10_000, "race") // more than one chunk of claims in flight
	var heldA, heldB []bool
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); heldA, errA = a.Claim(context.Background(), "node-a", ks) }()
	go func() { defer wg.Done(); heldB, errB = b.Claim(context.Background(), "node-b", ks) }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("claim: %v, %v", errA, errB)
	}
	both, neither, forA := 0, 0, 0
	for i := range ks {
		switch {
		case heldA[i] && heldB[i]:
			both++
		case !heldA[i] && !heldB[i]:
			neither++
		case heldA[i]:
			forA++
		}
	}
	if both != 0 || neither != 0 {
		t.Fatalf("of %d events, %d were claimed by both nodes and %d by neither; want 0 and 0", len(ks), both, neither)
	}
	t.Logf("node a holds %d of %d events, node b the rest", forA, len(ks))
	// Asking again (a node's own retry) gives the same answers; the other node's too.
	againA, err := a.Claim(context.Background(), "node-a", ks)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ks {
		if againA[i] != heldA[i] {
			t.Fatalf("event %d: node a held it %v, then %v", i, heldA[i], againA[i])
		}
	}
	owner, err := b.Owner(context.Background(), ks[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := map[bool]string{true: "node-a", false: "node-b"}[heldA[0]]; owner != want {
		t.Fatalf("owner of event 0 is %q, want %q", owner, want)
	}
}

// Claims outlive a restart of the NATS server (file storage), and a node told so while NATS
// is away gets an error, not an answer.
func TestClaimsSurviveANATSRestart(t *testing.T) {
	n := claimtest.Start(t)
	a := open(t, n.URL())
	ks := keys(100, "restart")
	if _, err := a.Claim(context.Background(), "node-a", ks); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := a.Claim(ctx, "node-b", ks)
	cancel()
	if err == nil {
		t.Fatal("claims were answered while NATS was stopped")
	}
	n.StartAgain()
	b := open(t, n.URL())
	held, err := b.Claim(context.Background(), "node-b", ks)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range held {
		if h {
			t.Fatalf("event %d: node b got the claim node a made before the restart", i)
		}
	}
}

func TestOpenNamesTheSettingWhenNATSIsAway(t *testing.T) {
	_, err := claim.Open(context.Background(), claim.Options{URL: "nats://127.0.0.1:1", Timeout: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		t.Fatal("Open succeeded without a NATS server")
	}
	if want := "TRUTHBOARD_NATS_URL"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}

// Nodes that disagree on how long a claim lasts would store a retry twice: the second node
// with another window is refused at the start, with the setting named and how to change it.
func TestOpenRefusesAnotherClaimWindow(t *testing.T) {
	nats := claimtest.Start(t)
	open(t, nats.URL()) // the default window, an hour
	_, err := claim.Open(context.Background(), claim.Options{URL: nats.URL(), Window: 10 * time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		t.Fatal("a node with a 10m window joined claims that last an hour")
	}
	for _, want := range []string{"TRUTHBOARD_CLAIM_WINDOW", "10m0s", "1h0m0s", "same window"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	open(t, nats.URL()) // the same window again: fine
}
