// Package notifytest gives tests the real servers that alert delivery talks to: Prometheus
// Alertmanager (Debian's prometheus-alertmanager, started on a free loopback port with its own
// configuration and storage) and webhook receivers (real HTTP servers that keep what they are
// sent and answer as the test says). There is no mock: a test that delivers alerts watches
// them arrive where people would.
//
// It imports nothing of internal/alert/notify, so notify's own tests use it too; a receiver is
// typed by the payload it decodes (notify.WebhookPayload).
package notifytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// WaitLimit bounds every wait for a real server to do something. It is no timed assertion:
// the waits end as soon as the awaited thing happens, and the limit only turns a hang into a
// failure that says what was awaited.
const WaitLimit = 30 * time.Second

// alertmanagerBinary finds Debian's prometheus-alertmanager (or an alertmanager on PATH).
func alertmanagerBinary(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/prometheus-alertmanager", "prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Prometheus Alertmanager is not installed, and these tests deliver to a real one: " +
		"install it with `apt-get install prometheus-alertmanager` (scripts/test.sh does), " +
		"or put an alertmanager binary on PATH")
	return ""
}

// StartAlertmanager runs a real Alertmanager on a free loopback port, with its own
// configuration and storage and no clustering, routing every alert to webhookURL with
// group_wait and group_interval of 1s. It returns its base URL and stops it when the test ends.
func StartAlertmanager(t testing.TB, webhookURL string) string {
	t.Helper()
	bin := alertmanagerBinary(t)
	dir := t.TempDir()
	config := fmt.Sprintf(`route:
  receiver: test
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: %q
        send_resolved: true
`, webhookURL)
	configFile := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// A port is free when picked and may be taken before Alertmanager binds it: try again then.
	var lastErr error
	for range 3 {
		base, err := runAlertmanager(t, bin, dir, configFile)
		if err == nil {
			return base
		}
		lastErr = err
	}
	t.Fatalf("start Alertmanager: %v", lastErr)
	return ""
}

func runAlertmanager(t testing.TB, bin, dir, configFile string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr
	logPath := filepath.Join(dir, "alertmanager-"+strings.ReplaceAll(addr, ":", "_")+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logFile.Close()
	cmd := exec.Command(bin,
		"--config.file="+configFile,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--web.external-url="+base,
		"--cluster.listen-address=", // no gossip: a single instance
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("%s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(WaitLimit)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Cleanup(func() {
					stop()
					if t.Failed() {
						logs, _ := os.ReadFile(logPath)
						t.Logf("Alertmanager's log:\n%s", logs)
					}
				})
				return base, nil
			}
		}
		select {
		case err := <-exited:
			logs, _ := os.ReadFile(logPath)
			return "", fmt.Errorf("alertmanager exited (%v) before it was ready:\n%s", err, logs)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			logs, _ := os.ReadFile(logPath)
			return "", fmt.Errorf("alertmanager at %s not ready after %s:\n%s", addr, WaitLimit, logs)
		}
	}
}

// GettableAlert is what Alertmanager's GET /api/v2/alerts lists.
type GettableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	Fingerprint  string            `json:"fingerprint"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Status       struct {
		State string `json:"state"`
	} `json:"status"`
	Receivers []struct {
		Name string `json:"name"`
	} `json:"receivers"`
}

// ListAlerts asks Alertmanager for the alerts it holds as firing (resolved ones it no longer
// lists), by alertname.
func ListAlerts(t testing.TB, base string) map[string]GettableAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatalf("GET /api/v2/alerts: %v", err)
	}
	defer resp.Body.Close()
	var alerts []GettableAlert
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		t.Fatalf("GET /api/v2/alerts: %s: %v", resp.Status, err)
	}
	out := map[string]GettableAlert{}
	for _, a := range alerts {
		out[a.Labels["alertname"]] = a
	}
	return out
}

// Receiver is a webhook receiver: a real HTTP server that keeps every body it accepts, and
// answers with answer(n) for the n-th request (1-based; nil: 200). P is the payload its
// bodies are decoded into.
type Receiver[P any] struct {
	*httptest.Server

	mu       sync.Mutex
	answer   func(n int, r *http.Request) int
	requests int
	bodies   [][]byte
	arrived  chan struct{} // a signal per request, coalesced
}

// NewReceiver starts a receiver, closed when the test ends.
func NewReceiver[P any](t testing.TB, answer func(n int, r *http.Request) int) *Receiver[P] {
	r := &Receiver[P]{answer: answer, arrived: make(chan struct{}, 1)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests++
		n, answer := r.requests, r.answer
		r.mu.Unlock()
		status := http.StatusOK
		if answer != nil {
			status = answer(n, req)
		}
		r.mu.Lock()
		if status/100 == 2 {
			r.bodies = append(r.bodies, body)
		}
		r.mu.Unlock()
		select {
		case r.arrived <- struct{}{}:
		default:
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

// SetAnswer changes how the receiver answers from the next request on.
func (r *Receiver[P]) SetAnswer(answer func(n int, r *http.Request) int) {
	r.mu.Lock()
	r.answer = answer
	r.mu.Unlock()
}

// Requests is the number of requests received, refused ones included.
func (r *Receiver[P]) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Payloads are the accepted bodies, decoded.
func (r *Receiver[P]) Payloads(t testing.TB) []P {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]P, len(r.bodies))
	for i, b := range r.bodies {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatalf("payload %d is not a webhook payload: %v\n%s", i, err, b)
		}
	}
	return out
}

// Raw is the i-th accepted body, as generic JSON.
func (r *Receiver[P]) Raw(t testing.TB, i int) map[string]any {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var m map[string]any
	if err := json.Unmarshal(r.bodies[i], &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// WaitFor waits until cond holds for a payload received, and returns the index of the first
// payload for which it holds.
func (r *Receiver[P]) WaitFor(t testing.TB, what string, cond func(p P) bool) (int, P) {
	t.Helper()
	deadline := time.After(WaitLimit)
	for {
		for i, p := range r.Payloads(t) {
			if cond(p) {
				return i, p
			}
		}
		select {
		case <-r.arrived:
		case <-deadline:
			t.Fatalf("no payload %s within %s; received: %+v", what, WaitLimit, r.Payloads(t))
		}
	}
}

// Eventually polls cond until it holds, for the state of real servers that give no signal.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %s", what, WaitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
