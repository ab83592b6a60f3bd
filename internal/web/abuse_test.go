package web_test

// Tests of a whole Truthboard, started as `truthboard serve` starts it (server.Start) with the
// default limits, against clients that try to use up what others need: huge bodies before
// authentication, floods of live subscriptions from a read-only token, slow uploads, wrong
// credentials, forged forwarded headers. Each asserts what the other users see: their answers
// go on, and the attacker gets a refusal that says why.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/server"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

const (
	wholeAdmin = "tba_whole_server_test_admin"
	wholeKeyA  = "tbi_whole_server_key_a"
	wholeKeyB  = "tbi_whole_server_key_b"
)

// whole is a running Truthboard on a fresh test database.
type whole struct {
	*server.Server
	host string // host:port
}

// startWhole starts a whole server with the default configuration, on a free loopback port
// and a fresh database, with two ingest keys and an admin token; set changes the configuration.
func startWhole(t *testing.T, set func(*config.Config)) *whole {
	t.Helper()
	db := storetest.Open(t)
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.ClickHouseAddr = storetest.Addr()
	cfg.ClickHouseDatabase = db.Database()
	cfg.ClickHouseUser = os.Getenv("TRUTHBOARD_CLICKHOUSE_USER")
	cfg.ClickHousePassword = os.Getenv("TRUTHBOARD_CLICKHOUSE_PASSWORD")
	if cfg.ClickHouseUser == "" {
		cfg.ClickHouseUser = "default"
	}
	cfg.IngestKeys = []string{wholeKeyA, wholeKeyB}
	cfg.AdminToken = wholeAdmin
	cfg.LiveTick = 200 * time.Millisecond
	cfg.ShutdownTimeout = 10 * time.Second
	if set != nil {
		set(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.Start(context.Background(), cfg, server.Options{})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return &whole{Server: srv, host: strings.TrimPrefix(srv.URL(), "http://")}
}

// clientFrom is an HTTP client whose connections come from the loopback address local
// (127.0.0.2 …): every address of 127.0.0.0/8 reaches the server on 127.0.0.1, each seen as a
// client of its own.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// call sends a request and returns its status, headers and body; headers are name, value pairs.
func call(t *testing.T, cl *http.Client, method, u, body string, headers ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// metric is the value of one series of GET /metrics, e.g.
// `truthboard_http_refused_total{reason="expect_refused"}`.
func (w *whole) metric(t *testing.T, series string) float64 {
	t.Helper()
	// From an address of its own: a test's attacker may have got its address throttled.
	status, _, body := call(t, clientFrom("127.0.0.10"), http.MethodGet, w.URL()+"/metrics", "", "Authorization", "Bearer "+wholeAdmin)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", status)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return 0
}

// oneEvent is a body of one valid event.
func oneEvent(id string) string { return eventJSON(id, base(), 1) }

// rss is the resident memory of this process (the server runs in it), from procfs.
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// upload sends head, then a body of size bytes as fast as the server takes it, over a raw
// connection, and returns the answer's status line and how many body bytes the connection
// took before the answer came (or the connection ended).
func upload(t *testing.T, host, head string, size int64) (status string, sent int64) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		chunk := make([]byte, 64<<10)
		for written.Load() < size {
			n, err := conn.Write(chunk[:min(int64(len(chunk)), size-written.Load())])
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	sent = written.Load()
	conn.Close() // ends the writer if it is still blocked
	<-done
	if err != nil {
		return "no answer: " + err.Error(), sent
	}
	return strings.TrimSpace(line), sent
}

// A multipart body before any authentication (here to /livez, which takes no body) is refused
// from its headers: the server reads at most what the sockets buffer, not the 300 MB, writes
// no temporary file, and its memory does not grow with 20 such uploads at once.
func TestMultipartBodyIsNotReadBeforeAuthentication(t *testing.T) {
	w := startWhole(t, nil)
	head := func(size int64) string {
		return "POST /livez HTTP/1.1\r\nHost: " + w.host + "\r\nContent-Type: multipart/form-data; boundary=XYZ\r\n" +
			"Content-Length: " + strconv.FormatInt(size, 10) + "\r\n\r\n" +
			"--XYZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
	}
	const huge = 300 << 20
	status, sent := upload(t, w.host, head(huge), huge)
	if !strings.Contains(status, " 413 ") {
		t.Fatalf("a 300 MB multipart body to /livez: %q, want 413", status)
	}
	// The kernel's socket buffers on both ends take some MB before anyone reads; the server
	// itself reads at most 64 KiB of a refused body.
	if sent > 32<<20 {
		t.Fatalf("the connection took %d MB of the 300 MB body before the 413: the server read it", sent>>20)
	}

	before := rss(t)
	var wg sync.WaitGroup
	statuses := make([]string, 20)
	for i := range statuses {
		wg.Go(func() { statuses[i], _ = upload(t, w.host, head(15<<20), 15<<20) })
	}
	wg.Wait()
	for i, s := range statuses {
		if !strings.Contains(s, " 413 ") {
			t.Errorf("upload %d of 15 MB: %q, want 413", i, s)
		}
	}
	if grew := rss(t) - before; grew > 100<<20 {
		t.Errorf("20 multipart uploads of 15 MB grew the resident memory by %d MB", grew>>20)
	}
	if got := w.metric(t, `truthboard_http_refused_total{reason="body_too_large"}`); got != 21 {
		t.Errorf("body_too_large refusals counted: %v, want 21", got)
	}
}

// createDisplayToken makes a display token through the admin API and returns it and its id.
func createDisplayToken(t *testing.T, w *whole, name string) (token, id string) {
	t.Helper()
	status, _, body := call(t, http.DefaultClient, http.MethodPost, w.URL()+"/v1/display-tokens", `{"name":"`+name+`"}`,
		"Authorization", "Bearer "+wholeAdmin, "Content-Type", "application/json")
	var created struct{ ID, Token string }
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &created) != nil {
		t.Fatalf("create a display token: %d %s", status, body)
	}
	return created.Token, created.ID
}

func (w *whole) wsURL(token string) string {
	return "ws://" + w.host + "/v1/live?token=" + url.QueryEscape(token)
}

// closeCode is the close code of a WebSocket read error (0 when it is not a close frame).
func closeCode(err error) (int, string) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Text
	}
	return 0, ""
}

