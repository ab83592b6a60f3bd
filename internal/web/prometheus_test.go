package web_test

// GET /metrics scraped as Prometheus does, from a real server on a test database.

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/telemetry"
	"github.com/truthboard/truthboard/internal/web"
)

// scrape reads GET /metrics with the given Authorization header ("" sends none). With status
// 200 it returns every series as name{label="value",...} (labels sorted, histograms as their
// _count) with its value.
func (s *testServer) scrape(t *testing.T, authorization string) (int, map[string]float64) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want the Prometheus text format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics is not in the Prometheus text format: %v", err)
	}
	series := map[string]float64{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				series[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				series[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				series[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			case m.Untyped != nil:
				series[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return resp.StatusCode, series
}

func TestPrometheusMetrics(t *testing.T) {
	m := telemetry.New()
	db := storetest.Open(t)
	hub := live.NewHub(db, live.Options{Tick: 50 * time.Millisecond, Telemetry: m}, slog.New(slog.DiscardHandler))
	s := startServer(t, serverConfig{db: db, web: web.Options{Hub: hub, Telemetry: m, IngestRate: 1}})
	t.Cleanup(hub.Close) // before the server's shutdown, as in serve
	ls := &liveServer{testServer: s, hub: hub}
	admin := "Bearer " + adminToken

	t.Run("admin token only", func(t *testing.T) {
		for _, authorization := range []string{"", "Bearer tba_wrong", "Bearer " + testKey, "Basic " + adminToken} {
			if status, _ := s.scrape(t, authorization); status != http.StatusUnauthorized {
				t.Errorf("GET /metrics with Authorization %q: status %d, want 401", authorization, status)
			}
		}
	})

	// Refused ingest requests: two without a valid key, one over the key's rate.
	_, evs := batch("prom", 2, base())
	for _, authorization := range []string{"", "Bearer tbi_wrong"} {
		if r := s.mustPost(t, jsonArray(evs), "Authorization", authorization); r.status != http.StatusUnauthorized {
			t.Fatalf("POST with Authorization %q: status %d, want 401", authorization, r.status)
		}
	}
	s.mustPost(t, jsonArray(evs)).accepted(t, len(evs), 0)
	if r := s.mustPost(t, jsonArray(evs)); r.status != http.StatusTooManyRequests {
		t.Fatalf("second request of the second: status %d, want 429", r.status)
	}

	// A live screen with its first frame.
	screen := ls.dial(t)
	screen.subscribe("executive", "5m")
	if msg := screen.mustRead(); msg.Type != "snapshot" {
		t.Fatalf("first live message %q, want a snapshot", msg.Type)
	}

	status, got := s.scrape(t, admin)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics with the admin token: status %d", status)
	}
	want := map[string]float64{
		`truthboard_events_rejected_total{reason="unauthorized"}`: 2, // refused scrapes are not ingest
		`truthboard_events_rejected_total{reason="rate_limited"}`: 1,
		`truthboard_live_clients`:                                 1,
		`truthboard_live_feeds`:                                   1,
		`truthboard_live_feeds_degraded`:                          0,
		`truthboard_live_tick_queries`:                            2, // one executive feed: its grid and its trend
		`truthboard_live_closes_total{reason="slow_consumer"}`:    0,
		`truthboard_live_closes_total{reason="client_gone"}`:      0,
	}
	for key, v := range want {
		if g, ok := got[key]; !ok || g != v {
			t.Errorf("%s = %v (present: %v), want %v", key, g, ok, v)
		}
	}
	// Series that exist from the start, and those whose value grows with time.
	var present []string
	for _, reason := range telemetry.RejectReasons {
		present = append(present, `truthboard_events_rejected_total{reason="`+reason+`"}`)
	}
	present = append(present,
		"truthboard_events_accepted_total", "truthboard_events_duplicate_total",
		`truthboard_insert_batches_total{result="ok"}`, `truthboard_insert_batches_total{result="error"}`,
		"truthboard_inserted_events_total", "truthboard_insert_duration_seconds_count",
		`truthboard_live_closes_total{reason="going_away"}`, `truthboard_live_closes_total{reason="message_too_big"}`,
		"go_goroutines", "process_resident_memory_bytes", "process_open_fds")
	for _, key := range present {
		if _, ok := got[key]; !ok {
			t.Errorf("no series %s", key)
		}
	}
	for _, key := range []string{"truthboard_live_ticks_total", "truthboard_live_queries_total",
		"truthboard_live_query_duration_seconds_count", "truthboard_live_tick_duration_seconds_count",
		"go_goroutines", "process_resident_memory_bytes", "process_open_fds"} {
		if got[key] < 1 {
			t.Errorf("%s = %v after the screen's first frame, want at least 1", key, got[key])
		}
	}

	// The screen goes away: its close is counted and its feed stops.
	screen.conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, got = s.scrape(t, admin)
		if got[`truthboard_live_closes_total{reason="client_gone"}`] == 1 && got["truthboard_live_clients"] == 0 && got["truthboard_live_feeds"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the screen left: closes %v, %v clients, %v feeds; want one client gone, none left",
				got[`truthboard_live_closes_total{reason="client_gone"}`], got["truthboard_live_clients"], got["truthboard_live_feeds"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
