package web

import (
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/account"
	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/telemetry"
	"github.com/truthboard/truthboard/static"
)

// loginPage is the sign-in form, static/login.html. Unlike the dashboards' pages it is filled
// in per request: the error of the last attempt, where to go next, and the CSRF token.
var loginPage = template.Must(template.ParseFS(static.Files, "login.html"))

type loginData struct {
	Error, Next, CSRF string
	// Notice says why the browser was sent here (?reason=), e.g. its access was revoked.
	Notice string
	// Bootstrap shows the admin token's field: no admin account exists yet.
	Bootstrap bool
	// Username is kept in the form after a failed attempt.
	Username string
}

// reasons are the messages of /login?reason=, set by the pages when they send a browser here.
var reasons = map[string]string{
	"revoked": "Your access was revoked or changed by an admin, so this page stopped. Sign in again; if that fails, ask an admin.",
	"expired": "Your sign-in expired. Sign in again to continue.",
}

// CSRFField is the name of the form field of the CSRF token, for the template.
func (loginData) CSRFField() string { return CSRFField }

// routeLogin adds signing in and out. Its style sheet is an asset (routeStatic).
func (s *Server) routeLogin() {
	forms := s.csrfProtect(false)
	s.app.Get("/login", forms, s.getLogin)
	s.app.Post("/login", forms, s.postLogin)
	s.app.Post("/logout", forms, s.postLogout)
}

// bootstrap reports whether the admin token may sign in on the form: only until the first
// admin account exists (or when the server keeps no accounts). It stays a bearer token for the
// API either way.
func (s *Server) bootstrap() bool {
	accounts := s.opts.Access.Accounts
	if accounts == nil {
		return true
	}
	n, _ := accounts.Admins()
	return n == 0
}

func (s *Server) renderLogin(c *fiber.Ctx, status int, d loginData) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	d.Bootstrap = s.bootstrap()
	d.CSRF, _ = c.Locals(csrfKey{}).(string)
	c.Type("html", "utf-8")
	var b strings.Builder
	if err := loginPage.Execute(&b, d); err != nil {
		return err
	}
	return c.Status(status).SendString(b.String())
}

func (s *Server) getLogin(c *fiber.Ctx) error {
	return s.renderLogin(c, fiber.StatusOK, loginData{Next: safeNext(c.Query("next")), Notice: reasons[c.Query("reason")]})
}

func (s *Server) postLogin(c *fiber.Ctx) error {
	next := safeNext(c.FormValue("next"))
	if !s.sameOrigin(c, false) {
		return s.renderLogin(c, fiber.StatusForbidden, loginData{Error: "This sign-in came from another site and was refused. Open the sign-in page of this server and try again.", Next: next})
	}
	if wait := s.throttled(c); wait > 0 {
		return s.loginThrottled(c, wait, "your address", next)
	}
	var (
		sub      auth.Subject
		d        loginData
		answered bool
		err      error
	)
	if token := c.FormValue("token"); token != "" {
		sub, d = s.tokenSignIn(c, token)
	} else if sub, d, answered, err = s.passwordSignIn(c, next); answered {
		return err
	}
	if d.Error != "" {
		d.Next = next
		return s.renderLogin(c, fiber.StatusUnauthorized, d)
	}
	sessions := s.sessions
	now := s.now()
	c.Cookie(&fiber.Cookie{
		Name:     SessionCookie,
		Value:    sessions.IssueFor(now, sub),
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

// loginThrottled answers a sign-in refused because who (the address, the username) presented
// too many wrong credentials.
func (s *Server) loginThrottled(c *fiber.Ctx, wait time.Duration, who, next string) error {
	secs := retryAfter(wait)
	s.opts.Telemetry.HTTPRefused.WithLabelValues(telemetry.RefusedAuthThrottled).Inc()
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	return s.renderLogin(c, fiber.StatusTooManyRequests, loginData{Error: "Too many wrong sign-ins came for " + who + ". Wait " +
		strconv.Itoa(secs) + " seconds, then try again.", Next: next})
}

// tokenSignIn signs in with the admin token, while no admin account exists.
func (s *Server) tokenSignIn(c *fiber.Ctx, token string) (auth.Subject, loginData) {
	if !s.bootstrap() {
		return auth.Subject{}, loginData{Error: "The admin token signs in here only until the first admin account exists. Sign in with your username and password."}
	}
	if !s.opts.AdminToken.Check(token) {
		s.failedCredential(c)
		return auth.Subject{}, loginData{Error: "That is not the admin token. Check it and try again."}
	}
	return auth.Subject{Role: "admin"}, loginData{}
}

// passwordSignIn signs in with a username and password, throttled per address (by the
// caller) and per username, so that guessing one account's password from many addresses does
// not pay either.
func (s *Server) passwordSignIn(c *fiber.Ctx, next string) (sub auth.Subject, d loginData, answered bool, err error) {
	username, password := strings.TrimSpace(c.FormValue("username")), c.FormValue("password")
	switch {
	case s.opts.Access.Accounts == nil:
		return sub, loginData{Error: "This server has no accounts: sign in with the admin token."}, false, nil
	case username == "" || password == "":
		return sub, loginData{Error: "Enter your username and password.", Username: username}, false, nil
	case len(username) > 4*account.MaxUsername || len(password) > 4*account.MaxPassword:
		return sub, loginData{Error: "Wrong username or password. Check them and try again."}, false, nil
	}
	userKey := "username " + username
	if s.userFailures != nil {
		if wait := s.userFailures.Wait(userKey, time.Now()); wait > 0 {
			return sub, d, true, s.loginThrottled(c, wait, "this username", next)
		}
	}
	release, err := s.hashing(c.UserContext())
	if err != nil {
		return sub, d, true, s.hashingBusy(c)
	}
	a, ok := s.opts.Access.Accounts.Authenticate(username, password)
	release()
	if !ok {
		s.failedCredential(c)
		if s.userFailures != nil {
			s.userFailures.Take(userKey, time.Now())
		}
		return sub, loginData{Error: "Wrong username or password. Check them and try again.", Username: username}, false, nil
	}
	return auth.Subject{Account: a.ID, Role: string(a.Role)}, d, false, nil
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
