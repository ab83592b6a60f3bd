// Package browse is `truthboard-tools browse`: it drives the dashboards of a live Truthboard in
// headless chromium, for what the test suite cannot do in a few seconds:
//
//	truthboard-tools browse screenshots   PNGs of every view (make screenshots → docs/screenshots/)
//	truthboard-tools browse leakcheck     the TV wall's JS heap after -total against after -first
//
// Each run starts its own instance: bin/truthboard serve (-bin) on a free loopback port, with
// demo traffic (-rate events/s), against the ClickHouse at TRUTHBOARD_CLICKHOUSE_ADDR
// (make sets it from scripts/clickhouse.sh env) in a database of its own, which is dropped at
// the end. The browser is Debian's chromium with the flags of the browser tests.
//
// leakcheck fails (exit status 1) when the heap after -total, measured after a forced garbage
// collection, is more than -max-growth above the heap after -first; a usage error is
// benchkit.ErrUsage (exit status 2).
package browse

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/demo"
)

// options are the flags; each says which command uses it.
type options struct {
	bin      string
	ch       benchkit.ClickHouse
	chromium string
	rate     float64
	backfill time.Duration
	warmup   time.Duration
	out      string
	scale    float64
	first    time.Duration
	total    time.Duration
	rotate   string
	growth   float64
}

// Run is `truthboard-tools browse [flags] screenshots|leakcheck`.
func Run(ctx context.Context, args []string, _ *slog.Logger) error {
	var o options
	fs := flag.NewFlagSet("truthboard-tools browse", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "bin/truthboard", "the Truthboard binary to run (make build)")
	o.ch.AddFlags(fs)
	fs.StringVar(&o.chromium, "chromium", "/usr/bin/chromium", "the chromium binary (apt-get install chromium)")
	fs.Float64Var(&o.rate, "rate", 200, "demo events per second the instance sends itself (TRUTHBOARD_DEMO_RATE)")
	fs.DurationVar(&o.backfill, "backfill", 15*time.Minute, "screenshots: demo events of this long before the start, posted at once, so trends have a history (0: none)")
	fs.DurationVar(&o.warmup, "warmup", 30*time.Second, "screenshots: live demo traffic to wait for before the first capture")
	fs.StringVar(&o.out, "out", "docs/screenshots", "screenshots: folder of the PNGs")
	fs.Float64Var(&o.scale, "scale", 1, "screenshots: device scale factor")
	fs.DurationVar(&o.first, "first", time.Minute, "leakcheck: when the baseline heap is measured, after the page opened")
	fs.DurationVar(&o.total, "total", 10*time.Minute, "leakcheck: when the final heap is measured, after the page opened")
	fs.StringVar(&o.rotate, "rotate", "5s", "leakcheck: the TV wall's rotation (its rotate= parameter)")
	fs.Float64Var(&o.growth, "max-growth", 0.20, "leakcheck: the largest allowed growth of the heap from -first to -total (0.20 = 20%)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: truthboard-tools browse [flags] screenshots|leakcheck")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", benchkit.ErrUsage, err)
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "screenshots" && fs.Arg(0) != "leakcheck") {
		fs.Usage()
		return fmt.Errorf("%w: want screenshots or leakcheck", benchkit.ErrUsage)
	}
	if o.first <= 0 || o.total <= o.first {
		return fmt.Errorf("%w: -total must be longer than -first, and -first above 0", benchkit.ErrUsage)
	}
	if fs.Arg(0) == "screenshots" {
		return screenshots(ctx, o)
	}
	return leakcheck(ctx, o)
}

var errLeak = errors.New("the heap grew more than allowed")

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "truthboard-tools browse: "+format+"\n", args...)
}

// ---- the instance -------------------------------------------------------------------------

// instance is a running `truthboard serve` with demo traffic, on a database of its own.
type instance struct {
	url, admin, ingest string
	ch                 benchkit.ClickHouse
	database           string
	dir                string // data dir and log
	proc               *benchkit.Serve
}

func start(ctx context.Context, o options) (*instance, error) {
	dir, err := os.MkdirTemp("", "truthboard-browse-")
	if err != nil {
		return nil, err
	}
	in := &instance{
		admin:    auth.NewSecret("tba_browse_"),
		ingest:   auth.NewSecret("tbi_browse_"),
		ch:       o.ch,
		database: fmt.Sprintf("truthboard_browse_%d", time.Now().UnixNano()),
		dir:      dir,
	}
	in.proc, err = benchkit.StartServe(ctx, benchkit.ServeOptions{
		Bin:        o.bin,
		DataDir:    filepath.Join(dir, "data"),
		LogFile:    filepath.Join(dir, "serve.log"),
		ClickHouse: o.ch,
		Database:   in.database,
		IngestKeys: []string{in.ingest},
		AdminToken: in.admin,
		Flags:      []string{"-demo-rate", strconv.FormatFloat(o.rate, 'g', -1, 64)},
	})
	if err != nil {
		in.dropDatabase()
		return nil, err
	}
	in.url = in.proc.URL
	say("started %s serve at %s (database %s, log %s)", o.bin, in.url, in.database, in.proc.LogFile)
	return in, nil
}

