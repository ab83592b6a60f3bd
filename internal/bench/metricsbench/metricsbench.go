// Package metricsbench is `truthboard-tools metrics-bench`: it measures what one executive view
// costs ClickHouse per tick:
// the complete query set behind it (all KPIs with the previous period, the moment × channel
// grid, a trend per moment, the consistency index), read from the rollups exactly as the API
// reads them (rollup.Query → Plan → store.Rollup → Build), at several sizes of history at the
// same event rate. The baseline, in the same run and on the same data, computes the same
// metrics from the raw table events. It writes the "## Metrics" section of a Markdown file:
//
//	eval "$(scripts/clickhouse.sh env)"
//	go run ./cmd/truthboard-tools metrics-bench -repeat 2 -out docs/benchmarks.md
//
// Each history size gets a fresh database, truthboard_mbench_<size> (dropped first if a killed
// run left it, and at the end), migrated with store.Migrate. Its history is generated inside
// ClickHouse with INSERT … SELECT FROM numbers() in chunks, so the materialized views fill the
// rollups as they do for any insert, ending at the time of the load; the view's ticks then run
// on a simulated clock, one tick per second over the last seconds of that history, so every
// window is as full as the history allows however long the load took.
//
// Figures are ratios against the baseline of the same run, and absolute times only describe
// this run: the machines have two cores, shared by ClickHouse, this client and other work.
package metricsbench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"

	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store"
)

// config is everything a run needs; defaults are in parseFlags.
type config struct {
	ClickHouse benchkit.ClickHouse
	// Sizes are the numbers of raw events of history, each in a database of its own.
	Sizes []uint64
	// Rate is the event rate in events per hour; a size's history spans size/Rate hours.
	Rate uint64
	// Windows are the view's windows, by their API names.
	Windows []string
	// Ticks are the measured ticks from the rollups per window and size, after Warmup more.
	Ticks, Warmup int
	// RawTicks are the measured ticks of the baseline per window and size, after one more.
	RawTicks int
	// Chunk is the number of events per INSERT … SELECT.
	Chunk uint64
	// Settle bounds the wait for background merges after loading.
	Settle time.Duration
	// Repeat runs everything (load and measure) this many times.
	Repeat int
	Seed   uint64
	Out    string
	Keep   bool
	// Reuse keeps each size's database between runs, named without the process id, and loads
	// it only when it does not hold exactly its size of events (a rollup table a newer
	// migration added is rebuilt from its events instead).
	Reuse bool
	// Diagnose is how many times the last round runs the query variants of diagnose.go on the
	// largest history; 0: not at all.
	Diagnose int
	// Section is the title of the "## " section of Out the run writes.
	Section string
	// ExportTouchpoints and ExportEvents size the database of the export measurement
	// (export.go); 0 touchpoints: no export measurement.
	ExportTouchpoints, ExportEvents uint64
	// ServerBin is the truthboard binary the export measurement runs; empty: built.
	ServerBin string
	// ExportOnly runs the export measurement alone, without the histories and their ticks.
	ExportOnly bool
}

