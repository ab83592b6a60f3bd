package web_test

// Browser tests of the screens: a TV without a credential shows a pairing code, the screens
// page pairs it, sends it commands, unpairs it, and lists it offline once its browser is
// killed. The TV runs in a chromium of its own, so that killing it is killing a TV.
//
// TRUTHBOARD_SCREENSHOT_DIR=$PWD/docs/screenshots go test -run TestBrowserScreens ./internal/web/
// saves the pairing screen (1080p, 4K) and the screens page (1080p, phone).

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	fleetpkg "github.com/truthboard/truthboard/internal/screen"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

// capture saves a screenshot of the page as <name>.png in TRUTHBOARD_SCREENSHOT_DIR, if set.
func (p *page) capture(name string) {
	p.t.Helper()
	dir := os.Getenv("TRUTHBOARD_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	b, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644)
	}
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
	}
}

// resize lays the page out again at w × h CSS pixels.
func (p *page) resize(w, h int64, scale float64) {
	p.t.Helper()
	p.do(chromedp.EmulateViewport(w, h, chromedp.EmulateScale(scale)), chromedp.Reload())
}

// startScreensNode serves a node with a fleet on a new database that polls every 200 ms.
func startScreensNode(t *testing.T) (*accessNode, *fleetpkg.Fleet) {
	t.Helper()
	return startScreensNodeOn(t, storetest.Open(t), "test")
}

// startScreensNodeOn serves a node named node with a fleet on db, which other nodes may share.
func startScreensNodeOn(t *testing.T, db *store.Store, node string) (*accessNode, *fleetpkg.Fleet) {
	t.Helper()
	var fleet *fleetpkg.Fleet
	n := startAccessNode(t, db, time.Second, adminToken, func(o *web.Options) {
		cache := o.Access.DisplayTokens
		fleet = fleetpkg.New(db, fleetpkg.Options{Node: node, Poll: 200 * time.Millisecond, Flush: time.Second,
			CredentialsChanged: func(ctx context.Context) { _ = cache.Refresh(ctx) }}, slog.New(slog.DiscardHandler))
		o.Screens = web.ScreenOptions{Fleet: fleet}
	})
	fleet.Start()
	t.Cleanup(fleet.Stop) // before the server stops: the TVs waiting for a code are let go
	return n, fleet
}

const (
	pairingCodeJS = `document.body.dataset.pairing === 'code' && /^[A-Z2-9]{6}$/.test(document.getElementById('pair-code').textContent)`
	screenRowJS   = `document.querySelector('#screens tbody tr[data-screen]')`
)

// pairFromPage enters the TV's code on the screens page and waits for the TV to go live.
func pairFromPage(t *testing.T, tv, admin *page, name string) {
	t.Helper()
	tv.waitAcross("a pairing code on the TV", pairingCodeJS)
	code := eval[string](tv, `document.getElementById('pair-code').textContent`)
	admin.do(chromedp.SetValue(`#pair-code`, strings.ToLower(code[:3])+"-"+code[3:]), chromedp.SetValue(`#pair-name`, name),
		chromedp.Click(`#pair-form button[type=submit]`))
	admin.wait("the pairing's answer", `document.getElementById('pair-message').textContent.startsWith('Paired: `+name+`')`)
	tv.waitAcross("the TV showing live figures", `!document.body.dataset.pairing && document.body.dataset.live === 'fresh'`)
}

