package live

import (
	"log/slog"
	"maps"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/truthboard/truthboard/internal/telemetry"
)

// metricsHub is a Hub whose metrics the test reads.
func metricsHub(t *testing.T, src Source, opts Options) (*Hub, *telemetry.Metrics) {
	t.Helper()
	opts.Telemetry = telemetry.New()
	return newTestHub(t, src, opts), opts.Telemetry
}

// closes reads truthboard_live_closes_total by reason.
func closes(m *telemetry.Metrics) map[string]float64 {
	out := map[string]float64{}
	for r := CloseReason(0); r < numCloseReasons; r++ {
		out[r.Label()] = testutil.ToFloat64(m.LiveCloses.WithLabelValues(r.Label()))
	}
	return out
}

// observations is how many values a histogram has observed.
func observations(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

func TestHubMetricsSlowConsumerClose(t *testing.T) {
	h, m := metricsHub(t, newFixedSource(100), Options{Tick: 10 * time.Millisecond, MaxMissed: 5})
	if got := closes(m); len(got) != int(numCloseReasons) || got["slow_consumer"] != 0 {
		t.Fatalf("closes before any screen %v, want every reason at 0", got)
	}
	sub := subscription(t, `{"type":"subscribe","view":"executive"}`)
	slow, fast := NewClient(), NewClient()
	h.Subscribe(slow, sub)
	h.Subscribe(fast, sub)
	h.Subscribe(fast, sub) // subscribing again to the same feed is still one screen
	if got := testutil.ToFloat64(m.LiveClients); got != 2 {
		t.Fatalf("live clients %v, want 2", got)
	}
	for done := false; !done; {
		select {
		case <-slow.Done():
			done = true
		default:
			next(t, fast)
		}
	}
	// The connection's reader ends as the screen is gone; the hub's reason wins.
	h.Leave(slow, ClientGone)
	want := map[string]float64{"client_gone": 0, "going_away": 0, "slow_consumer": 1, "message_too_big": 0, "revoked": 0, "subscribing_too_fast": 0}
	if got := closes(m); !maps.Equal(got, want) {
		t.Errorf("closes %v after the slow screen left, want %v", got, want)
	}
	if got := testutil.ToFloat64(m.LiveClients); got != 1 {
		t.Errorf("live clients %v after the slow screen left, want 1", got)
	}
	h.Leave(fast, ClientGone)
	want["client_gone"] = 1
	if got := closes(m); !maps.Equal(got, want) {
		t.Errorf("closes %v after the last screen left, want %v", got, want)
	}
	if got, feeds := testutil.ToFloat64(m.LiveClients), testutil.ToFloat64(m.LiveFeeds); got != 0 || feeds != 0 {
		t.Errorf("%v live clients and %v feeds after every screen left, want none", got, feeds)
	}
}

// The test runs on synctest's clock: what a feed's goroutine does as it stops is read once
// every goroutine has settled (synctest.Wait), without polling.
func TestHubMetricsQueriesPerTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFixedSource(100)
		h, m := metricsHub(t, src, Options{Tick: 5 * time.Millisecond})
		// Three distinct feeds of the executive figures, one query per tick each, watched by two
		// screens each: the TV wall shares the executive feed.
		screens := map[string][]string{
			"5m":    {`{"type":"subscribe","view":"executive"}`, `{"type":"subscribe","view":"tv"}`},
			"1m":    {`{"type":"subscribe","view":"executive","window":"1m"}`, `{"type":"subscribe","view":"tv","window":"1m"}`},
			"north": {`{"type":"subscribe","view":"executive","filters":{"region":["north"]}}`, `{"type":"subscribe","view":"executive","filters":{"region":["north"]}}`},
		}
		clients := map[string][]*Client{}
		for feed, msgs := range screens {
			for _, msg := range msgs {
				c := NewClient()
				h.Subscribe(c, subscription(t, msg))
				clients[feed] = append(clients[feed], c)
			}
		}
		for _, cs := range clients {
			for _, c := range cs {
				next(t, c) // the feed has ticked at least once
			}
		}
		gauges := func() (feeds, clients, perTick float64) {
			return testutil.ToFloat64(m.LiveFeeds), testutil.ToFloat64(m.LiveClients), testutil.ToFloat64(m.LiveTickQueries)
		}
		if feeds, cl, perTick := gauges(); feeds != 3 || cl != 6 || perTick != 6 {
			t.Fatalf("%v feeds, %v clients, %v queries per tick; want 3 feeds, 6 clients, 6 queries per tick (two per feed)", feeds, cl, perTick)
		}

		for _, c := range clients["north"] {
			h.Leave(c, ClientGone)
		}
		synctest.Wait() // the third feed's goroutine has ended
		if feeds, cl, perTick := gauges(); feeds != 2 || cl != 4 || perTick != 4 {
			t.Fatalf("%v feeds, %v clients, %v queries per tick once the third feed stopped; want 2, 4, 4", feeds, cl, perTick)
		}

		h.Close() // the counters settle once every feed has stopped
		st := h.Stats()
		ticks, queries := testutil.ToFloat64(m.LiveTicks), testutil.ToFloat64(m.LiveQueries)
		if ticks != float64(st.Ticks) || queries != float64(st.Queries) || queries != 2*ticks {
			t.Errorf("%v ticks and %v queries counted; the hub's stats say %d and %d; want two queries per tick", ticks, queries, st.Ticks, st.Queries)
		}
		if got := observations(t, m.LiveQueryDuration); got != uint64(src.totalCalls()) {
			t.Errorf("%d query durations observed, the source answered %d queries", got, src.totalCalls())
		}
		if got := observations(t, m.LiveTickDuration); got != st.Ticks {
			t.Errorf("%d tick durations observed in %d ticks", got, st.Ticks)
		}
		if feeds, _, perTick := gauges(); feeds != 0 || perTick != 0 {
			t.Errorf("%v feeds and %v queries per tick after Close, want 0", feeds, perTick)
		}
	})
}

