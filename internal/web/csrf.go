package web

import (
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/csrf"

	"github.com/truthboard/truthboard/internal/auth"
)

// CSRFCookie holds a browser's anti-CSRF token. A request that the session cookie
// authenticates, and the sign-in form, must send the same value back as the CSRFField form
// field or the CSRFHeader header (double submit): another site can make a browser send the
// cookie, but cannot read it.
const (
	CSRFCookie = "tb_csrf"
	CSRFField  = "_csrf"
	CSRFHeader = csrf.HeaderName
)

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
