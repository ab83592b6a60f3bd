package ingestbench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/event"
)

// The ingest suite measures, in one run against one fresh database:
//
//   - throughput: the same N events stored through HTTP (NDJSON batches to a real server,
//     store → ingest.Writer → web) and through the bare driver (store.InsertEvents, the
//     columnar batch insert the writer itself calls), into the same empty tables with the
//     same materialized views; the bare pass runs before and after the HTTP pass, so drift
//     of a shared machine shows;
//   - acknowledgement latency at a fixed offered load, open loop;
//   - overload: unpaced clients against a small queue, counting 503s and the server's memory.
type ingestOptions struct {
	events        int
	batchRows     int
	bigBatchRows  int
	requestEvents int
	clients       int
	rounds        int
	ownCPU        bool

	latencyRate          int
	latencyRequestEvents int
	latencyDuration      time.Duration
	maxInFlight          int

	overloadDuration time.Duration
	overloadClients  string
	overloadSpoolMiB int

	server     string
	serverBin  string
	cpuProfile string
	repeat     int
	seed       int64
}

func ingestSuite() *suite {
	o := &ingestOptions{}
	return &suite{
		Title: "Ingest",
		Help:  "HTTP ingest vs. the bare clickhouse-go batch insert; ack latency at a fixed load; overload",
		AddFlags: func(fs *flag.FlagSet) {
			d := config.Default()
			fs.IntVar(&o.events, "events", 1_000_000, "ingest: `events` stored by each throughput pass")
			fs.IntVar(&o.batchRows, "batch-rows", d.FlushRows, "ingest: `rows` per bare insert, and the server's -flush-rows")
			fs.IntVar(&o.bigBatchRows, "big-batch-rows", 100_000, "ingest: `rows` per insert of an extra bare pass for context (0: skip)")
			fs.IntVar(&o.requestEvents, "request-events", 1000, "ingest: `events` per HTTP request in the throughput and overload passes")
			fs.IntVar(&o.clients, "clients", 40, "ingest: concurrent HTTP `clients` in the throughput pass")
			fs.IntVar(&o.rounds, "rounds", 3, "ingest: HTTP throughput passes per run, each between two bare passes (bare, HTTP, bare, HTTP, …, bare)")
			fs.BoolVar(&o.ownCPU, "own-cpu", true, "ingest: run the throughput passes again with ClickHouse on CPU 0 alone and the load generator and the server on the others, as when ClickHouse has a machine of its own (needs 2 CPUs and ClickHouse on this machine)")
			fs.IntVar(&o.latencyRate, "latency-rate", 20_000, "ingest: offered `events/s` of the latency pass")
			fs.IntVar(&o.latencyRequestEvents, "latency-request-events", 200, "ingest: `events` per request of the latency pass")
			fs.DurationVar(&o.latencyDuration, "latency-duration", 30*time.Second, "ingest: `length` of the latency pass")
			fs.IntVar(&o.maxInFlight, "max-in-flight", 2000, "ingest: most `requests` in flight in the latency pass (open loop)")
			fs.DurationVar(&o.overloadDuration, "overload-duration", 5*time.Second, "ingest: `length` of each overload pass")
			fs.StringVar(&o.overloadClients, "overload-clients", "64,512", "ingest: comma-separated `counts` of unpaced clients, one overload pass each")
			fs.IntVar(&o.overloadSpoolMiB, "overload-spool-mib", 64, "ingest: the server's spool quota (-spool-max-bytes) in the overload passes, in `MiB`")
			fs.StringVar(&o.server, "server", modeChild, "ingest: run the server as a `child` process of cmd/truthboard (honest memory and CPU) or `inprocess` (for -cpuprofile)")
			fs.StringVar(&o.serverBin, "server-bin", "", "ingest: truthboard `binary` for -server child (default: go build ./cmd/truthboard)")
			fs.StringVar(&o.cpuProfile, "cpuprofile", "", "ingest: write a CPU profile of the first HTTP throughput pass to `file` (needs -server inprocess)")
			fs.IntVar(&o.repeat, "repeat", 1, "ingest: run every measurement this many `times`, one column each")
			fs.Int64Var(&o.seed, "seed", 1, "ingest: `seed` of the simulated events")
		},
		Run: func(ctx context.Context, env *benchEnv) (string, error) { return runIngest(ctx, env, o) },
	}
}

