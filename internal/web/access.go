package web

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/csrf"
	"github.com/gofiber/fiber/v2/middleware/helmet"

	"github.com/truthboard/truthboard/internal/auth"
)

// Who may do what:
//
//	credential                         dashboards' data (/v1/metrics, /v1/live…)   admin API
//	admin token (Bearer, or ?token=)   yes                                         yes (Bearer only)
//	session cookie tb_session          yes                                         yes, same-origin with a CSRF token
//	display token (Bearer, or ?token=) yes                                         no (403)
//	ingest key (Bearer)                no                                          no
//
// Tokens in a URL end up in logs and browser history, so the admin API takes the admin token
// only as a header; ?token= exists because browsers cannot set headers on a WebSocket and a
// TV wall is configured with a URL.

// SessionCookie is the name of the cookie of a signed-in viewer.
const SessionCookie = "tb_session"

// CSRFCookie holds a browser's anti-CSRF token. A request that the session cookie
// authenticates, and the sign-in form, must send the same value back as the CSRFField form
// field or the CSRFHeader header (double submit): another site can make a browser send the
// cookie, but cannot read it.
const (
	CSRFCookie = "tb_csrf"
	CSRFField  = "_csrf"
	CSRFHeader = csrf.HeaderName
)

// AccessOptions are the settings of signing in, display tokens and stored ingest keys.
type AccessOptions struct {
	// SessionTTL is how long a sign-in lasts (default 12 h).
	SessionTTL time.Duration
	// CSRFTTL is how long the CSRF token of a form stays valid (default 12 h).
	CSRFTTL time.Duration
	// DisplayTokens checks presented display tokens; nil accepts none.
	DisplayTokens *auth.DisplayCache
	// TokenStore keeps the display tokens; nil leaves the admin API of display tokens out.
	TokenStore TokenStore
	// IngestKeys checks presented stored ingest keys, accepted on POST /v1/events beside the
	// configured Options.IngestKeys; nil accepts only the configured ones.
	IngestKeys *auth.IngestKeyCache
	// KeyStore keeps the stored ingest keys; nil leaves the admin API of ingest keys out.
	KeyStore KeyStore
}

// TokenStore keeps display tokens; *store.Store in production.
type TokenStore interface {
	CreateDisplayToken(ctx context.Context, t auth.DisplayToken) error
	DisplayTokens(ctx context.Context) ([]auth.DisplayToken, error)
	RevokeDisplayToken(ctx context.Context, id string, at time.Time) (found bool, err error)
}

// KeyStore keeps stored ingest keys; *store.Store in production.
type KeyStore interface {
	CreateIngestKey(ctx context.Context, k auth.IngestKey) error
	IngestKeys(ctx context.Context) ([]auth.IngestKey, error)
	RevokeIngestKey(ctx context.Context, id string, at time.Time) (found bool, err error)
}

// role is what a request's credentials allow.
type role int

const (
	nobody  role = iota
	display      // read-only: a display token
	admin        // the admin token or a session
)

// credentials is who a request is.
type credentials struct {
	role      role
	viaCookie bool   // a session cookie, which a browser sends by itself: state changes need a same-origin check
	token     string // the display token itself (a copy), to check it again later
	bad       bool   // a token was presented but is not valid
}

// identify reads a request's credentials: the Authorization header, else ?token=, else the
// session cookie. A token that is presented and wrong is not overridden by a cookie.
func (s *Server) identify(c *fiber.Ctx, allowQuery bool) credentials {
	token, ok := auth.BearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok && allowQuery {
		token = c.Query("token")
	}
	if token != "" {
		if s.opts.AdminToken.Check(token) {
			return credentials{role: admin}
		}
		if dc := s.opts.Access.DisplayTokens; dc != nil {
			if _, ok := dc.Check(token); ok {
				return credentials{role: display, token: strings.Clone(token)}
			}
		}
		return credentials{bad: true}
	}
	if v := c.Cookies(SessionCookie); v != "" && s.sessions.Valid(v, s.now()) {
		return credentials{role: admin, viaCookie: true}
	}
	return credentials{}
}

// viewer admits the readers of the dashboards' data: GET /v1/metrics, /v1/consistency,
// /v1/stats.
func (s *Server) viewer() fiber.Handler {
	return func(c *fiber.Ctx) error {
		cr := s.identify(c, true)
		if cr.role >= display {
			stripTokenQuery(c)
			return c.Next()
		}
		return unauthorized(c, cr)
	}
}

