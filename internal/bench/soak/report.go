package soak

import (
	"fmt"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
)

// sectionTitle is the soak's "## " section of the benchmarks file.
const sectionTitle = "Soak"

// report is everything the soak measured.
type report struct {
	o         *options
	command   string
	started   time.Time
	machine   benchkit.Machine
	chVersion string
	// loadAverage is the machine's at the start and at the end of the load.
	loadAverage [2]string

	idle    sample   // after the server is ready, before any load
	samples []sample // under load, every -every; the last at its end

	load         loadTotals
	screens      screenTotals
	drain        drain
	stored       uint64 // rows after the server stopped
	warnings     int
	firstWarning string
}

// figure is one resource of the server that must stay flat.
type figure struct {
	name string
	// slack is absolute growth allowed on top of the margin: the Go runtime starts a thread
	// or two when a system call blocks, which is no leak.
	slack  int64
	value  func(sample) int64
	format func(int64) string
}

var figures = []figure{
	{"RSS, MiB", 0, func(s sample) int64 { return s.RSS }, func(v int64) string { return fmt.Sprintf("%.0f", float64(v)/(1<<20)) }},
	{"goroutines", 0, func(s sample) int64 { return s.Goroutines }, thousands},
	{"open files", 0, func(s sample) int64 { return s.OpenFiles }, thousands},
	{"threads", 2, func(s sample) int64 { return s.Threads }, thousands},
}

// judgement is a figure over the run against "flat".
type judgement struct {
	idle, base, end, min, max int64
	known                     bool // measured after the warm-up and at the end
	flat                      bool
}

// windowSamples is how many samples make the value after the warm-up and the value at the end:
// one sample of RSS lands anywhere on the Go heap's sawtooth between two collections, so each
// value is the median of a few (1.5 minutes at the default 30 s), which a leak still moves and
// a collection does not.
const windowSamples = 3

// windows are the samples whose median is the value after the warm-up and at the end: the
// first samples at or after the warm-up and the last ones, as many of each as fit apart.
func (r *report) windows() (base, end []sample) {
	after := r.samples[len(r.samples)-1:]
	for i, s := range r.samples {
		if s.At >= r.o.warmup {
			after = r.samples[i:]
			break
		}
	}
	k := max(1, min(windowSamples, len(after)/2))
	return after[:k], after[len(after)-k:]
}

func (r *report) judge(f figure) judgement {
	base, end := r.windows()
	j := judgement{idle: f.value(r.idle), base: median(base, f.value), end: median(end, f.value), min: -1, max: -1}
	for _, s := range r.samples {
		if v := f.value(s); v >= 0 && s.At >= base[0].At {
			if j.min < 0 || v < j.min {
				j.min = v
			}
			j.max = max(j.max, v)
		}
	}
	j.known = j.base >= 0 && j.end >= 0
	j.flat = j.known && float64(j.end) <= float64(j.base)*(1+r.o.margin)+float64(f.slack)
	return j
}

// median is the median of the figure over samples (the mean of the middle two of an even
// count), or -1 when a sample lacks it.
func median(samples []sample, value func(sample) int64) int64 {
	vs := make([]int64, 0, len(samples))
	for _, s := range samples {
		v := value(s)
		if v < 0 {
			return -1
		}
		vs = append(vs, v)
	}
	return benchkit.Median(vs)
}

// span says which samples a window holds, e.g. "2m0s–3m0s".
func span(w []sample) string {
	from, to := w[0].At.Round(time.Second), w[len(w)-1].At.Round(time.Second)
	if from == to {
		return from.String()
	}
	return from.String() + "–" + to.String()
}

// problems are the reasons the soak failed; none when it passed. A figure that could not be
// measured (goroutines before the server has /metrics) is reported, not failed.
func (r *report) problems() []string {
	var p []string
	for _, f := range figures {
		if j := r.judge(f); j.known && !j.flat {
			p = append(p, fmt.Sprintf("%s not flat: %s after the warm-up, %s at the end", f.name, f.format(j.base), f.format(j.end)))
		}
	}
	if int64(r.stored) != r.load.Accepted {
		p = append(p, fmt.Sprintf("%s rows stored for %s events acknowledged", thousands(int64(r.stored)), thousands(r.load.Accepted)))
	}
	return p
}

