package livebench

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// span formats the range of a figure over the runs: "812" or "790–812".
func span(vals []float64, f func(float64) string) string {
	if len(vals) == 0 {
		return "n/a"
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if f(lo) == f(hi) {
		return f(hi)
	}
	return f(lo) + "–" + f(hi)
}

func f0(x float64) string { return fmt.Sprintf("%.0f", x) }
func f1(x float64) string { return fmt.Sprintf("%.1f", x) }

// over collects a figure of every run's fan-out phase that matches.
func over(runs []runResult, match func(fanoutResult) bool, fig func(fanoutResult) float64) []float64 {
	var out []float64
	for _, r := range runs {
		for _, f := range r.Fanout {
			if match(f) {
				out = append(out, fig(f))
			}
		}
	}
	return out
}

// perScreen is what each screen adds over its layout's baseline, per run.
func perScreen(runs []runResult, layout string, clients int, fig func(fanoutResult) float64) []float64 {
	var out []float64
	for _, r := range runs {
		var base, at *fanoutResult
		for i := range r.Fanout {
			f := &r.Fanout[i]
			if f.layout != layout {
				continue
			}
			if f.baseline {
				base = f
			} else if f.clients == clients {
				at = f
			}
		}
		if base != nil && at != nil && at.clients > base.clients {
			out = append(out, (fig(*at)-fig(*base))/float64(at.clients-base.clients))
		}
	}
	return out
}

// renderReading writes the reading of the figures against the targets, and what would move
// the ones that are missed.
func renderReading(b *strings.Builder, e *benchEnv, runs []runResult) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Reading\n\n")
	ranges := "Ranges are over the runs. "
	if len(runs) == 1 {
		ranges = ""
	}
	p("%s", ranges)
	var missed []string

	if hasFresh(runs) {
		var p99, ack50, ack99, ackTick, tickRecv []float64
		for _, r := range runs {
			f := r.Freshness
			p99, ack50, ack99 = append(p99, f.Fresh.P99), append(ack50, f.Ack.P50), append(ack99, f.Ack.P99)
			ackTick, tickRecv = append(ackTick, f.AckToTick.P50), append(tickRecv, f.TickToRecv.P50)
		}
		ok := maxOf(p99) <= float64(targetFreshP99.Milliseconds())
		if !ok {
			missed = append(missed, "freshness")
		}
		p("**Freshness** p99 is %s ms against 1,000 ms: %s. The median marker spends %s ms until its 202 (synced to the spool), %s ms from the 202 until a tick that counts it starts (the writer's flush interval, %s by default, the insert into the raw table and its rollup views, and the wait for the tick), and %s ms from the tick to the screen (the tick's queries, encoding, delivery). "+
			"The 202's p99 is %s ms; the insert, which depends on how busy ClickHouse is, is the part that varies. ",
			span(p99, f0), verdict(ok), span(ack50, f0), span(ackTick, f0), "100 ms", span(tickRecv, f0), span(ack99, f0))
		var load []string
		for _, r := range runs {
			load = append(load, fmt.Sprintf("run %d: freshness p99 %s ms, send → 202 p99 %s ms, ClickHouse %s%%, other processes %s%%",
				r.Run, f0(r.Freshness.Fresh.P99), f0(r.Freshness.Ack.P99), pct(r.Freshness.CPU.ClickHouse), pct(r.Freshness.CPU.Other)))
		}
		p("How busy the machine was matters most here (%s).\n\n", strings.Join(load, "; "))
	}

	if hasFanout(runs) {
		top := slices.Max(e.o.clients)
		one := func(f fanoutResult) bool { return f.layout == "one view" && f.clients == top }
		spread := func(f fanoutResult) bool { return f.layout != "one view" && f.clients == top }
		spreadBase := func(f fanoutResult) bool { return f.layout != "one view" && f.baseline }
		hwm := func(f fanoutResult) float64 { return float64(f.Mem.HWM) / 1e6 }
		lag99 := func(f fanoutResult) float64 { return f.Lag.P99 }
		spreadLayout := fmt.Sprintf("%d views", e.o.views)

		cpuPer := perScreen(runs, "one view", top, func(f fanoutResult) float64 { return f.CPU.Server * 1000 })
		kbPer := perScreen(runs, "one view", top, func(f fanoutResult) float64 { return float64(f.Mem.HWM) / 1e3 })
		kbPerSpread := perScreen(runs, spreadLayout, top, func(f fanoutResult) float64 { return float64(f.Mem.HWM) / 1e3 })
		hwmAll := append(over(runs, one, hwm), over(runs, spread, hwm)...)
		rssOK := maxOf(hwmAll) <= targetRSS/1e6
		lagAll := append(over(runs, one, lag99), over(runs, spread, lag99)...)
		lagOK := maxOf(lagAll) <= float64(targetLagP99.Milliseconds())
		if !rssOK || maxOf(hwmAll) > 0.9*targetRSS/1e6 {
			missed = append(missed, "memory") // missed, or met with less than 10% to spare
		}
		if !lagOK {
			missed = append(missed, "lag")
		}

		p("**Cost per screen.** Each screen adds about %s%% of a core per 1,000 screens and %s KB of peak RSS (%s KB spread over %d views, where the feeds' own frames and garbage come on top) to the server. ",
			span(cpuPer, f1), span(kbPer, f0), span(kbPerSpread, f0), e.o.views)
		p("With %d screens the peak RSS is %s MB on one view and %s MB over %d views, against 300 MB: %s. ",
			top, span(over(runs, one, hwm), f0), span(over(runs, spread, hwm), f0), e.o.views, verdict(rssOK))
		p("The GC trace splits it: Go heap live %s MB after the last GC of the window (scannable goroutine stacks %s MB: two goroutines per screen, the connection's reader and its writer), with a heap goal up to %s MB: at the default GOGC the heap may grow to about twice what is live before the next GC, and that headroom is the largest part of RSS above the live heap; the rest is goroutine stacks, the runtime and the binary.\n\n",
			span(over(runs, one, func(f fanoutResult) float64 { return float64(f.HeapLive) }), f0),
			span(over(runs, one, func(f fanoutResult) float64 { return float64(f.Stacks) }), f0),
			span(over(runs, one, func(f fanoutResult) float64 { return float64(f.MaxGoal) }), f0))

		p("**Lag, one view.** With %d screens on one view, lag p99 is %s ms (1 screen: %s ms): the first screen has the tick after %s ms p99 (the tick's queries and encoding), and fanning the frame out to all screens takes %s ms p99 more (first → last screen). ",
			top, span(over(runs, one, lag99), f0),
			span(over(runs, func(f fanoutResult) bool { return f.layout == "one view" && f.baseline }, lag99), f0),
			span(over(runs, one, func(f fanoutResult) float64 { return f.FirstLag.P99 }), f0),
			span(over(runs, one, func(f fanoutResult) float64 { return f.Spread.P99 }), f0))
		p("The server itself uses little CPU for that (%s%% of a core); the fan-out is as slow as the machine lets %d writer goroutines and %d reading screens run: with ClickHouse at %s%% and other processes at %s%% of the 2 cores, they wait for a CPU.\n\n",
			span(over(runs, one, func(f fanoutResult) float64 { return f.CPU.Server }), f0), top, top,
			span(over(runs, one, func(f fanoutResult) float64 { return f.CPU.ClickHouse }), f0),
			span(over(runs, one, func(f fanoutResult) float64 { return f.CPU.Other }), f0))

		p("**Lag, %d views.** Here the queries set the lag, not the screens: with one screen per view lag p99 is already %s ms, with %d screens %s ms. The %d feeds tick in step and their %s queries per tick queue on the server's pool of 8 ClickHouse connections and on ClickHouse's share of the CPUs. ",
			e.o.views, span(over(runs, spreadBase, lag99), f0), top, span(over(runs, spread, lag99), f0), e.o.views,
			span(over(runs, spreadBase, func(f fanoutResult) float64 { return f.PerTickAll }), f0))
		if hasQueryCost(runs) {
			var alone, burst []float64
			for _, r := range runs {
				alone, burst = append(alone, r.Query.Spread.P50), append(burst, r.Query.Burst.P50)
			}
			p("The bench reproduces it without a server or a WebSocket (the tick-cost table): one spread view's tick takes %s ms alone, but when the %d views tick in step the last frame is ready %s ms after the tick (median of 5 ticks).", span(alone, f0), e.o.views, span(burst, f0))
		}
		p(" Lag p99 with %d screens against 250 ms, both layouts: %s.\n\n", top, verdict(lagOK))

		var qpt []string
		for _, f := range runs[0].Fanout {
			qpt = append(qpt, fmt.Sprintf("%.1f (%s, %s)", f.PerTickAll, short(f.layout), screens(f.clients)))
		}
		p("**Queries per tick** follow the distinct views only: %s per feed tick in every phase, and per tick interval %s. No screen ran a query of its own. Skipped updates: %d, screens lost: %d in all phases.\n\n",
			span(over(runs, func(fanoutResult) bool { return true }, func(f fanoutResult) float64 { return f.PerFeedTick }), func(x float64) string { return fmt.Sprintf("%.2f", x) }),
			strings.Join(qpt, ", "),
			int(sumOf(over(runs, func(fanoutResult) bool { return true }, func(f fanoutResult) float64 { return float64(f.Skipped) }))),
			int(sumOf(over(runs, func(fanoutResult) bool { return true }, func(f fanoutResult) float64 { return float64(f.Dropped + f.DialFailures) }))))
	}

	if len(missed) == 0 {
		return
	}
	p("**What would change the missed or nearly missed targets** (suggestions for the code outside this bench, which the bench does not change):\n\n")
	has := func(s string) bool {
		for _, m := range missed {
			if m == s {
				return true
			}
		}
		return false
	}
	if has("lag") {
		p("- *Queries, many views* (`internal/live/hub.go`): feeds that start together tick together. Start each feed's ticker after an offset within the tick (e.g. a hash of `sub.Key` modulo `Tick`, or the time the feed was created modulo `Tick` kept as its phase) so that many feeds' queries spread over the tick instead of queueing at its start; a tick's queries alone take the \"alone\" time above, so the lag of every feed would fall back towards it as long as all feeds' queries fit in one tick. " +
			"Beyond that, share queries between feeds: feeds with the same window and table differ only in their filters, so one query grouped by the filter columns (region, product, segment, …) can answer all of them, and the queries per tick then follow the distinct windows rather than the distinct views. " +
			"Give the feeds their own bounded share of ClickHouse connections (a semaphore below `MaxOpenConns` 8 in `internal/store/store.go`), so that a burst of feed queries never makes the ingest writer wait for a connection: the 202 is part of freshness.\n")
		p("- *Fan-out, one view* (`internal/web/live.go`, `internal/live/client.go`): every screen's writer copies the same frame into its connection and the kernel copies it again. Encode each frame once for all screens with `websocket.NewPreparedMessage` and `conn.WritePreparedMessage` (fasthttp/websocket caches the framed bytes per frame), and with `websocket.Config{EnableCompression: true}` the DEFLATE of a frame is also computed once per frame rather than per screen; an update of the unfiltered view shrinks as the \"update\" table above shows. " +
			"Smaller updates help every screen: `data.grid` repeats what the heatmap carries, the trend lines resend the whole window every second, and figures are sent with float64's 16 digits where 4 are shown.\n")
		p("- *Lag as measured*: the message's `tick` is stamped before the tick's queries, so \"lag after the tick\" includes them. If the target means delivery after the figures are ready, stamp a second time (`computed`) after `buildView` and measure from that; the first-screen column above estimates the difference.\n")
	}
	if has("memory") {
		p("- *Memory* (deployment, `internal/web/web.go`, `internal/web/live.go`): the largest part above the live heap is the GC's headroom, so setting `GOMEMLIMIT` for the server (e.g. 250MiB in `Dockerfile`/`docker-compose.yml`) bounds RSS at the cost of more frequent GCs when close to it. Per screen, a hijacked fasthttp connection keeps its 4 KB read buffer (Fiber's `ReadBufferSize`) and its `RequestCtx` for its whole life, under the WebSocket's own 1 KB read and write buffers (`websocket.Config` defaults); a `WriteBufferPool` lets idle screens hold no write buffer. Each screen also has two goroutines (reader and writer) and their stacks; one writer per feed draining the screens that have a pending frame, with the same write deadline and slow-consumer rule, would remove one of them.\n")
	}
	if has("freshness") {
		p("- *Freshness*: the tick is the largest part. A feed could run an extra tick as soon as the writer commits a flush (a notification from `ingest.Writer` to the hub, coalesced to at most one extra tick per flush), which removes the wait for the tick for every feed at the cost of more queries under steady traffic; or the tick can be shortened for views that need it.\n")
	}
	p("\n")
}

func maxOf(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = math.Max(m, x)
	}
	return m
}

func sumOf(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}