// A display token floods /v1/live with subscriptions, each to a view of its own, from as many
// connections as it may open. The flooding connections are closed as subscribing too fast,
// the token never holds more feeds than its bound, and meanwhile the rest of the server keeps
// answering: the read API, ingest, and the admin API, which revokes the token, after which its
// open screen is closed with 4401 and it can connect no more.
func TestSubscribeFloodFromDisplayToken(t *testing.T) {
	w := startWhole(t, nil)
	token, id := createDisplayToken(t, w, "Attacker")

	// A screen of the same token that behaves: it is the one the revocation must close.
	wall, _, err := websocket.DefaultDialer.Dial(w.wsURL(token), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wall.Close()
	if err := wall.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","view":"tv","window":"15m"}`)); err != nil {
		t.Fatal(err)
	}
	_ = wall.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, msg, err := wall.ReadMessage(); err != nil || !bytes.Contains(msg, []byte(`"type":"snapshot"`)) {
		t.Fatalf("the wall's first message: %v %.200s, want a snapshot", err, msg)
	}
	_ = wall.SetReadDeadline(time.Time{})

	// The token's screens may hold 16 distinct feeds, the wall's included: the 16th other view
	// is refused with a message, and the screen stays open.
	limit := config.Default().LiveMaxFeedsPerCredential
	var lastErr string
	var views []*websocket.Conn
	for i := range limit {
		conn, resp, err := websocket.DefaultDialer.Dial(w.wsURL(token), nil)
		if err != nil {
			t.Fatalf("view %d: %v (%v)", i+2, err, resp)
		}
		views = append(views, conn)
		msg := fmt.Sprintf(`{"type":"subscribe","view":"executive","filters":{"region":["view-%d"]}}`, i)
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, b, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("view %d: %v", i, err)
		}
		var m struct{ Type, Error string }
		_ = json.Unmarshal(b, &m)
		switch {
		case i < limit-1 && m.Type != "snapshot":
			t.Fatalf("view %d of the token: %.200s, want a snapshot", i+2, b)
		case i == limit-1:
			lastErr = m.Error
		}
	}
	if !strings.Contains(lastErr, "already show 16 different views") {
		t.Fatalf("view %d of the token: error %q, want a refusal naming the bound", limit+1, lastErr)
	}
	for _, c := range views {
		c.Close() // their feeds stop: the flood below starts feeds of its own
	}
	wallClosed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := wall.ReadMessage(); err != nil {
				wallClosed <- err
				return
			}
		}
	}()

	ctx, stop := context.WithCancel(context.Background())
	var flooders sync.WaitGroup
	var tooFast, sent atomic.Int64
	for f := range 20 {
		flooders.Go(func() {
			for n := 0; ctx.Err() == nil; {
				conn, _, err := websocket.DefaultDialer.Dial(w.wsURL(token), nil)
				if err != nil {
					time.Sleep(50 * time.Millisecond) // 429 at the bound, or 401 once revoked
					continue
				}
				read := make(chan struct{})
				go func() {
					defer close(read)
					for {
						if _, _, err := conn.ReadMessage(); err != nil {
							if code, text := closeCode(err); code == 1008 && text == "subscribing too fast" {
								tooFast.Add(1)
							}
							return
						}
					}
				}()
				// 40 at once, four times what the connection may send before it is closed.
				for range 40 {
					n++
					msg := fmt.Sprintf(`{"type":"subscribe","view":"drilldown","filters":{"region":["flood-%d-%d"]}}`, f, n)
					if conn.WriteMessage(websocket.TextMessage, []byte(msg)) != nil {
						break
					}
					sent.Add(1)
				}
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				<-read // the server's close, or the deadline
				conn.Close()
			}
		})
	}
	defer func() { stop(); flooders.Wait() }()

	admin := []string{"Authorization", "Bearer " + wholeAdmin}
	flooding := time.Now()
	for i := range 10 {
		if status, _, body := call(t, http.DefaultClient, http.MethodGet, w.URL()+"/v1/metrics?window=5m&by=moment", "", admin...); status != http.StatusOK {
			t.Fatalf("GET /v1/metrics during the flood: %d %s", status, body)
		}
		if status, _, body := call(t, http.DefaultClient, http.MethodPost, w.URL()+"/v1/events", oneEvent(fmt.Sprintf("flood-%d", i)),
			"Authorization", "Bearer "+wholeKeyB, "Content-Type", "application/json"); status != http.StatusAccepted {
			t.Fatalf("POST /v1/events during the flood: %d %s", status, body)
		}
		var st struct{ Feeds int }
		_, _, body := call(t, http.DefaultClient, http.MethodGet, w.URL()+"/v1/stats", "", admin...)
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		// The token's bound on feeds (16), and the wall's.
		if st.Feeds > config.Default().LiveMaxFeedsPerCredential+1 {
			t.Fatalf("%d feeds during the flood of one token, over its bound", st.Feeds)
		}
	}
	t.Logf("read API and ingest answered through the flood for %s", time.Since(flooding).Round(time.Millisecond))
	if status, _, body := call(t, http.DefaultClient, http.MethodDelete, w.URL()+"/v1/display-tokens/"+id, "", admin...); status != http.StatusNoContent {
		t.Fatalf("revoke the flooding token during the flood: %d %s", status, body)
	}
	revoked := time.Now()
	select {
	case err := <-wallClosed:
		if code, _ := closeCode(err); code != 4401 {
			t.Fatalf("the revoked token's screen ended with %v, want close 4401", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the revoked token's screen is still open after 60 s")
	}
	t.Logf("revoked; the wall closed %s after the revocation", time.Since(revoked).Round(time.Millisecond))
	stop()
	flooders.Wait()
	// From an address of its own: the flooders' address, redialling with the revoked token,
	// has its wrong credentials throttled by now.
	d := websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}).DialContext}
	if _, resp, err := d.Dial(w.wsURL(token), nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("connecting with the revoked token: %v (%v), want 401", err, resp)
	}
	t.Logf("%d subscribe messages sent; %d connections closed as subscribing too fast", sent.Load(), tooFast.Load())
	if tooFast.Load() == 0 {
		t.Error("no flooding connection was closed as subscribing too fast")
	}
	if got := w.metric(t, `truthboard_live_closes_total{reason="subscribing_too_fast"}`); got < float64(tooFast.Load()) {
		t.Errorf("subscribing_too_fast closes counted: %v, want at least the %d seen", got, tooFast.Load())
	}
	if got := w.metric(t, `truthboard_live_refused_total{reason="feeds_per_credential"}`); got < 1 {
		t.Errorf("feeds_per_credential refusals counted: %v, want at least the one seen", got)
	}
}

