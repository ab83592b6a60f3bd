package web_test

// Tests of GET /v1/live with real WebSocket clients against a real server and ClickHouse.

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

const adminToken = "tba_test_admin"

type liveServer struct {
	*testServer
	hub *live.Hub
}

// startLive serves the ingest API and /v1/live with the given tick and ping interval.
func startLive(t *testing.T, tick, ping time.Duration) *liveServer {
	t.Helper()
	db := storetest.Open(t)
	hub := live.NewHub(db, live.Options{Tick: tick}, slog.New(slog.DiscardHandler))
	ts := startServer(t, serverConfig{db: db, web: web.Options{
		Hub:  hub,
		Live: web.LiveOptions{PingInterval: ping, WriteTimeout: time.Second},
	}})
	t.Cleanup(hub.Close) // runs before the server's shutdown: screens get 1001 first
	return &liveServer{testServer: ts, hub: hub}
}

func (s *liveServer) wsURL(token string) string {
	u := strings.Replace(s.url, "http://", "ws://", 1) + "/v1/live"
	if token != "" {
		u += "?token=" + token
	}
	return u
}

type liveMsg struct {
	Type        string         `json:"type"`
	Seq         uint64         `json:"seq"`
	Tick        *time.Time     `json:"tick"`
	NewestEvent *time.Time     `json:"newest_event"`
	Degraded    bool           `json:"degraded"`
	Error       string         `json:"error"`
	Charts      map[string]any `json:"charts"`
	Data        struct {
		KPIs struct {
			Events uint64 `json:"events"`
		} `json:"kpis"`
	} `json:"data"`
}

type screen struct {
	t    *testing.T
	conn *websocket.Conn
}

func (s *liveServer) dial(t *testing.T) *screen {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(s.wsURL(adminToken), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	return &screen{t: t, conn: conn}
}

func (c *screen) subscribe(view, window string) {
	c.t.Helper()
	msg := fmt.Sprintf(`{"type":"subscribe","view":%q,"window":%q}`, view, window)
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *screen) read() (liveMsg, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		return liveMsg{}, err
	}
	var m liveMsg
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("message is not JSON: %v: %s", err, b)
	}
	return m, nil
}

