package web_test

// Browser tests of the judged changes: a colour on a screen must rest on a significant change
// on enough answers (rollup.Judge), and wait times and abandonment must be on the screens.
//
// TRUTHBOARD_SCREENSHOT_DIR=$PWD/docs/screenshots go test -run 'TestJudgedScreens|TestScreenshots' ./internal/web/
// writes the screenshots of docs/screenshots/ (the README's, and every view at 1080p, 4K and on a
// phone).

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/truthboard/truthboard/internal/chart"
	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/event"
)

// judgedEvents are events of one moment × channel: n of them from at on, 300 ms apart, with
// top2 of them csat 5 (the others csat 2); when waitMedian > 0, with an outcome, abandoned of
// them abandoned (the others resolved), and log-normal waits around waitMedian.
func judgedEvents(prefix, moment, channel string, at time.Time, n, top2, abandoned int, waitMedian float64, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 7))
	var evs []string
	// top2 and abandoned of every n, spread evenly over time.
	every := func(i, k int) bool { return (i*k)%n < k }
	for i := range n {
		csat := 2
		if every(i, top2) {
			csat = 5
		}
		extra := ""
		if waitMedian > 0 {
			outcome := "resolved"
			if every(i+n/2, abandoned) {
				outcome = "abandoned"
			}
			wait := int(waitMedian * math.Exp(0.6*rng.NormFloat64()))
			extra = fmt.Sprintf(`,"outcome":%q,"wait_ms":%d`, outcome, wait)
		}
		evs = append(evs, fmt.Sprintf(`{"event_id":"%s-%d","occurred_at":%q,"moment":%q,"channel":%q,"touchpoint":"%s_contact","csat":%d%s}`,
			prefix, i, at.Add(time.Duration(i)*300*time.Millisecond).Format(time.RFC3339Nano), moment, channel, channel, csat, extra))
	}
	return evs
}

// designedWindow posts two 5-minute periods: service × voice drops from 70% CSAT to 40% on 400
// answers a side, with abandonment doubling (8% → 16%) and waits four times longer; service ×
// chat drops by the same 30 points on 10 answers a side; fmot × web and tmot × email stay the
// same.
func designedWindow(t *testing.T, s *liveServer) {
	t.Helper()
	// Each period's events span 2 minutes, well inside its half of the 10 minutes the screens
	// compare, so that a minute-aligned window (the drill-down's) moving on for 90 s still holds
	// them all.
	now := time.Now().UTC().Truncate(time.Second)
	prev, cur := now.Add(-7*time.Minute-20*time.Second), now.Add(-2*time.Minute-20*time.Second)
	var evs []string
	evs = append(evs, judgedEvents("voice-prev", "service", "voice", prev, 400, 280, 32, 60_000, 1)...)
	evs = append(evs, judgedEvents("voice-cur", "service", "voice", cur, 400, 160, 64, 240_000, 2)...)
	evs = append(evs, judgedEvents("chat-prev", "service", "chat", prev, 10, 7, 0, 0, 0)...)
	evs = append(evs, judgedEvents("chat-cur", "service", "chat", cur, 10, 4, 0, 0, 0)...)
	evs = append(evs, judgedEvents("web-prev", "fmot", "web", prev, 150, 120, 0, 0, 0)...)
	evs = append(evs, judgedEvents("web-cur", "fmot", "web", cur, 150, 120, 0, 0, 0)...)
	evs = append(evs, judgedEvents("email-prev", "tmot", "email", prev, 80, 60, 0, 0, 0)...)
	evs = append(evs, judgedEvents("email-cur", "tmot", "email", cur, 80, 60, 0, 0, 0)...)
	s.mustPost(t, jsonArray(evs)).accepted(t, len(evs), 0)
	s.settle(t)
}

