package soak

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
)

// sample is the server's state at one moment. Counts that could not be read are -1.
type sample struct {
	At         time.Duration // since the load started
	RSS        int64         // bytes, VmRSS
	Threads    int64
	OpenFiles  int64
	Goroutines int64
	// GoroutinesWhy says why goroutines are -1 (e.g. the server has no /metrics yet).
	GoroutinesWhy string
	Stored        int64 // rows in the events table
	Acknowledged  int64 // events accepted in 202 answers so far
	Screens       int64 // screens connected
	DataDir       int64 // bytes in the server's data directory (the ingest spool)
}

// takeSample reads the server's process, its /metrics and the database; ld and scr are nil
// before the load starts.
func takeSample(ctx context.Context, srv *server, ld *load, scr *screens, at time.Duration) sample {
	s := sample{At: at, RSS: -1, Threads: -1, OpenFiles: -1, Goroutines: -1, Stored: -1}
	if p, err := benchkit.ReadProc(srv.pid); err == nil {
		s.RSS, s.Threads, s.OpenFiles = p.RSS, int64(p.Threads), int64(p.OpenFiles)
	}
	if n, err := srv.goroutines(ctx); err == nil {
		s.Goroutines = int64(n)
	} else {
		s.GoroutinesWhy = err.Error()
	}
	if n, err := srv.storedRows(ctx); err == nil {
		s.Stored = int64(n)
	}
	if ld != nil {
		s.Acknowledged = ld.accepted.Load()
	}
	if scr != nil {
		s.Screens = scr.connected.Load()
	}
	s.DataDir = srv.dataDirBytes()
	return s
}

func (s sample) logAttrs() []any {
	goroutines := strconv.FormatInt(s.Goroutines, 10)
	if s.Goroutines < 0 {
		goroutines = "unknown"
	}
	return []any{"at", s.At.Round(time.Second), "rss_mib", s.RSS >> 20, "goroutines", goroutines,
		"open_files", s.OpenFiles, "threads", s.Threads, "screens", s.Screens,
		"acknowledged", s.Acknowledged, "stored", s.Stored, "data_dir_mib", s.DataDir >> 20}
}

// drain is how the rows stored caught up with the events acknowledged after the load.
type drain struct {
	Took   time.Duration
	Caught bool // stored reached acknowledged; else the count stopped changing below or above it
}

// drainQuiet is how long the count must stay the same to count as drained when it does not
// reach the events acknowledged: many times the server's flush interval.
const drainQuiet = 15 * time.Second

// waitDrained polls the rows stored until they equal acknowledged or stop changing for
// drainQuiet, for at most timeout.
func waitDrained(ctx context.Context, srv *server, acknowledged int64, timeout time.Duration, log *slog.Logger) (drain, error) {
	start := time.Now()
	var last int64 = -1
	lastChange := start
	for {
		n, err := srv.storedRows(ctx)
		if err != nil {
			return drain{}, fmt.Errorf("count the rows stored: %w", err)
		}
		now := time.Now()
		switch {
		case int64(n) == acknowledged:
			return drain{Took: now.Sub(start), Caught: true}, nil
		case int64(n) != last:
			last, lastChange = int64(n), now
		case now.Sub(lastChange) >= drainQuiet:
			log.Warn("the rows stored stopped changing short of the events acknowledged", "stored", n, "acknowledged", acknowledged)
			return drain{Took: lastChange.Sub(start)}, nil
		}
		if now.Sub(start) > timeout {
			return drain{}, fmt.Errorf("rows stored still changing %s after the load (%d of %d acknowledged): raise -drain-timeout", timeout, n, acknowledged)
		}
		select {
		case <-ctx.Done():
			return drain{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