// slowUpload starts an ingest request that declares a full body but sends it a few bytes at a
// time. answer receives its status line.
func slowUpload(t *testing.T, host, key string, answer chan<- string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	size := config.Default().MaxBodyBytes
	head := "POST /v1/events HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + key +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n["
	if _, err := io.WriteString(conn, head+strings.Repeat(" ", 1<<10)); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 600 { // 100 bytes every 100 ms: 1 KB/s, for at most a minute
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(conn, strings.Repeat(" ", 100)); err != nil {
				return
			}
		}
	}()
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			line = "no answer: " + err.Error()
		}
		answer <- strings.TrimSpace(line)
	}()
}

// Eight slow uploads with one key take that key's share of the bodies in flight, not the
// server's: the other key ingests as usual (202), the key's uploads beyond its share are
// refused at once (429), and those admitted are cut as too slow (408) after their grace.
func TestSlowUploadsOfOneKeyLeaveOtherKeys(t *testing.T) {
	w := startWhole(t, nil)
	answers := make(chan string, 8)
	for range 8 {
		slowUpload(t, w.host, wholeKeyA, answers)
	}
	cfg := config.Default()
	admitted := cfg.MaxInflightBytesPerKey / cfg.MaxBodyBytes // 2
	// The refusals come at once; once they have, the admitted uploads hold the key's share.
	got := map[string]int{}
	for range 8 - admitted {
		got[<-answers]++
	}
	if got["HTTP/1.1 429 Too Many Requests"] != 8-admitted {
		t.Fatalf("answers to the uploads beyond the key's share: %v, want %d × 429", got, 8-admitted)
	}
	for i := range 5 {
		status, _, body := call(t, http.DefaultClient, http.MethodPost, w.URL()+"/v1/events", oneEvent(fmt.Sprintf("other-key-%d", i)),
			"Authorization", "Bearer "+wholeKeyB, "Content-Type", "application/json")
		if status != http.StatusAccepted {
			t.Fatalf("another key while one key's uploads trickle: %d %s, want 202", status, body)
		}
	}
	for range admitted {
		if a := <-answers; a != "HTTP/1.1 408 Request Timeout" {
			t.Errorf("an admitted upload at 1 KB/s: %q, want 408", a)
		}
	}
	// Once they are cut, the key itself sends again.
	if status, _, body := call(t, http.DefaultClient, http.MethodPost, w.URL()+"/v1/events", oneEvent("key-a-after"),
		"Authorization", "Bearer "+wholeKeyA, "Content-Type", "application/json"); status != http.StatusAccepted {
		t.Fatalf("the slow key after its uploads were cut: %d %s", status, body)
	}
	for reason, want := range map[string]float64{"key_in_flight": float64(8 - admitted), "too_slow": float64(admitted)} {
		if got := w.metric(t, `truthboard_events_rejected_total{reason="`+reason+`"}`); got != want {
			t.Errorf("%s rejections counted: %v, want %v", reason, got, want)
		}
	}
}

