package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/store"
)

// server is the `truthboard serve` under test, with its database.
type server struct {
	url      string
	pid      int
	admin    string
	keys     []string // one ingest key per HTTP client
	database string
	dataDir  string
	logPath  string
	keepDB   bool
	db       *store.Store // the soak's database: rows stored, the final DROP

	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	stopOnce sync.Once
	stopErr  error
	tmp      string
}

// startServer runs -bin serve on a free loopback port in a fresh database soak_<pid> and waits
// until it answers /readyz.
func startServer(ctx context.Context, o *options, log *slog.Logger) (*server, error) {
	if _, err := os.Stat(o.bin); err != nil {
		return nil, fmt.Errorf("server binary %s: %w (make build builds it, or give -bin)", o.bin, err)
	}
	s := &server{
		admin:    auth.NewSecret("tba_soak_"),
		database: fmt.Sprintf("soak_%d", os.Getpid()),
		keepDB:   o.keepDB,
		exited:   make(chan struct{}),
	}
	for range o.conns {
		s.keys = append(s.keys, auth.NewSecret("tbi_soak_"))
	}
	db, err := store.Open(ctx, store.Options{
		Addr: o.chAddr, Database: s.database, User: o.chUser, Password: o.chPassword,
		DialTimeout: 5 * time.Second, MaxExecutionTime: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("%w (eval \"$(scripts/clickhouse.sh env)\" starts a local ClickHouse)", err)
	}
	var tables uint64
	if err := db.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase()").Scan(&tables); err != nil {
		db.Close()
		return nil, fmt.Errorf("check that database %s is new: %w", s.database, err)
	}
	if tables > 0 {
		db.Close()
		return nil, fmt.Errorf("database %s already has %d tables, from an earlier run: drop it (scripts/clickhouse.sh client --query 'DROP DATABASE %[1]s') and start again", s.database, tables)
	}
	s.db = db

	if s.tmp, err = os.MkdirTemp("", "truthboard-soak-"); err != nil {
		s.close(log)
		return nil, fmt.Errorf("create a temporary directory: %w", err)
	}
	s.dataDir = filepath.Join(s.tmp, "data")
	s.logPath = filepath.Join(s.tmp, "serve.log")
	logFile, err := os.Create(s.logPath)
	if err != nil {
		s.close(log)
		return nil, fmt.Errorf("create the server's log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	addr, err := freeAddr()
	if err != nil {
		s.close(log)
		return nil, err
	}
	s.url = "http://" + addr

	s.cmd = exec.Command(o.bin, "serve")
	// The settings come from here only: a TRUTHBOARD_* variable of the caller's shell must not
	// change what is soaked. Everything not set here keeps its default, the rate limit included
	// (each HTTP client has its own key, well below the limit).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRUTHBOARD_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	s.cmd.Env = append(s.cmd.Env,
		"TRUTHBOARD_LISTEN="+addr,
		"TRUTHBOARD_DATA_DIR="+s.dataDir,
		"TRUTHBOARD_CLICKHOUSE_ADDR="+o.chAddr,
		"TRUTHBOARD_CLICKHOUSE_USER="+o.chUser,
		"TRUTHBOARD_CLICKHOUSE_PASSWORD="+o.chPassword,
		"TRUTHBOARD_CLICKHOUSE_DATABASE="+s.database,
		"TRUTHBOARD_INGEST_KEYS="+strings.Join(s.keys, ","),
		"TRUTHBOARD_ADMIN_TOKEN="+s.admin,
		"TRUTHBOARD_DEMO_RATE=0",
		// Hundreds of screens from this one address with one token: the bounds per client
		// are off, the server's own bounds stay.
		"TRUTHBOARD_LIVE_MAX_CONNS_PER_CREDENTIAL=0",
		"TRUTHBOARD_LIVE_MAX_CONNS_PER_ADDRESS=0",
	)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		s.close(log)
		return nil, fmt.Errorf("start %s serve: %w", o.bin, err)
	}
	s.pid = s.cmd.Process.Pid
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.close(log)
		return nil, err
	}
	return s, nil
}

// freeAddr asks the kernel for a free loopback port; the server binds it a moment later.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// control is the client of the soak's own requests to the server (/readyz, /metrics).
var control = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}

func (s *server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := control.Get(s.url + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("the server exited at start (%v); its log:\n%s", s.exitErr, s.logTail(20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server was not ready within 60 s (last: %v); its log:\n%s", err, s.logTail(20))
		}
	}
}

// errNoMetrics says the server has no GET /metrics: goroutines are not measured.
var errNoMetrics = errors.New("the server has no GET /metrics (404)")

// goroutines reads go_goroutines from the server's Prometheus endpoint.
func (s *server) goroutines(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.admin)
	resp, err := control.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return 0, errNoMetrics
	case resp.StatusCode != http.StatusOK:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("GET /metrics: %s: %s", resp.Status, b)
	}
	return promGauge(resp.Body, "go_goroutines")
}

// promGauge finds an unlabelled sample `name value` in the Prometheus text format.
func promGauge(r io.Reader, name string) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != name {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return 0, fmt.Errorf("GET /metrics: %s has the value %q: %w", name, f[1], err)
		}
		return int(v), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	return 0, fmt.Errorf("GET /metrics: no %s in the answer", name)
}

// storedRows counts the events in the soak's database.
func (s *server) storedRows(ctx context.Context) (uint64, error) {
	var n uint64
	err := s.db.Conn().QueryRow(ctx, "SELECT count() FROM events").Scan(&n)
	return n, err
}

// stop shuts the server down as SIGTERM does (it flushes what it has accepted) and waits.
func (s *server) stop() error {
	s.stopOnce.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			if s.exitErr != nil {
				s.stopErr = fmt.Errorf("the server exited with %v after SIGTERM; its log ends:\n%s", s.exitErr, s.logTail(20))
			}
		case <-time.After(2 * time.Minute):
			_ = s.cmd.Process.Kill()
			<-s.exited
			s.stopErr = fmt.Errorf("the server did not stop within 2 minutes of SIGTERM: killed; its log ends:\n%s", s.logTail(20))
		}
	})
	return s.stopErr
}

// close stops the server if it still runs, drops the database (unless -keep-db) and removes
// the temporary files.
func (s *server) close(log *slog.Logger) {
	_ = s.stop()
	if s.db != nil {
		if s.keepDB {
			log.Info("kept the database", "database", s.database)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			// Dropping millions of rows on ClickHouse 18.16 can outlast the driver's read
			// timeout while the drop goes on in the server: ask again.
			var err error
			for attempt := 0; attempt < 4; attempt++ {
				if err = s.db.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+s.database); err == nil {
					break
				}
				time.Sleep(5 * time.Second)
			}
			cancel()
			if err != nil {
				log.Warn("drop the soak database", "database", s.database, "err", err,
					"fix", "scripts/clickhouse.sh client --query 'DROP DATABASE "+s.database+"'")
			}
		}
		s.db.Close()
	}
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
}

// logTail is the last n lines of the server's log.
func (s *server) logTail(n int) string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// logWarnings counts the WARN and ERROR lines of the server's log and returns the first.
func (s *server) logWarnings() (n int, first string) {
	b, _ := os.ReadFile(s.logPath)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			if n == 0 {
				first = line
			}
			n++
		}
	}
	return n, first
}

// dataDirBytes is the size of the server's data directory (credentials and the ingest spool).
func (s *server) dataDirBytes() int64 {
	var total int64
	_ = filepath.WalkDir(s.dataDir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}
