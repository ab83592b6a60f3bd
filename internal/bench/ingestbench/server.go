package ingestbench

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/server"
)

// serverSettings are the settings of `truthboard serve` a phase changes; the others keep
// their defaults (config.Default), except the rate limit, which is off.
type serverSettings struct {
	FlushRows     int
	SpoolMaxBytes int // 0: the default quota
}

// target is a running Truthboard server under test.
type target struct {
	URL string
	// PID is the server's own process, or 0 when it runs inside the benchmark process.
	PID     int
	Flushes *flushStats
	stop    func(ctx context.Context) error
}

// Stop shuts the server down the way SIGTERM does: HTTP first, then the writer's flush.
func (s *target) Stop(ctx context.Context) error { return s.stop(ctx) }

// stopPass stops the server at the end of a pass; its error becomes the pass's, unless the
// pass failed already.
func (s *target) stopPass(err *error) {
	if stopErr := s.Stop(context.Background()); stopErr != nil && *err == nil {
		*err = stopErr
	}
}

// RSS returns the resident memory and its peak (VmRSS, VmHWM) of the server's process in KiB.
func (s *target) RSS() (rss, hwm int64) {
	p, _ := benchkit.ReadProc(s.PID)
	return p.RSS >> 10, p.HWM >> 10
}

// serverLauncher starts servers for the phases of a run, either as child processes of a
// binary built from cmd/truthboard (the honest setting: the server's memory is its own and
// its CPU is scheduled apart from the load generator's) or inside this process (for -cpuprofile).
type serverLauncher struct {
	env       *benchEnv
	mode      string // "child" or "inprocess"
	bin       string // the truthboard binary, for mode child
	database  string
	ingestKey string
	dir       string // data dir of the child servers
}

const (
	modeChild     = "child"
	modeInProcess = "inprocess"
)

func (l *serverLauncher) start(ctx context.Context, s serverSettings) (*target, error) {
	if l.mode == modeInProcess {
		return l.startInProcess(ctx, s)
	}
	return l.startChild(ctx, s)
}

// startChild runs `truthboard serve` on a free loopback port and waits until it is ready.
func (l *serverLauncher) startChild(ctx context.Context, s serverSettings) (*target, error) {
	flags := []string{"-ingest-rate", "0", "-demo-rate", "0", "-flush-rows", strconv.Itoa(s.FlushRows),
		// One key sends everything: its share of the bodies in flight is the whole budget, so
		// the overload phase still meets the server's budget (503), not a key's share (429).
		"-max-inflight-bytes-per-key", strconv.Itoa(config.Default().MaxInflightBytes)}
	if s.SpoolMaxBytes > 0 {
		flags = append(flags, "-spool-max-bytes", strconv.Itoa(s.SpoolMaxBytes))
	}
	flushes := &flushStats{}
	proc, err := benchkit.StartServe(ctx, benchkit.ServeOptions{
		Bin:        l.bin,
		DataDir:    filepath.Join(l.dir, "server"),
		ClickHouse: l.env.ch,
		Database:   l.database,
		IngestKeys: []string{l.ingestKey},
		AdminToken: "bench-admin-" + l.ingestKey,
		Flags:      flags,
		// TRUTHBOARD_DEBUG logs every flush, which gives the flush sizes and insert times below
		// (about 10 lines per second: negligible).
		Env:   []string{"TRUTHBOARD_DEBUG=1"},
		OnLog: flushes.readLine,
	})
	if err != nil {
		return nil, err
	}
	return &target{
		URL:     proc.URL,
		PID:     proc.PID,
		Flushes: flushes,
		stop:    func(context.Context) error { return proc.Stop(2 * time.Minute) },
	}, nil
}