// Run is `truthboard-tools metrics-bench`.
func Run(ctx context.Context, args []string, log *slog.Logger) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}

	admin, err := store.Open(ctx, cfg.storeOptions("default"))
	if err != nil {
		return fmt.Errorf("%w (start a local server with: eval \"$(scripts/clickhouse.sh env)\")", err)
	}
	defer admin.Close()
	rep := report{Command: benchkit.CommandLine("metrics-bench", args), Machine: benchkit.DescribeMachine(), ClickHouse: admin.ServerVersion(), Cfg: cfg}
	for round := 1; round <= cfg.Repeat && !cfg.ExportOnly; round++ {
		res, diags, err := runRound(ctx, cfg, admin, round, log)
		if err != nil {
			return err
		}
		rep.Results, rep.Diagnoses = append(rep.Results, res...), append(rep.Diagnoses, diags...)
	}
	if cfg.ExportTouchpoints > 0 {
		// A failed export measurement is reported with the figures of the ticks, not instead.
		ex, err := measureExport(ctx, cfg, log)
		if err != nil {
			log.Error("export measurement", "err", err)
			ex.Failed = err.Error()
		}
		rep.Export = &ex
	}
	rep.End = time.Now().UTC()
	section := rep.markdown()
	fmt.Print(section)
	if cfg.Out == "" {
		return nil
	}
	if err := benchkit.WriteSection(cfg.Out, cfg.Section, section); err != nil {
		return err
	}
	log.Info("section written", "file", cfg.Out, "section", "## "+cfg.Section)
	return nil
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("truthboard-tools metrics-bench", flag.ContinueOnError)
	cfg := config{}
	cfg.ClickHouse.AddFlags(fs)
	sizes := fs.String("sizes", "1M,10M,50M", "raw events of history, comma-separated (suffix k or M), one fresh database each")
	rate := fs.String("rate", "10M", "event rate in events per `hour` (suffix k or M); history spans size/rate")
	windows := fs.String("windows", "5m,1h,24h", "windows of the view, comma-separated, as the API names them")
	fs.IntVar(&cfg.Ticks, "ticks", 200, "measured ticks from the rollups per window and size")
	fs.IntVar(&cfg.Warmup, "warmup", 20, "unmeasured ticks before them")
	fs.IntVar(&cfg.RawTicks, "raw-ticks", 5, "measured ticks of the raw-table baseline per window and size (after one unmeasured)")
	chunk := fs.String("chunk", "1M", "events per INSERT … SELECT while loading")
	fs.DurationVar(&cfg.Settle, "settle", time.Minute, "wait at most this long for background merges after loading")
	fs.IntVar(&cfg.Repeat, "repeat", 1, "run everything, loading included, this many times")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the generated history")
	fs.StringVar(&cfg.Out, "out", "", "Markdown `file` whose \"## Metrics\" section is written or replaced (e.g. docs/benchmarks.md); empty: print only")
	fs.IntVar(&cfg.Diagnose, "diagnose", 100, "in the last round, time the queries against variants of the rollup tables this many times on the largest history (0: skip)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the databases truthboard_mbench_* for inspection instead of dropping them")
	fs.BoolVar(&cfg.Reuse, "reuse", false, "keep the databases truthboard_mbench_<size> between runs and measure the history they hold instead of loading it again "+
		"(a rollup table that is empty is rebuilt from the events); implies -keep and one round: drop them by hand when done")
	fs.StringVar(&cfg.Section, "section", "Metrics", "`title` of the \"## \" section of -out to write, e.g. \"Metrics: long windows\" for a run that should not replace the main one")
	exportTouchpoints := fs.String("export-touchpoints", "0", "distinct touchpoints of the export measurement's month of events (suffix k or M; 0: no export measurement)")
	exportEvents := fs.String("export-events", "1M", "events of the export measurement, over the 30 days before the run (suffix k or M)")
	fs.StringVar(&cfg.ServerBin, "server-bin", "", "truthboard `binary` the export measurement runs; empty: go build ./cmd/truthboard")
	fs.BoolVar(&cfg.ExportOnly, "export-only", false, "run the export measurement alone (needs -export-touchpoints), without -sizes and the ticks")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q: every option is a flag, see -help", fs.Arg(0))
	}
	var err error
	for _, s := range strings.Split(*sizes, ",") {
		n, err := parseCount(s)
		if err != nil || n == 0 {
			return cfg, fmt.Errorf("-sizes: %q is not a number of events (e.g. 1M,10M,50M)", s)
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	if cfg.Rate, err = parseCount(*rate); err != nil || cfg.Rate == 0 {
		return cfg, fmt.Errorf("-rate: %q is not a number of events per hour (e.g. 10M)", *rate)
	}
	if cfg.Chunk, err = parseCount(*chunk); err != nil || cfg.Chunk == 0 {
		return cfg, fmt.Errorf("-chunk: %q is not a number of events (e.g. 1M)", *chunk)
	}
	if cfg.ExportTouchpoints, err = parseCount(*exportTouchpoints); err != nil {
		return cfg, fmt.Errorf("-export-touchpoints: %q is not a number of touchpoints (e.g. 50k, or 0)", *exportTouchpoints)
	}
	if cfg.ExportEvents, err = parseCount(*exportEvents); err != nil || cfg.ExportEvents < cfg.ExportTouchpoints {
		return cfg, fmt.Errorf("-export-events: %q is not a number of events of at least -export-touchpoints (e.g. 1M)", *exportEvents)
	}
	if cfg.ExportOnly && cfg.ExportTouchpoints == 0 {
		return cfg, errors.New("-export-only: give -export-touchpoints too (e.g. 50k), the size of the export's month")
	}
	if strings.TrimSpace(cfg.Section) == "" {
		return cfg, errors.New("-section: give the title of a section, e.g. Metrics")
	}
	for _, w := range strings.Split(*windows, ",") {
		if _, err := windowLength(strings.TrimSpace(w)); err != nil {
			return cfg, fmt.Errorf("-windows: %w", err)
		}
		cfg.Windows = append(cfg.Windows, strings.TrimSpace(w))
	}
	if cfg.Reuse {
		if cfg.Repeat != 1 {
			return cfg, errors.New("-reuse measures the same history in every round: leave -repeat at 1")
		}
		cfg.Keep = true
	}
	if cfg.Ticks < 1 || cfg.Warmup < 0 || cfg.RawTicks < 1 || cfg.Repeat < 1 {
		return cfg, errors.New("-ticks, -raw-ticks and -repeat must be at least 1, -warmup at least 0")
	}
	return cfg, nil
}

func (c config) storeOptions(database string) store.Options {
	o := c.ClickHouse.Store(database)
	// The baseline reads up to the whole raw table per query.
	o.MaxExecutionTime = 10 * time.Minute
	return o
}

// parseCount reads 50M, 500k or 1000.
func parseCount(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "M"):
		mult, s = 1_000_000, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "k"):
		mult, s = 1_000, strings.TrimSuffix(s, "k")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n * mult, err
}

