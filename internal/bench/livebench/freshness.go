package livebench

// Freshness, precisely. With demo traffic running, the bench posts a marker event every
// -marker-interval through POST /v1/events, one request at a time, with occurred_at = the
// moment the request is sent and a region of its own ("lbench-<random>-<run>") that no other
// event has. Two screens are subscribed the whole time:
//
//   - the marker screen: executive view, window 1h, filtered to the markers' region. Its
//     data.kpis.events counts exactly the markers committed so far (each is acknowledged
//     before the next is sent), so marker k is on screen in the first message whose count,
//     less the count before the first marker, reaches k.
//
//     freshness(k) = time the screen received that message − time marker k's POST was sent.
//
//     It is the whole path: the HTTP request, the writer's batching and ClickHouse insert
//     (202 means committed), the wait for the feed's next tick, the tick's queries, encoding and
//     delivery. It is reported with its parts: send → 202, 202 → tick (the tick time the message
//     carries), tick → receive.
//
//   - the wall screen: the unfiltered executive view over 5 minutes (what a TV wall shows). Its
//     newest_event is the newest second with data; the "second covered" time of marker k is
//     the first message after the send whose newest_event >= marker k's occurred_at truncated
//     to the second. Demo events of the same second can cover it before the marker does, so
//     this is what the screen's freshness badge claims, a lower figure than the marker's own.

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/benchkit"
)

// fullMsg is the part of a live message the freshness screens decode.
type fullMsg struct {
	recv        time.Time
	Type        string     `json:"type"`
	Seq         uint64     `json:"seq"`
	Tick        *time.Time `json:"tick"`
	NewestEvent *time.Time `json:"newest_event"`
	Degraded    bool       `json:"degraded"`
	Data        struct {
		KPIs struct {
			Events uint64 `json:"events"`
		} `json:"kpis"`
	} `json:"data"`
}

// fullScreen records every message it receives, decoded.
type fullScreen struct {
	conn       *websocket.Conn
	msgs       []fullMsg // read after done
	lastUpdate []byte    // the last "update" message, raw
	first      chan struct{}
	done       chan struct{}
	err        error
}

func openFullScreen(ctx context.Context, url string, sub subscription) (*fullScreen, error) {
	conn, err := dialScreen(ctx, url, sub)
	if err != nil {
		return nil, err
	}
	s := &fullScreen{conn: conn, first: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				s.err = err
				return
			}
			m := fullMsg{recv: time.Now()}
			if err := json.Unmarshal(b, &m); err != nil || m.Type == "error" {
				s.err = fmt.Errorf("unexpected message %.200s", b)
				return
			}
			s.msgs = append(s.msgs, m)
			if m.Type == "update" {
				s.lastUpdate = b
			}
			if len(s.msgs) == 1 {
				close(s.first)
			}
		}
	}()
	return s, nil
}

type marker struct {
	sent, acked time.Time
	occurred    time.Time
	ok          bool
}

// freshResult is what the freshness experiment measured.
type freshResult struct {
	Duration     time.Duration
	Markers      int // acknowledged
	Failed       int // not acknowledged
	NotSeen      int // acknowledged but never on the marker screen
	DemoRate     float64
	Fresh        dist // send → marker on screen
	Ack          dist // send → 202
	AckToTick    dist // 202 → tick of the message that showed it (negative: the tick's queries ran after the commit although the tick started before the 202)
	TickToRecv   dist // tick → receive of that message
	Second       dist // send → wall screen's newest_event covers the marker's second
	SecondMissed int
	CPU          cpuUse
	Mem          benchkit.Proc
	Warnings     int
	Degraded     int
	// QueriesPerS are the ClickHouse queries of all the live feeds per second over the markers'
	// time, TicksPerS the ticks per second of one feed (GET /v1/stats).
	QueriesPerS, TicksPerS float64
	// Update is what an update of the unfiltered 5m view is made of.
	Update composition
}

// composition is the size of an update message and of its parts, and what per-message
// compression (DEFLATE, as permessage-deflate uses) would make of it.
type composition struct {
	Total, Deflated int
	Parts           []part // largest first
}

type part struct {
	Name  string
	Bytes int
}

