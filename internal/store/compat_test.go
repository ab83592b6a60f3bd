package store_test

// The modern-ClickHouse check. The development machines run ClickHouse 18.16; users run 24.x
// and later (docker-compose.yml). Every other test in this package runs on the 18.16 server;
// this file runs the same schema on ClickHouse 26.x embedded in Node.js through chdb
// (clickhouse/compat/check.js), so a migration that only one of the two accepts fails the suite.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/store"
)

// CompatReport is the answer of clickhouse/compat/check.js (see its README).
type CompatReport struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error"` // set when nothing ran (bad input, chdb would not start)
	Engine struct {
		Chdb       string `json:"chdb"`
		ClickHouse string `json:"clickhouse"`
	} `json:"engine"`
	Database   string         `json:"database"`
	Statements []CompatResult `json:"statements"`
	Queries    []CompatResult `json:"queries"`
}

// CompatResult is the outcome of one statement or query. Rows hold ClickHouse's JSON format:
// 64-bit integers are strings, tuples are arrays.
type CompatResult struct {
	Index int    `json:"index"`
	SQL   string `json:"sql"`
	OK    bool   `json:"ok"`
	Code  *int   `json:"code"`
	Error string `json:"error"`
	Meta  []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"meta"`
	Rows []map[string]json.RawMessage `json:"rows"`
}

// MigrationStatements is every statement of every migration, in the order store.Migrate runs
// them.
func MigrationStatements(t testing.TB) []string {
	t.Helper()
	ms, err := store.Migrations()
	if err != nil {
		t.Fatalf("read migrations: %v", err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.Statements...)
	}
	return out
}

// RunOnModernClickHouse runs statements, then queries (each one statement), on the modern
// ClickHouse embedded by clickhouse/compat/check.js, in a fresh database, and returns the
// report. Every failing statement or query fails t with ClickHouse's own message; the caller
// checks the rows. Tests of other files in this package can use it to prove that their queries
// run on both engines: pass MigrationStatements(t) plus their inserts, then their queries.
//
// It needs node and clickhouse/compat/node_modules (npm ci), which scripts/test.sh provides; it
// fails rather than skips without them, so that a green run always means both engines were
// checked.
func RunOnModernClickHouse(t testing.TB, statements, queries []string) CompatReport {
	t.Helper()
	root := repoRoot(t)
	dir := filepath.Join(root, "clickhouse", "compat")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js) is not installed; it runs the modern-ClickHouse check in %s. Run the tests with scripts/test.sh, which installs what they need", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "chdb", "package.json")); err != nil {
		t.Fatalf("the modern-ClickHouse check needs chdb in %s/node_modules, which is missing (%v). Run the tests with scripts/test.sh, which runs npm ci there when needed", dir, err)
	}

	input, err := json.Marshal(map[string]any{"statements": statements, "queries": queries})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "check.js"))
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	// Exit status 1 (something failed) still comes with a full report; anything else that is
	// not a report is a broken check, not a ClickHouse answer.
	var rep CompatReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("node check.js: %v; its output is not a report (%v)\nstdout: %s\nstderr: %s",
			runErr, err, clip(stdout.String(), 2000), clip(stderr.String(), 2000))
	}
	if rep.Error != "" {
		t.Fatalf("node check.js could not run the statements: %s", rep.Error)
	}
	var exitErr *exec.ExitError
	if runErr != nil && !(errors.As(runErr, &exitErr) && exitErr.ExitCode() == 1) {
		t.Fatalf("node check.js: %v\nstderr: %s", runErr, clip(stderr.String(), 2000))
	}
	if len(rep.Statements) != len(statements) || len(rep.Queries) != len(queries) {
		t.Fatalf("check.js reported %d statements and %d queries, want %d and %d",
			len(rep.Statements), len(rep.Queries), len(statements), len(queries))
	}

	failed := 0
	for _, group := range []struct {
		what    string
		results []CompatResult
	}{{"statement", rep.Statements}, {"query", rep.Queries}} {
		for _, r := range group.results {
			if r.OK {
				continue
			}
			failed++
			if failed == 1 {
				t.Errorf("on ClickHouse %s (chdb %s); the first failure is usually the cause of the later ones:", rep.Engine.ClickHouse, rep.Engine.Chdb)
			}
			t.Errorf("%s %d failed: %s\n    SQL: %s", group.what, r.Index, r.Error, clip(oneLine(r.SQL), 300))
		}
	}
	if failed == 0 && !rep.OK {
		t.Errorf("check.js reports a failure but no failing statement or query")
	}
	return rep
}

// repoRoot finds the module root (the folder of go.mod) from the test's working directory,
// which go test sets to the package's folder.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// The events the test inserts, three INSERT … SELECT statements whose values follow the
// formulas of compatRow, so the expected sums are computed here independently of any
// ClickHouse. The time stamps cross a minute, an hour and a day (two partitions); the third
// insert repeats keys of the first so that the rollups must merge states of several parts.
const (
	compatRowsA = 700
	compatRowsB = 6
	compatRowsC = 100 // same formulas as A, rows 0..99 again under new event ids
)

var (
	compatMoments  = []string{"zmot", "fmot", "smot", "tmot", "service"}
	compatChannels = []string{"web", "app", "store", "voice", "ivr", "chat", "messaging", "email", "social", "review_site", "field_service"}
	compatOutcomes = []string{"", "resolved", "unresolved", "abandoned", "transferred", "escalated", "completed", "failed"}
	// Row i of insert B, one value per row: the histogram's edges (0 ms, 1 ms, the last bucket,
	// the integer closest to a bucket boundary).
	compatWaitB    = []uint32{0, 1, 2, 1000, 73_216_705, metric.MaxDurationMS}
	compatOutcomeB = []string{"abandoned", "resolved", "", "failed", "abandoned", "completed"}
)

// compatInsertA is insert A (prefix "a", rows 0..n-1) or insert C (prefix "c").
func compatInsertA(prefix string, n int) string {
	return fmt.Sprintf(`INSERT INTO events (event_id, occurred_at, occurred_ms, received_at, moment, channel,
    touchpoint, stage, outcome, customer_id, journey_id, csat, nps, ces, sentiment, wait_ms,
    handle_ms, negative, positive, region, product, segment, agent_team, attr_keys, attr_values)
SELECT
    concat('compat-%s-', toString(number)),
    toDateTime('2026-03-02 10:59:30') + intDiv(number, 7),
    toUInt16(number %% 1000),
    toDateTime('2026-03-02 11:30:00'),
    %s[1 + number %% 5],
    %s[1 + number %% 11],
    concat('touchpoint_', toString(number %% 3)),
    ['', 'initial_contact', 'purchase', 'delivery_installation', 'service_interaction', 'post_purchase_follow_up'][1 + number %% 6],
    %s[1 + number %% 8],
    concat('customer-', toString(number %% 50)),
    concat('journey-', toString(number %% 90)),
    if(number %% 4 = 0, NULL, toUInt8(1 + number %% 5)),
    if(number %% 3 = 0, NULL, toUInt8(number %% 11)),
    if(number %% 2 = 0, NULL, toUInt8(1 + number %% 7)),
    if(number %% 5 = 0, NULL, (toFloat64(number %% 201) - 100) / 100),
    if(number %% 6 = 0, NULL, toUInt32(number * 7919 %% 900000)),
    if(number %% 6 = 0, NULL, toUInt32(number * 31 %% 100000)),
    toUInt8(number %% 7 = 0),
    toUInt8(number %% 7 = 1),
    ['eu', 'us', 'apac'][1 + number %% 3],
    ['fiber', 'mobile'][1 + number %% 2],
    ['consumer', 'business'][1 + number %% 2],
    ['', 'team_a', 'team_b'][1 + number %% 3],
    ['source'],
    [concat('s', toString(number %% 4))]
FROM numbers(%d)`, prefix, sqlStrings(compatMoments), sqlStrings(compatChannels), sqlStrings(compatOutcomes), n)
}

// compatInsertB is insert B: a few events around midnight with edge values.
func compatInsertB() string {
	waits := make([]string, len(compatWaitB))
	for i, w := range compatWaitB {
		waits[i] = strconv.FormatUint(uint64(w), 10)
	}
	return fmt.Sprintf(`INSERT INTO events (event_id, occurred_at, received_at, moment, channel, touchpoint,
    outcome, csat, nps, ces, wait_ms, negative, positive)
SELECT
    concat('compat-b-', toString(number)),
    toDateTime('2026-03-02 23:59:57') + number,
    toDateTime('2026-03-03 00:00:10'),
    'service',
    'voice',
    'billing_call',
    %s[1 + number],
    toUInt8(5),
    toUInt8(10 - number),
    toUInt8(7),
    toUInt32([%s][1 + number]),
    toUInt8(number %% 2),
    toUInt8(1 - number %% 2)
FROM numbers(%d)`, sqlStrings(compatOutcomeB), strings.Join(waits, ", "), compatRowsB)
}

func sqlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// compatRow is what the rollups measure of one inserted event.
type compatRow struct {
	moment, channel, outcome string
	csat, nps, ces           int // -1: NULL
	wait                     int64
	negative                 bool
}

func compatRowA(i int) compatRow {
	r := compatRow{
		moment:   compatMoments[i%5],
		channel:  compatChannels[i%11],
		outcome:  compatOutcomes[i%8],
		csat:     1 + i%5,
		nps:      i % 11,
		ces:      1 + i%7,
		wait:     int64(i) * 7919 % 900000,
		negative: i%7 == 0,
	}
	if i%4 == 0 {
		r.csat = -1
	}
	if i%3 == 0 {
		r.nps = -1
	}
	if i%2 == 0 {
		r.ces = -1
	}
	if i%6 == 0 {
		r.wait = -1
	}
	return r
}

func compatRowB(i int) compatRow {
	return compatRow{moment: "service", channel: "voice", outcome: compatOutcomeB[i],
		csat: 5, nps: 10 - i, ces: 7, wait: int64(compatWaitB[i]), negative: i%2 == 1}
}

// compatRows is every event the three inserts write.
func compatRows() []compatRow {
	var rows []compatRow
	for i := 0; i < compatRowsA; i++ {
		rows = append(rows, compatRowA(i))
	}
	for i := 0; i < compatRowsB; i++ {
		rows = append(rows, compatRowB(i))
	}
	for i := 0; i < compatRowsC; i++ {
		rows = append(rows, compatRowA(i))
	}
	return rows
}

// compatSums are the measures every rollup table keeps, summed over all rows.
type compatSums struct {
	values map[string]uint64 // by column name
	hist   map[int]uint64    // wait_ms bucket → events
}

// compatMeasures are the summed columns of the rollup tables (clickhouse/migrations/0002).
var compatMeasures = []string{"events", "csat_n", "csat_top2", "nps_n", "nps_promoters", "nps_detractors",
	"ces_n", "ces_sum", "negative", "with_outcome", "abandoned", "wait_n"}

func expectedSums(rows []compatRow) compatSums {
	s := compatSums{values: map[string]uint64{}, hist: map[int]uint64{}}
	add := func(name string, cond bool) {
		if cond {
			s.values[name]++
		}
	}
	for _, r := range rows {
		add("events", true)
		add("csat_n", r.csat >= 0)
		add("csat_top2", r.csat >= 4)
		add("nps_n", r.nps >= 0)
		add("nps_promoters", r.nps >= 9)
		add("nps_detractors", r.nps >= 0 && r.nps <= 6)
		add("ces_n", r.ces >= 0)
		if r.ces >= 0 {
			s.values["ces_sum"] += uint64(r.ces)
		}
		add("negative", r.negative)
		add("with_outcome", r.outcome != "")
		add("abandoned", r.outcome == "abandoned")
		add("wait_n", r.wait >= 0)
		if r.wait >= 0 {
			s.hist[metric.BucketOf(uint32(r.wait))]++
		}
	}
	return s
}

// compatRollups are the rollup tables and their keys.
var compatRollups = []struct{ table, time, keys string }{
	{"overview_1s", "toDateTime(occurred_at)", "moment, channel"},
	{"overview_1m", "toStartOfMinute(occurred_at)", "moment, channel"},
	{"detail_1m", "toStartOfMinute(occurred_at)", "moment, channel, touchpoint, region, product, segment, agent_team"},
	{"detail_1h", "toStartOfHour(occurred_at)", "moment, channel, touchpoint, region, product, segment, agent_team"},
	{"overview_1h", "intDiv(toUInt32(occurred_at), 3600)", "moment, channel"},
	{"overview_10s", "intDiv(toUInt32(occurred_at), 10)", "moment, channel"},
	{"overview_30s", "intDiv(toUInt32(occurred_at), 30)", "moment, channel"},
	{"overview_2m", "intDiv(toUInt32(occurred_at), 120)", "moment, channel"},
	{"overview_30m", "intDiv(toUInt32(occurred_at), 1800)", "moment, channel"},
	{"touchpoint_1h", "intDiv(toUInt32(occurred_at), 3600)", "moment, channel, touchpoint, region, agent_team"},
}

// rollupTotalsQuery reads a rollup the way the dashboards do (-Merge per key), then adds up
// the groups: its row has the number of groups, every measure and the summed histogram.
func rollupTotalsQuery(table, keys string) string {
	var inner, outer []string
	for _, m := range compatMeasures {
		inner = append(inner, fmt.Sprintf("sumMerge(%s) AS %s", m, m))
		outer = append(outer, fmt.Sprintf("sum(%s) AS %s", m, m))
	}
	return fmt.Sprintf(`SELECT count() AS groups, %s, sumMap(wait_hist.1, wait_hist.2) AS wait_hist
FROM (
    SELECT t, %s, %s, sumMapMerge(wait_hist) AS wait_hist
    FROM %s
    GROUP BY t, %s
)`, strings.Join(outer, ", "), keys, strings.Join(inner, ", "), table, keys)
}

// TestMigrationsOnModernClickHouse applies every migration on modern ClickHouse, inserts events,
// and checks that every rollup view fired and holds the right sums.
func TestMigrationsOnModernClickHouse(t *testing.T) {
	migrations := MigrationStatements(t)
	if len(migrations) == 0 {
		t.Fatal("no migration statements")
	}
	statements := append(append([]string{}, migrations...),
		compatInsertA("a", compatRowsA),
		compatInsertB(),
		compatInsertA("c", compatRowsC),
		// Merge the parts of two rollups, so their states are read both merged and unmerged.
		"OPTIMIZE TABLE overview_1m FINAL",
		"OPTIMIZE TABLE detail_1h FINAL",
		"OPTIMIZE TABLE overview_1h FINAL",
	)

	// Query 0: the raw table's measures, the reference for every rollup.
	raw := `SELECT count() AS events, count(csat) AS csat_n, countIf(ifNull(csat, 0) >= 4) AS csat_top2,
    count(nps) AS nps_n, countIf(ifNull(nps, 0) >= 9) AS nps_promoters,
    countIf(isNotNull(nps) AND ifNull(nps, 0) <= 6) AS nps_detractors, count(ces) AS ces_n,
    sum(toUInt64(ifNull(ces, 0))) AS ces_sum, sum(toUInt64(negative)) AS negative,
    countIf(outcome != '') AS with_outcome, countIf(outcome = 'abandoned') AS abandoned,
    count(wait_ms) AS wait_n
FROM events`
	// Query 1: how many groups each rollup must hold, counted on the raw table.
	var groups []string
	for _, r := range compatRollups {
		groups = append(groups, fmt.Sprintf("uniqExact(%s, %s) AS %s", r.time, r.keys, r.table))
	}
	groupsQuery := "SELECT " + strings.Join(groups, ", ") + " FROM events"
	// Query 2: one row per moment and channel, the shape of the executive heatmap.
	heatmap := `SELECT moment, channel, sumMerge(events) AS events, sumMapMerge(wait_hist) AS wait_hist
FROM overview_1s
GROUP BY moment, channel
ORDER BY moment, channel`
	queries := []string{raw, groupsQuery, heatmap}
	for _, r := range compatRollups {
		queries = append(queries, rollupTotalsQuery(r.table, r.keys))
	}

	rep := RunOnModernClickHouse(t, statements, queries)
	if t.Failed() {
		return
	}
	t.Logf("modern ClickHouse %s (chdb %s): %d migration statements, %d inserts and merges, %d queries passed",
		rep.Engine.ClickHouse, rep.Engine.Chdb, len(migrations), len(statements)-len(migrations), len(queries))

	rows := compatRows()
	want := expectedSums(rows)
	if n := uint64(len(rows)); want.values["events"] != n {
		t.Fatalf("bug in the test: %d rows, %d events", n, want.values["events"])
	}

	// The raw table holds what was inserted.
	rawRow := onlyRow(t, rep.Queries[0])
	for _, m := range compatMeasures {
		if got := uintCell(t, rawRow, m); got != want.values[m] {
			t.Errorf("events: %s = %d, want %d", m, got, want.values[m])
		}
	}

	// Every rollup holds the same sums, in as many groups as its key has distinct values.
	wantGroups := onlyRow(t, rep.Queries[1])
	for i, r := range compatRollups {
		row := onlyRow(t, rep.Queries[3+i])
		for _, m := range compatMeasures {
			if got := uintCell(t, row, m); got != want.values[m] {
				t.Errorf("%s: sum of %s = %d, want %d (as in events)", r.table, m, got, want.values[m])
			}
		}
		if got, w := uintCell(t, row, "groups"), uintCell(t, wantGroups, r.table); got != w || got == 0 {
			t.Errorf("%s: %d groups, want %d (distinct keys in events)", r.table, got, w)
		}
		if got := histCell(t, row, "wait_hist"); !equalHist(got, want.hist) {
			t.Errorf("%s: wait_hist = %v,\nwant (metric.BucketOf) %v", r.table, got, want.hist)
		}
	}

	// The heatmap has one row per moment and channel that occurred, adding up to every event.
	pairs := map[string]bool{}
	for _, r := range rows {
		pairs[r.moment+"/"+r.channel] = true
	}
	heat := rep.Queries[2]
	if len(heat.Rows) != len(pairs) {
		t.Errorf("heatmap: %d rows, want %d (moment, channel) pairs", len(heat.Rows), len(pairs))
	}
	var total, histTotal uint64
	for _, row := range heat.Rows {
		total += uintCell(t, row, "events")
		for _, n := range histCell(t, row, "wait_hist") {
			histTotal += n
		}
	}
	if total != want.values["events"] || histTotal != want.values["wait_n"] {
		t.Errorf("heatmap: %d events and %d waits, want %d and %d", total, histTotal, want.values["events"], want.values["wait_n"])
	}
	t.Logf("%d events in %d moment×channel cells; every rollup (%d tables) agrees with the raw table and with metric.BucketOf",
		total, len(heat.Rows), len(compatRollups))
}

func onlyRow(t *testing.T, q CompatResult) map[string]json.RawMessage {
	t.Helper()
	if len(q.Rows) != 1 {
		t.Fatalf("query %d returned %d rows, want 1: %s", q.Index, len(q.Rows), clip(oneLine(q.SQL), 200))
	}
	return q.Rows[0]
}

// uintCell reads an unsigned integer cell, sent as a JSON string (64-bit) or number.
func uintCell(t *testing.T, row map[string]json.RawMessage, name string) uint64 {
	t.Helper()
	raw, ok := row[name]
	if !ok {
		t.Fatalf("no column %q in %v", name, row)
	}
	var n flexUint
	if err := json.Unmarshal(raw, &n); err != nil {
		t.Fatalf("column %s: %v", name, err)
	}
	return uint64(n)
}

// histCell reads a sumMap result, Tuple(Array(UInt8), Array(UInt64)), which ClickHouse's JSON
// format writes as [[keys…], [counts…]].
func histCell(t *testing.T, row map[string]json.RawMessage, name string) map[int]uint64 {
	t.Helper()
	var tuple [2][]flexUint
	if err := json.Unmarshal(row[name], &tuple); err != nil || len(tuple[0]) != len(tuple[1]) {
		t.Fatalf("column %s is not [[keys], [values]]: %s (%v)", name, row[name], err)
	}
	h := map[int]uint64{}
	for i, k := range tuple[0] {
		h[int(k)] += uint64(tuple[1][i])
	}
	return h
}

func equalHist(a, b map[int]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// flexUint is an unsigned integer written as a JSON number or string.
type flexUint uint64

func (f *flexUint) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an unsigned integer: %s", b)
	}
	*f = flexUint(n)
	return nil
}
