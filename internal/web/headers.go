package web

import (
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/helmet"
)

// One security-header policy for every answer: securityHeaders sets it on the whole app, and
// the dashboards' pages and assets only widen its Content-Security-Policy (pagePolicy).

// contentSecurityPolicy lets an answer load, connect to and submit forms to nothing but this
// server, and be framed by no one.
const contentSecurityPolicy = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// referrerPolicy is same-origin, not no-referrer: over HTTPS Fiber's CSRF check refuses a form
// post (sign-in, sign-out) without a Referer of this server. same-origin sends the Referer only
// back to this server, which already saw that URL (a TV wall's ?token= included), and nothing
// to another site.
const referrerPolicy = "same-origin"

// securityHeaders sets the security headers of every answer, with Fiber's helmet.
func securityHeaders() fiber.Handler {
	return helmet.New(helmet.Config{
		ContentSecurityPolicy: contentSecurityPolicy,
		XFrameOptions:         "DENY",
		ReferrerPolicy:        referrerPolicy,
		PermissionPolicy:      "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
		// Sent over HTTPS only (helmet checks); subdomains may be other services on plain HTTP.
		HSTSMaxAge:            180 * 24 * 3600,
		HSTSExcludeSubdomains: true,
	})
}

// plainHost is a Host header that is safe to repeat in a header: a name or address and a port.
var plainHost = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// pagePolicy replaces the Content-Security-Policy of a dashboard's page or asset: it still
// loads nothing but its own origin's scripts, styles and images, and connects only to its own
// origin, now over WebSocket too, so a dashboard never reaches the internet. ECharts sets
// element styles from script (CSSOM), which style-src does not restrict.
func pagePolicy(c *fiber.Ctx) {
	connect := "'self'"
	if host := c.Hostname(); plainHost.MatchString(host) {
		connect += " ws://" + host + " wss://" + host
	}
	c.Set(fiber.HeaderContentSecurityPolicy, strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"style-src-attr 'unsafe-inline'", // ECharts positions its layers with style attributes
		"img-src 'self' data:",
		"font-src 'self'",
		"connect-src " + connect,
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; "))
}
