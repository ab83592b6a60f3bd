package web

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/live"
)

// LiveOptions are the settings of GET /v1/live.
type LiveOptions struct {
	// PingInterval is how often the server pings a screen; a screen that has not answered
	// within two intervals is closed with 1008 (default 10 s).
	PingInterval time.Duration
	// WriteTimeout bounds writing one message; a screen that takes longer is closed with 1008
	// (default 5 s).
	WriteTimeout time.Duration
	// ReadLimit bounds a client message in bytes; a larger one closes with 1009 (default 4 KiB).
	ReadLimit int64
	// AllowedOrigins are the browser origins (scheme://host[:port]) allowed besides the
	// server's own; "*" allows any. Clients that send no Origin (not browsers) are allowed.
	AllowedOrigins []string
}

func (o LiveOptions) withDefaults() LiveOptions {
	if o.PingInterval <= 0 {
		o.PingInterval = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = 4 << 10
	}
	return o
}

// liveUpgrade checks a WebSocket request before the upgrade: a viewer's token, then the origin.
// Browsers cannot set headers on a WebSocket, so the token may come as ?token=.
func (s *Server) liveUpgrade(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return c.Status(fiber.StatusUpgradeRequired).JSON(apiError{Error: "GET /v1/live is a WebSocket: connect with a WebSocket client"})
	}
	valid := s.liveCredential(c)
	if valid == nil {
		return c.Status(fiber.StatusUnauthorized).JSON(apiError{Error: "send an admin or display token as Authorization: Bearer or as ?token="})
	}
	c.Locals(credentialLocal, valid)
	if origin := c.Get(fiber.HeaderOrigin); origin != "" && !s.originAllowed(origin, c.Hostname()) {
		return c.Status(fiber.StatusForbidden).JSON(apiError{Error: "origin " + origin + " may not open live connections; add it to the allowed origins"})
	}
	return c.Next()
}

// credentialLocal names, in a live connection's Locals, the check that its credential still
// holds (the WebSocket's Locals take string keys).
const credentialLocal = "truthboard.live.credential"

// liveCredential checks the viewer's credential of a live request and returns how to check it
// again later: nil when it is not valid now. The admin token cannot be revoked; a display
// token can, and a session expires.
func (s *Server) liveCredential(c *fiber.Ctx) func() bool {
	cr := s.identify(c, true)
	switch {
	case cr.role < display:
		return nil
	case cr.role == display:
		return func() bool { _, ok := s.opts.Access.DisplayTokens.Check(cr.token); return ok }
	case cr.viaCookie:
		session := strings.Clone(c.Cookies(SessionCookie))
		return func() bool { return s.sessions.Valid(session, s.now()) }
	}
	return func() bool { return true }
}

// originAllowed admits the server's own origin and the configured ones.
func (s *Server) originAllowed(origin, host string) bool {
	allowed := s.opts.Live.AllowedOrigins
	if slices.Contains(allowed, "*") || slices.Contains(allowed, strings.TrimSuffix(origin, "/")) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host == host
}

// liveConn serves one screen: this goroutine reads subscriptions, one writer goroutine sends
// what the hub offers.
func (s *Server) liveConn(conn *websocket.Conn) {
	o := s.opts.Live
	client := live.NewClient()
	conn.SetReadLimit(o.ReadLimit)
	pongWait := 2 * o.PingInterval
	_ = conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })

	valid, _ := conn.Locals(credentialLocal).(func() bool)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.liveWriter(conn, client, valid)
	}()

	reason := live.ClientGone
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				reason = live.MessageTooBig
			case errors.As(err, &ne) && ne.Timeout():
				reason = live.SlowConsumer // no pong in time: the screen stopped reading
			}
			break
		}
		sub, err := live.ParseClientMessage(msg)
		if err != nil {
			client.Reply(live.ErrorMessage(err))
			continue
		}
		s.hub.Subscribe(client, sub)
	}
	client.Close(reason) // the first reason wins: the hub's, if it closed the client
	<-writerDone
	s.hub.Leave(client, reason)
}

// liveWriter is the connection's only writer: messages, pings, and the close frame. At each
// ping it checks that the screen's credential still holds (valid), so a revoked display token
// or an expired session ends an open connection too.
func (s *Server) liveWriter(conn *websocket.Conn, client *live.Client, valid func() bool) {
	o := s.opts.Live
	ping := time.NewTicker(o.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-client.Wake():
			for {
				msg, ok := client.TryNext()
				if !ok {
					break
				}
				_ = conn.SetWriteDeadline(time.Now().Add(o.WriteTimeout))
				if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
					client.Close(live.SlowConsumer)
					_ = conn.Close()
					return
				}
			}
		case <-ping.C:
			if valid != nil && !valid() {
				client.Close(live.Revoked) // the close frame follows from client.Done()
				continue
			}
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(o.WriteTimeout)); err != nil {
				client.Close(live.SlowConsumer)
				_ = conn.Close()
				return
			}
		case <-client.Done():
			r := client.Reason()
			if r != live.ClientGone {
				_ = conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(r.Code(), r.String()), time.Now().Add(time.Second))
			}
			// Give the reader a moment to receive the screen's close answer, then end it.
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			return
		}
	}
}