// Wrong credentials from one address get 429 with Retry-After after the allowed number, on
// every route that checks one (bearer tokens of ingest and the read API, and the sign-in
// form); then the address's credentials are not checked until it has waited, right ones
// included. Other addresses are not affected.
func TestWrongCredentialsAreThrottledPerAddress(t *testing.T) {
	w := startWhole(t, nil)
	limit := config.Default().AuthFailuresPerMinute
	attacker, neighbour := clientFrom("127.0.0.2"), clientFrom("127.0.0.3")

	for i := range limit {
		path, key := "/v1/events", "tbi_guess_"+strconv.Itoa(i)
		if i%2 == 1 {
			path, key = "/v1/metrics", "tbd_0123456789abcdef_guess"+strconv.Itoa(i)
		}
		method, body := http.MethodGet, ""
		if path == "/v1/events" {
			method, body = http.MethodPost, oneEvent("x")
		}
		if status, _, body := call(t, attacker, method, w.URL()+path, body, "Authorization", "Bearer "+key); status != http.StatusUnauthorized {
			t.Fatalf("wrong credential %d: %d %s, want 401", i+1, status, body)
		}
	}
	status, h, body := call(t, attacker, http.MethodGet, w.URL()+"/v1/metrics", "", "Authorization", "Bearer tbd_0123456789abcdef_more")
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, "too many wrong credentials") {
		t.Fatalf("wrong credential %d: %d (Retry-After %q) %s, want 429 with Retry-After", limit+1, status, h.Get("Retry-After"), body)
	}
	// The throttle comes before the check: the right token from the same address waits too.
	if status, _, _ := call(t, attacker, http.MethodGet, w.URL()+"/v1/metrics", "", "Authorization", "Bearer "+wholeAdmin); status != http.StatusTooManyRequests {
		t.Errorf("the admin token from the throttled address: %d, want 429", status)
	}
	// Another address is not affected.
	if status, _, body := call(t, neighbour, http.MethodPost, w.URL()+"/v1/events", oneEvent("neighbour"),
		"Authorization", "Bearer "+wholeKeyA, "Content-Type", "application/json"); status != http.StatusAccepted {
		t.Errorf("an ingest key from another address: %d %s, want 202", status, body)
	}
	if status, _, _ := call(t, neighbour, http.MethodGet, w.URL()+"/v1/metrics", "", "Authorization", "Bearer wrong"); status != http.StatusUnauthorized {
		t.Errorf("a wrong token from another address: %d, want 401", status)
	}

	// The sign-in form, from an address of its own.
	guesser := clientFrom("127.0.0.4")
	_, h, _ = call(t, guesser, http.MethodGet, w.URL()+"/login", "")
	var csrf string
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "tb_csrf" {
			csrf = c.Value
		}
	}
	login := func(token string) (int, http.Header, string) {
		form := url.Values{"token": {token}, "next": {"/"}, "_csrf": {csrf}}.Encode()
		return call(t, guesser, http.MethodPost, w.URL()+"/login", form, "Content-Type", "application/x-www-form-urlencoded",
			"Cookie", "tb_csrf="+csrf, "Origin", w.URL())
	}
	for i := range limit {
		if status, _, body := login("guess-" + strconv.Itoa(i)); status != http.StatusUnauthorized {
			t.Fatalf("wrong sign-in %d: %d %.200s, want 401", i+1, status, body)
		}
	}
	status, h, body = login(wholeAdmin)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, "Too many wrong sign-ins came for your address") {
		t.Fatalf("sign-in after %d wrong ones: %d (Retry-After %q) %.300s, want 429 with the form saying why", limit, status, h.Get("Retry-After"), body)
	}
	if got := w.metric(t, "truthboard_auth_failures_total"); got != float64(2*limit+1) {
		t.Errorf("wrong credentials counted: %v, want %d", got, 2*limit+1)
	}
	if got := w.metric(t, `truthboard_http_refused_total{reason="auth_throttled"}`); got != 3 {
		t.Errorf("throttled requests counted: %v, want 3", got)
	}
}

