// Package web is Truthboard's HTTP edge: routing, authentication, rate limits and the handlers
// of the public API, on Fiber. It is the only package that imports Fiber, so the core stays
// free of it (Fiber v2 is deprecated upstream in favour of v3; a move touches only this
// package).
package web

import (
	"context"
	"errors"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/deadletter"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/quota"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/telemetry"
)

// Writer makes accepted events durable; *ingest.Writer in production.
type Writer interface {
	Write(ctx context.Context, evs []event.Event) (ingest.Result, error)
	// Pace holds a request back while the spool's backlog is large, and returns how long
	// (ingest.Writer.Pace).
	Pace(ctx context.Context) time.Duration
	Stats() ingest.Stats
}

// Database answers health checks and metrics queries; *store.Store in production.
type Database interface {
	Ping(ctx context.Context) error
	Rollup(ctx context.Context, q rollup.Query, p rollup.Plan) ([]rollup.Group, error)
	// RollupEach yields the groups of Rollup one at a time, sorted by key (CSV exports).
	RollupEach(ctx context.Context, q rollup.Query, p rollup.Plan) iter.Seq2[*rollup.Group, error]
	Recovery(ctx context.Context, q rollup.Query, p rollup.Plan, now time.Time) ([]rollup.RecoveryGroup, error)
}

// Hub pushes live figures to the screens of GET /v1/live; *live.Hub in production.
type Hub interface {
	// Subscribe moves a screen to the feed of sub; a screen may change it at any time. An
	// error (a bound on feeds) is for the screen, which keeps the feed it had.
	Subscribe(c *live.Client, sub live.Subscription) error
	// Leave removes a screen whose connection ended, closed for reason.
	Leave(c *live.Client, reason live.CloseReason)
	// Stats are the feeds and screens, for GET /v1/stats.
	Stats() live.Stats
}

// unavailable reports whether err says that the database could not be reached, as opposed to
// a query it refused: the store marks such errors with an Unavailable method. They are
// answered 503 with Retry-After, the others 500.
func unavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// Options are the settings of the HTTP edge.
type Options struct {
	IngestKeys *auth.KeySet
	AdminToken *auth.KeySet
	// IngestRate is the requests per second one ingest key may make (0: unlimited).
	IngestRate int
	// Limits bound one ingest request.
	Limits event.Limits
	// Rules decide when a figure has enough data to be shown.
	Rules metric.Rules
	// Hub pushes live figures over GET /v1/live; nil leaves the route out.
	Hub Hub
	// Live are the settings of GET /v1/live.
	Live LiveOptions
	// Access are the settings of signing in, display tokens and stored ingest keys (auth.go).
	Access AccessOptions
	// MaxInflightBytes bounds the bodies of the ingest requests being decoded or waiting for
	// their flush; a request that would exceed it is refused with 503 before its body is
	// decoded, so decoded events take bounded memory however many clients send at once. It
	// counts bytes, not requests, so many small requests are not refused while the queue has
	// room (default 64 MiB).
	MaxInflightBytes int64
	// MaxInflightBytesPerKey is one ingest key's share of MaxInflightBytes (0: no share of its
	// own, the whole budget): a request that would take its key past it gets 429, so one key's
	// uploads, slow or many, never hold the budget of the others.
	MaxInflightBytesPerKey int64
	// MinUploadRate is the slowest average rate, in bytes per second after UploadGrace, at
	// which an ingest body may arrive (0: no minimum); a slower one is cut with 408 and its
	// connection closed, so a trickling upload does not hold its share of the budget for the
	// whole read timeout.
	MinUploadRate int64
	// UploadGrace is how long a body may take to get going before MinUploadRate applies
	// (default 5 s).
	UploadGrace time.Duration
	// AuthFailuresPerMinute is how many wrong credentials (bearer tokens, ?token=, the sign-in
	// form) one client address may present per minute, in a burst (0: no limit). Past it, its
	// requests that present a credential get 429 with Retry-After, before the credential is
	// checked, until it has waited.
	AuthFailuresPerMinute int
	// TrustedProxies are the IP addresses and CIDR ranges (as config.ParseProxy reads them;
	// others are ignored) of the proxies whose X-Forwarded-For, -Host and -Proto are believed.
	// Empty: those headers are ignored, whoever sends them.
	TrustedProxies []string
	// ReadMaxQueries bounds the ClickHouse queries of GET /v1/metrics and /v1/consistency at
	// once (0: no bound): the read API's share of the database's connections.
	ReadMaxQueries int
	// Now is the server's clock (nil: time.Now): it checks occurred_at on ingest and places the
	// windows of the metrics. Tests set it to make windows deterministic.
	Now func() time.Time
	// Alerts is the alert evaluator behind /v1/alerts and /v1/silences (alerts.go); nil leaves
	// those routes out.
	Alerts Alerting
	// AlertHistory lists recorded alert state changes (GET /v1/alerts/history).
	AlertHistory AlertHistory
	// Annotations are the settings of /v1/annotations (annotations.go).
	Annotations AnnotationOptions
	// FilterValues lists the values of the filter dimensions (GET /v1/filter-values); nil
	// leaves the route out.
	FilterValues FilterValueSource
	// Screens are the settings of pairing, /v1/screens and /v1/playlists (screens.go).
	Screens ScreenOptions
	// Telemetry are the metrics served on GET /metrics to the admin token (nil: metrics of the
	// server's own).
	Telemetry *telemetry.Metrics
}

