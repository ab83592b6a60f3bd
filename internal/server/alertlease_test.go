package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/claim/claimtest"
	"github.com/truthboard/truthboard/internal/server"
	"github.com/truthboard/truthboard/internal/spool/spooltest"
)

// alertLeader is a node's truthboard_alert_leader on /metrics: "1", "0", or "" when absent.
func alertLeader(t *testing.T, srv *server.Server) string {
	t.Helper()
	_, metrics := get(t, srv, "/metrics")
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, "truthboard_alert_leader "); ok {
			return v
		}
	}
	return ""
}

// Two nodes of a cluster (one NATS, one database): exactly one records and delivers the alerts,
// as /metrics says; when it stops, the other takes over. A single node is always the leader.
func TestOneNodeOfAClusterEvaluatesAlerts(t *testing.T) {
	single, _ := testConfig(t)
	if v := alertLeader(t, start(t, single)); v != "1" {
		t.Fatalf("a single node: truthboard_alert_leader %q, want 1", v)
	}

	nats := claimtest.Start(t)
	cfgA, _ := testConfig(t)
	cfgA.NATSURL, cfgA.AlertInterval = nats.URL(), 200*time.Millisecond
	cfgB := cfgA
	cfgB.DataDir = t.TempDir()
	a, b := start(t, cfgA), start(t, cfgB)
	spooltest.Eventually(t, "one node leads", func() bool { return alertLeader(t, a) == "1" || alertLeader(t, b) == "1" })
	for range 10 {
		if va, vb := alertLeader(t, a), alertLeader(t, b); va+vb != "10" && va+vb != "01" {
			t.Fatalf("truthboard_alert_leader %q on one node and %q on the other, want 1 on exactly one", va, vb)
		}
		time.Sleep(100 * time.Millisecond)
	}
	leader, other := a, b
	if alertLeader(t, b) == "1" {
		leader, other = b, a
	}
	if err := leader.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	spooltest.Eventually(t, "the other node takes over", func() bool { return alertLeader(t, other) == "1" })
}
