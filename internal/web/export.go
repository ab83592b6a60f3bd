package web

// CSV answers of GET /v1/metrics and GET /v1/consistency, for people who take the figures to a
// spreadsheet or a weekly report (docs/api.md, "CSV"). A metrics export is streamed: its groups
// come from ClickHouse sorted by key (store.RollupEach), each row is built and written once its
// groups are in, and only the running total is kept, so a month by touchpoint costs a page of
// the groups ClickHouse sends and one row, not every group and the file (29 MiB against 440 MiB
// for JSON on 50,000 touchpoints, 20 MiB for their daily trend: docs/benchmarks.md).

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"iter"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
)

const (
	csvContentType = "text/csv; charset=utf-8"
	// exportTimeout bounds the ClickHouse query of one export; the server's write timeout (30 s)
	// bounds its sending.
	exportTimeout = time.Minute
	// maxExports is how many metrics exports may stream at once on a server: each holds one of
	// the read API's query slots (TRUTHBOARD_READ_MAX_QUERIES, 3 by default) for as long as its
	// client reads, so more are refused with 503 and Retry-After: 1, leaving slots to the other
	// reads.
	maxExports = 2
)

// exportLimit counts the metrics exports streaming now; its zero value is ready to use.
type exportLimit struct{ n atomic.Int32 }

func (l *exportLimit) acquire() bool {
	if l.n.Add(1) > maxExports {
		l.n.Add(-1)
		return false
	}
	return true
}

func (l *exportLimit) release() { l.n.Add(-1) }

// answerFormat takes the format parameter out of values (rollup.ParseQuery refuses parameters
// it does not know) and reports whether the answer is CSV: format=csv, or, without format (or
// with an empty one), an Accept header that prefers text/csv to JSON. It has answered a bad
// format with 400 itself when ok is false.
func answerFormat(c *fiber.Ctx, values url.Values) (asCSV, ok bool, err error) {
	formats, given := values["format"]
	delete(values, "format")
	bad := func(msg string) (bool, bool, error) {
		return false, false, c.Status(fiber.StatusBadRequest).JSON(paramError{Param: "format", Error: "parameter format: " + msg})
	}
	switch {
	case len(formats) > 1:
		return bad(fmt.Sprintf("given %d times; give it once", len(formats)))
	case !given || formats[0] == "":
		return c.Accepts(fiber.MIMEApplicationJSON, "text/csv") == "text/csv", true, nil
	case formats[0] == "csv":
		return true, true, nil
	case formats[0] == "json":
		return false, true, nil
	}
	return bad(fmt.Sprintf("%q is not a format; use format=csv, format=json (the default), or leave it out", formats[0]))
}

