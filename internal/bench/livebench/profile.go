package livebench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/server"
)

// startInProcess starts the server with demo traffic inside this process with internal/server,
// as `truthboard serve` does, with the same settings as startServer.
func (e *benchEnv) startInProcess(ctx context.Context, name string) (*target, error) {
	cfg := e.o.ch.ServerConfig(filepath.Join(e.tmp, name), e.database, []string{e.ingestKey}, e.admin)
	cfg.DemoRate, cfg.LiveTick, cfg.LiveMinTick, cfg.FlushInterval = e.o.demoRate, e.o.tick, e.o.minTick, e.o.flushInterval
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.Start(ctx, cfg, server.Options{Log: log})
	if err != nil {
		return nil, err
	}
	s := &target{URL: srv.URL(), PID: os.Getpid(), Ready: time.Now(), Warnings: func() int { return 0 }}
	s.Stop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		return srv.Stop(ctx)
	}
	return s, nil
}

// runProfile is the diagnostic mode: one fan-out phase with the server in this process, a CPU
// profile of the measured window and a heap profile at its end, and their top entries.
func runProfile(ctx context.Context, e *benchEnv) error {
	dir := e.o.profileDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	e.launch = e.startInProcess
	cpuFile := filepath.Join(dir, "cpu.pprof")
	heapFile := filepath.Join(dir, "heap.pprof")
	var f *os.File
	e.measureStart = func() {
		var err error
		if f, err = os.Create(cpuFile); err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			e.log.Error("cpu profile", "err", err)
		}
	}
	e.measureEnd = func() {
		pprof.StopCPUProfile()
		f.Close()
		runtime.GC() // the heap profile shows what the last GC found live
		hf, err := os.Create(heapFile)
		if err == nil {
			err = pprof.Lookup("heap").WriteTo(hf, 0)
			hf.Close()
		}
		if err != nil {
			e.log.Error("heap profile", "err", err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		e.log.Info("memory at the end of the window (server and load generator together)",
			"heap_inuse_mb", ms.HeapInuse/1e6, "stack_inuse_mb", ms.StackInuse/1e6, "sys_mb", ms.Sys/1e6,
			"goroutines", runtime.NumGoroutine())
	}
	p := phase{layout: "one view", clients: e.o.profileClients, views: e.o.profileViews}
	if p.views > 1 {
		p.layout = fmt.Sprintf("%d views", p.views)
	}
	res, err := e.fanout(ctx, p)
	if err != nil {
		return err
	}
	fmt.Printf("diagnostic run, server in this process (CPU and memory include the load generator): %d screens, %d views: process CPU %.0f%%, RSS %s MB, peak %s MB, lag p50/p99/max %s/%s/%s ms, spread p99 %s ms\n",
		p.clients, p.views, res.CPU.Server, mb(res.Mem.RSS), mb(res.Mem.HWM), ms(res.Lag.P50), ms(res.Lag.P99), ms(res.Lag.Max), ms(res.Spread.P99))
	tops := map[string]string{}
	// The load generator's own stacks are left out, so that the tops are the server's (and the
	// runtime's, which both share).
	ignore := `-ignore=livebench\.(dialAll|dialScreen|\(\*lightScreen\)\.read|closeAll)`
	for _, a := range [][]string{
		{"cpu-top.txt", "-top", ignore, "-nodecount=40", cpuFile},
		{"cpu-cum.txt", "-top", "-cum", ignore, "-nodecount=60", cpuFile},
		{"heap-top.txt", "-top", ignore, "-sample_index=inuse_space", "-nodecount=40", heapFile},
		{"heap-cum.txt", "-top", "-cum", ignore, "-sample_index=inuse_space", "-nodecount=60", heapFile},
		{"alloc-top.txt", "-top", ignore, "-sample_index=alloc_space", "-nodecount=40", heapFile},
	} {
		out, err := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof"}, a[1:]...)...).CombinedOutput()
		if err != nil {
			e.log.Warn("go tool pprof", "err", err, "out", string(out))
			continue
		}
		tops[a[0]] = string(out)
		if err := os.WriteFile(filepath.Join(dir, a[0]), out, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("profiles and their tops in %s: %s\n", dir, strings.Join([]string{"cpu.pprof", "heap.pprof", "cpu-top.txt", "cpu-cum.txt", "heap-top.txt", "heap-cum.txt", "alloc-top.txt"}, ", "))
	if e.o.out == "" {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", profileHeading)
	fmt.Fprintf(&b, "Measured %s: %d screens on %s with the server inside the bench's process under pprof, %s of CPU profile after the warm-up, then a heap profile. "+
		"The process's CPU and RSS include the load generator; the tops below leave out the samples of its stacks (`livebench.dialAll`, `livebench.(*lightScreen).read`), so they are the server's and the Go runtime's (percentages stay those of the whole process). The figures of record are the child-process tables above.\n\n",
		time.Now().Format("2006-01-02 15:04 MST"), p.clients, p.layout, e.o.fanoutDuration)
	fmt.Fprintf(&b, "```sh\neval \"$(scripts/clickhouse.sh env)\"\n%s\n```\n\n", e.command)
	fmt.Fprintf(&b, "Process CPU %.0f%% of a core, RSS %s MB (peak %s), lag p50 / p99 / max %s / %s / %s ms, spread p99 %s ms.\n\n",
		res.CPU.Server, mb(res.Mem.RSS), mb(res.Mem.HWM), ms(res.Lag.P50), ms(res.Lag.P99), ms(res.Lag.Max), ms(res.Spread.P99))
	for _, t := range []struct {
		file, title string
		lines       int
	}{
		{"cpu-cum.txt", "Server CPU by cumulative time", 40},
		{"cpu-top.txt", "Server CPU by function", 16},
		{"heap-top.txt", "Server heap in use at the end of the window, by allocation site", 22},
	} {
		fmt.Fprintf(&b, "%s (`go tool pprof -top`, from %s):\n\n```text\n%s```\n\n", t.title, t.file, pprofBody(tops[t.file], t.lines))
	}
	return writeLiveSection(e.o.out, "", b.String())
}

// pprofBody keeps the lines of a pprof -top answer after its File/Build ID/Type/Time header.
func pprofBody(out string, n int) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") || strings.TrimSpace(l) == "" {
			continue
		}
		keep = append(keep, l)
		if len(keep) == n {
			break
		}
	}
	return strings.Join(keep, "\n") + "\n"
}
