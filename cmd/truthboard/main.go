// Command truthboard is the whole of Truthboard in one binary:
//
//	truthboard serve    the server: ingest API, metrics, live dashboards
//	truthboard migrate  apply the ClickHouse schema and exit
//	truthboard demo     send simulated customer journeys to a running server
//	truthboard token    create, list and revoke display tokens (read-only, for TV walls)
//	truthboard key      create, list and revoke stored ingest keys
//	truthboard dead-letter  list and replay what ClickHouse could not take
//	truthboard help     every setting, its flag and environment variable
//
// serve starts the server assembled by internal/server and stops it on SIGINT or SIGTERM,
// flushing what is buffered.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	// The IANA zone database, for the screens' time zones in containers that have none.
	_ "time/tzdata"

	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/server"
	"github.com/truthboard/truthboard/internal/store"
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
	case "dead-letter":
		err = runDeadLetter(ctx, args, os.Stdout)
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
  truthboard dead-letter list [flags]
                              list what the spool's drainer kept aside because ClickHouse
                              can never take it (undecodable records, refused events)
  truthboard dead-letter replay [NAME ...] [flags]
                              send those entries (all without names) to ClickHouse again,
                              exactly once, once the cause is fixed; removes the ones stored
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

// openMigrated loads the settings of args, opens ClickHouse and applies the schema; the
// caller closes db.
func openMigrated(ctx context.Context, args []string) (cfg config.Config, db *store.Store, applied []store.Migration, err error) {
	if cfg, err = config.Load(args, os.Getenv, os.Stderr); err != nil {
		return cfg, nil, nil, err
	}
	if db, err = store.Open(ctx, server.StoreOptions(cfg)); err != nil {
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

// serve runs the server until ctx ends (SIGINT, SIGTERM) or its HTTP edge fails, then stops
// it within -shutdown-timeout.
func serve(ctx context.Context, args []string, log *slog.Logger) error {
	cfg, err := config.Load(args, os.Getenv, os.Stderr)
	if err != nil {
		return err
	}
	srv, err := server.Start(ctx, cfg, server.Options{Log: log, Out: os.Stdout})
	if err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-srv.Err():
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Stop(stopCtx); err != nil {
		log.Warn("stop", "err", err)
	}
	log.Info("stopped")
	return serveErr
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