// Server holds the Fiber app and what its handlers need.
type Server struct {
	app    *fiber.App
	writer Writer
	db     Database
	hub    Hub
	// inflightBytes is the body size of the ingest requests being decoded or stored.
	inflightBytes atomic.Int64
	// keyInflight is the same per ingest key (nil: no share per key).
	keyInflight *quota.Counts
	// decoding holds a token per ingest request being decompressed and decoded: one per CPU
	// but one (one at least), so that a burst of requests queues here instead of taking the
	// CPU from the drainer, which must keep ClickHouse busy (Server.decode).
	decoding chan struct{}
	// authFailures holds the wrong credentials of each client address (nil: no throttle).
	authFailures *quota.Buckets
	// liveConns counts the open live connections per credential and per address.
	liveConns *quota.Counts
	// proxies are the trusted proxies (Options.TrustedProxies).
	proxies []netip.Prefix
	// readSlots bounds the read API's queries at once (nil: no bound).
	readSlots chan struct{}
	opts      Options
	// sessions signs and checks session cookies (login.go).
	sessions *auth.Sessions
	// antiCSRF signs and checks the CSRF tokens of forms and cookie-authenticated requests (csrf.go).
	antiCSRF *auth.CSRFTokens
	log      *slog.Logger
	now      func() time.Time

	// hashSlots bounds the password hashes computed at once (accounts.go).
	hashSlots chan struct{}
	// userFailures holds the wrong passwords of each username (nil: no throttle).
	userFailures *quota.Buckets

	// exports counts the CSV exports being streamed (export.go).
	exports exportLimit
	// annotationWrites holds each credential's rate of annotation changes (annotations.go).
	annotationWrites *quota.Buckets
	// wrongCodes holds the wrong pairing codes of each client address (screens.go).
	wrongCodes *quota.Buckets
}

