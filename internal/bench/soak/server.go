package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/store"
)

// server is the `truthboard serve` under test, with its database.
type server struct {
	url      string
	pid      int
	admin    string
	keys     []string // one ingest key per HTTP client
	ch       benchkit.ClickHouse
	database string
	keepDB   bool
	db       *store.Store // the soak's database: rows stored
	proc     *benchkit.Serve
	tmp      string
}

// startServer runs -bin serve on a free loopback port in a fresh database soak_<pid> and waits
// until it answers /readyz.
func startServer(ctx context.Context, o *options, log *slog.Logger) (*server, error) {
	s := &server{
		admin:    auth.NewSecret("tba_soak_"),
		ch:       o.ch,
		database: fmt.Sprintf("soak_%d", os.Getpid()),
		keepDB:   o.keepDB,
	}
	for range o.conns {
		s.keys = append(s.keys, auth.NewSecret("tbi_soak_"))
	}
	db, err := store.Open(ctx, o.ch.Store(s.database))
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
	// Every setting not given here keeps its default, the rate limit included (each HTTP client
	// has its own key, well below the limit).
	s.proc, err = benchkit.StartServe(ctx, benchkit.ServeOptions{
		Bin:        o.bin,
		DataDir:    filepath.Join(s.tmp, "data"),
		ClickHouse: o.ch,
		Database:   s.database,
		IngestKeys: s.keys,
		AdminToken: s.admin,
		Flags:      []string{"-demo-rate", "0"},
		// Hundreds of screens from this one address with one token: the bounds per client are
		// off, the server's own bounds stay.
		Env: []string{"TRUTHBOARD_LIVE_MAX_CONNS_PER_CREDENTIAL=0", "TRUTHBOARD_LIVE_MAX_CONNS_PER_ADDRESS=0"},
	})
	if err != nil {
		s.close(log)
		return nil, err
	}
	s.url, s.pid = s.proc.URL, s.proc.PID
	return s, nil
}

// control is the client of the soak's own requests to the server (/metrics).
var control = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}

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
	if s.proc == nil {
		return nil
	}
	return s.proc.Stop(2 * time.Minute)
}

// close stops the server if it still runs, drops the database (unless -keep-db) and removes
// the temporary files.
func (s *server) close(log *slog.Logger) {
	_ = s.stop()
	if s.db != nil {
		s.db.Close()
		if s.keepDB {
			log.Info("kept the database", "database", s.database)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			if err := s.ch.DropDatabase(ctx, s.database); err != nil {
				log.Warn("drop the soak database", "err", err)
			}
			cancel()
		}
	}
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
}

// dataDirBytes is the size of the server's data directory (credentials and the ingest spool).
func (s *server) dataDirBytes() int64 {
	var total int64
	_ = filepath.WalkDir(s.proc.DataDir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}
