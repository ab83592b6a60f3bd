// Package livebench is `truthboard-tools live-bench`: it measures Truthboard's live dashboards
// (GET /v1/live) against the real server, run as a child process built from ./cmd/truthboard,
// so that the server's CPU and memory are read from /proc apart from the load generator's:
//
//	eval "$(scripts/clickhouse.sh env)"
//	go run ./cmd/truthboard-tools live-bench -repeat 2 -out docs/benchmarks.md
//
// Two experiments, each against a baseline of the same run:
//
//   - freshness: with demo traffic running, the bench posts marker events and times how long
//     each takes to show up on a screen (see freshness.go for the exact definition);
//   - fan-out: 1,000 and 5,000 WebSocket screens on one view, then spread over 50 views, with
//     1 screen (one view) and 1 screen per view (50 views) as baselines: server CPU and
//     memory, delivery lag after the tick, skipped updates, ClickHouse queries per tick.
//
// Every phase starts a fresh server (so its peak RSS is its own) on a free loopback port with
// its own data directory, in one ClickHouse database truthboard_lbench_<random> on
// TRUTHBOARD_CLICKHOUSE_ADDR, dropped at the end. The run writes (or replaces) the "## Live"
// section of -out and leaves the rest of the file as it is.
//
// -profile-dir is a separate diagnostic mode: it runs one fan-out phase with the server inside
// this process under pprof (CPU and heap profiles) instead of as a child. Its CPU and memory
// figures then include the load generator; use it to see where the server's time goes, not
// for the report.
package livebench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/live"
)

// options are the flags.
type options struct {
	ch benchkit.ClickHouse

	tick     time.Duration
	demoRate float64

	experiments    string
	freshDuration  time.Duration
	markerInterval time.Duration

	clients        []int
	views          int
	fanoutDuration time.Duration
	warmup         time.Duration
	dialBatch      int

	repeat int
	out    string
	keepDB bool
	// minTick and flushInterval are the server's -live-min-tick and -flush-interval.
	minTick, flushInterval time.Duration
	serverBin              string
	chPIDFile              string

	profileDir     string
	profileClients int
	profileViews   int
}

