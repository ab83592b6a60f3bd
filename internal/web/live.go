package web

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/quota"
	"github.com/truthboard/truthboard/internal/screen"
	"github.com/truthboard/truthboard/internal/telemetry"
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
	// MaxConnsPerCredential and MaxConnsPerAddress bound the open connections of one
	// credential (a display token, one sign-in, the admin token) and of one client address
	// (0: no bound); beyond them the upgrade is answered 429.
	MaxConnsPerCredential int
	MaxConnsPerAddress    int
	// SubscribeRate is how many messages per second a connection may send on average, after
	// a burst of SubscribeBurst (default 10); a faster one is closed with 1008 "subscribing too
	// fast". 0: no limit. Every message counts, valid or not: a screen sends one per change of
	// view or filters.
	SubscribeRate  float64
	SubscribeBurst int
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
	if o.SubscribeBurst <= 0 {
		o.SubscribeBurst = 10
	}
	return o
}

// liveUpgrade checks a WebSocket request before the upgrade: a viewer's token, the origin, then
// the bounds on connections of the credential and of the client address. Browsers cannot set
// headers on a WebSocket, so the token may come as ?token=.
func (s *Server) liveUpgrade(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return c.Status(fiber.StatusUpgradeRequired).JSON(apiError{Error: "GET /v1/live is a WebSocket: connect with a WebSocket client"})
	}
	cr := s.identify(c, true)
	if cr.wait > 0 {
		return s.tooManyFailures(c, cr.wait)
	}
	valid, who := s.liveCredential(c, cr)
	if valid == nil {
		return c.Status(fiber.StatusUnauthorized).JSON(apiError{Error: "send an admin or display token as Authorization: Bearer or as ?token="})
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" && !s.originAllowed(origin, c.Hostname()) {
		return c.Status(fiber.StatusForbidden).JSON(apiError{Error: "origin " + origin + " may not open live connections; add it to the allowed origins"})
	}
	l, ok, err := s.takeLiveConn(c, who)
	if !ok {
		return err
	}
	c.Locals(credentialLocal, valid)
	c.Locals(whoLocal, who)
	if cr.role == display {
		c.Locals(displayLocal, cr.id)
	}
	c.Locals(leaseLocal, l)
	err = c.Next()
	if c.Response().StatusCode() != fiber.StatusSwitchingProtocols {
		l.end() // no connection: the handshake failed
	} else {
		// liveConn takes the lease over as it starts. fasthttp (v1.52) does not start it when
		// writing the 101 fails, so the lease ends by itself if nothing took it by then.
		time.AfterFunc(leaseUnclaimed, func() {
			if l.claim() {
				l.end()
			}
		})
	}
	return err
}

// Names in a live connection's Locals (the WebSocket's Locals take string keys): the check
// that its credential still holds, the credential's name, and its lease on the bounds.
const (
	credentialLocal = "truthboard.live.credential"
	whoLocal        = "truthboard.live.who"
	leaseLocal      = "truthboard.live.lease"
	// displayLocal is the id of a display token: a paired screen's id.
	displayLocal = "truthboard.live.display"
)

// leaseUnclaimed is how long after its 101 a connection's lease waits to be taken over.
const leaseUnclaimed = 10 * time.Second

// liveCredential checks the viewer's credential of a live request and returns how to check it
// again later, nil when it is not valid now, and a name that tells this credential from others
// for the bounds per credential. The admin token cannot be revoked; a display token can, and a
// session expires.
func (s *Server) liveCredential(c *fiber.Ctx, cr credentials) (valid func() bool, who string) {
	switch {
	case cr.role < display:
		return nil, ""
	case cr.role == display:
		return func() bool { _, ok := s.opts.Access.DisplayTokens.Check(cr.token); return ok }, "display token " + cr.id
	case cr.viaCookie:
		session := strings.Clone(c.Cookies(SessionCookie))
		who = "session " + session
		if cr.account.ID != "" { // one account's sign-ins share its bound
			who = "account " + cr.account.ID
		}
		return func() bool { return s.session(session).role >= viewer }, who
	}
	return func() bool { return true }, "admin token"
}

