package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/spool"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/web"
)

// serverSettings are the settings of `truthboard serve` a phase changes; the others keep
// their defaults (config.Default), except the rate limit, which is off.
type serverSettings struct {
	FlushRows     int
	SpoolMaxBytes int // 0: the default quota
}

// server is a running Truthboard server under test.
type server struct {
	URL string
	// PID is the server's own process, or 0 when it runs inside the benchmark process.
	PID     int
	Flushes *flushStats
	stop    func(ctx context.Context) error
}

// Stop shuts the server down the way SIGTERM does: HTTP first, then the writer's flush.
func (s *server) Stop(ctx context.Context) error { return s.stop(ctx) }

// RSS returns the resident memory and its peak (VmRSS, VmHWM) of the server's process in KiB.
func (s *server) RSS() (rss, hwm int64) {
	rss, _ = memKB(s.PID, "VmRSS")
	hwm, _ = memKB(s.PID, "VmHWM")
	return rss, hwm
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
	log       *slog.Logger
}

const (
	modeChild     = "child"
	modeInProcess = "inprocess"
)

// buildServer compiles cmd/truthboard into dir, from the module the benchmark runs in.
func buildServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "truthboard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/truthboard")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/truthboard (run the benchmark from the module root, or give -server-bin): %w", err)
	}
	return bin, nil
}

func (l *serverLauncher) start(ctx context.Context, s serverSettings) (*server, error) {
	if l.mode == modeInProcess {
		return l.startInProcess(ctx, s)
	}
	return l.startChild(ctx, s)
}

// startChild runs `truthboard serve` on a free loopback port and waits until it answers.
func (l *serverLauncher) startChild(ctx context.Context, s serverSettings) (*server, error) {
	args := []string{"serve",
		"-listen", "127.0.0.1:0",
		"-data-dir", l.dir,
		"-clickhouse-addr", l.env.addr,
		"-clickhouse-database", l.database,
		"-clickhouse-user", l.env.user,
		"-ingest-keys", l.ingestKey,
		"-admin-token", "bench-admin-" + l.ingestKey,
		"-ingest-rate", "0",
		"-demo-rate", "0",
		"-flush-rows", strconv.Itoa(s.FlushRows),
		// One key sends everything: its share of the bodies in flight is the whole budget, so
		// the overload phase still meets the server's budget (503), not a key's share (429).
		"-max-inflight-bytes-per-key", strconv.Itoa(config.Default().MaxInflightBytes),
	}
	if s.SpoolMaxBytes > 0 {
		args = append(args, "-spool-max-bytes", strconv.Itoa(s.SpoolMaxBytes))
	}
	cmd := exec.Command(l.bin, args...)
	// Settings come from the flags above only: a TRUTHBOARD_* variable of the caller's shell
	// must not change what is measured. TRUTHBOARD_DEBUG logs every flush, which gives the
	// flush sizes and insert times below (about 10 lines per second: negligible).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRUTHBOARD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "TRUTHBOARD_DEBUG=1", "TRUTHBOARD_CLICKHOUSE_PASSWORD="+l.env.password)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", l.bin, err)
	}
	flushes := &flushStats{}
	done := make(chan error, 1)
	var outputs sync.WaitGroup
	outputs.Add(1)
	go func() {
		defer outputs.Done()
		flushes.readLog(stderr)
	}()
	urlc := make(chan string, 1)
	outputs.Add(1)
	go func() {
		defer outputs.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "Truthboard is running at "); ok {
				url, _, _ := strings.Cut(rest, " ")
				select {
				case urlc <- url:
				default:
				}
			}
		}
	}()
	go func() {
		outputs.Wait() // Wait closes the pipes: read them to the end first
		done <- cmd.Wait()
	}()
	srv := &server{PID: cmd.Process.Pid, Flushes: flushes}
	srv.stop = func(ctx context.Context) error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("server exited: %w; its last errors: %s", err, flushes.lastErrors())
			}
			return nil
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("server did not stop after SIGTERM: %w", ctx.Err())
		}
	}
	select {
	case srv.URL = <-urlc:
	case err := <-done:
		return nil, fmt.Errorf("server exited at start (%v): %s", err, flushes.lastErrors())
	case <-time.After(30 * time.Second):
		_ = srv.Stop(context.Background())
		return nil, errors.New("server did not say where it listens within 30 s")
	case <-ctx.Done():
		_ = srv.Stop(context.Background())
		return nil, ctx.Err()
	}
	return srv, nil
}

