package web_test

// Browser tests of the pages' layout and of what a user does with them: the executive view on
// a 390 × 844 phone with no text over another, the TV wall's figures legible from 5 m, the
// drill-down comparing the level below its path with sortable tables, and the Export action.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/truthboard/truthboard/internal/event"
)

// everyCell posts two 5-minute periods with 12 answers in every moment × channel: a heatmap
// with every cell and every label drawn.
func everyCell(t *testing.T, s *liveServer) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	prev, cur := now.Add(-7*time.Minute-20*time.Second), now.Add(-2*time.Minute-20*time.Second)
	var evs []string
	for i, m := range event.Moments {
		for j, c := range event.Channels {
			seed := uint64(i*len(event.Channels) + j)
			evs = append(evs, judgedEvents(fmt.Sprintf("prev-%s-%s", m, c), m, c, prev, 12, 8, 0, 0, seed)...)
			evs = append(evs, judgedEvents(fmt.Sprintf("cur-%s-%s", m, c), m, c, cur, 12, 4+j%8, 0, 0, seed)...)
		}
	}
	s.mustPost(t, jsonArray(evs)).accepted(t, len(evs), 0)
	s.settle(t)
}

// textBox is a piece of text as drawn: where, and in which chart ("" outside the charts).
type textBox struct {
	Text                     string
	Chart                    string
	Left, Top, Right, Bottom float64
	// Cut is set when a chart's text reaches outside its chart (cut off at the edge).
	Cut bool
	// Node numbers the text node or element: the line boxes of one text never overlap.
	Node int
}

// textBoxesJS lists every visible text of the page as drawn: each line box of the DOM's text
// nodes (clipped by the boxes that hide their overflow, as a truncated label is), each form
// control, and each text of the charts' SVG.
const textBoxesJS = `(() => {
	const out = [];
	const shown = (el) => el.checkVisibility({opacityProperty: true, visibilityProperty: true});
	const clip = (el, r) => {
		let c = {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
		for (let a = el; a && a !== document.body; a = a.parentElement) {
			const cs = getComputedStyle(a);
			if (cs.overflowX === 'visible' && cs.overflowY === 'visible') continue;
			const b = a.getBoundingClientRect();
			c = {left: Math.max(c.left, b.left), top: Math.max(c.top, b.top), right: Math.min(c.right, b.right), bottom: Math.min(c.bottom, b.bottom)};
		}
		return c;
	};
	let node = 0;
	const add = (text, chart, r, cut, n) => {
		if (r.right - r.left < 1 || r.bottom - r.top < 1) return;
		out.push({Text: text, Chart: chart, Left: r.left + scrollX, Top: r.top + scrollY, Right: r.right + scrollX, Bottom: r.bottom + scrollY, Cut: cut, Node: n});
	};
	const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n; (n = walk.nextNode());) {
		const el = n.parentElement, text = n.textContent.trim();
		if (!text || el.closest('[data-chart], script, style, select') || !shown(el)) continue;
		const range = document.createRange();
		range.selectNodeContents(n);
		node++;
		for (const r of range.getClientRects()) add(text, '', clip(el, r), false, node);
	}
	for (const el of document.querySelectorAll('select')) if (shown(el)) add(el.value, '', el.getBoundingClientRect(), false, ++node);
	for (const chart of document.querySelectorAll('[data-chart]')) {
		if (!shown(chart)) continue;
		const box = chart.getBoundingClientRect();
		for (const t of chart.querySelectorAll('svg text')) {
			const text = t.textContent.trim();
			if (!text || !shown(t) || getComputedStyle(t).opacity === '0') continue;
			const r = t.getBoundingClientRect();
			add(text, chart.dataset.chart, r, r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1, ++node);
		}
	}
	return out;
})()`

