// Package claimtest gives tests a real NATS server with JetStream: Debian's nats-server,
// started on a free loopback port with its own store folder (benchkit.StartNATS), which a test
// can stop and start again on the same port and store (an outage of the claims).
package claimtest

import (
	"testing"

	"github.com/truthboard/truthboard/internal/benchkit"
)

// NATS is a running nats-server.
type NATS struct {
	t testing.TB
	*benchkit.LocalNATS
}

// Start runs nats-server with JetStream on a free loopback port until the test ends.
func Start(t testing.TB) *NATS {
	t.Helper()
	n, err := benchkit.StartNATS(t.TempDir())
	if err != nil {
		t.Fatalf("the claim tests need a real NATS server: %v", err)
	}
	t.Cleanup(n.Stop)
	return &NATS{t: t, LocalNATS: n}
}

// StartAgain starts the server again on its port and store, after Stop.
func (n *NATS) StartAgain() {
	n.t.Helper()
	if err := n.Start(); err != nil {
		n.t.Fatal(err)
	}
}
