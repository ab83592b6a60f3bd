package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/server"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// downConfig is a server whose ClickHouse is reached through a proxy that starts cut: ClickHouse
// is down when the server starts. With fresh, the database does not exist yet (a first start);
// otherwise it exists and is migrated (a node restarted during an outage). Either way it is
// dropped when the test ends.
func downConfig(t *testing.T, fresh bool) (cfg config.Config, proxy *storetest.Proxy, database string) {
	t.Helper()
	o := storetest.Options(t)
	if !fresh {
		o.Database = storetest.Open(t).Database()
	} else {
		t.Cleanup(func() {
			db, err := store.Open(context.Background(), o)
			if err == nil {
				_ = db.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+o.Database)
				db.Close()
			}
		})
	}
	proxy = storetest.NewProxy(t, storetest.Addr())
	proxy.Cut()
	cfg = config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.ClickHouseAddr = proxy.Addr()
	cfg.ClickHouseDatabase = o.Database
	cfg.ClickHouseUser, cfg.ClickHousePassword = o.User, o.Password
	cfg.ClickHouseDialTimeout = 500 * time.Millisecond
	cfg.IngestRate = 0
	cfg.LiveTick = 200 * time.Millisecond
	cfg.DisplayTokenRefresh = 200 * time.Millisecond
	cfg.ShutdownTimeout = 10 * time.Second
	return cfg, proxy, o.Database
}

// readyState is what the outage tests read of GET /readyz.
type readyState struct {
	Ready      bool   `json:"ready"`
	Degraded   bool   `json:"degraded"`
	ClickHouse string `json:"clickhouse"`
	Spool      struct {
		Events int64 `json:"events"`
	} `json:"spool"`
}

func getReadyz(url string) (int, readyState, error) {
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return 0, readyState{}, err
	}
	defer resp.Body.Close()
	var r readyState
	err = json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r, err
}

// postEvents posts n new events with ids prefix-0… and returns their ids; the answer must be 202.
func postEvents(t *testing.T, srv *server.Server, prefix string, n int) []string {
	t.Helper()
	var body strings.Builder
	ids := make([]string, n)
	at := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)
	moments, channels := []string{"zmot", "fmot", "smot", "tmot", "service"}, []string{"web", "voice", "store"}
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
		fmt.Fprintf(&body, `{"event_id":%q,"occurred_at":%q,"moment":%q,"channel":%q,"touchpoint":"tp","csat":%d,"wait_ms":%d}`+"\n",
			ids[i], at, moments[i%len(moments)], channels[i%len(channels)], 1+i%5, 10*i)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/v1/events", strings.NewReader(body.String()))
	req.Header.Set("Authorization", "Bearer "+srv.IngestKeys()[0])
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post events: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post events: status %d, want 202", resp.StatusCode)
	}
	return ids
}

