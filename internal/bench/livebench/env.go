package livebench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/store"
)

// benchEnv is what every phase shares: the settings, the server binary, the database and the
// credentials the servers are started with.
type benchEnv struct {
	o   *options
	log *slog.Logger

	database  string
	suffix    string // random, also names the marker regions
	ingestKey string
	admin     string
	tmp       string // binary and data directories
	bin       string
	// launch starts a server for a phase: startServer, or startInProcess under -profile-dir.
	launch func(ctx context.Context, name string) (*target, error)
	// measureStart and measureEnd, when set, run at the edges of a fan-out phase's measured
	// window (the -profile-dir mode's profiles).
	measureStart, measureEnd func()

	// For the report.
	command   string
	started   time.Time
	machine   benchkit.Machine
	chPID     int // 0 when the ClickHouse server's CPU cannot be read
	chVersion string
}

func newBenchEnv(ctx context.Context, o *options, log *slog.Logger) (*benchEnv, error) {
	e := &benchEnv{o: o, log: log, started: time.Now()}
	e.suffix = randomHex(4)
	e.database = "truthboard_lbench_" + e.suffix
	e.ingestKey = "tbk_lbench_" + randomHex(8)
	e.admin = "tba_lbench_" + randomHex(8)
	probe, err := store.Open(ctx, o.ch.Store("default"))
	if err != nil {
		return nil, fmt.Errorf("%w (eval \"$(scripts/clickhouse.sh env)\" starts a local ClickHouse)", err)
	}
	e.chVersion = probe.ServerVersion()
	probe.Close()
	e.machine = benchkit.DescribeMachine()
	e.chPID = readPIDFile(o.chPIDFile)

	e.tmp, err = os.MkdirTemp("", "truthboard-live-bench-")
	if err != nil {
		e.close()
		return nil, err
	}
	e.launch = e.startServer
	e.bin = o.serverBin
	if e.bin == "" && o.profileDir == "" {
		log.Info("building the server", "cmd", "go build ./cmd/truthboard")
		if e.bin, err = benchkit.BuildServer(ctx, e.tmp); err != nil {
			e.close()
			return nil, err
		}
	}
	return e, nil
}

// close drops the database (unless -keep-db) and removes the temporary files.
func (e *benchEnv) close() {
	if e.chVersion != "" { // the database may exist
		if e.o.keepDB {
			e.log.Info("kept the database", "database", e.database)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			if err := e.o.ch.DropDatabase(ctx, e.database); err != nil {
				e.log.Warn("drop the bench database", "database", e.database, "err", err)
			}
			cancel()
		}
	}
	if e.tmp != "" {
		_ = os.RemoveAll(e.tmp)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// readPIDFile returns the pid in file when that process exists, else 0.
func readPIDFile(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	if _, err := benchkit.ProcCPU(pid); err != nil {
		return 0
	}
	return pid
}
