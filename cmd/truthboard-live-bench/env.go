package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// benchEnv is what every phase shares: the settings, the server binary, the database and the
// credentials the servers are started with.
type benchEnv struct {
	o   *options
	log *slog.Logger

	ch        driver.Conn // to the server's default database: version and the final DROP
	database  string
	suffix    string // random, also names the marker regions
	ingestKey string
	admin     string
	tmp       string // binary and data directories
	bin       string
	// launch starts a server for a phase: startServer, or startInProcess under -profile-dir.
	launch func(ctx context.Context, name string) (*server, error)
	// measureStart and measureEnd, when set, run at the edges of a fan-out phase's measured
	// window (the -profile-dir mode's profiles).
	measureStart, measureEnd func()

	// For the report.
	command   string
	started   time.Time
	machine   machine
	chPID     int // 0 when the ClickHouse server's CPU cannot be read
	chVersion string
}

type machine struct {
	CPUs       int
	RAM        string
	CPUModel   string
	Go         string
	Kernel     string
	ClickHouse string
}

func newBenchEnv(ctx context.Context, o *options, log *slog.Logger) (*benchEnv, error) {
	e := &benchEnv{o: o, log: log, started: time.Now()}
	e.suffix = randomHex(4)
	e.database = "truthboard_lbench_" + e.suffix
	e.ingestKey = "tbk_lbench_" + randomHex(8)
	e.admin = "tba_lbench_" + randomHex(8)
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{o.chAddr},
		Auth:        clickhouse.Auth{Database: "default", Username: o.chUser, Password: o.chPassword},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse at %s: %w", o.chAddr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse at %s does not answer (eval \"$(scripts/clickhouse.sh env)\" starts a local one): %w", o.chAddr, err)
	}
	e.ch = conn
	if v, err := conn.ServerVersion(); err == nil {
		e.chVersion = fmt.Sprintf("%d.%d.%d", v.Version.Major, v.Version.Minor, v.Version.Patch)
	}
	e.machine = readMachine()
	e.machine.ClickHouse = e.chVersion
	e.chPID = readPIDFile(o.chPIDFile)

	e.tmp, err = os.MkdirTemp("", "truthboard-live-bench-")
	if err != nil {
		e.close()
		return nil, err
	}
	e.launch = e.startServer
	e.bin = o.serverBin
	if e.bin == "" && o.profileDir == "" {
		e.bin = filepath.Join(e.tmp, "truthboard")
		log.Info("building the server", "cmd", "go build -o "+e.bin+" ./cmd/truthboard")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", e.bin, "./cmd/truthboard")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			e.close()
			return nil, fmt.Errorf("go build ./cmd/truthboard (run the bench from the module root, or give -server-bin): %w", err)
		}
	}
	return e, nil
}

// close drops the database (unless -keep-db) and removes the temporary files.
func (e *benchEnv) close() {
	if e.ch != nil {
		if e.o.keepDB {
			e.log.Info("kept the database", "database", e.database)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			if err := e.ch.Exec(ctx, "DROP DATABASE IF EXISTS "+e.database); err != nil {
				e.log.Warn("drop the bench database", "database", e.database, "err", err)
			}
			cancel()
		}
		e.ch.Close()
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

func readMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if kb, ok := procField("/proc/meminfo", "MemTotal"); ok {
		m.RAM = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
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
	if _, err := procCPU(pid); err != nil {
		return 0
	}
	return pid
}
