package web_test

// Tests of the security headers of every answer, of the origin check of /v1/live with its
// default settings, and that no credential reaches the log.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

func TestSecurityHeaders(t *testing.T) {
	n := startAccessNode(t, storetest.Open(t), time.Second, adminToken)
	host := strings.TrimPrefix(n.url, "http://")
	pages := map[string]bool{"/": true, "/tv": true, "/executive": true, "/drilldown": true, "/assets/css/app.css": true, "/assets/css/login.css": true, "/assets/js/live.js": true, "/assets/nope.js": true}
	for _, r := range []struct {
		method, path, body string
		headers            []string
		status             int
	}{
		{http.MethodGet, "/login", "", nil, http.StatusOK},
		{http.MethodGet, "/assets/css/login.css", "", nil, http.StatusOK},
		{http.MethodPost, "/login", "token=x", []string{"Content-Type", "application/x-www-form-urlencoded"}, http.StatusForbidden},
		{http.MethodGet, "/livez", "", nil, http.StatusOK},
		{http.MethodGet, "/nowhere", "", nil, http.StatusNotFound},
		{http.MethodPost, "/v1/events", "{}", nil, http.StatusUnauthorized},
		{http.MethodPost, "/v1/events", "[]", []string{"Authorization", "Bearer " + testKey}, http.StatusBadRequest},
		{http.MethodGet, "/v1/metrics?window=5m", "", nil, http.StatusUnauthorized},
		{http.MethodGet, "/v1/metrics?window=5m", "", []string{"Authorization", "Bearer " + adminToken}, http.StatusOK},
		{http.MethodGet, "/v1/ingest-keys", "", []string{"Authorization", "Bearer " + adminToken}, http.StatusOK},
		{http.MethodPost, "/v1/display-tokens", strings.Repeat("x", 100<<10), []string{"Authorization", "Bearer " + adminToken}, http.StatusRequestEntityTooLarge},
		{http.MethodGet, "/", "", nil, http.StatusOK},
		{http.MethodGet, "/tv", "", nil, http.StatusOK},
		{http.MethodGet, "/executive", "", nil, http.StatusOK},
		{http.MethodGet, "/drilldown", "", nil, http.StatusOK},
		{http.MethodGet, "/assets/css/app.css", "", nil, http.StatusOK},
		{http.MethodGet, "/assets/js/live.js", "", nil, http.StatusOK},
		{http.MethodGet, "/assets/nope.js", "", nil, http.StatusNotFound},
	} {
		a := n.do(t, r.method, r.path, r.body, r.headers...)
		name := r.method + " " + r.path
		if a.status != r.status {
			t.Errorf("%s: %d, want %d: %.200s", name, a.status, r.status, a.body)
		}
		for h, want := range map[string]string{
			"X-Content-Type-Options":       "nosniff",
			"X-Frame-Options":              "DENY",
			"Referrer-Policy":              "same-origin",
			"Cross-Origin-Opener-Policy":   "same-origin",
			"Cross-Origin-Resource-Policy": "same-origin",
			"Permissions-Policy":           "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
		} {
			if got := a.header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", name, h, got, want)
			}
		}
		if a.header.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: Strict-Transport-Security over plain HTTP", name)
		}
		csp := a.header.Get("Content-Security-Policy")
		if !pages[r.path] && csp != "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'" {
			t.Errorf("%s: Content-Security-Policy = %q", name, csp)
		}
		checkOnlySelf(t, name, csp, host)
	}

	// X-Forwarded-Proto from a client that is not a trusted proxy (none is, by default) is not
	// believed; from a trusted proxy that terminates TLS, browsers are told to come back over
	// HTTPS only.
	a := n.do(t, http.MethodGet, "/login", "", "X-Forwarded-Proto", "https")
	if got := a.header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("X-Forwarded-Proto from an untrusted client: Strict-Transport-Security = %q, want none", got)
	}
	proxied := startAccessNode(t, storetest.Open(t), time.Second, adminToken, func(o *web.Options) { o.TrustedProxies = []string{"127.0.0.0/8"} })
	a = proxied.do(t, http.MethodGet, "/login", "", "X-Forwarded-Proto", "https")
	if got := a.header.Get("Strict-Transport-Security"); got != "max-age=15552000" {
		t.Errorf("over HTTPS behind a trusted proxy: Strict-Transport-Security = %q, want max-age=15552000", got)
	}
}