// liveLease is one live connection's place in the counts of its credential and its address.
type liveLease struct {
	s             *Server
	who, addr     string
	claimed, done atomic.Bool
}

// takeLiveConn counts a new connection of credential who from the request's address; when
// either is at its bound it answers 429 instead, and ok is false.
func (s *Server) takeLiveConn(c *fiber.Ctx, who string) (l *liveLease, ok bool, err error) {
	o := s.opts.Live
	l = &liveLease{s: s, who: "credential " + who, addr: "address " + addressKey(s.clientAddr(c))}
	refuse := func(reason, msg string) error {
		s.opts.Telemetry.LiveRefused.WithLabelValues(reason).Inc()
		c.Set(fiber.HeaderRetryAfter, "30")
		return c.Status(fiber.StatusTooManyRequests).JSON(apiError{Error: msg})
	}
	if !s.liveConns.Add(l.addr, 1, int64(o.MaxConnsPerAddress)) {
		return nil, false, refuse(telemetry.LiveRefusedConnsPerAddress, "this address already has "+strconv.Itoa(o.MaxConnsPerAddress)+
			" live connections open, the most allowed; close a screen first")
	}
	if !s.liveConns.Add(l.who, 1, int64(o.MaxConnsPerCredential)) {
		s.liveConns.Sub(l.addr, 1)
		return nil, false, refuse(telemetry.LiveRefusedConnsPerCredential, "this credential (display token, sign-in or admin token) already has "+strconv.Itoa(o.MaxConnsPerCredential)+
			" live connections open, the most allowed; close a screen first, or give other screens a display token of their own")
	}
	return l, true, nil
}

// claim takes the lease over, once: from liveConn, or from the timer when liveConn never ran.
func (l *liveLease) claim() bool { return l.claimed.CompareAndSwap(false, true) }

// end gives the connection's places back, once.
func (l *liveLease) end() {
	if l.done.CompareAndSwap(false, true) {
		l.s.liveConns.Sub(l.addr, 1)
		l.s.liveConns.Sub(l.who, 1)
	}
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
	if l, ok := conn.Locals(leaseLocal).(*liveLease); ok && l.claim() {
		defer l.end()
	}
	o := s.opts.Live
	who, _ := conn.Locals(whoLocal).(string)
	client := live.NewClientOf(who)
	var subscribes *quota.Bucket
	if o.SubscribeRate > 0 {
		subscribes = quota.NewBucket(o.SubscribeRate, o.SubscribeBurst)
	}
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

	// A paired screen (a display token) reports heartbeats and receives commands.
	var screenConn *screen.Conn
	if id, _ := conn.Locals(displayLocal).(string); id != "" && s.opts.Screens.Fleet != nil {
		screenConn = s.opts.Screens.Fleet.Connect(id, client.Send)
		defer screenConn.Close()
	}

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
		// A flood of messages, each a subscription, would start and stop feeds as fast as it is
		// read: it ends the connection.
		if subscribes != nil && !subscribes.Take(time.Now()) {
			reason = live.TooFast
			break
		}
		if h, ok, err := screen.ParseHeartbeat(msg); ok {
			switch {
			case screenConn == nil:
				// The TV page beats whatever its credential: opened with a person's token or
				// session it is no screen of the fleet, and its beat is dropped, not refused as
				// a subscription (which would put a refusal on the wall every 5 s).
			case err != nil:
				client.Reply(live.ErrorMessage(err))
			default:
				screenConn.Heartbeat(h)
			}
			continue
		}
		sub, err := live.ParseClientMessage(msg)
		if err != nil {
			client.Reply(live.ErrorMessage(err))
			continue
		}
		if err := s.hub.Subscribe(client, sub); err != nil {
			client.Reply(live.ErrorMessage(err))
		}
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
