package main

// Fault tests: real `truthboard serve` processes against a real ClickHouse, under steady load
// from clients that retry until they get a 202, through a kill -9, a ClickHouse stopped and
// started again, a full spool, a half-written spool segment and a SIGTERM. Each ends with the
// exact check that every event_id answered 202 is in ClickHouse exactly once and that the
// rollups agree with the raw table.
//
// The default suite runs them short; `make faults` runs the full versions:
//
//	go test -count=1 -v -run TestFault ./cmd/truthboard/ -args -outage 30s -load 20s

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

var (
	outage   = flag.Duration("outage", 5*time.Second, "how long ClickHouse stays stopped in TestFaultClickHouseStopped")
	loadTime = flag.Duration("load", 2*time.Second, "how long each load phase of the fault tests lasts")
)

// truthboardBin is the binary under test, built once by TestMain.
var truthboardBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "truthboard-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	truthboardBin = filepath.Join(dir, "truthboard")
	if out, err := exec.Command("go", "build", "-o", truthboardBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build truthboard: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	faultKey   = "tbi_fault_test_key"
	faultAdmin = "tba_fault_test_admin"
)

// ---- a truthboard process ----

type serverConfig struct {
	addr     string // host:port to listen on, the same across restarts
	dataDir  string // holds the spool, kept across restarts
	ch       store.Options
	extra    []string // more flags
	shutdown time.Duration
}