// stop sends SIGTERM (the server flushes and stops), then drops the database.
func (in *instance) stop() {
	if err := in.proc.Stop(20 * time.Second); err != nil {
		say("%v", err)
	}
	if in.dropDatabase() {
		_ = os.RemoveAll(in.dir)
		say("stopped the instance and dropped database %s", in.database)
	}
}

// dropDatabase drops the instance's database, and says whether it could.
func (in *instance) dropDatabase() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := in.ch.DropDatabase(ctx, in.database); err != nil {
		say("%v", err)
		return false
	}
	return true
}

// backfill posts the demo events of the last d at once, through the ingest API, so that the
// trends have a history instead of the minutes the run lasted.
func (in *instance) backfill(ctx context.Context, d time.Duration, rate float64) error {
	cfg := demo.DefaultConfig()
	cfg.Rate = rate
	cfg.Seed = 2 // not the live demo's seed: other event ids
	now := time.Now()
	gen, err := demo.NewGenerator(cfg, now.Add(-d))
	if err != nil {
		return err
	}
	total := 0
	for {
		batch := gen.Due(now, 5000)
		if len(batch) == 0 {
			break
		}
		var body strings.Builder
		enc := json.NewEncoder(&body)
		for i := range batch {
			if err := enc.Encode(&batch[i]); err != nil {
				return err
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, in.url+"/v1/events", strings.NewReader(body.String()))
		req.Header.Set("Authorization", "Bearer "+in.ingest)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("backfill: %w", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("backfill: %s: %s", resp.Status, b)
		}
		total += len(batch)
	}
	say("backfilled %d demo events of the last %s", total, d)
	return nil
}

// ---- the browser --------------------------------------------------------------------------

// browser starts chromium with the flags of the browser tests (ENGINEERING.md).
func browser(ctx context.Context, path string) (context.Context, context.CancelFunc, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("%s: %w (apt-get install chromium)", path, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.WindowSize(1920, 1080),
		chromedp.Flag("hide-scrollbars", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		return nil, nil, fmt.Errorf("start %s: %w", path, err)
	}
	return bctx, func() { cancelBrowser(); cancelAlloc() }, nil
}

// tab is one page with the exceptions it threw and the hosts it asked for.
type tab struct {
	ctx    context.Context
	cancel context.CancelFunc
	errs   chan string
}

func openTab(bctx context.Context, u string, w, h int64, scale float64) (*tab, error) {
	ctx, cancel := chromedp.NewContext(bctx)
	t := &tab{ctx: ctx, cancel: cancel, errs: make(chan string, 64)}
	report := func(s string) {
		select {
		case t.errs <- s:
		default:
		}
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			report(fmt.Sprintf("exception: %s at %s:%d", msg, d.URL, d.LineNumber+1))
		}
	}); err != nil {
		cancel()
		return nil, err
	}
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(w, h, chromedp.EmulateScale(scale)),
		chromedp.Navigate(u),
	)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open %s: %w", u, err)
	}
	return t, nil
}

// check returns the first exception the page threw, if any.
func (t *tab) check() error {
	select {
	case e := <-t.errs:
		return errors.New(e)
	default:
		return nil
	}
}

// waitFor polls a JavaScript expression until it is truthy.
func (t *tab) waitFor(what, expr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		state, _ := chromedp.Run(t.ctx, chromedp.Evaluate[string](`document.body.dataset.live + ' ' + location.pathname`))
		return fmt.Errorf("waiting for %s: %w (page: %s)", what, err, state)
	}
	return nil
}

// ready is true when the page's data is fresh and every visible chart has been drawn.
const readyJS = `document.body.dataset.live === 'fresh' && !document.getElementById('no-echarts') &&
	[...document.querySelectorAll('[data-chart]')].filter(el => el.offsetParent !== null && el.clientHeight > 0)
		.every(el => el.querySelector('canvas, svg'))`

// ---- screenshots --------------------------------------------------------------------------

