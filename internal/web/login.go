package web

import (
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/telemetry"
	"github.com/truthboard/truthboard/static"
)

// loginPage is the sign-in form, static/login.html. Unlike the dashboards' pages it is filled
// in per request: the error of the last attempt, where to go next, and the CSRF token.
var loginPage = template.Must(template.ParseFS(static.Files, "login.html"))

type loginData struct{ Error, Next, CSRF string }

// CSRFField is the name of the form field of the CSRF token, for the template.
func (loginData) CSRFField() string { return CSRFField }

// routeLogin adds signing in and out. Its style sheet is an asset (routeStatic).
func (s *Server) routeLogin() {
	forms := s.csrfProtect(false)
	s.app.Get("/login", forms, s.getLogin)
	s.app.Post("/login", forms, s.postLogin)
	s.app.Post("/logout", forms, s.postLogout)
}

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
	if wait := s.throttled(c); wait > 0 {
		secs := retryAfter(wait)
		s.opts.Telemetry.HTTPRefused.WithLabelValues(telemetry.RefusedAuthThrottled).Inc()
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
		return s.renderLogin(c, fiber.StatusTooManyRequests, loginData{Error: "Too many wrong tokens came from your address. Wait " +
			strconv.Itoa(secs) + " seconds, then try again with the admin token.", Next: next})
	}
	if !s.opts.AdminToken.Check(c.FormValue("token")) {
		s.failedCredential(c)
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