// openSized opens u in a new tab whose viewport is w × h CSS pixels at the given device scale
// (loaded again at that size, so that the page lays itself out for it from the start). The tab
// lives a minute, and waits up to 40 s for a condition: a 4K page on a busy machine takes a while.
func openSized(t *testing.T, bctx context.Context, u string, w, h int64, scale float64) *page {
	t.Helper()
	p := openTab(t, bctx, u, time.Minute)
	p.patience = 40 * time.Second
	p.do(chromedp.EmulateViewport(w, h, chromedp.EmulateScale(scale)), chromedp.Reload())
	return p
}

// shoot saves a screenshot of the page as <name>.png in TRUTHBOARD_SCREENSHOT_DIR, if set, once
// the charts have finished their animations.
func (p *page) shoot(name string) {
	p.t.Helper()
	dir := os.Getenv("TRUTHBOARD_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	time.Sleep(2 * time.Second) // ECharts animates updates for up to a second; not an assertion
	p.wait("live figures for the screenshot", `document.body.dataset.live === 'fresh'`)
	p.save(dir, name)
}

// save writes a screenshot of the page as dir/<name>.png.
func (p *page) save(dir, name string) {
	p.t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	b, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644)
	}
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
	}
}

// cellsJS reads the heatmap as drawn: per "moment/channel", the cell's colour (the fill ECharts
// painted, "" when the cell is not drawn), its CSAT label value and its judgement code.
const cellsJS = `(() => { const el = document.querySelector('[data-chart="heatmap"]');
	const c = window.echarts && echarts.getInstanceByDom(el);
	if (!c || !el.querySelector('canvas, svg')) return {};
	const o = c.getOption(), d = c.getModel().getSeriesByIndex(0).getData(), out = {};
	o.series[0].data.forEach((item, i) => {
		const v = item.value, el = d.getItemGraphicEl(i);
		out[o.yAxis[0].data[v[1]] + '/' + o.xAxis[0].data[v[0]]] =
			{Fill: el ? String(d.getItemVisual(i, 'style').fill) : '', CSAT: String(v[2]), Code: String(v[3])};
	});
	return out; })()`

type drawnCell struct{ Fill, CSAT, Code string }

// tooltipJS shows the tooltip of the heatmap cell moment/channel and returns its text.
func tooltipJS(moment, channel string) string {
	return fmt.Sprintf(`(() => { const el = document.querySelector('[data-chart="heatmap"]');
	const c = echarts.getInstanceByDom(el), o = c.getOption();
	const i = o.series[0].data.findIndex(item => o.yAxis[0].data[item.value[1]] === %q && o.xAxis[0].data[item.value[0]] === %q);
	c.dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: i});
	const tip = [...el.querySelectorAll('div')].find(d => d.textContent.includes(%q + ' · ' + %q));
	return tip ? tip.textContent : ''; })()`, moment, channel, moment, channel)
}

// judgedTile is a KPI tile as a user reads it, with the class of its change.
type judgedTile struct {
	Value, N, Delta, Why, Class, Verdict string
}

const judgedTilesJS = `Object.fromEntries([...document.querySelectorAll('.tile')].map(t => [t.dataset.kpi,
	{Value: t.querySelector('.value').textContent, N: t.querySelector('.n').textContent,
	 Delta: t.querySelector('.delta').textContent, Why: t.querySelector('.why').textContent,
	 Class: t.querySelector('.delta').className, Verdict: t.dataset.verdict || ''}]))`

