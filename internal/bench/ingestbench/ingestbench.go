// Package ingestbench is `truthboard-tools ingest-bench`: it measures one subsystem of
// Truthboard against a baseline run in the same process, and writes the figures, the machine
// and the command to docs/benchmarks.md:
//
//	eval "$(scripts/clickhouse.sh env)"
//	go run ./cmd/truthboard-tools ingest-bench -suite ingest -repeat 2 -out docs/benchmarks.md
//
// -suite chooses what to measure; each suite owns one "## Title" section of the output file
// and replaces only that section, so suites can be run one at a time. A suite works in a fresh
// ClickHouse database of its own (truthboard_bench_<random>) on TRUTHBOARD_CLICKHOUSE_ADDR,
// dropped at the end. Figures are ratios against a baseline of the same run, never absolute
// targets checked by a test: this machine's cores are shared with ClickHouse and other work.
package ingestbench

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/truthboard/truthboard/internal/benchkit"
)

// suite is one kind of measurement. Add a suite by adding it to suites.
type suite struct {
	// Title is the "## Title" heading of the suite's section in the output file.
	Title string
	// Help is one line for -help.
	Help string
	// AddFlags binds the suite's own flags; they are accepted whichever suite runs.
	AddFlags func(fs *flag.FlagSet)
	// Run measures and returns the body of the section (without its heading), in Markdown.
	Run func(ctx context.Context, env *benchEnv) (string, error)
}

var suites = map[string]*suite{
	"ingest":  ingestSuite(),
	"cluster": clusterSuite(),
}

// Run is `truthboard-tools ingest-bench`: it measures the suite of -suite and prints its section;
// with -out, it writes that section into the file.
func Run(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("truthboard-tools ingest-bench", flag.ContinueOnError)
	suiteName := fs.String("suite", "ingest", "what to measure: "+strings.Join(suiteNames(), ", "))
	out := fs.String("out", "", "Markdown `file` whose section of the suite is written or replaced (e.g. docs/benchmarks.md); empty: print only")
	env := &benchEnv{log: log}
	env.ch.AddFlags(fs)
	for _, name := range suiteNames() {
		suites[name].AddFlags(fs)
	}
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: choose the suite with -suite, e.g. -suite ingest", fs.Arg(0))
	}
	s, ok := suites[*suiteName]
	if !ok {
		return fmt.Errorf("-suite %q: want one of %s, e.g. -suite ingest", *suiteName, strings.Join(suiteNames(), ", "))
	}
	env.command = benchkit.CommandLine("ingest-bench", args)

	body, err := s.Run(ctx, env)
	if err != nil {
		return err
	}
	section := "## " + s.Title + "\n\n" + strings.TrimSpace(body) + "\n"
	fmt.Println()
	fmt.Print(section)
	if *out == "" {
		return nil
	}
	if err := benchkit.WriteSection(*out, s.Title, section); err != nil {
		return err
	}
	log.Info("section written", "file", *out, "section", "## "+s.Title)
	return nil
}

func suiteNames() []string {
	names := make([]string, 0, len(suites))
	for n := range suites {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, `Usage: go run ./cmd/truthboard-tools ingest-bench [-suite NAME] [flags]

Measures a subsystem against a baseline in the same run and prints a Markdown section; with
-out FILE, writes that section into FILE in place (other sections are kept).
Needs ClickHouse: eval "$(scripts/clickhouse.sh env)" sets TRUTHBOARD_CLICKHOUSE_ADDR.

Suites:
`)
	for _, n := range suiteNames() {
		fmt.Fprintf(w, "  %-8s %s\n", n, suites[n].Help)
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.PrintDefaults()
}