func (r *report) render() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	o, m := r.o, r.machine
	base, end := r.windows()

	p("## %s\n\n", sectionTitle)
	p("Measured %s on %d CPUs (%s), %s RAM, Linux %s; ClickHouse %s on the same machine; %s. "+
		"Load average (1 minute) %s at the start of the load, %s at its end.\n\n",
		r.started.UTC().Format("2006-01-02 15:04 MST"), m.CPUs, m.CPUModel, m.RAM, m.Kernel, r.chVersion, m.Go,
		r.loadAverage[0], r.loadAverage[1])
	p("```sh\neval \"$(scripts/clickhouse.sh env)\"\n%s\n```\n\n", r.command)
	p("`truthboard serve` runs as a child process on a loopback port, in a fresh database `soak_<pid>` (dropped at the end), "+
		"with every setting at its default but the credentials and the demo traffic (off). "+
		"For %s it is offered %s events/s of simulated customer journeys (`internal/demo`: steady, every `event_id` new), "+
		"cut into NDJSON requests of %d events as they fall due (every %s) and posted by %d keep-alive clients, each with its own ingest key (the default limit of requests per key stays on); "+
		"a request that finds every client busy and a second of requests queued is not sent, so the offered rate does not bend to the server. "+
		"Meanwhile %d WebSocket screens hold `GET /v1/live` open on %d views (the TV wall, the executive view over 5m, 15m for one region and 1h, the drill-down over 15m and filtered to voice and chat service contacts), "+
		"read every message whole, and reconnect with backoff (1 s doubling to 30 s, with jitter) when a connection ends or stays silent for %s. "+
		"Every %s the soak reads the server's RSS and threads (`/proc/<pid>/status`), open files (`/proc/<pid>/fd`), goroutines (`go_goroutines` of `GET /metrics`) and the rows stored. "+
		"After the load, it waits until the rows stored reach the events acknowledged or stop changing for %s (the server answers 202 once an event is in its local spool, and drains the spool into ClickHouse), "+
		"stops the server with SIGTERM and counts the rows once more.\n\n",
		o.duration, thousands(int64(o.rate)), o.batch, pacerTick, o.conns,
		o.clients, len(soakViews), screenReadTimeout, o.every, drainQuiet)

	flat := true
	for _, f := range figures {
		if j := r.judge(f); j.known && !j.flat {
			flat = false
		}
	}
	p("**Flat** (each figure at the end of the load at most %.0f%% above its value after %s of load, the warm-up in which the live feeds, "+
		"connection pools and Go heap reach their working size; threads 2 more besides; each value the median of %d samples, since one sample of RSS lands anywhere between two garbage collections): %s. "+
		"**Every acknowledged event stored once** (rows stored after the server stopped = events accepted in 202 answers): %s (%s rows, %s events).\n\n",
		100*o.margin, o.warmup, len(base), verdict(flat), verdict(int64(r.stored) == r.load.Accepted), thousands(int64(r.stored)), thousands(r.load.Accepted))

	p("| server | idle, before the load | after the warm-up (%s) | end (%s) | min / max after the warm-up | end / after warm-up | flat |\n",
		span(base), span(end))
	p("|---|---|---|---|---|---|---|\n")
	for _, f := range figures {
		j := r.judge(f)
		if !j.known {
			why := r.idle.GoroutinesWhy
			if last := end[len(end)-1]; last.GoroutinesWhy != "" {
				why = last.GoroutinesWhy
			}
			p("| %s | unknown | unknown | unknown | unknown | | not measured: %s |\n", f.name, why)
			continue
		}
		p("| %s | %s | %s | **%s** | %s / %s | %.2f | %s |\n", f.name, orUnknown(f, j.idle), f.format(j.base), f.format(j.end),
			orUnknown(f, j.min), orUnknown(f, j.max), float64(j.end)/float64(max(j.base, 1)), verdict(j.flat))
	}
	p("\n")

	l := r.load
	loadSeconds := end[len(end)-1].At.Seconds()
	ackRate := thousands(int64(float64(l.Accepted) / max(loadSeconds, 1)))
	p("| load | |\n|---|---|\n")
	p("| events offered (%s/s for %s) | %s |\n", thousands(int64(o.rate)), o.duration, thousands(l.Offered))
	p("| events sent; not sent (every client busy) | %s; %s (%.2f%%) |\n", thousands(l.Sent), thousands(l.Unsent), percent(l.Unsent, l.Offered))
	p("| requests; answers by status | %s; %s |\n", thousands(l.Requests), l.Answers)
	p("| **events acknowledged** (accepted in 202 answers); duplicates; rejected | **%s**; %s; %s |\n", thousands(l.Accepted), thousands(l.Duplicates), thousands(l.Rejected))
	p("| events of requests without a 202; the first answer of each status | %s; %s |\n", thousands(l.Refused), cell(orNone(l.Why)))
	p("| events acknowledged per second of load | %s |\n", ackRate)
	p("| **rows stored** after the server stopped | **%s** |\n", thousands(int64(r.stored)))
	if r.drain.Caught {
		p("| rows stored caught up with the events acknowledged | %s after the end of the load |\n", r.drain.Took.Round(100*time.Millisecond))
	} else {
		p("| rows stored caught up with the events acknowledged | no: they stopped changing %s after the end of the load |\n", r.drain.Took.Round(100*time.Millisecond))
	}
	p("| server warnings and errors logged | %d%s |\n", r.warnings, firstOf(r.firstWarning))
	p("\n")
	if share := percent(l.Unsent+l.Refused, l.Offered); share > 1 {
		p("The server took less than was offered: %.1f%% of the events offered were not sent or not acknowledged, so the load was %s events/s, not %s.\n\n",
			share, ackRate, thousands(int64(o.rate)))
	}

	sc := r.screens
	p("| live screens | |\n|---|---|\n")
	p("| screens; views | %d; %d |\n", o.clients, len(soakViews))
	p("| messages read; per screen per second; MB | %s; %.2f; %.0f |\n", thousands(sc.Messages),
		float64(sc.Messages)/float64(max(o.clients, 1))/max(loadSeconds, 1), float64(sc.Bytes)/1e6)
	p("| snapshots; degraded messages; error messages | %s; %s; %s |\n", thousands(sc.Snapshots), thousands(sc.Degraded), thousands(sc.ErrorMessages))
	p("| connections opened; failed | %s; %s%s |\n", thousands(sc.Dials), thousands(sc.DialFailures), firstOf(sc.FirstDialError))
	p("| connections that ended before the end of the load, by close code | %d%s |\n", sc.Ends, firstOf(sc.Closes))
	p("\n")

	p("Samples (%s):\n\n", sampleNote(len(r.samples), len(thin(r.samples))))
	p("| after | RSS MiB | goroutines | open files | threads | screens connected | events acknowledged | rows stored | data directory MiB |\n")
	p("|---|---|---|---|---|---|---|---|---|\n")
	rows := append([]sample{r.idle}, thin(r.samples)...)
	for i, s := range rows {
		at := s.At.Round(time.Second).String()
		if i == 0 {
			at = "idle"
		}
		p("| %s | %s | %s | %s | %s | %d | %s | %s | %.1f |\n", at, orUnknown(figures[0], s.RSS), orUnknown(figures[1], s.Goroutines),
			orUnknown(figures[2], s.OpenFiles), orUnknown(figures[3], s.Threads), s.Screens, thousands(s.Acknowledged),
			orUnknown(figure{format: thousands}, s.Stored), float64(s.DataDir)/(1<<20))
	}
	p("\nThe server, ClickHouse and the load generator share the machine's %d cores (and other work on it shows in the load average): "+
		"a figure that grows on a busy machine may be a backlog rather than a leak, so the samples show the rows stored beside the events acknowledged.\n", m.CPUs)
	return b.String()
}

// thin keeps at most 13 samples, evenly spaced, always the first and the last.
func thin(samples []sample) []sample {
	const most = 13
	if len(samples) <= most {
		return samples
	}
	out := make([]sample, 0, most)
	for i := range most {
		out = append(out, samples[i*(len(samples)-1)/(most-1)])
	}
	return out
}

func sampleNote(all, shown int) string {
	if all == shown {
		return "all of them"
	}
	return fmt.Sprintf("%d of %d, evenly spaced", shown, all)
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

func orUnknown(f figure, v int64) string {
	if v < 0 {
		return "unknown"
	}
	return f.format(v)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func firstOf(s string) string {
	if s == "" {
		return ""
	}
	return " (" + cell(s) + ")"
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

func percent(part, whole int64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// thousands writes n with commas between groups of three digits.
var thousands = benchkit.Thousands[int64]
