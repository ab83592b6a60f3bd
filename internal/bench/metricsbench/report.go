package metricsbench

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
)

// Targets of the issue, for the verdict lines of the report.
const (
	targetP50    = 25 * time.Millisecond // the view's query set per tick, p50, at 10M events/hour
	targetGrowth = 1.3                   // p50 at the largest history over p50 at the smallest
)

type report struct {
	Command    string
	Machine    benchkit.Machine
	ClickHouse string // the server's version
	Cfg        config
	Results    []sizeResult
	Diagnoses  []diagnosis
	Export     *exportResult
	End        time.Time
}

func (r report) markdown() string {
	var b strings.Builder
	m, c := r.Machine, r.Cfg
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("## %s\n\n", c.Section)
	if c.ExportOnly {
		p("The export measurement of `metrics-bench` alone (`-export-only`): see its table below.\n\n")
		p("- Command: `%s` (with `eval \"$(scripts/clickhouse.sh env)\"` first)\n", r.Command)
		p("- Machine: %d CPUs (%s), %s RAM, ClickHouse %s, %s, commit %s; run %s – %s UTC, shared with other work\n",
			m.CPUs, m.CPUModel, m.RAM, r.ClickHouse, m.Go, m.Commit, m.Date.Format("2006-01-02 15:04"), r.End.Format("15:04"))
		if r.Export != nil {
			r.Export.markdown(p)
		}
		return b.String()
	}
	p("What one executive view costs per tick: the complete query set behind it, read from the rollups as the API reads them\n")
	p("(`rollup.Query` → `Plan` → `store.Rollup` → `rollup.Build`/`BuildConsistency`), one query after the other:\n")
	p("(a) all KPIs with `compare=previous`, (b) the moment × channel grid, (c) a trend per moment (`series=true`, step\n")
	p("`rollup.TrendStep`), (d) the consistency index (by moment, channel). Baseline in the same run, on the same data and\n")
	p("at the same instants: the same metrics from the raw table `events` (`count`/`countIf`/`sum`, exact wait percentiles\n")
	p("with `quantilesExactIf`), same windows, groupings, comparison and buckets.\n\n")
	p("- Command: `%s` (with `eval \"$(scripts/clickhouse.sh env)\"` first)\n", r.Command)
	p("- Machine: %d CPUs (%s), %s RAM, ClickHouse %s, %s, commit %s; run %s – %s UTC, shared with other work\n",
		m.CPUs, m.CPUModel, m.RAM, r.ClickHouse, m.Go, m.Commit, m.Date.Format("2006-01-02 15:04"), r.End.Format("15:04"))
	p("- History: %s events/hour (%.0f/s), ending at the load; sizes %s; a fresh database per size and round, loaded with\n",
		countName(c.Rate), float64(c.Rate)/3600, joinSizes(c.Sizes))
	p("  `INSERT INTO events (…) SELECT … FROM numbers()` in chunks of %s events in time order (the materialized views fill\n", countName(c.Chunk))
	p("  the rollups), then up to %s waiting for background merges, never `OPTIMIZE`. Then all sizes are measured together,\n", c.Settle)
	p("  so that the rest of the shared machine weighs on them alike: in every tick each size runs both query sets in turn.\n")
	p("  Ticks run on a simulated clock, one per second over the last seconds of each history: %d warm-up + %d measured per\n", c.Warmup, c.Ticks)
	p("  window; %d of the measured ticks, spread evenly, also run the raw-table baseline at the same instant. %d round(s),\n", c.RawTicks, c.Repeat)
	if c.Reuse {
		p("  with `-reuse`: each size's database `truthboard_mbench_<size>` as an earlier run loaded it (insert times are\n")
		p("  that run's, not shown), migrated, and every rollup table a newer migration added rebuilt from its events.\n\n")
	} else {
		p("  each loading every size again.\n\n")
	}
	p("### Loading\n\n")
	p("| round | events | span | insert | events/s | merges after | active parts: %s | rollup rows: %s | disk MiB: events / rollups |\n",
		strings.Join(partTables, " / "), strings.Join(rollupTables, " / "))
	p("|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Results {
		l := s.Load
		var parts, rows []string
		var rollMiB float64
		for _, t := range partTables {
			parts = append(parts, strconv.FormatUint(l.Parts[t], 10))
			if t != "events" {
				rollMiB += l.DiskMiB[t]
			}
		}
		for _, t := range rollupTables {
			rows = append(rows, benchkit.Thousands(l.TblRows[t]))
		}
		settle := fmt.Sprintf("%.0f s, done", l.Settle.Seconds())
		if !l.Settled {
			settle = fmt.Sprintf("%.0f s, still merging", l.Settle.Seconds())
		}
		insert, rate := "reused", "–"
		if l.Insert > 0 {
			insert, rate = fmt.Sprintf("%.1f s", l.Insert.Seconds()), fmt.Sprintf("%.0fk", float64(s.Size)/l.Insert.Seconds()/1000)
		}
		p("| %d | %s | %s | %s | %s | %s | %s | %s | %.0f / %.0f |\n", s.Round, countName(s.Size), s.Span,
			insert, rate, settle, strings.Join(parts, " / "),
			strings.Join(rows, " / "), l.DiskMiB["events"], rollMiB)
	}

	p("\n### Per tick\n\n")
	p("Milliseconds per tick, queries and the building of the answers included (charts excluded). *API set*: the four\n")
	p("requests (a)–(d). *hub set*: what `internal/live` runs per tick for the same view, two queries (`live.ExecutiveQueries`):\n")
	p("the grid with `compare=previous` and the wait histogram, whose groups give the KPIs, the grid and the consistency, and\n")
	p("the trend per moment without the histogram. Both sets run in every tick, in alternating order. *raw*: the API set from\n")
	p("`events`. *rows read*: rows ClickHouse reported reading for one tick. *counts equal*: every count of (a), current and previous period, is the same from the rollup and from `events`;\n")
	p("*wait off*: the rollup's histogram p50/p90 against the exact ones (bucket width 10%%, so at most 4.9%%).\n\n")
	p("| window | round | events | API set p50 / p90 / p99 | hub set p50 / p90 / p99 | raw p50 | raw / API | rows read: API / hub / raw | counts equal | wait p50 / p90 off | load |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, w := range c.Windows {
		for _, s := range r.Results {
			wr := s.window(w)
			if wr == nil {
				continue
			}
			api, hub, raw := totals(wr.API), totals(wr.Hub), rawTotals(wr.Raw)
			p("| %s | %d | %s | **%s** / %s / %s | **%s** / %s / %s | %s | %.0f× | %s / %s / %s | %s | %s / %s | %s |\n", w, s.Round, countName(s.Size),
				ms(benchkit.Percentile(api, 0.5)), ms(benchkit.Percentile(api, 0.9)), ms(benchkit.Percentile(api, 0.99)), ms(benchkit.Percentile(hub, 0.5)), ms(benchkit.Percentile(hub, 0.9)), ms(benchkit.Percentile(hub, 0.99)),
				ms(benchkit.Percentile(raw, 0.5)), float64(benchkit.Percentile(raw, 0.5))/float64(benchkit.Percentile(api, 0.5)),
				benchkit.Thousands(sum(wr.RowsAPI[:])), benchkit.Thousands(sum(wr.RowsHub[:])), benchkit.Thousands(sum(wr.RowsRaw[:])),
				yesNo(wr.Agree.CountsEqual), percent(wr.Agree.WaitP50), percent(wr.Agree.WaitP90), wr.LoadAvg)
		}
	}

	p("\n### Per query\n\n")
	p("p50 in ms of each query (SQL, transfer and scan in `store.Rollup`); *build*: the Go work of all answers of the set;\n")
	p("rows read and groups returned by each query of the API set in one tick.\n\n")
	p("| window | round | events | (a) KPIs+compare | (b) grid | (c) trends | (d) consistency | build | hub: grid / trend / build | rows read a/b/c/d | groups a/b/c/d | raw p50 a/b/c/d |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, w := range c.Windows {
		for _, s := range r.Results {
			wr := s.window(w)
			if wr == nil {
				continue
			}
			var q, raw, rows, groups [nQueries]string
			for i := range nQueries {
				q[i] = ms(benchkit.Percentile(queryTimes(wr.API, i), 0.5))
				raw[i] = ms(benchkit.Percentile(rawQueryTimes(wr.Raw, i), 0.5))
				rows[i], groups[i] = benchkit.Thousands(wr.RowsAPI[i]), strconv.Itoa(wr.GroupsAPI[i])
			}
			p("| %s | %d | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s | %s | %s |\n", w, s.Round, countName(s.Size), q[0], q[1], q[2], q[3],
				ms(benchkit.Percentile(buildTimes(wr.API), 0.5)), ms(benchkit.Percentile(queryTimes(wr.Hub, 0), 0.5)),
				ms(benchkit.Percentile(queryTimes(wr.Hub, 1), 0.5)), ms(benchkit.Percentile(buildTimes(wr.Hub), 0.5)),
				strings.Join(rows[:], " / "), strings.Join(groups[:], " / "), strings.Join(raw[:], " / "))
		}
	}

	p("\n### Growth with history\n\n")
	p("Target: the view's query set at most %s p50 per tick at %s events/hour; its p50 grows at most %.1f× from the\n", ms(targetP50), countName(c.Rate), targetGrowth)
	p("smallest to the largest history. A small history does not fill a long window: it holds %s events an hour, so\n", countName(c.Rate))
	p("below that size a window and the period it is compared with read fewer rows because they hold fewer events, not\n")
	p("because the history is shorter. *full windows*: the growth from the smallest size whose history spans the whole\n")
	p("window to the largest; *spanned by*: the sizes whose history spans the window / the window and its previous period.\n\n")
	p("| window | round | spanned by | API set p50 per size | growth %[1]s → %[2]s | full windows | hub set p50 per size | growth %[1]s → %[2]s | full windows |\n",
		countName(c.Sizes[0]), countName(c.Sizes[len(c.Sizes)-1]))
	p("|---|---|---|---|---|---|---|---|---|\n")
	for _, w := range c.Windows {
		length, _ := windowLength(w)
		for round := 1; round <= c.Repeat; round++ {
			var api, hub []time.Duration
			var perAPI, perHub, window, withPrevious []string
			full := -1 // index of the smallest size whose history spans the window
			for _, s := range r.Results {
				wr := s.window(w)
				if s.Round != round || wr == nil {
					continue
				}
				if s.Span >= length {
					window = append(window, countName(s.Size))
					if full < 0 {
						full = len(api)
					}
				}
				if s.Span >= 2*length {
					withPrevious = append(withPrevious, countName(s.Size))
				}
				a, h := benchkit.Percentile(totals(wr.API), 0.5), benchkit.Percentile(totals(wr.Hub), 0.5)
				api, hub = append(api, a), append(hub, h)
				perAPI, perHub = append(perAPI, countName(s.Size)+": "+ms(a)), append(perHub, countName(s.Size)+": "+ms(h))
			}
			if len(api) == 0 {
				continue
			}
			sizes := func(ns []string) string {
				if len(ns) == 0 {
					return "none"
				}
				return strings.Join(ns, ", ")
			}
			growth := func(ts []time.Duration) string {
				switch {
				case full < 0:
					return "– (no size spans it)"
				case full == len(ts)-1:
					return "– (only " + window[0] + ")"
				}
				return fmt.Sprintf("%s → %s: %.2f×", window[0], window[len(window)-1], float64(ts[len(ts)-1])/float64(ts[full]))
			}
			p("| %s | %d | %s / %s | %s | %.2f× | %s | %s | %.2f× | %s |\n", w, round, sizes(window), sizes(withPrevious),
				strings.Join(perAPI, ", "), float64(api[len(api)-1])/float64(api[0]), growth(api),
				strings.Join(perHub, ", "), float64(hub[len(hub)-1])/float64(hub[0]), growth(hub))
		}
	}
	for _, d := range r.Diagnoses {
		if d.Window == r.Diagnoses[0].Window {
			p("\n### Where the time goes\n\n")
			p("The queries of the view against variants of the rollup table, built from the real one in the %s database of the\n", countName(d.Size))
			p("last round (`CREATE TABLE probe_… AS …`, `INSERT … SELECT` merging the states), at the end of its history, each\n")
			p("variant in turn, %d times; p50 in ms of the query alone (SQL, transfer, reading the blocks). A 10 s rollup answers\n", d.Iters)
			p("a window aligned to its step. *API set* ≈ a + 2 b + c (d is b's query); *hub set*: the hub's two queries, grid + trend.\n")
		}
		p("\nWindow %s:\n\n", d.Window)
		p("| variant | (a) KPIs+compare | (b, d) grid | (c) trend | API set | hub set | rows read a / b / c / hub |\n|---|---|---|---|---|---|---|\n")
		for i, pr := range d.Probes {
			t := d.P50[i]
			p("| %s | %s | %s | %s | **%s** | **%s** | %s / %s / %s / %s |\n", pr.name, ms(t[0]), ms(t[1]), ms(t[2]),
				ms(t[0]+2*t[1]+t[2]), ms(t[3]+t[4]), benchkit.Thousands(d.Rows[i][0]), benchkit.Thousands(d.Rows[i][1]), benchkit.Thousands(d.Rows[i][2]), benchkit.Thousands(d.Rows[i][3]+d.Rows[i][4]))
		}
		for _, s := range d.Skip {
			p("\nLeft out: %s\n", s)
		}
	}
	if r.Export != nil {
		r.Export.markdown(p)
	}
	return b.String()
}

