// Package soak is `truthboard-tools soak`: it runs a real `truthboard serve` under steady load
// for a long time and checks that it does not leak: the server's resident memory, goroutines,
// open files and threads must stay flat, and every event it acknowledged must be stored exactly
// once.
//
//	eval "$(scripts/clickhouse.sh env)"
//	go run ./cmd/truthboard-tools soak -bin bin/truthboard -out docs/benchmarks.md   (make soak)
//
// The server runs as a child process (-bin, built by `make build`) on a free loopback port,
// with a data directory of its own, generated credentials and a fresh ClickHouse database
// soak_<pid> on TRUTHBOARD_CLICKHOUSE_ADDR, dropped at the end. For -duration the soak
//
//   - offers -rate events/s of simulated customer journeys (internal/demo), paced, in NDJSON
//     requests of -batch events from -conns keep-alive HTTP clients, each with its own ingest
//     key, and counts the answers;
//   - holds -clients WebSocket screens on a handful of views (GET /v1/live), reading every
//     message and reconnecting when a connection ends, and counts messages and closes;
//   - samples the server every -every: RSS and threads (/proc/<pid>/status and stat), open
//     files (/proc/<pid>/fd), goroutines (go_goroutines of GET /metrics) and rows stored.
//
// Then it stops the load, waits until the rows stored stop changing (the server acknowledges
// an event once it is in its local spool and drains the spool into ClickHouse), stops the
// server with SIGTERM, counts the rows once more and writes the "## Soak" section of -out.
//
// "Flat" means: at the end of the load, each figure is at most -margin (10%) above its value
// after -warmup (2 minutes: the live feeds, the connection pools and the Go heap have grown to
// their working size by then), with 2 threads of slack; each value is the median of 3 samples,
// since one sample of RSS lands anywhere between two garbage collections. The command exits 1
// when a figure is not flat or the rows stored differ from the events acknowledged.
package soak

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
)

// options are the flags.
type options struct {
	bin string
	ch  benchkit.ClickHouse

	duration, warmup, every time.Duration
	rate                    float64
	batch, conns            int
	clients                 int
	margin                  float64
	drainTimeout            time.Duration

	out    string
	keepDB bool
}

// errFailed is a soak that ran to its end and found a leak or a lost or doubled event.
var errFailed = errors.New("the soak failed")

