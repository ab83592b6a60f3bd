package livebench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
)

// phase is one fan-out measurement: clients screens spread evenly over views distinct views.
type phase struct {
	layout   string // "one view" or "N views"
	clients  int
	views    int
	baseline bool
}

// fanoutPhases are the phases of a run: per layout, the baseline (one screen per view) and
// then each -clients count.
func (e *benchEnv) fanoutPhases() []phase {
	var ps []phase
	ps = append(ps, phase{layout: "one view", clients: 1, views: 1, baseline: true})
	for _, n := range e.o.clients {
		ps = append(ps, phase{layout: "one view", clients: n, views: 1})
	}
	spread := fmt.Sprintf("%d views", e.o.views)
	ps = append(ps, phase{layout: spread, clients: e.o.views, views: e.o.views, baseline: true})
	for _, n := range e.o.clients {
		ps = append(ps, phase{layout: spread, clients: max(n, e.o.views), views: e.o.views})
	}
	return ps
}

func (p phase) subscriptions() []subscription {
	if p.views == 1 {
		return []subscription{executive5m}
	}
	return spreadFilters()[:p.views]
}

// dist is a distribution's summary; durations in milliseconds.
type dist struct {
	N                  int
	P50, P90, P99, Max float64
}

// summarize summarizes durations in nanoseconds, in milliseconds.
func summarize(xs []int64) dist {
	s := benchkit.Summarize(xs)
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return dist{N: s.N, P50: ms(s.P50), P90: ms(s.P90), P99: ms(s.P99), Max: ms(s.Max)}
}

// fanoutResult is what one phase measured, over its measurement window only (after every
// screen subscribed and the warm-up).
type fanoutResult struct {
	phase
	Window       time.Duration
	DialTime     time.Duration
	DialFailures int
	DialError    string

	CPU cpuUse
	Mem benchkit.Proc // at the end of the window; HWM is the process's peak since it started
	// OpenFiles is the server's soft open-files limit, as it saw it.
	OpenFiles string

	// Lag is receive time − the message's tick, over every message of every screen whose
	// tick falls in the window. Spread is, per feed tick, the last screen's receive time − the
	// first's: what fanning one frame out to all its screens takes.
	Lag, Spread dist
	// FirstLag and LastLag are, per feed tick, the first and the last screen's receive time −
	// the tick: the first is about the tick's queries and encoding, the rest is fan-out.
	FirstLag, LastLag dist
	// Messages received in the window, and per screen per tick of the window.
	Messages    int
	Bytes       int64 // of those messages
	PerTick     float64
	Skipped     int // seq gaps: updates replaced in a screen's latest-wins slot before it took them
	Snapshots   int
	Degraded    int
	Errors      int // "error" messages (a refused subscription)
	Dropped     int // screens whose connection ended before the end of the window
	DropReason  string
	SlowCloses  uint64
	Feeds       int
	HubClients  int
	Ticks       uint64 // feed ticks in the window, all feeds
	Queries     uint64 // ClickHouse queries the feeds ran in the window
	PerFeedTick float64
	PerTickAll  float64 // queries per tick interval, all feeds together
	Warnings    int
	// The server's Go runtime (GC trace) during the window: GCs, the live heap and stacks after
	// the last GC, the largest heap goal (MB).
	GCs                       int
	HeapLive, Stacks, MaxGoal int64
}

