// Command truthboard-browse drives the dashboards of a live Truthboard in headless chromium, for
// what the test suite cannot do in a few seconds:
//
//	truthboard-browse screenshots   PNGs of every view (make screenshots → docs/screenshots/)
//	truthboard-browse leakcheck     the TV wall's JS heap after -total against after -first
//
// Each run starts its own instance: bin/truthboard serve (-bin) on a free loopback port, with
// demo traffic (-rate events/s), against the ClickHouse at TRUTHBOARD_CLICKHOUSE_ADDR
// (make sets it from scripts/clickhouse.sh env) in a database of its own, which is dropped at
// the end. The browser is Debian's chromium with the flags of the browser tests.
//
// leakcheck exits 1 when the heap after -total, measured after a forced garbage collection,
// is more than -max-growth above the heap after -first; 2 on a usage error.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/store"
)

// options are the flags; each says which command uses it.
type options struct {
	bin      string
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

func main() {
	var o options
	fs := flag.NewFlagSet("truthboard-browse", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "bin/truthboard", "the Truthboard binary to run (make build)")
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
		fmt.Fprintln(fs.Output(), "usage: truthboard-browse [flags] screenshots|leakcheck")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "screenshots" && fs.Arg(0) != "leakcheck") {
		fs.Usage()
		os.Exit(2)
	}
	if o.first <= 0 || o.total <= o.first {
		fmt.Fprintln(os.Stderr, "truthboard-browse: -total must be longer than -first, and -first above 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if fs.Arg(0) == "screenshots" {
		err = screenshots(ctx, o)
	} else {
		err = leakcheck(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "truthboard-browse:", err)
		os.Exit(1)
	}
}

var errLeak = errors.New("the heap grew more than allowed")

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "truthboard-browse: "+format+"\n", args...)
}

// ---- the instance -------------------------------------------------------------------------

// instance is a running `truthboard serve` with demo traffic, on a database of its own.
type instance struct {
	url, admin, ingest string
	chAddr, database   string
	dir                string // data dir and log
	cmd                *exec.Cmd
	exited             chan error
}

func secret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func start(ctx context.Context, o options) (*instance, error) {
	if _, err := os.Stat(o.bin); err != nil {
		return nil, fmt.Errorf("%s: %w (make build builds it)", o.bin, err)
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "truthboard-browse-")
	if err != nil {
		return nil, err
	}
	in := &instance{
		url:      "http://" + addr,
		admin:    secret("tba_browse_"),
		ingest:   secret("tbi_browse_"),
		chAddr:   os.Getenv("TRUTHBOARD_CLICKHOUSE_ADDR"),
		database: fmt.Sprintf("truthboard_browse_%d", time.Now().UnixNano()),
		dir:      dir,
		exited:   make(chan error, 1),
	}
	if in.chAddr == "" {
		in.chAddr = "127.0.0.1:9000"
	}
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	in.cmd = exec.Command(o.bin, "serve")
	in.cmd.Env = append(os.Environ(),
		"TRUTHBOARD_LISTEN="+addr,
		"TRUTHBOARD_CLICKHOUSE_ADDR="+in.chAddr,
		"TRUTHBOARD_CLICKHOUSE_DATABASE="+in.database,
		"TRUTHBOARD_DATA_DIR="+filepath.Join(dir, "data"),
		"TRUTHBOARD_ADMIN_TOKEN="+in.admin,
		"TRUTHBOARD_INGEST_KEYS="+in.ingest,
		fmt.Sprintf("TRUTHBOARD_DEMO_RATE=%g", o.rate),
	)
	in.cmd.Stdout, in.cmd.Stderr = logf, logf
	if err := in.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", o.bin, err)
	}
	go func() { in.exited <- in.cmd.Wait(); logf.Close() }()
	say("started %s serve at %s (database %s, log %s)", o.bin, in.url, in.database, logf.Name())

	// Ready when /readyz says ClickHouse answers.
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(in.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in, nil
			}
		}
		select {
		case err := <-in.exited:
			in.exited <- err
			in.stop()
			return nil, fmt.Errorf("truthboard serve exited (%v): see %s", err, logf.Name())
		case <-ctx.Done():
			in.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			in.stop()
			return nil, fmt.Errorf("truthboard serve not ready after 60 s: see %s", logf.Name())
		}
	}
}

// stop sends SIGTERM (the server flushes and stops), then drops the database.
func (in *instance) stop() {
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.exited:
	case <-time.After(20 * time.Second):
		say("truthboard serve did not stop within 20 s of SIGTERM: killing it")
		_ = in.cmd.Process.Kill()
		<-in.exited
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := store.Open(ctx, store.Options{Addr: in.chAddr, Database: in.database,
		User: os.Getenv("TRUTHBOARD_CLICKHOUSE_USER"), Password: os.Getenv("TRUTHBOARD_CLICKHOUSE_PASSWORD")})
	if err == nil {
		// Dropping a database that has taken 10 minutes of demo traffic can outlast the
		// driver's read timeout on ClickHouse 18.16 (about 15 s measured while tests ran):
		// the drop goes on in the server, so ask again.
		for attempt := 1; attempt <= 4; attempt++ {
			if err = db.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+in.database); err == nil {
				break
			}
			time.Sleep(5 * time.Second)
		}
		db.Close()
	}
	if err != nil {
		say("drop database %s: %v (drop it with: scripts/clickhouse.sh client --query 'DROP DATABASE %[1]s')", in.database, err)
		return
	}
	_ = os.RemoveAll(in.dir)
	say("stopped the instance and dropped database %s", in.database)
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
		.every(el => el.querySelector('canvas'))`

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
