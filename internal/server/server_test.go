package server_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"go.uber.org/goleak"

	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/server"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// noLeak checks that no goroutine started since the test began is left. Two of fasthttp's
// goroutines are waited for or ignored, as fasthttp (v1.52) gives no way to join them:
//   - the worker pool's cleaner looks at its stop channel only between sleeps of
//     MaxIdleWorkerDuration (10 s, workerpool.go), so it returns up to 10 s after Shutdown;
//     the check retries for 15 s;
//   - updateServerDate is started once per process and runs for its lifetime (header.go).
func noLeak(t *testing.T) func() {
	opts := []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	}
	return func() {
		deadline := time.Now().Add(15 * time.Second)
		for goleak.Find(opts...) != nil && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
		}
		goleak.VerifyNone(t, opts...)
	}
}

// testConfig is a server on a free loopback port and a fresh test database (dropped when the
// test ends), with its own data folder.
func testConfig(t *testing.T) (config.Config, *store.Store) {
	t.Helper()
	db := storetest.Open(t) // creates and migrates the database; the server migrates it again
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.ClickHouseAddr = storetest.Addr()
	cfg.ClickHouseDatabase = db.Database()
	cfg.IngestRate = 0
	cfg.LiveTick = 200 * time.Millisecond
	cfg.ShutdownTimeout = 10 * time.Second
	return cfg, db
}

// TestStopLeavesNoGoroutine runs a server with every component busy (demo traffic, an event
// posted, a live screen receiving updates), stops it, and checks that none of its goroutines
// is left and its spool is empty.
func TestStopLeavesNoGoroutine(t *testing.T) {
	cfg, db := testConfig(t)
	cfg.DemoRate = 50
	defer noLeak(t)()

	ctx := context.Background()
	var banner bytes.Buffer
	limitBefore := debug.SetMemoryLimit(-1)
	srv, err := server.Start(ctx, cfg, server.Options{Out: &banner})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if got := debug.SetMemoryLimit(-1); got != int64(cfg.MemoryLimit) && os.Getenv("GOMEMLIMIT") == "" {
		t.Errorf("memory limit while serving is %d bytes, want -memory-limit's %d", got, cfg.MemoryLimit)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.Stop(context.Background())
		}
	}()
	if !strings.Contains(banner.String(), "Truthboard is running at "+srv.URL()) {
		t.Errorf("banner %q does not name the URL %s", banner.String(), srv.URL())
	}
	if !strings.Contains(banner.String(), "Generated credentials") {
		t.Errorf("banner %q does not say where the generated credentials are", banner.String())
	}

	// An event through the public API.
	body := `{"event_id":"stop-test-1","occurred_at":"` + time.Now().UTC().Format(time.RFC3339) +
		`","moment":"service","channel":"voice","touchpoint":"call","csat":5}`
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+srv.IngestKeys()[0])
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("post event: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post event: status %d, want 202", resp.StatusCode)
	}

	// A live screen that gets its snapshot and an update, then sees the server go away.
	wsURL := "ws" + strings.TrimPrefix(srv.URL(), "http") + "/v1/live"
	conn, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Authorization": {"Bearer " + srv.AdminToken()}})
	if err != nil {
		t.Fatalf("live: %v", err)
	}
	defer conn.Close()
	if err := conn.WriteJSON(map[string]any{"type": "subscribe", "view": "executive", "window": "5m"}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	for _, want := range []string{"snapshot", "update"} {
		var msg struct{ Type string }
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		if err := conn.ReadJSON(&msg); err != nil {
			t.Fatalf("live: waiting for %s: %v", want, err)
		}
		if msg.Type != want {
			t.Fatalf("live: got %q, want %q", msg.Type, want)
		}
	}

	closed := make(chan int, 1)
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				code := 0
				if errors.As(err, &ce) {
					code = ce.Code
				}
				closed <- code
				return
			}
		}
	}()
	stopCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	stopped = true
	if err := srv.Stop(stopCtx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if code := <-closed; code != websocket.CloseGoingAway {
		t.Errorf("live screen closed with %d, want %d (going away)", code, websocket.CloseGoingAway)
	}
	if err := srv.Stop(stopCtx); err != nil {
		t.Errorf("a second Stop: %v", err)
	}
	if got := debug.SetMemoryLimit(-1); got != limitBefore {
		t.Errorf("memory limit after Stop is %d bytes, want the %d it was before Start", got, limitBefore)
	}

	// Stopped means drained: the event is in ClickHouse, and the spool lock is free for the
	// next start on the same data folder.
	var n uint64
	if err := db.Conn().QueryRow(ctx, "SELECT count() FROM events WHERE event_id = 'stop-test-1'").Scan(&n); err != nil {
		t.Fatalf("count the posted event: %v", err)
	}
	if n != 1 {
		t.Errorf("the event acknowledged before Stop is stored %d times, want 1", n)
	}
	again, err := server.Start(ctx, cfg, server.Options{})
	if err != nil {
		t.Fatalf("start again on the same data folder: %v", err)
	}
	if err := again.Stop(stopCtx); err != nil {
		t.Fatalf("stop again: %v", err)
	}
}

// TestFailedStartLeavesNothing starts servers that fail at different steps and checks that
// each failure is reported and leaves no goroutine and no lock behind.
func TestFailedStartLeavesNothing(t *testing.T) {
	// ClickHouse that does not answer is no reason to fail (TestStartWhileClickHouseIsDown); one
	// that answers with a refusal is, with its message.
	t.Run("ClickHouse refuses the password", func(t *testing.T) {
		cfg, _ := testConfig(t)
		cfg.ClickHousePassword = "not-the-password"
		defer noLeak(t)()
		srv, err := server.Start(context.Background(), cfg, server.Options{})
		if err == nil {
			_ = srv.Stop(context.Background())
			t.Fatal("Start succeeded with a wrong ClickHouse password")
		}
		if !strings.Contains(strings.ToLower(err.Error()), "password") {
			t.Errorf("error %q does not give ClickHouse's reason (the password)", err)
		}
	})

	t.Run("listen address taken, after ClickHouse, ingest and caches started", func(t *testing.T) {
		cfg, _ := testConfig(t)
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		cfg.Listen = taken.Addr().String()
		defer noLeak(t)()

		srv, err := server.Start(context.Background(), cfg, server.Options{})
		if err == nil {
			_ = srv.Stop(context.Background())
			t.Fatal("Start succeeded on a taken address")
		}
		if !strings.Contains(err.Error(), "TRUTHBOARD_LISTEN") {
			t.Errorf("error %q does not say how to fix it (TRUTHBOARD_LISTEN)", err)
		}
		// The spool was opened and must have been closed: a start on the same folder works.
		cfg.Listen = "127.0.0.1:0"
		srv, err = server.Start(context.Background(), cfg, server.Options{})
		if err != nil {
			t.Fatalf("start after the failed one, same data folder: %v", err)
		}
		if err := srv.Stop(context.Background()); err != nil {
			t.Fatalf("stop: %v", err)
		}
	})
}
