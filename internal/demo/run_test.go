package demo

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/event"
)

// request is one POST the recording server received.
type request struct {
	at     time.Time
	header http.Header
	ids    []string
}

// recorder is a stand-in for the ingest API: it checks and records the posted events and
// answers with the responses of reply in turn (202 with counts once they run out).
type recorder struct {
	t      *testing.T
	mu     sync.Mutex
	reqs   []request
	seen   map[string]bool
	events int // events answered with 202
	reply  []func(w http.ResponseWriter)
	notify chan struct{} // receives after each request, without blocking
}

func newRecorder(t *testing.T, reply ...func(w http.ResponseWriter)) (*recorder, *httptest.Server) {
	r := &recorder{t: t, seen: map[string]bool{}, reply: reply, notify: make(chan struct{}, 1)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/events" {
		r.t.Errorf("%s %s, want POST /v1/events", req.Method, req.URL.Path)
		http.NotFound(w, req)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.t.Errorf("gzip body: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body = zr
	}
	var ids []string
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var e event.Event
		if err := dec.Decode(&e); err != nil {
			r.t.Errorf("line %q: %v", sc.Text(), err)
			continue
		}
		for _, p := range specProblems(&e, time.Now()) {
			r.t.Errorf("posted event %s: %s", e.EventID, p)
		}
		ids = append(ids, e.EventID)
	}
	if err := sc.Err(); err != nil {
		r.t.Errorf("read body: %v", err)
	}

	r.mu.Lock()
	r.reqs = append(r.reqs, request{at: time.Now(), header: req.Header.Clone(), ids: ids})
	var reply func(http.ResponseWriter)
	if len(r.reply) > 0 {
		reply, r.reply = r.reply[0], r.reply[1:]
	}
	var accepted, dups int
	if reply == nil {
		r.events += len(ids)
		for _, id := range ids {
			if r.seen[id] {
				dups++
			} else {
				accepted++
			}
			r.seen[id] = true
		}
	}
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	if reply != nil {
		reply(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(map[string]any{"accepted": accepted, "duplicates": dups, "rejected": 0, "errors": []any{}})
}

// waitFor waits until cond holds for the recorded requests, or fails the test after 30 s
// (a loaded machine running with -race is slow).
func (r *recorder) waitFor(t *testing.T, what string, cond func(reqs []request, events int) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r.reqs, r.events)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (r *recorder) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// logBuffer collects log output from the goroutine of Run.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.URL, cfg.Key = url, "secret-key"
	cfg.Rate, cfg.Diurnal, cfg.BatchInterval = 50, false, 20*time.Millisecond
	return cfg
}

// start runs Run in a goroutine. stop cancels its context and returns its error, failing the
// test if it does not stop within 10 s; done receives the error if Run stops by itself.
func start(t *testing.T, cfg Config, log *logBuffer) (stop func() error, done chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done = make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.NewTextHandler(log, nil))) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not stop within 10 s of ctx cancellation")
			return nil
		}
	}, done
}

func TestRunPostsNDJSON(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[gz], func(t *testing.T) {
			rec, srv := newRecorder(t)
			cfg := testConfig(srv.URL)
			cfg.Gzip = gz
			var log logBuffer
			stop, _ := start(t, cfg, &log)
			rec.waitFor(t, "3 requests", func(reqs []request, _ int) bool { return len(reqs) >= 3 })
			if err := stop(); err != nil {
				t.Fatalf("Run returned %v after ctx cancellation, want nil", err)
			}
			for _, r := range rec.requests() {
				want := map[string]string{"Authorization": "Bearer secret-key", "Content-Type": "application/x-ndjson", "Content-Encoding": ""}
				if gz {
					want["Content-Encoding"] = "gzip"
				}
				for k, v := range want {
					if got := r.header.Get(k); got != v {
						t.Errorf("%s: %q, want %q", k, got, v)
					}
				}
				if len(r.ids) == 0 {
					t.Error("empty batch posted")
				}
			}
			if out := log.String(); !strings.Contains(out, "demo stopped") || !strings.Contains(out, "accepted=") {
				t.Errorf("no summary logged at the end:\n%s", out)
			}
		})
	}
}