// startInProcess starts the server inside this process with internal/server, as `truthboard
// serve` does, with the same settings as startChild.
func (l *serverLauncher) startInProcess(ctx context.Context, s serverSettings) (*target, error) {
	dataDir, err := os.MkdirTemp(l.dir, "server-")
	if err != nil {
		return nil, err
	}
	cfg := l.env.ch.ServerConfig(dataDir, l.database, []string{l.ingestKey}, "bench-admin-"+l.ingestKey)
	cfg.FlushRows = s.FlushRows
	if s.SpoolMaxBytes > 0 {
		cfg.SpoolMaxBytes = s.SpoolMaxBytes
	}
	flushes := &flushStats{}
	srv, err := server.Start(ctx, cfg, server.Options{
		Log: slog.New(flushes),
		ObserveInsert: func(a ingest.Attempt) {
			if a.Err == nil {
				flushes.add(a.Events, a.LookedUp, a.Took)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return &target{URL: srv.URL(), Flushes: flushes, stop: srv.Stop}, nil
}

// flushStats sums the drainer's inserts: how many, of how many rows, taking how long, and the
// warnings and errors the server logged. A child server's come from the "drained" debug records
// of its log; an in-process server's from server.Options (ObserveInsert, and flushStats as the
// slog handler of its warnings).
type flushStats struct {
	mu       sync.Mutex
	count    int
	rows     int
	insert   time.Duration // sum of the insert times ("took": the duplicate lookup and the insert)
	maxTook  time.Duration
	lookedUp int      // events the drainer asked ClickHouse about before inserting
	lookups  int      // flushes that asked
	problems []string // warnings and errors the server logged
}

type flushSnapshot struct {
	Count, Rows       int
	Insert, MaxInsert time.Duration
	LookedUp, Lookups int    // events looked up before the inserts, and flushes that looked up
	Problems          int    // warnings and errors the server logged
	FirstProblem      string // the first of them
}

func (f *flushStats) snapshot() flushSnapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := flushSnapshot{Count: f.count, Rows: f.rows, Insert: f.insert, MaxInsert: f.maxTook, LookedUp: f.lookedUp, Lookups: f.lookups, Problems: len(f.problems)}
	if len(f.problems) > 0 {
		s.FirstProblem = shorten(f.problems[0], 300)
	}
	return s
}

func (f *flushStats) add(events, lookedUp int, took time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count++
	f.rows += events
	f.lookedUp += lookedUp
	if lookedUp > 0 {
		f.lookups++
	}
	f.insert += took
	f.maxTook = max(f.maxTook, took)
}

// waitRows waits until the server's flushes have stored want events, or ctx ends, looking at
// the flushes it logged: the pass's end needs no query to ClickHouse, whose CPU it measures.
func (f *flushStats) waitRows(ctx context.Context, want int) {
	for {
		f.mu.Lock()
		rows := f.rows
		f.mu.Unlock()
		if rows >= want || ctx.Err() != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *flushStats) problem(line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.problems) < 1000 {
		f.problems = append(f.problems, line)
	}
}

// readLine parses a line of the text log of `truthboard serve` (slog's TextHandler).
func (f *flushStats) readLine(line string) {
	switch {
	case strings.Contains(line, " msg=drained "):
		kv := map[string]string{}
		for _, field := range strings.Fields(line) {
			if k, v, ok := strings.Cut(field, "="); ok {
				kv[k] = v
			}
		}
		events, _ := strconv.Atoi(kv["events"])
		lookedUp, _ := strconv.Atoi(kv["looked_up"])
		took, _ := time.ParseDuration(kv["took"])
		f.add(events, lookedUp, took)
	case strings.Contains(line, "level=WARN"), strings.Contains(line, "level=ERROR"):
		f.problem(line)
	}
}

// The slog.Handler of an in-process server: its warnings and errors.

func (f *flushStats) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (f *flushStats) Handle(_ context.Context, r slog.Record) error {
	f.problem(r.Level.String() + " " + r.Message)
	return nil
}

func (f *flushStats) WithAttrs([]slog.Attr) slog.Handler { return f }
func (f *flushStats) WithGroup(string) slog.Handler      { return f }