// fanout runs one phase against a fresh server.
func (e *benchEnv) fanout(ctx context.Context, p phase) (fanoutResult, error) {
	res := fanoutResult{phase: p}
	srv, err := e.launch(ctx, fmt.Sprintf("fanout-%d-%d-%d", p.clients, p.views, time.Now().UnixNano()))
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	res.OpenFiles = openFilesLimit(srv.PID)

	dialStart := time.Now()
	screens, failures, dialErr := dialAll(ctx, wsURL(srv.URL, e.admin), p.clients, e.o.dialBatch, p.subscriptions())
	res.DialTime, res.DialFailures = time.Since(dialStart), failures
	defer closeAll(screens)
	if dialErr != nil {
		res.DialError = dialErr.Error()
		e.log.Warn("some screens could not connect", "failures", failures, "first", dialErr)
	}
	if len(screens) == 0 {
		return res, fmt.Errorf("no screen could connect: %v", dialErr)
	}

	if err := sleep(ctx, e.o.warmup); err != nil {
		return res, err
	}
	st0, err := e.stats(ctx, srv.URL)
	if err != nil {
		return res, err
	}
	if e.measureStart != nil {
		e.measureStart()
	}
	cpu0 := sampleCPU(srv.PID, e.chPID)
	if err := sleep(ctx, e.o.fanoutDuration); err != nil {
		return res, err
	}
	cpu1 := sampleCPU(srv.PID, e.chPID)
	res.Mem = readProc(srv.PID)
	if e.measureEnd != nil {
		e.measureEnd()
	}
	st1, err := e.stats(ctx, srv.URL)
	if err != nil {
		return res, err
	}
	res.CPU = cpuBetween(cpu0, cpu1, srv.PID == os.Getpid())
	res.Window = cpu1.at.Sub(cpu0.at)
	res.Feeds, res.HubClients = st1.Feeds, st1.Clients
	res.Ticks, res.Queries = st1.Ticks-st0.Ticks, st1.Queries-st0.Queries
	if res.Ticks > 0 {
		res.PerFeedTick = float64(res.Queries) / float64(res.Ticks)
	}
	res.PerTickAll = float64(res.Queries) / (res.Window.Seconds() / e.o.tick.Seconds())
	res.SlowCloses = st1.Closes["slow consumer"] - st0.Closes["slow consumer"]

	closeAll(screens)
	res.Warnings = srv.Warnings()
	var lastGC gcLine
	res.GCs, lastGC, res.MaxGoal = srv.gcStats(cpu0.at, cpu1.at)
	res.HeapLive, res.Stacks = lastGC.live, lastGC.stacks
	if err := srv.Stop(); err != nil {
		return res, err
	}
	analyze(&res, screens, cpu0.at.UnixNano(), cpu1.at.UnixNano(), e.o.tick)
	e.log.Info("fan-out phase done", "layout", p.layout, "clients", p.clients,
		"cpu_server_pct", fmt.Sprintf("%.0f", res.CPU.Server), "rss_mb", res.Mem.RSS/1e6, "hwm_mb", res.Mem.HWM/1e6,
		"lag_p50_ms", res.Lag.P50, "lag_p99_ms", res.Lag.P99, "skipped", res.Skipped,
		"feeds", res.Feeds, "queries_per_feed_tick", fmt.Sprintf("%.2f", res.PerFeedTick))
	return res, nil
}

// analyze computes the message figures of the window [from, to) (Unix nanoseconds).
func analyze(res *fanoutResult, screens []*lightScreen, from, to int64, tick time.Duration) {
	type key struct {
		view int
		seq  uint64
	}
	type span struct{ tick, first, last int64 }
	spans := map[key]*span{}
	var lags []int64
	for _, s := range screens {
		if s.err != nil && s.ended < to {
			res.Dropped++
			if res.DropReason == "" {
				res.DropReason = s.err.Error()
			}
		}
		res.Snapshots += s.snapshots
		res.Degraded += s.degraded
		res.Errors += s.errors
		var prev uint64
		for _, m := range s.samples {
			if m.tick < from || m.tick >= to {
				continue
			}
			if prev != 0 && m.seq > prev+1 {
				res.Skipped += int(m.seq - prev - 1)
			}
			prev = m.seq
			lags = append(lags, m.recv-m.tick)
			res.Bytes += m.size
			k := key{s.view, m.seq}
			sp := spans[k]
			if sp == nil {
				spans[k] = &span{tick: m.tick, first: m.recv, last: m.recv}
			} else {
				sp.first, sp.last = min(sp.first, m.recv), max(sp.last, m.recv)
			}
		}
	}
	res.Messages = len(lags)
	res.Lag = summarize(lags)
	spread := make([]int64, 0, len(spans))
	first := make([]int64, 0, len(spans))
	last := make([]int64, 0, len(spans))
	for _, sp := range spans {
		spread = append(spread, sp.last-sp.first)
		first = append(first, sp.first-sp.tick)
		last = append(last, sp.last-sp.tick)
	}
	res.Spread, res.FirstLag, res.LastLag = summarize(spread), summarize(first), summarize(last)
	if n := len(screens); n > 0 {
		ticks := float64(to-from) / float64(tick)
		res.PerTick = float64(res.Messages) / float64(n) / ticks
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
