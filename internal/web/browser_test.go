package web_test

// Browser tests of the dashboards: Debian's chromium, headless, driven by chromedp against a
// real server, ClickHouse and live feed. scripts/test.sh installs chromium.
//
// TRUTHBOARD_SCREENSHOT_DIR=/tmp scripts/test.sh -run TestDashboards ./internal/web/ saves a
// screenshot of each view there.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/truthboard/truthboard/internal/event"
)

const chromium = "/usr/bin/chromium"

// browser starts one headless chromium for the test; tabs are made with tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	ctx, _ := killableBrowser(t)
	return ctx
}

// killableBrowser starts a headless chromium like browser, and returns kill, which ends its
// process at once (as a TV switched off would).
func killableBrowser(t *testing.T) (_ context.Context, kill func()) {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is missing (%v): run scripts/test.sh, which installs Debian's chromium", chromium, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.WindowSize(1600, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start %s: %v", chromium, err)
	}
	kill = func() {
		cancelBrowser()
		cancelAlloc()
	}
	t.Cleanup(kill)
	return bctx, kill
}

// page is one tab, with every request it made and every error it logged.
type page struct {
	t    *testing.T
	ctx  context.Context
	mu   sync.Mutex
	req  []string
	errs []string
	// patience is how long wait polls; 10 s when zero.
	patience time.Duration
}

func openPage(t *testing.T, bctx context.Context, u string) *page {
	t.Helper()
	return openTab(t, bctx, u, 20*time.Second)
}

// openTab opens u in a new tab that lives for at most timeout.
func openTab(t *testing.T, bctx context.Context, u string, timeout time.Duration) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
	})
	p := &page{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, p.record); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	return p
}

func (p *page) record(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		p.req = append(p.req, e.Request.URL)
	case *network.EventWebSocketCreated:
		p.req = append(p.req, e.URL)
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		p.errs = append(p.errs, fmt.Sprintf("exception: %s at %s:%d", msg, d.URL, d.LineNumber+1))
	case *log.EventEntryAdded:
		// CSP violations and failed loads are logged here; a refused WebSocket while the
		// server is down is expected.
		if e.Entry.Level == log.EntryLevelError && !strings.Contains(e.Entry.Text, "WebSocket") {
			p.errs = append(p.errs, "log: "+e.Entry.Text+" "+e.Entry.URL)
		}
	}
}

// checkClean fails the test if the page logged errors or requested anything but 127.0.0.1.
func (p *page) checkClean() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		p.t.Errorf("page error: %s", e)
	}
	if len(p.req) == 0 {
		p.t.Errorf("no network request recorded")
	}
	for _, r := range p.req {
		u, err := url.Parse(r)
		if err != nil || u.Hostname() != "127.0.0.1" {
			p.t.Errorf("request to %q: every request must go to 127.0.0.1", r)
		}
	}
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatal(err)
	}
}

