package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/server"
	"github.com/truthboard/truthboard/internal/spool"
	"github.com/truthboard/truthboard/internal/spool/spooltest"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// start starts a server on cfg, stopped when the test ends.
func start(t *testing.T, cfg config.Config) *server.Server {
	t.Helper()
	srv, err := server.Start(context.Background(), cfg, server.Options{})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	return srv
}

// get answers GET path with the admin token: its status and body.
func get(t *testing.T, srv *server.Server, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+path, nil)
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post sends n valid events with ids prefix-0 … to POST /v1/events and returns the status.
func post(t *testing.T, srv *server.Server, prefix string, n int) int {
	t.Helper()
	var body strings.Builder
	at := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	for i := range n {
		fmt.Fprintf(&body, `{"event_id":"%s-%d","occurred_at":"%s","moment":"service","channel":"voice","touchpoint":"call","csat":4}`+"\n", prefix, i, at)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/v1/events", strings.NewReader(body.String()))
	req.Header.Set("Authorization", "Bearer "+srv.IngestKeys()[0])
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// readiness is what the tests read of GET /readyz.
type readiness struct {
	Ready bool `json:"ready"`
	Spool struct {
		Events int64 `json:"events"`
	} `json:"spool"`
	DeadLetter struct {
		Records    int    `json:"records"`
		Events     int    `json:"events"`
		Bytes      int64  `json:"bytes"`
		MaxBytes   int64  `json:"max_bytes"`
		LastReason string `json:"last_reason"`
		LastAt     string `json:"last_at"`
	} `json:"dead_letter"`
}

func readyz(t *testing.T, srv *server.Server) readiness {
	t.Helper()
	status, body := get(t, srv, "/readyz")
	var r readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/readyz answered %d %q: %v", status, body, err)
	}
	return r
}

// A server that finds an undecodable record in its spool at start sends the records around it
// to ClickHouse once, keeps the record aside, and says so on /readyz and /metrics.
func TestPoisonRecordShowsOnReadyzAndMetrics(t *testing.T) {
	cfg, db := testConfig(t)
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	sp, err := spool.Open(spool.Options{Dir: cfg.SpoolFolder()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for r := range 3 {
		evs := make([]event.Event, 4)
		for i := range evs {
			evs[i] = event.Event{EventID: fmt.Sprintf("r%d-%d", r, i), OccurredAt: at, Moment: "fmot", Channel: "web", Touchpoint: "checkout"}
			if r != 1 {
				want = append(want, evs[i].EventID)
			}
		}
		if err := sp.Append(evs, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	sp.Close()
	spooltest.PoisonRecord(t, cfg.SpoolFolder(), 1)

	srv := start(t, cfg)
	var ready readiness
	spooltest.Eventually(t, "done with the spool", func() bool {
		ready = readyz(t, srv)
		return ready.Spool.Events == 0
	})
	dl := ready.DeadLetter
	if !ready.Ready || dl.Records != 1 || dl.Events != 4 || dl.Bytes <= 0 || dl.MaxBytes != int64(cfg.DeadLetterMaxBytes) ||
		!strings.Contains(dl.LastReason, "payload version") || dl.LastAt == "" {
		t.Fatalf("/readyz: %+v, want ready and the undecodable record's 4 events, with why and when", ready)
	}
	storetest.AssertStoredOnce(t, db, want)

	_, metrics := get(t, srv, "/metrics")
	for _, line := range []string{
		`truthboard_events_dead_lettered_total{reason="undecodable"} 4`,
		`truthboard_events_dead_lettered_total{reason="refused"} 0`,
		"truthboard_dead_letter_records 1",
		"truthboard_dead_letter_events 4",
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

// A server whose spool is on a disk smaller than a spool segment, filled while ClickHouse was
// away, takes large requests again once the backlog is in ClickHouse, without a restart.
func TestFullDiskRecoversWithoutRestart(t *testing.T) {
	spooltest.SmallDisk(t, 1<<20, func(t *testing.T, dir string) {
		cfg, db := testConfig(t)
		proxy := storetest.NewProxy(t, cfg.ClickHouseAddr)
		cfg.ClickHouseAddr, cfg.ClickHouseDialTimeout = proxy.Addr(), 500*time.Millisecond
		cfg.DataDir = dir // spool segments of 16 MiB on a disk of 1 MiB
		srv := start(t, cfg)

		proxy.Cut()
		var posts int
		for posts = 0; post(t, srv, fmt.Sprint("fill", posts), 100) == http.StatusAccepted; posts++ {
			if posts > 10_000 {
				t.Fatal("the spool never filled the disk")
			}
		}
		if posts == 0 {
			t.Fatal("nothing was acknowledged before the disk was full")
		}
		proxy.Restore()
		spooltest.Eventually(t, "done with the backlog", func() bool { return readyz(t, srv).Spool.Events == 0 })
		spooltest.Eventually(t, "taking a large request again", func() bool { return post(t, srv, "large", 3000) == http.StatusAccepted })
		spooltest.Eventually(t, "done with the large request", func() bool { return readyz(t, srv).Spool.Events == 0 })
		if n := len(storetest.StoredIDs(t, db)); n != posts*100+3000 {
			t.Fatalf("%d events stored, want the %d acknowledged", n, posts*100+3000)
		}
	})
}
