// Package server assembles Truthboard: it is the one place that knows every component, starts
// them in dependency order and stops them in reverse. cmd/truthboard's serve, the benchmarks'
// in-process servers and the tests all start a server through Start; nothing else wires
// components together.
//
// The order, and why:
//
//  1. credentials: configured, or generated once into the data folder;
//  2. telemetry: every later component counts into it;
//  3. ClickHouse and its schema: everything below reads or writes it. A ClickHouse that does
//     not answer does not stop the start: the schema is applied in the background as soon as
//     it answers, and meanwhile every call of the store fails as unavailable (events wait in
//     the spool, dashboards show "Degraded", /readyz says degraded). A ClickHouse that answers
//     with a refusal (a wrong password, a migration it rejects) fails the start;
//  4. retention: drops expired days once ClickHouse is ready, then every hour; and the rollup
//     audit, which rebuilds from the raw events any rollup bucket that disagrees with them;
//  5. ingest: the claims of a cluster's nodes on events (NATS JetStream, when configured), the
//     spool that makes accepted events durable and its drainer into ClickHouse;
//  6. alerts: delivery (webhooks, Alertmanager), the lease of a cluster's alert evaluator
//     (with NATS), then the evaluator of the rules;
//  7. the annotations' cache, reloaded every tick, and the live hub: one feed of figures per
//     distinct view;
//  8. credential caches: display tokens, stored ingest keys and accounts, reloaded from ClickHouse;
//  9. the HTTP edge, on its listener;
//  10. demo traffic, sent through the HTTP edge like any other source.
//
// Stop runs the same list backwards: demo traffic stops, live screens are closed as going away,
// HTTP stops accepting and answers what is in flight, the caches and retention stop, the spool
// drains to ClickHouse within the stop's deadline, and ClickHouse is closed. Every goroutine a
// component started has returned when Stop returns. A Start that fails half-way stops what it
// had started, the same way.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/truthboard/truthboard/internal/account"
	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/alert/evaluator"
	"github.com/truthboard/truthboard/internal/alert/notify"
	"github.com/truthboard/truthboard/internal/annotation"
	"github.com/truthboard/truthboard/internal/audit"
	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/claim"
	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/deadletter"
	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/screen"
	"github.com/truthboard/truthboard/internal/spool"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/telemetry"
	"github.com/truthboard/truthboard/internal/web"
)

// Options are what the caller of Start provides besides the configuration.
type Options struct {
	// Log receives the components' logs; nil discards them.
	Log *slog.Logger
	// Out receives the lines meant for the person who started the server: where generated
	// credentials are, and the URL it answers on. Nil prints nothing.
	Out io.Writer
	// ObserveInsert, when set, is called after every insert of the spool's drainer, beside the
	// telemetry (the ingest benchmark counts inserts with it).
	ObserveInsert func(ingest.Attempt)
}

// Server is a running Truthboard. Its methods are safe for concurrent use.
type Server struct {
	cfg config.Config
	log *slog.Logger

	ingestKeys []string
	adminToken string
	url        string
	serveErr   chan error

	// stops are the components' stop functions in start order; Stop calls them backwards.
	stops   []component
	stopped sync.Once
	stopErr error
}

// component is one started component as Stop sees it.
type component struct {
	name string
	stop func(ctx context.Context) error
}

// Start starts every component of cfg in order and returns once the HTTP edge accepts
// connections. ctx bounds the start only (the first attempt at connecting and migrating); the
// server runs until Stop. On an error, what had been started is stopped again before Start
// returns.
func Start(ctx context.Context, cfg config.Config, opts Options) (*Server, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	s := &Server{cfg: cfg, log: log, serveErr: make(chan error, 1)}
	if err := s.start(ctx, out, opts); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if stopErr := s.Stop(stopCtx); stopErr != nil {
			log.Warn("stopping after a failed start", "err", stopErr)
		}
		return nil, err
	}
	return s, nil
}