// Runs on synctest's clock, like TestHubMetricsQueriesPerTick.
func TestHubMetricsDegradedFeeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFixedSource(100)
		h, m := metricsHub(t, src, Options{Tick: 5 * time.Millisecond})
		c := NewClient()
		h.Subscribe(c, subscription(t, `{"type":"subscribe","view":"executive"}`))
		next(t, c)
		src.fail.Store(true)
		nextWhere(t, c, "degraded", func(m received) bool { return m.Degraded })
		if got := testutil.ToFloat64(m.LiveFeedsDegraded); got != 1 {
			t.Fatalf("degraded feeds %v while the source fails, want 1", got)
		}
		src.fail.Store(false)
		nextWhere(t, c, "recovered", func(m received) bool { return !m.Degraded })
		if got := testutil.ToFloat64(m.LiveFeedsDegraded); got != 0 {
			t.Fatalf("degraded feeds %v after recovery, want 0", got)
		}
		src.fail.Store(true)
		nextWhere(t, c, "degraded again", func(m received) bool { return m.Degraded })
		h.Leave(c, ClientGone)
		synctest.Wait() // the feed's goroutine has ended
		if got := testutil.ToFloat64(m.LiveFeedsDegraded); got != 0 {
			t.Errorf("degraded feeds %v once the feed stopped, want 0", got)
		}
	})
}

// A Hub without Telemetry counts into metrics of its own.
func TestHubWithoutTelemetry(t *testing.T) {
	h := NewHub(newFixedSource(100), Options{Tick: 5 * time.Millisecond}, slog.New(slog.DiscardHandler))
	defer h.Close()
	c := NewClient()
	h.Subscribe(c, subscription(t, `{"type":"subscribe","view":"executive"}`))
	next(t, c)
	h.Leave(c, SlowConsumer)
	if st := h.Stats(); st.Closes["slow consumer"] != 1 {
		t.Errorf("closes %v", st.Closes)
	}
}
