package ingestbench

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/config"
)

// Targets of the ingest issue.
const (
	targetRatio     = 0.8
	targetP99       = 250 * time.Millisecond
	targetOfferRate = 20_000
	// memoryGrowthLimit: memory counts as bounded when the peak RSS of the most concurrent
	// overload pass is at most this many times that of the least concurrent one.
	memoryGrowthLimit = 1.5
	// memoryLimitMargin: the server's peak RSS in overload may exceed its memory limit
	// (-memory-limit, a soft limit of the Go runtime's own memory) by this share, for what the
	// runtime does not count (the binary's pages, C libraries).
	memoryLimitMargin = 0.10
)

// serverMemoryLimit is the memory limit of the server the bench starts, in KiB like the RSS
// figures: GOMEMLIMIT when set (it passes on to the child), else the server's default
// -memory-limit. 0: none.
func serverMemoryLimit() int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		// The runtime parsed it for this process too; reading it back avoids a second parser.
		if n := debug.SetMemoryLimit(-1); n != math.MaxInt64 {
			return n >> 10
		}
		return 0
	}
	return int64(config.Default().MemoryLimit) >> 10
}

func renderIngest(env *benchEnv, o *ingestOptions, m benchkit.Machine, clickhouse, chFS string, runs []ingestRun, levels []int, bodyBytesPerEvent float64, chVisible bool) string {
	var b strings.Builder
	d := config.Default()
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("Sustained ingest through HTTP against a bare clickhouse-go batch insert of the same %s events into the same\n", benchkit.Thousands(o.events))
	p("empty tables (raw `events` and every materialized view of the schema), in the same run; then the\n")
	p("acknowledgement latency at a fixed offered load, and overload against a small spool.\n\n")

	p("**Reading against the targets:** %s\n\n", verdict(o, runs, levels))

	// The table: one column per run.
	header := "| | "
	var cols []string
	for i := range runs {
		cols = append(cols, fmt.Sprintf("Run %d", i+1))
	}
	header += strings.Join(cols, " | ") + " |\n|---|" + strings.Repeat("---|", len(runs)) + "\n"
	p("%s", header)
	row := func(label string, cell func(r ingestRun) string) {
		cells := make([]string, len(runs))
		for i, r := range runs {
			cells[i] = cell(r)
		}
		p("| %s | %s |\n", label, strings.Join(cells, " | "))
	}
	bareLabel := fmt.Sprintf("`store.InsertEvents`, %s-row batches, one goroutine", benchkit.Thousands(o.batchRows))
	row(fmt.Sprintf("Bare driver: %s; median (range) of %d passes", bareLabel, o.rounds+1), func(r ingestRun) string { return rates(r.Bare) })
	row(fmt.Sprintf("HTTP: %s-event NDJSON requests, %d clients, server `-flush-rows %d`; median (range) of %d passes", benchkit.Thousands(o.requestEvents), o.clients, o.batchRows, o.rounds),
		func(r ingestRun) string { return rates(httpPasses(r.HTTP)) })
	row("**HTTP / bare**, each HTTP pass against the mean of the bare passes on either side: median (range); target ≥ "+fmt.Sprintf("%.2f", targetRatio), func(r ingestRun) string {
		return ratioRange(ratios(r))
	})
	if o.ownCPU {
		own := "ClickHouse on a CPU of its own (CPU 0; the load generator and the server on the other)"
		row(own+": bare driver, median (range) / HTTP, median (range)", func(r ingestRun) string {
			if len(r.OwnCPU.HTTP) == 0 {
				return "not run"
			}
			return rates(r.OwnCPU.Bare) + " / " + rates(httpPasses(r.OwnCPU.HTTP))
		})
		row("**HTTP / bare, "+own+"**: median (range); target ≥ "+fmt.Sprintf("%.2f", targetRatio), func(r ingestRun) string {
			return ratioRange(passRatios(r.OwnCPU.Bare, r.OwnCPU.HTTP))
		})
		row("CPU seconds per 1M events, "+own+", bare / HTTP (load generator / server / ClickHouse)", func(r ingestRun) string {
			if len(r.OwnCPU.HTTP) == 0 {
				return "not run"
			}
			return cpuPerM(sum(r.OwnCPU.Bare), o.server) + " / " + cpuPerM(sum(httpPasses(r.OwnCPU.HTTP)), o.server)
		})
	}
	row("HTTP: acknowledged (durable in the spool) events/s, until the last 202; median of the passes", func(r ingestRun) string {
		var xs []float64
		for _, h := range r.HTTP {
			xs = append(xs, float64(h.Events)/h.AckElapsed.Seconds())
		}
		return benchkit.Thousands(int(benchkit.Median(xs))) + " events/s"
	})
	row("Rows stored by each HTTP pass = events acknowledged new; retries after 503", func(r ingestRun) string {
		ok, retries := true, int64(0)
		for _, h := range r.HTTP {
			ok = ok && h.Rows == uint64(o.events) && h.Accepted == int64(o.events)
			retries += h.Retries
		}
		return fmt.Sprintf("%s (%s each); %d", yes(ok), benchkit.Thousands(o.events), retries)
	})
	row("HTTP server flushes: count per pass, mean rows, insert time as share of the passes", func(r ingestRun) string {
		f, elapsed := httpFlushes(r)
		if f.Count == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%d, %s, %.0f%%", f.Count/len(r.HTTP), benchkit.Thousands(f.Rows/f.Count), 100*f.Insert.Seconds()/elapsed.Seconds())
	})
	row("HTTP server flushes: events looked up in ClickHouse before their insert (share of the rows), flushes that looked up", func(r ingestRun) string {
		f, _ := httpFlushes(r)
		if f.Rows == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%s (%.1f%%), %d of %d", benchkit.Thousands(f.LookedUp), 100*float64(f.LookedUp)/float64(f.Rows), f.Lookups, f.Count)
	})
	row("HTTP server flushes: mean insert time / mean rest of a flush cycle (lookup, gathering)", func(r ingestRun) string {
		f, elapsed := httpFlushes(r)
		return flushTimes(f, elapsed)
	})
	row("HTTP request time, closed loop: p50 (median pass) / p99 (worst pass)", func(r ingestRun) string {
		var p50 []float64
		var p99 time.Duration
		for _, h := range r.HTTP {
			p50 = append(p50, float64(h.Request.P50))
			p99 = max(p99, h.Request.P99)
		}
		return ms(time.Duration(benchkit.Median(p50))) + " / " + ms(p99)
	})
	row("Context: bare + a duplicate lookup of every event of every batch (`store.ExistingKeys`, as the drainer did before it kept the stored keys), one pass", func(r ingestRun) string { return rate(r.BareLookup) })
	row("Context: HTTP (median) / (bare + duplicate lookup of every event)", func(r ingestRun) string {
		return fmt.Sprintf("%.2f", benchkit.Median(rateList(httpPasses(r.HTTP)))/r.BareLookup.rate())
	})
	if o.bigBatchRows > 0 {
		row(fmt.Sprintf("Context: bare driver, %s-row batches, one pass", benchkit.Thousands(o.bigBatchRows)), func(r ingestRun) string { return rate(r.BareBig) })
	}
	row("Other clients' queries on the shared ClickHouse server during the throughput passes", func(r ingestRun) string {
		var n int64
		var d time.Duration
		for _, t := range append(slices.Clone(r.Bare), httpPasses(r.HTTP)...) {
			n += t.Others
			d += t.Elapsed
		}
		return fmt.Sprintf("%.0f/s", float64(n)/d.Seconds())
	})
	cpuNote := "load generator / server / ClickHouse"
	if !chVisible {
		cpuNote = "load generator / server / ClickHouse (not visible)"
	}
	row("CPU seconds per 1M events, bare ("+cpuNote+")", func(r ingestRun) string { return cpuPerM(sum(r.Bare), o.server) })
	row("CPU seconds per 1M events, HTTP ("+cpuNote+")", func(r ingestRun) string { return cpuPerM(sum(httpPasses(r.HTTP)), o.server) })

	interval := o.latencyInterval()
	row(fmt.Sprintf("**Ack latency**, open loop, %s events/s offered (%.0f req/s × %d events, %s): p50 / p90 / p99 / max (target p99 ≤ 250 ms)",
		benchkit.Thousands(int(float64(o.latencyRequestEvents)/interval.Seconds())), 1/interval.Seconds(), o.latencyRequestEvents, o.latencyDuration),
		func(r ingestRun) string {
			a := r.Latency.Ack
			return fmt.Sprintf("%s / %s / **%s** / %s", ms(a.P50), ms(a.P90), ms(a.P99), ms(a.Max))
		})
	row("Latency pass: answers; acknowledged events/s; latest send behind schedule", func(r ingestRun) string {
		return fmt.Sprintf("%s; %s/s; %s", r.Latency.Statuses, benchkit.Thousands(int(r.Latency.Achieved)), ms(r.Latency.MaxSendLag))
	})
	row("Latency pass: why requests were refused (first answer of each status); server warnings and errors logged", func(r ingestRun) string {
		why := r.Latency.Statuses.why()
		if why == "" {
			why = "none refused"
		}
		f := r.Latency.Flushes
		logged := "none logged"
		if f.Problems > 0 {
			logged = fmt.Sprintf("%d logged, first: %s", f.Problems, f.FirstProblem)
		}
		return strings.ReplaceAll(why+"; "+logged, "|", "\\|")
	})
	row("Latency pass: flushes, mean rows; CPU s of server / ClickHouse per s", func(r ingestRun) string {
		f := r.Latency.Flushes
		mean := 0
		if f.Count > 0 {
			mean = f.Rows / f.Count
		}
		s := r.Latency.Elapsed.Seconds()
		return fmt.Sprintf("%d, %s; %.2f / %.2f", f.Count, benchkit.Thousands(mean), r.Latency.CPU.Server.Seconds()/s, r.Latency.CPU.ClickHouse.Seconds()/s)
	})
	row("Latency pass: mean insert time per flush / share of the pass (until every event was stored) spent inserting", func(r ingestRun) string {
		f := r.Latency.Flushes
		if f.Count == 0 || r.Latency.Stored <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%s / %.0f%%", ms(f.Insert/time.Duration(f.Count)), 100*f.Insert.Seconds()/r.Latency.Stored.Seconds())
	})
	row("Server peak RSS: HTTP throughput passes (highest) / latency pass", func(r ingestRun) string {
		var peak int64
		for _, h := range r.HTTP {
			peak = max(peak, h.PeakRSS)
		}
		return mib(peak) + " / " + mib(r.Latency.PeakRSS)
	})
	for i, c := range levels {
		row(fmt.Sprintf("**Overload**, %d unpaced clients × %s events, spool quota %d MiB, %s: offered / acknowledged events/s",
			c, benchkit.Thousands(o.requestEvents), o.overloadSpoolMiB, o.overloadDuration),
			func(r ingestRun) string {
				x := r.Overload[i]
				return fmt.Sprintf("%s / %s", benchkit.Thousands(int(x.Offered)), benchkit.Thousands(int(float64(x.Accepted)/x.Elapsed.Seconds())))
			})
		row(fmt.Sprintf("Overload %d: answers (202 / 503 / 429 / other)", c), func(r ingestRun) string {
			x := r.Overload[i].Statuses
			return fmt.Sprintf("%s / %s / %s / %s", benchkit.Thousands(x.get(202)), benchkit.Thousands(x.get(503)), benchkit.Thousands(x.get(429)), benchkit.Thousands(x.other(202, 503, 429)))
		})
		row(fmt.Sprintf("Overload %d: server RSS idle / peak / 3 s after; rows = distinct events acknowledged", c), func(r ingestRun) string {
			x := r.Overload[i]
			return fmt.Sprintf("%s / **%s** / %s; %s", mib(x.IdleRSS), mib(x.PeakRSS), mib(x.AfterRSS), yes(x.Rows == uint64(x.Distinct)))
		})
		row(fmt.Sprintf("Overload %d: next ordinary request", c), func(r ingestRun) string {
			x := r.Overload[i]
			if x.ProbeError != "" {
				return "failed: " + x.ProbeError
			}
			return fmt.Sprintf("%d in %s", x.ProbeCode, ms(x.ProbeTime))
		})
	}
	row("Load average (1 min) at start / end of the run", func(r ingestRun) string { return r.LoadStart + " / " + r.LoadEnd })

	p("\nMachine: %d CPUs (%s), %s RAM; ClickHouse %s (server's `version()`), its data on %s; %s; commit %s; %s.\n",
		m.CPUs, m.CPUModel, m.RAM, clickhouse, chFS, m.Go, m.Commit, m.Date.Format("2006-01-02 15:04 UTC"))
	p("Load generator, server and ClickHouse share these cores, and other work may have run at the same time (see the load average).\n\n")
	p("Command (from the module root):\n\n```sh\neval \"$(scripts/clickhouse.sh env)\"\n%s\n```\n\n", env.command)

	serverHow := "`truthboard serve` as a child process built from `cmd/truthboard` (memory and CPU are the server's own, read from `/proc/<pid>`)"
	if o.server == modeInProcess {
		serverHow = "in-process server (same wiring as `truthboard serve`); RSS and CPU figures are of the whole benchmark process, client and event pool included"
	}
	p("How it is measured:\n\n")
	p("- Events: %s from `internal/demo`'s simulator (steady rate, 1%% late, no duplicates: every event_id unique), validated; about %.0f bytes of NDJSON each.\n", benchkit.Thousands(max(o.events, int(o.latencyDuration/interval)*o.latencyRequestEvents)), bodyBytesPerEvent)
	p("- Every pass starts from empty tables (`TRUNCATE TABLE` of the raw table and every rollup, in a fresh database `truthboard_bench_<random>` dropped at the end), after ClickHouse's merges stop.\n")
	p("- Server: %s; settings as defaults (`-flush-interval %s`, `-spool-max-bytes %d MiB`, `-max-events %s`) except `-flush-rows %d` and the rate limit, off. A 202 means synced to the spool; the drainer inserts in batches of up to `-flush-rows`. Requests are encoded before timing.\n",
		serverHow, d.FlushInterval, d.SpoolMaxBytes>>20, benchkit.Thousands(d.MaxEvents), o.batchRows)
	p("- Throughput: an HTTP pass counts from its first request until ClickHouse holds every event (not until the last 202, which says durable in the spool), a bare pass from its first insert to its last (one goroutine, like the server's single drainer); bare and HTTP passes alternate (bare, HTTP, bare, …) after an unmeasured warm-up, and each HTTP pass is compared with the bare passes on either side. The bare path has no duplicate lookup and no spool; the HTTP path syncs every request to the spool, and its drainer asks ClickHouse only about the events it cannot rule out as new (the first batch after the start, late events, keys it holds; the flush rows count them); the context rows show what a lookup of every event costs.\n")
	if o.ownCPU {
		p("- ClickHouse on a CPU of its own: the same alternating passes again with every thread of the ClickHouse server on CPU 0 alone and the load generator and the server (this process and its children) on the other CPU (`sched_setaffinity`, as `taskset -a -p`), so that neither takes CPU from the other, as when ClickHouse has a machine of its own; ClickHouse gets all CPUs back afterwards. With both sharing two CPUs, the bare driver alone keeps them busy (ClickHouse's CPU per 1M events above), so there the ratio measures how much CPU the server's own work (HTTP, decoding, the spool, the drainer) takes from ClickHouse's inserts.\n")
	}
	p("- Latency: requests leave on a fixed schedule whatever the answers (open loop); each is timed from its scheduled send to its answer (the 202 comes once the events are synced to the spool), so a late client or server is counted, not hidden. The tables are empty when it starts.\n")
	p("- Overload: clients that ignore Retry-After and send the next request at once; peak RSS is sampled every 20 ms from `/proc/<pid>/status` (VmRSS). The rate limit is off in every pass, so a 429 is the one key meeting its share of the bodies in flight (`-max-inflight-bytes-per-key`) and a 503 the server's in-flight budget or the spool's quota; the server runs under its default memory limit (`-memory-limit`).\n")
	return b.String()
}