// start runs the steps of Start; every component it starts is added to s.stops before the
// next one starts.
func (s *Server) start(ctx context.Context, out io.Writer, opts Options) error {
	cfg, log := s.cfg, s.log

	// 0. The memory limit, before anything allocates much.
	s.limitMemory()

	// 1. Credentials.
	if err := s.resolveCredentials(out); err != nil {
		return err
	}

	// 2. The metrics every component counts into, served on GET /metrics.
	metrics := telemetry.New()

	// 3. ClickHouse and its schema.
	db, err := store.New(StoreOptions(cfg))
	if err != nil {
		return err
	}
	s.add("clickhouse", func(context.Context) error { return db.Close() })
	applied, err := db.Bootstrap(ctx)
	switch {
	case err == nil:
		s.clickHouseReady(db, applied)
	case unavailable(err):
		log.Warn("ClickHouse does not answer: events are acknowledged into the spool, and the schema is applied as soon as it answers", "addr", cfg.ClickHouseAddr, "err", err)
		s.goLoop("clickhouse-bootstrap", func(ctx context.Context) { s.bootstrap(ctx, db) })
	default:
		return err
	}

	// 4. Retention.
	s.goLoop("retention", func(ctx context.Context) { dropExpired(ctx, db, cfg.Retention, log) })
	if cfg.AuditInterval > 0 {
		auditor := audit.New(db, audit.Options{
			Interval:  cfg.AuditInterval,
			Window:    cfg.AuditWindow,
			Retention: cfg.Retention,
			Metrics:   &metrics.Audit,
		}, log.With("component", "audit"))
		s.goLoop("audit", auditor.Run)
	}

	// 5. Ingest: the claims across nodes (with NATS), the spool (a crash's leftovers are sent
	// first) and its drainer.
	var claims ingest.Claimer
	var cluster *claim.Claims // also the alert evaluator's lease
	if cfg.NATSURL != "" {
		c, err := claim.Open(ctx, claim.Options{URL: cfg.NATSURL, Window: cfg.ClaimWindow, Replicas: cfg.ClaimReplicas}, log.With("component", "claim"))
		if err != nil {
			return err
		}
		s.add("claims", func(context.Context) error { c.Close(); return nil })
		claims, cluster = c, c
	}
	writer, err := ingest.Open(db, ingest.Options{
		Claims:      claims,
		ClaimWindow: cfg.ClaimWindow,
		// Several nodes share a ClickHouse cluster; without claims, only a lookup of every
		// event finds what the other nodes stored.
		LookupEveryBatch: cfg.ClickHouseCluster != "" && claims == nil,
		Spool:            spool.Options{Dir: cfg.SpoolFolder(), MaxBytes: int64(cfg.SpoolMaxBytes)},
		DeadLetter:       deadletter.Options{MaxBytes: int64(cfg.DeadLetterMaxBytes)},
		FlushInterval:    cfg.FlushInterval,
		FlushRows:        cfg.FlushRows,
		PrepareAhead:     cfg.PrepareAhead(),
		PaceBacklog:      cfg.PaceBacklog,
		PaceWait:         cfg.PaceWait,
		Observe: func(a ingest.Attempt) {
			metrics.ObserveInsert(a.LookedUp, a.Inserted, a.Took, a.Err)
			if opts.ObserveInsert != nil {
				opts.ObserveInsert(a)
			}
		},
	}, log.With("component", "ingest"))
	if err != nil {
		return err
	}
	s.add("ingest", func(ctx context.Context) error {
		err := writer.Close(ctx)
		log.Info("ingest stopped", "spool_events", writer.Stats().Events)
		if err != nil {
			return fmt.Errorf("ingest stopped before the spool was empty: %w", err)
		}
		return nil
	})
	metrics.WatchSpool(func() telemetry.SpoolStats {
		st := writer.Stats()
		return telemetry.SpoolStats{Segments: st.Segments, Bytes: st.Bytes, Events: st.Events, Oldest: st.Oldest}
	})
	metrics.WatchDeadLetter(func() telemetry.DeadLetterStats {
		st := writer.Stats().DeadLetter
		return telemetry.DeadLetterStats{Records: st.Records, Events: st.Events, Bytes: st.Bytes,
			UndecodableEvents: st.UndecodableEvents, RefusedEvents: st.RefusedEvents, Full: st.Full}
	})

	// 6. Alerts: delivery first (the evaluator hands it what fires), then the evaluator, which
	// restores the alerts of the history and evaluates every interval.
	alerts, err := s.startAlerts(ctx, db, cluster, metrics)
	if err != nil {
		return err
	}

	// 7. Live figures for the dashboards, with the recent annotations: reloaded at every tick
	// (one small query for the whole node, whatever the number of feeds), so that a change made
	// on another node reaches this node's screens within about a tick.
	annotations := annotation.NewCache(db.RecentAnnotations, db.AnnotationsStamp, cfg.LiveTick, log.With("component", "annotations"))
	if err := annotations.Refresh(ctx); err != nil && !unavailable(err) {
		return err
	}
	s.goLoop("annotations", annotations.Run)
	// Feeds start with the first screen, so the hub has nothing to stop before HTTP serves; it
	// is stopped right after HTTP starts (step 9).
	hub := live.NewHub(db, live.Options{
		Tick: cfg.LiveTick, MinTick: cfg.LiveMinTick, Landed: writer.Landed,
		Telemetry: metrics, MaxQueries: cfg.LiveMaxQueries,
		MaxFeeds: cfg.LiveMaxFeeds, MaxFeedsPerCredential: cfg.LiveMaxFeedsPerCredential,
		Alerts: aboutCustomers(alerts.Active), Annotations: annotations.Overlapping,
	}, log.With("component", "live"))

	// 8. Credentials kept in ClickHouse, reloaded so that a change on any node reaches this one.
	displayTokens := auth.NewDisplayCache(db.DisplayTokens, cfg.DisplayTokenRefresh, log.With("component", "display-tokens"))
	ingestKeyCache := auth.NewIngestKeyCache(db.IngestKeys, cfg.DisplayTokenRefresh, log.With("component", "ingest-keys"))
	for _, c := range []*auth.Cache{displayTokens, ingestKeyCache} {
		// Without ClickHouse a cache starts empty (only configured keys and the admin token
		// work) and fills on a later refresh; any other error is a bug to report at once.
		if err := c.Refresh(ctx); err != nil && !unavailable(err) {
			return err
		}
		s.goLoop("credential-cache", c.Run)
	}
	accounts := account.NewCache(db.Accounts, cfg.DisplayTokenRefresh, log.With("component", "accounts"))
	if err := accounts.Refresh(ctx); err != nil && !unavailable(err) {
		return err
	}
	s.goLoop("account-cache", accounts.Run)

	// 9. Screens: pairing, the fleet's state and commands, playlists, kept in ClickHouse.
	node, _ := os.Hostname()
	fleet := screen.New(db, screen.Options{
		Node: node + " " + cfg.Listen, CodeTTL: cfg.ScreenCodeTTL, OfflineAfter: cfg.ScreenOfflineAfter,
		MaxPending: cfg.ScreenMaxPending, MaxPendingPerAddress: cfg.ScreenMaxPendingPerAddress,
		CredentialsChanged: func(ctx context.Context) { _ = displayTokens.Refresh(ctx) },
	}, log.With("component", "screens"))
	metrics.WatchScreens(func() telemetry.ScreenStats {
		st := fleet.Stats()
		return telemetry.ScreenStats{Waiting: st.Waiting, Connected: st.Connected, Online: st.Online, Offline: st.Offline,
			Delivered: st.Delivered, WentOffline: st.WentOffline}
	})

	// 10. The HTTP edge.
	srv := web.New(writer, db, web.Options{
		Hub:       hub,
		Telemetry: metrics,
		Live: web.LiveOptions{
			AllowedOrigins:        cfg.AllowedOrigins,
			MaxConnsPerCredential: cfg.LiveMaxConnsPerCredential,
			MaxConnsPerAddress:    cfg.LiveMaxConnsPerAddress,
			SubscribeRate:         cfg.LiveSubscribeRate,
		},
		IngestKeys: auth.NewKeySet(s.ingestKeys...),
		AdminToken: auth.NewKeySet(s.adminToken),
		Access: web.AccessOptions{DisplayTokens: displayTokens, TokenStore: db, IngestKeys: ingestKeyCache, KeyStore: db,
			Accounts: accounts, AccountStore: db, MaxHashing: cfg.MaxPasswordHashes},
		Alerts:           alerts,
		AlertHistory:     db,
		Annotations:      web.AnnotationOptions{Store: db, Cache: annotations, PerMinute: cfg.AnnotationRate},
		FilterValues:     db,
		Screens:          web.ScreenOptions{Fleet: fleet, WrongCodesPerMinute: cfg.ScreenWrongCodesPerMinute},
		IngestRate:       cfg.IngestRate,
		MaxInflightBytes: int64(cfg.MaxInflightBytes),
		// The bounds on what one client may take.
		MaxInflightBytesPerKey: int64(cfg.MaxInflightBytesPerKey),
		MinUploadRate:          int64(cfg.MinUploadRate),
		AuthFailuresPerMinute:  cfg.AuthFailuresPerMinute,
		TrustedProxies:         cfg.TrustedProxies,
		ReadMaxQueries:         cfg.ReadMaxQueries,
		Limits: event.Limits{
			MaxBodyBytes: int64(cfg.MaxBodyBytes),
			MaxEvents:    cfg.MaxEvents,
			Retention:    cfg.Retention,
		},
	}, log)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (set -listen or TRUTHBOARD_LISTEN to a free host:port): %w", cfg.Listen, err)
	}
	served := make(chan struct{})
	var stopping atomic.Bool
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !stopping.Load() {
			s.serveErr <- fmt.Errorf("http server: %w", err)
		}
	}()
	s.add("http", func(ctx context.Context) error {
		stopping.Store(true)
		err := srv.Shutdown(ctx)
		// A Shutdown that comes before Serve has started is forgotten by fasthttp (v1.52), and
		// Serve would then run on: closing the listener ends it in every case.
		ln.Close()
		<-served
		return err
	})
	// Stopping closes every screen as going away (1001) before HTTP stops, so screens reconnect
	// to another node at once instead of holding the shutdown until their timeout.
	s.add("live", func(context.Context) error { hub.Close(); return nil })
	// Likewise the TVs waiting for pairing are told to come back (4408) before HTTP stops.
	// Its loop starts once nothing can fail any more, so a failed start leaves no goroutine.
	fleet.Start()
	s.add("screens", func(context.Context) error { fleet.Stop(); return nil })
	s.url = "http://" + ln.Addr().String()
	fmt.Fprintf(out, "Truthboard is running at %s (ingest: POST %s/v1/events)\n", s.url, s.url)

	// 11. Demo traffic, sent through the public API like any other source.
	if cfg.DemoRate > 0 {
		dc := demo.DefaultConfig()
		dc.URL, dc.Key, dc.Rate = s.url, s.ingestKeys[0], cfg.DemoRate
		demoLog := log.With("component", "demo")
		s.goLoop("demo", func(ctx context.Context) {
			if err := demo.Run(ctx, dc, demoLog); err != nil && ctx.Err() == nil {
				demoLog.Error("demo traffic stopped", "err", err)
			}
		})
	}
	return nil
}