// overlaps lists every pair of boxes that cover each other by more than 2 px both ways. A
// text's box is its font's line (14 px for 12 px type, ascent to descent), so boxes that share
// 2 px still leave blank space between the glyphs.
func overlaps(boxes []textBox) []string {
	var out []string
	for i, a := range boxes {
		for _, b := range boxes[i+1:] {
			if a.Node == b.Node {
				continue
			}
			w := min(a.Right, b.Right) - max(a.Left, b.Left)
			h := min(a.Bottom, b.Bottom) - max(a.Top, b.Top)
			if w > 2 && h > 2 {
				out = append(out, fmt.Sprintf("%q (%s at %.0f,%.0f) overlaps %q (%s at %.0f,%.0f) by %.0f×%.0f px",
					a.Text, where(a), a.Left, a.Top, b.Text, where(b), b.Left, b.Top, w, h))
			}
		}
	}
	return out
}

func where(b textBox) string {
	if b.Chart == "" {
		return "page"
	}
	return "chart " + b.Chart
}

// TestPhoneLayout: the executive view, then the drill-down of a moment, on a 390 × 844 phone,
// every moment × channel cell with data: no text overlaps another (the page's and the charts', drawn as SVG so that they can be
// measured), no chart text is cut at its chart's edge, every moment and channel of the heatmap
// is labelled in full, and the header is compact.
func TestPhoneLayout(t *testing.T) {
	s := startLive(t, 200*time.Millisecond, time.Second)
	everyCell(t, s)
	bctx := browser(t)
	p := openSized(t, bctx, s.url+"/executive?token="+adminToken+"&window=5m", 390, 844, 1)
	p.wait("every cell of the heatmap", `document.body.dataset.live === 'fresh' && `+heatmapJS+` === 55`)
	p.wait("the charts drawn", `[...document.querySelectorAll('[data-chart]')].filter(el => echarts.getInstanceByDom(el)).every(el => el.querySelector('svg text'))`)
	time.Sleep(time.Second) // ECharts' animations: the layout measured is the one that stays; not an assertion

	checkText(t, p, 390)
	p.checkClean()

	// The drill-down of a moment on the same phone: its tables, channel bars and heatmap.
	p = openSized(t, bctx, s.url+"/drilldown?token="+adminToken+"&window=5m&moment=service", 390, 844, 1)
	p.wait("the channels of service", `document.body.dataset.live === 'fresh' && `+heatmapJS+` === 55 &&
		document.querySelectorAll('#members tbody tr[data-member]').length === 11`)
	p.wait("the charts drawn", `[...document.querySelectorAll('[data-chart]')].filter(el => echarts.getInstanceByDom(el)).every(el => el.querySelector('svg text'))`)
	time.Sleep(time.Second) // as above
	checkText(t, p, 390)
	p.checkClean()
}