// X-Forwarded-Host, -Proto and -For are believed from a trusted proxy only: from anyone else
// they change neither the origin check, nor the page's Content-Security-Policy, nor HSTS, nor
// whose wrong credentials are counted.
func TestForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	w := startWhole(t, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	proxy, stranger := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")

	_, h, _ := call(t, stranger, http.MethodGet, w.URL()+"/tv", "", "X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https")
	if csp := h.Get("Content-Security-Policy"); strings.Contains(csp, "evil.example") {
		t.Errorf("X-Forwarded-Host from an untrusted client reached the CSP: %s", csp)
	}
	if hsts := h.Get("Strict-Transport-Security"); hsts != "" {
		t.Errorf("X-Forwarded-Proto from an untrusted client turned HSTS on: %q", hsts)
	}
	_, h, _ = call(t, proxy, http.MethodGet, w.URL()+"/tv", "", "X-Forwarded-Host", "dash.example", "X-Forwarded-Proto", "https")
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "wss://dash.example") {
		t.Errorf("X-Forwarded-Host from the trusted proxy is not the page's origin: %s", csp)
	}
	if hsts := h.Get("Strict-Transport-Security"); hsts == "" {
		t.Error("X-Forwarded-Proto: https from the trusted proxy: no HSTS")
	}

	// A page of evil.example cannot pass its origin off as the server's with X-Forwarded-Host.
	dial := func(from string, headers ...string) int {
		d := websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
		hd := http.Header{}
		for i := 0; i+1 < len(headers); i += 2 {
			hd.Set(headers[i], headers[i+1])
		}
		conn, resp, _ := d.Dial(w.wsURL(wholeAdmin), hd)
		if conn != nil {
			conn.Close()
		}
		if resp == nil {
			return 0
		}
		return resp.StatusCode
	}
	if got := dial("127.0.0.2", "Origin", "http://evil.example", "X-Forwarded-Host", "evil.example"); got != http.StatusForbidden {
		t.Errorf("a foreign origin with a matching X-Forwarded-Host from an untrusted client: %d, want 403", got)
	}
	if got := dial("127.0.0.1", "Origin", "https://dash.example", "X-Forwarded-Host", "dash.example"); got != http.StatusSwitchingProtocols {
		t.Errorf("the public origin behind the trusted proxy: %d, want 101", got)
	}

	// Behind the proxy, the client is the proxy's X-Forwarded-For entry, whatever the client
	// itself put on its left.
	limit := config.Default().AuthFailuresPerMinute
	for i := range limit {
		xff := "203.0.113." + strconv.Itoa(i) + ", 198.51.100.7" // a forged entry, then the proxy's
		if status, _, _ := call(t, proxy, http.MethodGet, w.URL()+"/v1/metrics", "", "Authorization", "Bearer wrong", "X-Forwarded-For", xff); status != http.StatusUnauthorized {
			t.Fatalf("wrong credential %d through the proxy: %d, want 401", i+1, status)
		}
	}
	if status, _, _ := call(t, proxy, http.MethodGet, w.URL()+"/v1/metrics", "", "Authorization", "Bearer wrong", "X-Forwarded-For", "198.51.100.7"); status != http.StatusTooManyRequests {
		t.Errorf("the client behind the proxy after %d wrong credentials: %d, want 429", limit, status)
	}
	if status, _, _ := call(t, proxy, http.MethodGet, w.URL()+"/v1/metrics", "", "Authorization", "Bearer "+wholeAdmin, "X-Forwarded-For", "198.51.100.8"); status != http.StatusOK {
		t.Errorf("another client behind the same proxy: %d, want 200", status)
	}
	// From an untrusted client, X-Forwarded-For names no one: the throttled address it claims
	// does not throttle it, and the address it really has is counted.
	if status, _, _ := call(t, stranger, http.MethodGet, w.URL()+"/v1/metrics", "", "Authorization", "Bearer "+wholeAdmin, "X-Forwarded-For", "198.51.100.7"); status != http.StatusOK {
		t.Errorf("an untrusted client claiming the throttled address: %d, want 200", status)
	}
}