// flushTimes is the mean insert time of the server's flushes and the mean of the rest of the
// time between two flushes (the duplicate lookup, gathering requests, or waiting for them).
func flushTimes(f flushSnapshot, elapsed time.Duration) string {
	if f.Count == 0 {
		return "n/a"
	}
	insert := f.Insert / time.Duration(f.Count)
	rest := (elapsed - f.Insert) / time.Duration(f.Count)
	return ms(insert) + " / " + ms(rest)
}

// ratios compares each HTTP pass with the mean of the bare passes before and after it.
func ratios(r ingestRun) []float64 { return passRatios(r.Bare, r.HTTP) }

func ratio(r ingestRun) float64 { return benchkit.Median(ratios(r)) }

// passRatios compares each HTTP pass with the mean of the bare passes before and after it:
// bare[i] and bare[i+1] for http[i].
func passRatios(bare []throughput, http []httpResult) []float64 {
	var xs []float64
	for i, h := range http {
		xs = append(xs, h.rate()/((bare[i].rate()+bare[i+1].rate())/2))
	}
	return xs
}

func ratioRange(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	return fmt.Sprintf("**%.2f** (%.2f–%.2f)", benchkit.Median(xs), slices.Min(xs), slices.Max(xs))
}

func httpPasses(hs []httpResult) []throughput {
	var ts []throughput
	for _, h := range hs {
		ts = append(ts, h.throughput)
	}
	return ts
}

