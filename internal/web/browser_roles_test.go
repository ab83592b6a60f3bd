package web_test

// Browser tests of roles and of the pages' clear states: the admin page driven in chromium,
// links that never carry a credential, a refused view, filters that match nothing, and a
// revoked credential sending the page to the sign-in form with the reason.

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

// snap saves a screenshot as <name>.png in TRUTHBOARD_SCREENSHOT_DIR, if set.
func (p *page) snap(name string) {
	p.t.Helper()
	dir := os.Getenv("TRUTHBOARD_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	time.Sleep(time.Second) // let the page finish drawing; not an assertion
	p.save(dir, name)
}

// fill sets the value of a form field, as typing would.
func (p *page) fill(selector, value string) {
	p.t.Helper()
	p.do(chromedp.SetValue(selector, value))
}

func TestBrowserAdminPage(t *testing.T) {
	n := startAccessNode(t, storetest.Open(t), 200*time.Millisecond, adminToken)
	bctx := browser(t)

	// First start: no admin account, so the sign-in form takes the admin token.
	p := openSized(t, bctx, n.url+"/login?next=/admin", 1920, 1080, 1)
	p.waitAcross("the bootstrap field", `!!document.querySelector('input[name=token]')`)
	p.fill(`input[name=token]`, adminToken)
	p.do(chromedp.Click(`details.bootstrap button[type=submit]`))
	p.waitAcross("the admin page", `location.pathname === '/admin' && document.body.dataset.ready === 'true'`)

	create := func(username, role, password string) {
		t.Helper()
		p.fill(`#account-form input[name=username]`, username)
		p.do(chromedp.SetValue(`#account-form select[name=role]`, role))
		p.fill(`#account-form input[name=password]`, password)
		p.do(chromedp.Click(`#account-form button[type=submit]`))
		p.wait("account "+username+" listed", `!!document.querySelector('#account-list tr[data-username="`+username+`"]')`)
	}
	// A refused account says why, naming the field.
	p.fill(`#account-form input[name=username]`, "Bad Name")
	p.fill(`#account-form input[name=password]`, "long enough pw")
	p.do(chromedp.Click(`#account-form button[type=submit]`))
	p.wait("the refusal", `!document.querySelector('#account-form .form-error').hidden`)
	if msg := eval[string](p, `document.querySelector('#account-form .form-error').textContent`); !strings.Contains(msg, "username") {
		t.Errorf("refusal %q does not name the username", msg)
	}
	if !eval[bool](p, `document.querySelector('#account-form input[name=username]').getAttribute('aria-invalid') === 'true'`) {
		t.Error("the refused field is not marked")
	}
	create("ada", "admin", "admin password")
	create("vera", "viewer", "viewer password")

	// A display token is shown once, after its creation.
	p.fill(`#display-token-form input[name=name]`, "Wall 3")
	p.do(chromedp.Click(`#display-token-form button[type=submit]`))
	p.wait("the new token", `(document.querySelector('#display-tokens .secret code') || {}).textContent?.startsWith('tbd_')`)
	p.wait("the token listed", `document.querySelector('#display-token-list tbody').textContent.includes('Wall 3')`)
	p.snap("admin-1080p")
	k4 := openSized(t, bctx, n.url+"/admin", 1920, 1080, 2) // a 4K monitor: 3840 × 2160 pixels
	k4.wait("the admin page at 4K", `document.body.dataset.ready === 'true' && document.querySelector('#display-token-list tbody').textContent.includes('Wall 3')`)
	k4.snap("admin-4k")
	phone := openSized(t, bctx, n.url+"/admin", 390, 844, 3)
	phone.wait("the admin page on a phone", `document.body.dataset.ready === 'true'`)
	phone.snap("admin-phone")
	if tok := eval[string](phone, `document.body.textContent`); strings.Contains(tok, "tbd_") {
		t.Error("the display token is shown again after its creation")
	}

	// Sign out; the admin account exists, so the form no longer offers the admin token.
	p.do(chromedp.Click(`#signout button`))
	p.waitAcross("the sign-in form", `location.pathname === '/login' && !!document.querySelector('input[name=username]')`)
	if eval[bool](p, `!!document.querySelector('input[name=token]')`) {
		t.Error("the sign-in form still offers the admin token after the first admin account was created")
	}
	p.do(chromedp.Navigate(n.url + "/login?next=/admin"))
	p.waitAcross("the sign-in form", `!!document.querySelector('input[name=username]')`)
	p.fill(`input[name=username]`, "vera")
	p.fill(`input[name=password]`, "viewer password")
	p.do(chromedp.Click(`form > button[type=submit]`))
	p.waitAcross("the admin page, refused", `location.pathname === '/admin' && document.body.dataset.loaded === 'true'`)
	if got := eval[string](p, `document.getElementById('refusal').textContent`); !strings.Contains(got, "can only read") {
		t.Errorf("a viewer on the admin page sees %q, want a refusal saying viewers only read", got)
	}
	if eval[bool](p, `!document.getElementById('sections').hidden`) {
		t.Error("a viewer sees the admin sections")
	}
	// The dashboards work for the viewer, without a link to the admin page.
	p.do(chromedp.Navigate(n.url + "/executive"))
	p.waitAcross("the executive view, live", `document.body.dataset.live === 'fresh'`)
	if eval[bool](p, `!!document.getElementById('admin-link')`) {
		t.Error("a viewer's dashboard links to the admin page")
	}
	// And the admin API refuses the viewer.
	p.checkNoViolations()
}

func TestBrowserNoCredentialInLinks(t *testing.T) {
	n := startAccessNode(t, storetest.Open(t), time.Second, adminToken)
	n.mustPost(t, jsonArray(dashboardEvents("links", 40, time.Now().UTC().Add(-time.Minute)))).accepted(t, 40, 0)
	bctx := browser(t)

	p := openPage(t, bctx, n.url+"/drilldown?token="+adminToken+"&moment=fmot&window=15m")
	p.wait("the drill-down, live", `document.body.dataset.live === 'fresh'`)
	p.wait("the drill path", `document.querySelectorAll('#path a').length > 0`)
	links := eval[[]string](p, `[location.href, ...[...document.querySelectorAll('a[href]')].map((a) => a.href)]`)
	for _, l := range links {
		if strings.Contains(l, "token") || strings.Contains(l, adminToken) {
			t.Errorf("a link carries the credential: %s", l)
		}
	}
	if !strings.Contains(links[0], "moment=fmot") || !strings.Contains(links[0], "window=15m") {
		t.Errorf("the page's address lost its filters: %s", links[0])
	}
	// Drilling further keeps working without the token in the address.
	p.do(chromedp.Click(`#path a`))
	p.wait("the drill path walked up", `!location.search.includes('moment=')`)
	p.wait("still live", `document.body.dataset.live === 'fresh'`)
	if href := eval[string](p, `location.href`); strings.Contains(href, "token") {
		t.Errorf("the address carries the credential after a click: %s", href)
	}
	// The start page's links are clean too, and the view they open works in the same tab.
	p.do(chromedp.Navigate(n.url + "/?token=" + adminToken))
	p.wait("the start page", `!!document.querySelector('a[data-view]') && !location.search.includes('token')`)
	if hrefs := eval[string](p, `[...document.querySelectorAll('a')].map((a) => a.href).join(' ')`); strings.Contains(hrefs, "token") {
		t.Errorf("the start page's links carry the credential: %s", hrefs)
	}
	p.do(chromedp.Click(`a[href="/executive"]`))
	p.waitAcross("the executive view, live with the tab's credential", `location.pathname === '/executive' && document.body.dataset.live === 'fresh'`)
	p.checkClean()
}

func TestBrowserFilterStates(t *testing.T) {
	n := startAccessNode(t, storetest.Open(t), time.Second, adminToken)
	n.mustPost(t, jsonArray(dashboardEvents("states", 40, time.Now().UTC().Add(-time.Minute)))).accepted(t, 40, 0)
	n.settle(t)
	bctx := browser(t)
	for _, size := range []struct {
		name          string
		width, height int64
		scale         float64
	}{{"1080p", 1920, 1080, 1}, {"phone", 390, 844, 3}} {
		// A filter value the server does not know: its message on the page, not "Connecting".
		p := openSized(t, bctx, n.url+"/drilldown?token="+adminToken+"&channel=fax", size.width, size.height, size.scale)
		p.wait("the refusal", `document.getElementById('status')?.dataset.kind === 'refused'`)
		msg := eval[string](p, `document.getElementById('status').textContent`)
		if !strings.Contains(msg, "refused") || !strings.Contains(msg, "fax") {
			t.Errorf("%s: the refused view says %q, want the server's message naming fax", size.name, msg)
		}
		if label := eval[string](p, `document.querySelector('#badge .label').textContent`); label != "Refused" {
			t.Errorf("%s: the badge says %q, want Refused", size.name, label)
		}
		p.snap("bad-filter-" + size.name)
	}

	// A value that matches nothing: said so, with the values that have events.
	p := openPage(t, bctx, n.url+"/drilldown?token="+adminToken+"&region=North")
	p.wait("the empty state", `document.getElementById('status')?.dataset.kind === 'empty' && document.querySelectorAll('#status a[data-filter=region]').length === 2`)
	msg := eval[string](p, `document.getElementById('status').textContent`)
	if !strings.Contains(msg, "No events for region=North") || !strings.Contains(msg, "north") || !strings.Contains(msg, "south") {
		t.Errorf("the empty state says %q, want no events for region=North and the regions north and south", msg)
	}
	p.do(chromedp.Click(`#status a[data-filter=region]`))
	p.waitAcross("figures for the offered value", `document.body.dataset.live === 'fresh' && document.getElementById('status').hidden &&
		document.querySelector('.tile[data-kpi="events"] .value').textContent === '20'`)
	p.checkClean()
}

func TestBrowserRevokedGoesToSignIn(t *testing.T) {
	n := startAccessNode(t, storetest.Open(t), 100*time.Millisecond, adminToken, func(o *web.Options) {
		o.Live = web.LiveOptions{PingInterval: 200 * time.Millisecond, WriteTimeout: time.Second}
	})
	n.mustPost(t, jsonArray(dashboardEvents("revoked", 20, time.Now().UTC().Add(-time.Minute)))).accepted(t, 20, 0)
	bctx := browser(t)

	// A TV wall on a display token that an admin revokes.
	token := n.createDisplayToken(t, "Wall 9")
	id := strings.Split(strings.TrimPrefix(token, "tbd_"), "_")[0]
	p := openPage(t, bctx, n.url+"/tv?rotate=0&token="+token)
	p.wait("the wall, live", `document.body.dataset.live === 'fresh'`)
	if a := n.do(t, http.MethodDelete, "/v1/display-tokens/"+id, "", "Authorization", "Bearer "+adminToken); a.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	p.waitAcross("the sign-in page saying why", `location.pathname === '/login' && (document.getElementById('notice') || {}).textContent?.includes('revoked')`)
	if next := eval[string](p, `document.querySelector('input[name=next]').value`); next != "/tv?rotate=0" {
		t.Errorf("next = %q, want the wall's address without its token", next)
	}

	// A viewer whose account is deleted while the executive view is open.
	vera := n.createAccount(t, "vera", "viewer", "viewer password")
	p.do(chromedp.Navigate(n.url + "/login?next=/executive"))
	p.waitAcross("the sign-in form", `!!document.querySelector('input[name=username]')`)
	p.fill(`input[name=username]`, "vera")
	p.fill(`input[name=password]`, "viewer password")
	p.do(chromedp.Click(`form > button[type=submit]`))
	p.waitAcross("the executive view, live", `location.pathname === '/executive' && document.body.dataset.live === 'fresh'`)
	if a := n.do(t, http.MethodDelete, "/v1/accounts/"+vera, "", "Authorization", "Bearer "+adminToken); a.status != http.StatusNoContent {
		t.Fatalf("delete vera: %d %s", a.status, a.body)
	}
	p.waitAcross("the sign-in page saying why", `location.pathname === '/login' && (document.getElementById('notice') || {}).textContent?.includes('revoked')`)
	p.checkNoViolations()
}
