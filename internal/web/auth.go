package web

import (
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/account"
	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/telemetry"
)

// Who may do what:
//
//	credential                           dashboards' data (/v1/metrics, /v1/live…)   admin API
//	admin token (Bearer, or ?token=)     yes                                         yes (Bearer only)
//	session of an admin account          yes                                         yes, same-origin with a CSRF token
//	session of the admin token           yes                                         yes, same-origin with a CSRF token
//	session of a viewer account          yes                                         no (403)
//	display token (Bearer, or ?token=)   yes                                         no (403)
//	ingest key (Bearer)                  no                                          no
//
// People sign in with a username and password (login.go); the admin token signs in on the
// form only while no admin account exists, to create the first one (bootstrap).
//
// Tokens in a URL end up in logs and browser history, so the admin API takes the admin token
// only as a header; ?token= exists because browsers cannot set headers on a WebSocket and a
// TV wall is configured with a URL.
//
// This file says who is calling; login.go signs viewers in, csrf.go guards what a cookie
// authenticates, credentials.go is the admin API of stored credentials.

// SessionCookie is the name of the cookie of a signed-in viewer.
const SessionCookie = "tb_session"

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
	// Accounts checks the usernames and passwords of sign-ins and the sessions of accounts;
	// nil: the sign-in form takes the admin token only, as before accounts existed.
	Accounts *account.Cache
	// AccountStore keeps the accounts; nil leaves /v1/accounts out.
	AccountStore AccountStore
	// MaxHashing bounds the password hashes computed at once (sign-ins, new passwords), each
	// about 19 MiB for tens of milliseconds; a sign-in that finds no free slot within 5 s is
	// answered 503 (default 2).
	MaxHashing int
}

func (o AccessOptions) withDefaults() AccessOptions {
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.CSRFTTL <= 0 {
		o.CSRFTTL = 12 * time.Hour
	}
	if o.MaxHashing <= 0 {
		o.MaxHashing = 2
	}
	return o
}

// role is what a request's credentials allow.
type role int

const (
	nobody  role = iota
	display      // read-only: a display token
	viewer       // read-only: a viewer account's session
	admin        // the admin token, or the session of an admin account or of the admin token
)

// String names the role in answers (GET /v1/me).
func (r role) String() string {
	return [...]string{"none", "display", "viewer", "admin"}[r]
}

// credentials is who a request is.
type credentials struct {
	role      role
	viaCookie bool   // a session cookie, which a browser sends by itself: state changes need a same-origin check
	token     string // the display token itself (a copy), to check it again later
	id        string // the display token's id
	account   account.Account
	bad       bool // a token was presented but is not valid
	// revoked: a validly signed session whose account was deleted or changed since.
	revoked bool
	// wait is how long the client's address must wait before a token it presents is checked
	// again (throttle.go): it presented too many wrong ones. The token was not checked.
	wait time.Duration
}

// identify reads a request's credentials: the Authorization header, else ?token=, else the
// session cookie. A token that is presented and wrong is not overridden by a cookie.
func (s *Server) identify(c *fiber.Ctx, allowQuery bool) credentials {
	token, ok := auth.BearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok && allowQuery {
		token = c.Query("token")
	}
	if token != "" {
		if wait := s.throttled(c); wait > 0 {
			return credentials{wait: wait}
		}
		if s.opts.AdminToken.Check(token) {
			return credentials{role: admin}
		}
		if dc := s.opts.Access.DisplayTokens; dc != nil {
			if t, ok := dc.Check(token); ok {
				return credentials{role: display, token: strings.Clone(token), id: t.ID}
			}
		}
		s.failedCredential(c)
		return credentials{bad: true}
	}
	if v := c.Cookies(SessionCookie); v != "" {
		return s.session(v)
	}
	return credentials{}
}