// httpFlushes sums the flushes of every HTTP pass, and the passes' time.
func httpFlushes(r ingestRun) (flushSnapshot, time.Duration) {
	var f flushSnapshot
	var d time.Duration
	for _, h := range r.HTTP {
		f.Count += h.Flushes.Count
		f.Rows += h.Flushes.Rows
		f.Insert += h.Flushes.Insert
		d += h.Elapsed
	}
	return f, d
}

func sum(ts []throughput) throughput {
	var t throughput
	for _, x := range ts {
		t.Events += x.Events
		t.Elapsed += x.Elapsed
		t.CPU.Bench += x.CPU.Bench
		t.CPU.Server += x.CPU.Server
		t.CPU.ClickHouse += x.CPU.ClickHouse
		t.Others += x.Others
	}
	return t
}

func rateList(ts []throughput) []float64 {
	var xs []float64
	for _, t := range ts {
		xs = append(xs, t.rate())
	}
	return xs
}

// rates is the median and range of the passes' rates.
func rates(ts []throughput) string {
	xs := rateList(ts)
	return fmt.Sprintf("%s events/s (%s–%s)", benchkit.Thousands(int(benchkit.Median(xs))), benchkit.Thousands(int(slices.Min(xs))), benchkit.Thousands(int(slices.Max(xs))))
}