// checkJudgedTiles checks the tiles of the designed window on a page: wait p90 and abandonment
// are there with their n and coloured worse; CSAT's drop is coloured; volume never is.
func checkJudgedTiles(t *testing.T, p *page) {
	t.Helper()
	tiles := eval[map[string]judgedTile](p, judgedTilesJS)
	for _, k := range []string{"nps", "csat", "ces", "events", "negative_rate", "abandonment", "wait_p90_ms"} {
		if _, ok := tiles[k]; !ok {
			t.Errorf("no %s tile: %v", k, tiles)
		}
	}
	ab := tiles["abandonment"]
	if ab.Value != "16.0%" || ab.N != "n = 400" || !strings.Contains(ab.Delta, "▲ +8.0 pts") || !strings.Contains(ab.Class, "bad") || ab.Verdict != "worse" {
		t.Errorf("abandonment tile = %+v, want 16.0%% on n = 400, ▲ +8.0 pts coloured bad", ab)
	}
	w := tiles["wait_p90_ms"]
	if !strings.HasSuffix(w.Value, "min") || w.N != "n = 400" || !strings.HasPrefix(w.Delta, "▲ +") || !strings.Contains(w.Class, "bad") ||
		!strings.Contains(w.Why, "worse") {
		t.Errorf("wait p90 tile = %+v, want minutes on n = 400, up and coloured bad", w)
	}
	if c := tiles["csat"]; !strings.HasPrefix(c.Delta, "▼ −") || !strings.Contains(c.Class, "bad") || c.N != "n = 640" {
		t.Errorf("csat tile = %+v, want a drop coloured bad on n = 640", c)
	}
	if v := tiles["events"]; strings.Contains(v.Class, "good") || strings.Contains(v.Class, "bad") {
		t.Errorf("volume tile = %+v: volume is neither good nor bad", v)
	}
}

// TestJudgedScreens: with a significant drop on 400 answers in one cell and the same drop on 10
// in another, the executive view and the TV wall colour the first bad and leave the second
// neutral, say why with its n, and show wait p90 and abandonment with theirs.
func TestJudgedScreens(t *testing.T) {
	s := startLive(t, 200*time.Millisecond, time.Second)
	designedWindow(t, s)
	bctx := browser(t)
	q := "?token=" + adminToken + "&window=5m"
	fresh := `document.body.dataset.live === 'fresh' && document.querySelector('.tile[data-kpi="events"] .value').textContent === '640'`

	t.Run("executive", func(t *testing.T) {
		p := openSized(t, bctx, s.url+"/executive"+q, 1920, 1080, 1)
		p.wait("fresh figures", fresh)
		p.wait("the heatmap", cellsJS+`['service/voice'] !== undefined`)
		cells := eval[map[string]drawnCell](p, cellsJS)
		if c := cells["service/voice"]; c.Fill != chart.ColorWorse || c.CSAT != "40" {
			t.Errorf("service × voice (−30 pts on 400 answers) drawn %+v, want %s (worse) with 40", c, chart.ColorWorse)
		}
		if c := cells["service/chat"]; c.Fill == chart.ColorWorse || c.Fill == chart.ColorBetter || c.Fill == "" || c.CSAT != "40" {
			t.Errorf("service × chat (−30 pts on 10 answers) drawn %+v, want neutral with 40", c)
		}
		if c := cells["fmot/web"]; c.Fill != chart.ColorNeutral {
			t.Errorf("fmot × web (unchanged) drawn %+v, want %s (no significant change)", c, chart.ColorNeutral)
		}
		if c := cells["zmot/voice"]; c.Fill != "" {
			t.Errorf("zmot × voice (no events) drawn %+v, want no cell", c)
		}
		if tip := eval[string](p, tooltipJS("service", "chat")); !strings.Contains(tip, "n = 10") || !strings.Contains(tip, "too few to judge") ||
			!strings.Contains(tip, "▼ −30.0 pts") {
			t.Errorf("service × chat tooltip %q, want the drop, n = 10 and too few to judge", tip)
		}
		if tip := eval[string](p, tooltipJS("service", "voice")); !strings.Contains(tip, "n = 400") || !strings.Contains(tip, "worse · p < 0.001") ||
			!strings.Contains(tip, "Abandonment 16.0%") || !strings.Contains(tip, "Wait p90") {
			t.Errorf("service × voice tooltip %q, want CSAT worse with n = 400, abandonment and wait p90", tip)
		}
		checkJudgedTiles(t, p)
		// The last trend bucket is still filling: it is never part of a solid line.
		if solid := eval[int](p, `echarts.getInstanceByDom(document.querySelector('[data-chart="trend_volume"]')).getOption().series
			.slice(0, 5).filter(s => s.data.length && s.data[s.data.length - 1].value[1] !== '-').length`); solid != 0 {
			t.Errorf("%d volume lines end in a solid still-filling bucket", solid)
		}
		p.do(chromedp.Evaluate[chromedp.Void](`echarts.getInstanceByDom(document.querySelector('[data-chart="heatmap"]')).dispatchAction({type: 'hideTip'})`))
		p.shoot("judged-executive-1080p")
		p.checkClean()
	})

	t.Run("tv", func(t *testing.T) {
		p := openSized(t, bctx, s.url+"/tv"+q+"&rotate=0", 1920, 1080, 1)
		p.wait("fresh figures", fresh)
		checkJudgedTiles(t, p)
		p.do(chromedp.Evaluate[chromedp.Void](`truthboard.show(1)`))
		p.wait("the heatmap", cellsJS+`['service/voice'] !== undefined`)
		cells := eval[map[string]drawnCell](p, cellsJS)
		voice, chat := cells["service/voice"], cells["service/chat"]
		if voice.Code != "-1" || chat.Code != "2" || voice.Fill == chat.Fill || chat.Fill == "" {
			t.Errorf("TV wall cells: voice %+v, chat %+v; want voice worse and chat too few to judge, in different colours", voice, chat)
		}
		if label := eval[string](p, `echarts.getInstanceByDom(document.querySelector('[data-chart="heatmap"]')).getOption().series[0].label.formatter.length > 0 ? 'function' : ''`); label == "" {
			t.Errorf("the TV heatmap has no cell texts")
		}
		p.shoot("judged-tv-1080p-heatmap")
		p.checkClean()
	})

	t.Run("drilldown", func(t *testing.T) {
		p := openSized(t, bctx, s.url+"/drilldown"+q+"&moment=service", 1920, 1080, 1)
		p.wait("the touchpoints", `document.querySelectorAll('#touchpoints tr[data-touchpoint]').length === 2`)
		got := eval[map[string]string](p, `Object.fromEntries([...document.querySelectorAll('#touchpoints tr[data-touchpoint]')].map(r =>
			[r.dataset.channel, [...r.querySelectorAll('.change')].map(c => c.className + ':' + c.textContent).join(' | ')]))`)
		if !strings.Contains(got["voice"], "change bad:▼ −30.0 pts") || !strings.Contains(got["voice"], "change bad:▲ +8.0 pts") {
			t.Errorf("voice row changes %q, want CSAT −30 pts and abandonment +8 pts coloured bad", got["voice"])
		}
		if !strings.Contains(got["chat"], "change flat:▼ −30.0 pts") || strings.Contains(got["chat"], "bad") {
			t.Errorf("chat row changes %q, want the same −30 pts neutral", got["chat"])
		}
		p.checkClean()
	})
}