// New builds the HTTP server; Listen or App start it.
func New(w Writer, db Database, opts Options, log *slog.Logger) *Server {
	if opts.Limits.MaxBodyBytes <= 0 { // one default for Fiber's limit, the decoder's and the 413 message
		opts.Limits.MaxBodyBytes = event.DefaultMaxBodyBytes
	}
	if opts.MaxInflightBytes <= 0 {
		opts.MaxInflightBytes = 64 << 20
	}
	opts.Live = opts.Live.withDefaults()
	opts.Access = opts.Access.withDefaults()
	// Stored ingest keys (credentials.go) are accepted beside the configured ones.
	opts.IngestKeys = opts.IngestKeys.WithStored(opts.Access.IngestKeys)
	if opts.Telemetry == nil {
		opts.Telemetry = telemetry.New()
	}
	s := &Server{writer: w, db: db, hub: opts.Hub, opts: opts, log: log, now: time.Now,
		sessions:  auth.NewSessions(opts.AdminToken, opts.Access.SessionTTL),
		antiCSRF:  auth.NewCSRFTokens(opts.AdminToken, opts.Access.CSRFTTL),
		hashSlots: make(chan struct{}, opts.Access.MaxHashing),
		decoding:  make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1)),
	}
	if opts.Now != nil {
		s.now = opts.Now
	}
	s.initGuards()
	s.app = fiber.New(fiber.Config{
		AppName:               "truthboard",
		DisableStartupMessage: true,
		// Bodies are streamed: fasthttp reads only their first 8 KiB before the handler, so an
		// ingest body is read once it is admitted (postEvents) and other routes refuse large
		// ones (smallBodies). BodyLimit is then the size up to which fasthttp pre-reads.
		StreamRequestBody: true,
		// fasthttp would otherwise read a whole multipart body, into a temporary file, before
		// any handler or check runs (fasthttp v1.52, ContinueReadBodyStream): no route takes
		// multipart, and smallBodies refuses its size like any other body.
		DisablePreParseMultipartForm: true,
		// X-Forwarded-Host and -Proto are believed from the trusted proxies only (none by
		// default): c.Hostname() and c.Protocol(), behind the origin checks, the CSP's WebSocket
		// origin, HSTS and the Secure cookie flag, then follow the request itself.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          opts.TrustedProxies,
		BodyLimit:               int(opts.Limits.MaxBodyBytes),
		ReadTimeout:             readTimeout,
		WriteTimeout:            30 * time.Second,
		IdleTimeout:             120 * time.Second,
		ErrorHandler:            s.errorHandler,
	})
	// No 100 Continue before authentication (mayContinue).
	s.app.Server().ContinueHandler = s.mayContinue
	s.app.Use(recover.New(), securityHeaders(), s.smallBodies)
	s.app.Get("/livez", s.livez)
	s.app.Get("/readyz", s.readyz)
	// Prometheus scrapes with the admin token (scrape config authorization: credentials).
	s.app.Get("/metrics", s.bearer(opts.AdminToken, "admin token"), adaptor.HTTPHandler(opts.Telemetry.Handler()))

	v1 := s.app.Group("/v1")
	ingestAuth := s.bearer(opts.IngestKeys, "ingest key")
	if opts.IngestRate > 0 {
		v1.Post("/events", ingestAuth, s.rateLimit(opts.IngestRate), s.postEvents)
	} else {
		v1.Post("/events", ingestAuth, s.postEvents)
	}
	readers := s.viewer()
	v1.Get("/metrics", readers, s.getMetrics)
	v1.Get("/consistency", readers, s.getConsistency)
	if s.hub != nil {
		v1.Get("/stats", readers, func(c *fiber.Ctx) error { return c.JSON(s.hub.Stats()) })
		v1.Get("/live", s.liveUpgrade, websocket.New(s.liveConn, websocket.Config{HandshakeTimeout: 10 * time.Second}))
	}
	s.routeLogin()
	s.routeAccounts()
	s.routeFilterValues()
	s.routeCredentials()
	s.routeAlerts()
	s.routeAnnotations()
	s.routeScreens()
	s.routeStatic()
	return s
}

// Route is one route of the server: its method and path pattern.
type Route struct{ Method, Path string }

// Routes lists the server's routes (HEAD, which Fiber adds beside GET, left out), so a test can
// check that every route has its rule of who may call it.
func (s *Server) Routes() []Route {
	var out []Route
	seen := map[Route]bool{}
	for _, r := range s.app.GetRoutes(true) {
		rt := Route{r.Method, r.Path}
		if r.Method == fiber.MethodHead || seen[rt] {
			continue
		}
		seen[rt] = true
		out = append(out, rt)
	}
	return out
}

// App is the Fiber app, for tests (app.Test) and for Listen.
func (s *Server) App() *fiber.App { return s.app }

// Listen serves on addr until Shutdown.
func (s *Server) Listen(addr string) error { return s.app.Listen(addr) }

// Shutdown stops accepting connections and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.app.ShutdownWithContext(ctx) }

// readTimeout bounds reading a request, headers and body (fasthttp's ReadTimeout).
const readTimeout = 30 * time.Second

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

// headerErrorPrefix starts fasthttp's errors about unreadable request headers.
const headerErrorPrefix = "error when reading request headers: "

// readBufferSize is Fiber's default ReadBufferSize: the most bytes of request line and headers.
const readBufferSize = 4096

func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code = fe.Code
	}
	msg := err.Error()
	switch {
	case code == fiber.StatusRequestEntityTooLarge:
		msg = tooLargeMessage(s.opts.Limits.MaxBodyBytes)
	case code == fiber.StatusRequestHeaderFieldsTooLarge:
		msg = "the request line and headers are larger than " + strconv.Itoa(readBufferSize) + " bytes: shorten the URL (its filters) or the headers"
	case strings.HasPrefix(msg, headerErrorPrefix):
		// fasthttp's message quotes the raw request, Authorization header and body included:
		// keep only the reason, never echo a credential.
		reason, _, _ := strings.Cut(strings.TrimPrefix(msg, headerErrorPrefix), ". Buffer size=")
		msg = "the request headers cannot be read: " + reason
	}
	if code >= 500 {
		s.log.Error("request failed", "path", c.Path(), "err", err)
	}
	return c.Status(code).JSON(apiError{Error: msg})
}