// verdict is the one-line reading of every run against the targets.
func verdict(o *ingestOptions, runs []ingestRun, levels []int) string {
	var ratios, p99s []string
	ratioMet, p99Met := true, true
	// A run meets the ratio when its median HTTP pass does.
	memMet, refusals := true, true
	limit := serverMemoryLimit()
	var memNotes []string
	var ownRatios []string
	ownMet := true
	for _, r := range runs {
		ratios = append(ratios, fmt.Sprintf("%.2f", ratio(r)))
		ratioMet = ratioMet && ratio(r) >= targetRatio
		if own := passRatios(r.OwnCPU.Bare, r.OwnCPU.HTTP); len(own) > 0 {
			ownRatios = append(ownRatios, fmt.Sprintf("%.2f", benchkit.Median(own)))
			ownMet = ownMet && benchkit.Median(own) >= targetRatio
		}
		p99 := r.Latency.Ack.P99
		ok := p99 <= targetP99 && r.Latency.Statuses.other(202) == 0 && r.Latency.Ack.N == r.Latency.Requests
		p99s = append(p99s, ms(p99))
		p99Met = p99Met && ok
		if len(r.Overload) > 0 {
			lo, hi := r.Overload[0], r.Overload[len(r.Overload)-1]
			for _, x := range r.Overload {
				// 0: a connection closed after an early refusal (429) of a body still being sent.
				refusals = refusals && x.Statuses.other(202, 429, 503, 0) == 0 && x.Rows == uint64(x.Distinct) && x.ProbeCode == 202
				memMet = memMet && (limit == 0 || float64(x.PeakRSS) <= float64(limit)*(1+memoryLimitMargin))
			}
			growth := float64(hi.PeakRSS) / float64(max(lo.PeakRSS, 1))
			memMet = memMet && growth <= memoryGrowthLimit
			memNotes = append(memNotes, fmt.Sprintf("%s → %s", mib(lo.PeakRSS), mib(hi.PeakRSS)))
		}
	}
	ratioText := fmt.Sprintf("HTTP ≥ %.0f%% of the bare driver: **%s** (%s)", targetRatio*100, metText(ratioMet), strings.Join(ratios, ", "))
	if len(ownRatios) > 0 {
		ratioText = fmt.Sprintf("HTTP ≥ %.0f%% of the bare driver: with ClickHouse, the server and the load generator sharing the CPUs **%s** (%s), with ClickHouse on a CPU of its own **%s** (%s)",
			targetRatio*100, metText(ratioMet), strings.Join(ratios, ", "), metText(ownMet), strings.Join(ownRatios, ", "))
	}
	parts := []string{
		ratioText,
		fmt.Sprintf("p99 ack ≤ 250 ms at %s events/s offered, all acknowledged: **%s** (%s)", benchkit.Thousands(o.latencyRate), metText(p99Met), strings.Join(p99s, ", ")),
	}
	if len(levels) > 0 {
		mem := fmt.Sprintf("overload answered with 202, 429 or 503 only (or the connection closed after a 429, counted as transport errors), every acknowledged event stored once, service resumes: **%s**; peak RSS with %d → %d clients: %s, ",
			metText(refusals), levels[0], levels[len(levels)-1], strings.Join(memNotes, ", "))
		bound := "no memory limit"
		if limit > 0 {
			bound = fmt.Sprintf("within the server's memory limit of %s (+%.0f%%)", mib(limit), memoryLimitMargin*100)
		}
		mem += fmt.Sprintf("%s and growing less than %.1f×: **%s**", bound, memoryGrowthLimit, metText(memMet))
		parts = append(parts, mem)
	}
	return strings.Join(parts, "; ") + "."
}

func metText(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func rate(t throughput) string {
	return fmt.Sprintf("%s events/s (%.1f s)", benchkit.Thousands(int(t.rate())), t.Elapsed.Seconds())
}

func cpuPerM(t throughput, mode string) string {
	per := func(d time.Duration) string {
		if d == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f", d.Seconds()*1e6/float64(t.Events))
	}
	if mode == modeInProcess {
		return fmt.Sprintf("%s (bench+server) / %s", per(t.CPU.Bench), per(t.CPU.ClickHouse))
	}
	return fmt.Sprintf("%s / %s / %s", per(t.CPU.Bench), per(t.CPU.Server), per(t.CPU.ClickHouse))
}

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f ms", float64(d)/1e6)
}

func mib(kb int64) string {
	if kb <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", float64(kb)/1024)
}