// startAlerts starts alert delivery and the evaluator of the configured (or default) rules. On a
// cluster (cluster not nil) the nodes share a lease, and only its holder records and delivers.
func (s *Server) startAlerts(ctx context.Context, db *store.Store, cluster *claim.Claims, metrics *telemetry.Metrics) (*evaluator.Evaluator, error) {
	cfg, log := s.cfg, s.log.With("component", "alerts")
	// The rules: the configured file's (then the API may not change them), else those last set
	// over the API (kept in the data folder), else the default ones.
	rules := alert.DefaultRules()
	rulesFile, apiRules := cfg.AlertRulesFile, ""
	if rulesFile == "" {
		rulesFile = filepath.Join(cfg.DataDir, evaluator.APIRulesFile)
		apiRules = rulesFile
	}
	switch b, err := os.ReadFile(rulesFile); {
	case err == nil:
		if rules, err = alert.ParseRules(b); err != nil {
			return nil, fmt.Errorf("alert rules in %s (-alert-rules, TRUTHBOARD_ALERT_RULES, or PUT /v1/alert-rules): %w", rulesFile, err)
		}
	case apiRules == "" || !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("alert rules (-alert-rules, TRUTHBOARD_ALERT_RULES): %w", err)
	}
	// Besides the rules, the engine raises an alert for every paired screen gone silent.
	offline := screen.OfflineAlerts{Store: db, After: cfg.ScreenOfflineAfter}
	engine, err := alert.NewEngine(alert.Config{Rules: rules, Sources: []string{offline.Alertname()}})
	if err != nil {
		return nil, fmt.Errorf("alert rules: %w", err)
	}
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = "http://" + cfg.Listen
	}
	opts := evaluator.Options{Interval: cfg.AlertInterval, PublicURL: publicURL, RulesFile: apiRules, Annotations: db,
		Observers: []evaluator.Observer{offline}}
	delivery := notify.Delivery{Logger: log}
	var destinations []func() []notify.DestinationStats
	if len(cfg.AlertWebhookURLs) > 0 {
		wh, err := notify.NewWebhook(notify.WebhookConfig{URLs: cfg.AlertWebhookURLs, ExternalURL: publicURL, Delivery: delivery})
		if err != nil {
			return nil, fmt.Errorf("alert webhooks (-alert-webhook-url, TRUTHBOARD_ALERT_WEBHOOK_URL): %w", err)
		}
		wh.Start()
		s.add("alert-webhooks", wh.Close)
		opts.Webhooks = append(opts.Webhooks, wh)
		destinations = append(destinations, wh.Stats)
	}
	if len(cfg.AlertmanagerURLs) > 0 {
		am, err := notify.NewAlertmanager(notify.AlertmanagerConfig{URLs: cfg.AlertmanagerURLs, Delivery: delivery})
		if err != nil {
			return nil, fmt.Errorf("alertmanager URL (-alertmanager-url, TRUTHBOARD_ALERTMANAGER_URL): %w", err)
		}
		am.Start()
		s.add("alertmanager", am.Close)
		opts.Alertmanagers = append(opts.Alertmanagers, am)
		destinations = append(destinations, am.Stats)
	}
	if cluster != nil {
		node, _ := os.Hostname()
		lease, err := cluster.Lease(ctx, claim.LeaseOptions{Key: "alert-evaluator", Owner: node + " " + cfg.Listen,
			Renew: cfg.AlertInterval, TTL: 3 * cfg.AlertInterval}, log)
		if err != nil {
			return nil, fmt.Errorf("alert evaluator's lease (-nats-url, TRUTHBOARD_NATS_URL): %w", err)
		}
		lease.Start()
		s.add("alert-lease", func(context.Context) error { lease.Stop(); return nil })
		opts.Leader = lease.Held
	}
	ev := evaluator.New(engine, db, opts, log)
	ev.Start(ctx)
	s.add("alert-evaluator", func(context.Context) error { ev.Stop(); return nil })
	metrics.WatchAlerts(func() telemetry.AlertStats {
		st := ev.Stats()
		a := telemetry.AlertStats{Evaluations: st.Evaluations, Failures: st.Failures, LastDuration: st.LastDuration, Leader: opts.Leader == nil || opts.Leader()}
		for _, x := range ev.Active() {
			if x.State == alert.Firing {
				a.Firing++
			} else {
				a.Pending++
			}
		}
		return a
	}, func() []telemetry.DeliveryStats {
		var out []telemetry.DeliveryStats
		for _, stats := range destinations {
			for _, d := range stats() {
				out = append(out, telemetry.DeliveryStats{Kind: d.Kind, URL: d.URL, Sent: d.Sent, Failed: d.Failed, Retries: d.Retries, Dropped: d.Dropped, Queued: d.Queued})
			}
		}
		return out
	})
	return ev, nil
}

