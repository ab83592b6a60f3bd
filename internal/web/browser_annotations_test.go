package web_test

// Annotations on the live trend charts: one created over the API shows on the open screens'
// trend charts by the next tick after its creation, as a mark or a region; a click on it opens
// its impact; the drill-down adds one by a click on the time axis. TRUTHBOARD_SCREENSHOT_DIR
// keeps screenshots of the executive view with annotations at 1080p and at phone size.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/truthboard/truthboard/internal/annotation"
	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

// startAnnotatedLive serves the live feeds and the annotations API as the server assembles
// them: the feeds read a cache of the annotations reloaded every tick.
func startAnnotatedLive(t *testing.T, tick time.Duration) *accessNode {
	t.Helper()
	db := storetest.Open(t)
	log := slog.New(slog.DiscardHandler)
	cache := annotation.NewCache(db.RecentAnnotations, db.AnnotationsStamp, tick, log)
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	done.Go(func() { cache.Run(ctx) })
	t.Cleanup(func() { cancel(); done.Wait() })
	hub := live.NewHub(db, live.Options{Tick: tick, Annotations: cache.Overlapping}, log)
	ts := startServer(t, serverConfig{db: db, web: web.Options{
		Hub: hub, AdminToken: auth.NewKeySet(adminToken),
		Annotations: web.AnnotationOptions{Store: db, Cache: cache},
	}})
	t.Cleanup(hub.Close)
	return &accessNode{liveServer: &liveServer{testServer: ts, hub: hub}, noRedirect: &http.Client{Timeout: 15 * time.Second}}
}

// recordMessagesJS makes the page keep, for every live message, its tick and the ids of its
// annotations.
const recordMessagesJS = `(() => { window.seen = []; const l = truthboard.live, on = l.onMessage.bind(l);
	l.onMessage = (m) => { window.seen.push({tick: m.tick, ids: (m.annotations || []).map(a => a.id)}); on(m); }; })()`

// marksJS reads the annotation marks of a trend chart from the chart's own option.
func marksJS(chart string) string {
	return fmt.Sprintf(`(() => { const el = document.querySelector('[data-chart=%q]');
	const c = window.echarts && echarts.getInstanceByDom(el);
	const s = c && c.getOption().series.find(s => s.id === 'annotations');
	if (!s) return {Lines: [], Areas: []};
	return {Lines: s.markLine.data.map(d => [d.xAxis, d.name]), Areas: s.markArea.data.map(d => [d[0].xAxis, d[1].xAxis, d[0].name])}; })()`, chart)
}

type drawnMarks struct {
	Lines [][]any
	Areas [][]any
}