// postDemo posts events through the ingest API in requests of at most 2,000.
func postDemo(t *testing.T, s *liveServer, evs []event.Event) {
	t.Helper()
	for len(evs) > 0 {
		n := min(len(evs), 2000)
		b, err := json.Marshal(evs[:n])
		if err != nil {
			t.Fatal(err)
		}
		s.mustPost(t, b).accepted(t, n, 0)
		evs = evs[n:]
	}
}

// TestScreenshots captures the screens of docs/screenshots/ (only with
// TRUTHBOARD_SCREENSHOT_DIR): 15 minutes of demo journeys at 40 events/s with a voice outage
// that started 4 minutes ago, live traffic going on while the screens are open, each view at
// 1920×1080, 3840×2160 and on a 390×844 phone.
func TestScreenshots(t *testing.T) {
	if os.Getenv("TRUTHBOARD_SCREENSHOT_DIR") == "" {
		t.Skip("set TRUTHBOARD_SCREENSHOT_DIR to a folder for the screenshots")
	}
	s := startLive(t, time.Second, time.Second)
	cfg := demo.DefaultConfig()
	cfg.Rate, cfg.Diurnal, cfg.DuplicateShare, cfg.LateShare = 40, false, 0, 0
	cfg.Incidents = demo.Incidents{{Channel: "voice", Kind: demo.Outage, Start: 11 * time.Minute, Duration: time.Hour}}
	gen, err := demo.NewGenerator(cfg, time.Now().Add(-15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	postDemo(t, s, gen.Due(time.Now(), math.MaxInt))
	s.settle(t)
	// The traffic goes on, as it does on a real wall, until the test ends.
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() {
		stop()
		<-done
	})
	go func() {
		defer close(done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if evs := gen.Due(time.Now(), 2000); len(evs) > 0 {
					b, _ := json.Marshal(evs)
					if _, err := s.post(b); err != nil {
						t.Errorf("live demo traffic: %v", err)
						return
					}
				}
			}
		}
	}()
	bctx := browser(t)
	q := "?token=" + adminToken + "&window=5m"
	ready := `document.body.dataset.live === 'fresh' && ` + cellsJS + `['service/voice'] !== undefined`
	// A laptop or monitor with a 4K panel shows pages at twice the pixel density (1920 × 1080
	// CSS pixels); a TV wall's kiosk browser at its native 3840 × 2160. A phone is 390 × 844 at 3.
	for _, shot := range []struct {
		name, path string
		w, h       int64
		scale      float64
		then       string
	}{
		{"executive", "/executive" + q, 1920, 1080, 1, ""},
		{"executive-4k", "/executive" + q, 1920, 1080, 2, ""},
		{"executive-phone", "/executive" + q, 390, 844, 3, ""},
		{"executive-phone-heatmap", "/executive" + q, 390, 844, 3, `document.querySelector('[data-chart="heatmap"]').scrollIntoView()`},
		{"drilldown", "/drilldown" + q + "&moment=service&channel=voice", 1920, 1080, 1, ""},
		{"drilldown-compare", "/drilldown" + q + "&moment=service", 1920, 1080, 1, `document.getElementById('members-title').scrollIntoView()`},
		{"drilldown-4k", "/drilldown" + q + "&moment=service&channel=voice", 1920, 1080, 2, ""},
		{"drilldown-phone", "/drilldown" + q + "&moment=service&channel=voice", 390, 844, 3, ""},
		{"drilldown-phone-compare", "/drilldown" + q + "&moment=service", 390, 844, 3, `document.getElementById('members-title').scrollIntoView()`},
		{"drilldown-below-touchpoint", "/drilldown" + q + "&moment=service&channel=voice&touchpoint=billing_call", 1920, 1080, 1, `document.getElementById('below').scrollIntoView()`},
		{"tv-1080p", "/tv" + q + "&rotate=0", 1920, 1080, 1, ""},
		{"tv-1080p-heatmap", "/tv" + q + "&rotate=0", 1920, 1080, 1, "truthboard.show(1)"},
		{"tv-4k", "/tv" + q + "&rotate=0", 3840, 2160, 1, ""},
		{"tv-4k-heatmap", "/tv" + q + "&rotate=0", 3840, 2160, 1, "truthboard.show(1)"},
		{"tv-phone", "/tv" + q + "&rotate=0", 390, 844, 3, ""},
		{"tv-phone-heatmap", "/tv" + q + "&rotate=0", 390, 844, 3, "truthboard.show(1)"},
	} {
		t.Run(shot.name, func(t *testing.T) {
			p := openSized(t, bctx, s.url+shot.path, shot.w, shot.h, shot.scale)
			if strings.HasPrefix(shot.path, "/drilldown") {
				p.wait("the touchpoints", `document.body.dataset.live === 'fresh' && document.querySelectorAll('#touchpoints tr[data-touchpoint]').length > 0`)
				if strings.Contains(shot.path, "touchpoint=") {
					p.wait("its regions and teams", `document.querySelectorAll('#regions tr[data-member]').length > 0 && document.querySelectorAll('#teams tr[data-member]').length > 0`)
				}
			} else {
				p.wait("fresh data", ready)
			}
			if shot.then != "" {
				p.do(chromedp.Evaluate[chromedp.Void](shot.then))
			}
			p.shoot(shot.name)
			p.checkClean()
		})
	}
}