func (o *ingestOptions) validate() ([]int, error) {
	var errs []error
	pos := func(v int, name string) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("-%s must be above 0", name))
		}
	}
	pos(o.events, "events")
	pos(o.batchRows, "batch-rows")
	pos(o.requestEvents, "request-events")
	pos(o.clients, "clients")
	pos(o.rounds, "rounds")
	pos(o.latencyRate, "latency-rate")
	pos(o.latencyRequestEvents, "latency-request-events")
	pos(o.maxInFlight, "max-in-flight")
	pos(o.repeat, "repeat")
	if o.requestEvents > event.DefaultMaxEvents || o.latencyRequestEvents > event.DefaultMaxEvents {
		errs = append(errs, fmt.Errorf("-request-events and -latency-request-events must be at most %d (the server's -max-events)", event.DefaultMaxEvents))
	}
	if o.overloadSpoolMiB < 2*config.Default().MaxBodyBytes>>20 {
		errs = append(errs, fmt.Errorf("-overload-spool-mib must be at least %d (twice the server's -max-body-bytes)", 2*config.Default().MaxBodyBytes>>20))
	}
	if o.server != modeChild && o.server != modeInProcess {
		errs = append(errs, fmt.Errorf("-server %q: want %s or %s", o.server, modeChild, modeInProcess))
	}
	if o.cpuProfile != "" && o.server != modeInProcess {
		errs = append(errs, errors.New("-cpuprofile profiles this process: add -server inprocess"))
	}
	var levels []int
	for _, f := range strings.Split(o.overloadClients, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("-overload-clients %q: want counts such as 64,512", o.overloadClients))
			break
		}
		levels = append(levels, n)
	}
	return levels, errors.Join(errs...)
}

// latencyInterval is the gap between two requests of the latency pass.
func (o *ingestOptions) latencyInterval() time.Duration {
	return time.Duration(float64(time.Second) * float64(o.latencyRequestEvents) / float64(o.latencyRate))
}

// cpuUse is CPU time spent during a phase by the load generator (this process), the server
// (its child process; zero in process) and ClickHouse (zero when its process is not visible).
type cpuUse struct{ Bench, Server, ClickHouse time.Duration }

type cpuMeter struct {
	serverPID, chPID int
	start            cpuUse
}

func (c *cpuMeter) read() cpuUse {
	u := cpuUse{}
	u.Bench, _ = benchkit.ProcCPU(0)
	if c.serverPID > 0 {
		u.Server, _ = benchkit.ProcCPU(c.serverPID)
	}
	if c.chPID > 0 {
		u.ClickHouse, _ = benchkit.ProcCPU(c.chPID)
	}
	return u
}

func startCPU(serverPID, chPID int) *cpuMeter {
	c := &cpuMeter{serverPID: serverPID, chPID: chPID}
	c.start = c.read()
	return c
}

func (c *cpuMeter) stop() cpuUse {
	now := c.read()
	return cpuUse{Bench: now.Bench - c.start.Bench, Server: now.Server - c.start.Server, ClickHouse: now.ClickHouse - c.start.ClickHouse}
}

type throughput struct {
	Events  int
	Elapsed time.Duration
	CPU     cpuUse
	// Others counts the queries other clients of the ClickHouse server ran during the pass:
	// the server is shared with other work on this machine.
	Others int64
}

func (t throughput) rate() float64 { return float64(t.Events) / t.Elapsed.Seconds() }

type httpResult struct {
	throughput               // from the first request until every event is stored in ClickHouse
	AckElapsed time.Duration // from the first request to the last 202 (durable in the spool)
	Rows       uint64
	Accepted   int64
	Duplicates int64
	Retries    int64
	Statuses   *statusCounts
	Request    percentiles // closed-loop request time, for context
	Flushes    flushSnapshot
	PeakRSS    int64 // KiB, sampled during the pass
	HWM        int64 // KiB, the server process's VmHWM at the end of the pass
}