func TestBrowserScreens(t *testing.T) {
	n, _ := startScreensNode(t)
	n.mustPost(t, jsonArray(dashboardEvents("screens", 60, time.Now().UTC().Add(-time.Minute)))).accepted(t, 60, 0)
	tvBrowser, killTV := killableBrowser(t)
	bctx := browser(t)

	// A TV with no credential shows a code.
	tv := openTab(t, tvBrowser, n.url+"/tv?rotate=0", 4*time.Minute)
	tv.patience = 30 * time.Second
	tv.waitAcross("a pairing code", pairingCodeJS)
	if os.Getenv("TRUTHBOARD_SCREENSHOT_DIR") != "" {
		tv.resize(1920, 1080, 1)
		tv.waitAcross("a pairing code at 1080p", pairingCodeJS)
		tv.capture("tv-pairing-1080p")
		tv.resize(3840, 2160, 1)
		tv.waitAcross("a pairing code at 4K", pairingCodeJS)
		tv.capture("tv-pairing-4k")
		tv.resize(390, 844, 3) // a phone opening the TV page shows the code it would pair
		tv.waitAcross("a pairing code on a phone", pairingCodeJS)
		tv.capture("tv-pairing-phone")
		tv.resize(1920, 1080, 1)
	}

	admin := openTab(t, bctx, n.url+"/login?next=%2Fscreens", 4*time.Minute)
	admin.patience = 30 * time.Second
	admin.do(chromedp.SendKeys(`input[name=token]`, adminToken), chromedp.Click(`button[type=submit]`))
	admin.waitAcross("the screens page", `location.pathname === '/screens' && !!document.getElementById('pair-form') && !!window.truthboard`)

	// A wrong code is refused with a message, naming the code.
	admin.do(chromedp.SetValue(`#pair-code`, "ZZZZZZ"), chromedp.SetValue(`#pair-name`, "Wall 3"), chromedp.Click(`#pair-form button[type=submit]`))
	admin.wait("the refusal of a wrong code", `document.getElementById('pair-message').textContent.includes('no TV shows this code')`)

	// Pairing through the screens page makes it live, with no credential in its URL.
	pairFromPage(t, tv, admin, "Wall 3")
	if u := eval[string](tv, `location.href`); strings.Contains(u, "token") {
		t.Errorf("the TV's URL carries a credential: %s", u)
	}
	admin.wait("the screen listed online with its heartbeat", screenRowJS+`?.dataset.state === 'online' && `+
		`/\d+x\d+/.test(`+screenRowJS+`.textContent) && `+screenRowJS+`.textContent.includes('Wall 3')`)
	// Its group and time zone, set in its row, reach the TV, which reads a schedule's hours in
	// Tokyo's time at the same UTC instants as the server (screen.Schedule.At).
	admin.do(chromedp.Evaluate[chromedp.Void](`(() => { const tr = ` + screenRowJS + `;
		tr.querySelector('input[aria-label=group]').value = 'floor 2';
		tr.querySelector('input[aria-label="time zone"]').value = 'Asia/Tokyo';
		tr.querySelector('[data-command=place]').click(); })()`))
	admin.wait("the row in group floor 2", screenRowJS+`?.dataset.group === 'floor 2' && document.getElementById('group-filter').textContent.includes('floor 2')`)
	tv.wait("the TV in Tokyo's time", `window.truthboard.state.timezone === 'Asia/Tokyo'`)
	for utc, want := range map[string]string{"2026-12-06T23:59:00Z": "blank", "2026-12-07T00:00:00Z": "", "2026-12-07T09:00:00Z": "blank", "2026-12-04T15:30:00Z": "blank"} {
		got := eval[string](tv, `window.truthboard.scheduleAt({open: '09:00', close: '18:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'], outside: 'blank'}, new Date('`+utc+`'), 'Asia/Tokyo')`)
		if got != want {
			t.Errorf("the TV's schedule in Tokyo at %s: %q, want %q", utc, got, want)
		}
	}

	if os.Getenv("TRUTHBOARD_SCREENSHOT_DIR") != "" {
		admin.resize(1920, 1080, 1)
		admin.wait("the screens page at 1080p", screenRowJS+`?.dataset.state === 'online'`)
		admin.capture("screens-1080p")
		admin.resize(390, 844, 2)
		admin.wait("the screens page on a phone", screenRowJS+`?.dataset.state === 'online'`)
		admin.capture("screens-phone")
		admin.resize(1920, 1080, 2) // a 4K monitor: 3840 × 2160 pixels
		admin.wait("the screens page at 4K", screenRowJS+`?.dataset.state === 'online'`)
		admin.capture("screens-4k")
		admin.resize(1600, 1000, 1)
		admin.wait("the screens page", screenRowJS+`?.dataset.state === 'online'`)
	}

	// Redirect: the TV holds the heatmap over the last hour.
	admin.do(chromedp.Evaluate[chromedp.Void](`(() => { const tr = ` + screenRowJS + `, s = tr.querySelectorAll('select');
		s[0].value = 'heatmap'; s[1].value = '1h'; tr.querySelector('[data-command=show]').click(); })()`))
	tv.wait("the TV on the heatmap over 1h", `document.body.dataset.panel === 'heatmap' && window.truthboard.live.sub.window === '1h'`)
	admin.wait("the list saying what it shows", screenRowJS+`.querySelector('.shows').textContent === 'Moments × channels · 1h'`)

	// Identify shows its name big.
	admin.do(chromedp.Evaluate[chromedp.Void](screenRowJS + `.querySelector('[data-command=identify]').click()`))
	tv.wait("the TV's name, big", `!document.getElementById('identify').hidden && document.getElementById('identify-name').textContent === 'Wall 3'`)

	// Reload reloads the page (a mark set in it is gone), and the TV comes back live on the
	// heatmap it was sent to.
	tv.do(chromedp.Evaluate[chromedp.Void](`window.beforeReload = true`))
	admin.do(chromedp.Evaluate[chromedp.Void](screenRowJS + `.querySelector('[data-command=reload]').click()`))
	tv.waitAcross("the TV reloaded, live on the heatmap", `window.beforeReload === undefined && document.body.dataset.live === 'fresh' && document.body.dataset.panel === 'heatmap'`)

	// Unpairing sends it back to a pairing code, and off the list.
	admin.do(chromedp.Evaluate[chromedp.Void](`(() => { const b = ` + screenRowJS + `.querySelector('[data-command=unpair]'); b.click(); b.click(); })()`))
	tv.waitAcross("a pairing code after unpairing", pairingCodeJS)
	admin.wait("the list without it", `!`+screenRowJS+` && !document.getElementById('no-screens').hidden`)

	// Paired again, then its browser is killed: listed offline within 30 s.
	pairFromPage(t, tv, admin, "Wall 4")
	admin.wait("Wall 4 online", screenRowJS+`?.dataset.state === 'online'`)
	tv.checkNoViolations() // the 401 of a TV without a credential, which then asks for a code, is expected
	killTV()
	admin.patience = 30 * time.Second // the product's promise
	admin.wait("Wall 4 offline", screenRowJS+`?.dataset.state === 'offline'`)
	admin.checkNoViolations()
}