// Expect: 100-continue is answered 100 only to an ingest request with a valid key: anything
// else gets 417 before a byte of its body is read, and the connection is closed.
func TestExpectContinueOnlyAfterAuthentication(t *testing.T) {
	w := startWhole(t, nil)
	body := oneEvent("expect-1")
	for _, tc := range []struct {
		name, path, key, want string
	}{
		{"wrong ingest key", "/v1/events", "tbi_wrong", "HTTP/1.1 417 Expectation Failed"},
		{"no body route", "/livez", wholeKeyA, "HTTP/1.1 417 Expectation Failed"},
		{"admin API", "/v1/display-tokens", wholeAdmin, "HTTP/1.1 417 Expectation Failed"},
		{"valid ingest key", "/v1/events", wholeKeyA, "HTTP/1.1 100 Continue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", w.host, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
				tc.path, w.host, tc.key, len(body))
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(conn)
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(line); got != tc.want {
				t.Fatalf("answer %q, want %q", got, tc.want)
			}
			if tc.want != "HTTP/1.1 100 Continue" {
				return
			}
			if _, err := io.WriteString(conn, body); err != nil {
				t.Fatal(err)
			}
			for line == "HTTP/1.1 100 Continue\r\n" || line == "\r\n" {
				if line, err = r.ReadString('\n'); err != nil {
					t.Fatal(err)
				}
			}
			if got := strings.TrimSpace(line); got != "HTTP/1.1 202 Accepted" {
				t.Fatalf("after 100 Continue and the body: %q, want 202", got)
			}
		})
	}
	if got := w.metric(t, `truthboard_http_refused_total{reason="expect_refused"}`); got != 3 {
		t.Errorf("refused expectations counted: %v, want 3", got)
	}
}

