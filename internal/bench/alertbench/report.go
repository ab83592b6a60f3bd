package alertbench

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/demo"
)

// Title is the section of docs/benchmarks.md the run writes.
const Title = "Alerts: false alarms and time to fire"

// Run is `truthboard-tools alert-bench`.
func Run(ctx context.Context, args []string, log *slog.Logger) error {
	o, out, err := parseFlags(args)
	if err != nil {
		return err
	}
	o.Log = log
	machine := benchkit.DescribeMachine()
	rep, err := Measure(ctx, o)
	if err != nil {
		return err
	}
	section := rep.Markdown(benchkit.CommandLine("alert-bench", args), machine, time.Now().UTC())
	fmt.Print(section)
	if out == "" {
		return nil
	}
	if err := benchkit.WriteSection(out, Title, section); err != nil {
		return err
	}
	log.Info("section written", "file", out, "section", "## "+Title)
	return nil
}

func parseFlags(args []string) (Options, string, error) {
	o := DefaultOptions()
	fs := flag.NewFlagSet("truthboard-tools alert-bench", flag.ContinueOnError)
	o.ClickHouse.AddFlags(fs)
	fs.Float64Var(&o.Rate, "rate", o.Rate, "demo `events` per second (mean over a day)")
	seeds := fs.String("seeds", "1,2,3,4,5,6", "demo seeds, comma-separated: each is a run on a database of its own")
	fs.IntVar(&o.IncidentSeeds, "incident-seeds", o.IncidentSeeds, "how many of the seeds (the first) also run the incidents")
	fs.DurationVar(&o.Baseline, "baseline", o.Baseline, "simulated history before the steady traffic that is measured")
	fs.DurationVar(&o.OriginStep, "seed-offset", o.OriginStep, "each seed's traffic starts this much later in the day than the one before")
	fs.DurationVar(&o.Steady, "steady", o.Steady, "simulated steady traffic in which every alert is a false alarm")
	var incidents []string
	for _, inc := range o.Incidents {
		incidents = append(incidents, inc.String())
	}
	incs := fs.String("incidents", strings.Join(incidents, ","), "`channel:kind` incidents (kind outage or spike), comma-separated, one after the other after the steady traffic; \"none\" for none")
	fs.DurationVar(&o.IncidentLength, "incident-length", o.IncidentLength, "how long each incident lasts")
	fs.DurationVar(&o.Slot, "slot", o.Slot, "simulated time from one incident's start to the next's")
	fs.DurationVar(&o.Step, "step", o.Step, "simulated time between evaluations")
	fs.BoolVar(&o.LastWeek, "last-week", o.LastWeek, "fill the hours a week earlier, for the volume rule (which compares with them)")
	fs.Float64Var(&o.CompareAlpha, "compare-alpha", o.CompareAlpha, "also run the default rules at this `level` instead of their own, on the same reads, for comparison (0: not)")
	fs.IntVar(&o.LiveEvery, "live-every", o.LiveEvery, "measure the live executive feed's tick every this many evaluations")
	fs.BoolVar(&o.Keep, "keep", false, "keep the databases truthboard_abench_* for inspection instead of dropping them")
	out := fs.String("out", "", "Markdown `file` whose \"## "+Title+"\" section is written or replaced (e.g. docs/benchmarks.md); empty: print only")
	if err := fs.Parse(args); err != nil {
		return o, "", err
	}
	if fs.NArg() > 0 {
		return o, "", fmt.Errorf("%w: unexpected argument %q: every option is a flag, see -h", benchkit.ErrUsage, fs.Arg(0))
	}
	o.Seeds = nil
	for _, s := range strings.Split(*seeds, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return o, "", fmt.Errorf("%w: -seeds: %q is not a whole number (e.g. -seeds 1,2,3)", benchkit.ErrUsage, s)
		}
		o.Seeds = append(o.Seeds, n)
	}
	o.Incidents = nil
	if *incs != "none" && *incs != "" {
		for _, s := range strings.Split(*incs, ",") {
			channel, kind, ok := strings.Cut(strings.TrimSpace(s), ":")
			if !ok {
				return o, "", fmt.Errorf("%w: -incidents: %q: want channel:kind, e.g. voice:outage", benchkit.ErrUsage, s)
			}
			o.Incidents = append(o.Incidents, Incident{Channel: channel, Kind: demo.IncidentKind(kind)})
		}
	}
	return o, *out, nil
}

