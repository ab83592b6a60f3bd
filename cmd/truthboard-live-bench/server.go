package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a running `truthboard serve` under test.
type server struct {
	URL string
	// PID is the server's process, or 0 when it runs inside this process (-profile-dir).
	PID int
	// Ready is when it answered /readyz: its demo traffic starts about then.
	Ready time.Time
	stop  func() error

	logMu   sync.Mutex
	logTail []string // the last lines of its log, for errors
	warns   int      // WARN and ERROR lines of its log
	gcs     []gcLine // the Go runtime's GC trace (GODEBUG=gctrace=1)
}

// gcLine is one line of the Go runtime's GC trace, e.g. "gc 12 @3.4s 1%: ..., 40->41->20 MB,
// 42 MB goal, 1 MB stacks, 0 MB globals, 2 P": the live heap after the GC, the heap goal of the
// next one, and the goroutine stacks.
type gcLine struct {
	at                 time.Time
	live, goal, stacks int64 // MB
}

var gcTrace = regexp.MustCompile(`^gc \d+ @.*->(\d+) MB, (\d+) MB goal, (\d+) MB stacks`)

// gcStats summarizes the GC lines between from and to: the number of GCs, the largest heap
// goal, and the live heap and stacks of the last GC.
func (s *server) gcStats(from, to time.Time) (n int, last gcLine, maxGoal int64) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	for _, g := range s.gcs {
		if g.at.Before(from) || g.at.After(to) {
			continue
		}
		n++
		last, maxGoal = g, max(maxGoal, g.goal)
	}
	return n, last, maxGoal
}

// Stop shuts the server down as SIGTERM does and waits for it.
func (s *server) Stop() error { return s.stop() }

func (s *server) logLine(line string) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if m := gcTrace.FindStringSubmatch(line); m != nil {
		g := gcLine{at: time.Now()}
		g.live, _ = strconv.ParseInt(m[1], 10, 64)
		g.goal, _ = strconv.ParseInt(m[2], 10, 64)
		g.stacks, _ = strconv.ParseInt(m[3], 10, 64)
		s.gcs = append(s.gcs, g)
		return
	}
	if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
		s.warns++
	}
	s.logTail = append(s.logTail, line)
	if len(s.logTail) > 20 {
		s.logTail = s.logTail[1:]
	}
}

func (s *server) lastLog() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return strings.Join(s.logTail, "\n")
}

// Warnings is the number of WARN and ERROR lines the server has logged (e.g. a live feed
// degraded because a query failed).
func (s *server) Warnings() int {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.warns
}

