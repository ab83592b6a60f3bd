package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/store"
)

// benchEnv is what every suite shares: the ClickHouse server, the command line and the log.
type benchEnv struct {
	log     *slog.Logger
	command string

	addr, user, password string
}

func (e *benchEnv) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.addr, "clickhouse-addr", envOr("TRUTHBOARD_CLICKHOUSE_ADDR", "127.0.0.1:9000"),
		"`host:port` of ClickHouse's native protocol (default: TRUTHBOARD_CLICKHOUSE_ADDR, which `scripts/clickhouse.sh env` sets)")
	e.user = envOr("TRUTHBOARD_CLICKHOUSE_USER", "default")
	e.password = os.Getenv("TRUTHBOARD_CLICKHOUSE_PASSWORD")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// storeOptions names database on the benchmark's ClickHouse server.
func (e *benchEnv) storeOptions(database string) store.Options {
	return store.Options{
		Addr:             e.addr,
		Database:         database,
		User:             e.user,
		Password:         e.password,
		DialTimeout:      5 * time.Second,
		MaxExecutionTime: 60 * time.Second,
	}
}

// benchDB is a fresh, migrated database of the benchmark's own.
type benchDB struct {
	*store.Store
	name string
}

// openBenchDB creates and migrates truthboard_bench_<random>. Drop it with drop.
func (e *benchEnv) openBenchDB(ctx context.Context) (*benchDB, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "truthboard_bench_" + hex.EncodeToString(b[:])
	s, err := store.Open(ctx, e.storeOptions(name))
	if err != nil {
		return nil, fmt.Errorf("%w (start a local server with: eval \"$(scripts/clickhouse.sh env)\")", err)
	}
	db := &benchDB{Store: s, name: name}
	if _, err := s.Migrate(ctx); err != nil {
		db.drop()
		return nil, fmt.Errorf("migrate %s: %w", name, err)
	}
	return db, nil
}

// drop removes the database; it runs at the end whatever happened, so it ignores ctx.
func (db *benchDB) drop() {
	_ = db.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+db.name)
	_ = db.Close()
}

// waitRows waits until the raw table holds want rows: a 202 means durable in the server's
// spool, and its drainer inserts soon after. It returns the rows last counted.
func (db *benchDB) waitRows(ctx context.Context, want uint64, within time.Duration) (uint64, error) {
	deadline := time.Now().Add(within)
	for {
		n, err := db.CountEvents(ctx)
		if err != nil || n >= want || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reset empties every table of the database but the migration record, and waits until
// ClickHouse runs no merge in it, so that each phase starts from the same empty schema with the
// same materialized views. TRUNCATE TABLE works on ClickHouse 18.16 and leaves the views
// firing (checked by hand on 18.16.1).
func (db *benchDB) reset(ctx context.Context) error {
	rows, err := db.Conn().Query(ctx, `SELECT name FROM system.tables
		WHERE database = ? AND engine NOT IN ('MaterializedView', 'View') AND name != 'schema_migrations'`, db.name)
	if err != nil {
		return fmt.Errorf("list tables of %s: %w", db.name, err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		if err := db.Conn().Exec(ctx, "TRUNCATE TABLE "+db.name+"."+t); err != nil {
			return fmt.Errorf("truncate %s: %w", t, err)
		}
	}
	return db.waitMerges(ctx, 60*time.Second)
}

// queryCount is the number of queries the ClickHouse server has started since it started
// (system.events Query), or 0 when it cannot be read.
func (db *benchDB) queryCount(ctx context.Context) int64 {
	var n uint64
	if err := db.Conn().QueryRow(ctx, "SELECT value FROM system.events WHERE event = 'Query'").Scan(&n); err != nil {
		return 0
	}
	return int64(n)
}

// waitMerges waits until no merge runs in the database, or the timeout.
func (db *benchDB) waitMerges(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var n uint64
		if err := db.Conn().QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = ?", db.name).Scan(&n); err != nil {
			return fmt.Errorf("count merges: %w", err)
		}
		if n == 0 || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// machine describes where a benchmark ran.
type machine struct {
	CPUs       int
	CPUModel   string
	MemTotal   string
	GoVersion  string
	ClickHouse string
	Commit     string
	Date       time.Time
}

func describeMachine(clickhouseVersion string) machine {
	m := machine{
		CPUs:       runtime.NumCPU(),
		GoVersion:  runtime.Version(),
		ClickHouse: clickhouseVersion,
		Date:       time.Now().UTC(),
		CPUModel:   procField("/proc/cpuinfo", "model name"),
		MemTotal:   procField("/proc/meminfo", "MemTotal"),
	}
	if kb, err := strconv.ParseFloat(strings.TrimSuffix(m.MemTotal, " kB"), 64); err == nil {
		m.MemTotal = fmt.Sprintf("%.1f GiB", kb/(1<<20))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			m.Commit += " with uncommitted changes"
		}
	}
	return m
}

// procField is the value of the first "name: value" line of a /proc file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// loadAvg is the 1-minute load average, to show how busy the machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// memKB reads a memory field (VmRSS, VmHWM) of a process's /proc status in KiB; pid 0 is this
// process.
func memKB(pid int, field string) (int64, error) {
	path := "/proc/self/status"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	v := procField(path, field)
	if v == "?" {
		return 0, fmt.Errorf("no %s in %s", field, path)
	}
	return strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
}

// listenerPID finds the process listening on the TCP port of addr on this machine, so that
// its CPU time can be read; 0 when it cannot be found (another user's process, or remote).
func listenerPID(addr string) int {
	_, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return 0
	}
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		fds, err := os.ReadDir(p + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if link, err := os.Readlink(p + "/fd/" + fd.Name()); err == nil && inodes[link] {
				pid, _ := strconv.Atoi(filepath.Base(p))
				return pid
			}
		}
	}
	return 0
}