// URL is the address the HTTP edge answers on, e.g. http://127.0.0.1:8080; with a listen port
// of 0 it has the port the system chose.
func (s *Server) URL() string { return s.url }

// IngestKeys are the keys POST /v1/events accepts besides the stored ones: configured, or
// generated on the first start.
func (s *Server) IngestKeys() []string { return s.ingestKeys }

// AdminToken is the token of the dashboards and the admin API, configured or generated.
func (s *Server) AdminToken() string { return s.adminToken }

// Err receives the error that stopped the HTTP edge while the server was meant to run. The
// caller then calls Stop.
func (s *Server) Err() <-chan error { return s.serveErr }

// Stop stops the components in the reverse order of their start, each with ctx as its
// deadline (the spool drains to ClickHouse until then; what is left stays on disk for the
// next start), and returns when every goroutine of the server has returned. Only the first
// call stops; later ones return its result.
func (s *Server) Stop(ctx context.Context) error {
	s.stopped.Do(func() {
		var errs []error
		for i := len(s.stops) - 1; i >= 0; i-- {
			c := s.stops[i]
			if err := c.stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", c.name, err))
			}
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// limitMemory sets the Go runtime's soft memory limit to cfg.MemoryLimit, unless the operator
// set GOMEMLIMIT, which the runtime has applied already. Stop restores the previous limit.
func (s *Server) limitMemory() {
	if s.cfg.MemoryLimit <= 0 {
		return
	}
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		s.log.Info("memory limit from GOMEMLIMIT, not -memory-limit", "GOMEMLIMIT", env)
		return
	}
	previous := debug.SetMemoryLimit(int64(s.cfg.MemoryLimit))
	s.add("memory limit", func(context.Context) error {
		debug.SetMemoryLimit(previous)
		return nil
	})
}

// add records a started component's stop function.
func (s *Server) add(name string, stop func(ctx context.Context) error) {
	s.stops = append(s.stops, component{name: name, stop: stop})
}

// goLoop runs loop in a goroutine with a context of its own; stopping the component cancels
// that context and waits for loop to return.
func (s *Server) goLoop(name string, loop func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop(ctx)
	}()
	s.add(name, func(context.Context) error {
		cancel()
		<-done
		return nil
	})
}

// resolveCredentials takes the configured ingest keys and admin token, and loads (or creates
// on the first start) the ones not configured from the data folder, printing where they are.
func (s *Server) resolveCredentials(out io.Writer) error {
	s.ingestKeys, s.adminToken = s.cfg.IngestKeys, s.cfg.AdminToken
	if len(s.ingestKeys) > 0 && s.adminToken != "" {
		return nil
	}
	secrets, created, err := auth.LoadOrCreateSecrets(s.cfg.DataDir)
	if err != nil {
		return err
	}
	// Only the credentials that were not configured come from the file, and only those are
	// printed: a configured one replaces its generated twin.
	var lines string
	if len(s.ingestKeys) == 0 {
		s.ingestKeys = []string{secrets.IngestKey}
		lines += "  ingest key:  " + secrets.IngestKey + "\n"
	}
	if s.adminToken == "" {
		s.adminToken = secrets.AdminToken
		lines += "  admin token: " + secrets.AdminToken + "\n"
	}
	if created {
		fmt.Fprintf(out, "Generated credentials (kept in %s/%s):\n%s", s.cfg.DataDir, auth.SecretsFile, lines)
	} else {
		fmt.Fprintf(out, "Credentials not configured are in %s/%s\n", s.cfg.DataDir, auth.SecretsFile)
	}
	return nil
}

// StoreOptions are the ClickHouse settings of cfg, for the commands that open the store
// without a whole server (migrate, token, key).
func StoreOptions(cfg config.Config) store.Options {
	return store.Options{
		Addr:             cfg.ClickHouseAddr,
		Protocol:         cfg.ClickHouseProtocol,
		Cluster:          cfg.ClickHouseCluster,
		Database:         cfg.ClickHouseDatabase,
		User:             cfg.ClickHouseUser,
		Password:         cfg.ClickHousePassword,
		DialTimeout:      cfg.ClickHouseDialTimeout,
		MaxExecutionTime: cfg.QueryTimeout,
		MaxOpenConns:     cfg.ClickHouseMaxConns,
	}
}

// clickHouseReady logs that the store is connected and its schema applied.
func (s *Server) clickHouseReady(db *store.Store, applied []store.Migration) {
	s.log.Info("clickhouse ready", "addr", s.cfg.ClickHouseAddr, "version", db.ServerVersion(), "database", s.cfg.ClickHouseDatabase, "migrations_applied", len(applied))
}

// Backoff of the background bootstrap: the first retry after bootstrapFirstRetry, doubling up
// to bootstrapMaxRetry. The wait is short at first because a ClickHouse that restarts with
// Truthboard answers within seconds; the cap keeps one attempt (a dial timeout long at most)
// every few seconds during a long outage.
const (
	bootstrapFirstRetry = 200 * time.Millisecond
	bootstrapMaxRetry   = 5 * time.Second
)

// bootstrap connects db and applies the schema, retrying with backoff until it succeeds or ctx
// ends. A refusal of ClickHouse (a migration it rejects, a password it no longer takes) is
// logged as an error and retried too: the server is already serving from the spool, and a
// person can fix ClickHouse while it does.
func (s *Server) bootstrap(ctx context.Context, db *store.Store) {
	wait := bootstrapFirstRetry
	for attempt := 1; ; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, bootstrapMaxRetry)
		applied, err := db.Bootstrap(ctx)
		switch {
		case err == nil:
			s.clickHouseReady(db, applied)
			return
		case ctx.Err() != nil:
			return
		case !unavailable(err):
			s.log.Error("ClickHouse refuses the schema; retrying", "attempt", attempt, "err", err)
		case attempt%20 == 0:
			s.log.Warn("ClickHouse still does not answer; events wait in the spool", "attempts", attempt, "err", err)
		}
	}
}