// startInProcess wires store → ingest.Writer → web.Server as cmd/truthboard's serve does.
func (l *serverLauncher) startInProcess(ctx context.Context, s serverSettings) (*server, error) {
	cfg := config.Default()
	db, err := store.Open(ctx, l.env.storeOptions(l.database))
	if err != nil {
		return nil, err
	}
	flushes := &flushStats{}
	log := slog.New(flushes)
	spoolDir, err := os.MkdirTemp(l.dir, "spool-")
	if err != nil {
		db.Close()
		return nil, err
	}
	writer, err := ingest.Open(db, ingest.Options{
		Spool:         spool.Options{Dir: spoolDir, MaxBytes: int64(max(s.SpoolMaxBytes, cfg.SpoolMaxBytes))},
		FlushInterval: cfg.FlushInterval,
		FlushRows:     s.FlushRows,
	}, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	srv := web.New(writer, db, web.Options{
		IngestKeys: auth.NewKeySet(l.ingestKey),
		AdminToken: auth.NewKeySet("bench-admin-" + l.ingestKey),
		IngestRate: 0,
		Limits: event.Limits{
			MaxBodyBytes: int64(cfg.MaxBodyBytes),
			MaxEvents:    cfg.MaxEvents,
			Retention:    cfg.Retention,
		},
	}, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		db.Close()
		return nil, err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	return &server{
		URL:     "http://" + ln.Addr().String(),
		Flushes: flushes,
		stop: func(ctx context.Context) error {
			defer db.Close()
			if err := srv.Shutdown(ctx); err != nil {
				return err
			}
			return writer.Close(ctx)
		},
	}, nil
}

// flushStats sums the drainer's "drained" debug records: how many inserts, of how many rows,
// taking how long. It reads them from a child's log or, in process, is the slog handler.
type flushStats struct {
	mu       sync.Mutex
	count    int
	rows     int
	requests int
	insert   time.Duration // sum of the insert times ("took": the duplicate lookup and the insert)
	maxTook  time.Duration
	problems []string // warnings and errors the server logged
}

type flushSnapshot struct {
	Count, Rows, Requests int
	Insert, MaxInsert     time.Duration
	Problems              int    // warnings and errors the server logged
	FirstProblem          string // the first of them
}

func (f *flushStats) snapshot() flushSnapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := flushSnapshot{Count: f.count, Rows: f.rows, Requests: f.requests, Insert: f.insert, MaxInsert: f.maxTook, Problems: len(f.problems)}
	if len(f.problems) > 0 {
		s.FirstProblem = shorten(f.problems[0], 300)
	}
	return s
}

func (f *flushStats) add(events, requests int, took time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count++
	f.rows += events
	f.requests += requests
	f.insert += took
	f.maxTook = max(f.maxTook, took)
}

func (f *flushStats) problem(line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.problems) < 1000 {
		f.problems = append(f.problems, line)
	}
}

func (f *flushStats) lastErrors() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.problems) == 0 {
		return "(none logged)"
	}
	return strings.Join(f.problems[max(0, len(f.problems)-3):], " | ")
}

// readLog parses the text log of `truthboard serve` (slog's TextHandler).
func (f *flushStats) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, " msg=drained "):
			kv := map[string]string{}
			for _, field := range strings.Fields(line) {
				if k, v, ok := strings.Cut(field, "="); ok {
					kv[k] = v
				}
			}
			events, _ := strconv.Atoi(kv["events"])
			requests, _ := strconv.Atoi(kv["requests"])
			took, _ := time.ParseDuration(kv["took"])
			f.add(events, requests, took)
		case strings.Contains(line, "level=WARN"), strings.Contains(line, "level=ERROR"):
			f.problem(line)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// The slog.Handler of an in-process server.

func (f *flushStats) Enabled(_ context.Context, l slog.Level) bool { return true }

func (f *flushStats) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "drained" {
		var events, requests int
		var took time.Duration
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "events":
				events = int(a.Value.Int64())
			case "requests":
				requests = int(a.Value.Int64())
			case "took":
				took = a.Value.Duration()
			}
			return true
		})
		f.add(events, requests, took)
		return nil
	}
	if r.Level >= slog.LevelWarn {
		f.problem(r.Level.String() + " " + r.Message)
	}
	return nil
}

func (f *flushStats) WithAttrs([]slog.Attr) slog.Handler { return f }
func (f *flushStats) WithGroup(string) slog.Handler      { return f }