// checkOnlySelf fails unless every source in csp is this server: 'self', 'none', its own
// WebSocket origins, data: images, or ECharts' style attributes; and unless frames, plugins,
// <base> and form targets are shut.
func checkOnlySelf(t *testing.T, name, csp, host string) {
	t.Helper()
	directives := map[string][]string{}
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			directives[f[0]] = f[1:]
		}
	}
	for dir, want := range map[string]string{"default-src": "'self'", "object-src": "'none'", "base-uri": "'none'",
		"form-action": "'self'", "frame-ancestors": "'none'"} {
		if got := strings.Join(directives[dir], " "); got != want {
			t.Errorf("%s: CSP %s is %q, want %q (policy %q)", name, dir, got, want, csp)
		}
	}
	for dir, sources := range directives {
		for _, src := range sources {
			switch {
			case src == "'self'" || src == "'none'",
				dir == "connect-src" && (src == "ws://"+host || src == "wss://"+host),
				dir == "img-src" && src == "data:",
				dir == "style-src-attr" && src == "'unsafe-inline'":
			default:
				t.Errorf("%s: CSP %s allows %q, which is not this server (policy %q)", name, dir, src, csp)
			}
		}
	}
}

// The origin check of /v1/live is on with the default settings (no allowed origins): a
// signed-in browser on another site cannot open the live feed with the viewer's cookie.
func TestLiveOriginCheckByDefault(t *testing.T) {
	n := startAccessNode(t, storetest.Open(t), time.Second, adminToken)
	session := sessionCookie(n.login(t, adminToken, "/", "Origin", n.url).header)
	if session == nil {
		t.Fatal("no session")
	}
	cookie := web.SessionCookie + "=" + session.Value
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"session, own origin", http.Header{"Cookie": {cookie}, "Origin": {n.url}}, http.StatusSwitchingProtocols},
		{"session, foreign origin", http.Header{"Cookie": {cookie}, "Origin": {"http://evil.example"}}, http.StatusForbidden},
		{"session, origin null", http.Header{"Cookie": {cookie}, "Origin": {"null"}}, http.StatusForbidden},
		{"session, own host over another scheme", http.Header{"Cookie": {cookie}, "Origin": {"ftp://" + strings.TrimPrefix(n.url, "http://")}}, http.StatusForbidden},
		// Not a browser: nothing to forge.
		{"session, no origin", http.Header{"Cookie": {cookie}}, http.StatusSwitchingProtocols},
	} {
		if got := n.handshake(t, "", tc.header); got != tc.want {
			t.Errorf("%s: handshake %d, want %d", tc.name, got, tc.want)
		}
	}
}

// syncBuffer is a bytes.Buffer that the server's goroutines may log to at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// No key, token, session or CSRF value reaches the log, whatever is presented, right or
// wrong, also while ClickHouse is down and the server logs its failures.
func TestNoSecretsInLogs(t *testing.T) {
	direct, proxied, proxy := storetest.OpenProxied(t, 500*time.Millisecond)
	// The writer comes from an ordinary test server; the server under test logs at debug level.
	ts := startServer(t, serverConfig{db: direct, sink: proxied, pinger: proxied})
	var logged syncBuffer
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	const refresh = 100 * time.Millisecond
	tokens := auth.NewDisplayCache(proxied.DisplayTokens, refresh, log.With("component", "display-tokens"))
	keys := auth.NewIngestKeyCache(proxied.IngestKeys, refresh, log.With("component", "ingest-keys"))
	var running sync.WaitGroup
	for _, c := range []*auth.Cache{tokens, keys} {
		if err := c.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		running.Go(func() { c.Run(ctx) })
	}
	hub := live.NewHub(proxied, live.Options{Tick: refresh}, log)
	srv := web.New(ts.writer, proxied, web.Options{
		Hub:        hub,
		IngestKeys: auth.NewKeySet(testKey),
		AdminToken: auth.NewKeySet(adminToken),
		Access:     web.AccessOptions{DisplayTokens: tokens, TokenStore: proxied, IngestKeys: keys, KeyStore: proxied},
	}, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { // before the writer of ts closes
		hub.Close()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		cancel()
		running.Wait()
	})
	n := &accessNode{liveServer: &liveServer{testServer: &testServer{url: "http://" + ln.Addr().String(), db: direct, client: ts.client}, hub: hub},
		noRedirect: &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	admin := "Bearer " + adminToken

	var key createdKey
	var tok createdToken
	for path, into := range map[string]any{"/v1/ingest-keys": &key, "/v1/display-tokens": &tok} {
		a := n.do(t, http.MethodPost, path, `{"name":"Wall 3"}`, "Authorization", admin)
		if a.status != http.StatusCreated || json.Unmarshal([]byte(a.body), into) != nil {
			t.Fatalf("POST %s: %d %s", path, a.status, a.body)
		}
	}
	secrets := map[string]string{
		"admin token": adminToken, "configured ingest key": testKey,
		"stored ingest key": key.Key, "display token": tok.Token,
		"wrong ingest key": "tbi_wrong_key_4c6f67", "wrong stored key": key.Key + "x",
		"wrong display token": tok.Token + "y", "wrong admin token": "tba_wrong_admin_5e63",
	}
	session := sessionCookie(n.login(t, adminToken, "/", "Origin", n.url).header)
	if session == nil {
		t.Fatal("no session")
	}
	csrf := n.csrfToken(t)
	secrets["session"], secrets["CSRF token"] = session.Value, csrf

	// Everything a client may present, right and wrong, on every route that checks it; then
	// the same while ClickHouse is down, so that failures are logged.
	present := func(round string) {
		_, evs := batch("logs-"+round, 1, base())
		for _, k := range []string{testKey, key.Key, secrets["wrong ingest key"], secrets["wrong stored key"], tok.Token, adminToken} {
			_, _ = n.post(jsonArray(evs), "Authorization", "Bearer "+k)
		}
		for _, k := range []string{tok.Token, secrets["wrong display token"], adminToken, secrets["wrong admin token"], key.Key} {
			n.do(t, http.MethodGet, "/v1/metrics?window=5m&token="+url.QueryEscape(k), "")
			n.do(t, http.MethodGet, "/v1/metrics?window=5m", "", "Authorization", "Bearer "+k)
			n.do(t, http.MethodGet, "/v1/ingest-keys", "", "Authorization", "Bearer "+k)
			n.handshake(t, k, nil)
			n.login(t, k, "/")
		}
		n.do(t, http.MethodPost, "/v1/display-tokens", `{"name":"x"}`, "Cookie", web.SessionCookie+"="+session.Value+"; "+web.CSRFCookie+"="+csrf,
			web.CSRFHeader, csrf, "Origin", n.url)
		n.do(t, http.MethodDelete, "/v1/ingest-keys/"+key.ID, "", "Authorization", admin)
	}
	present("up")
	proxy.Cut()
	eventually(t, 20*refresh, func() bool { return strings.Contains(logged.String(), "not refreshed") },
		"the server to log that ClickHouse is down")
	present("down")
	proxy.Restore()
	ts.settle(t) // events acknowledged during the outage reach ClickHouse before the writer closes

	out := logged.String()
	if !strings.Contains(out, "level=WARN") {
		t.Fatalf("nothing was logged at WARN, so this test checks nothing:\n%s", out)
	}
	for what, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log contains the %s", what)
		}
	}
	// The secret part of a stored credential, without its prefix and id, is not there either.
	for what, s := range map[string]string{"stored ingest key": key.Key, "display token": tok.Token} {
		if secret := s[len("tbx_")+16+1:]; strings.Contains(out, secret) { // after "<prefix><id>_"
			t.Errorf("the log contains the secret of the %s", what)
		}
	}
	t.Logf("%d log lines, none with a credential", strings.Count(out, "\n"))
}