// startServer runs the server binary with demo traffic at -demo-rate on a free loopback port,
// in a data directory of its own, and waits until it is ready.
func (e *benchEnv) startServer(ctx context.Context, name string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(e.tmp, name)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.Command(e.bin, "serve")
	// The settings come from here only: a TRUTHBOARD_* variable of the caller's shell must not
	// change what is measured.
	// The Go runtime's GC trace (one stderr line per GC) gives the server's live heap, heap goal
	// and stacks without anything in the server exposing them.
	godebug := "gctrace=1"
	for _, kv := range os.Environ() {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok && v != "" {
			godebug = v + ",gctrace=1"
			continue
		}
		if !strings.HasPrefix(kv, "TRUTHBOARD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"GODEBUG="+godebug,
		"TRUTHBOARD_LISTEN=127.0.0.1:"+strconv.Itoa(port),
		"TRUTHBOARD_DATA_DIR="+dataDir,
		"TRUTHBOARD_CLICKHOUSE_ADDR="+e.o.chAddr,
		"TRUTHBOARD_CLICKHOUSE_USER="+e.o.chUser,
		"TRUTHBOARD_CLICKHOUSE_PASSWORD="+e.o.chPassword,
		"TRUTHBOARD_CLICKHOUSE_DATABASE="+e.database,
		"TRUTHBOARD_INGEST_KEYS="+e.ingestKey,
		"TRUTHBOARD_ADMIN_TOKEN="+e.admin,
		"TRUTHBOARD_INGEST_RATE=0",
		"TRUTHBOARD_DEMO_RATE="+strconv.FormatFloat(e.o.demoRate, 'g', -1, 64),
		"TRUTHBOARD_LIVE_TICK="+e.o.tick.String(),
		// Thousands of screens from this one address with one token, on up to 50 views: the
		// bounds per client are off, the server's own bounds stay.
		"TRUTHBOARD_LIVE_MAX_CONNS_PER_CREDENTIAL=0",
		"TRUTHBOARD_LIVE_MAX_CONNS_PER_ADDRESS=0",
		"TRUTHBOARD_LIVE_MAX_FEEDS_PER_CREDENTIAL=0",
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", e.bin, err)
	}
	srv := &server{PID: cmd.Process.Pid}
	urlc := make(chan string, 1)
	var outputs sync.WaitGroup
	outputs.Add(2)
	go func() {
		defer outputs.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "Truthboard is running at "); ok {
				u, _, _ := strings.Cut(rest, " ")
				select {
				case urlc <- u:
				default:
				}
			}
		}
	}()
	go func() {
		defer outputs.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			srv.logLine(sc.Text())
		}
	}()
	done := make(chan error, 1)
	go func() {
		outputs.Wait() // Wait closes the pipes: read them to the end first
		done <- cmd.Wait()
	}()
	var stopOnce sync.Once
	var stopErr error
	srv.stop = func() error {
		stopOnce.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					stopErr = fmt.Errorf("server exited: %w; its last log lines:\n%s", err, srv.lastLog())
				}
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				stopErr = errors.New("server did not stop within 30 s of SIGTERM; killed")
			}
		})
		return stopErr
	}
	select {
	case srv.URL = <-urlc:
	case err := <-done:
		return nil, fmt.Errorf("server exited at start (%v); its last log lines:\n%s", err, srv.lastLog())
	case <-time.After(30 * time.Second):
		_ = srv.Stop()
		return nil, fmt.Errorf("server did not say where it listens within 30 s; its last log lines:\n%s", srv.lastLog())
	case <-ctx.Done():
		_ = srv.Stop()
		return nil, ctx.Err()
	}
	if err := waitReady(ctx, srv.URL); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	srv.Ready = time.Now()
	return srv, nil
}

// freePort asks the kernel for a free loopback port. The server binds it a moment later; in
// the meantime nothing else on this machine is expected to take it.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

var httpClient = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		Proxy:               nil, // loopback only, whatever the environment says
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	},
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		resp, err := httpClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server at %s not ready within 30 s (last: %v)", url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// hubStats is the answer of GET /v1/stats (live.Stats).
type hubStats struct {
	Feeds   int               `json:"feeds"`
	Clients int               `json:"clients"`
	Ticks   uint64            `json:"ticks"`
	Queries uint64            `json:"queries"`
	Closes  map[string]uint64 `json:"closes"`
}

func (e *benchEnv) stats(ctx context.Context, url string) (hubStats, error) {
	var st hubStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/stats", nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	resp, err := httpClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("GET /v1/stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return st, fmt.Errorf("GET /v1/stats: %s: %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("GET /v1/stats: %w", err)
	}
	return st, nil
}

// demoRate is the events per second the server has stored over the last minute, or since it
// started when that is shorter (the database is the bench's own: only this run writes to it),
// from GET /v1/metrics?window=1m.
func (e *benchEnv) demoRate(ctx context.Context, srv *server) (float64, error) {
	period := min(time.Since(srv.Ready), time.Minute)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/metrics?window=1m", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /v1/metrics: %w", err)
	}
	defer resp.Body.Close()
	var r struct {
		Total struct {
			Events uint64 `json:"events"`
		} `json:"total"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /v1/metrics: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("GET /v1/metrics: %w", err)
	}
	return float64(r.Total.Events) / period.Seconds(), nil
}