// rateLimit allows perSecond requests per second for each token, with Fiber's sliding window.
func (s *Server) rateLimit(perSecond int) fiber.Handler {
	limited := s.opts.Telemetry.EventsRejected.WithLabelValues(telemetry.RejectRateLimited)
	return limiter.New(limiter.Config{
		Max:               perSecond,
		Expiration:        time.Second,
		LimiterMiddleware: limiter.SlidingWindow{},
		KeyGenerator:      func(c *fiber.Ctx) string { return c.Locals(tokenKey{}).(string) },
		LimitReached: func(c *fiber.Ctx) error {
			limited.Inc()
			c.Set(fiber.HeaderRetryAfter, "1")
			return c.Status(fiber.StatusTooManyRequests).JSON(apiError{
				Error: "rate limit of " + strconv.Itoa(perSecond) + " requests per second for this key reached; retry after 1 s or send more events per request"})
		},
	})
}

// maxFormBytes bounds the body of every route but POST /v1/events: sign-in forms and token
// requests are small.
const maxFormBytes = 64 << 10

// maxDrainBytes is the largest refused body that is read and thrown away before the 413, so
// that the client, still writing it, reads the answer instead of a reset connection. A larger
// one is refused unread.
const maxDrainBytes = 1 << 20

// smallBodies refuses a body over maxFormBytes on every route but ingest, which bounds its own
// (postEvents). With streamed bodies, fasthttp would otherwise read any length into memory for
// a handler that asks for the body.
func (s *Server) smallBodies(c *fiber.Ctx) error {
	if c.Path() == "/v1/events" {
		return c.Next()
	}
	n := c.Request().Header.ContentLength()
	if n > maxFormBytes || (n == -1 && c.Context().RequestBodyStream() != nil) {
		s.opts.Telemetry.HTTPRefused.WithLabelValues(telemetry.RefusedBodyTooLarge).Inc()
		if stream := c.Context().RequestBodyStream(); stream != nil && n > 0 && n <= maxDrainBytes {
			_, _ = io.CopyN(io.Discard, stream, int64(n))
		}
		c.Context().SetConnectionClose()
		return c.Status(fiber.StatusRequestEntityTooLarge).JSON(apiError{Error: "the body is larger than " + strconv.Itoa(maxFormBytes) + " bytes, the limit outside POST /v1/events"})
	}
	return c.Next()
}

func (s *Server) livez(c *fiber.Ctx) error { return c.SendString("ok\n") }

// readiness is the body of GET /readyz.
type readiness struct {
	// Ready is whether this server can acknowledge events: its spool has room. ClickHouse
	// being down does not make it unready, since events wait in the spool.
	Ready bool `json:"ready"`
	// Degraded is true while ClickHouse does not answer or its schema is not applied yet:
	// events are acknowledged from the spool, the dashboards show their last figures.
	Degraded   bool       `json:"degraded"`
	ClickHouse string     `json:"clickhouse"` // "ok", or why it does not answer
	Spool      spoolState `json:"spool"`
	// DeadLetter is what was kept aside because ClickHouse can never take it (not counted in
	// Ready: it blocks nothing).
	DeadLetter deadletter.Stats `json:"dead_letter"`
}

type spoolState struct {
	Events           int64   `json:"events"`
	Bytes            int64   `json:"bytes"`
	MaxBytes         int64   `json:"max_bytes"`
	Segments         int     `json:"segments"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	// FailedInserts is the inserts into ClickHouse that failed in a row (0 when it takes them).
	FailedInserts int    `json:"failed_inserts"`
	LastError     string `json:"last_error,omitempty"`
}

func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	st := s.writer.Stats()
	r := readiness{ClickHouse: "ok", Spool: spoolState{
		Events: st.Events, Bytes: st.Bytes, MaxBytes: st.MaxBytes, Segments: st.Segments,
		FailedInserts: st.Failures, LastError: st.LastError,
	}, DeadLetter: st.DeadLetter}
	if !st.Oldest.IsZero() {
		r.Spool.OldestAgeSeconds = time.Since(st.Oldest).Seconds()
	}
	if err := s.db.Ping(ctx); err != nil {
		r.ClickHouse, r.Degraded = "unavailable: "+err.Error(), true
	}
	// Ready while a typical request still fits: the body limit of room left in the spool.
	r.Ready = st.MaxBytes-st.Bytes >= s.opts.Limits.MaxBodyBytes
	if !r.Ready {
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.Status(fiber.StatusServiceUnavailable).JSON(r)
	}
	return c.JSON(r)
}

// Serve serves on an open listener until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }
