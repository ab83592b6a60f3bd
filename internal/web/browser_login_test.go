package web_test

// Browser tests of signing in: the real form in chromium, under the server's
// Content-Security-Policy and CSRF check, and a form on another site that tries to sign the
// browser in.

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

// checkNoViolations fails the test if the page broke a Content-Security-Policy or threw;
// answers with an error status, which this test causes on purpose, are allowed.
func (p *page) checkNoViolations() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		if !strings.Contains(e, "Failed to load resource: the server responded with a status of 4") {
			p.t.Errorf("page error: %s", e)
		}
	}
}

// waitAcross polls a JavaScript expression until it is truthy, through page loads: page.wait
// gives up when the page navigates while it polls, which signing in does on purpose.
func (p *page) waitAcross(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			href, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`location.href`))
			p.t.Fatalf("waiting for %s: %v (page: %s)", what, err, href)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBrowserSignIn(t *testing.T) {
	n := startAccessNode(t, storetest.Open(t), time.Second, adminToken)
	n.mustPost(t, jsonArray(dashboardEvents("signin", 40, time.Now().UTC().Add(-time.Minute)))).accepted(t, 40, 0)
	bctx := browser(t)

	// A TV wall opened without credentials offers to sign in beside its pairing code (this node
	// pairs no screens), and comes back once signed in.
	p := openPage(t, bctx, n.url+"/tv?rotate=0")
	p.waitAcross("the offer to sign in", `!document.getElementById('pairing').hidden`)
	p.do(chromedp.Click(`.pair-signin`))
	p.waitAcross("the sign-in form", `location.pathname === '/login' && !!document.querySelector('form input[name=token]')`)
	if next := eval[string](p, `document.querySelector('input[name=next]').value`); next != "/tv?rotate=0" {
		t.Errorf("next = %q, want /tv?rotate=0", next)
	}
	// The style sheet applied: the CSP let it load.
	if bg := eval[string](p, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(15, 23, 42)" {
		t.Errorf("the sign-in form is unstyled (background %q): its style sheet did not load", bg)
	}
	if tok := eval[string](p, `document.querySelector('input[name=`+web.CSRFField+`]').value`); tok == "" {
		t.Fatal("the form has no CSRF token")
	}

	p.do(chromedp.SendKeys(`input[name=token]`, "tba_wrong"), chromedp.Click(`button[type=submit]`))
	p.waitAcross("the error", `(document.querySelector('.error') || {}).textContent === 'That is not the admin token. Check it and try again.'`)

	p.do(chromedp.SendKeys(`input[name=token]`, adminToken), chromedp.Click(`button[type=submit]`))
	p.waitAcross("the TV wall with live figures", `location.pathname === '/tv' && document.body.dataset.live === 'fresh'`)
	if url := eval[string](p, `location.href`); strings.Contains(url, "token=") {
		t.Errorf("the admin token is in the URL after signing in: %s", url)
	}
	p.checkNoViolations()
}

// A page on another site posts the sign-in form to Truthboard, with the right admin token
// even: the browser sends no CSRF cookie with it (SameSite=Strict), so it is refused and the
// browser is not signed in.
func TestBrowserCrossSiteSignInRefused(t *testing.T) {
	n := startAccessNode(t, storetest.Open(t), time.Second, adminToken)
	bctx := browser(t)
	// The browser has visited the sign-in form before, so it holds a CSRF cookie for the server.
	p := openPage(t, bctx, n.url+"/login")
	p.waitAcross("the sign-in form", `!!document.querySelector('form input[name=token]')`)

	evil := http.NewServeMux()
	evil.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/login">
<input name="token" value="%s"><input name="next" value="/tv"><input name="%s" value="guessed">
<button type="submit">Win a prize</button></form>`, n.url, adminToken, web.CSRFField)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: evil, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	// localhost and 127.0.0.1 are different sites to the browser.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p.do(chromedp.Navigate("http://localhost:" + port + "/"))
	p.do(chromedp.Click(`button[type=submit]`))
	p.waitAcross("the refusal", `location.pathname === '/login' && (document.querySelector('.error') || {}).textContent.includes('sent from another site')`)

	// Not signed in: a dashboard sends the browser to the sign-in form again.
	p.do(chromedp.Navigate(n.url + "/executive"))
	p.waitAcross("the sign-in form again", `location.pathname === '/login'`)
}