// partTables are the tables whose parts the loading table counts, rollupTables those whose rows
// it shows.
var (
	partTables   = []string{"events", "overview_1s", "overview_10s", "overview_30s", "overview_1m", "overview_2m", "overview_30m", "overview_1h", "detail_1m", "detail_1h"}
	rollupTables = []string{"overview_1s", "overview_10s", "overview_30s", "overview_1m", "overview_2m", "overview_30m", "detail_1m"}
)

func (s sizeResult) window(name string) *windowResult {
	for i := range s.Windows {
		if s.Windows[i].Name == name {
			return &s.Windows[i]
		}
	}
	return nil
}

func totals(ts []tickTimes) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.total()
	}
	return out
}

func queryTimes(ts []tickTimes, q int) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.Query[q]
	}
	return out
}

func buildTimes(ts []tickTimes) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		for _, d := range t.Build {
			out[i] += d
		}
	}
	return out
}

func rawTotals(ts [][nQueries]time.Duration) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		for _, d := range t {
			out[i] += d
		}
	}
	return out
}

func rawQueryTimes(ts [][nQueries]time.Duration, q int) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t[q]
	}
	return out
}

func sum(xs []uint64) uint64 {
	var s uint64
	for _, x := range xs {
		s += x
	}
	return s
}

func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	if f >= 100 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

func percent(f float64) string {
	if math.IsNaN(f) {
		return "–"
	}
	return strconv.FormatFloat(100*f, 'f', 1, 64) + "%"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

func joinSizes(ns []uint64) string {
	var s []string
	for _, n := range ns {
		s = append(s, countName(n))
	}
	return strings.Join(s, ", ")
}
