// Command truthboard is the whole of Truthboard in one binary:
//
//	truthboard serve    the server: ingest API, metrics, live dashboards
//	truthboard migrate  apply the ClickHouse schema and exit
//	truthboard demo     send simulated customer journeys to a running server
//	truthboard token    create, list and revoke display tokens (read-only, for TV walls)
//	truthboard key      create, list and revoke stored ingest keys
//	truthboard help     every setting, its flag and environment variable
//
// serve starts its components in dependency order (ClickHouse, schema, writer, HTTP, demo
// traffic) and stops them in reverse on SIGINT or SIGTERM, flushing what is buffered.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/spool"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/telemetry"
	"github.com/truthboard/truthboard/internal/web"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = serve(ctx, args, log)
	case "migrate":
		err = migrate(ctx, args, log)
	case "demo":
		err = runDemo(ctx, args, log)
	case "token":
		err = runToken(ctx, args, os.Stdout)
	case "key":
		err = runKey(ctx, args, os.Stdout)
	case "help", "-h", "-help", "--help":
		usage(os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "truthboard: unknown command %q\n\n", cmd)
		usage(os.Stderr)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		log.Error("truthboard "+os.Args[1]+" failed", "err", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Truthboard: real-time moments-of-truth dashboard.

Usage:
  truthboard serve [flags]    run the server (ingest API, dashboards)
  truthboard migrate [flags]  apply the ClickHouse schema and exit
  truthboard demo [flags]     send simulated customer journeys to a server
  truthboard token create -name NAME [flags]
                              create a display token (read-only, for TV walls); printed once
  truthboard token list [flags]
                              list display tokens (never their secrets)
  truthboard token revoke ID [flags]
                              revoke a display token; every server refuses it within
                              -display-token-refresh
  truthboard key create -name NAME [flags]
                              create an ingest key for POST /v1/events; printed once
  truthboard key list [flags]
                              list stored ingest keys (never the keys; configured ones
                              are not stored)
  truthboard key revoke ID [flags]
                              revoke a stored ingest key; every server refuses it within
                              -display-token-refresh
  truthboard help             this text

`)
	config.PrintHelp(w)
	fmt.Fprint(w, "\nFlags of `truthboard demo` (see `truthboard demo -h`): -url, -key, -rate, -incident, ...\n")
}

func logLevel() slog.Level {
	if os.Getenv("TRUTHBOARD_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func storeOptions(cfg config.Config) store.Options {
	return store.Options{
		Addr:             cfg.ClickHouseAddr,
		Database:         cfg.ClickHouseDatabase,
		User:             cfg.ClickHouseUser,
		Password:         cfg.ClickHousePassword,
		DialTimeout:      cfg.ClickHouseDialTimeout,
		MaxExecutionTime: cfg.QueryTimeout,
	}
}

// openMigrated loads the settings of args, opens ClickHouse and applies the schema; the
// caller closes db.
func openMigrated(ctx context.Context, args []string) (cfg config.Config, db *store.Store, applied []store.Migration, err error) {
	if cfg, err = config.Load(args, os.Getenv, os.Stderr); err != nil {
		return cfg, nil, nil, err
	}
	if db, err = store.Open(ctx, storeOptions(cfg)); err != nil {
		return cfg, nil, nil, err
	}
	if applied, err = db.Migrate(ctx); err != nil {
		db.Close()
		return cfg, nil, applied, err
	}
	return cfg, db, applied, nil
}

func migrate(ctx context.Context, args []string, log *slog.Logger) error {
	cfg, db, applied, err := openMigrated(ctx, args)
	for _, m := range applied {
		log.Info("migration applied", "version", m.Version, "name", m.Name)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("schema up to date", "clickhouse", cfg.ClickHouseAddr, "version", db.ServerVersion(), "database", cfg.ClickHouseDatabase)
	return nil
}

func serve(ctx context.Context, args []string, log *slog.Logger) error {
	// Configuration and credentials.
	cfg, err := config.Load(args, os.Getenv, os.Stderr)
	if err != nil {
		return err
	}
	ingestKeys, adminToken := cfg.IngestKeys, cfg.AdminToken
	if len(ingestKeys) == 0 || adminToken == "" {
		secrets, created, err := auth.LoadOrCreateSecrets(cfg.DataDir)
		if err != nil {
			return err
		}
		// Only the credentials that were not configured come from the file, and only those are
		// printed: a configured one replaces its generated twin.
		var lines string
		if len(ingestKeys) == 0 {
			ingestKeys = []string{secrets.IngestKey}
			lines += "  ingest key:  " + secrets.IngestKey + "\n"
		}
		if adminToken == "" {
			adminToken = secrets.AdminToken
			lines += "  admin token: " + secrets.AdminToken + "\n"
		}
		if created {
			fmt.Printf("Generated credentials (kept in %s/%s):\n%s", cfg.DataDir, auth.SecretsFile, lines)
		} else {
			fmt.Printf("Credentials not configured are in %s/%s\n", cfg.DataDir, auth.SecretsFile)
		}
	}

	// The metrics every component counts into, served on GET /metrics.
	metrics := telemetry.New()

	// ClickHouse and its schema.
	db, err := store.Open(ctx, storeOptions(cfg))
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	log.Info("clickhouse ready", "addr", cfg.ClickHouseAddr, "version", db.ServerVersion(), "database", cfg.ClickHouseDatabase, "migrations_applied", len(applied))
	go dropExpired(ctx, db, cfg.Retention, log)

	// Ingest: the spool that makes accepted events durable (a crash's leftovers are sent
	// first), and its drainer into ClickHouse.
	writer, err := ingest.Open(db, ingest.Options{
		Spool:         spool.Options{Dir: cfg.SpoolFolder(), MaxBytes: int64(cfg.SpoolMaxBytes)},
		FlushInterval: cfg.FlushInterval,
		FlushRows:     cfg.FlushRows,
		Observe:       func(a ingest.Attempt) { metrics.ObserveInsert(a.Inserted, a.Took, a.Err) },
	}, log.With("component", "ingest"))
	if err != nil {
		return err
	}
	metrics.WatchSpool(func() telemetry.SpoolStats {
		st := writer.Stats()
		return telemetry.SpoolStats{Segments: st.Segments, Bytes: st.Bytes, Events: st.Events, Oldest: st.Oldest}
	})

	// Live figures for the dashboards: one feed per distinct view.
	hub := live.NewHub(db, live.Options{Tick: cfg.LiveTick, Telemetry: metrics}, log.With("component", "live"))

	// Display tokens, reloaded from ClickHouse so that a revocation on any node reaches this one.
	displayTokens := auth.NewDisplayCache(db.DisplayTokens, cfg.DisplayTokenRefresh, log.With("component", "display-tokens"))
	if err := displayTokens.Refresh(ctx); err != nil {
		return err
	}
	go displayTokens.Run(ctx)
	// Stored ingest keys, reloaded the same way: added or revoked without a restart.
	ingestKeyCache := auth.NewIngestKeyCache(db.IngestKeys, cfg.DisplayTokenRefresh, log.With("component", "ingest-keys"))
	if err := ingestKeyCache.Refresh(ctx); err != nil {
		return err
	}
	go ingestKeyCache.Run(ctx)

	// The HTTP edge.
	srv := web.New(writer, db, web.Options{
		Hub:              hub,
		Telemetry:        metrics,
		Live:             web.LiveOptions{AllowedOrigins: cfg.AllowedOrigins},
		IngestKeys:       auth.NewKeySet(ingestKeys...),
		AdminToken:       auth.NewKeySet(adminToken),
		Access:           web.AccessOptions{DisplayTokens: displayTokens, TokenStore: db, IngestKeys: ingestKeyCache, KeyStore: db},
		IngestRate:       cfg.IngestRate,
		MaxInflightBytes: int64(cfg.MaxInflightBytes),
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
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	fmt.Printf("Truthboard is running at %s (ingest: POST %s/v1/events)\n", url, url)

	// Demo traffic, sent through the public API like any other source.
	demoDone := make(chan struct{})
	if cfg.DemoRate > 0 {
		dc := demo.DefaultConfig()
		dc.URL, dc.Key, dc.Rate = url, ingestKeys[0], cfg.DemoRate
		go func() {
			defer close(demoDone)
			if err := demo.Run(ctx, dc, log.With("component", "demo")); err != nil {
				log.Error("demo traffic stopped", "err", err)
			}
		}()
	} else {
		close(demoDone)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}

	// Stop in reverse order, within -shutdown-timeout: demo traffic, live screens (1001), HTTP
	// (stops accepting, answers in-flight requests), ingest (drains the spool to ClickHouse
	// while it can; the rest stays on disk for the next start).
	<-demoDone
	hub.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if err := writer.Close(shutdownCtx); err != nil {
		log.Warn("ingest stopped before the spool was empty", "err", err)
	}
	log.Info("stopped", "spool_events", writer.Stats().Events)
	return nil
}

// dropExpired drops expired days of events now and every hour, until ctx ends.
func dropExpired(ctx context.Context, db *store.Store, retention time.Duration, log *slog.Logger) {
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
		case <-time.After(time.Hour):
		}
	}
}

func runDemo(ctx context.Context, args []string, log *slog.Logger) error {
	cfg := demo.DefaultConfig()
	fs := flag.NewFlagSet("truthboard demo", flag.ContinueOnError)
	cfg.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Key == "" {
		cfg.Key = os.Getenv("TRUTHBOARD_INGEST_KEY")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	return demo.Run(ctx, cfg, log)
}