// wait polls a JavaScript expression until it is truthy.
func (p *page) wait(what, expr string) {
	p.t.Helper()
	patience := p.patience
	if patience == 0 {
		patience = 10 * time.Second
	}
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(patience), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		state, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.dataset.live + " " + location.href`))
		p.t.Fatalf("waiting for %s: %v (page: %s)", what, err, state)
	}
}

func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

func (p *page) screenshot(name string) {
	dir := os.Getenv("TRUTHBOARD_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Errorf("screenshot: %v", err)
	}
	b, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "truthboard-"+name+".png"), b, 0o644)
	}
	if err != nil {
		p.t.Errorf("screenshot: %v", err)
	}
}

// dashboardEvents are n events with every score, spread over moments, channels and regions.
func dashboardEvents(prefix string, n int, at time.Time) []string {
	var evs []string
	for i := range n {
		evs = append(evs, fmt.Sprintf(`{"event_id":"%s-%d","occurred_at":%q,"moment":%q,"channel":%q,`+
			`"touchpoint":"tp%d","csat":%d,"nps":%d,"ces":%d,"region":%q}`,
			prefix, i, at.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano),
			event.Moments[i%len(event.Moments)], event.Channels[(i/5)%4], i%3, 1+i%5, i%11, 1+i%7,
			[]string{"north", "south"}[i%2]))
	}
	return evs
}

type tile struct {
	Value, N, Delta string
}

const tilesJS = `Object.fromEntries([...document.querySelectorAll('.tile')].map(t => [t.dataset.kpi,
	{Value: t.querySelector('.value').textContent, N: t.querySelector('.n').textContent,
	 Delta: t.querySelector('.delta').textContent}]))`

// heatmapJS counts the heatmap's cells with a value, read from the chart itself.
const heatmapJS = `(() => { const el = document.querySelector('[data-chart="heatmap"]');
	const c = window.echarts && echarts.getInstanceByDom(el);
	if (!c || !el.querySelector('canvas, svg')) return 0;
	return c.getOption().series[0].data.filter(d => (d.value || d)[2] !== '-').length; })()`

func TestDashboards(t *testing.T) {
	s := startLive(t, 200*time.Millisecond, time.Second)
	now := time.Now().UTC().Truncate(time.Second)
	s.mustPost(t, jsonArray(dashboardEvents("prev", 30, now.Add(-7*time.Minute)))).accepted(t, 30, 0)
	s.mustPost(t, jsonArray(dashboardEvents("cur", 120, now.Add(-time.Minute)))).accepted(t, 120, 0)
	bctx := browser(t)
	q := "?token=" + adminToken

	t.Run("executive", func(t *testing.T) {
		p := openPage(t, bctx, s.url+"/executive"+q)
		p.wait("fresh figures", `document.body.dataset.live === 'fresh' && document.querySelector('.tile[data-kpi="events"] .value').textContent === '120'`)
		tiles := eval[map[string]tile](p, tilesJS)
		for _, k := range []string{"nps", "csat", "ces", "negative_rate"} {
			tl := tiles[k]
			if !strings.ContainsAny(tl.Value, "0123456789") || tl.N != "n = 120" {
				t.Errorf("tile %s = %+v, want a number with n = 120", k, tl)
			}
			if !strings.ContainsAny(tl.Delta, "▲▼±") {
				t.Errorf("tile %s delta %q, want a change against the previous period", k, tl.Delta)
			}
		}
		if cells := eval[int](p, heatmapJS); cells == 0 {
			t.Errorf("the heatmap has no cells with data: %s", eval[string](p, `JSON.stringify(echarts.getInstanceByDom(document.querySelector('[data-chart="heatmap"]')).getOption().series)`))
		}
		p.wait("the badge", `document.querySelector('#badge .label').textContent === 'Live'`)
		p.screenshot("executive")
		p.checkClean()
	})

	t.Run("drilldown", func(t *testing.T) {
		p := openPage(t, bctx, s.url+"/drilldown"+q+"&window=15m")
		p.wait("the heatmap", heatmapJS+` > 0 && document.querySelectorAll('#touchpoints tr[data-touchpoint]').length > 0`)
		p.screenshot("drilldown")
		// Click the first cell with data, where the chart draws it.
		cell := eval[struct {
			X, Y            float64
			Moment, Channel string
		}](p, `(() => { const el = document.querySelector('[data-chart="heatmap"]');
			const c = echarts.getInstanceByDom(el), o = c.getOption();
			const v = o.series[0].data.map(d => d.value || d).find(v => v[2] !== '-');
			const [x, y] = c.convertToPixel({seriesIndex: 0}, [v[0], v[1]]);
			const r = el.getBoundingClientRect();
			return {X: r.left + x, Y: r.top + y, Moment: o.yAxis[0].data[v[1]], Channel: o.xAxis[0].data[v[0]]}; })()`)
		p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-chart="heatmap"]').scrollIntoView({block: 'center'})`))
		cell = eval[struct {
			X, Y            float64
			Moment, Channel string
		}](p, fmt.Sprintf(`(() => { const el = document.querySelector('[data-chart="heatmap"]');
			const c = echarts.getInstanceByDom(el), o = c.getOption();
			const [x, y] = c.convertToPixel({seriesIndex: 0}, [o.xAxis[0].data.indexOf(%q), o.yAxis[0].data.indexOf(%q)]);
			const r = el.getBoundingClientRect();
			return {X: r.left + x, Y: r.top + y, Moment: %[2]q, Channel: %[1]q}; })()`, cell.Channel, cell.Moment))
		p.do(chromedp.MouseClickXY(cell.X, cell.Y))
		p.wait("the drill path in the URL", fmt.Sprintf(
			`new URLSearchParams(location.search).get('moment') === %q && new URLSearchParams(location.search).get('channel') === %q`,
			cell.Moment, cell.Channel))
		p.wait("the touchpoints of the cell", fmt.Sprintf(`(() => { const rows = [...document.querySelectorAll('#touchpoints tr[data-touchpoint]')];
			return rows.length > 0 && rows.every(r => r.dataset.moment === %q && r.dataset.channel === %q); })()`, cell.Moment, cell.Channel))
		if path := eval[string](p, `document.getElementById('path').textContent`); !strings.Contains(path, cell.Moment+" › "+cell.Channel) {
			t.Errorf("drill path %q, want it to show %s › %s", path, cell.Moment, cell.Channel)
		}
		// The window stays in the address, which can be shared; the credential never does.
		if got := eval[string](p, `new URLSearchParams(location.search).get('token') + ' ' + new URLSearchParams(location.search).get('window')`); got != "null 15m" {
			t.Errorf("token and window in the URL after the click: %q, want no token and window 15m", got)
		}
		p.do(chromedp.NavigateBack())
		p.wait("the way back up", `!new URLSearchParams(location.search).has('moment') && document.querySelector('select[name=moment]').value === '' && document.getElementById('path').textContent === 'All moments'`)
		p.wait("all moments again", `new Set([...document.querySelectorAll('#touchpoints tr[data-touchpoint]')].map(r => r.dataset.moment)).size > 1`)
		p.checkClean()
	})

	t.Run("tv", func(t *testing.T) {
		p := openPage(t, bctx, s.url+"/tv"+q+"&rotate=1s")
		p.wait("fresh figures", `document.body.dataset.live === 'fresh' && document.querySelector('.tile[data-kpi="csat"] .value').textContent.includes('%')`)
		p.wait("a rotation", `document.getElementById('panel-title').textContent !== 'Overview'`)
		p.do(chromedp.Evaluate[chromedp.Void](`truthboard.show(0)`))
		p.screenshot("tv")
		if n := eval[int](p, `document.querySelectorAll('button, input, select, a').length`); n != 0 {
			t.Errorf("the TV wall has %d controls, want none", n)
		}
		s.hub.Close() // every screen gets 1001; new connections find no feed
		p.wait("offline", `document.body.dataset.live === 'offline'`)
		got := eval[struct {
			Greyed        bool
			Label, Detail string
			Value         string
		}](p, `({Greyed: document.body.classList.contains('greyed'),
			Label: document.querySelector('#badge .label').textContent,
			Detail: document.querySelector('#badge .detail').textContent,
			Value: document.querySelector('.tile[data-kpi="csat"] .value').textContent})`)
		if !got.Greyed || got.Label != "Offline" || !strings.Contains(got.Detail, "last data") || !strings.Contains(got.Value, "%") {
			t.Errorf("offline TV wall: %+v, want greyed last values with their time", got)
		}
		p.screenshot("tv-offline")
		p.checkClean()
	})
}

// TestStaticRoutes checks the pages' and assets' headers without a browser.
func TestStaticRoutes(t *testing.T) {
	s := startServer(t, serverConfig{})
	get := func(path string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, tc := range []struct{ path, ctype string }{
		{"/", "text/html"}, {"/executive", "text/html"}, {"/drilldown", "text/html"}, {"/tv", "text/html"},
		{"/assets/js/live.js", "text/javascript"}, {"/assets/css/tv.css", "text/css"},
		{"/assets/vendor/echarts.min.js", "text/javascript"},
	} {
		resp := get(tc.path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("GET %s: %d %s, want 200 %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.ctype)
			continue
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self' ws://127.0.0.1"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", tc.path, csp, want)
			}
		}
		if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("ETag") == "" {
			t.Errorf("GET %s: Cache-Control %q, ETag %q", tc.path, resp.Header.Get("Cache-Control"), resp.Header.Get("ETag"))
		}
		if again := get(tc.path, "If-None-Match", resp.Header.Get("ETag")); again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", tc.path, again.StatusCode)
		}
	}
	for _, path := range []string{"/assets/embed.go", "/assets/../embed.go", "/assets/js/nope.js", "/assets/executive.html"} {
		if resp := get(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}