type latencyResult struct {
	Offered    float64 // events/s
	Requests   int
	Ack        percentiles // scheduled send → 202
	Statuses   *statusCounts
	Accepted   int64
	Rows       uint64
	Achieved   float64 // acknowledged events/s
	MaxSendLag time.Duration
	Flushes    flushSnapshot
	PeakRSS    int64
	HWM        int64
	CPU        cpuUse
	Elapsed    time.Duration // from the first scheduled send to the last answer
	Stored     time.Duration // from the first scheduled send until ClickHouse held every event
}

type overloadResult struct {
	Clients    int
	SpoolMiB   int
	Elapsed    time.Duration
	Offered    float64 // events/s sent (any answer)
	Accepted   int64   // events answered as accepted, repeats of forgotten events included
	Distinct   int64   // distinct events answered 202
	Rows       uint64
	Statuses   *statusCounts
	IdleRSS    int64
	PeakRSS    int64
	HWM        int64
	AfterRSS   int64
	ProbeCode  int
	ProbeTime  time.Duration
	ProbeError string
}

type ingestRun struct {
	LoadStart, LoadEnd string
	Bare               []throughput // before, between and after the HTTP passes
	HTTP               []httpResult
	// OwnCPU are the same passes with ClickHouse on a CPU of its own (-own-cpu); empty
	// without it.
	OwnCPU     ownCPURun
	BareLookup throughput
	BareBig    throughput
	Latency    latencyResult
	Overload   []overloadResult
}