// unavailable reports whether err says that ClickHouse could not be reached, as opposed to
// something it refused: the store marks such errors with an Unavailable method.
func unavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// dropExpired drops expired days of events once db is ready, then every hour, until ctx ends.
func dropExpired(ctx context.Context, db *store.Store, retention time.Duration, log *slog.Logger) {
	select {
	case <-ctx.Done():
		return
	case <-db.Ready():
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		dropped, err := db.DropExpired(ctx, time.Now(), retention)
		if err != nil && ctx.Err() == nil {
			log.Warn("retention", "err", err)
		}
		if len(dropped) > 0 {
			log.Info("retention: dropped expired days", "partitions", dropped)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// aboutCustomers gives the alerts of the rules, on customers' figures, for the dashboards and
// the walls: a silent screen's alert (screen.OfflineAlert, which has no metric) is for the
// screens page and the operators' receivers. Pinned on every wall, one broken TV would stop
// the rotation of all the others, and a site's power cut would put a thousand alerts in every
// message.
func aboutCustomers(active func() []alert.Alert) func() []alert.Alert {
	return func() []alert.Alert {
		all := active()
		out := make([]alert.Alert, 0, len(all))
		for _, a := range all {
			if a.Labels["metric"] != "" {
				out = append(out, a)
			}
		}
		return out
	}
}
