package livebench

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
)

// runResult is everything one run measured.
type runResult struct {
	Run       int
	Freshness freshResult
	Fanout    []fanoutResult
	Query     queryCost
}

// Targets of the live dashboards (the benchmark requirement).
const (
	targetFreshP99 = 1000 * time.Millisecond // with a 1 s tick
	targetRSS      = 300e6                   // bytes, with 5,000 screens
	targetLagP99   = 250 * time.Millisecond  // after the tick, with 5,000 screens
	targetClients  = 5000
)

func mb(b int64) string { return fmt.Sprintf("%.0f", float64(b)/1e6) }

func ms(x float64) string {
	switch {
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

func pct(x float64) string {
	if x < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", x)
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

// render writes the body of the "## Live" section.
func render(e *benchEnv, runs []runResult) string {
	var b strings.Builder
	o := e.o
	m := e.machine
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	p("Measured %s on %d CPUs (%s), %s RAM, Linux %s; ClickHouse %s on the same machine (%s); %s. ",
		e.started.Format("2006-01-02 15:04 MST"), m.CPUs, m.CPUModel, m.RAM, m.Kernel, e.chVersion, o.ch.Addr, m.Go)
	p("Tick %s; demo traffic requested at %g events/s in every phase (the demo's diurnal model scales it by the time of day: the measured rate is in the freshness table). ",
		o.tick, o.demoRate)
	p("%d run(s), all figures below; the verdicts take the worse run.\n\n", len(runs))
	p("```sh\neval \"$(scripts/clickhouse.sh env)\"\n%s\n```\n\n", e.command)
	p("The bench builds `./cmd/truthboard` and runs `truthboard serve` as a child process, a fresh one per phase (so each phase's peak RSS is its own), " +
		"on a free loopback port with `TRUTHBOARD_DEMO_RATE` demo traffic and the rate limit off, in a database `truthboard_lbench_<random>` dropped at the end. " +
		"Server CPU is the child's utime+stime from `/proc/<pid>/stat` over the measured window (100%% = one core); RSS is `VmRSS` at the end of the window and `VmHWM` (peak since start, dialling included) from `/proc/<pid>/status`. " +
		"ClickHouse queries come from the server's own counters, `GET /v1/stats`.\n\n")

	renderTargets(&b, e, runs)

	if hasFresh(runs) {
		p("### Freshness: event → screen, with demo traffic\n\n")
		p("A marker event is posted every %s (one request at a time, `occurred_at` = send time, a region no other event has); a screen subscribed to the executive view filtered to that region counts them in `data.kpis.events`. "+
			"**Freshness = time the screen receives the first message counting marker k − time marker k's POST was sent**: HTTP, batching and the ClickHouse insert (202 = committed), the wait for the next tick, the tick's queries, encoding and delivery. "+
			"\"Second covered\" is the looser figure a freshness badge shows: send → first message of the unfiltered executive 5m screen whose `newest_event` reaches the marker's second (demo events of that second may cover it first). "+
			"Milliseconds; p50 / p90 / p99 / max.\n\n", o.markerInterval)
		p("| run | markers (failed, unseen) | demo events/s | send → 202 p50 / p99 | 202 → tick p50 | tick → receive p50 / p99 | **freshness p50 / p90 / p99 / max** | second covered p50 / p99 | degraded msgs | feed ticks/s | live queries/s | server CPU %% | ClickHouse CPU %% | other processes CPU %% | server RSS MB |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range runs {
			f := r.Freshness
			p("| %d | %d (%d, %d) | %.0f | %s / %s | %s | %s / %s | **%s / %s / %s / %s** | %s / %s | %d | %.2f | %.1f | %s | %s | %s | %s |\n",
				r.Run, f.Markers, f.Failed, f.NotSeen, f.DemoRate, ms(f.Ack.P50), ms(f.Ack.P99), ms(f.AckToTick.P50),
				ms(f.TickToRecv.P50), ms(f.TickToRecv.P99), ms(f.Fresh.P50), ms(f.Fresh.P90), ms(f.Fresh.P99), ms(f.Fresh.Max),
				ms(f.Second.P50), ms(f.Second.P99), f.Degraded, f.TicksPerS, f.QueriesPerS, pct(f.CPU.Server), pct(f.CPU.ClickHouse), pct(f.CPU.Other), mb(f.Mem.RSS))
		}
		p("\n")
		if u := runs[len(runs)-1].Freshness.Update; u.Total > 0 {
			p("The update: what the last update of the unfiltered executive 5m view (run %d) was made of, in KB, and its size compressed with DEFLATE (what permessage-deflate sends):\n\n", runs[len(runs)-1].Run)
			p("| update | DEFLATE |")
			var sep strings.Builder
			sep.WriteString("|---|---|")
			var vals strings.Builder
			fmt.Fprintf(&vals, "| %.1f | %.1f |", float64(u.Total)/1e3, float64(u.Deflated)/1e3)
			for i, pt := range u.Parts {
				if i == 8 {
					break
				}
				p(" %s |", pt.Name)
				sep.WriteString("---|")
				fmt.Fprintf(&vals, " %.1f |", float64(pt.Bytes)/1e3)
			}
			p("\n%s\n%s\n\n", sep.String(), vals.String())
		}
	}

	if hasFanout(runs) {
		p("### Fan-out: screens on one view and spread over %d views\n\n", o.views)
		p("Screens connect %d at a time, then %s of warm-up, then %s measured. One view: every screen on the unfiltered executive view over 5 m (the TV wall's). "+
			"%d views: the executive view filtered to one region × product × segment each (5m window), screens assigned round-robin. "+
			"Baselines of the same run: 1 screen (one view), 1 screen per view (%d views). "+
			"**Lag = receive time − the message's `tick`**, over every message of every screen in the window; the tick is stamped before the feed's queries, so lag includes them. "+
			"\"Last screen\" is, per feed tick, the lag of the last screen to receive it; \"spread\" is last − first receive of one tick. "+
			"Skipped = seq gaps (updates replaced in a screen's latest-wins slot). Queries per feed tick (ClickHouse queries the hub ran ÷ feed ticks, from `GET /v1/stats`) are the executive view's query set and must not change with the number of screens; queries per tick are all feeds' queries per tick interval.\n\n",
			o.dialBatch, o.warmup, o.fanoutDuration, o.views, o.views)
		layoutOf := func(f fanoutResult) string {
			if f.baseline {
				return f.layout + " (baseline)"
			}
			return f.layout
		}
		p("Delivery:\n\n")
		p("| run | layout | screens | feeds | **lag p50 / p99 / max** ms | first screen p50 / p99 ms | last screen p99 ms | spread p99 ms | updates per screen per tick | skipped | dropped | KB per update | MB/s sent | queries per feed tick | queries per tick |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range runs {
			for _, f := range r.Fanout {
				p("| %d | %s | %d | %d | **%s / %s / %s** | %s / %s | %s | %s | %.2f | %d | %d | %.1f | %.1f | %.2f | %.1f |\n",
					r.Run, layoutOf(f), f.clients, f.Feeds, ms(f.Lag.P50), ms(f.Lag.P99), ms(f.Lag.Max),
					ms(f.FirstLag.P50), ms(f.FirstLag.P99), ms(f.LastLag.P99), ms(f.Spread.P99), f.PerTick, f.Skipped,
					f.Dropped+f.DialFailures, kbPer(f), float64(f.Bytes)/1e6/f.Window.Seconds(), f.PerFeedTick, f.PerTickAll)
			}
		}
		p("\nCost (server process unless said; Go heap and stacks from the server's GC trace, `GODEBUG=gctrace=1`: live heap and stacks after the window's last GC, largest heap goal):\n\n")
		p("| run | layout | screens | server CPU %% | **RSS / peak MB** | Go heap live / max goal / stacks MB | GCs | threads | dial s | bench CPU %% | ClickHouse CPU %% | other processes CPU %% |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range runs {
			for _, f := range r.Fanout {
				p("| %d | %s | %d | %s | **%s / %s** | %d / %d / %d | %d | %d | %.1f | %s | %s | %s |\n",
					r.Run, layoutOf(f), f.clients, pct(f.CPU.Server), mb(f.Mem.RSS), mb(f.Mem.HWM),
					f.HeapLive, f.MaxGoal, f.Stacks, f.GCs, f.Mem.Threads, f.DialTime.Seconds(),
					pct(f.CPU.Self), pct(f.CPU.ClickHouse), pct(f.CPU.Other))
			}
		}
		p("\n")
		if hasQueryCost(runs) {
			p("A feed tick's own cost, before any screen: the time from the tick to its frame being offered, measured after the run's fan-out phases with no server running, through a `live.Hub` in the bench's process on a `store.Store` like the server's (same pool of 8 ClickHouse connections) and the run's data, with in-process subscribers read at once. "+
				"Alone: the unfiltered 5m view (20 ticks), then 10 spread views one at a time (4 ticks each), at a 250 ms tick; in step: all %d spread views subscribed at once at the real tick (5 ticks), per tick the first and the last feed to offer its frame. Milliseconds.\n\n", o.views)
			p("| run | unfiltered view alone p50 / p99 | one spread view alone p50 / p99 | %d views in step: first p50 / last p50 / last max | queries per feed tick |\n|---|---|---|---|---|\n", o.views)
			for _, r := range runs {
				q := r.Query
				p("| %d | %s / %s | %s / %s | %s / %s / %s | %.2f |\n", r.Run, ms(q.OneView.P50), ms(q.OneView.P99),
					ms(q.Spread.P50), ms(q.Spread.P99), ms(q.BurstFirst.P50), ms(q.Burst.P50), ms(q.Burst.Max), q.PerFeedTick)
			}
			p("\n")
		}
		renderAdded(&b, runs)
	}

	renderReading(&b, e, runs)

	p("Caveats: the machine has %d cores shared by the server, ClickHouse and the load generator (the bench's own CPU is in the table: at 5,000 screens it reads and discards every message, parsing only its head, and its goroutines' scheduling delay counts in the measured lag, so lag figures are upper bounds for the server). "+
		"Server and screens talk over loopback, so the network adds nothing; a real network adds its RTT and the kernel's send buffers hide slow links only up to their size. "+
		"ClickHouse is %s here, with one small database, but its CPU column is the whole ClickHouse process, which other benchmarks and tests shared during the runs; other work on the machine during the run shows as noise between runs. Each phase's server starts fresh, its feeds all start within the first dial batch and so tick in step (a restart with screens reconnecting looks like this).\n",
		m.CPUs, e.chVersion)
	return b.String()
}

func kbPer(f fanoutResult) float64 {
	if f.Messages == 0 {
		return 0
	}
	return float64(f.Bytes) / 1e3 / float64(f.Messages)
}

func hasQueryCost(runs []runResult) bool {
	for _, r := range runs {
		if r.Query.OneView.N > 0 {
			return true
		}
	}
	return false
}

func hasFresh(runs []runResult) bool {
	for _, r := range runs {
		if r.Freshness.Markers > 0 || r.Freshness.Failed > 0 {
			return true
		}
	}
	return false
}

func hasFanout(runs []runResult) bool {
	for _, r := range runs {
		if len(r.Fanout) > 0 {
			return true
		}
	}
	return false
}

// renderTargets checks each target against the worse run.
func renderTargets(b *strings.Builder, e *benchEnv, runs []runResult) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Targets\n\n| target | measured (worst run) | verdict |\n|---|---|---|\n")
	if hasFresh(runs) {
		worst := 0.0
		notSeen := 0
		for _, r := range runs {
			worst = max(worst, r.Freshness.Fresh.P99)
			notSeen += r.Freshness.NotSeen + r.Freshness.Failed
		}
		ok := worst <= float64(targetFreshP99.Milliseconds()) && notSeen == 0
		note := ""
		if e.o.tick != time.Second {
			note = fmt.Sprintf(" (tick was %s, not 1 s: not comparable)", e.o.tick)
		}
		if notSeen > 0 {
			note += fmt.Sprintf("; %d markers failed or never shown", notSeen)
		}
		p("| event → screen freshness p99 ≤ 1.0 s with a 1 s tick (min tick %s, flush interval %s) and demo traffic | %s ms%s | %s |\n", e.o.minTick, e.o.flushInterval, ms(worst), note, verdict(ok))
	}
	if !hasFanout(runs) {
		p("\n")
		return
	}
	top := slices.Max(e.o.clients)
	label := "5,000"
	if top != targetClients {
		label = fmt.Sprintf("%d (not 5,000: the targets are for 5,000)", top)
	}
	type worst struct {
		hwm, rss         int64
		lag              float64
		skipped, dropped int
	}
	byLayout := map[string]*worst{}
	var layouts []string
	qOK := true
	var qNotes []string
	perFeed := -1.0 // the first phase's queries per feed tick: every other phase must match it
	for _, r := range runs {
		for _, f := range r.Fanout {
			if perFeed < 0 {
				perFeed = f.PerFeedTick
			}
			if f.clients == top && !f.baseline {
				w := byLayout[f.layout]
				if w == nil {
					w = &worst{}
					byLayout[f.layout] = w
					layouts = append(layouts, f.layout)
				}
				w.hwm, w.rss = max(w.hwm, f.Mem.HWM), max(w.rss, f.Mem.RSS)
				w.lag = max(w.lag, f.Lag.P99)
				w.skipped += f.Skipped
				w.dropped += f.Dropped + f.DialFailures
			}
			if math.Abs(f.PerFeedTick-perFeed) > 0.01 || f.Feeds != f.views {
				qOK = false
				qNotes = append(qNotes, fmt.Sprintf("run %d %s %d screens: %d feeds, %.2f per feed tick", r.Run, f.layout, f.clients, f.Feeds, f.PerFeedTick))
			}
		}
	}
	for _, l := range layouts {
		w := byLayout[l]
		p("| %s screens (%s) on one instance: RSS ≤ 300 MB (10⁶ bytes; peak VmHWM, dialling included) | peak %s MB, %s MB at the end of the window | %s |\n",
			label, l, mb(w.hwm), mb(w.rss), verdict(w.hwm <= targetRSS))
	}
	for _, l := range layouts {
		w := byLayout[l]
		extra := ""
		if w.skipped+w.dropped > 0 {
			extra = fmt.Sprintf("; %d updates skipped, %d screens lost", w.skipped, w.dropped)
		}
		p("| %s screens (%s): delivery lag p99 ≤ 250 ms after the tick | %s ms%s | %s |\n",
			label, l, ms(w.lag), extra, verdict(w.lag <= float64(targetLagP99.Milliseconds()) && w.dropped == 0))
	}
	// Queries per tick by layout and screens, to show they follow the views only.
	// The first run shows the shape; the table has every run.
	var rows []string
	if len(runs) > 0 {
		for _, f := range runs[0].Fanout {
			rows = append(rows, fmt.Sprintf("%s/%s: %.1f", short(f.layout), screens(f.clients), f.PerTickAll))
		}
	}
	note := "queries per tick (run 1) " + strings.Join(rows, ", ") + fmt.Sprintf("; %.2f queries per feed tick in every phase, one feed per distinct view", perFeed)
	if !qOK {
		note = "differs: " + strings.Join(qNotes, "; ")
	}
	p("| ClickHouse queries per tick depend on the distinct views, not on the screens | %s | %s |\n\n", note, verdict(qOK))
}

func screens(n int) string {
	if n == 1 {
		return "1 screen"
	}
	return fmt.Sprintf("%d screens", n)
}

func short(layout string) string {
	if layout == "one view" {
		return "1 view"
	}
	return layout
}

// renderAdded shows what the screens add over the baseline of their layout, per 1,000 screens.
func renderAdded(b *strings.Builder, runs []runResult) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("What the screens add over the baseline of the same run and layout, per 1,000 screens (server only):\n\n")
	p("| run | layout | screens | + CPU %% per 1,000 | + peak RSS MB per 1,000 (KB per screen) | + lag p99 ms (whole phase) |\n|---|---|---|---|---|---|\n")
	for _, r := range runs {
		base := map[string]fanoutResult{}
		for _, f := range r.Fanout {
			if f.baseline {
				base[f.layout] = f
				continue
			}
			bl, ok := base[f.layout]
			if !ok {
				continue
			}
			k := float64(f.clients-bl.clients) / 1000
			if k <= 0 {
				continue
			}
			dRSS := float64(f.Mem.HWM - bl.Mem.HWM)
			p("| %d | %s | %d | %.1f | %.1f (%.0f) | %s |\n", r.Run, f.layout, f.clients,
				(f.CPU.Server-bl.CPU.Server)/k, dRSS/1e6/k, dRSS/1e3/(k*1000), ms(f.Lag.P99-bl.Lag.P99))
		}
	}
	p("\n")
}

// profileHeading starts the subsection the -profile-dir mode writes into the Live section; a
// normal run keeps it (it is replaced only by the next diagnostic run).
const profileHeading = "### Profile (diagnostic mode)"

// writeLiveSection writes the Live section with body, keeping its profile subsection (when
// keepProfile) or replacing that subsection with profile (when profile is not empty).
func writeLiveSection(file, body, profile string) error {
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	oldBody, _ := benchkit.Section(string(old), "Live")
	oldProfile, rest := cutSubsection(oldBody, profileHeading)
	if body == "" { // a diagnostic run: keep the rest of the section
		body = rest
	}
	if profile == "" {
		profile = oldProfile
	}
	if profile != "" {
		body = strings.TrimRight(body, "\n") + "\n\n" + strings.TrimRight(profile, "\n") + "\n"
	}
	return writeSection(file, "Live", body)
}

// cutSubsection cuts the "### " subsection with the heading out of body: it returns the
// subsection (heading included) and the body without it.
func cutSubsection(body, heading string) (sub, rest string) {
	lines := strings.SplitAfter(body, "\n")
	start, end := -1, len(lines)
	for i, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		if start < 0 {
			if t == heading {
				start = i
			}
			continue
		}
		if strings.HasPrefix(t, "### ") || strings.HasPrefix(t, "## ") {
			end = i
			break
		}
	}
	if start < 0 {
		return "", body
	}
	return strings.Join(lines[start:end], ""), strings.Join(lines[:start], "") + strings.Join(lines[end:], "")
}

// writeSection replaces the "## <title>" section of file with body under that heading.
func writeSection(file, title, body string) error {
	return benchkit.WriteSection(file, title, "## "+title+"\n\n"+strings.Trim(body, "\n")+"\n")
}