func runIngest(ctx context.Context, env *benchEnv, o *ingestOptions) (string, error) {
	levels, err := o.validate()
	if err != nil {
		return "", err
	}
	log := env.log
	db, err := env.openBenchDB(ctx)
	if err != nil {
		return "", err
	}
	defer db.drop()
	log.Info("benchmark database ready", "database", db.name, "clickhouse", db.ServerVersion())
	m := benchkit.DescribeMachine()

	latencyRequests := int(o.latencyDuration / o.latencyInterval())
	latencyEvents := latencyRequests * o.latencyRequestEvents
	poolSize := max(o.events, latencyEvents)
	log.Info("generating events", "events", poolSize)
	pool, err := eventPool(poolSize, o.seed)
	if err != nil {
		return "", err
	}
	bodies, err := ndjsonBodies(pool[:o.events], o.requestEvents)
	if err != nil {
		return "", err
	}
	latBodies, err := ndjsonBodies(pool[:latencyEvents], o.latencyRequestEvents)
	if err != nil {
		return "", err
	}
	bodyBytes := 0
	for _, b := range bodies {
		bodyBytes += len(b)
	}

	dir, err := os.MkdirTemp("", "truthboard-bench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	launcher := &serverLauncher{env: env, mode: o.server, database: db.name, ingestKey: auth.NewSecret("tbi_bench"), dir: dir}
	if o.server == modeChild {
		launcher.bin = o.serverBin
		if launcher.bin == "" {
			log.Info("building cmd/truthboard")
			if launcher.bin, err = benchkit.BuildServer(ctx, dir); err != nil {
				return "", err
			}
		}
	}
	chPID := benchkit.ListenerPID(env.ch.Addr)

	b := &ingestBench{o: o, db: db, launcher: launcher, chPID: chPID, log: log, pool: pool, bodies: bodies, latBodies: latBodies}
	var runs []ingestRun
	for r := range o.repeat {
		log.Info("run", "n", r+1, "of", o.repeat)
		run, err := b.measure(ctx, r == 0)
		if err != nil {
			return "", fmt.Errorf("run %d: %w", r+1, err)
		}
		runs = append(runs, run)
	}
	return renderIngest(env, o, m, db.ServerVersion(), benchkit.ClickHouseDataFS(chPID), runs, levels, float64(bodyBytes)/float64(o.events), chPID > 0), nil
}

type ingestBench struct {
	o         *ingestOptions
	db        *benchDB
	launcher  *serverLauncher
	chPID     int
	log       interface{ Info(string, ...any) }
	pool      []event.Event
	bodies    [][]byte
	latBodies [][]byte
}

func (b *ingestBench) measure(ctx context.Context, first bool) (run ingestRun, err error) {
	o := b.o
	levels, _ := o.validate()
	run.LoadStart = benchkit.LoadAverage()
	evs := b.pool[:o.events]

	// Warm-up, not measured: the first inserts into fresh tables are slower than the next
	// ones (caches, first parts), which would flatter whatever pass comes second.
	if _, err := b.bare(ctx, evs[:min(len(evs), 5*o.batchRows)], o.batchRows, true); err != nil {
		return run, err
	}

	if run.Bare, run.HTTP, err = b.alternate(ctx, evs, "", first && o.cpuProfile != ""); err != nil {
		return run, err
	}

	if o.ownCPU {
		if run.OwnCPU, err = b.ownCPUPasses(ctx, evs); err != nil {
			return run, err
		}
	}

	if run.BareLookup, err = b.bare(ctx, evs, o.batchRows, true); err != nil {
		return run, err
	}
	b.log.Info("bare driver with duplicate lookup", "events_per_s", int(run.BareLookup.rate()))

	if o.bigBatchRows > 0 {
		if run.BareBig, err = b.bare(ctx, evs, o.bigBatchRows, false); err != nil {
			return run, err
		}
		b.log.Info("bare driver, big batches", "rows_per_batch", o.bigBatchRows, "events_per_s", int(run.BareBig.rate()))
	}

	if run.Latency, err = b.latency(ctx); err != nil {
		return run, err
	}
	b.log.Info("latency", "p50", run.Latency.Ack.P50, "p99", run.Latency.Ack.P99, "statuses", run.Latency.Statuses.String())

	for _, c := range levels {
		r, err := b.overload(ctx, c)
		if err != nil {
			return run, err
		}
		b.log.Info("overload", "clients", c, "statuses", r.Statuses.String(), "peak_rss_mib", r.PeakRSS>>10)
		run.Overload = append(run.Overload, r)
	}
	run.LoadEnd = benchkit.LoadAverage()
	return run, nil
}

// bare stores evs with store.InsertEvents in batches of batch rows from one goroutine, as the
// writer does; with lookup, each batch is first looked up for duplicates as the writer does
// (store.ExistingKeys), which is the writer's whole flush without HTTP.
func (b *ingestBench) bare(ctx context.Context, evs []event.Event, batch int, lookup bool) (throughput, error) {
	if err := b.db.reset(ctx); err != nil {
		return throughput{}, err
	}
	cpu := startCPU(0, b.chPID)
	queries := b.db.queryCount(ctx)
	ours := int64(0)
	start := time.Now()
	for i := 0; i < len(evs); i += batch {
		part := evs[i:min(i+batch, len(evs))]
		if lookup {
			if _, err := b.db.ExistingKeys(ctx, part); err != nil {
				return throughput{}, err
			}
		}
		if err := b.db.InsertEvents(ctx, part, time.Now().UTC()); err != nil {
			return throughput{}, err
		}
		ours++
		if lookup {
			ours++
		}
	}
	t := throughput{Events: len(evs), Elapsed: time.Since(start), CPU: cpu.stop()}
	t.Others = max(0, b.db.queryCount(ctx)-queries-ours-1) // -1: this count query
	if n, err := b.db.CountEvents(ctx); err != nil || n != uint64(len(evs)) {
		return t, fmt.Errorf("bare insert stored %d rows of %d (%v)", n, len(evs), err)
	}
	return t, nil
}

func (b *ingestBench) defaultServer() serverSettings {
	return serverSettings{FlushRows: b.o.batchRows}
}

// startPass empties the tables and starts a server with settings, for one pass.
func (b *ingestBench) startPass(ctx context.Context, settings serverSettings) (*target, error) {
	if err := b.db.reset(ctx); err != nil {
		return nil, err
	}
	return b.launcher.start(ctx, settings)
}

// httpThroughput posts every body through the clients as fast as the server acknowledges
// them (closed loop), then checks that the table holds exactly the events.
func (b *ingestBench) httpThroughput(ctx context.Context, profile bool) (res httpResult, err error) {
	srv, err := b.startPass(ctx, b.defaultServer())
	if err != nil {
		return res, err
	}
	defer srv.stopPass(&err)
	client := newIngestClient(srv.URL, b.launcher.ingestKey, b.o.clients)
	defer client.close()

	if profile {
		f, err := os.Create(b.o.cpuProfile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
		defer pprof.StopCPUProfile()
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	res.Statuses = &statusCounts{}
	var (
		next, accepted, dups, retries atomic.Int64
		lat                           latencies
		wg                            sync.WaitGroup
	)
	rss := benchkit.WatchPeakRSS(srv.PID)
	cpu := startCPU(srv.PID, b.chPID)
	queries := b.db.queryCount(ctx)
	start := time.Now()
	for range b.o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(b.bodies) || ctx.Err() != nil {
					return
				}
				for {
					t0 := time.Now()
					a, err := client.post(ctx, b.bodies[i])
					if err != nil {
						cancel(fmt.Errorf("post: %w", err))
						return
					}
					res.Statuses.add(a.Status)
					if a.Status == http.StatusAccepted {
						lat.add(time.Since(t0))
						accepted.Add(int64(a.Accepted))
						dups.Add(int64(a.Duplicates))
						break
					}
					if a.Status == http.StatusServiceUnavailable || a.Status == http.StatusTooManyRequests {
						// Not expected at this concurrency (the queue holds more than the
						// clients send at once); retried and counted so it shows.
						retries.Add(1)
						time.Sleep(100 * time.Millisecond)
						continue
					}
					cancel(fmt.Errorf("status %d: %s", a.Status, a.Error))
					return
				}
			}
		}()
	}
	wg.Wait()
	res.AckElapsed = time.Since(start)
	// The pass ends when ClickHouse holds every event, not at the last 202 (which says durable
	// in the spool), so that it compares with the bare inserts.
	if context.Cause(ctx) == nil {
		waitCtx, cancelWait := context.WithTimeout(ctx, 5*time.Minute)
		srv.Flushes.waitRows(waitCtx, b.o.events)
		cancelWait()
		// Then ClickHouse's own count, once if the flushes told the truth.
		if _, err := b.db.waitRows(ctx, uint64(b.o.events), 5*time.Minute); err != nil {
			return res, err
		}
	}
	res.throughput = throughput{Events: len(b.pool[:b.o.events]), Elapsed: time.Since(start), CPU: cpu.stop()}
	res.PeakRSS = rss.Stop() >> 10
	_, res.HWM = srv.RSS()
	if err := context.Cause(ctx); err != nil {
		return res, fmt.Errorf("http ingest: %w", err)
	}
	res.Accepted, res.Duplicates, res.Retries = accepted.Load(), dups.Load(), retries.Load()
	res.Request = lat.percentiles()
	res.Flushes = srv.Flushes.snapshot()
	// The server's own queries: a lookup and an insert per flush.
	res.Others = max(0, b.db.queryCount(ctx)-queries-2*int64(res.Flushes.Count)-1)
	if res.Rows, err = b.db.CountEvents(ctx); err != nil {
		return res, err
	}
	if res.Rows != uint64(b.o.events) || res.Accepted != int64(b.o.events) {
		return res, fmt.Errorf("http ingest: %d rows stored and %d events acknowledged as new, want %d", res.Rows, res.Accepted, b.o.events)
	}
	return res, nil
}

