package web_test

// Tests of signing in and of display tokens: real HTTP servers (two nodes sharing one
// ClickHouse database where it matters) and real WebSocket handshakes.

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/account"
	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

// accessNode is one Truthboard node with sessions, display tokens and /v1/live.
type accessNode struct {
	*liveServer
	noRedirect *http.Client // does not follow redirects, to see them
}

// startAccessNode serves a node on db whose caches of display tokens and stored ingest keys
// refresh every refresh; set changes its options.
func startAccessNode(t *testing.T, db *store.Store, refresh time.Duration, admin string, set ...func(*web.Options)) *accessNode {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	cache := auth.NewDisplayCache(db.DisplayTokens, refresh, log)
	keys := auth.NewIngestKeyCache(db.IngestKeys, refresh, log)
	var done sync.WaitGroup
	for _, c := range []*auth.Cache{cache, keys} {
		if err := c.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		done.Go(func() { c.Run(ctx) })
	}
	accounts := account.NewCache(db.Accounts, refresh, log)
	if err := accounts.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	done.Go(func() { accounts.Run(ctx) })
	t.Cleanup(func() { cancel(); done.Wait() })
	hub := live.NewHub(db, live.Options{Tick: 100 * time.Millisecond}, log)
	opts := web.Options{
		Hub:          hub,
		AdminToken:   auth.NewKeySet(admin),
		FilterValues: db,
		Access: web.AccessOptions{DisplayTokens: cache, TokenStore: db, IngestKeys: keys, KeyStore: db,
			Accounts: accounts, AccountStore: db},
	}
	for _, f := range set {
		f(&opts)
	}
	ts := startServer(t, serverConfig{db: db, web: opts})
	t.Cleanup(hub.Close)
	return &accessNode{
		liveServer: &liveServer{testServer: ts, hub: hub},
		noRedirect: &http.Client{Timeout: 15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

type answerOf struct {
	status int
	header http.Header
	body   string
}

// do sends a request; headers are name, value pairs.
func (n *accessNode) do(t *testing.T, method, path, body string, headers ...string) answerOf {
	t.Helper()
	req, err := http.NewRequest(method, n.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := n.noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answerOf{resp.StatusCode, resp.Header, string(b)}
}

// csrfToken opens the sign-in form as a browser would and returns the CSRF token in its form
// and in the cookie the answer sets, which must be the same.
func (n *accessNode) csrfToken(t *testing.T) string {
	t.Helper()
	a := n.do(t, http.MethodGet, "/login", "")
	m := regexp.MustCompile(`name="` + web.CSRFField + `" value="([^"]+)"`).FindStringSubmatch(a.body)
	c := cookieOf(a.header, web.CSRFCookie)
	if a.status != http.StatusOK || m == nil || c == nil || c.Value != html.UnescapeString(m[1]) {
		t.Fatalf("GET /login: %d, cookie %v, form field %v: the form and the cookie must carry the same CSRF token", a.status, c, m)
	}
	return c.Value
}

// login posts the sign-in form with a CSRF token from the form, as a browser on the sign-in
// page would, and returns the answer.
func (n *accessNode) login(t *testing.T, token, next string, headers ...string) answerOf {
	t.Helper()
	csrf := n.csrfToken(t)
	return n.postForm(t, "/login", url.Values{"token": {token}, "next": {next}, web.CSRFField: {csrf}},
		append([]string{"Cookie", web.CSRFCookie + "=" + csrf}, headers...)...)
}

// postForm posts a form; headers are name, value pairs.
func (n *accessNode) postForm(t *testing.T, path string, form url.Values, headers ...string) answerOf {
	t.Helper()
	return n.do(t, http.MethodPost, path, form.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
}

// sessionCookie is the tb_session cookie an answer sets, or nil.
func sessionCookie(h http.Header) *http.Cookie { return cookieOf(h, web.SessionCookie) }

// cookieOf is the cookie named name that an answer sets, or nil.
func cookieOf(h http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// handshake opens /v1/live with the given query token and headers and returns the status.
func (n *accessNode) handshake(t *testing.T, token string, h http.Header) int {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(n.wsURL(token), h)
	if conn != nil {
		conn.Close()
	}
	if resp == nil {
		t.Fatalf("no HTTP answer to the handshake: %v", err)
	}
	return resp.StatusCode
}

func TestLogin(t *testing.T) {
	// Behind a TLS-terminating proxy on this machine: its X-Forwarded-Proto is believed.
	n := startAccessNode(t, storetest.Open(t), time.Second, adminToken, func(o *web.Options) { o.TrustedProxies = []string{"127.0.0.1"} })

	t.Run("form", func(t *testing.T) {
		a := n.do(t, http.MethodGet, "/login?next=/tv", "")
		if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") ||
			!strings.Contains(a.body, `<form method="post" action="/login">`) || !strings.Contains(a.body, `name="next" value="/tv"`) {
			t.Fatalf("GET /login: %d %q: %s", a.status, a.header.Get("Content-Type"), a.body)
		}
		for _, external := range []string{"http://", "https://", "//", "src=", "@import"} {
			if strings.Contains(a.body, external) {
				t.Errorf("the form loads something from elsewhere (%q)", external)
			}
		}
		// Nothing inline, so the Content-Security-Policy needs nothing but 'self'.
		for _, inline := range []string{"<style", "<script", "style="} {
			if strings.Contains(a.body, inline) {
				t.Errorf("the form has inline %q", inline)
			}
		}
		if css := n.do(t, http.MethodGet, "/assets/css/login.css", ""); !strings.Contains(a.body, `<link rel="stylesheet" href="/assets/css/login.css">`) ||
			css.status != http.StatusOK || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
			t.Errorf("the form's style sheet: %d %q", css.status, css.header.Get("Content-Type"))
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		for _, tok := range []string{"tba_wrong", adminToken + "x", testKey} {
			a := n.login(t, tok, "/")
			if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "not the admin token") || sessionCookie(a.header) != nil {
				t.Errorf("token %q: %d, cookie %v: %.200s; want 401, the form with an error, no cookie", tok, a.status, sessionCookie(a.header), a.body)
			}
		}
	})

	t.Run("foreign origin", func(t *testing.T) {
		for _, h := range [][]string{{"Origin", "http://evil.example"}, {"Origin", "null"}, {"Referer", "http://evil.example/login"}} {
			a := n.login(t, adminToken, "/", h...)
			if a.status != http.StatusForbidden || sessionCookie(a.header) != nil {
				t.Errorf("%s %s: %d, cookie %v; want 403 and no cookie", h[0], h[1], a.status, sessionCookie(a.header))
			}
		}
	})

	t.Run("CSRF", func(t *testing.T) {
		csrf := n.csrfToken(t)
		expired := auth.NewCSRFTokens(auth.NewKeySet(adminToken), time.Hour).Issue(time.Now().Add(-61 * time.Minute))
		foreign := auth.NewCSRFTokens(auth.NewKeySet("tba_other"), time.Hour).Issue(time.Now())
		form := func(tok string) url.Values {
			return url.Values{"token": {adminToken}, "next": {"/tv"}, web.CSRFField: {tok}}
		}
		for _, tc := range []struct {
			name    string
			form    url.Values
			headers []string
		}{
			// What another site's form can send: a browser adds no SameSite=Strict cookie to it.
			{"cross-site form post", url.Values{"token": {adminToken}}, []string{"Origin", "http://evil.example"}},
			{"no token, same origin", url.Values{"token": {adminToken}}, []string{"Origin", n.url}},
			{"field without the cookie", form(csrf), []string{"Origin", n.url}},
			{"cookie without the field", url.Values{"token": {adminToken}}, []string{"Origin", n.url, "Cookie", web.CSRFCookie + "=" + csrf}},
			{"field and cookie differ", form(csrf), []string{"Origin", n.url, "Cookie", web.CSRFCookie + "=" + n.csrfToken(t)}},
			{"expired form", form(expired), []string{"Origin", n.url, "Cookie", web.CSRFCookie + "=" + expired}},
			{"signed with another admin token", form(foreign), []string{"Origin", n.url, "Cookie", web.CSRFCookie + "=" + foreign}},
			// Over HTTPS, Fiber's CSRF check also wants a Referer of this server.
			{"https without a Referer", form(csrf), []string{"Cookie", web.CSRFCookie + "=" + csrf, "X-Forwarded-Proto", "https"}},
		} {
			a := n.postForm(t, "/login", tc.form, tc.headers...)
			fresh := cookieOf(a.header, web.CSRFCookie)
			if a.status != http.StatusForbidden || sessionCookie(a.header) != nil || !strings.Contains(a.body, "form expired or was sent from another site") {
				t.Errorf("%s: %d, session cookie %v: %.300s; want 403, the form with the error, no session", tc.name, a.status, sessionCookie(a.header), a.body)
				continue
			}
			// The form comes back with a fresh token, so a form that only expired works on the next try.
			if fresh == nil || fresh.Value == "" || !strings.Contains(a.body, html.EscapeString(fresh.Value)) {
				t.Errorf("%s: the refused form has no fresh CSRF token (cookie %v)", tc.name, fresh)
				continue
			}
			retry := n.postForm(t, "/login", form(fresh.Value), "Origin", n.url, "Cookie", web.CSRFCookie+"="+fresh.Value)
			if retry.status != http.StatusSeeOther || sessionCookie(retry.header) == nil {
				t.Errorf("%s: signing in again from the refused form: %d, want 303 with a session", tc.name, retry.status)
			}
		}
		host := strings.TrimPrefix(n.url, "http://")
		a := n.postForm(t, "/login", form(csrf), "Cookie", web.CSRFCookie+"="+csrf, "X-Forwarded-Proto", "https", "Referer", "https://"+host+"/login")
		if c := sessionCookie(a.header); a.status != http.StatusSeeOther || c == nil || !c.Secure {
			t.Errorf("https with this server's Referer: %d, session cookie %v; want 303 and a Secure cookie", a.status, c)
		}
	})

	t.Run("success", func(t *testing.T) {
		a := n.login(t, adminToken, "/tv?rotate=1", "Origin", n.url)
		c := sessionCookie(a.header)
		if a.status != http.StatusSeeOther || a.header.Get("Location") != "/tv?rotate=1" || c == nil {
			t.Fatalf("login: %d, Location %q, cookie %v; want 303 to /tv?rotate=1 with a cookie", a.status, a.header.Get("Location"), c)
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.MaxAge != 12*3600 {
			t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over http, Max-Age 12 h", c)
		}
	})

	t.Run("no open redirect", func(t *testing.T) {
		for next, want := range map[string]string{
			"":                       "/",
			"/drilldown?m=fmot#x":    "/drilldown?m=fmot#x",
			"//evil.example/x":       "/",
			"https://evil.example/":  "/",
			"/\\evil.example":        "/",
			"\\\\evil.example":       "/",
			"javascript:alert(1)":    "/",
			"/ok\r\nSet-Cookie: x=1": "/",
			"evil.example":           "/",
			"/%2F%2Fevil.example":    "/%2F%2Fevil.example", // a path of this site
		} {
			a := n.login(t, adminToken, next, "Origin", n.url)
			if a.status != http.StatusSeeOther || a.header.Get("Location") != want {
				t.Errorf("next %q: %d to %q, want 303 to %q", next, a.status, a.header.Get("Location"), want)
			}
		}
	})

	t.Run("logout", func(t *testing.T) {
		csrf := n.csrfToken(t)
		cookie := []string{"Cookie", web.CSRFCookie + "=" + csrf}
		a := n.postForm(t, "/logout", url.Values{web.CSRFField: {csrf}}, append(cookie, "Origin", n.url)...)
		c := sessionCookie(a.header)
		if a.status != http.StatusSeeOther || a.header.Get("Location") != "/login" || c == nil || c.MaxAge >= 0 && c.Value != "" {
			t.Errorf("logout: %d to %q, cookie %+v; want 303 to /login clearing the cookie", a.status, a.header.Get("Location"), c)
		}
		if a := n.postForm(t, "/logout", url.Values{web.CSRFField: {csrf}}, append(cookie, "Origin", "http://evil.example")...); a.status != http.StatusForbidden {
			t.Errorf("cross-origin logout: %d, want 403", a.status)
		}
		if a := n.do(t, http.MethodPost, "/logout", "", "Origin", n.url); a.status != http.StatusForbidden || !strings.Contains(a.body, "CSRF") {
			t.Errorf("logout without a CSRF token: %d %s, want 403 naming CSRF", a.status, a.body)
		}
	})
}

func TestSession(t *testing.T) {
	db := storetest.Open(t)
	n := startAccessNode(t, db, time.Second, adminToken)
	other := startAccessNode(t, db, time.Second, adminToken)      // another node behind the load balancer
	rotated := startAccessNode(t, db, time.Second, "tba_rotated") // a node whose admin token changed

	a := n.login(t, adminToken, "/", "Origin", n.url)
	c := sessionCookie(a.header)
	if c == nil {
		t.Fatalf("no session cookie: %d %s", a.status, a.body)
	}
	valid := c.Value
	mac := valid[strings.LastIndexByte(valid, '.')+1:]
	flipped := "A"
	if mac[0] == 'A' {
		flipped = "B"
	}
	parts := strings.Split(valid, ".")
	expired := auth.NewSessions(auth.NewKeySet(adminToken), time.Hour).Issue(time.Now().Add(-61 * time.Minute))

	for _, tc := range []struct {
		name   string
		node   *accessNode
		cookie string
		want   int
	}{
		{"valid", n, valid, http.StatusOK},
		{"valid on another node", other, valid, http.StatusOK},
		{"after the admin token changed", rotated, valid, http.StatusUnauthorized},
		{"tampered signature", n, valid[:len(valid)-len(mac)] + flipped + mac[1:], http.StatusUnauthorized},
		{"tampered expiry", n, parts[0] + "." + "9999999999" + "." + parts[2] + "." + parts[3], http.StatusUnauthorized},
		{"expired", n, expired, http.StatusUnauthorized},
		{"garbage", n, "x", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cookie := web.SessionCookie + "=" + tc.cookie
			if a := tc.node.do(t, http.MethodGet, "/v1/metrics?window=5m", "", "Cookie", cookie); a.status != tc.want {
				t.Errorf("GET /v1/metrics: %d, want %d: %.200s", a.status, tc.want, a.body)
			}
			want := tc.want
			if want == http.StatusOK {
				want = http.StatusSwitchingProtocols
			}
			if got := tc.node.handshake(t, "", http.Header{"Cookie": {cookie}}); got != want {
				t.Errorf("/v1/live handshake: %d, want %d", got, want)
			}
		})
	}

	t.Run("admin API", func(t *testing.T) {
		session := web.SessionCookie + "=" + valid
		if a := n.do(t, http.MethodGet, "/v1/display-tokens", "", "Cookie", session); a.status != http.StatusOK {
			t.Errorf("list with a session: %d: %s", a.status, a.body)
		}
		csrf := n.csrfToken(t)
		withCSRF := []string{"Cookie", session + "; " + web.CSRFCookie + "=" + csrf, web.CSRFHeader, csrf}
		otherCSRF := other.csrfToken(t) // signed by another node with the same admin token
		for _, tc := range []struct {
			name    string
			headers []string
			want    int
			says    string
		}{
			{"own origin", append([]string{"Origin", n.url}, withCSRF...), http.StatusCreated, ""},
			{"own referer", append([]string{"Referer", n.url + "/admin"}, withCSRF...), http.StatusCreated, ""},
			{"token of another node", []string{"Origin", n.url, "Cookie", session + "; " + web.CSRFCookie + "=" + otherCSRF, web.CSRFHeader, otherCSRF}, http.StatusCreated, ""},
			{"no CSRF token", []string{"Origin", n.url, "Cookie", session}, http.StatusForbidden, "CSRF check failed"},
			{"header without the cookie", []string{"Origin", n.url, "Cookie", session, web.CSRFHeader, csrf}, http.StatusForbidden, "CSRF check failed"},
			{"cookie without the header", []string{"Origin", n.url, "Cookie", session + "; " + web.CSRFCookie + "=" + csrf}, http.StatusForbidden, "CSRF check failed"},
			{"a session value as the token", []string{"Origin", n.url, "Cookie", session + "; " + web.CSRFCookie + "=" + valid, web.CSRFHeader, valid}, http.StatusForbidden, "CSRF check failed"},
			{"foreign origin", append([]string{"Origin", "http://evil.example"}, withCSRF...), http.StatusForbidden, "cross-origin"},
			{"foreign referer", append([]string{"Referer", "http://evil.example/"}, withCSRF...), http.StatusForbidden, "cross-origin"},
			{"neither", withCSRF, http.StatusForbidden, "cross-origin"},
			// A bearer token is not sent by a browser on its own: no CSRF token needed.
			{"bearer", []string{"Authorization", "Bearer " + adminToken}, http.StatusCreated, ""},
		} {
			h := append([]string{"Content-Type", "application/json"}, tc.headers...)
			a := n.do(t, http.MethodPost, "/v1/display-tokens", `{"name":"Wall"}`, h...)
			if a.status != tc.want || !strings.Contains(a.body, tc.says) {
				t.Errorf("%s: create with a session: %d, want %d saying %q: %s", tc.name, a.status, tc.want, tc.says, a.body)
			}
		}
	})
}

// createdToken is the answer of POST /v1/display-tokens.
type createdToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Token     string    `json:"token"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked"`
}

func TestDisplayTokens(t *testing.T) {
	db := storetest.Open(t)
	const refresh = 200 * time.Millisecond
	n := startAccessNode(t, db, refresh, adminToken)
	other := startAccessNode(t, db, refresh, adminToken)
	bearer := "Bearer " + adminToken

	a := n.do(t, http.MethodPost, "/v1/display-tokens", `{"name":"Wall 3"}`, "Authorization", bearer, "Content-Type", "application/json")
	var tok createdToken
	dec := json.NewDecoder(strings.NewReader(a.body))
	dec.DisallowUnknownFields()
	if a.status != http.StatusCreated || dec.Decode(&tok) != nil {
		t.Fatalf("create: %d: %s", a.status, a.body)
	}
	if tok.Name != "Wall 3" || !strings.HasPrefix(tok.Token, "tbd_"+tok.ID+"_") || len(tok.ID) != 16 || tok.Revoked ||
		time.Since(tok.CreatedAt) > time.Minute {
		t.Fatalf("create answered %+v", tok)
	}
	secret := strings.TrimPrefix(tok.Token, "tbd_"+tok.ID+"_")

	t.Run("list shows no secrets", func(t *testing.T) {
		a := n.do(t, http.MethodGet, "/v1/display-tokens", "", "Authorization", bearer)
		var list struct {
			DisplayTokens []createdToken `json:"display_tokens"`
		}
		if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &list) != nil || len(list.DisplayTokens) != 1 ||
			list.DisplayTokens[0].ID != tok.ID || list.DisplayTokens[0].Name != "Wall 3" {
			t.Fatalf("list: %d: %s", a.status, a.body)
		}
		if strings.Contains(a.body, secret) || strings.Contains(a.body, `"token"`) || strings.Contains(a.body, "sha256") {
			t.Errorf("the list shows a secret: %s", a.body)
		}
	})

	// Node n refreshed at creation; the other node sees the token within one refresh.
	for _, node := range []*accessNode{n, other} {
		eventually(t, 5*refresh, func() bool {
			return node.do(t, http.MethodGet, "/v1/metrics?window=5m", "", "Authorization", "Bearer "+tok.Token).status == http.StatusOK
		}, "the display token to work on /v1/metrics")
		if a := node.do(t, http.MethodGet, "/v1/metrics?window=5m&token="+tok.Token, ""); a.status != http.StatusOK {
			t.Errorf("/v1/metrics?token=: %d: %s", a.status, a.body)
		}
		if got := node.handshake(t, tok.Token, nil); got != http.StatusSwitchingProtocols {
			t.Errorf("/v1/live?token=display token: %d, want 101", got)
		}
	}

	t.Run("read-only", func(t *testing.T) {
		for _, r := range []struct{ method, path, body string }{
			{http.MethodGet, "/v1/display-tokens", ""},
			{http.MethodPost, "/v1/display-tokens", `{"name":"mine"}`},
			{http.MethodDelete, "/v1/display-tokens/" + tok.ID, ""},
		} {
			if a := n.do(t, r.method, r.path, r.body, "Authorization", "Bearer "+tok.Token, "Content-Type", "application/json"); a.status != http.StatusForbidden {
				t.Errorf("%s %s with a display token: %d, want 403: %s", r.method, r.path, a.status, a.body)
			}
			// The admin token in the URL is not accepted by the admin API either.
			if a := n.do(t, r.method, r.path+"?token="+adminToken, r.body); a.status != http.StatusUnauthorized {
				t.Errorf("%s %s?token=admin: %d, want 401", r.method, r.path, a.status)
			}
		}
		if a := n.do(t, http.MethodPost, "/v1/events", "{}", "Authorization", "Bearer "+tok.Token); a.status != http.StatusUnauthorized {
			t.Errorf("POST /v1/events with a display token: %d, want 401", a.status)
		}
		if a := n.login(t, tok.Token, "/"); a.status != http.StatusUnauthorized {
			t.Errorf("login with a display token: %d, want 401", a.status)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name, body, field, says string
		}{
			{"no name", `{}`, "name", "required"},
			{"empty", `{"name":""}`, "name", "required"},
			{"blank", `{"name":"   "}`, "name", "required"},
			{"too long", `{"name":"` + strings.Repeat("é", 65) + `"}`, "name", "at most 64"},
			{"control character", `{"name":"a\nb"}`, "name", "control"},
			{"not a string", `{"name":3}`, "", "JSON object"},
			{"unknown field", `{"name":"x","secret":"y"}`, "", "unknown field"},
			{"not JSON", `name=x`, "", "JSON object"},
		} {
			a := n.do(t, http.MethodPost, "/v1/display-tokens", tc.body, "Authorization", bearer, "Content-Type", "application/json")
			var e struct{ Error, Field string }
			if a.status != http.StatusBadRequest || json.Unmarshal([]byte(a.body), &e) != nil || e.Field != tc.field || !strings.Contains(e.Error, tc.says) {
				t.Errorf("%s: %d: %s; want 400 naming %q and saying %q", tc.name, a.status, a.body, tc.field, tc.says)
			}
		}
		if a := n.do(t, http.MethodPost, "/v1/display-tokens", `{"name":"`+strings.Repeat("é", 64)+`"}`, "Authorization", bearer); a.status != http.StatusCreated {
			t.Errorf("64-character name: %d: %s", a.status, a.body)
		}
		if a := n.do(t, http.MethodDelete, "/v1/display-tokens/nope", "", "Authorization", bearer); a.status != http.StatusBadRequest || !strings.Contains(a.body, `"field":"id"`) {
			t.Errorf("DELETE bad id: %d: %s", a.status, a.body)
		}
		if a := n.do(t, http.MethodDelete, "/v1/display-tokens/00000000deadbeef", "", "Authorization", bearer); a.status != http.StatusNotFound {
			t.Errorf("DELETE unknown id: %d: %s", a.status, a.body)
		}
		for _, h := range [][]string{nil, {"Authorization", "Bearer " + testKey}, {"Authorization", "Bearer tba_wrong"}} {
			if a := n.do(t, http.MethodGet, "/v1/display-tokens", "", h...); a.status != http.StatusUnauthorized {
				t.Errorf("list with %v: %d, want 401", h, a.status)
			}
		}
	})

	t.Run("revoke", func(t *testing.T) {
		if a := n.do(t, http.MethodDelete, "/v1/display-tokens/"+tok.ID, "", "Authorization", bearer); a.status != http.StatusNoContent {
			t.Fatalf("revoke: %d: %s", a.status, a.body)
		}
		revokedAt := time.Now()
		// The node that revoked refuses at once; the other within one refresh interval.
		if a := n.do(t, http.MethodGet, "/v1/metrics?window=5m", "", "Authorization", "Bearer "+tok.Token); a.status != http.StatusUnauthorized {
			t.Errorf("revoking node: /v1/metrics %d, want 401", a.status)
		}
		eventually(t, 5*refresh, func() bool {
			return other.do(t, http.MethodGet, "/v1/metrics?window=5m", "", "Authorization", "Bearer "+tok.Token).status == http.StatusUnauthorized
		}, "the other node to refuse the revoked token")
		t.Logf("refused by the other node %s after the revocation (refresh %s)", time.Since(revokedAt).Round(time.Millisecond), refresh)
		for _, node := range []*accessNode{n, other} {
			if got := node.handshake(t, tok.Token, nil); got != http.StatusUnauthorized {
				t.Errorf("/v1/live with a revoked token: %d, want 401", got)
			}
		}
		if a := n.do(t, http.MethodDelete, "/v1/display-tokens/"+tok.ID, "", "Authorization", bearer); a.status != http.StatusNoContent {
			t.Errorf("revoking twice: %d, want 204", a.status)
		}
		a := n.do(t, http.MethodGet, "/v1/display-tokens", "", "Authorization", bearer)
		if !strings.Contains(a.body, `"id":"`+tok.ID+`","name":"Wall 3"`) || !strings.Contains(a.body, `"revoked":true,"revoked_at":"`) {
			t.Errorf("list after revoking: %s", a.body)
		}
	})
}

// eventually polls cond every 20 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A screen open with a display token is closed with 4401 once the token is revoked, and can
// not connect again.
func TestRevokedDisplayTokenClosesLiveScreen(t *testing.T) {
	db := storetest.Open(t)
	const refresh = 100 * time.Millisecond
	n := startAccessNode(t, db, refresh, adminToken, func(o *web.Options) {
		o.Live = web.LiveOptions{PingInterval: 100 * time.Millisecond, WriteTimeout: time.Second}
	})
	bearer := "Bearer " + adminToken
	a := n.do(t, http.MethodPost, "/v1/display-tokens", `{"name":"Wall 7"}`, "Authorization", bearer, "Content-Type", "application/json")
	var tok createdToken
	if a.status != http.StatusCreated || json.Unmarshal([]byte(a.body), &tok) != nil {
		t.Fatalf("create: %d: %s", a.status, a.body)
	}
	conn, _, err := websocket.DefaultDialer.Dial(n.wsURL(tok.Token), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","view":"tv","window":"5m"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.ReadMessage(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if a := n.do(t, http.MethodDelete, "/v1/display-tokens/"+tok.ID, "", "Authorization", bearer); a.status != http.StatusNoContent {
		t.Fatalf("revoke: %d: %s", a.status, a.body)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue // updates until the next check
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4401 || ce.Text != "credential revoked" {
			t.Fatalf("the screen ended with %v, want close 4401 \"credential revoked\"", err)
		}
		break
	}
	if got := n.handshake(t, tok.Token, nil); got != http.StatusUnauthorized {
		t.Errorf("reconnect with the revoked token: %d, want 401", got)
	}
}
