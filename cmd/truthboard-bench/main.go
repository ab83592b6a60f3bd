// Command truthboard-bench measures one subsystem of Truthboard against a baseline run in the
// same process, and writes the figures, the machine and the command to docs/benchmarks.md:
//
//	eval "$(scripts/clickhouse.sh env)"
//	go run ./cmd/truthboard-bench -suite ingest -repeat 2 -out docs/benchmarks.md
//
// -suite chooses what to measure; each suite owns one "## Title" section of the output file
// and replaces only that section, so suites can be run one at a time. A suite works in a fresh
// ClickHouse database of its own (truthboard_bench_<random>) on TRUTHBOARD_CLICKHOUSE_ADDR,
// dropped at the end. Figures are ratios against a baseline of the same run, never absolute
// targets checked by a test: this machine's cores are shared with ClickHouse and other work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/truthboard/truthboard/internal/benchkit"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
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
	"ingest": ingestSuite(),
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(os.Args[1:], log); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		log.Error("truthboard-bench failed", "err", err)
		os.Exit(1)
	}
}

func run(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("truthboard-bench", flag.ContinueOnError)
	suiteName := fs.String("suite", "", "what to measure: "+strings.Join(suiteNames(), ", "))
	out := fs.String("out", "", "Markdown `file` whose section of the suite is written or replaced (e.g. docs/benchmarks.md); empty: print only")
	env := &benchEnv{log: log}
	env.addFlags(fs)
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
	env.command = commandLine(args)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
	fmt.Fprint(w, `Usage: go run ./cmd/truthboard-bench -suite NAME [flags]

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

// commandLine is the command that reproduces this run, for the output file.
func commandLine(args []string) string {
	parts := []string{"go", "run", "./cmd/truthboard-bench"}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// discard is a logger for components whose logs the benchmark does not need.
var discard = slog.New(slog.NewTextHandler(io.Discard, nil))
