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

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/store"
)

// Who may do what:
//
//	credential                         dashboards' data (/v1/metrics, /v1/live…)   admin API
//	admin token (Bearer, or ?token=)   yes                                         yes (Bearer only)
//	session cookie tb_session          yes                                         yes, same-origin only
//	display token (Bearer, or ?token=) yes                                         no (403)
//
// Tokens in a URL end up in logs and browser history, so the admin API takes the admin token
// only as a header; ?token= exists because browsers cannot set headers on a WebSocket and a
// TV wall is configured with a URL.

// SessionCookie is the name of the cookie of a signed-in viewer.
const SessionCookie = "tb_session"

// AccessOptions are the settings of signing in and of display tokens.
type AccessOptions struct {
	// SessionTTL is how long a sign-in lasts (default 12 h).
	SessionTTL time.Duration
	// DisplayTokens checks presented display tokens; nil accepts none.
	DisplayTokens *auth.DisplayCache
	// TokenStore keeps the display tokens; nil leaves the admin API of display tokens out.
	TokenStore TokenStore
}

// TokenStore keeps display tokens; *store.Store in production.
type TokenStore interface {
	CreateDisplayToken(ctx context.Context, t auth.DisplayToken) error
	DisplayTokens(ctx context.Context) ([]auth.DisplayToken, error)
	RevokeDisplayToken(ctx context.Context, id string, at time.Time) (found bool, err error)
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
	tokenID   string // the display token's id
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
			if t, ok := dc.Check(token); ok {
				return credentials{role: display, tokenID: t.ID}
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

// viewerAllowed reports whether a request before a WebSocket upgrade carries a viewer's
// credentials. Browsers cannot set headers on a WebSocket, so the token may come as ?token=;
// a signed-in browser sends its session cookie.
func (s *Server) viewerAllowed(c *fiber.Ctx) bool {
	return s.identify(c, true).role >= display
}

// adminOnly admits the admin token (as a header) and sessions. A request that changes state
// with a session cookie must come from the server's own origin (CSRF): SameSite=Strict
// already keeps the cookie off cross-site requests, the Origin check covers old browsers and
// sibling subdomains.
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

// routeAccess adds the routes of signing in and of display tokens.
func (s *Server) routeAccess() {
	if s.opts.Access.SessionTTL <= 0 {
		s.opts.Access.SessionTTL = 12 * time.Hour
	}
	s.sessions = auth.NewSessions(s.opts.AdminToken, s.opts.Access.SessionTTL)
	s.app.Get("/login", s.getLogin)
	s.app.Post("/login", s.postLogin)
	s.app.Post("/logout", s.postLogout)
	if s.opts.Access.TokenStore == nil {
		return
	}
	g := s.app.Group("/v1/display-tokens", s.adminOnly())
	g.Post("", s.createDisplayToken)
	g.Get("", s.listDisplayTokens)
	g.Delete("/:id", s.revokeDisplayToken)
}

// loginPage is the sign-in form. It loads nothing from elsewhere: a TV wall or a locked-down
// network may have no internet.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Truthboard</title>
<style>
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:#0f172a;color:#e2e8f0;font:16px/1.5 system-ui,sans-serif}
form{background:#1e293b;padding:2rem;border-radius:12px;width:min(22rem,90vw);box-shadow:0 10px 30px #0006}
h1{margin:0 0 1rem;font-size:1.4rem}
label{display:block;margin-bottom:.3rem}
input{box-sizing:border-box;width:100%;padding:.6rem;border:1px solid #475569;border-radius:6px;background:#0f172a;color:inherit;font:inherit}
button{margin-top:1rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#38bdf8;color:#0f172a;font:inherit;font-weight:600;cursor:pointer}
.error{background:#7f1d1d;color:#fee2e2;padding:.5rem .75rem;border-radius:6px;margin-bottom:1rem}
p.hint{color:#94a3b8;font-size:.85rem;margin:.75rem 0 0}
</style></head>
<body><form method="post" action="/login">
<h1>Truthboard</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{{.Next}}">
<button type="submit">Sign in</button>
<p class="hint">The admin token is in TRUTHBOARD_ADMIN_TOKEN or the server's secrets.json.</p>
</form></body></html>
`))

type loginData struct{ Error, Next string }

func (s *Server) renderLogin(c *fiber.Ctx, status int, d loginData) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
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

// displayTokenJSON is a display token as the admin API shows it: never its secret or hash.
type displayTokenJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Token     string     `json:"token,omitempty"` // only in the answer of its creation
	CreatedAt time.Time  `json:"created_at"`
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func toJSON(t auth.DisplayToken) displayTokenJSON {
	j := displayTokenJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt.UTC(), Revoked: t.Revoked()}
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

func (s *Server) createDisplayToken(c *fiber.Ctx) error {
	var req struct {
		Name *string `json:"name"`
	}
	dec := json.NewDecoder(strings.NewReader(string(c.Body())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: `the body must be a JSON object such as {"name": "Wall 3"}: ` + err.Error()})
	}
	if dec.More() {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: `the body must be one JSON object such as {"name": "Wall 3"}`})
	}
	name := ""
	if req.Name != nil {
		name = *req.Name
	}
	if err := auth.ValidateDisplayTokenName(name); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Error: "name " + err.Error(), Field: "name"})
	}
	t, token := auth.NewDisplayToken(name, s.now())
	if err := s.opts.Access.TokenStore.CreateDisplayToken(c.UserContext(), t); err != nil {
		return s.tokenStoreError(c, err)
	}
	s.refreshDisplayTokens(c.UserContext())
	j := toJSON(t)
	j.Token = token
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(j)
}

func (s *Server) listDisplayTokens(c *fiber.Ctx) error {
	all, err := s.opts.Access.TokenStore.DisplayTokens(c.UserContext())
	if err != nil {
		return s.tokenStoreError(c, err)
	}
	out := make([]displayTokenJSON, 0, len(all))
	for _, t := range all {
		out = append(out, toJSON(t))
	}
	return c.JSON(fiber.Map{"display_tokens": out})
}

func (s *Server) revokeDisplayToken(c *fiber.Ctx) error {
	id := c.Params("id")
	if !auth.ValidDisplayTokenID(id) {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Error: "id must be the 16 hex digits of a display token's id (see GET /v1/display-tokens)", Field: "id"})
	}
	found, err := s.opts.Access.TokenStore.RevokeDisplayToken(c.UserContext(), id, s.now())
	if err != nil {
		return s.tokenStoreError(c, err)
	}
	if !found {
		return c.Status(fiber.StatusNotFound).JSON(apiError{Error: "no display token has the id " + id})
	}
	s.refreshDisplayTokens(c.UserContext())
	return c.SendStatus(fiber.StatusNoContent)
}

// refreshDisplayTokens makes this node see a change at once; the others see it at their next
// refresh. A failure only delays it to the next refresh.
func (s *Server) refreshDisplayTokens(ctx context.Context) {
	if dc := s.opts.Access.DisplayTokens; dc != nil {
		if err := dc.Refresh(ctx); err != nil {
			s.log.Warn("display tokens not refreshed after a change", "err", err)
		}
	}
}

func (s *Server) tokenStoreError(c *fiber.Ctx, err error) error {
	if store.Unavailable(err) || errors.Is(err, context.DeadlineExceeded) {
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "the database is unavailable, retry after 5 s: " + err.Error()})
	}
	return err
}