func TestRunRetriesSameBatch(t *testing.T) {
	busy := func(status int, retryAfter string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			http.Error(w, `{"error":"busy"}`, status)
		}
	}
	tests := []struct {
		name     string
		reply    func(http.ResponseWriter)
		minDelay time.Duration
	}{
		{"503 with Retry-After 1", busy(http.StatusServiceUnavailable, "1"), time.Second},
		{"429 with Retry-After 0", busy(http.StatusTooManyRequests, "0"), 0},
		{"500 backs off", busy(http.StatusInternalServerError, ""), minBackoff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, srv := newRecorder(t, tt.reply)
			var log logBuffer
			stop, _ := start(t, testConfig(srv.URL), &log)
			rec.waitFor(t, "the retry", func(reqs []request, _ int) bool { return len(reqs) >= 2 })
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			reqs := rec.requests()
			if !slices.Equal(reqs[0].ids, reqs[1].ids) {
				t.Errorf("retry posted %d other events, want the same batch of %d", len(reqs[1].ids), len(reqs[0].ids))
			}
			if d := reqs[1].at.Sub(reqs[0].at); d < tt.minDelay {
				t.Errorf("retried after %v, want at least %v", d, tt.minDelay)
			}
			if out := log.String(); !strings.Contains(out, "retrying the same batch") || !strings.Contains(out, "retries=1") {
				t.Errorf("log lacks the retry:\n%s", out)
			}
		})
	}
}

func TestRunStopsWhileRetrying(t *testing.T) {
	rec, srv := newRecorder(t, func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	var log logBuffer
	stop, _ := start(t, testConfig(srv.URL), &log)
	rec.waitFor(t, "the first post", func(reqs []request, _ int) bool { return len(reqs) >= 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after ctx cancellation, want nil", err)
	}
}

func TestRunLogsRejections(t *testing.T) {
	rec, srv := newRecorder(t, func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"accepted":0,"duplicates":0,"rejected":3,"errors":[{"index":0,"field":"body","message":"line 1: not JSON"}]}`)
	})
	var log logBuffer
	stop, _ := start(t, testConfig(srv.URL), &log)
	rec.waitFor(t, "a batch after the rejected one", func(reqs []request, events int) bool { return len(reqs) >= 2 && events > 0 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	reqs := rec.requests()
	if slices.Equal(reqs[0].ids, reqs[1].ids) {
		t.Error("a batch refused with 400 was sent again")
	}
	out := log.String()
	if !strings.Contains(out, "server rejected the batch") || !strings.Contains(out, "body: line 1: not JSON") {
		t.Errorf("log lacks the server's error:\n%s", out)
	}
}

func TestRunFatalResponses(t *testing.T) {
	tests := []struct {
		status int
		err    string
	}{
		{http.StatusUnauthorized, "check --key"},
		{http.StatusForbidden, "check --key"},
		{http.StatusNotFound, "check that --url"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			_, srv := newRecorder(t, func(w http.ResponseWriter) { w.WriteHeader(tt.status) })
			var log logBuffer
			_, done := start(t, testConfig(srv.URL), &log)
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("Run = %v, want an error containing %q", err, tt.err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not stop")
			}
		})
	}
}

func TestRunDuration(t *testing.T) {
	rec, srv := newRecorder(t)
	cfg := testConfig(srv.URL)
	cfg.Rate, cfg.Duration, cfg.DuplicateShare = 200, 300*time.Millisecond, 0
	var log logBuffer
	err := Run(context.Background(), cfg, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	events := rec.events
	rec.mu.Unlock()
	// 200 events/s for 0.3 s: 60 expected, all sent before Run returns.
	if events < 20 || events > 200 {
		t.Errorf("%d events in 300 ms at 200/s", events)
	}
	if !strings.Contains(log.String(), "demo finished") {
		t.Errorf("no final summary:\n%s", log.String())
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Key = ""
	err := Run(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "--key") {
		t.Fatalf("Run = %v, want an error naming --key", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"5", 5 * time.Second, true},
		{" 12 ", 12 * time.Second, true},
		{"-1", 0, false},
		{"999999999", maxRetryAfter, true},
		{"Tue, 04 Mar 2025 09:00:30 GMT", 30 * time.Second, true},
		{"Tue, 04 Mar 2025 08:00:00 GMT", 0, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := retryAfter(tt.in, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
