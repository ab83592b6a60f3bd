package soak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
)

// soakViews are the subscriptions of the screens, assigned round-robin: what a contact centre
// has open (the TV wall's executive view, which the tv view shares, the drill-down, a filtered
// drill-down, longer windows).
var soakViews = []string{
	`{"type":"subscribe","view":"tv","window":"5m"}`,
	`{"type":"subscribe","view":"executive","window":"5m"}`,
	`{"type":"subscribe","view":"executive","window":"1h"}`,
	`{"type":"subscribe","view":"drilldown","window":"15m"}`,
	`{"type":"subscribe","view":"drilldown","window":"5m","filters":{"moment":["service"],"channel":["voice","chat"]}}`,
	`{"type":"subscribe","view":"executive","window":"15m","filters":{"region":["north"]}}`,
}

const (
	// screenReadTimeout closes a screen that has had no message for this long (the server
	// sends one per tick, 1 s by default): a stalled feed shows as closes, not as silence.
	screenReadTimeout = 30 * time.Second
	// Reconnection waits like the dashboards do: backoff with jitter, 1 s doubling up to 30 s.
	minRedial = time.Second
	maxRedial = 30 * time.Second
)

// screens are the live WebSocket clients. Each reads every message whole, and reconnects
// (with backoff) when its connection ends, until stop.
type screens struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	connected                            atomic.Int64
	messages, bytes, snapshots, degraded atomic.Int64
	errorMessages, dials, dialFailures   atomic.Int64
	mu                                   sync.Mutex
	closes                               map[string]int // why connections ended, before stop
	firstDialError                       string
}

var wsDialer = &websocket.Dialer{
	Proxy:            nil, // loopback only, whatever the environment says
	HandshakeTimeout: 10 * time.Second,
}

// startScreens opens n screens, spread over the first 5 seconds so that the server's accept
// queue does not take them all at once.
func startScreens(ctx context.Context, srv *server, n int) *screens {
	ctx, cancel := context.WithCancel(ctx)
	s := &screens{cancel: cancel, closes: map[string]int{}}
	url := strings.Replace(srv.url, "http://", "ws://", 1) + "/v1/live"
	header := http.Header{"Authorization": {"Bearer " + srv.admin}}
	for i := range n {
		delay := time.Duration(i) * 5 * time.Second / time.Duration(max(n, 1))
		sub := []byte(soakViews[i%len(soakViews)])
		s.wg.Go(func() { s.hold(ctx, url, header, sub, delay) })
	}
	return s
}

// hold keeps one screen connected until ctx ends.
func (s *screens) hold(ctx context.Context, url string, header http.Header, sub []byte, wait time.Duration) {
	backoff := minRedial
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		s.dials.Add(1)
		conn, resp, err := wsDialer.DialContext(ctx, url, header)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if resp != nil {
				err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
			}
			s.dialFailed(err)
		} else {
			read := s.read(ctx, conn, sub)
			if read > 0 {
				backoff = minRedial
			}
		}
		if ctx.Err() != nil {
			return
		}
		wait = backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, maxRedial)
	}
}

// read subscribes and reads messages until the connection ends; it returns how many it read.
func (s *screens) read(ctx context.Context, conn *websocket.Conn, sub []byte) (n int) {
	closeOnStop := context.AfterFunc(ctx, func() { conn.Close() })
	defer closeOnStop()
	defer conn.Close()
	if err := conn.WriteMessage(websocket.TextMessage, sub); err != nil {
		s.ended(ctx, err)
		return 0
	}
	s.connected.Add(1)
	defer s.connected.Add(-1)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(screenReadTimeout))
		_, msg, err := conn.ReadMessage()
		if err != nil {
			s.ended(ctx, err)
			return n
		}
		n++
		s.messages.Add(1)
		s.bytes.Add(int64(len(msg)))
		head := msg[:min(len(msg), 512)] // type, seq, feed, view, tick and degraded come first
		switch {
		case bytes.Contains(head, []byte(`"type":"snapshot"`)):
			s.snapshots.Add(1)
		case bytes.Contains(head, []byte(`"type":"error"`)):
			s.errorMessages.Add(1)
		}
		if bytes.Contains(head, []byte(`"degraded":true`)) {
			s.degraded.Add(1)
		}
	}
}

func (s *screens) dialFailed(err error) {
	s.dialFailures.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstDialError == "" {
		s.firstDialError = oneLine(err.Error(), 160)
	}
}

// ended counts why a connection ended, unless the soak itself closed it.
func (s *screens) ended(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closes[closeReason(err)]++
}

// closeReason names the end of a connection by its WebSocket close code.
func closeReason(err error) string {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		name := map[int]string{
			websocket.CloseNormalClosure:     "normal",
			websocket.CloseGoingAway:         "going away",
			websocket.ClosePolicyViolation:   "policy violation: slow consumer",
			websocket.CloseMessageTooBig:     "message too big",
			websocket.CloseInternalServerErr: "internal error",
			websocket.CloseTryAgainLater:     "try again later",
		}[ce.Code]
		if name == "" {
			return fmt.Sprint(ce.Code)
		}
		return fmt.Sprintf("%d %s", ce.Code, name)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no message for %s", screenReadTimeout)
	}
	return "1006 no close frame"
}

// stop closes every screen and waits for them.
func (s *screens) stop() {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
}

// screenTotals is what the screens saw, for the report.
type screenTotals struct {
	Messages, Bytes, Snapshots, Degraded, ErrorMessages int64
	Dials, DialFailures                                 int64
	FirstDialError                                      string
	Closes                                              string // by reason, e.g. "1001 going away: 3"
	Ends                                                int
}

func (s *screens) totals() screenTotals {
	t := screenTotals{
		Messages: s.messages.Load(), Bytes: s.bytes.Load(), Snapshots: s.snapshots.Load(),
		Degraded: s.degraded.Load(), ErrorMessages: s.errorMessages.Load(),
		Dials: s.dials.Load(), DialFailures: s.dialFailures.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.FirstDialError = s.firstDialError
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(s.closes)) {
		parts = append(parts, fmt.Sprintf("%s: %d", r, s.closes[r]))
		t.Ends += s.closes[r]
	}
	t.Closes = strings.Join(parts, ", ")
	return t
}
