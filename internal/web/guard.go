package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/quota"
	"github.com/truthboard/truthboard/internal/telemetry"
)

// The edge's defences against clients that would use up what others need: who a client is
// behind proxies, the throttle of wrong credentials, Expect: 100-continue, the read API's share
// of the database, and how a refused request's body is left unread. The bounds of ingest are
// in events.go, those of live connections in live.go.

// maxThrottledAddresses bounds the addresses whose wrong credentials are remembered (quota.Buckets).
const maxThrottledAddresses = 100_000

// initGuards builds the state of the bounds that opts turn on.
func (s *Server) initGuards() {
	o := s.opts
	if o.MaxInflightBytesPerKey > 0 {
		s.keyInflight = quota.NewCounts()
	}
	if o.AuthFailuresPerMinute > 0 {
		n := o.AuthFailuresPerMinute
		s.authFailures = quota.NewBuckets(float64(n)/60, n, maxThrottledAddresses)
		s.userFailures = quota.NewBuckets(float64(n)/60, n, maxThrottledAddresses)
	}
	s.liveConns = quota.NewCounts()
	for _, p := range o.TrustedProxies {
		if prefix, err := config.ParseProxy(p); err == nil {
			s.proxies = append(s.proxies, prefix)
		}
	}
	if o.ReadMaxQueries > 0 {
		s.readSlots = make(chan struct{}, o.ReadMaxQueries)
	}
	if s.opts.UploadGrace <= 0 {
		s.opts.UploadGrace = 5 * time.Second
	}
}

// trusted reports whether addr is one of the trusted proxies.
func (s *Server) trusted(addr netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientAddr is the address of the client a request comes from: the peer of the connection,
// unless that is a trusted proxy, in which case the nearest address of X-Forwarded-For that is
// not a trusted proxy. The list is walked from its right end, the entry the proxy itself added,
// because the entries on its left are whatever the client wrote there.
func (s *Server) clientAddr(c *fiber.Ctx) netip.Addr {
	addr, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	addr = addr.Unmap()
	if len(s.proxies) == 0 || !s.trusted(addr) {
		return addr
	}
	var hops [][]byte
	for _, v := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, bytes.Split(v, []byte{','})...)
	}
	for i := len(hops) - 1; i >= 0 && s.trusted(addr); i-- {
		next, err := netip.ParseAddr(string(bytes.TrimSpace(hops[i])))
		if err != nil {
			break // not an address: the proxy is the nearest client we can name
		}
		addr = next.Unmap()
	}
	return addr
}

// addressKey names a client address for the bounds per address: an IPv6 client counts by its
// /64, which one machine usually has whole.
func addressKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// throttled is how long the request's client address must wait before a credential it
// presents is checked: 0 unless it presented too many wrong ones.
func (s *Server) throttled(c *fiber.Ctx) time.Duration {
	if s.authFailures == nil {
		return 0
	}
	return s.authFailures.Wait(addressKey(s.clientAddr(c)), time.Now())
}

// failedCredential counts a wrong credential against the request's client address.
func (s *Server) failedCredential(c *fiber.Ctx) {
	s.opts.Telemetry.AuthFailures.Inc()
	if s.authFailures != nil {
		s.authFailures.Take(addressKey(s.clientAddr(c)), time.Now())
	}
}

// retryAfter is wait in whole seconds for Retry-After, at least 1.
func retryAfter(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}

// tooManyFailuresMessage says why a throttled request was refused.
func tooManyFailuresMessage(secs int) string {
	return "too many wrong credentials came from this address: no credential from it is checked for " +
		strconv.Itoa(secs) + " s; retry then with the right one"
}

// tooManyFailures answers 429 to a request whose credential was not checked because its
// client address presented too many wrong ones.
func (s *Server) tooManyFailures(c *fiber.Ctx, wait time.Duration) error {
	secs := retryAfter(wait)
	s.opts.Telemetry.HTTPRefused.WithLabelValues(telemetry.RefusedAuthThrottled).Inc()
	s.dropBody(c)
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	return c.Status(fiber.StatusTooManyRequests).JSON(apiError{Error: tooManyFailuresMessage(secs)})
}

// dropWait is how long dropBody waits for the rest of a refused body.
const dropWait = time.Second

// dropBody leaves the body of a request refused before it was read: what of it arrives within
// dropWait, up to maxFormBytes, is read and thrown away, so a small body does not end a
// kept-alive connection; a longer or slower one closes the connection after the answer
// instead of being waited for.
func (s *Server) dropBody(c *fiber.Ctx) {
	stream := c.Context().RequestBodyStream()
	if stream == nil {
		return
	}
	if conn := c.Context().Conn(); conn != nil {
		_ = conn.SetReadDeadline(time.Now().Add(dropWait))
	}
	if n, err := io.Copy(io.Discard, io.LimitReader(stream, maxFormBytes+1)); n > maxFormBytes || err != nil {
		c.Context().SetConnectionClose()
	}
}

// mayContinue decides on "Expect: 100-continue", before any byte of the body is read: only
// an ingest request with a valid ingest key and a body within the limit is told to go on.
// Anything else gets 417 Expectation Failed, with the connection closed (a client may send its
// body anyway, which must not be read as a next request), and may send again without Expect to
// learn what is wrong. fasthttp (v1.52) would otherwise answer 100 Continue to anyone.
func (s *Server) mayContinue(h *fasthttp.RequestHeader) bool {
	path, _, _ := bytes.Cut(h.RequestURI(), []byte{'?'})
	token, ok := auth.BearerToken(string(h.Peek(fiber.HeaderAuthorization)))
	ok = ok && h.IsPost() && string(path) == "/v1/events" &&
		int64(h.ContentLength()) <= s.opts.Limits.MaxBodyBytes && s.opts.IngestKeys.Check(token)
	if !ok {
		s.opts.Telemetry.HTTPRefused.WithLabelValues(telemetry.RefusedExpect).Inc()
		h.SetConnectionClose()
	}
	return ok
}

// errReadBusy says that the read API's share of the database was in use for the whole wait.
var errReadBusy = errors.New("too many dashboard queries at once")

// reading takes one of the read API's query slots, waiting until ctx ends; release gives it
// back.
func (s *Server) reading(ctx context.Context) (release func(), err error) {
	if s.readSlots == nil {
		return func() {}, nil
	}
	select {
	case s.readSlots <- struct{}{}:
		return func() { <-s.readSlots }, nil
	case <-ctx.Done():
		return nil, errReadBusy
	}
}

// readBusy answers a read whose query found no free slot.
func (s *Server) readBusy(c *fiber.Ctx) error {
	s.opts.Telemetry.HTTPRefused.WithLabelValues(telemetry.RefusedReadBusy).Inc()
	c.Set(fiber.HeaderRetryAfter, "1")
	return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "the server is answering too many dashboard queries at once; retry after 1 s"})
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