// stripTokenQuery removes ?token= once it has been checked: the handlers refuse parameters
// they do not know, and the token has no business further in.
func stripTokenQuery(c *fiber.Ctx) {
	uri := c.Request().URI()
	args := uri.QueryArgs()
	if !args.Has("token") {
		return
	}
	args.Del("token")
	uri.SetQueryString(string(args.QueryString()))
}

// adminOnly admits the admin token (as a header) and sessions. A request that changes state
// with a session cookie must come from the server's own origin and carry a CSRF token
// (csrfCookieAuth, next in the chain): SameSite=Strict already keeps the cookie off cross-site
// requests, the Origin check covers old browsers and sibling subdomains.
func (s *Server) adminOnly() fiber.Handler {
	return func(c *fiber.Ctx) error {
		cr := s.identify(c, false)
		switch {
		case cr.role == display:
			return c.Status(fiber.StatusForbidden).JSON(apiError{Error: "display tokens are read-only: use the admin token or sign in at /login"})
		case cr.role != admin:
			return unauthorized(c, cr)
		case cr.viaCookie && !safeMethod(c.Method()) && !s.sameOrigin(c, true):
			return c.Status(fiber.StatusForbidden).JSON(apiError{Error: "cross-origin request refused: send it from the dashboard's own pages, or use Authorization: Bearer with the admin token"})
		}
		return c.Next()
	}
}