// Markdown is the report's section of docs/benchmarks.md.
func (r Report) Markdown(command string, m benchkit.Machine, end time.Time) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	o := r.Options
	p("## %s\n\n", Title)
	p("How honest the default alert rules are on the demo's traffic, and what their evaluation adds per tick. Simulated\n")
	p("time: the demo's generator (`internal/demo`, as `truthboard serve` sends it, with its daily rhythm and 1%% late\n")
	p("events; duplicates left out, as the server removes them) makes events with their `occurred_at` in simulated time;\n")
	p("they are inserted through `internal/store` as the simulated clock reaches the time they are sent (in 5-minute\n")
	p("chunks), so the rollups fill as in a server. The server's alert evaluator (`internal/alert/evaluator`, default\n")
	p("rules) is stepped on that clock, one `Evaluate` every %s; what fired is read back from the history it records.\n\n", o.Step)
	p("- Command: `%s` (with `eval \"$(scripts/clickhouse.sh env)\"` first; `make bench-alerts`)\n", command)
	p("- Machine: %d CPUs (%s), %s RAM, ClickHouse %s, %s, commit %s; run %s – %s UTC, shared with other work (load %s at the end)\n",
		m.CPUs, m.CPUModel, m.RAM, r.ClickHouse, m.Go, m.Commit, m.Date.Format("2006-01-02 15:04"), end.Format("15:04"), benchkit.LoadAverage())
	p("- Traffic: %.0f events/s on average over a day (the rate of `scripts/up.sh`; the demo's rate follows the hour, 0.4\n", o.Rate)
	p("  times the mean at 02:00, 1.6 times at 14:00), simulated: %s of history\n", o.Baseline)
	p("  (the default rules compare 15 minutes with the 3 hours before), then %s of steady traffic in which every alert that\n", o.Steady)
	p("  fires is a false alarm. Seeds %s, each starting %s after the one before, so that their steady traffic falls at\n",
		joinSeeds(o.Seeds), o.OriginStep)
	p("  other times of day; the first %d then run the incidents, one after the other, each %s long at the start\n",
		min(o.IncidentSeeds, len(o.Seeds)), o.IncidentLength)
	p("  of a %s slot, so that its alerts resolve before the next one starts.\n", o.Slot)
	if o.LastWeek {
		p("- The hours a week before the measured ones hold the same traffic (another seed), so that `VolumeDrop` (an hour\n")
		p("  against the same hour a week earlier) is judged as after a week of running.\n")
	} else {
		p("- No traffic a week earlier: `VolumeDrop` (an hour against the same hour a week earlier) cannot judge, and is silent.\n")
	}
	p("- Rules: the default ones (`alert.DefaultRules`, p < %s)", alpha(alert.DefaultAlpha))
	if o.CompareAlpha > 0 {
		p(", and beside them the same rules at p < %s, in an engine of their own fed the same reads", alpha(o.CompareAlpha))
	}
	p(".\n")
	p("- The demo knows two kinds of incident, on any channel (`demo.ParseIncident`): `outage` (quality −0.12, waits ×4,\n")
	p("  15%% of contacts fail, purchases and visits fail often, 40%% of customers switch to a neighbouring channel) and\n")
	p("  `spike` (extra customers on the channel, about half the rate again; waits ×2.5).\n\n")

	p("### False alarms in steady traffic\n\n")
	cmpHead, cmpRule := "", ""
	if o.CompareAlpha > 0 {
		cmpHead, cmpRule = fmt.Sprintf(" at p < %s instead |", alpha(o.CompareAlpha)), "---|"
	}
	p("| seed | events stored | steady traffic (UTC) | evaluations in it | alerts fired (false alarms) | per hour | went pending and dropped |%s run took |\n", cmpHead)
	p("|---|---|---|---|---|---|---|%s---|\n", cmpRule)
	var alarms, near, cmpAlarms int
	var hours float64
	for _, run := range r.Runs {
		h := o.Steady.Hours()
		hours += h
		alarms += len(run.FalseAlarms)
		near += run.NearMisses
		events := benchkit.Thousands(run.Events)
		if run.LastWeekEvents > 0 {
			events += " + " + benchkit.Thousands(run.LastWeekEvents) + " a week earlier"
		}
		span := run.SteadyStart.Format("15:04") + "–" + run.SteadyStart.Add(o.Steady).Format("15:04")
		cmp := ""
		if run.Compare != nil {
			cmpAlarms += len(run.Compare.FalseAlarms)
			cmp = fmt.Sprintf(" %d |", len(run.Compare.FalseAlarms))
		}
		p("| %d | %s | %s | %d | %d | %.2f | %d |%s %s |\n", run.Seed, events, span,
			int(o.Steady/o.Step), len(run.FalseAlarms), float64(len(run.FalseAlarms))/h, run.NearMisses, cmp, run.RealDuration.Round(time.Second))
	}
	cmp := ""
	if o.CompareAlpha > 0 {
		cmp = fmt.Sprintf(" %d (%.3f per hour) |", cmpAlarms, float64(cmpAlarms)/hours)
	}
	p("| all | | %s | | **%d** | **%.3f** | %d |%s |\n\n", time.Duration(hours*float64(time.Hour)), alarms, float64(alarms)/hours, near, cmp)
	listed := false
	for _, run := range r.Runs {
		for _, f := range run.FalseAlarms {
			p("- seed %d, %s into the steady traffic: %s — %s\n", run.Seed, f.After.Round(time.Second), f.cell(), f.Summary)
			listed = true
		}
		if run.Compare == nil {
			continue
		}
		for _, f := range run.Compare.FalseAlarms {
			p("- at p < %s, seed %d, %s into the steady traffic: %s — %s\n", alpha(o.CompareAlpha), run.Seed, f.After.Round(time.Second), f.cell(), f.Summary)
			listed = true
		}
	}
	if listed {
		p("\n")
	}

	for _, run := range r.Runs {
		if len(run.Incidents) == 0 {
			continue
		}
		p("### Time to fire (seed %d)\n\n", run.Seed)
		p("Time from the incident's start to each alert that fired on its channel (the rules' 2 minutes of pending\n")
		p("included), the alerts that fired on other channels during its slot, and when the last alert on the channel\n")
		p("resolved after the incident ended.\n\n")
		p("| incident | starts (UTC) | first alert | alerts on the channel | elsewhere in its slot | resolved after its end |%s\n", strings.ReplaceAll(cmpHead, "instead", "instead: first alert"))
		p("|---|---|---|---|---|---|%s\n", cmpRule)
		for k, inc := range run.Incidents {
			first := firstAlert(inc.OnChannel)
			cmp := ""
			if run.Compare != nil {
				cmp = " " + firstAlert(run.Compare.Incidents[k].OnChannel) + " |"
			}
			var on, elsewhere []string
			for _, f := range inc.OnChannel {
				on = append(on, fmt.Sprintf("%s %s %s", f.Name, f.Moment, f.After.Round(time.Second)))
			}
			for _, f := range inc.Elsewhere {
				elsewhere = append(elsewhere, fmt.Sprintf("%s %s › %s %s", f.Name, f.Moment, f.Channel, f.After.Round(time.Second)))
			}
			if len(on) == 0 {
				on = []string{"none"}
				if inc.PendingOnly > 0 {
					on = []string{fmt.Sprintf("none (%d went pending and dropped)", inc.PendingOnly)}
				}
			}
			if len(elsewhere) == 0 {
				elsewhere = []string{"none"}
			}
			resolved := "—"
			switch {
			case inc.StillFiring > 0:
				resolved = fmt.Sprintf("%d still firing at the end of the slot", inc.StillFiring)
			case len(inc.OnChannel) > 0:
				resolved = inc.Resolved.Round(time.Second).String()
			}
			p("| `%s` | %s | %s | %s | %s | %s |%s\n", inc.Incident, inc.Start.Format("15:04"), first, strings.Join(on, ", "), strings.Join(elsewhere, ", "), resolved, cmp)
		}
		p("\n")
	}

	defaults := config.Default()
	p("### Cost per tick\n\n")
	p("Each evaluation's time (its ClickHouse queries, the judgement of every rule in every moment × channel, the\n")
	p("history written when something changed) against the live executive feed's tick (the 5-minute executive view,\n")
	p("unfiltered: its query, charts and encoding, as a `live.Hub` runs it) at the same simulated instants, on the same\n")
	p("data, in the same process. An evaluation reads the current windows, and the baselines once a minute (they move\n")
	p("by the minute; the engine keeps them in between). The server evaluates every %s (`TRUTHBOARD_ALERT_INTERVAL`),\n", defaults.AlertInterval)
	p("once whatever the number of screens and views, and ticks each live feed every %s (`TRUTHBOARD_LIVE_TICK`).\n\n", defaults.LiveTick)
	var evalMS, liveMS []float64
	var evalQ, liveQ []int
	for _, run := range r.Runs {
		evalMS, liveMS = append(evalMS, run.EvalMS...), append(liveMS, run.LiveMS...)
		evalQ, liveQ = append(evalQ, run.EvalQueries...), append(liveQ, run.LiveQueries...)
	}
	p("| per tick | samples | p50 ms | p90 ms | max ms | mean ms | queries | every | ms per second of running |\n|---|---|---|---|---|---|---|---|---|\n")
	row := func(name string, xs []float64, qs []int, every time.Duration) float64 {
		if len(xs) == 0 {
			return 0
		}
		perSecond := mean(xs) / every.Seconds()
		p("| %s | %d | %.1f | %.1f | %.1f | %.1f | %s | %s | %.1f |\n", name, len(xs), benchkit.Percentile(xs, 0.5), benchkit.Percentile(xs, 0.9),
			slices.Max(xs), mean(xs), queryRange(qs), every, perSecond)
		return perSecond
	}
	evalPS := row("alert evaluation, default rules", evalMS, evalQ, defaults.AlertInterval)
	livePS := row("live executive feed, 5m", liveMS, liveQ, defaults.LiveTick)
	if evalPS > 0 && livePS > 0 {
		p("\nPer tick, an evaluation costs %.1f times a live feed's tick at the median; per second of running, at the\n",
			benchkit.Percentile(evalMS, 0.5)/benchkit.Percentile(liveMS, 0.5))
		p("default intervals, the evaluation adds %.0f%% of what one live feed costs (%.1f ms a second against %.1f).\n", 100*evalPS/livePS, evalPS, livePS)
	}
	return b.String()
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// firstAlert is the first of the alerts that fired on an incident's channel: when, and which.
func firstAlert(fs []Fired) string {
	if len(fs) == 0 {
		return "none"
	}
	return fmt.Sprintf("**%s** (%s %s)", fs[0].After.Round(time.Second), fs[0].Name, fs[0].Moment)
}

// alpha writes a level as the rules file does: 0.0001.
func alpha(a float64) string { return strconv.FormatFloat(a, 'f', -1, 64) }

func joinSeeds(seeds []int64) string {
	var s []string
	for _, x := range seeds {
		s = append(s, strconv.FormatInt(x, 10))
	}
	return strings.Join(s, ", ")
}

// queryRange is "4", or "2–4 (2.3 on average)" when the count varied.
func queryRange(qs []int) string {
	if len(qs) == 0 {
		return "?"
	}
	lo, hi := slices.Min(qs), slices.Max(qs)
	if lo == hi {
		return strconv.Itoa(lo)
	}
	sum := 0
	for _, q := range qs {
		sum += q
	}
	return fmt.Sprintf("%d–%d (%.1f on average)", lo, hi, float64(sum)/float64(len(qs)))
}
