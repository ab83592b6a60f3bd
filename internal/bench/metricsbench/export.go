package metricsbench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/store"
)

// The export measurement: the memory a large CSV export of GET /v1/metrics takes in
// `truthboard serve`, against the JSON answer of the same query, each on a server process of its
// own (a fresh heap), on a month of events with many distinct touchpoints. The CSV is streamed
// row by row from ClickHouse; the JSON is built whole (every group, then the answer's bytes).

// exportQueries are the large groupings, each asked of a fresh server in the formats given: a
// month by touchpoint compared with last week, and the month's daily trend per touchpoint (a
// row per touchpoint and day, the finest step of 30d), as CSV only: as JSON its million
// points, each built whole before the first byte, would take gigabytes.
var exportQueries = []struct {
	query   string
	formats []string
}{
	{"/v1/metrics?window=30d&by=touchpoint&compare=last_week", []string{"csv", "json"}},
	{"/v1/metrics?window=30d&by=touchpoint&series=true", []string{"csv"}},
}

// exportAdmin is the admin token of the servers the measurement starts.
const exportAdmin = "tba_metrics_bench_export"

type exportResult struct {
	Touchpoints, Events uint64
	Load                time.Duration
	DetailRows          uint64 // rows of detail_1h after merges
	Formats             []formatResult
	Failed              string // why the measurement stopped, if it did
}

type formatResult struct {
	Query  string
	Format string
	Status int
	Lines  int   // lines of the answer (CSV: the header and the rows)
	Bytes  int64 // of the answer
	Time   time.Duration
	// IdleRSS is the server's RSS after a small request, before the export; PeakRSS the highest
	// sampled (every 20 ms) while it answered.
	IdleRSS, PeakRSS int64
	Error            string
}

// exportSQL writes events offset to offset+count of total, spread evenly over the 30 days before
// end in the order of their number (so that a chunk covers a few days, as in load), each on a
// touchpoint drawn from touchpoints, each touchpoint on one moment and channel; a third carry
// csat, a fifth nps and wait_ms.
func exportSQL(offset, count, total, touchpoints uint64, end time.Time) string {
	span := int64(30 * 24 * time.Hour / time.Second)
	return fmt.Sprintf(`INSERT INTO events (event_id, occurred_at, received_at, moment, channel, touchpoint,
	outcome, csat, nps, wait_ms, negative, positive)
SELECT
	concat('x-', toString(number)) AS event_id,
	toDateTime(%d + intDiv(number * %d, %d)) AS occurred_at,
	occurred_at AS received_at,
	['zmot', 'fmot', 'smot', 'tmot', 'service'][1 + tp %% 5] AS moment,
	['web', 'app', 'store', 'voice', 'ivr', 'chat', 'messaging', 'email', 'social', 'review_site', 'field_service'][1 + tp %% 11] AS channel,
	concat('touchpoint-', toString(tp)) AS touchpoint,
	if(number %% 7 = 0, 'abandoned', '') AS outcome,
	if(number %% 3 = 0, toNullable(toUInt8(1 + cityHash64(number, 2) %% 5)), NULL) AS csat,
	if(number %% 5 = 0, toNullable(toUInt8(cityHash64(number, 3) %% 11)), NULL) AS nps,
	if(number %% 5 = 1, toNullable(toUInt32(cityHash64(number, 4) %% 600000)), NULL) AS wait_ms,
	toUInt8(ifNull(csat, 9) <= 2 OR ifNull(nps, 10) <= 6 OR outcome = 'abandoned') AS negative,
	toUInt8(ifNull(csat, 0) >= 4 OR ifNull(nps, 0) >= 7) AS positive
FROM (SELECT number, cityHash64(number, 1) %% %d AS tp FROM numbers(%d, %d))`,
		end.Add(-30*24*time.Hour).Unix(), span, total, touchpoints, offset, count)
}