func countName(n uint64) string {
	switch {
	case n%1_000_000 == 0:
		return strconv.FormatUint(n/1_000_000, 10) + "M"
	case n%1_000 == 0:
		return strconv.FormatUint(n/1_000, 10) + "k"
	}
	return strconv.FormatUint(n, 10)
}

func windowLength(name string) (time.Duration, error) {
	var names []string
	for _, w := range rollup.Windows {
		if w.Name == name {
			return w.Length, nil
		}
		names = append(names, w.Name)
	}
	return 0, fmt.Errorf("%q is not a window of the API; use %s", name, strings.Join(names, ", "))
}

// sizeResult is what one history size measured in one round.
type sizeResult struct {
	Round   int
	Size    uint64
	Span    time.Duration
	Load    loadStats
	Windows []windowResult
}

type windowResult struct {
	Name string
	// API and Hub are the measured ticks of the two sets from the rollups (see apiSet, hubSet).
	API, Hub []tickTimes
	// Raw are the measured ticks of the baseline, the API set from the raw table.
	Raw [][nQueries]time.Duration
	// RowsAPI, RowsHub and RowsRaw are the rows ClickHouse read for each query of one tick.
	RowsAPI, RowsRaw [nQueries]uint64
	RowsHub          [2]uint64
	// GroupsAPI are the rows each query of the API set returned.
	GroupsAPI [nQueries]int
	Agree     agreement
	LoadAvg   string // 1-minute load average after the window's ticks
}

// history is the database of one size of history, loaded.
type history struct {
	name string
	db   *store.Store
	end  time.Time // the history ends here
	res  *sizeResult
}

