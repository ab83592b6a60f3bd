package telemetry

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestExposition compares the truthboard_* series of a fresh registry, with a watched spool
// and dead-letter, with testdata/metrics.golden: every name, help text, type and pre-initialised label value.
func TestExposition(t *testing.T) {
	m := New()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	m.WatchSpool(func() SpoolStats {
		return SpoolStats{Segments: 2, Bytes: 3 << 20, Events: 1500, Oldest: now.Add(-90 * time.Second)}
	})
	m.WatchDeadLetter(func() DeadLetterStats {
		return DeadLetterStats{Records: 3, Events: 12, Bytes: 4096, UndecodableEvents: 10, RefusedEvents: 2, Full: 1}
	})
	m.EventsRejected.WithLabelValues(RejectRateLimited).Inc()
	m.InsertDuration.Observe(0.042)

	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for _, mf := range families {
		if strings.HasPrefix(mf.GetName(), "truthboard_") {
			if _, err := expfmt.MetricFamilyToText(&got, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("exposition differs from %s (run go test -update after a deliberate change):\n%s", golden, got.String())
	}
}

// TestRuntimeCollectors checks the Go and process series a soak test watches.
func TestRuntimeCollectors(t *testing.T) {
	m := New()
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_open_fds"} {
		t.Run(name, func(t *testing.T) {
			n, err := testutil.GatherAndCount(m.Registry, name)
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%d series of %s, want 1", n, name)
			}
		})
	}
}

func TestSpoolEmpty(t *testing.T) {
	m := New()
	m.WatchSpool(func() SpoolStats { return SpoolStats{} })
	want := `# HELP truthboard_spool_oldest_age_seconds Age of the oldest event in the spool (0 when it is empty): how far ClickHouse lags behind the acknowledgements.
# TYPE truthboard_spool_oldest_age_seconds gauge
truthboard_spool_oldest_age_seconds 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "truthboard_spool_oldest_age_seconds"); err != nil {
		t.Error(err)
	}
}