// Run is `truthboard-tools soak`; it fails with errFailed when the server leaked, or lost or
// doubled events.
func Run(ctx context.Context, args []string, log *slog.Logger) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	// The screens' sockets, on both ends.
	if err := benchkit.RaiseOpenFilesLimit(uint64(o.clients) + 256); err != nil {
		return fmt.Errorf("%w, or lower -clients (%d screens)", err, o.clients)
	}
	rep := &report{o: o, command: benchkit.CommandLine("soak", args), started: time.Now(), machine: benchkit.DescribeMachine()}

	// The generators simulate the journeys in flight before their start: seconds of work, done
	// before the server starts so that it does not count in the server's figures.
	log.Info("preparing the event generators", "rate", o.rate)
	src, err := newEventSource(o.rate)
	if err != nil {
		return err
	}

	srv, err := startServer(ctx, o, log)
	if err != nil {
		return err
	}
	defer srv.close(log)
	rep.chVersion = srv.db.ServerVersion()
	log.Info("server ready", "url", srv.url, "pid", srv.pid, "database", srv.database)
	rep.idle = takeSample(ctx, srv, nil, nil, 0)

	scr := startScreens(ctx, srv, o.clients)
	defer scr.stop()
	ld := startLoad(ctx, srv, src, o)
	defer ld.stop()
	loadStart := time.Now()
	rep.loadAverage[0] = benchkit.LoadAverage()

	// Sample every -every after the start of the load; the last sample is its end.
	for at := o.every; ; at = min(at+o.every, o.duration) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted after %s of load: %w", time.Since(loadStart).Round(time.Second), ctx.Err())
		case <-srv.proc.Exited():
			return fmt.Errorf("the server exited after %s of load (%v); its log ends:\n%s", time.Since(loadStart).Round(time.Second), srv.proc.ExitErr(), srv.proc.LogTail(20))
		case <-time.After(time.Until(loadStart.Add(at))):
		}
		s := takeSample(ctx, srv, ld, scr, time.Since(loadStart))
		rep.samples = append(rep.samples, s)
		log.Info("sample", s.logAttrs()...)
		if at == o.duration {
			break
		}
	}
	rep.loadAverage[1] = benchkit.LoadAverage()

	ld.stop()
	scr.stop()
	rep.load, rep.screens = ld.totals(), scr.totals()
	log.Info("load stopped", "acknowledged", rep.load.Accepted, "unsent", rep.load.Unsent, "refused", rep.load.Refused)

	rep.drain, err = waitDrained(ctx, srv, rep.load.Accepted, o.drainTimeout, log)
	if err != nil {
		return err
	}
	if err := srv.stop(); err != nil {
		return err
	}
	if rep.stored, err = srv.storedRows(ctx); err != nil {
		return fmt.Errorf("count the rows stored after the server stopped: %w", err)
	}
	rep.warnings, rep.firstWarning = srv.proc.Warnings()

	section := rep.render()
	fmt.Print("\n" + section)
	if o.out != "" {
		if err := benchkit.WriteSection(o.out, sectionTitle, section); err != nil {
			return err
		}
		log.Info("section written", "file", o.out, "section", "## "+sectionTitle)
	}
	if problems := rep.problems(); len(problems) > 0 {
		return fmt.Errorf("%w: %s", errFailed, strings.Join(problems, "; "))
	}
	log.Info("flat, and every acknowledged event stored once")
	return nil
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("truthboard-tools soak", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "bin/truthboard", "the Truthboard `binary` to run (make build)")
	o.ch.AddFlags(fs)
	fs.DurationVar(&o.duration, "duration", 30*time.Minute, "how long the load runs")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Minute, "the baseline of \"flat\" is the first sample at or after this much load")
	fs.DurationVar(&o.every, "every", 30*time.Second, "how often the server is sampled")
	fs.Float64Var(&o.rate, "rate", 20_000, "`events` per second offered")
	fs.IntVar(&o.batch, "batch", 200, "events per request")
	fs.IntVar(&o.conns, "conns", 32, "HTTP clients posting at once, one keep-alive connection and ingest key each")
	fs.IntVar(&o.clients, "clients", 500, "live WebSocket screens held open")
	fs.Float64Var(&o.margin, "margin", 0.10, "largest growth from the warm-up sample to the end that counts as flat (0.10 = 10%)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 5*time.Minute, "longest wait, after the load, for the rows stored to stop changing")
	fs.StringVar(&o.out, "out", "", "Markdown `file` whose \"## "+sectionTitle+"\" section is written or replaced (e.g. docs/benchmarks.md); empty: print only")
	fs.BoolVar(&o.keepDB, "keep-db", false, "keep the ClickHouse database at the end")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: settings are flags, see -help", fs.Arg(0))
	}
	var errs []error
	if o.every < time.Second {
		errs = append(errs, errors.New("-every: at least 1s"))
	}
	if o.warmup < 0 || o.warmup+o.every > o.duration {
		errs = append(errs, fmt.Errorf("-duration %s: at least -warmup (%s) plus one -every (%s), so that the end can be compared with the warm-up; e.g. -duration 90s -warmup 30s", o.duration, o.warmup, o.every))
	}
	if !(o.rate >= 1) {
		errs = append(errs, errors.New("-rate: at least 1 event per second"))
	}
	if o.batch < 1 || o.batch > 10_000 {
		errs = append(errs, errors.New("-batch: 1 to 10,000 events (the server's default TRUTHBOARD_MAX_EVENTS)"))
	}
	if o.conns < 1 {
		errs = append(errs, errors.New("-conns: at least 1"))
	}
	if o.clients < 0 {
		errs = append(errs, errors.New("-clients: 0 or more"))
	}
	if !(o.margin >= 0) {
		errs = append(errs, errors.New("-margin: 0 or more, e.g. 0.10 for 10%"))
	}
	if o.drainTimeout < 10*time.Second {
		errs = append(errs, errors.New("-drain-timeout: at least 10s"))
	}
	return o, errors.Join(errs...)
}