// runRound loads every size into a fresh database of its own, then measures them all together:
// every tick runs each size in turn, so that whatever else the shared machine does weighs on
// all sizes alike and their ratios hold.
func runRound(ctx context.Context, cfg config, admin *store.Store, round int, log *slog.Logger) ([]sizeResult, []diagnosis, error) {
	var hs []*history
	defer func() {
		for _, h := range hs {
			h.db.Close()
			if !cfg.Keep {
				if err := cfg.ClickHouse.DropDatabase(context.Background(), h.name); err != nil {
					log.Error("drop database", "db", h.name, "err", err)
				}
			}
		}
	}()
	for _, size := range cfg.Sizes {
		h, err := loadHistory(ctx, cfg, admin, size, round, log)
		if err != nil {
			return nil, nil, err
		}
		hs = append(hs, h)
	}
	// Loading a larger history may have held back the merges of a smaller one.
	for _, h := range hs {
		if _, err := waitMerges(ctx, h.db, cfg.Settle); err != nil {
			return nil, nil, err
		}
		var err error
		if h.res.Load.Parts, h.res.Load.DiskMiB, h.res.Load.TblRows, err = partsOf(ctx, h.db); err != nil {
			return nil, nil, err
		}
	}
	for _, w := range cfg.Windows {
		if err := measureWindow(ctx, cfg, hs, w); err != nil {
			return nil, nil, fmt.Errorf("window %s: %w", w, err)
		}
		for _, h := range hs {
			wr := h.res.window(w)
			log.Info("measured", "round", round, "db", h.name, "window", w, "api_p50", benchkit.Percentile(totals(wr.API), 0.5),
				"hub_p50", benchkit.Percentile(totals(wr.Hub), 0.5), "raw_p50", benchkit.Percentile(rawTotals(wr.Raw), 0.5), "counts_equal", wr.Agree.CountsEqual, "load", wr.LoadAvg)
		}
	}
	var diags []diagnosis
	if cfg.Diagnose > 0 && round == cfg.Repeat {
		largest := hs[len(hs)-1]
		for _, w := range cfg.Windows {
			if probes[w] == nil {
				continue
			}
			log.Info("diagnosing", "db", largest.name, "window", w)
			d, err := diagnose(ctx, largest, w, cfg.Diagnose)
			if err != nil {
				return nil, nil, fmt.Errorf("diagnose %s, window %s: %w", largest.name, w, err)
			}
			d.Size = largest.res.Size
			diags = append(diags, d)
		}
	}
	var out []sizeResult
	for _, h := range hs {
		out = append(out, *h.res)
	}
	return out, diags, nil
}

// loadHistory creates truthboard_mbench_<size>, migrates it and loads size events ending now.
func loadHistory(ctx context.Context, cfg config, admin *store.Store, size uint64, round int, log *slog.Logger) (*history, error) {
	h := &history{
		// The process id keeps two runs on one ClickHouse (say, two engineers) out of each
		// other's databases.
		name: fmt.Sprintf("truthboard_mbench_%s_%d", strings.ToLower(countName(size)), os.Getpid()),
		res:  &sizeResult{Round: round, Size: size, Span: time.Duration(float64(size) / float64(cfg.Rate) * float64(time.Hour)).Round(time.Second)},
	}
	if cfg.Reuse {
		h.name = "truthboard_mbench_" + strings.ToLower(countName(size))
		if ok, err := reuseHistory(ctx, cfg, h, log); err != nil || ok {
			return h, err
		}
	}
	// Only a run of the same process id could have left this name behind.
	if err := admin.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+h.name); err != nil {
		return nil, fmt.Errorf("drop leftover %s: %w", h.name, err)
	}
	db, err := store.Open(ctx, cfg.storeOptions(h.name))
	if err != nil {
		return nil, err
	}
	h.db = db
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", h.name, err)
	}
	h.end = time.Now().UTC().Truncate(time.Second)
	log.Info("loading", "round", round, "db", h.name, "events", size, "span", h.res.Span)
	lastLog := time.Now()
	h.res.Load, err = load(ctx, db, size, cfg.Chunk, h.end, h.res.Span, cfg.Seed, cfg.Settle, func(done uint64) {
		if time.Since(lastLog) > 15*time.Second {
			log.Info("loading", "db", h.name, "events", done)
			lastLog = time.Now()
		}
	})
	if err != nil {
		admin.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+h.name)
		db.Close()
		return nil, err
	}
	log.Info("loaded", "db", h.name, "insert", h.res.Load.Insert.Round(time.Millisecond), "settle", h.res.Load.Settle.Round(time.Millisecond),
		"merges_done", h.res.Load.Settled, "parts", h.res.Load.Parts)
	return h, nil
}