// measureExport loads the export's database, then asks the query as CSV and as JSON of a fresh
// server each, sampling its RSS.
func measureExport(ctx context.Context, cfg config, log *slog.Logger) (exportResult, error) {
	res := exportResult{Touchpoints: cfg.ExportTouchpoints, Events: cfg.ExportEvents}
	name := fmt.Sprintf("truthboard_mbench_export_%d", os.Getpid())
	db, err := store.Open(ctx, cfg.storeOptions(name))
	if err != nil {
		return res, err
	}
	defer func() {
		db.Close()
		if !cfg.Keep {
			if err := cfg.ClickHouse.DropDatabase(context.Background(), name); err != nil {
				log.Error("drop database", "db", name, "err", err)
			}
		}
	}()
	if _, err := db.Migrate(ctx); err != nil {
		return res, fmt.Errorf("migrate %s: %w", name, err)
	}
	log.Info("loading the export's events", "db", name, "events", res.Events, "touchpoints", res.Touchpoints)
	start, end := time.Now(), time.Now().UTC()
	for off := uint64(0); off < res.Events; off += cfg.Chunk {
		n := min(cfg.Chunk, res.Events-off)
		if err := db.Conn().Exec(ctx, exportSQL(off, n, res.Events, res.Touchpoints, end)); err != nil {
			return res, fmt.Errorf("insert the export's events %d–%d: %w", off, off+n, err)
		}
	}
	res.Load = time.Since(start)
	if _, err := waitMerges(ctx, db, cfg.Settle); err != nil {
		return res, err
	}
	if _, _, rows, err := partsOf(ctx, db); err == nil {
		res.DetailRows = rows["detail_1h"]
	}

	tmp, err := os.MkdirTemp("", "truthboard-metrics-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	bin := cfg.ServerBin
	if bin == "" {
		log.Info("building the server", "cmd", "go build ./cmd/truthboard")
		if bin, err = benchkit.BuildServer(ctx, tmp); err != nil {
			return res, err
		}
	}
	for i, ex := range exportQueries {
		for _, format := range ex.formats {
			fr, err := exportOnce(ctx, cfg, bin, filepath.Join(tmp, fmt.Sprint(format, i)), name, ex.query, format)
			if err != nil {
				return res, fmt.Errorf("export %s as %s: %w", ex.query, format, err)
			}
			log.Info("export measured", "query", ex.query, "format", format, "status", fr.Status, "lines", fr.Lines, "bytes", fr.Bytes,
				"time", fr.Time.Round(time.Millisecond), "idle_rss_mib", fr.IdleRSS>>20, "peak_rss_mib", fr.PeakRSS>>20)
			res.Formats = append(res.Formats, fr)
		}
	}
	return res, nil
}

// exportOnce starts a server, warms it with a small request, then asks query in format.
func exportOnce(ctx context.Context, cfg config, bin, dataDir, database, query, format string) (formatResult, error) {
	fr := formatResult{Query: query, Format: format}
	proc, err := benchkit.StartServe(ctx, benchkit.ServeOptions{
		Bin: bin, DataDir: dataDir, ClickHouse: cfg.ClickHouse, Database: database, AdminToken: exportAdmin,
		Flags: []string{"-demo-rate", "0"},
	})
	if err != nil {
		return fr, err
	}
	defer proc.Stop(30 * time.Second)
	client := &http.Client{Timeout: 5 * time.Minute}
	get := func(path string) (status, lines int, n int64, err error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, proc.URL+path, nil)
		if err != nil {
			return 0, 0, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+exportAdmin)
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, 0, err
		}
		defer resp.Body.Close()
		r := bufio.NewReaderSize(resp.Body, 64<<10)
		for {
			line, err := r.ReadSlice('\n')
			n += int64(len(line))
			if len(line) > 0 && line[len(line)-1] == '\n' {
				lines++
			}
			if err == io.EOF {
				return resp.StatusCode, lines, n, nil
			}
			if err != nil && err != bufio.ErrBufferFull {
				return resp.StatusCode, lines, n, err
			}
		}
	}
	if status, _, _, err := get("/v1/metrics?window=5m"); err != nil || status != http.StatusOK {
		return fr, fmt.Errorf("warm-up request: status %d, %v", status, err)
	}
	if fr.IdleRSS, err = benchkit.RSS(proc.PID); err != nil {
		return fr, err
	}
	peak := benchkit.WatchPeakRSS(proc.PID)
	start := time.Now()
	var getErr error
	fr.Status, fr.Lines, fr.Bytes, getErr = get(query + "&format=" + format)
	fr.Time = time.Since(start)
	fr.PeakRSS = peak.Stop()
	if getErr != nil {
		fr.Error = getErr.Error()
	}
	return fr, nil
}

func (e exportResult) markdown(p func(format string, a ...any)) {
	p("\n### Export\n\n")
	p("Memory of large exports in `truthboard serve`, as CSV (`&format=csv`, streamed row by row from ClickHouse) and\n")
	p("as JSON (every group read, then the answer built whole), each on a server process of its own\n")
	p("(started, warmed with one small request, then asked once). RSS of the server from `/proc/<pid>/status`, sampled\n")
	p("every 20 ms while it answered; *idle*: after the warm-up. Data: a database of its own with %s events over the\n", benchkit.Thousands(e.Events))
	p("30 days before the run on %s distinct touchpoints (one moment and channel each), loaded in %.1f s with\n", benchkit.Thousands(e.Touchpoints), e.Load.Seconds())
	p("`INSERT … SELECT` in chunks of `-chunk` events (%s rows in `detail_1h` after merges).\n\n", benchkit.Thousands(e.DetailRows))
	if e.Failed != "" {
		p("**The measurement failed:** %s\n\n", e.Failed)
	}
	p("| query | format | status | lines | MiB sent | time | idle RSS MiB | peak RSS MiB | peak − idle MiB |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range e.Formats {
		status := fmt.Sprint(f.Status)
		if f.Error != "" {
			status += " (" + f.Error + ")"
		}
		lines := "–" // a JSON answer is one line
		if f.Format == "csv" {
			lines = benchkit.Thousands(f.Lines)
		}
		p("| `%s` | %s | %s | %s | %.1f | %.1f s | %.0f | %.0f | **%.0f** |\n", f.Query, f.Format, status, lines,
			float64(f.Bytes)/(1<<20), f.Time.Seconds(), float64(f.IdleRSS)/(1<<20), float64(f.PeakRSS)/(1<<20),
			float64(f.PeakRSS-f.IdleRSS)/(1<<20))
	}
}