func TestAnnotationsOnLiveCharts(t *testing.T) {
	const tick = 300 * time.Millisecond
	n := startAnnotatedLive(t, tick)
	now := time.Now().UTC().Truncate(time.Second)
	// Ten minutes of answers, every 15 s, so the trends are lines around the marks.
	for k := range 40 {
		n.mustPost(t, jsonArray(dashboardEvents(fmt.Sprintf("at%d", k), 30, now.Add(-10*time.Minute+time.Duration(k)*15*time.Second))),
			"Authorization", "Bearer "+testKey).accepted(t, 30, 0)
	}
	n.settle(t)
	bctx := browser(t)

	p := openSized(t, bctx, n.url+"/executive?token="+adminToken, 1920, 1080, 1)
	p.wait("the trend charts", `document.body.dataset.live === 'fresh' && document.body.dataset.annotations === '0' &&
		!!echarts.getInstanceByDom(document.querySelector('[data-chart="trend_csat"]'))`)
	p.do(chromedp.Evaluate[chromedp.Void](recordMessagesJS))

	// A mark and a region, over the API, while the screen is open.
	at := now.Add(-3 * time.Minute)
	a := n.annotationCall(t, http.MethodPost, "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "Release 4.2", "tags": ["release"]}`, at.UnixMilli()))
	mark := decodeAnnotation(t, a)
	a = n.annotationCall(t, http.MethodPost, "/v1/annotations", fmt.Sprintf(`{"time": %q, "timeEnd": %q, "text": "IVR outage", "tags": ["incident"], "channel": "ivr"}`,
		now.Add(-150*time.Second).Format(time.RFC3339), now.Add(-90*time.Second).Format(time.RFC3339)))
	region := decodeAnnotation(t, a)
	created := time.Now()

	// Every message the feed stamped after the creation carries both: the feeds read the
	// cache, which the API refreshed before answering.
	p.wait("a tick after the creation", fmt.Sprintf(`window.seen.some(m => Date.parse(m.tick) > %d)`, created.UnixMilli()))
	type seenMsg struct {
		Tick string
		IDs  []string
	}
	for _, m := range eval[[]seenMsg](p, `window.seen`) {
		tk, _ := time.Parse(time.RFC3339Nano, m.Tick)
		if tk.After(created) && strings.Join(m.IDs, ",") != mark.ID+","+region.ID {
			t.Errorf("the message of %s, after the creation, carries annotations %v, want %s then %s", m.Tick, m.IDs, mark.ID, region.ID)
		}
	}
	for _, chart := range []string{"trend_csat", "trend_volume"} {
		p.wait("the marks on "+chart, marksJS(chart)+`.Lines.length === 1 && `+marksJS(chart)+`.Areas.length === 1`)
		got := eval[drawnMarks](p, marksJS(chart))
		if got.Lines[0][0] != float64(mark.Time) || got.Lines[0][1] != "Release 4.2" ||
			got.Areas[0][0] != float64(region.Time) || got.Areas[0][1] != float64(region.TimeEnd) || got.Areas[0][2] != "IVR outage" {
			t.Errorf("%s draws %+v, want the mark at %d and the region %d–%d", chart, got, mark.Time, region.Time, region.TimeEnd)
		}
	}
	// And the API lists them.
	if list := n.listAnnotations(t, ""); len(list) != 2 || list[0].ID != region.ID || list[1].ID != mark.ID {
		t.Errorf("GET /v1/annotations: %+v, want the region and the mark", list)
	}

	// A click on the mark opens its impact, with the n of each window.
	pt := eval[[]float64](p, fmt.Sprintf(`(() => { const el = document.querySelector('[data-chart="trend_csat"]');
		el.scrollIntoView({block: 'center'});
		const c = echarts.getInstanceByDom(el), r = el.getBoundingClientRect();
		const g = c.getModel().getComponent('grid').coordinateSystem.getRect();
		return [r.left + c.convertToPixel({xAxisIndex: 0}, %d), r.top + g.y + g.height / 2]; })()`, mark.Time))
	p.do(chromedp.MouseClickXY(pt[0], pt[1]))
	p.wait("the impact panel", `!document.getElementById('annotation-panel').hidden &&
		document.querySelector('#annotation-panel tr[data-figure="csat"]') !== null`)
	if got := eval[string](p, `document.querySelector('#annotation-panel').textContent`); !strings.Contains(got, "Release 4.2") ||
		!strings.Contains(got, "(n ") || !strings.Contains(got, "after") {
		t.Errorf("the impact panel says %q, want the text and each window's figures with n", got)
	}
	p.shoot("executive-annotations-1080p")

	// The same view on a 4K monitor (twice the pixel density), and a TV wall at 1080p and 4K on
	// its trends panel: the marks are on every trend chart.
	k4 := openSized(t, bctx, n.url+"/executive?token="+adminToken, 1920, 1080, 2)
	k4.wait("the marks at 4K", marksJS("trend_csat")+`.Lines.length === 1 && `+marksJS("trend_csat")+`.Areas.length === 1`)
	k4.shoot("executive-annotations-4k")
	for _, tv := range []struct {
		name string
		w, h int64
	}{{"tv-annotations-1080p", 1920, 1080}, {"tv-annotations-4k", 3840, 2160}} {
		wall := openSized(t, bctx, n.url+"/tv?token="+adminToken+"&rotate=0", tv.w, tv.h, 1)
		wall.wait("the TV live", `document.body.dataset.live === 'fresh' && !!window.truthboard`)
		wall.do(chromedp.Evaluate[chromedp.Void](`truthboard.show(2)`))
		wall.wait("the marks on the TV's trends", `document.body.dataset.panel === 'trends' && `+
			marksJS("trend_csat")+`.Lines.length === 1 && `+marksJS("trend_volume")+`.Areas.length === 1`)
		wall.shoot(tv.name)
		wall.checkClean()
	}
	k4.checkClean()

	phone := openSized(t, bctx, n.url+"/executive?token="+adminToken, 390, 844, 2)
	phone.wait("the marks at phone size", marksJS("trend_csat")+`.Lines.length === 1`)
	phone.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-chart="trend_csat"]').scrollIntoView({block: 'center'})`))
	phone.shoot("executive-annotations-phone")

	// Deleted: gone from the chart.
	if a := n.annotationCall(t, http.MethodDelete, "/v1/annotations/"+mark.ID, ""); a.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", a.status, a.body)
	}
	p.wait("the mark removed", marksJS("trend_csat")+`.Lines.length === 0 && `+marksJS("trend_csat")+`.Areas.length === 1`)
	p.checkClean()
	phone.checkClean()
}