// session is who a session cookie's value is: the account it was issued for, with the role
// the account has now, as long as the account exists and has not changed since the sign-in.
// A session of the admin token is an admin.
func (s *Server) session(value string) credentials {
	sub, ok := s.sessions.Check(value, s.now())
	if !ok {
		return credentials{}
	}
	if sub.Account == "" {
		if sub.Role != "admin" {
			return credentials{}
		}
		return credentials{role: admin, viaCookie: true}
	}
	var a account.Account
	if s.opts.Access.Accounts != nil {
		a, ok = s.opts.Access.Accounts.ByID(sub.Account)
	}
	if !ok || sub.Issued.Before(a.ChangedAt) {
		return credentials{revoked: true, viaCookie: true}
	}
	cr := credentials{role: viewer, viaCookie: true, account: a}
	if a.Role == account.Admin {
		cr.role = admin
	}
	return cr
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
		return s.unauthorized(c, cr)
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
// (csrfProtect, next in the chain): SameSite=Strict already keeps the cookie off cross-site
// requests, the Origin check covers old browsers and sibling subdomains.
func (s *Server) adminOnly() fiber.Handler {
	return func(c *fiber.Ctx) error {
		cr := s.identify(c, false)
		switch {
		case cr.role == display:
			return c.Status(fiber.StatusForbidden).JSON(apiError{Error: "display tokens are read-only: use the admin token or sign in at /login"})
		case cr.role == viewer:
			return c.Status(fiber.StatusForbidden).JSON(apiError{Error: "viewer accounts can only read: ask an admin to do this or to make " + cr.account.Username + " an admin"})
		case cr.role != admin:
			return s.unauthorized(c, cr)
		case cr.viaCookie && !safeMethod(c.Method()) && !s.sameOrigin(c, true):
			return c.Status(fiber.StatusForbidden).JSON(apiError{Error: "cross-origin request refused: send it from the dashboard's own pages, or use Authorization: Bearer with the admin token"})
		}
		return c.Next()
	}
}

// reasonError is an error answer with a reason a page acts on ("revoked": show why at sign-in).
type reasonError struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

func (s *Server) unauthorized(c *fiber.Ctx, cr credentials) error {
	if cr.wait > 0 {
		return s.tooManyFailures(c, cr.wait)
	}
	if cr.revoked {
		return c.Status(fiber.StatusUnauthorized).JSON(reasonError{Error: "your account was deleted or changed by an admin since you signed in: sign in again at /login", Reason: "revoked"})
	}
	if cr.bad {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="truthboard", error="invalid_token"`)
		return c.Status(fiber.StatusUnauthorized).JSON(apiError{Error: "the bearer token is not a valid admin or display token"})
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="truthboard"`)
	// The wording of docs/api.md ("Errors of the read API"); browsers are sent to /login by the pages.
	return c.Status(fiber.StatusUnauthorized).JSON(apiError{Error: "missing Authorization header: send the header Authorization: Bearer followed by your admin or display token"})
}

// bearer admits requests whose Authorization header carries a token of keys: the ingest keys
// on POST /v1/events, the admin token on GET /metrics. The token is kept in Locals for the
// rate limiter.
func (s *Server) bearer(keys *auth.KeySet, what string) fiber.Handler {
	// A refused ingest request counts as rejected; a refused scrape of /metrics does not.
	refused := func() {}
	if keys == s.opts.IngestKeys {
		refused = s.opts.Telemetry.EventsRejected.WithLabelValues(telemetry.RejectUnauthorized).Inc
	}
	return func(c *fiber.Ctx) error {
		token, ok := auth.BearerToken(c.Get(fiber.HeaderAuthorization))
		if !ok {
			refused()
			s.dropBody(c)
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="truthboard"`)
			return c.Status(fiber.StatusUnauthorized).JSON(apiError{Error: "missing Authorization header: send the header Authorization: Bearer followed by your " + what})
		}
		if wait := s.throttled(c); wait > 0 {
			return s.tooManyFailures(c, wait)
		}
		if !keys.Check(token) {
			refused()
			s.failedCredential(c)
			s.dropBody(c)
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="truthboard", error="invalid_token"`)
			return c.Status(fiber.StatusUnauthorized).JSON(apiError{Error: "the bearer token is not a valid " + what})
		}
		c.Locals(tokenKey{}, token)
		return c.Next()
	}
}

type tokenKey struct{}

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