func (c *screen) mustRead() liveMsg {
	c.t.Helper()
	m, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

func TestLiveSnapshotThenSequencedUpdates(t *testing.T) {
	s := startLive(t, 100*time.Millisecond, time.Second)
	c := s.dial(t)
	c.subscribe("executive", "5m")
	first := c.mustRead()
	if first.Type != "snapshot" || first.Seq == 0 || first.Tick == nil {
		t.Fatalf("first message = %+v, want a snapshot with seq and tick", first)
	}
	for _, name := range []string{"heatmap", "trend_volume", "trend_csat"} {
		opt, ok := first.Charts[name].(map[string]any)
		if !ok || opt["series"] == nil {
			t.Fatalf("snapshot chart %s = %v, want full options with series", name, first.Charts[name])
		}
	}
	// The gauges repeated the tiles and the funnel's event counts were no conversion: gone.
	for _, name := range []string{"gauge_nps", "gauge_csat", "gauge_ces", "funnel"} {
		if _, ok := first.Charts[name]; ok {
			t.Errorf("snapshot has a %s chart", name)
		}
	}
	if _, ok := first.Charts["heatmap"].(map[string]any)["xAxis"]; !ok {
		t.Fatalf("snapshot heatmap has no xAxis: full options expected")
	}
	prev := first.Seq
	for i := 0; i < 5; i++ {
		m := c.mustRead()
		if m.Type != "update" {
			t.Fatalf("message %d type %q, want update", i, m.Type)
		}
		if m.Seq <= prev {
			t.Fatalf("seq went from %d to %d", prev, m.Seq)
		}
		prev = m.Seq
		heat := m.Charts["heatmap"].(map[string]any)
		if len(heat) != 1 || heat["series"] == nil {
			t.Fatalf("update heatmap = %v, want only series data", heat)
		}
	}
}

func TestLiveEventShowsUpWithinTwoTicks(t *testing.T) {
	s := startLive(t, 200*time.Millisecond, time.Second)
	c := s.dial(t)
	c.subscribe("executive", "5m")
	m := c.mustRead()
	before, lastSeq := m.Data.KPIs.Events, m.Seq

	// Keep reading in the background, recording the seq of every message.
	type seen struct {
		seq    uint64
		events uint64
	}
	msgs := make(chan seen, 100)
	go func() {
		for {
			m, err := c.read()
			if err != nil {
				close(msgs)
				return
			}
			msgs <- seen{m.Seq, m.Data.KPIs.Events}
		}
	}()
	_, evs := batch("live", 1, time.Now().UTC().Add(-time.Second).Truncate(time.Second))
	s.mustPost(t, ndjson(evs)).accepted(t, 1, 0)
	// The 202 means durable in the spool; the event is in ClickHouse one batch later (a flush
	// interval and an insert). From there, the live path has two ticks.
	s.settle(t)
	// The seq current when the event was stored.
drain:
	for {
		select {
		case x := <-msgs:
			lastSeq = x.seq
			if x.events > before {
				return // already there
			}
		default:
			break drain
		}
	}
	for x := range msgs {
		if x.events > before {
			if x.seq > lastSeq+2 {
				t.Fatalf("event appeared at seq %d, stored at seq %d: more than two ticks", x.seq, lastSeq)
			}
			return
		}
		if x.seq > lastSeq+3 {
			t.Fatalf("event not shown by seq %d (stored at seq %d)", x.seq, lastSeq)
		}
	}
	t.Fatal("connection ended before the event showed up")
}

func TestLiveSlowScreenClosedOthersKeepCadence(t *testing.T) {
	s := startLive(t, 50*time.Millisecond, 150*time.Millisecond)
	slow, fast := s.dial(t), s.dial(t)
	slow.subscribe("executive", "1m")
	fast.subscribe("executive", "1m")
	slow.mustRead()

	var fastSeqs []uint64
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) { // the slow screen reads nothing meanwhile
		fastSeqs = append(fastSeqs, fast.mustRead().Seq)
	}
	for i := 1; i < len(fastSeqs); i++ {
		if fastSeqs[i] <= fastSeqs[i-1] {
			t.Fatalf("fast screen's seq went from %d to %d", fastSeqs[i-1], fastSeqs[i])
		}
	}
	if len(fastSeqs) < 10 {
		t.Fatalf("fast screen got %d messages in 1.5 s at a 50 ms tick: it was slowed down", len(fastSeqs))
	}
	for {
		_, err := slow.read()
		if err == nil {
			continue // messages buffered before the close
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 1008 {
			t.Fatalf("slow screen ended with %v, want close 1008", err)
		}
		break
	}
	if got := s.hub.Stats().Closes[live.SlowConsumer.String()]; got != 1 {
		t.Fatalf("slow-consumer closes = %d, want 1", got)
	}
}

func TestLiveHundredScreensOneQuerySet(t *testing.T) {
	s := startLive(t, 100*time.Millisecond, time.Second)
	var wg sync.WaitGroup
	screens := make([]*screen, 100)
	for i := range screens {
		screens[i] = s.dial(t)
		screens[i].subscribe("executive", "5m")
	}
	for _, c := range screens {
		wg.Add(1)
		go func(c *screen) {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				if _, err := c.read(); err != nil {
					t.Errorf("read: %v", err)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	st := s.hub.Stats()
	if st.Feeds != 1 || st.Clients != 100 {
		t.Fatalf("stats = %+v, want 1 feed with 100 clients", st)
	}
	// The executive view costs two queries per tick, whatever the number of screens.
	if st.Queries != 2*st.Ticks {
		t.Fatalf("%d queries in %d ticks, want 2 per tick", st.Queries, st.Ticks)
	}
	other := s.dial(t)
	other.subscribe("drilldown", "5m")
	other.mustRead()
	if st := s.hub.Stats(); st.Feeds != 2 {
		t.Fatalf("feeds = %d after a second distinct view, want 2", st.Feeds)
	}
}

func TestLiveReconnectGetsSnapshot(t *testing.T) {
	s := startLive(t, 100*time.Millisecond, time.Second)
	for i := 0; i < 2; i++ {
		c := s.dial(t)
		c.subscribe("tv", "15m")
		if m := c.mustRead(); m.Type != "snapshot" {
			t.Fatalf("connection %d: first message %q, want snapshot", i, m.Type)
		}
		c.mustRead()
		c.conn.Close()
	}
}

func TestLiveRefusesBadMessages(t *testing.T) {
	s := startLive(t, 100*time.Millisecond, time.Second)
	cases := []struct{ msg, want string }{
		{`{"type":"subscribe"`, "not a valid JSON object"},
		{`{"type":"hello"}`, `type "hello"`},
		{`{"type":"subscribe","view":"wall"}`, `view "wall"`},
		{`{"type":"subscribe","view":"executive","window":"2h"}`, "window"},
		{`{"type":"subscribe","view":"executive","filters":{"channel":["fax"]}}`, "filters.channel"},
		{`{"type":"subscribe","view":"executive","filters":{"region":["x"]},"extra":1}`, "extra"},
	}
	c := s.dial(t)
	for _, tc := range cases {
		if err := c.conn.WriteMessage(websocket.TextMessage, []byte(tc.msg)); err != nil {
			t.Fatal(err)
		}
		m := c.mustRead()
		if m.Type != "error" || !strings.Contains(m.Error, tc.want) {
			t.Errorf("%s: got %+v, want an error naming %q", tc.msg, m, tc.want)
		}
	}
	// A message over the read limit closes the connection with 1009.
	big := `{"type":"subscribe","view":"executive","filters":{"region":["` + strings.Repeat("x", 8000) + `"]}}`
	_ = c.conn.WriteMessage(websocket.TextMessage, []byte(big))
	_, err := c.read()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1009 {
		t.Fatalf("oversize message: %v, want close 1009", err)
	}
}

// TestLiveTVWithATokenBeats: the TV page opened with an admin's token (no paired screen) sends
// heartbeats like a paired one; they are dropped, the feed goes on, and no error reaches it.
func TestLiveTVWithATokenBeats(t *testing.T) {
	s := startLive(t, 100*time.Millisecond, time.Second)
	c := s.dial(t)
	c.subscribe("tv", "15m")
	if m := c.mustRead(); m.Type != "snapshot" {
		t.Fatalf("first message %q, want snapshot", m.Type)
	}
	beat := `{"type":"heartbeat","resolution":"1920x1080","version":"\"abc\"","errors":[]}`
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(beat)); err != nil {
		t.Fatal(err)
	}
	for range 5 { // ticks of 100 ms: the beat would have been answered within them
		if m := c.mustRead(); m.Type != "update" {
			t.Fatalf("after a heartbeat: %+v, want the feed's updates and no error", m)
		}
	}
}

func TestLiveHandshakeChecks(t *testing.T) {
	s := startLive(t, 100*time.Millisecond, time.Second)
	cases := []struct {
		name   string
		token  string
		origin string
		want   int
	}{
		{"no token", "", "", http.StatusUnauthorized},
		{"wrong token", "nope", "", http.StatusUnauthorized},
		{"ingest key is not a viewer token", testKey, "", http.StatusUnauthorized},
		{"foreign origin", adminToken, "http://evil.example", http.StatusForbidden},
		{"own origin", adminToken, strings.TrimSuffix(s.url, "/"), http.StatusSwitchingProtocols},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(s.wsURL(tc.token), h)
			if conn != nil {
				conn.Close()
			}
			if resp == nil {
				t.Fatalf("no HTTP answer: %v", err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestLiveShutdownSaysGoingAway(t *testing.T) {
	s := startLive(t, 100*time.Millisecond, time.Second)
	c := s.dial(t)
	c.subscribe("executive", "5m")
	c.mustRead()
	s.hub.Close()
	for {
		_, err := c.read()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 1001 {
			t.Fatalf("after shutdown: %v, want close 1001", err)
		}
		return
	}
}

// TestLiveEventShowsUpWhenItLands: with the hub following the drainer (live.Options.Landed), an
// event shows on a screen as soon as it is in ClickHouse, without waiting for the tick, here an
// hour away: the message counting it can only come from the landing.
func TestLiveEventShowsUpWhenItLands(t *testing.T) {
	db := storetest.Open(t)
	var writer atomic.Pointer[ingest.Writer]
	hub := live.NewHub(db, live.Options{Tick: time.Hour, MinTick: 50 * time.Millisecond,
		Landed: func() <-chan struct{} { return writer.Load().Landed() }}, slog.New(slog.DiscardHandler))
	ts := startServer(t, serverConfig{db: db, web: web.Options{
		Hub:  hub,
		Live: web.LiveOptions{PingInterval: time.Second, WriteTimeout: time.Second},
	}})
	writer.Store(ts.writer)
	t.Cleanup(hub.Close)
	s := &liveServer{testServer: ts, hub: hub}

	c := s.dial(t)
	c.subscribe("executive", "5m")
	first := c.mustRead()
	if first.Type != "snapshot" || first.Data.KPIs.Events != 0 {
		t.Fatalf("first message %s with %d events, want a snapshot of an empty database", first.Type, first.Data.KPIs.Events)
	}
	for i := range 3 {
		_, evs := batch(fmt.Sprintf("landed%d", i), 2, time.Now().UTC().Add(-time.Second))
		s.mustPost(t, jsonArray(evs)).accepted(t, 2, 0)
		// The next message is the tick the landing brought forward; it counts the events.
		m := c.mustRead()
		if m.Type != "update" || m.Data.KPIs.Events != uint64(2*(i+1)) {
			t.Fatalf("after batch %d: %s counting %d events, want an update counting %d", i+1, m.Type, m.Data.KPIs.Events, 2*(i+1))
		}
	}
}