// waitFor polls cond every 100 ms until it holds, or fails t after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, within, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStartWhileClickHouseIsDown starts a server while its ClickHouse does not answer, on an
// existing database and on one that does not exist yet: the server starts, acknowledges events
// into its spool, says it is degraded on /readyz and to live screens; once ClickHouse answers,
// it applies the schema, and every acknowledged event is stored once with rollups that agree.
func TestStartWhileClickHouseIsDown(t *testing.T) {
	for _, fresh := range []bool{false, true} {
		name := map[bool]string{false: "a node restarted during an outage", true: "the first start, no database yet"}[fresh]
		t.Run(name, func(t *testing.T) {
			cfg, proxy, database := downConfig(t, fresh)
			defer noLeak(t)()
			srv, err := server.Start(context.Background(), cfg, server.Options{})
			if err != nil {
				t.Fatalf("start with ClickHouse down: %v", err)
			}
			defer srv.Stop(context.Background())

			code, r, err := getReadyz(srv.URL())
			if err != nil || code != http.StatusOK || !r.Ready || !r.Degraded || !strings.HasPrefix(r.ClickHouse, "unavailable") {
				t.Errorf("/readyz with ClickHouse down: %d %+v %v; want 200, ready, degraded, ClickHouse unavailable", code, r, err)
			}

			// A live screen is told the figures are degraded, and later that they are not.
			wsURL := "ws" + strings.TrimPrefix(srv.URL(), "http") + "/v1/live"
			screen, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Authorization": {"Bearer " + srv.AdminToken()}})
			if err != nil {
				t.Fatalf("live: %v", err)
			}
			defer screen.Close()
			if err := screen.WriteJSON(map[string]any{"type": "subscribe", "view": "executive", "window": "5m"}); err != nil {
				t.Fatal(err)
			}
			var msg struct {
				Type     string `json:"type"`
				Degraded bool   `json:"degraded"`
			}
			_ = screen.SetReadDeadline(time.Now().Add(20 * time.Second))
			if err := screen.ReadJSON(&msg); err != nil || !msg.Degraded {
				t.Errorf("live screen's first message with ClickHouse down: %+v, %v; want degraded", msg, err)
			}

			var acked []string
			for i := range 3 {
				acked = append(acked, postEvents(t, srv, fmt.Sprintf("down-%d", i), 40)...)
			}
			if _, r, _ := getReadyz(srv.URL()); r.Spool.Events != int64(len(acked)) {
				t.Errorf("/readyz spool holds %d events, want the %d acknowledged", r.Spool.Events, len(acked))
			}

			proxy.Restore()
			waitFor(t, "the schema is applied and the spool drained", 60*time.Second, func() (bool, string) {
				_, r, err := getReadyz(srv.URL())
				return err == nil && !r.Degraded && r.Spool.Events == 0, fmt.Sprintf("%+v %v", r, err)
			})
			for msg.Degraded {
				_ = screen.SetReadDeadline(time.Now().Add(20 * time.Second))
				if err := screen.ReadJSON(&msg); err != nil {
					t.Fatalf("live screen after ClickHouse came back: %v", err)
				}
			}
			acked = append(acked, postEvents(t, srv, "up", 40)...)
			waitFor(t, "the event posted after ClickHouse came back is drained", 60*time.Second, func() (bool, string) {
				_, r, err := getReadyz(srv.URL())
				return err == nil && r.Spool.Events == 0, fmt.Sprintf("%+v %v", r, err)
			})

			assertStored(t, database, acked)
			if err := srv.Stop(context.Background()); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
}

// TestStopWhileClickHouseIsDown stops a server that never reached ClickHouse: every goroutine
// returns (the background bootstrap included), the acknowledged events stay in the spool, and
// the next start, with ClickHouse back, stores them once.
func TestStopWhileClickHouseIsDown(t *testing.T) {
	cfg, proxy, database := downConfig(t, true)
	check := noLeak(t)
	srv, err := server.Start(context.Background(), cfg, server.Options{})
	if err != nil {
		t.Fatalf("start with ClickHouse down: %v", err)
	}
	acked := postEvents(t, srv, "kept", 25)
	stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = srv.Stop(stopCtx)
	if err == nil || !strings.Contains(err.Error(), "stay in the spool") {
		t.Errorf("stop with ClickHouse down: %v; want an error saying the events stay in the spool", err)
	}
	check()

	proxy.Restore()
	srv, err = server.Start(context.Background(), cfg, server.Options{})
	if err != nil {
		t.Fatalf("start with ClickHouse back: %v", err)
	}
	defer srv.Stop(context.Background())
	waitFor(t, "the spool left by the stop is drained", 60*time.Second, func() (bool, string) {
		_, r, err := getReadyz(srv.URL())
		return err == nil && !r.Degraded && r.Spool.Events == 0, fmt.Sprintf("%+v %v", r, err)
	})
	assertStored(t, database, acked)
}

// assertStored checks, through a connection of its own, that database holds every event of
// acked once and that its rollups agree with the raw table.
func assertStored(t *testing.T, database string, acked []string) {
	t.Helper()
	o := storetest.Options(t)
	o.Database = database
	direct, err := store.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	storetest.AssertStoredOnce(t, direct, acked)
	storetest.AssertRollupsAgree(t, direct)
}