// checkText fails the test for every text of the page drawn over another, every chart text
// cut at its chart's edge, a heatmap without every moment and channel labelled in full and, on
// a phone (width at most 480 px), a header over 90 px and a page wider than the phone.
func checkText(t *testing.T, p *page, width float64) {
	t.Helper()
	boxes := eval[[]textBox](p, textBoxesJS)
	labels := map[string]bool{}
	for _, b := range boxes {
		if b.Chart == "heatmap" {
			labels[b.Text] = true
		}
		if b.Cut {
			t.Errorf("%q is cut at the edge of chart %s (%.0f,%.0f–%.0f,%.0f)", b.Text, b.Chart, b.Left, b.Top, b.Right, b.Bottom)
		}
	}
	for _, name := range append(append([]string{}, event.Moments...), event.Channels...) {
		if !labels[name] {
			t.Errorf("the heatmap has no label %q in full (labels: %v)", name, keys(labels))
		}
	}
	for _, o := range overlaps(boxes) {
		t.Error(o)
	}
	if width > 480 {
		return
	}
	if h := eval[float64](p, `document.querySelector('header').getBoundingClientRect().height`); h > 90 {
		t.Errorf("the header is %.0f px high on a phone, want at most 90", h)
	}
	if w := eval[float64](p, `document.documentElement.scrollWidth`); w > width {
		t.Errorf("the page is %.0f px wide on a %.0f px phone: it scrolls sideways", w, width)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestTVLegibleFrom5m: on the TV wall at 1080p and 4K, every number (the tiles' figures, n,
// changes and p-values, the clock, the heatmap's cells and the charts' axes) is at least 2.5%
// of the screen's height.
func TestTVLegibleFrom5m(t *testing.T) {
	s := startLive(t, 200*time.Millisecond, time.Second)
	designedWindow(t, s)
	bctx := browser(t)
	for _, size := range []struct {
		name string
		w, h int64
	}{{"1080p", 1920, 1080}, {"4K", 3840, 2160}} {
		t.Run(size.name, func(t *testing.T) {
			p := openSized(t, bctx, s.url+"/tv?token="+adminToken+"&window=5m&rotate=0", size.w, size.h, 1)
			p.wait("fresh figures", `document.body.dataset.live === 'fresh' && document.querySelector('.tile[data-kpi="events"] .value').textContent === '640'`)
			least := float64(size.h) * 0.025
			got := eval[map[string]float64](p, `(() => {
				const px = (sel) => Math.min(...[...document.querySelectorAll(sel)].map(e => parseFloat(getComputedStyle(e).fontSize)));
				return {value: px('.tile .value:not(.nodata)'), n: px('.tile .n'), delta: px('.tile .delta'), why: px('.tile .why'),
					clock: px('#clock'), badge: px('#badge .detail')}; })()`)
			for _, k := range []string{"value", "n", "delta", "why", "clock", "badge"} {
				if got[k] < least {
					t.Errorf("%s: %s text is %.1f px, want at least %.1f (2.5%% of %d px)", size.name, k, got[k], least, size.h)
				}
			}
			p.do(chromedp.Evaluate[chromedp.Void](`truthboard.show(1)`))
			p.wait("the heatmap", cellsJS+`['service/voice'] !== undefined`)
			p.do(chromedp.Evaluate[chromedp.Void](`truthboard.show(2)`))
			p.wait("the trends", `echarts.getInstanceByDom(document.querySelector('[data-chart="trend_csat"]')) !== undefined`)
			charts := eval[map[string]float64](p, `(() => {
				const o = (n) => echarts.getInstanceByDom(document.querySelector('[data-chart="' + n + '"]')).getOption();
				const h = o('heatmap'), tr = o('trend_csat');
				return {cell: h.series[0].label.rich.v.fontSize, heatmapX: h.xAxis[0].axisLabel.fontSize, heatmapY: h.yAxis[0].axisLabel.fontSize,
					trendX: tr.xAxis[0].axisLabel.fontSize, trendY: tr.yAxis[0].axisLabel.fontSize}; })()`)
			for _, k := range []string{"cell", "heatmapX", "heatmapY", "trendX", "trendY"} {
				if charts[k] < least {
					t.Errorf("%s: chart text %s is %.1f px, want at least %.1f", size.name, k, charts[k], least)
				}
			}
			p.checkClean()
		})
	}
}

// memberRows reads a comparison table as a user does: per row, its first cell and its cells'
// changes.
const memberRowsJS = `[...document.querySelectorAll('#members tbody tr[data-member]')].map(r =>
	[r.cells[0].textContent, r.cells[1].firstChild.textContent, ...[...r.querySelectorAll('.change')].map(c => c.className + ':' + c.textContent)].join(' | '))`

// TestDrilldownKeepsComparing: after a click on a heatmap cell the heatmap and the consistency
// charts still compare every moment and channel, the tiles are the cell's, and the table of
// the level below compares its members with n, change and judgement; every column sorts.
func TestDrilldownKeepsComparing(t *testing.T) {
	s := startLive(t, 200*time.Millisecond, time.Second)
	designedWindow(t, s)
	// A third service channel, unchanged at 60% on 100 answers a side: service has a CCI.
	now := time.Now().UTC().Truncate(time.Second)
	app := append(judgedEvents("app-prev", "service", "app", now.Add(-7*time.Minute-20*time.Second), 100, 60, 0, 0, 0),
		judgedEvents("app-cur", "service", "app", now.Add(-2*time.Minute-20*time.Second), 100, 60, 0, 0, 0)...)
	s.mustPost(t, jsonArray(app)).accepted(t, len(app), 0)
	s.settle(t)
	bctx := browser(t)
	p := openSized(t, bctx, s.url+"/drilldown?token="+adminToken+"&window=5m", 1920, 1080, 1)
	p.wait("the moments compared", `document.querySelectorAll('#members tbody tr[data-member]').length === 3`)
	if got := eval[[]string](p, `[...document.querySelectorAll('#members tbody tr[data-member]')].map(r => r.dataset.member)`); strings.Join(got, " ") != "service fmot tmot" {
		t.Errorf("moments by events: %v, want service fmot tmot", got)
	}

	// Click service × voice where the chart draws it.
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-chart="heatmap"]').scrollIntoView({block: 'center'})`))
	cell := eval[struct{ X, Y float64 }](p, `(() => { const el = document.querySelector('[data-chart="heatmap"]');
		const c = echarts.getInstanceByDom(el), o = c.getOption();
		const [x, y] = c.convertToPixel({seriesIndex: 0}, [o.xAxis[0].data.indexOf('voice'), o.yAxis[0].data.indexOf('service')]);
		const r = el.getBoundingClientRect();
		return {X: r.left + x, Y: r.top + y}; })()`)
	p.do(chromedp.MouseClickXY(cell.X, cell.Y))
	p.wait("the cell's touchpoints", `new URLSearchParams(location.search).get('channel') === 'voice' &&
		document.querySelector('#members-title').textContent.startsWith('Touchpoints of voice') &&
		[...document.querySelectorAll('#members tbody tr[data-member]')].map(r => r.dataset.member).join() === 'voice_contact'`)
	if n := eval[int](p, heatmapJS); n != 5 {
		t.Errorf("after the click the heatmap has %d cells with data, want all 5", n)
	}
	if cci := eval[string](p, `document.querySelector('[data-cci="service"]').textContent`); !strings.HasPrefix(cci, "CCI 0.") {
		t.Errorf("service's consistency after the click: %q, want its CCI", cci)
	}
	if v := eval[string](p, `document.querySelector('.tile[data-kpi="events"] .value').textContent`); v != "400" {
		t.Errorf("events tile after the click: %s, want the cell's 400", v)
	}
	checkText(t, p, 1920)

	// Up one step: the channels of service, compared.
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#path a:nth-of-type(2)').click()`))
	p.wait("the channels of service", `document.querySelector('#members-title').textContent.startsWith('Channels of service') &&
		document.querySelectorAll('#members tbody tr[data-member]').length === 3`)
	rows := eval[[]string](p, memberRowsJS)
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "voice | 400 | change flat:±0 |") || !strings.Contains(rows[0], "change bad:▼ −30.0 pts") {
		t.Errorf("voice row %q, want first by events, 400 with its change, CSAT −30.0 pts coloured bad", rows)
	}
	if len(rows) == 3 && (!strings.HasPrefix(rows[2], "chat | 10 |") || !strings.Contains(rows[2], "change flat:▼ −30.0 pts")) {
		t.Errorf("chat row %q, want last by events, the same −30 pts neutral on 10 answers", rows[2])
	}
	order := func() string {
		return strings.Join(eval[[]string](p, `[...document.querySelectorAll('#members tbody tr[data-member]')].map(r => r.dataset.member)`), " ")
	}
	sortBy := func(key string) string {
		p.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('#members th[data-key=%q]').click()`, key)))
		return eval[string](p, fmt.Sprintf(`document.querySelector('#members th[data-key=%q]').getAttribute('aria-sort')`, key))
	}
	if a := sortBy("csat"); a != "descending" || order() != "app voice chat" {
		t.Errorf("sorted by CSAT: %s %q, want descending app voice chat", a, order())
	}
	if a := sortBy("csat"); a != "ascending" || order() != "voice chat app" {
		t.Errorf("sorted by CSAT again: %s %q, want ascending voice chat app (ties by events)", a, order())
	}
	if a := sortBy("channel"); a != "ascending" || order() != "app chat voice" {
		t.Errorf("sorted by channel: %s %q, want ascending app chat voice", a, order())
	}
	if others := eval[int](p, `document.querySelectorAll('#members th[aria-sort="ascending"], #members th[aria-sort="descending"]').length`); others != 1 {
		t.Errorf("%d headers say the table is sorted by them, want 1", others)
	}
	if a := eval[string](p, `document.querySelector('#touchpoints th[data-key="touchpoint"]').click(),
		document.querySelector('#touchpoints th[data-key="touchpoint"]').getAttribute('aria-sort') + ' ' +
		[...document.querySelectorAll('#touchpoints tr[data-touchpoint]')].map(r => r.dataset.touchpoint).join(' ')`); a != "ascending app_contact chat_contact voice_contact" {
		t.Errorf("touchpoints sorted by name: %q", a)
	}

	// A member's row drills into it.
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#members tr[data-member="chat"]').click()`))
	p.wait("chat's touchpoints", `new URLSearchParams(location.search).get('channel') === 'chat' &&
		[...document.querySelectorAll('#members tbody tr[data-member]')].map(r => r.dataset.member).join() === 'chat_contact'`)
	p.checkClean()
}