type serverProc struct {
	t    *testing.T
	proc *benchkit.Serve
	url  string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer starts `truthboard serve` and waits until it is ready.
func startServer(t *testing.T, c serverConfig) *serverProc {
	t.Helper()
	flags := []string{
		"-clickhouse-dial-timeout", "500ms",
		"-ingest-rate", "0",
		"-demo-rate", "0",
		"-flush-interval", "50ms",
		"-live-tick", "200ms",
	}
	if c.shutdown > 0 {
		flags = append(flags, "-shutdown-timeout", c.shutdown.String())
	}
	proc, err := benchkit.StartServe(t.Context(), benchkit.ServeOptions{
		Bin:        truthboardBin,
		Listen:     c.addr,
		DataDir:    c.dataDir,
		LogFile:    filepath.Join(t.TempDir(), "serve.log"),
		ClickHouse: benchkit.ClickHouse{Addr: c.ch.Addr, User: c.ch.User, Password: c.ch.Password},
		Database:   c.ch.Database,
		IngestKeys: []string{faultKey},
		AdminToken: faultAdmin,
		Flags:      append(flags, c.extra...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proc.Kill()
		if t.Failed() {
			t.Logf("server log:\n%s", proc.LogTail(40))
		}
	})
	return &serverProc{t: t, proc: proc, url: proc.URL}
}

func (p *serverProc) logTail(lines int) string { return p.proc.LogTail(lines) }

// kill9 kills the server at once, as a crash or an OOM kill would.
func (p *serverProc) kill9() { p.proc.Kill() }

// terminate sends SIGTERM and returns how long the server took to exit, and how.
func (p *serverProc) terminate() (time.Duration, error) {
	start := time.Now()
	err := p.proc.Stop(2 * time.Minute)
	return time.Since(start), err
}

// readiness is the body of GET /readyz.
type readiness struct {
	Ready      bool   `json:"ready"`
	ClickHouse string `json:"clickhouse"`
	Spool      struct {
		Events        int64 `json:"events"`
		FailedInserts int   `json:"failed_inserts"`
	} `json:"spool"`
}

func (p *serverProc) readyz() (int, readiness, error) {
	resp, err := http.Get(p.url + "/readyz")
	if err != nil {
		return 0, readiness{}, err
	}
	defer resp.Body.Close()
	var r readiness
	err = json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r, err
}

// waitUntil polls cond (every 50 ms) until it holds or the deadline passes.
func (p *serverProc) waitUntil(what string, within time.Duration, cond func(readiness) bool) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, r, err := p.readyz()
		if err == nil && cond(r) {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: not within %v (last /readyz: %+v, %v)", what, within, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// drained waits until the spool is empty: every acknowledged event is in ClickHouse.
func (p *serverProc) drained() {
	p.t.Helper()
	p.waitUntil("the spool drains", 2*time.Minute, func(r readiness) bool { return r.Spool.Events == 0 })
}

// ---- load ----

// loadGen is a set of clients sending batches of new events, each retrying its batch until it
// gets a 202, as a webhook sender with retries does.
type loadGen struct {
	t       *testing.T
	urls    []string // the nodes: a client sends its batches to each in turn, and a retry to the next
	clients int
	perReq  int
	pause   time.Duration // between one client's requests
	// resendEvery, when above 0 with several nodes, resends every resendEvery-th acknowledged
	// batch to the next node as well, as a load balancer that timed out would; resent counts them.
	resendEvery int
	resent      int

	mu       sync.Mutex
	acked    []string        // every event of a 202 answer
	inFlight map[string]bool // events of batches never answered 202 (sent as the load stopped)
	statuses map[int]int     // answers by status; 0 counts transport errors
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(t *testing.T, url string, clients int) *loadGen {
	return startLoadOn(t, []string{url}, clients, 0)
}

// startLoadOn is startLoad over several nodes; see loadGen.resendEvery.
func startLoadOn(t *testing.T, urls []string, clients, resendEvery int) *loadGen {
	l := &loadGen{t: t, urls: urls, resendEvery: resendEvery, clients: clients, perReq: 50, pause: 20 * time.Millisecond,
		inFlight: map[string]bool{}, statuses: map[int]int{}, stop: make(chan struct{})}
	for c := range clients {
		l.wg.Add(1)
		go l.client(c)
	}
	return l
}

func (l *loadGen) client(c int) {
	defer l.wg.Done()
	hc := &http.Client{Timeout: 10 * time.Second}
	for seq := 0; ; seq++ {
		ids := make([]string, l.perReq)
		var body strings.Builder
		at := time.Now().UTC().Add(-time.Second)
		for i := range ids {
			ids[i] = fmt.Sprintf("f%d-%d-%d", c, seq, i)
			fmt.Fprintf(&body, `{"event_id":%q,"occurred_at":%q,"moment":%q,"channel":%q,"touchpoint":"tp%d","csat":%d}`+"\n",
				ids[i], at.Format(time.RFC3339Nano), event.Moments[i%len(event.Moments)], event.Channels[(i+seq)%len(event.Channels)], i%4, 1+i%5)
		}
		for attempt := 0; ; attempt++ {
			select {
			case <-l.stop:
				if attempt > 0 {
					l.unanswered(ids)
				}
				return
			default:
			}
			node := (c + seq + attempt) % len(l.urls)
			status, _ := l.post(hc, l.urls[node], body.String())
			l.mu.Lock()
			l.statuses[status]++
			if status == http.StatusAccepted {
				l.acked = append(l.acked, ids...)
			}
			l.mu.Unlock()
			if status == http.StatusAccepted {
				l.resend(hc, seq, (node+1)%len(l.urls), body.String(), len(ids))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(l.pause)
	}
}

// resend sends an acknowledged batch again to another node, every resendEvery-th batch: it
// must take none of its events.
func (l *loadGen) resend(hc *http.Client, seq, node int, body string, events int) {
	if l.resendEvery == 0 || len(l.urls) < 2 || seq%l.resendEvery != 0 {
		return
	}
	status, a := l.post(hc, l.urls[node], body)
	if status != http.StatusAccepted {
		return // the node is away: nothing was taken
	}
	l.mu.Lock()
	l.resent++
	l.mu.Unlock()
	if a.Accepted != 0 || a.Duplicates != events {
		l.t.Errorf("a batch of %d events resent to another node after its 202: %d accepted again, %d duplicates; want 0 and %d", events, a.Accepted, a.Duplicates, events)
	}
}

func (l *loadGen) post(hc *http.Client, url, body string) (int, ingestAnswer) {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+faultKey)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, ingestAnswer{}
	}
	defer resp.Body.Close()
	var a ingestAnswer
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &a)
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusServiceUnavailable {
		l.t.Errorf("POST /v1/events: %d, want 202 or 503", resp.StatusCode)
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		l.t.Errorf("503 without Retry-After")
	}
	return resp.StatusCode, a
}

func (l *loadGen) unanswered(ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.inFlight[id] = true
	}
}

// ackedCount is the number of events answered 202 so far.
func (l *loadGen) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// waitAcked waits until n more events than now are answered 202.
func (l *loadGen) waitAcked(n int, within time.Duration) {
	l.t.Helper()
	target := l.ackedCount() + n
	deadline := time.Now().Add(within)
	for l.ackedCount() < target {
		if time.Now().After(deadline) {
			l.t.Fatalf("the load got %d events acknowledged, want %d within %v (answers so far %v)", l.ackedCount(), target, within, l.answers())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *loadGen) answers() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int]int{}
	for k, v := range l.statuses {
		out[k] = v
	}
	return out
}

// finish stops the clients and returns what was acknowledged and what may have been stored.
func (l *loadGen) finish() (acked []string, maybe map[string]bool) {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("load: %d events acknowledged by %d clients; answers by status (0: no answer) %v; %d batches resent to another node after their 202", len(l.acked), l.clients, l.statuses, l.resent)
	return l.acked, l.inFlight
}

// checkStored stops the load, waits until srv's spool is empty, and checks that every event
// answered 202 is stored exactly once (and that the rollups agree).
func (l *loadGen) checkStored(srv *serverProc, db *store.Store) {
	l.t.Helper()
	acked, maybe := l.finish()
	srv.drained()
	storetest.AssertStoredOnceWithin(l.t, db, acked, maybe)
}

// ---- the faults ----

func faultDatabase(t *testing.T) (*store.Store, store.Options) {
	db := storetest.Open(t)
	o := storetest.Options(t)
	o.Database = db.Database()
	return db, o
}

// proxiedDatabase is faultDatabase reached through a proxy that the test can cut.
func proxiedDatabase(t *testing.T) (*store.Store, store.Options, *storetest.Proxy) {
	db, ch := faultDatabase(t)
	proxy := storetest.NewProxy(t, ch.Addr)
	ch.Addr = proxy.Addr()
	return db, ch, proxy
}

// kill -9 during sustained load, then a restart: the spool's synced records are sent after the
// restart, and a batch that landed without its commit is not counted twice.
func TestFaultKill9DuringLoad(t *testing.T) {
	db, ch := faultDatabase(t)
	cfg := serverConfig{addr: freeAddr(t), dataDir: t.TempDir(), ch: ch}
	srv := startServer(t, cfg)
	load := startLoad(t, srv.url, 4)
	for round := range 2 {
		load.waitAcked(500, 30*time.Second)
		time.Sleep(*loadTime)
		srv.kill9()
		t.Logf("round %d: killed with %d events acknowledged", round, load.ackedCount())
		srv = startServer(t, cfg)
	}
	load.waitAcked(500, 30*time.Second)
	load.checkStored(srv, db)
}

// ClickHouse stopped during load, then started: ingest keeps answering 202 from the spool, and
// everything reaches ClickHouse once it is back.
func TestFaultClickHouseStopped(t *testing.T) {
	ch := startPrivateClickHouse(t)
	db, err := store.Open(context.Background(), ch.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := startServer(t, serverConfig{addr: freeAddr(t), dataDir: t.TempDir(), ch: ch.opts})
	load := startLoad(t, srv.url, 4)
	load.waitAcked(500, 30*time.Second)

	ch.stop()
	stoppedAt, before := time.Now(), load.answers()
	srv.waitUntil("the drainer notices ClickHouse is gone", 30*time.Second, func(r readiness) bool { return r.Spool.FailedInserts > 0 })
	load.waitAcked(500, 30*time.Second) // still acknowledged, from the spool
	if _, r, err := srv.readyz(); err != nil || !r.Ready || r.Spool.Events == 0 || !strings.HasPrefix(r.ClickHouse, "unavailable") {
		t.Errorf("/readyz with ClickHouse stopped: %+v, %v; want ready, events in the spool, ClickHouse unavailable", r, err)
	}
	time.Sleep(time.Until(stoppedAt.Add(*outage)))
	during := load.answers()
	ch.start()
	t.Logf("ClickHouse stopped for %v; answers before %v, until it came back %v", time.Since(stoppedAt).Round(time.Millisecond), before, during)
	if during[http.StatusServiceUnavailable] != before[http.StatusServiceUnavailable] || during[0] != before[0] {
		t.Errorf("requests refused while ClickHouse was stopped (answers before %v, after %v): the spool should have taken them", before, during)
	}
	srv.waitUntil("the drainer reaches ClickHouse again", 2*time.Minute, func(r readiness) bool { return r.Spool.FailedInserts == 0 })
	load.waitAcked(500, 30*time.Second)
	load.checkStored(srv, db)
}

// The spool's disk quota reached while ClickHouse is away: 503 with Retry-After, nothing of a
// refused request kept; acknowledged events all stored once it is back.
func TestFaultSpoolQuota(t *testing.T) {
	db, ch, proxy := proxiedDatabase(t)
	srv := startServer(t, serverConfig{addr: freeAddr(t), dataDir: t.TempDir(), ch: ch,
		extra: []string{"-max-body-bytes", "262144", "-max-inflight-bytes", "262144", "-max-inflight-bytes-per-key", "262144", "-spool-max-bytes", "1048576"}})
	load := startLoad(t, srv.url, 4)
	load.waitAcked(200, 30*time.Second)
	proxy.Cut()
	deadline := time.Now().Add(60 * time.Second)
	for load.answers()[http.StatusServiceUnavailable] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no 503 within 60 s of cutting ClickHouse off with a 1 MiB spool (answers %v)", load.answers())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, r, _ := srv.readyz(); code != http.StatusServiceUnavailable || r.Ready {
		t.Errorf("/readyz with a full spool: %d %+v, want 503, not ready", code, r)
	}
	proxy.Restore()
	load.waitAcked(500, 60*time.Second)
	load.checkStored(srv, db)
}

// A crash in the middle of a spool write leaves a cut-off record: the restart drops it (it
// was never acknowledged) and sends every acknowledged event.
func TestFaultHalfWrittenSegment(t *testing.T) {
	db, ch, proxy := proxiedDatabase(t)
	cfg := serverConfig{addr: freeAddr(t), dataDir: t.TempDir(), ch: ch}
	srv := startServerCut(t, cfg, proxy) // the events stay in the spool
	load := startLoad(t, srv.url, 2)
	load.waitAcked(300, 30*time.Second)
	acked, maybe := load.finish()
	srv.kill9()

	segments, _ := filepath.Glob(filepath.Join(cfg.dataDir, "spool", "*.seg"))
	if len(segments) == 0 {
		t.Fatal("no spool segment after acknowledged events with ClickHouse cut off")
	}
	last := segments[len(segments)-1]
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The start of a record whose payload never made it: a length of 4,000 bytes and 30 of them.
	half := append([]byte{0xa0, 0x0f, 0, 0, 1, 2, 3, 4}, []byte(strings.Repeat("x", 30))...)
	if _, err := f.Write(half); err != nil {
		t.Fatal(err)
	}
	f.Close()

	proxy.Restore()
	srv = startServer(t, cfg)
	srv.drained()
	storetest.AssertStoredOnceWithin(t, db, acked, maybe)
	if !strings.Contains(srv.logTail(100), "truncating it") {
		t.Errorf("the restart did not say it cut the damaged record:\n%s", srv.logTail(20))
	}
}

// startServerCut starts a server whose ClickHouse is cut off: serve needs ClickHouse to start
// (schema), so the proxy is restored for the start and cut again once it listens.
func startServerCut(t *testing.T, cfg serverConfig, proxy *storetest.Proxy) *serverProc {
	proxy.Restore()
	srv := startServer(t, cfg)
	proxy.Cut()
	return srv
}

// SIGTERM under load: live screens get 1001, in-flight requests their answer, the process
// exits within its shutdown timeout, and what was acknowledged is stored once (after the
// restart for what stayed in the spool).
func TestFaultSIGTERM(t *testing.T) {
	db, ch := faultDatabase(t)
	cfg := serverConfig{addr: freeAddr(t), dataDir: t.TempDir(), ch: ch, shutdown: 5 * time.Second}
	srv := startServer(t, cfg)
	screen, _, err := websocket.DefaultDialer.Dial(strings.Replace(srv.url, "http://", "ws://", 1)+"/v1/live?token="+faultAdmin, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer screen.Close()
	if err := screen.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","view":"executive","window":"5m"}`)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan int, 1)
	go func() {
		for {
			if _, _, err := screen.ReadMessage(); err != nil {
				code := -1
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				closed <- code
				return
			}
		}
	}()
	load := startLoad(t, srv.url, 4)
	load.waitAcked(500, 30*time.Second)
	took, err := srv.terminate()
	if err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0", err)
	}
	if took > cfg.shutdown+3*time.Second {
		t.Errorf("exit took %v after SIGTERM, want within the shutdown timeout %v", took, cfg.shutdown)
	}
	select {
	case code := <-closed:
		if code != websocket.CloseGoingAway {
			t.Errorf("live screen closed with %d, want 1001", code)
		}
	case <-time.After(5 * time.Second):
		t.Error("the live screen was not closed")
	}
	if !strings.Contains(srv.logTail(20), "msg=stopped") {
		t.Errorf("no clean stop in the log:\n%s", srv.logTail(20))
	}
	t.Logf("exit %v after SIGTERM; last lines: %s", took.Round(time.Millisecond), srv.logTail(2))
	srv = startServer(t, cfg) // clients keep retrying meanwhile
	load.waitAcked(500, 30*time.Second)
	load.checkStored(srv, db)
}

// ---- a ClickHouse server of the test's own, to stop and start ----

type privateClickHouse struct {
	t *testing.T
	*benchkit.LocalClickHouse
	opts store.Options
}

// startPrivateClickHouse starts a ClickHouse server of the test's own with the project's
// script, on free ports with its data in a temporary folder, stopped when the test ends.
func startPrivateClickHouse(t *testing.T) *privateClickHouse {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	local, err := benchkit.NewLocalClickHouse(root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ch := &privateClickHouse{t: t, LocalClickHouse: local,
		opts: store.Options{Addr: local.Addr, Database: "truthboard_fault", DialTimeout: 2 * time.Second}}
	ch.start()
	t.Cleanup(ch.stop)
	return ch
}

func (c *privateClickHouse) start() {
	c.t.Helper()
	if err := c.Start(); err != nil {
		c.t.Fatal(err)
	}
}

func (c *privateClickHouse) stop() {
	c.t.Helper()
	if err := c.Stop(); err != nil {
		c.t.Fatal(err)
	}
}
