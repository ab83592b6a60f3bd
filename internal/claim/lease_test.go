package claim_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/claim"
	"github.com/truthboard/truthboard/internal/claim/claimtest"
)

func lease(t *testing.T, c *claim.Claims, owner string) *claim.Lease {
	t.Helper()
	l, err := c.Lease(context.Background(), claim.LeaseOptions{Key: "alert-evaluator", Owner: owner, Renew: 100 * time.Millisecond, TTL: time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	t.Cleanup(l.Stop)
	return l
}

// waitFor polls cond until it holds, failing the test after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exactlyOne checks over a few renewals that one lease of two is held, never both.
func exactlyOne(t *testing.T, a, b *claim.Lease) *claim.Lease {
	t.Helper()
	waitFor(t, "one node takes the lease", func() bool { return a.Held() || b.Held() })
	for range 20 {
		if a.Held() && b.Held() {
			t.Fatal("both nodes hold the lease")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a.Held() {
		return a
	}
	return b
}

// Two nodes on one bucket: exactly one holds the lease; when it stops, the other takes it.
func TestLeaseIsHeldByOneNodeAndPassesOnAtStop(t *testing.T) {
	n := claimtest.Start(t)
	a, b := lease(t, open(t, n.URL()), "node-a"), lease(t, open(t, n.URL()), "node-b")
	holder := exactlyOne(t, a, b)
	other := b
	if holder == b {
		other = a
	}
	holder.Stop()
	if holder.Held() {
		t.Fatal("a stopped lease is still held")
	}
	waitFor(t, "the other node takes the lease after the holder stops", other.Held)
}

// The holder's connection to NATS closes (a node that dies or is cut off): it stops holding the
// lease, and the other node takes it once the lease expires.
func TestLeasePassesOnWhenTheHolderLosesNATS(t *testing.T) {
	n := claimtest.Start(t)
	ca, cb := open(t, n.URL()), open(t, n.URL())
	a, b := lease(t, ca, "node-a"), lease(t, cb, "node-b")
	holder := exactlyOne(t, a, b)
	other, conn := b, ca
	if holder == b {
		other, conn = a, cb
	}
	conn.Close()
	waitFor(t, "the cut-off holder stops holding the lease", func() bool { return !holder.Held() })
	waitFor(t, "the other node takes the lease after it expires", other.Held)
	if holder.Held() {
		t.Fatal("the cut-off node holds the lease again")
	}
}