func unauthorized(c *fiber.Ctx, cr credentials) error {
	if cr.bad {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="truthboard", error="invalid_token"`)
		return c.Status(fiber.StatusUnauthorized).JSON(apiError{Error: "the bearer token is not a valid admin or display token"})
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="truthboard"`)
	// The wording of docs/api.md ("Errors of the read API"); browsers are sent to /login by the pages.
	return c.Status(fiber.StatusUnauthorized).JSON(apiError{Error: "missing Authorization header: send the header Authorization: Bearer followed by your admin or display token"})
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

// sameOrigin reports whether a request comes from the server's own origin (or an allowed
// one), by its Origin header, else its Referer. Without either, required decides: browsers
// send Origin on every POST and DELETE, so only non-browser clients send neither.
func (s *Server) sameOrigin(c *fiber.Ctx, required bool) bool {
	if o := c.Get(fiber.HeaderOrigin); o != "" {
		return o != "null" && s.originAllowed(o, c.Hostname())
	}
	if r := c.Get(fiber.HeaderReferer); r != "" {
		u, err := url.Parse(r)
		return err == nil && s.originAllowed(u.Scheme+"://"+u.Host, c.Hostname())
	}
	return !required
}

// contentSecurityPolicy lets an answer load, connect to and submit forms to nothing but this
// server, and be framed by no one. The dashboards' pages and assets replace it with their own,
// which adds the WebSocket origins and ECharts' style attributes (static.go).
const contentSecurityPolicy = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the security headers of every answer, with Fiber's helmet.
func securityHeaders() fiber.Handler {
	return helmet.New(helmet.Config{
		ContentSecurityPolicy: contentSecurityPolicy,
		XFrameOptions:         "DENY",
		// same-origin, not no-referrer: over HTTPS Fiber's CSRF check refuses a form post
		// without a Referer of this server, and no Referer leaves for another site either way.
		ReferrerPolicy:   "same-origin",
		PermissionPolicy: "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
		// Sent over HTTPS only (helmet checks); subdomains may be other services on plain HTTP.
		HSTSMaxAge:            180 * 24 * 3600,
		HSTSExcludeSubdomains: true,
	})
}

// csrfKey is the Locals key of the request's CSRF token, for the sign-in form.
type csrfKey struct{}

// csrfStorage makes Fiber's CSRF middleware stateless: a token is valid when this server's
// key signed it and it has not expired (auth.CSRFTokens), so a form served by one node is
// accepted by any other behind the load balancer, and nothing grows in memory per visitor.
// Fiber's default in-memory storage would know only the tokens of its own node.
type csrfStorage struct{ s *Server }

func (st csrfStorage) Get(token string) ([]byte, error) {
	if st.s.antiCSRF.Valid(token, st.s.now()) {
		return []byte{1}, nil
	}
	return nil, nil
}
func (csrfStorage) Set(string, []byte, time.Duration) error { return nil }
func (csrfStorage) Delete(string) error                     { return nil }
func (csrfStorage) Reset() error                            { return nil }
func (csrfStorage) Close() error                            { return nil }

// csrfFromRequest takes the token from the header (scripts) or else the form field (forms).
func csrfFromRequest(c *fiber.Ctx) (string, error) {
	if v := c.Get(CSRFHeader); v != "" {
		return v, nil
	}
	if v := c.FormValue(CSRFField); v != "" {
		return v, nil
	}
	return "", csrf.ErrTokenNotFound
}

// csrfProtect is Fiber's CSRF middleware with the double-submit cookie CSRFCookie. On the
// admin API, bearerExempt lets requests with an Authorization header through: they are not
// authenticated by a cookie that a browser would send by itself, and another site cannot make
// a browser add that header.
func (s *Server) csrfProtect(bearerExempt bool) fiber.Handler {
	cfg := csrf.Config{
		CookieName: CSRFCookie,
		CookiePath: "/",
		// Not HttpOnly: a page's script reads it to send CSRFHeader. It is no credential.
		CookieSameSite: fiber.CookieSameSiteStrictMode,
		Expiration:     s.antiCSRF.TTL(),
		KeyGenerator:   func() string { return s.antiCSRF.Issue(s.now()) },
		Storage:        csrfStorage{s},
		Extractor:      csrfFromRequest,
		ContextKey:     csrfKey{},
		ErrorHandler:   s.csrfRefused,
	}
	if bearerExempt {
		cfg.Next = func(c *fiber.Ctx) bool {
			_, ok := auth.BearerToken(c.Get(fiber.HeaderAuthorization))
			return ok
		}
	}
	return csrf.New(cfg)
}

// csrfRefused answers a request that failed the CSRF check: the sign-in form again, with a
// fresh token so that a form that merely expired works on the next try; elsewhere JSON.
func (s *Server) csrfRefused(c *fiber.Ctx, err error) error {
	if c.Path() == "/login" {
		token := s.antiCSRF.Issue(s.now())
		c.Cookie(&fiber.Cookie{Name: CSRFCookie, Value: token, Path: "/", SameSite: fiber.CookieSameSiteStrictMode,
			Expires: s.now().Add(s.antiCSRF.TTL())})
		c.Locals(csrfKey{}, token)
		return s.renderLogin(c, fiber.StatusForbidden, loginData{
			Error: "This sign-in form expired or was sent from another site, so it was refused. Sign in again here.",
			Next:  safeNext(c.FormValue("next"))})
	}
	return c.Status(fiber.StatusForbidden).JSON(apiError{Error: "CSRF check failed (" + err.Error() + "): a request signed in with the session cookie must send the value of the " +
		CSRFCookie + " cookie in the " + CSRFHeader + " header or the " + CSRFField + " form field; scripts can use Authorization: Bearer with the admin token instead"})
}

// routeAccess adds the routes of signing in, display tokens and stored ingest keys.
func (s *Server) routeAccess() {
	if s.opts.Access.SessionTTL <= 0 {
		s.opts.Access.SessionTTL = 12 * time.Hour
	}
	if s.opts.Access.CSRFTTL <= 0 {
		s.opts.Access.CSRFTTL = 12 * time.Hour
	}
	s.sessions = auth.NewSessions(s.opts.AdminToken, s.opts.Access.SessionTTL)
	s.antiCSRF = auth.NewCSRFTokens(s.opts.AdminToken, s.opts.Access.CSRFTTL)
	forms := s.csrfProtect(false)
	s.app.Get("/login", forms, s.getLogin)
	s.app.Get("/login.css", getLoginCSS)
	s.app.Post("/login", forms, s.postLogin)
	s.app.Post("/logout", forms, s.postLogout)

	cookieAuth := s.csrfProtect(true)
	if ts := s.opts.Access.TokenStore; ts != nil {
		s.routeCredentials(cookieAuth, credentialAPI{
			kind: auth.DisplayTokenKind, path: "/v1/display-tokens", list: "display_tokens",
			example: "Wall 3", cache: s.opts.Access.DisplayTokens,
			create: ts.CreateDisplayToken, all: ts.DisplayTokens, revoke: ts.RevokeDisplayToken,
		})
	}
	if ks := s.opts.Access.KeyStore; ks != nil {
		s.routeCredentials(cookieAuth, credentialAPI{
			kind: auth.IngestKeyKind, path: "/v1/ingest-keys", list: "ingest_keys",
			example: "web-checkout", cache: s.opts.Access.IngestKeys,
			create: ks.CreateIngestKey, all: ks.IngestKeys, revoke: ks.RevokeIngestKey,
		})
	}
}

// loginCSS styles the sign-in form. It is served from this server rather than inline, so the
// form needs nothing but the Content-Security-Policy's 'self'.
const loginCSS = `body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:#0f172a;color:#e2e8f0;font:16px/1.5 system-ui,sans-serif}
form{background:#1e293b;padding:2rem;border-radius:12px;width:min(22rem,90vw);box-shadow:0 10px 30px #0006}
h1{margin:0 0 1rem;font-size:1.4rem}
label{display:block;margin-bottom:.3rem}
input{box-sizing:border-box;width:100%;padding:.6rem;border:1px solid #475569;border-radius:6px;background:#0f172a;color:inherit;font:inherit}
button{margin-top:1rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#38bdf8;color:#0f172a;font:inherit;font-weight:600;cursor:pointer}
.error{background:#7f1d1d;color:#fee2e2;padding:.5rem .75rem;border-radius:6px;margin-bottom:1rem}
p.hint{color:#94a3b8;font-size:.85rem;margin:.75rem 0 0}
`

func getLoginCSS(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
	return c.SendString(loginCSS)
}

// loginPage is the sign-in form. It loads nothing from elsewhere: a TV wall or a locked-down
// network may have no internet.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Truthboard</title>
<link rel="stylesheet" href="/login.css">
</head>
<body><form method="post" action="/login">
<h1>Truthboard</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{{.Next}}">
<input type="hidden" name="` + CSRFField + `" value="{{.CSRF}}">
<button type="submit">Sign in</button>
<p class="hint">The admin token is in TRUTHBOARD_ADMIN_TOKEN or the server's secrets.json.</p>
</form></body></html>
`))

type loginData struct{ Error, Next, CSRF string }

func (s *Server) renderLogin(c *fiber.Ctx, status int, d loginData) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	d.CSRF, _ = c.Locals(csrfKey{}).(string)
	c.Type("html", "utf-8")
	var b strings.Builder
	if err := loginPage.Execute(&b, d); err != nil {
		return err
	}
	return c.Status(status).SendString(b.String())
}

func (s *Server) getLogin(c *fiber.Ctx) error {
	return s.renderLogin(c, fiber.StatusOK, loginData{Next: safeNext(c.Query("next"))})
}

func (s *Server) postLogin(c *fiber.Ctx) error {
	next := safeNext(c.FormValue("next"))
	if !s.sameOrigin(c, false) {
		return s.renderLogin(c, fiber.StatusForbidden, loginData{Error: "This sign-in came from another site and was refused. Open the sign-in page of this server and try again.", Next: next})
	}
	if !s.opts.AdminToken.Check(c.FormValue("token")) {
		return s.renderLogin(c, fiber.StatusUnauthorized, loginData{Error: "That is not the admin token. Check it and try again.", Next: next})
	}
	sessions := s.sessions
	now := s.now()
	c.Cookie(&fiber.Cookie{
		Name:     SessionCookie,
		Value:    sessions.Issue(now),
		Path:     "/",
		Expires:  now.Add(sessions.TTL()),
		MaxAge:   int(sessions.TTL().Seconds()),
		HTTPOnly: true,
		Secure:   c.Protocol() == "https",
		SameSite: fiber.CookieSameSiteStrictMode,
	})
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Redirect(next, fiber.StatusSeeOther)
}

func (s *Server) postLogout(c *fiber.Ctx) error {
	if !s.sameOrigin(c, false) {
		return c.Status(fiber.StatusForbidden).JSON(apiError{Error: "cross-origin sign-out refused"})
	}
	// Stateless sessions cannot be ended on the server: this deletes the browser's copy. Rotate
	// the admin token to end every session.
	c.Cookie(&fiber.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(1, 0),
		HTTPOnly: true, Secure: c.Protocol() == "https", SameSite: fiber.CookieSameSiteStrictMode})
	return c.Redirect("/login", fiber.StatusSeeOther)
}

// safeNext returns next when it is a path of this site, else "/": a sign-in must not send the
// browser to another site (open redirect), including by //host, /\host or a scheme.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || len(next) > 2000 {
		return "/"
	}
	if len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if next[i] < 0x20 || next[i] == 0x7f || next[i] == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

// credentialAPI is the admin API of one kind of stored credential: POST path creates one,
// GET path lists them, DELETE path/{id} revokes one.
type credentialAPI struct {
	kind    auth.Kind
	path    string // e.g. "/v1/display-tokens"
	list    string // the JSON field of the list, e.g. "display_tokens"
	example string // a name, for messages
	// cache, refreshed after a change so that this node sees it at once; may be nil.
	cache  *auth.Cache
	create func(context.Context, auth.Credential) error
	all    func(context.Context) ([]auth.Credential, error)
	revoke func(ctx context.Context, id string, at time.Time) (found bool, err error)
}

// credentialJSON is a stored credential as the admin API shows it: never its secret or hash.
type credentialJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Token     string     `json:"token,omitempty"` // a display token, only in the answer of its creation
	Key       string     `json:"key,omitempty"`   // an ingest key, likewise
	CreatedAt time.Time  `json:"created_at"`
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func toJSON(t auth.Credential) credentialJSON {
	j := credentialJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt.UTC(), Revoked: t.Revoked()}
	if t.Revoked() {
		at := t.RevokedAt.UTC()
		j.RevokedAt = &at
	}
	return j
}

// fieldError is a 400 answer about one field of the request.
type fieldError struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

// routeCredentials adds the admin API of one kind, behind adminOnly and the CSRF check of
// cookie-authenticated requests.
func (s *Server) routeCredentials(csrfCheck fiber.Handler, api credentialAPI) {
	g := s.app.Group(api.path, s.adminOnly(), csrfCheck)
	g.Post("", func(c *fiber.Ctx) error { return s.createCredential(c, api) })
	g.Get("", func(c *fiber.Ctx) error { return s.listCredentials(c, api) })
	g.Delete("/:id", func(c *fiber.Ctx) error { return s.revokeCredential(c, api) })
}

func (s *Server) createCredential(c *fiber.Ctx, api credentialAPI) error {
	var req struct {
		Name *string `json:"name"`
	}
	example := `{"name": "` + api.example + `"}`
	dec := json.NewDecoder(strings.NewReader(string(c.Body())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: "the body must be a JSON object such as " + example + ": " + err.Error()})
	}
	if dec.More() {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: "the body must be one JSON object such as " + example})
	}
	name := ""
	if req.Name != nil {
		name = *req.Name
	}
	if err := api.kind.ValidateName(name); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Error: "name " + err.Error(), Field: "name"})
	}
	cred, secret := api.kind.New(name, s.now())
	if err := api.create(c.UserContext(), cred); err != nil {
		return s.tokenStoreError(c, err)
	}
	s.refreshCredentials(c.UserContext(), api)
	j := toJSON(cred)
	if api.kind == auth.IngestKeyKind {
		j.Key = secret
	} else {
		j.Token = secret
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(j)
}

func (s *Server) listCredentials(c *fiber.Ctx, api credentialAPI) error {
	all, err := api.all(c.UserContext())
	if err != nil {
		return s.tokenStoreError(c, err)
	}
	out := make([]credentialJSON, 0, len(all))
	for _, t := range all {
		out = append(out, toJSON(t))
	}
	return c.JSON(fiber.Map{api.list: out})
}

func (s *Server) revokeCredential(c *fiber.Ctx, api credentialAPI) error {
	id := c.Params("id")
	if !auth.ValidCredentialID(id) {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Error: "id must be the 16 hex digits of " + api.kind.ANoun() + "'s id (see GET " + api.path + ")", Field: "id"})
	}
	found, err := api.revoke(c.UserContext(), id, s.now())
	if err != nil {
		return s.tokenStoreError(c, err)
	}
	if !found {
		return c.Status(fiber.StatusNotFound).JSON(apiError{Error: "no " + api.kind.Noun + " has the id " + id})
	}
	s.refreshCredentials(c.UserContext(), api)
	return c.SendStatus(fiber.StatusNoContent)
}

// refreshCredentials makes this node see a change at once; the others see it at their next
// refresh. A failure only delays it to the next refresh.
func (s *Server) refreshCredentials(ctx context.Context, api credentialAPI) {
	if api.cache != nil {
		if err := api.cache.Refresh(ctx); err != nil {
			s.log.Warn(api.kind.Noun+"s not refreshed after a change", "err", err)
		}
	}
}

func (s *Server) tokenStoreError(c *fiber.Ctx, err error) error {
	if unavailable(err) || errors.Is(err, context.DeadlineExceeded) {
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "the database is unavailable, retry after 5 s: " + err.Error()})
	}
	return err
}