// measureWindow runs the ticks of one window on every size. Tick k of n happens at end-(n-k) s
// of each history: the live view ticking once per second over its last seconds. In each tick
// every size runs both sets from the rollups (sizes in rotating order, sets in alternating
// order); RawTicks of the measured ticks, spread evenly, also run the baseline at the same
// instant and compare its counts with the rollup's.
func measureWindow(ctx context.Context, cfg config, hs []*history, w string) error {
	length, _ := windowLength(w)
	view := apiView(length, w)
	api, hub := apiSet(view), hubSet(view)
	n := cfg.Warmup + cfg.Ticks
	at := func(h *history, k int) time.Time { return h.end.Add(-time.Duration(n-k) * time.Second) }
	wrs := make([]windowResult, len(hs))
	for i := range wrs {
		wrs[i].Name = w
		wrs[i].Agree.CountsEqual = true
	}

	// Before the ticks, count the rows each query reads, once (the raw side also warms up).
	for i, h := range hs {
		wr := &wrs[i]
		for j, st := range api {
			rows, err := readRows(ctx, func(ctx context.Context) error {
				g, err := h.db.Rollup(ctx, st.q, st.q.Plan(at(h, 0)))
				wr.GroupsAPI[j] = len(g)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
			wr.RowsAPI[j] = rows
		}
		for j, st := range hub {
			rows, err := readRows(ctx, func(ctx context.Context) error {
				_, err := h.db.Rollup(ctx, st.q, st.q.Plan(at(h, 0)))
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
			wr.RowsHub[j] = rows
		}
		for j, q := range view {
			rows, err := readRows(ctx, func(ctx context.Context) error {
				_, err := rawQuery(ctx, h.db, j, q, q.Plan(at(h, 0)))
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
			wr.RowsRaw[j] = rows
		}
	}

	every := max(1, cfg.Ticks/cfg.RawTicks)
	for k := range n {
		for j := range hs {
			i := (j + k) % len(hs)
			h, wr, now := hs[i], &wrs[i], at(hs[i], k)
			sets := []querySet{api, hub}
			if k%2 == 1 {
				sets = []querySet{hub, api}
			}
			var (
				times   [2]tickTimes
				kpiRoll []rollup.Group
			)
			for s, set := range sets {
				t, groups, err := set.run(ctx, h.db, now)
				if err != nil {
					return fmt.Errorf("%s: %w", h.name, err)
				}
				if k%2 == 1 {
					s = 1 - s
				}
				times[s] = t
				if s == 0 {
					kpiRoll = groups[qKPI]
				}
			}
			if k < cfg.Warmup {
				continue
			}
			wr.API, wr.Hub = append(wr.API, times[0]), append(wr.Hub, times[1])
			if m := k - cfg.Warmup; m%every == every/2 && len(wr.Raw) < cfg.RawTicks {
				t, raw, err := rawTick(ctx, h.db, view, now)
				if err != nil {
					return fmt.Errorf("%s: %w", h.name, err)
				}
				wr.Raw = append(wr.Raw, t)
				a := compareKPI(kpiRoll, raw[qKPI])
				wr.Agree.CountsEqual = wr.Agree.CountsEqual && a.CountsEqual
				wr.Agree.Events = a.Events
				wr.Agree.WaitP50, wr.Agree.WaitP90 = maxNaN(wr.Agree.WaitP50, a.WaitP50), maxNaN(wr.Agree.WaitP90, a.WaitP90)
			}
		}
	}
	load := benchkit.LoadAverage()
	for i, h := range hs {
		wrs[i].LoadAvg = load
		h.res.Windows = append(h.res.Windows, wrs[i])
	}
	return nil
}

// maxNaN is the larger of a and b, NaN counting as absent.
func maxNaN(a, b float64) float64 {
	switch {
	case math.IsNaN(a):
		return b
	case math.IsNaN(b):
		return a
	}
	return max(a, b)
}
