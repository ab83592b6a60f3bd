package livebench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// subscription is what a screen subscribes to: {"type":"subscribe","view":...}.
type subscription struct {
	View    string              `json:"view"`
	Window  string              `json:"window"`
	Filters map[string][]string `json:"filters,omitempty"`
}

func (s subscription) message() []byte {
	b, _ := json.Marshal(struct {
		Type string `json:"type"`
		subscription
	}{"subscribe", s})
	return b
}

// executive5m is the view of the one-view layout: the executive dashboard (and TV wall) over
// 5 minutes, unfiltered, the most shared view there is.
var executive5m = subscription{View: "executive", Window: "5m"}

// spreadFilters are the distinct views of the spread layout: the executive view filtered to
// one region, product and segment (values of the demo traffic, internal/demo/model.go), first
// over 5 minutes, then 15 minutes and 1 hour. Such filters read the detail rollups and keep the
// full moment × channel grid, so a message weighs about what the unfiltered view's does.
func spreadFilters() []subscription {
	var subs []subscription
	for _, w := range []string{"5m", "15m", "1h"} {
		for _, r := range []string{"north", "south", "east", "west", "central"} {
			for _, p := range []string{"broadband", "mobile", "tv", "smart_home"} {
				for _, s := range []string{"consumer", "small_business", "enterprise"} {
					subs = append(subs, subscription{View: "executive", Window: w, Filters: map[string][]string{
						"region": {r}, "product": {p}, "segment": {s},
					}})
				}
			}
		}
	}
	return subs
}

var dialer = &websocket.Dialer{
	Proxy:            nil, // loopback only, whatever the environment says
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   4096,
	WriteBufferSize:  1024,
}

func wsURL(httpURL, token string) string {
	return strings.Replace(httpURL, "http://", "ws://", 1) + "/v1/live?token=" + token
}

// dialScreen opens /v1/live and subscribes.
func dialScreen(ctx context.Context, url string, sub subscription) (*websocket.Conn, error) {
	conn, resp, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial /v1/live: %w (HTTP %s)", err, resp.Status)
		}
		return nil, fmt.Errorf("dial /v1/live: %w", err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, sub.message()); err != nil {
		conn.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return conn, nil
}

// sample is one message a fan-out screen received.
type sample struct {
	seq        uint64
	tick, recv int64 // Unix nanoseconds: the feed's tick, and when the whole message was read
	size       int64 // bytes of the message
}

// lightScreen is a fan-out screen. It reads every message to the end but parses only the
// head (type, seq, tick, degraded), so that 5,000 of them cost the load generator as little
// as possible: the JSON body is discarded unparsed.
type lightScreen struct {
	conn *websocket.Conn
	view int // index of its view in the phase

	// Written by the reading goroutine; read after done is closed.
	samples   []sample
	snapshots int
	degraded  int
	errors    int   // "error" messages: a bad subscription
	err       error // why reading stopped
	ended     int64 // when reading stopped (Unix nanoseconds)
	done      chan struct{}
}

// headBytes is how much of a message is parsed: type, seq, feed, view, tick, newest_event and
// degraded come first (live.Message's field order) and take well under 512 bytes.
const headBytes = 512

func (s *lightScreen) read() {
	defer close(s.done)
	head := make([]byte, headBytes)
	for {
		_, r, err := s.conn.NextReader()
		if err != nil {
			s.err, s.ended = err, time.Now().UnixNano()
			return
		}
		n, err := io.ReadFull(r, head)
		size := int64(n)
		if err == nil {
			var rest int64
			rest, err = io.Copy(io.Discard, r)
			size += rest
		} else if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = nil // a message shorter than head
		}
		if err != nil {
			s.err, s.ended = err, time.Now().UnixNano()
			return
		}
		recv := time.Now().UnixNano()
		h, ok := parseHead(head[:n])
		switch {
		case !ok || h.typ == "error":
			s.errors++
			continue
		case h.typ == "snapshot":
			s.snapshots++
		}
		if h.degraded {
			s.degraded++
		}
		s.samples = append(s.samples, sample{seq: h.seq, tick: h.tick, recv: recv, size: size})
	}
}

type head struct {
	typ      string
	seq      uint64
	tick     int64
	degraded bool
}

// parseHead reads the fields of a message's head without decoding the rest.
func parseHead(b []byte) (head, bool) {
	var h head
	typ, ok := stringField(b, `"type":"`)
	if !ok {
		return h, false
	}
	h.typ = typ
	if h.typ == "error" {
		return h, true
	}
	i := bytes.Index(b, []byte(`"seq":`))
	if i < 0 {
		return h, false
	}
	j := i + len(`"seq":`)
	k := j
	for k < len(b) && b[k] >= '0' && b[k] <= '9' {
		k++
	}
	seq, err := strconv.ParseUint(string(b[j:k]), 10, 64)
	if err != nil {
		return h, false
	}
	tick, ok := stringField(b, `"tick":"`)
	if !ok {
		return h, false
	}
	t, err := time.Parse(time.RFC3339Nano, tick)
	if err != nil {
		return h, false
	}
	h.seq, h.tick = seq, t.UnixNano()
	h.degraded = bytes.Contains(b, []byte(`"degraded":true`))
	return h, true
}

func stringField(b []byte, prefix string) (string, bool) {
	i := bytes.Index(b, []byte(prefix))
	if i < 0 {
		return "", false
	}
	rest := b[i+len(prefix):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return string(rest[:j]), true
}

// dialAll opens n screens, batch at a time (a batch is dialled concurrently, batches one after
// the other, so the server's accept queue never sees thousands of SYNs at once). Screen i
// subscribes to subs[i % len(subs)].
func dialAll(ctx context.Context, url string, n, batch int, subs []subscription) (screens []*lightScreen, failures int, firstErr error) {
	screens = make([]*lightScreen, 0, n)
	var mu sync.Mutex
	for start := 0; start < n; start += batch {
		if err := ctx.Err(); err != nil {
			return screens, failures, err
		}
		var wg sync.WaitGroup
		for i := start; i < min(start+batch, n); i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				view := i % len(subs)
				conn, err := dialScreen(ctx, url, subs[view])
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failures++
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				s := &lightScreen{conn: conn, view: view, done: make(chan struct{})}
				screens = append(screens, s)
				go s.read()
			}(i)
		}
		wg.Wait()
	}
	return screens, failures, firstErr
}

// closeAll closes the screens' connections and waits for their readers.
func closeAll(screens []*lightScreen) {
	for _, s := range screens {
		s.conn.Close()
	}
	for _, s := range screens {
		<-s.done
	}
}