// Run is `truthboard-tools live-bench`.
func Run(ctx context.Context, args []string, log *slog.Logger) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}

	// 5,000 screens are 5,000 sockets in this process and 5,000 in the server's.
	if err := benchkit.RaiseOpenFilesLimit(uint64(slices.Max(o.clients) + 200)); err != nil {
		return fmt.Errorf("%w, or lower -clients (%d screens)", err, slices.Max(o.clients))
	}

	env, err := newBenchEnv(ctx, o, log)
	if err != nil {
		return err
	}
	defer env.close()
	env.command = benchkit.CommandLine("live-bench", args)

	if o.profileDir != "" {
		return runProfile(ctx, env)
	}

	var runs []runResult
	for r := 1; r <= o.repeat; r++ {
		res := runResult{Run: r}
		if strings.Contains(o.experiments, "freshness") {
			log.Info("freshness", "run", r, "duration", o.freshDuration, "demo_rate", o.demoRate)
			f, err := env.freshness(ctx, r)
			if err != nil {
				return fmt.Errorf("run %d, freshness: %w", r, err)
			}
			res.Freshness = f
		}
		if strings.Contains(o.experiments, "fanout") {
			for _, p := range env.fanoutPhases() {
				log.Info("fan-out", "run", r, "layout", p.layout, "clients", p.clients, "views", p.views, "duration", o.fanoutDuration)
				f, err := env.fanout(ctx, p)
				if err != nil {
					return fmt.Errorf("run %d, fan-out %s with %d clients: %w", r, p.layout, p.clients, err)
				}
				res.Fanout = append(res.Fanout, f)
			}
			log.Info("query cost", "run", r)
			q, err := env.queryCost(ctx)
			if err != nil {
				return fmt.Errorf("run %d, query cost: %w", r, err)
			}
			res.Query = q
		}
		runs = append(runs, res)
	}

	body := render(env, runs)
	fmt.Println("## Live")
	fmt.Println()
	fmt.Print(body)
	if o.out != "" {
		if err := writeLiveSection(o.out, body, ""); err != nil {
			return err
		}
		log.Info("wrote section ## Live", "file", o.out)
	}
	return nil
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("truthboard-tools live-bench", flag.ContinueOnError)
	o.ch.AddFlags(fs)
	fs.DurationVar(&o.tick, "tick", time.Second, "the server's live tick (TRUTHBOARD_LIVE_TICK)")
	fs.DurationVar(&o.minTick, "min-tick", live.DefaultMinTick, "the server's shortest time between two ticks of a feed that landed events bring forward (TRUTHBOARD_LIVE_MIN_TICK; -tick: no early ticks)")
	fs.DurationVar(&o.flushInterval, "flush-interval", ingest.DefaultFlushInterval, "the server's flush interval of the spool to ClickHouse (TRUTHBOARD_FLUSH_INTERVAL)")
	fs.Float64Var(&o.demoRate, "demo-rate", 200, "demo `events` per second the server sends itself during every phase (TRUTHBOARD_DEMO_RATE)")
	fs.StringVar(&o.experiments, "experiments", "freshness,fanout", "what to run: freshness, fanout or both, comma-separated")
	fs.DurationVar(&o.freshDuration, "fresh-duration", time.Minute, "how long markers are posted in the freshness experiment")
	fs.DurationVar(&o.markerInterval, "marker-interval", 250*time.Millisecond, "how often a marker event is posted")
	clients := fs.String("clients", "1000,5000", "screens per fan-out phase, comma-separated (baselines are added)")
	fs.IntVar(&o.views, "views", 50, "distinct views of the spread layout")
	fs.DurationVar(&o.fanoutDuration, "fanout-duration", 30*time.Second, "measured time of each fan-out phase")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "wait after the last screen subscribed, before measuring")
	fs.IntVar(&o.dialBatch, "dial-batch", 200, "screens dialled at once (batches follow one another)")
	fs.IntVar(&o.repeat, "repeat", 1, "run everything this many times; the report shows each run")
	fs.StringVar(&o.out, "out", "", "Markdown `file` whose \"## Live\" section is written or replaced (e.g. docs/benchmarks.md); empty: print only")
	fs.BoolVar(&o.keepDB, "keep-db", false, "keep the ClickHouse database at the end")
	fs.StringVar(&o.serverBin, "server-bin", "", "a truthboard `binary` to run instead of building ./cmd/truthboard")
	fs.StringVar(&o.chPIDFile, "clickhouse-pid-file", "var/clickhouse/clickhouse-server.pid", "pid `file` of the ClickHouse server, to report its CPU too (skipped when unreadable)")
	fs.StringVar(&o.profileDir, "profile-dir", "", "diagnostic mode: run one fan-out phase with the server in this process under pprof and write cpu.pprof and heap.pprof to this `dir`")
	fs.IntVar(&o.profileClients, "profile-clients", 5000, "screens of the -profile-dir phase")
	fs.IntVar(&o.profileViews, "profile-views", 1, "views of the -profile-dir phase")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: settings are flags, see -help", fs.Arg(0))
	}
	for _, s := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(s, "_", "")))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-clients %q: want positive whole numbers, comma-separated, e.g. -clients 1000,5000", *clients)
		}
		o.clients = append(o.clients, n)
	}
	var errs []error
	if o.tick < 100*time.Millisecond {
		errs = append(errs, errors.New("-tick: at least 100ms, as the server requires"))
	}
	if o.minTick < 50*time.Millisecond || o.flushInterval < time.Millisecond {
		errs = append(errs, errors.New("-min-tick: at least 50ms; -flush-interval: at least 1ms, as the server requires"))
	}
	if o.demoRate <= 0 {
		errs = append(errs, errors.New("-demo-rate: above 0; the freshness experiment is defined with demo traffic running"))
	}
	if o.freshDuration < 5*time.Second || o.freshDuration > 50*time.Minute {
		errs = append(errs, errors.New("-fresh-duration: 5s to 50m (the marker screen's 1h window must hold every marker)"))
	}
	if o.markerInterval < 10*time.Millisecond {
		errs = append(errs, errors.New("-marker-interval: at least 10ms"))
	}
	if o.views < 2 || o.views > len(spreadFilters()) {
		errs = append(errs, fmt.Errorf("-views: 2 to %d", len(spreadFilters())))
	}
	if o.fanoutDuration < 3*o.tick {
		errs = append(errs, errors.New("-fanout-duration: at least 3 ticks"))
	}
	if o.dialBatch < 1 {
		errs = append(errs, errors.New("-dial-batch: at least 1"))
	}
	if o.repeat < 1 {
		errs = append(errs, errors.New("-repeat: at least 1"))
	}
	for _, e := range strings.Split(o.experiments, ",") {
		if e != "freshness" && e != "fanout" {
			errs = append(errs, fmt.Errorf("-experiments %q: use freshness, fanout or freshness,fanout", o.experiments))
			break
		}
	}
	return o, errors.Join(errs...)
}