// setCSVHeaders names the file after what it holds: the answer, its window and when it was
// asked, in UTC, e.g. truthboard-metrics-15m-20260310T101742Z.csv.
func setCSVHeaders(c *fiber.Ctx, what, window string, at time.Time) {
	c.Set(fiber.HeaderContentType, csvContentType)
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="truthboard-%s-%s-%s.csv"`,
		what, window, at.UTC().Format("20060102T150405Z")))
}

// exportMetrics answers GET /v1/metrics as CSV, streamed. Errors found before the first byte
// (bad parameters, ClickHouse unavailable) get the JSON answers and statuses of the JSON API;
// a failure while streaming cuts the response short (no final chunk), which HTTP clients report
// as an error rather than a complete file.
func (s *Server) exportMetrics(c *fiber.Ctx, values url.Values) error {
	q, ok, err := parseQuery(c, values)
	if !ok {
		return err
	}
	if q.Step > 0 && (q.Compare || q.Recovery) {
		return c.Status(fiber.StatusBadRequest).JSON(paramError{Param: "series", Error: "parameter series: a CSV export with series=true " +
			"has one row per group and step, without a comparison or recovery: leave out compare and recovery, or series"})
	}
	if !s.exports.acquire() {
		c.Set(fiber.HeaderRetryAfter, "1")
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: fmt.Sprintf(
			"%d CSV exports are being sent already, the most this server streams at once; retry in a second", maxExports)})
	}
	// The export holds a read slot from its first query to its last byte.
	wait, cancelWait := context.WithTimeout(c.UserContext(), 10*time.Second)
	releaseRead, err := s.reading(wait)
	cancelWait()
	if err != nil {
		s.exports.release()
		return s.readBusy(c)
	}
	now := s.now()
	p := q.Plan(now)
	ex := &metricsExport{q: q, p: p, rules: s.opts.Rules, total: map[totalKey]*rollup.Group{},
		release: func() { releaseRead(); s.exports.release() }}
	if q.Recovery {
		ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
		rec, err := s.db.Recovery(ctx, q, p, now)
		cancel()
		if err != nil {
			ex.release()
			return dbError(c, err)
		}
		ex.recovery, ex.recoveryByKey = rec, map[rollup.RowKey]rollup.RecoveryGroup{}
		for _, g := range rec {
			ex.recoveryByKey[rollup.KeyOf(g.Moment, g.Channel, g.Touchpoint, g.Region, g.AgentTeam)] = g
		}
	}
	// The query runs on its own context: the stream is read after this handler returns.
	ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
	next, stop := iter.Pull2(s.db.RollupEach(ctx, q, p))
	ex.stop = func() { cancel(); stop() } // cancel first: the driver would read the rest otherwise
	first, err, more := next()
	if err != nil {
		ex.Close()
		return dbError(c, err)
	}
	ex.next = next
	if more {
		ex.lookahead = *first
		ex.pending = true
	}
	ex.w = csv.NewWriter(&ex.buf)
	ex.writeHeader()
	setCSVHeaders(c, "metrics", q.WindowName, now)
	return c.SendStream(ex)
}

// totalKey is what the total of an export keeps apart: the period and the trend bucket.
type totalKey struct {
	previous bool
	bucket   time.Time
}

// metricsExport is the body of a metrics export, an io.ReadCloser that fasthttp reads as it
// sends: each Read builds rows until it has bytes to give. Its groups come sorted by key, so a
// row is done when the key changes; the total is written last.
type metricsExport struct {
	q     rollup.Query
	p     rollup.Plan
	rules metric.Rules

	next      func() (*rollup.Group, error, bool)
	stop      func()
	release   func()
	lookahead rollup.Group // the next group, not yet in a row
	pending   bool         // lookahead holds one

	// total keeps the sums of every group by period and bucket, keys left out.
	total         map[totalKey]*rollup.Group
	recovery      []rollup.RecoveryGroup
	recoveryByKey map[rollup.RowKey]rollup.RecoveryGroup

	buf    bytes.Buffer
	w      *csv.Writer
	done   bool // the total is written
	closed bool
}

func (e *metricsExport) Read(b []byte) (int, error) {
	for e.buf.Len() == 0 && !e.done {
		if err := e.fill(); err != nil {
			return 0, err
		}
	}
	if e.buf.Len() == 0 {
		return 0, io.EOF
	}
	return e.buf.Read(b)
}

// Close stops the query and frees the export's slot; fasthttp calls it once the response is
// sent or the client has gone.
func (e *metricsExport) Close() error {
	if !e.closed {
		e.closed = true
		e.stop()
		e.release()
	}
	return nil
}

// fill writes the next row, or the total once the groups are all read.
func (e *metricsExport) fill() error {
	if !e.pending {
		total := e.q
		total.By = nil
		res := rollup.Build(total, e.p, e.totalGroups(), e.rules)
		if e.q.Recovery {
			rollup.AttachRecovery(&res, e.recovery, e.rules)
		}
		e.writeRow(&res.Total)
		e.done = true
		return e.flush()
	}
	key := e.lookahead.Key()
	groups := []rollup.Group{e.lookahead}
	e.pending = false
	for {
		g, err, more := e.next()
		if err != nil {
			return fmt.Errorf("csv export: %w", err)
		}
		if !more {
			break
		}
		if g.Key() != key {
			e.lookahead, e.pending = *g, true
			break
		}
		groups = append(groups, *g)
	}
	for i := range groups {
		e.addToTotal(&groups[i])
	}
	// Build on the groups of one key gives exactly the row Build gives that key among all.
	res := rollup.Build(e.q, e.p, groups, e.rules)
	if len(res.Rows) == 0 {
		return nil
	}
	row := &res.Rows[0]
	if e.q.Recovery {
		one := rollup.Result{Rows: res.Rows}
		rollup.AttachRecovery(&one, []rollup.RecoveryGroup{e.recoveryByKey[key]}, e.rules)
	}
	e.writeRow(row)
	return e.flush()
}

func (e *metricsExport) addToTotal(g *rollup.Group) {
	k := totalKey{g.Previous, g.Bucket}
	t := e.total[k]
	if t == nil {
		t = &rollup.Group{Previous: g.Previous, Bucket: g.Bucket}
		e.total[k] = t
	}
	t.Add(&g.Counts)
	if g.Newest.After(t.Newest) {
		t.Newest = g.Newest
	}
}

func (e *metricsExport) totalGroups() []rollup.Group {
	out := make([]rollup.Group, 0, len(e.total))
	for _, g := range e.total {
		out = append(out, *g)
	}
	return out
}

func (e *metricsExport) flush() error {
	e.w.Flush()
	return e.w.Error()
}

// The figures of a metrics row, in the order of their columns.
var csvFigures = []struct {
	name      string
	figure    func(*rollup.Metrics) metric.Figure
	change    func(*rollup.Deltas) metric.Change
	judgement func(*rollup.Judgements) rollup.Judgement
}{
	{"csat", func(m *rollup.Metrics) metric.Figure { return m.CSAT }, func(d *rollup.Deltas) metric.Change { return d.CSAT },
		func(j *rollup.Judgements) rollup.Judgement { return j.CSAT }},
	{"nps", func(m *rollup.Metrics) metric.Figure { return m.NPS }, func(d *rollup.Deltas) metric.Change { return d.NPS },
		func(j *rollup.Judgements) rollup.Judgement { return j.NPS }},
	{"ces", func(m *rollup.Metrics) metric.Figure { return m.CES }, func(d *rollup.Deltas) metric.Change { return d.CES },
		func(j *rollup.Judgements) rollup.Judgement { return j.CES }},
	{"negative_rate", func(m *rollup.Metrics) metric.Figure { return m.NegativeRate }, func(d *rollup.Deltas) metric.Change { return d.NegativeRate },
		func(j *rollup.Judgements) rollup.Judgement { return j.NegativeRate }},
	{"abandonment", func(m *rollup.Metrics) metric.Figure { return m.Abandonment }, func(d *rollup.Deltas) metric.Change { return d.Abandonment },
		func(j *rollup.Judgements) rollup.Judgement { return j.Abandonment }},
	{"wait_p50_ms", func(m *rollup.Metrics) metric.Figure { return m.WaitP50MS }, func(d *rollup.Deltas) metric.Change { return d.WaitP50MS },
		func(j *rollup.Judgements) rollup.Judgement { return j.WaitP50MS }},
	{"wait_p90_ms", func(m *rollup.Metrics) metric.Figure { return m.WaitP90MS }, func(d *rollup.Deltas) metric.Change { return d.WaitP90MS },
		func(j *rollup.Judgements) rollup.Judgement { return j.WaitP90MS }},
}

// judgementColumns are the columns of a change's judgement, after its delta. Its n and
// n_previous are left out: they are the figure's F_n and previous_F_n (events and
// previous_events for volume).
var judgementColumns = []string{"verdict", "reason", "test", "p"}

// writeHeader writes the header row. A column is named after the JSON field it comes from,
// its path joined with _ and without "value": csat, csat_n, previous_csat, delta_csat,
// judgement_csat_verdict, recovery_rate, recovery_pending.
func (e *metricsExport) writeHeader() {
	h := []string{"window", "from", "to"}
	if e.q.Compare {
		h = append(h, "compare", "previous_from", "previous_to")
	}
	h = append(h, e.q.By...)
	if e.q.Step > 0 {
		h = append(h, "t", "partial", "seconds")
	}
	judged := func(name string) {
		for _, c := range judgementColumns {
			h = append(h, "judgement_"+name+"_"+c)
		}
	}
	h = append(h, "events", "rate_per_s")
	if e.q.Compare {
		h = append(h, "previous_events", "previous_rate_per_s", "delta_events")
		judged("events")
	}
	for _, f := range csvFigures {
		h = append(h, f.name, f.name+"_n")
		if e.q.Compare {
			h = append(h, "previous_"+f.name, "previous_"+f.name+"_n", "delta_"+f.name)
			judged(f.name)
		}
	}
	if e.q.Recovery {
		h = append(h, "recovery_rate", "recovery_rate_n", "recovery_pending")
	}
	_ = e.w.Write(h) // into a bytes.Buffer: cannot fail
}

// writeRow writes a row, or with series=true one row per point of its series.
func (e *metricsExport) writeRow(row *rollup.Row) {
	lead := []string{e.q.WindowName, csvTime(e.p.From), csvTime(e.p.To)}
	if e.q.Compare {
		lead = append(lead, e.q.Comparison(), csvTime(e.p.PrevFrom), csvTime(e.p.ComparedTo()))
	}
	for _, d := range e.q.By {
		lead = append(lead, textCell(row.Dimension(d)))
	}
	if e.q.Step > 0 {
		for i := range row.Series {
			pt := &row.Series[i]
			seconds := ""
			if pt.Partial {
				seconds = csvNumber(pt.Seconds)
			}
			cells := append(append([]string{}, lead...), csvTime(pt.T), strconv.FormatBool(pt.Partial), seconds)
			_ = e.w.Write(metricsCells(cells, &pt.Metrics, nil))
		}
		return
	}
	_ = e.w.Write(metricsCells(lead, &row.Metrics, row))
}

// metricsCells appends the figures m to a row's leading cells, and those of row's comparison
// and recovery when it has them.
func metricsCells(cells []string, m *rollup.Metrics, row *rollup.Row) []string {
	var (
		prev *rollup.Metrics
		d    *rollup.Deltas
		j    *rollup.Judgements
		rec  *metric.Recovery
	)
	if row != nil {
		prev, d, j, rec = row.Previous, row.Delta, row.Judgement, row.Recovery
	}
	judged := func(jd rollup.Judgement) {
		p := ""
		if jd.Tested && !math.IsNaN(jd.P) && !math.IsInf(jd.P, 0) {
			p = csvNumber(jd.P)
		}
		cells = append(cells, string(jd.Verdict), string(jd.Reason), jd.Test, p)
	}
	cells = append(cells, strconv.FormatUint(m.Events, 10), csvNumber(m.RatePerSecond))
	if prev != nil {
		cells = append(cells, strconv.FormatUint(prev.Events, 10), csvNumber(prev.RatePerSecond), strconv.FormatInt(d.Events, 10))
		judged(judgementOf(j, func(j *rollup.Judgements) rollup.Judgement { return j.Events }))
	}
	for _, f := range csvFigures {
		cells = append(cells, figureCells(f.figure(m))...)
		if prev != nil {
			cells = append(cells, figureCells(f.figure(prev))...)
			cells = append(cells, changeCell(f.change(d)))
			judged(judgementOf(j, f.judgement))
		}
	}
	if rec != nil {
		cells = append(cells, figureCells(rec.Rate)...)
		cells = append(cells, strconv.FormatInt(rec.Pending, 10))
	}
	return cells
}

// judgementOf is one judgement of j, empty when the row has none.
func judgementOf(j *rollup.Judgements, get func(*rollup.Judgements) rollup.Judgement) rollup.Judgement {
	if j == nil {
		return rollup.Judgement{}
	}
	return get(j)
}

// writeConsistencyCSV writes GET /v1/consistency as CSV: one row per moment and channel, the
// moment's index, test and gap repeated on each of its channels' rows, columns named after the
// JSON fields as in a metrics export (the gap's channels by name only: their lines are rows).
// It is at most 5 × 11 rows, so it is built whole.
func writeConsistencyCSV(c *fiber.Ctx, res *rollup.ConsistencyResult, at time.Time) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"window", "from", "to", "moment", "cci", "cci_n", "heterogeneity_chi_square", "heterogeneity_df",
		"heterogeneity_p_value", "heterogeneity_i2", "gap_best_channel", "gap_worst_channel", "gap_by",
		"channel", "n", "csat", "csat_n", "low", "high", "excluded"})
	for _, m := range res.Moments {
		lead := append([]string{res.Window, csvTime(res.From), csvTime(res.To), textCell(m.Moment)}, figureCells(m.CCI)...)
		if h := m.Heterogeneity; h != nil {
			lead = append(lead, csvNumber(h.ChiSquare), strconv.Itoa(h.DF), csvNumber(h.PValue), csvNumber(h.I2))
		} else {
			lead = append(lead, "", "", "", "")
		}
		if g := m.Gap; g != nil {
			lead = append(lead, textCell(g.Best.Channel), textCell(g.Worst.Channel), csvNumber(g.By))
		} else {
			lead = append(lead, "", "", "")
		}
		for _, ch := range m.Channels {
			cells := append(append([]string{}, lead...), textCell(ch.Channel), strconv.FormatInt(ch.N, 10))
			cells = append(cells, figureCells(ch.CSAT)...)
			cells = append(cells, csvNumber(ch.Low), csvNumber(ch.High), strconv.FormatBool(ch.Excluded))
			_ = w.Write(cells)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	setCSVHeaders(c, "consistency", res.Window, at)
	return c.Send(buf.Bytes())
}

// figureCells are a figure's value and n: the value's cell is empty when there is not enough
// data, never 0.
func figureCells(f metric.Figure) []string {
	v := ""
	if f.OK && !math.IsNaN(f.Value) && !math.IsInf(f.Value, 0) {
		v = csvNumber(f.Value)
	}
	return []string{v, strconv.FormatInt(f.N, 10)}
}

// changeCell is a delta, empty when either period has no value.
func changeCell(ch metric.Change) string {
	if !ch.OK || math.IsNaN(ch.By) || math.IsInf(ch.By, 0) {
		return ""
	}
	return csvNumber(ch.By)
}

func csvTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// csvNumber writes a number as encoding/json does (decimal, exponent only below 1e-6 or from
// 1e21), so that a CSV cell has the very digits of the JSON answer.
func csvNumber(f float64) string {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b := strconv.AppendFloat(nil, f, format, -1, 64)
	if format == 'e' { // e-09 → e-9, as encoding/json writes it
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return string(b)
}

// textCell guards a text that comes from the data (a touchpoint, sent by whoever has an ingest
// key) against formula injection: a spreadsheet runs a cell starting with =, +, - or @ (or a
// tab or carriage return, which some read past) as a formula. Such a text gets a leading
// apostrophe, and so does one that starts with an apostrophe already, so that removing one
// leading apostrophe from any text cell always gives the value back.
func textCell(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r'", s[0]) >= 0 {
		return "'" + s
	}
	return s
}