func compose(msg []byte) composition {
	c := composition{Total: len(msg)}
	var buf bytes.Buffer
	if w, err := flate.NewWriter(&buf, flate.DefaultCompression); err == nil {
		_, _ = w.Write(msg)
		_ = w.Close()
		c.Deflated = buf.Len()
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(msg, &top) != nil {
		return c
	}
	for _, k := range []string{"data", "charts"} {
		var sub map[string]json.RawMessage
		if json.Unmarshal(top[k], &sub) != nil {
			continue
		}
		for name, v := range sub {
			c.Parts = append(c.Parts, part{k + "." + name, len(v)})
		}
	}
	sort.Slice(c.Parts, func(i, j int) bool { return c.Parts[i].Bytes > c.Parts[j].Bytes })
	return c
}

func (e *benchEnv) freshness(ctx context.Context, run int) (freshResult, error) {
	var res freshResult
	srv, err := e.launch(ctx, fmt.Sprintf("fresh-%d", run))
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	region := fmt.Sprintf("lbench-%s-%d", e.suffix, run)
	url := wsURL(srv.URL, e.admin)
	mk, err := openFullScreen(ctx, url, subscription{View: "executive", Window: "1h", Filters: map[string][]string{"region": {region}}})
	if err != nil {
		return res, err
	}
	defer mk.conn.Close()
	wall, err := openFullScreen(ctx, url, executive5m)
	if err != nil {
		return res, err
	}
	defer wall.conn.Close()
	for _, s := range []*fullScreen{mk, wall} {
		select {
		case <-s.first:
		case <-s.done:
			return res, fmt.Errorf("screen closed before its first message: %v", s.err)
		case <-time.After(10 * time.Second):
			return res, fmt.Errorf("no live message within 10 s")
		}
	}
	if err := sleep(ctx, e.o.warmup); err != nil {
		return res, err
	}

	cpu0 := sampleCPU(srv.PID, e.chPID)
	st0, err := e.stats(ctx, srv.URL)
	if err != nil {
		return res, err
	}
	started := time.Now()
	var markers []marker
	t := time.NewTicker(e.o.markerInterval)
	end := time.Now().Add(e.o.freshDuration)
	for k := 1; time.Now().Before(end); k++ {
		m, err := e.postMarker(ctx, srv.URL, region, k)
		if err != nil {
			return res, err
		}
		markers = append(markers, m)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-t.C:
		}
	}
	t.Stop()
	// Give the last marker time to show up: its commit, then at most a tick and the queries.
	if err := sleep(ctx, 3*e.o.tick+time.Second); err != nil {
		return res, err
	}
	cpu1 := sampleCPU(srv.PID, e.chPID)
	st1, err := e.stats(ctx, srv.URL)
	if err != nil {
		return res, err
	}
	secs := time.Since(started).Seconds()
	res.QueriesPerS, res.TicksPerS = float64(st1.Queries-st0.Queries)/secs, float64(st1.Ticks-st0.Ticks)/secs/float64(max(1, st1.Feeds))
	res.CPU, res.Mem = cpuBetween(cpu0, cpu1, srv.PID == os.Getpid()), readProc(srv.PID)
	res.Duration = e.o.freshDuration
	if r, err := e.demoRate(ctx, srv); err == nil {
		res.DemoRate = r
	} else {
		e.log.Warn("demo rate", "err", err)
	}
	mk.conn.Close()
	wall.conn.Close()
	<-mk.done
	<-wall.done
	res.Warnings = srv.Warnings()
	if err := srv.Stop(); err != nil {
		return res, err
	}
	matchMarkers(&res, markers, mk.msgs, wall.msgs)
	res.Update = compose(wall.lastUpdate)
	e.log.Info("freshness done", "markers", res.Markers, "fresh_p50_ms", res.Fresh.P50, "fresh_p99_ms", res.Fresh.P99,
		"second_p99_ms", res.Second.P99, "demo_rate", fmt.Sprintf("%.0f", res.DemoRate))
	return res, nil
}

// postMarker sends marker k and waits for its 202.
func (e *benchEnv) postMarker(ctx context.Context, url, region string, k int) (marker, error) {
	m := marker{sent: time.Now()}
	m.occurred = m.sent.UTC()
	body, _ := json.Marshal(map[string]string{
		"event_id":    fmt.Sprintf("%s-%d", region, k),
		"occurred_at": m.occurred.Format(time.RFC3339Nano),
		"moment":      "service",
		"channel":     "chat",
		"touchpoint":  "lbench_marker",
		"region":      region,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return m, err
	}
	req.Header.Set("Authorization", "Bearer "+e.ingestKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return m, fmt.Errorf("post marker %d: %w", k, err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	m.acked = time.Now()
	var ans struct {
		Accepted int `json:"accepted"`
	}
	_ = json.Unmarshal(b, &ans)
	m.ok = resp.StatusCode == http.StatusAccepted && ans.Accepted == 1
	if !m.ok {
		e.log.Warn("marker not acknowledged", "k", k, "status", resp.Status, "body", string(b))
	}
	return m, nil
}

func matchMarkers(res *freshResult, markers []marker, mk, wall []fullMsg) {
	for _, m := range append(mk, wall...) {
		if m.Degraded {
			res.Degraded++
		}
	}
	if len(markers) == 0 {
		return
	}
	// The marker count before the first marker (0 unless the region was used before).
	var offset uint64
	for _, m := range mk {
		if m.recv.Before(markers[0].sent) {
			offset = m.Data.KPIs.Events
		}
	}
	var fresh, ack, ackTick, tickRecv, second []int64
	k := uint64(0) // acknowledged markers so far
	for _, mr := range markers {
		if !mr.ok {
			res.Failed++
			continue
		}
		k++
		res.Markers++
		ack = append(ack, int64(mr.acked.Sub(mr.sent)))
		seen := false
		for _, m := range mk {
			if m.recv.After(mr.sent) && m.Data.KPIs.Events >= offset+k {
				fresh = append(fresh, int64(m.recv.Sub(mr.sent)))
				if m.Tick != nil {
					ackTick = append(ackTick, int64(m.Tick.Sub(mr.acked)))
					tickRecv = append(tickRecv, int64(m.recv.Sub(*m.Tick)))
				}
				seen = true
				break
			}
		}
		if !seen {
			res.NotSeen++
		}
		covered := false
		sec := mr.occurred.Truncate(time.Second)
		for _, m := range wall {
			if m.recv.After(mr.sent) && m.NewestEvent != nil && !m.NewestEvent.Before(sec) {
				second = append(second, int64(m.recv.Sub(mr.sent)))
				covered = true
				break
			}
		}
		if !covered {
			res.SecondMissed++
		}
	}
	res.Fresh, res.Ack, res.Second = summarize(fresh), summarize(ack), summarize(second)
	res.AckToTick, res.TickToRecv = summarize(ackTick), summarize(tickRecv)
}
