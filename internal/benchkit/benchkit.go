// Package benchkit is what the measuring commands of truthboard-tools (ingest-bench,
// metrics-bench, live-bench, soak, browse) and the fault tests of cmd/truthboard share:
//
//   - Serve: `truthboard serve` as a child process, ready once it answers /readyz, with its log;
//   - SampleProc, ProcCPU, WatchPeakRSS...: a process's memory, threads, files and CPU time from
//     /proc (through github.com/prometheus/procfs);
//   - Percentile and Summarize: nearest-rank percentiles, one definition for every report;
//   - ClickHouse and EnvOr: where ClickHouse is, from flags and the environment;
//   - DescribeMachine, LoadAverage: where a run happened;
//   - WriteSection, CommandLine, Thousands: the sections of docs/benchmarks.md.
//
// Servers inside a command's own process are started with internal/server, like
// `truthboard serve` itself; this package only starts the binary.
package benchkit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/store"
)

// EnvOr is the environment variable name, or def when it is unset or empty.
func EnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// ClickHouse is the ClickHouse server a command measures against: its native protocol address
// and account. The commands take a database of their own on it and drop it at the end.
type ClickHouse struct {
	Addr, User, Password string
	// Protocol is store.ProtocolNative (the default) or store.ProtocolHTTP (a modern
	// ClickHouse's HTTP interface, such as clickhouse/compat/server.js serves for chdb).
	Protocol string
}

// ClickHouseFromEnv reads TRUTHBOARD_CLICKHOUSE_ADDR (which `scripts/clickhouse.sh env` sets),
// TRUTHBOARD_CLICKHOUSE_USER and TRUTHBOARD_CLICKHOUSE_PASSWORD, with the server's defaults.
func ClickHouseFromEnv() ClickHouse {
	return ClickHouse{
		Addr:     EnvOr("TRUTHBOARD_CLICKHOUSE_ADDR", "127.0.0.1:9000"),
		User:     EnvOr("TRUTHBOARD_CLICKHOUSE_USER", "default"),
		Password: os.Getenv("TRUTHBOARD_CLICKHOUSE_PASSWORD"),
		Protocol: os.Getenv("TRUTHBOARD_CLICKHOUSE_PROTOCOL"),
	}
}

// AddFlags sets c from the environment (ClickHouseFromEnv) and binds -clickhouse-addr and
// -clickhouse-user to it. The password stays an environment variable only, so that it is not on
// a command line that the reports print.
func (c *ClickHouse) AddFlags(fs *flag.FlagSet) {
	*c = ClickHouseFromEnv()
	fs.StringVar(&c.Addr, "clickhouse-addr", c.Addr,
		"`host:port` of ClickHouse's native protocol; TRUTHBOARD_CLICKHOUSE_ADDR sets the default (eval \"$(scripts/clickhouse.sh env)\" sets it)")
	fs.StringVar(&c.User, "clickhouse-user", c.User, "ClickHouse `user`; TRUTHBOARD_CLICKHOUSE_USER sets the default, TRUTHBOARD_CLICKHOUSE_PASSWORD the password")
	fs.StringVar(&c.Protocol, "clickhouse-protocol", c.Protocol, "`native` or http (ClickHouse's HTTP interface, e.g. chdb through clickhouse/compat/server.js); TRUTHBOARD_CLICKHOUSE_PROTOCOL sets the default")
}

// Store is how to open database on c: connections time out after 5 s and queries after a
// minute; a caller that reads whole tables raises MaxExecutionTime.
func (c ClickHouse) Store(database string) store.Options {
	return store.Options{
		Addr:             c.Addr,
		Protocol:         c.Protocol,
		Database:         database,
		User:             c.User,
		Password:         c.Password,
		DialTimeout:      5 * time.Second,
		MaxExecutionTime: time.Minute,
	}
}

// ServerConfig is the configuration of a server started inside the command's process
// (internal/server's Start), otherwise the defaults of `truthboard serve`: a free loopback
// port, data in dataDir, database on c, the given credentials, no rate limit and no demo
// traffic. The caller changes what its run measures.
func (c ClickHouse) ServerConfig(dataDir, database string, ingestKeys []string, adminToken string) config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dataDir
	cfg.ClickHouseAddr, cfg.ClickHouseUser, cfg.ClickHousePassword = c.Addr, c.User, c.Password
	cfg.ClickHouseProtocol = c.Protocol
	cfg.ClickHouseDatabase = database
	cfg.IngestKeys, cfg.AdminToken = ingestKeys, adminToken
	cfg.IngestRate, cfg.DemoRate = 0, 0
	return cfg
}

// DropDatabase drops database name, asking again up to 4 times 5 s apart: dropping a database
// that took millions of rows can outlast the driver's read timeout on ClickHouse 18.16 while the
// drop goes on in the server (about 15 s measured while tests ran).
func (c ClickHouse) DropDatabase(ctx context.Context, name string) error {
	db, err := store.Open(ctx, c.Store("default"))
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer db.Close()
	for attempt := 1; ; attempt++ {
		err = db.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+name)
		if err == nil || attempt == 4 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drop database %s: %w", name, ctx.Err())
		case <-time.After(5 * time.Second):
		}
	}
	if err != nil {
		return fmt.Errorf("drop database %s (drop it with: scripts/clickhouse.sh client --query 'DROP DATABASE %[1]s'): %w", name, err)
	}
	return nil
}

// ErrUsage marks an error of the command line: truthboard-tools exits with status 2 on it.
var ErrUsage = errors.New("usage")

// BuildServer compiles ./cmd/truthboard into dir and returns the binary; the command must run
// from the module root.
func BuildServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "truthboard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/truthboard")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/truthboard (run from the module root, or give the binary with its flag): %w", err)
	}
	return bin, nil
}
