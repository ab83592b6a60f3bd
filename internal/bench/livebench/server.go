package livebench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
)

// target is a running `truthboard serve` under test.
type target struct {
	URL string
	// PID is the server's process: a child, or this process (-profile-dir).
	PID int
	// Ready is when it answered /readyz: its demo traffic starts about then.
	Ready time.Time
	// Stop shuts the server down as SIGTERM does and waits for it; only the first call stops.
	Stop func() error
	// Warnings is the number of WARN and ERROR lines the server has logged (e.g. a live feed
	// degraded because a query failed).
	Warnings func() int

	gcMu sync.Mutex
	gcs  []gcLine // the Go runtime's GC trace (GODEBUG=gctrace=1)
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
func (s *target) gcStats(from, to time.Time) (n int, last gcLine, maxGoal int64) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	for _, g := range s.gcs {
		if g.at.Before(from) || g.at.After(to) {
			continue
		}
		n++
		last, maxGoal = g, max(maxGoal, g.goal)
	}
	return n, last, maxGoal
}

// logLine keeps the GC trace lines of the server's log, with the time they arrived.
func (s *target) logLine(line string) {
	m := gcTrace.FindStringSubmatch(line)
	if m == nil {
		return
	}
	g := gcLine{at: time.Now()}
	g.live, _ = strconv.ParseInt(m[1], 10, 64)
	g.goal, _ = strconv.ParseInt(m[2], 10, 64)
	g.stacks, _ = strconv.ParseInt(m[3], 10, 64)
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	s.gcs = append(s.gcs, g)
}

// startServer runs the server binary with demo traffic at -demo-rate on a free loopback port,
// in a data directory of its own, and waits until it is ready.
func (e *benchEnv) startServer(ctx context.Context, name string) (*target, error) {
	// The Go runtime's GC trace (one stderr line per GC) gives the server's live heap, heap goal
	// and stacks without anything in the server exposing them.
	godebug := "gctrace=1"
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + ",gctrace=1"
	}
	srv := &target{}
	proc, err := benchkit.StartServe(ctx, benchkit.ServeOptions{
		Bin:        e.bin,
		DataDir:    filepath.Join(e.tmp, name),
		ClickHouse: e.o.ch,
		Database:   e.database,
		IngestKeys: []string{e.ingestKey},
		AdminToken: e.admin,
		Flags: []string{
			"-ingest-rate", "0",
			"-demo-rate", strconv.FormatFloat(e.o.demoRate, 'g', -1, 64),
			"-live-tick", e.o.tick.String(),
			"-live-min-tick", e.o.minTick.String(),
			"-flush-interval", e.o.flushInterval.String(),
		},
		// Thousands of screens from this one address with one token, on up to 50 views: the
		// bounds per client are off, the server's own bounds stay.
		Env: []string{"GODEBUG=" + godebug, "TRUTHBOARD_LIVE_MAX_CONNS_PER_CREDENTIAL=0",
			"TRUTHBOARD_LIVE_MAX_CONNS_PER_ADDRESS=0", "TRUTHBOARD_LIVE_MAX_FEEDS_PER_CREDENTIAL=0"},
		OnLog: srv.logLine,
	})
	if err != nil {
		return nil, err
	}
	srv.URL, srv.PID, srv.Ready = proc.URL, proc.PID, proc.Ready
	srv.Stop = func() error { return proc.Stop(30 * time.Second) }
	srv.Warnings = func() int { n, _ := proc.Warnings(); return n }
	return srv, nil
}

var httpClient = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		Proxy:               nil, // loopback only, whatever the environment says
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	},
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
func (e *benchEnv) demoRate(ctx context.Context, srv *target) (float64, error) {
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
