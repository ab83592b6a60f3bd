// Command truthboard-tools measures and exercises a real Truthboard, for what the test suite
// cannot do in a few seconds; each subcommand writes its figures into docs/benchmarks.md:
//
//	truthboard-tools ingest-bench   HTTP ingest against the bare driver, ack latency, overload
//	truthboard-tools metrics-bench  the executive view's queries per tick at growing history
//	truthboard-tools live-bench     freshness and fan-out of the live dashboards
//	truthboard-tools alert-bench    false alarms and time to fire of the default alert rules
//	truthboard-tools screens-bench  1,000 paired screens: memory, a command's time to reach them all
//	truthboard-tools soak           a long run under load: resources must stay flat
//	truthboard-tools browse         screenshots of the dashboards, the TV wall's JS heap
//	truthboard-tools help           this list
//
// Run it from the module root, with ClickHouse: eval "$(scripts/clickhouse.sh env)", then
// go run ./cmd/truthboard-tools SUBCOMMAND -h for a subcommand's flags. The Makefile's bench,
// bench-alerts, soak, screenshots and leakcheck targets run them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/truthboard/truthboard/internal/bench/alertbench"
	"github.com/truthboard/truthboard/internal/bench/browse"
	"github.com/truthboard/truthboard/internal/bench/ingestbench"
	"github.com/truthboard/truthboard/internal/bench/livebench"
	"github.com/truthboard/truthboard/internal/bench/metricsbench"
	"github.com/truthboard/truthboard/internal/bench/screensbench"
	"github.com/truthboard/truthboard/internal/bench/soak"
	"github.com/truthboard/truthboard/internal/benchkit"
)

// subcommand is one tool; each lives in a package of internal/bench.
type subcommand struct {
	name, help string
	run        func(ctx context.Context, args []string, log *slog.Logger) error
}

var subcommands = []subcommand{
	{"ingest-bench", "HTTP ingest vs. the bare driver, ack latency, overload (make bench-ingest)", ingestbench.Run},
	{"metrics-bench", "the executive view's queries per tick, growing history (make bench-metrics)", metricsbench.Run},
	{"live-bench", "live dashboards: freshness, fan-out to 5,000 screens (make bench-live)", livebench.Run},
	{"alert-bench", "alert rules on demo traffic: false alarms, time to fire, cost (make bench-alerts)", alertbench.Run},
	{"screens-bench", "1,000 paired screens with heartbeats: memory, a command's time to reach them all", screensbench.Run},
	{"soak", "long load: RSS, goroutines, open files must stay flat (make soak)", soak.Run},
	{"browse", "screenshots | leakcheck: the dashboards in headless chromium (make screenshots)", browse.Run},
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage())
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		fmt.Print(usage())
		return
	}
	i := -1
	for j, s := range subcommands {
		if s.name == name {
			i = j
		}
	}
	if i < 0 {
		fmt.Fprintf(os.Stderr, "truthboard-tools: unknown subcommand %q\n\n%s", name, usage())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := subcommands[i].run(ctx, args, log)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, benchkit.ErrUsage):
		fmt.Fprintf(os.Stderr, "truthboard-tools %s: %v\n", name, err)
		os.Exit(2)
	default:
		log.Error("truthboard-tools "+name+" failed", "err", err)
		os.Exit(1)
	}
}

// usage lists the subcommands.
func usage() string {
	var b strings.Builder
	b.WriteString(`truthboard-tools: benchmarks, soak and browser runs against a real Truthboard.

Usage: go run ./cmd/truthboard-tools SUBCOMMAND [flags]   (from the module root)

Subcommands:
`)
	for _, s := range subcommands {
		fmt.Fprintf(&b, "  %-14s %s\n", s.name, s.help)
	}
	b.WriteString(`  help           this text

Every subcommand needs ClickHouse: eval "$(scripts/clickhouse.sh env)" sets
TRUTHBOARD_CLICKHOUSE_ADDR. SUBCOMMAND -h lists its flags.
`)
	return b.String()
}
