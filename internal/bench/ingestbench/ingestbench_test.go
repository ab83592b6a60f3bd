package ingestbench

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestReadLine feeds flushStats lines written the way `truthboard serve` writes its log
// (slog's TextHandler, the drainer's "drained" debug record): the flushes of a child server are
// counted from them.
func TestReadLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "ingest")
	log.Debug("drained", "events", 20000, "inserted", 20000, "requests", 20, "took", 150*time.Millisecond)
	log.Debug("drained", "events", 5000, "inserted", 4990, "requests", 5, "took", 50*time.Millisecond)
	log.Info("clickhouse ready", "addr", "127.0.0.1:9000")
	log.Warn("insert failed", "err", "connection refused")
	var f flushStats
	for line := range strings.Lines(buf.String()) {
		f.readLine(strings.TrimSuffix(line, "\n"))
	}
	got := f.snapshot()
	if got.Count != 2 || got.Rows != 25000 || got.Insert != 200*time.Millisecond || got.MaxInsert != 150*time.Millisecond {
		t.Errorf("flushes = %+v; want 2 of 25,000 rows, 200 ms in all, 150 ms the longest", got)
	}
	if got.Problems != 1 || !strings.Contains(got.FirstProblem, "insert failed") {
		t.Errorf("problems = %d, first %q; want the warning", got.Problems, got.FirstProblem)
	}
}