// latency offers latencyRate events/s on a fixed schedule, whatever the answers (open loop),
// and times each request from its scheduled send to its answer, so that a slow server (or a
// late client) is not hidden by waiting for it.
func (b *ingestBench) latency(ctx context.Context) (res latencyResult, err error) {
	srv, err := b.startPass(ctx, b.defaultServer())
	if err != nil {
		return res, err
	}
	defer srv.stopPass(&err)
	client := newIngestClient(srv.URL, b.launcher.ingestKey, b.o.maxInFlight)
	defer client.close()

	interval := b.o.latencyInterval()
	res.Offered = float64(b.o.latencyRequestEvents) / interval.Seconds()
	res.Requests = len(b.latBodies)
	res.Statuses = &statusCounts{}
	var (
		ack      latencies
		accepted atomic.Int64
		lastAck  atomic.Int64
		maxLag   atomic.Int64
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, b.o.maxInFlight)
	rss := benchkit.WatchPeakRSS(srv.PID)
	cpu := startCPU(srv.PID, b.chPID)
	start := time.Now().Add(20 * time.Millisecond)
	for i, body := range b.latBodies {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{} // only when maxInFlight requests hang; the lag still counts
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if lag := int64(time.Since(at)); lag > maxLag.Load() {
				maxLag.Store(lag) // racy max, good enough for a report
			}
			a, err := client.post(ctx, body)
			took := time.Since(at)
			if err != nil {
				res.Statuses.addWhy(0, err.Error())
				return
			}
			res.Statuses.addWhy(a.Status, a.Error)
			if a.Status == http.StatusAccepted {
				ack.add(took)
				accepted.Add(int64(a.Accepted))
				if t := time.Now().UnixNano(); t > lastAck.Load() {
					lastAck.Store(t)
				}
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.CPU = cpu.stop()
	res.PeakRSS = rss.Stop() >> 10
	_, res.HWM = srv.RSS()
	res.Ack = ack.percentiles()
	res.Accepted = accepted.Load()
	res.MaxSendLag = time.Duration(maxLag.Load())
	if last := lastAck.Load(); last > 0 {
		res.Achieved = float64(res.Accepted) / time.Unix(0, last).Sub(start).Seconds()
	}
	if res.Rows, err = b.db.waitRows(ctx, uint64(res.Accepted), 5*time.Minute); err != nil {
		return res, err
	}
	res.Stored = time.Since(start)
	res.Flushes = srv.Flushes.snapshot()
	if res.Rows != uint64(res.Accepted) {
		return res, fmt.Errorf("latency pass: %d rows stored, %d events acknowledged", res.Rows, res.Accepted)
	}
	return res, ctx.Err()
}

// overload sends as fast as clients unpaced clients can against a server with a small spool:
// a refused request is followed at once by the next one (a client that ignores Retry-After,
// the worst case). It checks that refusals come back, that only acknowledged events are
// stored, that the server answers normally afterwards, and how its memory behaved.
func (b *ingestBench) overload(ctx context.Context, clients int) (res overloadResult, err error) {
	srv, err := b.startPass(ctx, serverSettings{FlushRows: b.o.batchRows, SpoolMaxBytes: b.o.overloadSpoolMiB << 20})
	if err != nil {
		return res, err
	}
	defer srv.stopPass(&err)
	client := newIngestClient(srv.URL, b.launcher.ingestKey, clients)
	defer client.close()
	res.Clients = clients
	res.SpoolMiB = b.o.overloadSpoolMiB
	res.Statuses = &statusCounts{}

	time.Sleep(time.Second)
	res.IdleRSS, _ = srv.RSS()
	var (
		next, accepted, sent atomic.Int64
		wg                   sync.WaitGroup
		ackedBodies          sync.Map // body index → true once a 202 answered it
	)
	rss := benchkit.WatchPeakRSS(srv.PID)
	start := time.Now()
	deadline := start.Add(b.o.overloadDuration)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := int(next.Add(1)-1) % len(b.bodies)
				a, err := client.post(ctx, b.bodies[i])
				sent.Add(int64(b.o.requestEvents))
				if err != nil {
					res.Statuses.addWhy(0, err.Error())
					continue
				}
				res.Statuses.addWhy(a.Status, a.Error)
				if a.Status == http.StatusAccepted {
					accepted.Add(int64(a.Accepted))
					ackedBodies.Store(i%len(b.bodies), true)
				}
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.PeakRSS = rss.Stop() >> 10
	_, res.HWM = srv.RSS()
	res.Offered = float64(sent.Load()) / res.Elapsed.Seconds()
	res.Accepted = accepted.Load()

	// Afterwards: memory a few seconds later, and one ordinary request.
	time.Sleep(3 * time.Second)
	res.AfterRSS, _ = srv.RSS()
	t0 := time.Now()
	a, err := client.post(ctx, b.latBodies[0])
	res.ProbeTime = time.Since(t0)
	if err != nil {
		res.ProbeError = err.Error()
	} else {
		res.ProbeCode = a.Status
		res.Accepted += int64(a.Accepted)
	}
	// Unpaced clients go round the bodies, so a body may be sent again after the server's
	// memory of recent events has let it go: answered as accepted, and stored once. The rows
	// to expect are the distinct events answered 202.
	// The bodies and the probe cut the same pool of events: count each pool event once.
	stored := make([]bool, len(b.pool))
	mark := func(from, n int) {
		for j := from; j < from+n && j < len(stored); j++ {
			stored[j] = true
		}
	}
	ackedBodies.Range(func(i, _ any) bool { mark(i.(int)*b.o.requestEvents, b.o.requestEvents); return true })
	if res.ProbeCode == http.StatusAccepted {
		mark(0, b.o.latencyRequestEvents)
	}
	for _, ok := range stored {
		if ok {
			res.Distinct++
		}
	}
	if res.Rows, err = b.db.waitRows(ctx, uint64(res.Distinct), 5*time.Minute); err != nil {
		return res, err
	}
	if res.Rows != uint64(res.Distinct) {
		return res, fmt.Errorf("overload: %d rows stored, %d distinct events acknowledged", res.Rows, res.Distinct)
	}
	return res, ctx.Err()
}

// ownCPURun is bare and HTTP passes alternating, as in ingestRun, with ClickHouse on a CPU of
// its own.
type ownCPURun struct {
	Bare []throughput
	HTTP []httpResult
}

// ownCPUPasses runs the throughput passes with ClickHouse's threads on CPU 0 alone and this
// process (the load generator) and the servers it starts on the other CPUs, so that neither
// takes CPU from the other: the shape of a deployment where ClickHouse has a machine of its
// own. ClickHouse gets its CPUs back at the end.
func (b *ingestBench) ownCPUPasses(ctx context.Context, evs []event.Event) (run ownCPURun, err error) {
	if b.chPID <= 0 || runtime.NumCPU() < 2 {
		b.log.Info("own-cpu passes skipped: they need ClickHouse on this machine and 2 CPUs", "clickhouse_pid", b.chPID, "cpus", runtime.NumCPU())
		return run, nil
	}
	others := make([]int, 0, runtime.NumCPU()-1)
	for c := 1; c < runtime.NumCPU(); c++ {
		others = append(others, c)
	}
	restoreCH, err := benchkit.PinCPUs(b.chPID, 0)
	if err != nil {
		return run, err
	}
	defer func() { err = errors.Join(err, restoreCH()) }()
	restoreSelf, err := benchkit.PinCPUs(0, others...)
	if err != nil {
		return run, err
	}
	defer func() { err = errors.Join(err, restoreSelf()) }()
	run.Bare, run.HTTP, err = b.alternate(ctx, evs, "own cpu: ", false)
	return run, err
}

// alternate runs bare and HTTP passes in turn (bare, HTTP, bare, …, bare: rounds HTTP passes),
// so that drift and the load of other work on the shared machine and ClickHouse server fall on
// both alike; each HTTP pass is compared with the bare passes on either side of it. profile
// writes a CPU profile of the first HTTP pass; label starts the log lines.
func (b *ingestBench) alternate(ctx context.Context, evs []event.Event, label string, profile bool) (bare []throughput, http []httpResult, err error) {
	barePass := func() error {
		pass, err := b.bare(ctx, evs, b.o.batchRows, false)
		if err != nil {
			return err
		}
		bare = append(bare, pass)
		b.log.Info(label+"bare driver", "rows_per_batch", b.o.batchRows, "events_per_s", int(pass.rate()))
		return nil
	}
	if err := barePass(); err != nil {
		return bare, http, err
	}
	for i := range b.o.rounds {
		h, err := b.httpThroughput(ctx, profile && i == 0)
		if err != nil {
			return bare, http, err
		}
		http = append(http, h)
		b.log.Info(label+"http ingest", "events_per_s", int(h.rate()), "rows", h.Rows)
		if err := barePass(); err != nil {
			return bare, http, err
		}
	}
	return bare, http, nil
}