// TestExport: the Export action of the executive and drill-down pages downloads the view's
// figures as CSV through the metrics API, without the credential in any link.
func TestExport(t *testing.T) {
	s := startLive(t, 200*time.Millisecond, time.Second)
	designedWindow(t, s)
	bctx := browser(t)
	for _, tc := range []struct {
		name, path string
		rows       int    // data rows, the total included
		header     string // the key columns
	}{
		// The four cells with events and the total.
		{"executive", "/executive", 5, "moment,channel,events"},
		// The touchpoints of service (voice_contact, chat_contact) and their total.
		{"drilldown", "/drilldown", 3, "moment,channel,touchpoint,events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			u := s.url + tc.path + "?token=" + adminToken + "&window=5m"
			if tc.name == "drilldown" {
				u += "&moment=service"
			}
			p := openSized(t, bctx, u, 1920, 1080, 1)
			allowDownloads(t, p, dir)
			p.wait("fresh figures", `document.body.dataset.live === 'fresh' && document.querySelector('.tile[data-kpi="events"] .value').textContent !== '…'`)
			p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('export').click()`))
			p.wait("the download", `document.getElementById('export').dataset.file !== undefined`)
			name := eval[string](p, `document.getElementById('export').dataset.file`)
			if !strings.HasPrefix(name, "truthboard-metrics-5m-") || !strings.HasSuffix(name, ".csv") {
				t.Errorf("file name %q, want truthboard-metrics-5m-….csv", name)
			}
			b := downloaded(dir, name)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) != 1+tc.rows || !strings.Contains(lines[0], tc.header) || !strings.Contains(lines[0], ",csat,csat_n,") ||
				!strings.Contains(lines[0], ",delta_csat,judgement_csat_verdict,") {
				t.Fatalf("downloaded %s: %d lines, want a header with %s, csat, csat_n, delta_csat and %d rows:\n%s", name, len(lines), tc.header, tc.rows, b)
			}
			if tc.name == "drilldown" {
				for _, l := range lines[1 : len(lines)-1] {
					if !strings.Contains(l, ",service,") {
						t.Errorf("row of another moment in the drill path's export: %s", l)
					}
				}
			}
			p.mu.Lock()
			var asked []string
			for _, r := range p.req {
				if strings.Contains(r, "/v1/metrics") {
					asked = append(asked, r)
				}
			}
			p.mu.Unlock()
			if len(asked) != 1 || strings.Contains(asked[0], "token") || !strings.Contains(asked[0], "format=csv") {
				t.Errorf("export requests %q, want one format=csv request without the token in its URL", asked)
			}
			p.checkClean()
		})
	}
}

// allowDownloads makes the page's downloads go to dir under the names the page gives them.
func allowDownloads(t *testing.T, p *page, dir string) {
	t.Helper()
	if _, err := chromedp.Run(p.ctx, func(ctx context.Context, tg *chromedp.Target) (cdp.Empty, error) {
		return cdp.Call(ctx, tg, cdpbrowser.SetDownloadBehavior,
			cdpbrowser.SetDownloadBehaviorParams{Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
	}); err != nil {
		t.Fatal(err)
	}
}

// downloaded is the file dir/name once the browser has written it (it writes it after the
// page's click returns), or what it holds after 10 s.
func downloaded(dir, name string) []byte {
	var b []byte
	for range 100 {
		var err error
		if b, err = os.ReadFile(filepath.Join(dir, name)); err == nil && len(b) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return b
}