// The bounds on live connections answer the upgrade with 429 and say which bound; a closed
// connection gives its place back.
func TestLiveConnectionBounds(t *testing.T) {
	w := startWhole(t, func(c *config.Config) {
		c.LiveMaxConnsPerCredential = 2
		c.LiveMaxConnsPerAddress = 3
	})
	token, _ := createDisplayToken(t, w, "Wall 9")
	dial := func(from, credential string) (*websocket.Conn, int, string) {
		d := websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
		conn, resp, err := d.Dial(w.wsURL(credential), nil)
		if err == nil {
			t.Cleanup(func() { conn.Close() })
			return conn, http.StatusSwitchingProtocols, ""
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, string(b)
	}
	first, _, _ := dial("127.0.0.2", wholeAdmin)
	dial("127.0.0.2", wholeAdmin)
	if _, status, body := dial("127.0.0.2", wholeAdmin); status != http.StatusTooManyRequests || !strings.Contains(body, "2 live connections") {
		t.Errorf("a third connection of the admin token: %d %s, want 429 naming the bound", status, body)
	}
	dial("127.0.0.2", token)
	if _, status, body := dial("127.0.0.2", token); status != http.StatusTooManyRequests || !strings.Contains(body, "this address already has 3") {
		t.Errorf("a fourth connection from one address: %d %s, want 429 naming the bound", status, body)
	}
	if _, status, _ := dial("127.0.0.3", token); status != http.StatusSwitchingProtocols {
		t.Errorf("the display token's second connection, from another address: %d, want 101", status)
	}
	first.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, status, _ := dial("127.0.0.2", wholeAdmin); status == http.StatusSwitchingProtocols {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection did not give its place back within 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, reason := range []string{"conns_per_credential", "conns_per_address"} {
		if got := w.metric(t, `truthboard_live_refused_total{reason="`+reason+`"}`); got < 1 {
			t.Errorf("%s refusals counted: %v, want at least 1", reason, got)
		}
	}
}