// TestDrilldownAddsAnnotation: on the drill-down of a cell, a signed-in admin clicks the
// trend's time axis, fills the form, and the annotation, scoped to the cell, is stored and drawn.
func TestDrilldownAddsAnnotation(t *testing.T) {
	n := startAnnotatedLive(t, 300*time.Millisecond)
	now := time.Now().UTC().Truncate(time.Second)
	n.mustPost(t, jsonArray(dashboardEvents("cur", 300, now.Add(-4*time.Minute))), "Authorization", "Bearer "+testKey).accepted(t, 300, 0)
	n.settle(t)
	bctx := browser(t)
	// Signed in, as a CX lead is: the form's request carries the session cookie and the CSRF
	// token, not a bearer token.
	// The sign-in form first, with the drill-down to return to: opening the drill-down itself
	// would send the browser there while the page still loads (an aborted load to chromedp).
	p := openSized(t, bctx, n.url+"/login?next="+url.QueryEscape("/drilldown?moment=zmot&channel=web"), 1920, 1080, 1)
	p.waitAcross("the sign-in form", `location.pathname === '/login' && !!document.querySelector('form input[name=token]')`)
	p.do(chromedp.SendKeys(`input[name=token]`, adminToken), chromedp.Click(`button[type=submit]`))
	p.waitAcross("the drill-down", `location.pathname === '/drilldown' && document.body.dataset.live === 'fresh'`)
	p.wait("the trend", `document.body.dataset.live === 'fresh' && !!echarts.getInstanceByDom(document.querySelector('[data-chart="trend_csat"]'))`)
	// Just under the plot, on the time axis, at two minutes ago.
	at := now.Add(-2 * time.Minute)
	pt := eval[[]float64](p, fmt.Sprintf(`(() => { const el = document.querySelector('[data-chart="trend_csat"]');
		el.scrollIntoView({block: 'center'});
		const c = echarts.getInstanceByDom(el), r = el.getBoundingClientRect();
		const g = c.getModel().getComponent('grid').coordinateSystem.getRect();
		return [r.left + c.convertToPixel({xAxisIndex: 0}, %d), r.top + g.y + g.height + 12]; })()`, at.UnixMilli()))
	p.do(chromedp.MouseClickXY(pt[0], pt[1]))
	p.wait("the form", `!document.getElementById('annotate').hidden`)
	p.do(chromedp.SendKeys(`#annotate input[name=text]`, "Agent script changed"),
		chromedp.SendKeys(`#annotate input[name=tags]`, "process, web"),
		chromedp.Click(`#annotate button[type=submit]`))
	p.wait("the form closed", `document.getElementById('annotate').hidden`)
	list := n.listAnnotations(t, "")
	if len(list) != 1 {
		t.Fatalf("stored %+v, want one annotation", list)
	}
	got := list[0]
	if got.Text != "Agent script changed" || strings.Join(got.Tags, ",") != "process,web" || got.Moment != "zmot" || got.Channel != "web" ||
		got.Region() || time.UnixMilli(got.Time).Sub(at).Abs() > time.Minute {
		t.Errorf("stored %+v, want the text, tags and the cell's scope at about %s", got, at)
	}
	p.wait("the new mark drawn", marksJS("trend_csat")+`.Lines.length === 1`)
	p.shoot("drilldown-annotation-1080p")
	// Not checkClean: the page was refused (401) before signing in, as it should be.
	p.checkNoViolations()
}