func screenshots(ctx context.Context, o options) error {
	in, err := start(ctx, o)
	if err != nil {
		return err
	}
	defer in.stop()
	if o.backfill > 0 {
		if err := in.backfill(ctx, o.backfill, o.rate); err != nil {
			return err
		}
	}
	say("waiting %s for live demo traffic", o.warmup)
	select {
	case <-time.After(o.warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	bctx, closeBrowser, err := browser(ctx, o.chromium)
	if err != nil {
		return err
	}
	defer closeBrowser()
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	q := "?token=" + in.admin
	shots := []struct {
		name, path string
		w, h       int64
		then       string // JavaScript run before the capture
	}{
		{"executive", "/executive" + q + "&window=15m", 1920, 1080, ""},
		{"drilldown", "/drilldown" + q + "&window=15m&moment=service&channel=voice", 1920, 1080, ""},
		{"tv-1080p", "/tv" + q + "&window=15m&rotate=0", 1920, 1080, ""},
		{"tv-1080p-heatmap", "/tv" + q + "&window=15m&rotate=0", 1920, 1080, "truthboard.show(1)"},
		{"tv-4k", "/tv" + q + "&window=15m&rotate=0", 3840, 2160, ""},
	}
	for _, s := range shots {
		t, err := openTab(bctx, in.url+s.path, s.w, s.h, o.scale)
		if err != nil {
			return err
		}
		err = t.waitFor("fresh data and drawn charts", readyJS, 30*time.Second)
		if err == nil && s.then != "" {
			err = chromedp.Do(t.ctx, chromedp.Evaluate[chromedp.Void](s.then))
			if err == nil {
				err = t.waitFor("the panel's charts", readyJS, 10*time.Second)
			}
		}
		if err == nil {
			// Let ECharts finish its animations and a few live updates land.
			time.Sleep(3 * time.Second)
			err = t.check()
		}
		var png []byte
		if err == nil {
			png, err = chromedp.Run(t.ctx, chromedp.CaptureScreenshot())
		}
		t.cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		file := filepath.Join(o.out, s.name+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			return err
		}
		say("wrote %s (%dx%d, %d KiB)", file, s.w, s.h, len(png)/1024)
	}
	return nil
}

// ---- leak check ---------------------------------------------------------------------------

// heap forces a full garbage collection in the page, then returns the used JS heap in bytes.
func (t *tab) heap() (float64, error) {
	return chromedp.Run(t.ctx, func(ctx context.Context, tg *chromedp.Target) (float64, error) {
		for range 2 { // a second pass collects what the first one's finalizers freed
			if _, err := cdp.Call(ctx, tg, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
				return 0, err
			}
		}
		u, err := cdp.Call(ctx, tg, runtime.GetHeapUsage, cdp.Empty{})
		return u.UsedSize, err
	})
}

func leakcheck(ctx context.Context, o options) error {
	in, err := start(ctx, o)
	if err != nil {
		return err
	}
	defer in.stop()
	bctx, closeBrowser, err := browser(ctx, o.chromium)
	if err != nil {
		return err
	}
	defer closeBrowser()
	opened := time.Now()
	t, err := openTab(bctx, in.url+"/tv?token="+in.admin+"&rotate="+o.rotate, 1920, 1080, 1)
	if err != nil {
		return err
	}
	defer t.cancel()
	if err := t.waitFor("fresh data", readyJS, 60*time.Second); err != nil {
		return err
	}
	say("TV wall open at %s/tv (rotate=%s); heap at %s and %s", in.url, o.rotate, o.first, o.total)

	sleepUntil := func(at time.Time) error {
		select {
		case <-time.After(time.Until(at)):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	type sample struct {
		at   time.Duration
		heap float64
		seq  float64
	}
	measure := func(at time.Duration) (sample, error) {
		if err := sleepUntil(opened.Add(at)); err != nil {
			return sample{}, err
		}
		if err := t.check(); err != nil {
			return sample{}, err
		}
		if err := t.waitFor("fresh data", `document.body.dataset.live === 'fresh'`, 10*time.Second); err != nil {
			return sample{}, err
		}
		h, err := t.heap()
		if err != nil {
			return sample{}, fmt.Errorf("heap: %w", err)
		}
		seq, _ := chromedp.Run(t.ctx, chromedp.Evaluate[float64](`(truthboard.live.last && truthboard.live.last.seq) || 0`))
		s := sample{at: at, heap: h, seq: seq}
		say("at %s: JS heap %.2f MiB after GC (live seq %.0f)", at, h/(1<<20), seq)
		return s, nil
	}
	base, err := measure(o.first)
	if err != nil {
		return err
	}
	// Samples every minute in between, for the record; the check compares the ends.
	for at := o.first + time.Minute; at < o.total; at += time.Minute {
		if _, err := measure(at); err != nil {
			return err
		}
	}
	end, err := measure(o.total)
	if err != nil {
		return err
	}
	if end.seq <= base.seq {
		return fmt.Errorf("the TV wall got no updates between %s and %s (seq %.0f → %.0f)", o.first, o.total, base.seq, end.seq)
	}
	ratio := end.heap / base.heap
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "TV wall JS heap after GC: %.2f MiB at %s, %.2f MiB at %s: ratio %.3f (limit %.2f); %.0f live updates\n",
		base.heap/(1<<20), o.first, end.heap/(1<<20), o.total, ratio, 1+o.growth, end.seq-base.seq)
	w.Flush()
	if ratio > 1+o.growth {
		return fmt.Errorf("%w: %.1f%% > %.0f%%", errLeak, (ratio-1)*100, o.growth*100)
	}
	return nil
}
