package web_test

// The long windows and the CSV export, on one data set of 38 days: TestLongWindowsAndExport
// compares window=7d, window=30d and compare=last_week with the figures computed from the raw
// events (as TestMetricsMatchRawEvents does for the windows of a day), then asks the same
// questions as JSON and as CSV and compares every cell of the CSV with the JSON answer, text
// for text, and checks that touchpoints a spreadsheet would run as formulas are defused.

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/web"
)

// hostileTouchpoints are touchpoints that a spreadsheet would run as formulas, or that need CSV
// quoting; each gets csvHostileEvents events in the last hour.
var hostileTouchpoints = []string{"=1+2", "+SUM(A1:A9)", "-2+3", "@cmd", "'quoted", "\tindented", "\rreturn",
	`a,"b"` + "\nc", "plain"}

const csvHostileEvents = 6

// longDataSet is 38 days of quiet demo traffic up to metricsNow, a busy last 20 minutes (and 2
// minutes of the near future), the same busy 40 minutes a week earlier for compare=last_week,
// and the hostile touchpoints.
func longDataSet(t *testing.T) []event.Event {
	t.Helper()
	week := 7 * 24 * time.Hour
	evs := demoEvents(t, 0.008, 21, metricsNow.Add(-38*24*time.Hour), metricsNow.Add(-20*time.Minute))
	evs = append(evs, demoEvents(t, 3, 22, metricsNow.Add(-week-30*time.Minute), metricsNow.Add(-week+10*time.Minute))...)
	evs = append(evs, demoEvents(t, 5, 23, metricsNow.Add(-20*time.Minute), metricsNow.Add(2*time.Minute))...)
	for i, tp := range hostileTouchpoints {
		for j := range csvHostileEvents {
			csat, nps := uint8(1+j%5), uint8(j)
			evs = append(evs, event.Event{EventID: fmt.Sprintf("hostile-%d-%d", i, j), OccurredAt: metricsNow.Add(-time.Duration(10+i*5+j) * time.Minute),
				Moment: "service", Channel: "chat", Touchpoint: tp, CSAT: &csat, NPS: &nps, Region: "north"})
		}
	}
	return evs
}

// insertDataSet writes the distinct events (the first of each event_id) straight into the raw
// table in batches, as the spool's drainer does: what this test checks starts at the table, and
// TestMetricsMatchRawEvents already checks the way there through POST /v1/events.
func insertDataSet(t *testing.T, s *testServer, evs []event.Event) map[string]event.Event {
	t.Helper()
	unique := map[string]event.Event{}
	var batch []event.Event
	flush := func() {
		if err := s.db.InsertEvents(context.Background(), batch, metricsNow); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for _, e := range evs {
		if _, seen := unique[e.EventID]; seen {
			continue
		}
		unique[e.EventID] = e
		if batch = append(batch, e); len(batch) == 20_000 {
			flush()
		}
	}
	flush()
	return unique
}

func TestLongWindowsAndExport(t *testing.T) {
	start := time.Now()
	s := startServer(t, serverConfig{web: web.Options{
		AdminToken: auth.NewKeySet(metricsAdmin),
		Now:        func() time.Time { return metricsNow },
		// 38 days of history: more than the default retention of 30 days.
		Limits: event.Limits{Retention: 45 * 24 * time.Hour, MaxBodyBytes: event.DefaultMaxBodyBytes},
	}})
	raw := checkedRawEvents(t, s, insertDataSet(t, s, longDataSet(t)), start)

	const w7d, w30d = 5, 6
	if specWindows[w7d].name != "7d" || specWindows[w30d].name != "30d" {
		t.Fatal("specWindows changed: the long windows are not at 5 and 6")
	}
	cov := &metricsCoverage{}
	groupings := [][]string{nil, {"moment"}, {"channel"}, {"moment", "channel"}, {"touchpoint"}}
	filterSets := []filterSet{nil, {{"channel", "voice,chat"}}, {{"region", "north"}}, {{"moment", "service"}, {"agent_team", "billing"}}}
	var cases []metricsCase
	for _, w := range []int{w7d, w30d} {
		for _, by := range groupings {
			for _, f := range filterSets {
				cases = append(cases, metricsCase{window: w, by: by, filters: f, compare: true})
				cases = append(cases, metricsCase{window: w, by: by, filters: f, compare: true, lastWeek: true})
			}
			cases = append(cases, metricsCase{window: w, by: by, recovery: true})
		}
		cases = append(cases, metricsCase{window: w, by: []string{"moment"}, series: true},
			metricsCase{window: w, by: []string{"touchpoint"}, filters: filterSet{{"region", "north"}}, series: true})
	}
	// compare=last_week on every window of a day: the busy minutes of a week ago.
	for w := range specDayWindows {
		for _, by := range [][]string{nil, {"moment", "channel"}, {"touchpoint"}} {
			cases = append(cases, metricsCase{window: w, by: by, compare: true, lastWeek: true},
				metricsCase{window: w, by: by, filters: filterSet{{"channel", "voice,chat"}}, compare: true, lastWeek: true})
		}
		cases = append(cases, metricsCase{window: w, by: []string{"channel"}, filters: filterSet{{"segment", "consumer"}}, compare: true, lastWeek: true, series: true})
	}
	for _, c := range cases {
		t.Run("raw/"+strings.TrimPrefix(c.path(), "/v1/metrics?"), func(t *testing.T) {
			checkMetricsCase(t, s, raw, cov, c)
		})
	}
	for _, w := range []int{w7d, w30d} {
		for _, f := range []filterSet{nil, {{"region", "north"}}, {{"channel", "voice,chat,ivr,messaging,email"}}} {
			t.Run(fmt.Sprintf("raw/consistency/window=%s/%v", specWindows[w].name, f), func(t *testing.T) {
				checkConsistency(t, s, raw, cov, w, f)
			})
		}
	}
	t.Logf("%d requests of the long windows and compare=last_week checked: %d rows, %d trend points, %d figures (%d with a value, %d null), "+
		"%d deltas (%d null), %d wait percentiles with a value (worst error %.2f%%), %d moments' CCI (%d null)",
		len(cases)+6, cov.rows, cov.points, cov.figures, cov.values, cov.nulls, cov.deltas, cov.nullDeltas, cov.waitValues,
		100*cov.worstWaitError, cov.ccis, cov.nullCCIs)
	if cov.nulls == 0 || cov.values == 0 || cov.nullDeltas == 0 || cov.deltas == cov.nullDeltas || cov.waitValues == 0 ||
		cov.ccis == cov.nullCCIs || cov.points == 0 {
		t.Errorf("the data set does not cover every case: %+v", cov)
	}

	for _, query := range []string{
		"window=5m",
		"window=15m&by=moment,channel&compare=previous",
		"window=1h&by=touchpoint&compare=last_week",
		"window=24h&by=channel&recovery=true",
		"window=7d&by=moment,channel,touchpoint&compare=last_week",
		"window=7d&by=moment&compare=previous&recovery=true",
		"window=30d&by=touchpoint&compare=last_week&region=north",
		"window=30d&by=moment&series=true",
		"window=1h&by=touchpoint&moment=service&channel=chat&series=true",
		"window=30d&by=channel&compare=previous&recovery=true",
		"window=24h&by=touchpoint&region=nowhere",
	} {
		t.Run("csv/"+query, func(t *testing.T) { checkMetricsCSV(t, s, query, false) })
	}
	t.Run("csv/Accept: text/csv", func(t *testing.T) { checkMetricsCSV(t, s, "window=15m&by=channel&compare=last_week", true) })
	for _, query := range []string{"window=15m", "window=7d&region=north", "window=30d"} {
		t.Run("csv/consistency?"+query, func(t *testing.T) { checkConsistencyCSV(t, s, query) })
	}
	t.Run("csv/formula injection", func(t *testing.T) { checkFormulaInjection(t, s) })
}

// getCSV asks path as CSV (with Accept: text/csv when accept, else with format=csv) and reads
// the answer, checking its headers. It returns the header row and the rows as maps by column.
func getCSV(t *testing.T, s *testServer, what, path string, accept bool) ([]string, []map[string]string, [][]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept {
		req.Header.Set("Accept", "text/csv")
	} else {
		req.URL.RawQuery += "&format=csv"
	}
	req.Header.Set("Authorization", "Bearer "+metricsAdmin)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("GET %s: status %d, Content-Type %q; want 200 text/csv; charset=utf-8", req.URL, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	q, _ := url.ParseQuery(req.URL.RawQuery)
	window := q.Get("window")
	name := regexp.MustCompile(`^attachment; filename="truthboard-` + what + `-` + window + `-` + metricsNow.Format("20060102T150405Z") + `\.csv"$`)
	if cd := resp.Header.Get("Content-Disposition"); !name.MatchString(cd) {
		t.Errorf("Content-Disposition %q, want %s", cd, name)
	}
	records, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatalf("GET %s: the answer is not CSV: %v", req.URL, err)
	}
	if len(records) == 0 {
		t.Fatalf("GET %s: no header row", req.URL)
	}
	header := records[0]
	var rows []map[string]string
	for _, r := range records[1:] {
		m := map[string]string{}
		for i, c := range header {
			m[c] = r[i]
		}
		rows = append(rows, m)
	}
	return header, rows, records[1:]
}

// getJSON asks path as JSON and decodes it with numbers kept as their text.
func getJSON(t *testing.T, s *testServer, path string) map[string]any {
	t.Helper()
	code, _, b := apiGet(t, s, path, metricsAdmin)
	if code != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, code, b)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// flatten names every leaf of a JSON answer's object as docs/api.md says its CSV column is
// named: the path joined with _, a figure {"value", "n"} as name and name_n; null is an empty
// cell, numbers keep their JSON text.
func flatten(out map[string]string, prefix string, obj map[string]any) {
	for k, v := range obj {
		name := prefix + k
		switch v := v.(type) {
		case map[string]any:
			if _, isFigure := v["value"]; isFigure && len(v) == 2 {
				out[name], out[name+"_n"] = cellOf(v["value"]), cellOf(v["n"])
				continue
			}
			flatten(out, name+"_", v)
		default:
			out[name] = cellOf(v)
		}
	}
}

func cellOf(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case json.Number:
		return v.String()
	case string:
		return v
	case bool:
		return fmt.Sprint(v)
	}
	panic(fmt.Sprintf("a JSON leaf of type %T", v))
}

// unguard undoes the formula guard of a text cell: one leading apostrophe.
func unguard(s string) string { return strings.TrimPrefix(s, "'") }

// checkMetricsCSV compares the CSV export of a metrics query with its JSON answer, cell by cell:
// the same columns, the rows in the same order with the total last, and the same text in
// every cell (a figure without enough data an empty cell, never 0).
func checkMetricsCSV(t *testing.T, s *testServer, query string, accept bool) {
	path := "/v1/metrics?" + query
	res := getJSON(t, s, path)
	header, rows, _ := getCSV(t, s, "metrics", path, accept)
	var by []string
	for _, d := range res["by"].([]any) {
		by = append(by, d.(string))
	}
	lead := map[string]string{}
	for _, k := range []string{"window", "from", "to", "compare", "previous_from", "previous_to"} {
		if v, ok := res[k]; ok {
			lead[k] = cellOf(v)
		}
	}
	// The JSON rows, then the total; with series=true, each one's points.
	var want []map[string]string
	groups := append(slices.Clone(res["rows"].([]any)), res["total"])
	for _, g := range groups {
		row := g.(map[string]any)
		base := map[string]string{}
		for k, v := range lead {
			base[k] = v
		}
		for _, d := range by {
			base[d] = ""
			if v, ok := row[d]; ok {
				base[d] = v.(string)
			}
			delete(row, d)
		}
		series, _ := row["series"].([]any)
		delete(row, "series")
		if res["step"] == nil {
			m := maps.Clone(base)
			flatten(m, "", row)
			want = append(want, judgementNs(t, path, m))
			continue
		}
		for _, p := range series {
			m := maps.Clone(base)
			// partial and seconds are left out of the JSON of a whole step; the CSV says false
			// and leaves seconds empty.
			m["partial"], m["seconds"] = "false", ""
			flatten(m, "", p.(map[string]any))
			want = append(want, m)
		}
	}
	if len(rows) != len(want) {
		t.Fatalf("%s: %d CSV rows, the JSON answer has %d (rows, then the total)", path, len(rows), len(want))
	}
	cols := map[string]bool{}
	for _, c := range header {
		if cols[c] {
			t.Errorf("%s: column %s twice", path, c)
		}
		cols[c] = true
	}
	cells := 0
	for i := range want {
		for c, v := range want[i] {
			if !cols[c] {
				t.Fatalf("%s: no column %s for the JSON's %s", path, c, c)
			}
			got := rows[i][c]
			if slices.Contains(by, c) {
				got = unguard(got)
			}
			if got != v {
				t.Errorf("%s row %d (%v): %s = %q, the JSON has %q", path, i+1, keysOf(rows[i], by), c, rows[i][c], v)
			}
			cells++
		}
		if len(want[i]) != len(header) {
			t.Errorf("%s row %d: %d columns, the JSON has %d values", path, i+1, len(header), len(want[i]))
		}
	}
	if cells == 0 {
		t.Errorf("%s: nothing compared", path)
	}
}

// judgementNs checks that the n and n_previous of every judgement are the figure's n in the two
// periods, which the CSV has already (docs/api.md), and leaves them out of want.
func judgementNs(t *testing.T, path string, want map[string]string) map[string]string {
	t.Helper()
	for c := range want {
		name, ok := strings.CutPrefix(c, "judgement_")
		if !ok || !strings.HasSuffix(name, "_n") {
			continue
		}
		figure := strings.TrimSuffix(name, "_n")
		n, prevN := figure+"_n", "previous_"+figure+"_n"
		if figure == "events" {
			n, prevN = "events", "previous_events"
		}
		if want[c] != want[n] || want[c+"_previous"] != want[prevN] {
			t.Errorf("%s: %s = %s and %s_previous = %s; want the figure's n, %s = %s and %s = %s",
				path, c, want[c], c, want[c+"_previous"], n, want[n], prevN, want[prevN])
		}
		delete(want, c)
		delete(want, c+"_previous")
	}
	return want
}

func keysOf(row map[string]string, by []string) []string {
	var k []string
	for _, d := range by {
		k = append(k, row[d])
	}
	return k
}

// checkConsistencyCSV compares the CSV of GET /v1/consistency with its JSON: one row per moment
// and channel, the moment's figures beside each of its channels.
func checkConsistencyCSV(t *testing.T, s *testServer, query string) {
	path := "/v1/consistency?" + query
	res := getJSON(t, s, path)
	header, rows, _ := getCSV(t, s, "consistency", path, false)
	var want []map[string]string
	for _, mv := range res["moments"].([]any) {
		m := mv.(map[string]any)
		channels := m["channels"].([]any)
		delete(m, "channels")
		if m["heterogeneity"] == nil {
			m["heterogeneity"] = map[string]any{"chi_square": nil, "df": nil, "p_value": nil, "i2": nil}
		}
		if gap, ok := m["gap"].(map[string]any); ok { // the gap's channels by name: their lines are rows
			gap["best"] = map[string]any{"channel": gap["best"].(map[string]any)["channel"]}
			gap["worst"] = map[string]any{"channel": gap["worst"].(map[string]any)["channel"]}
		} else {
			m["gap"] = map[string]any{"best": map[string]any{"channel": nil}, "worst": map[string]any{"channel": nil}, "by": nil}
		}
		base := map[string]string{"window": cellOf(res["window"]), "from": cellOf(res["from"]), "to": cellOf(res["to"])}
		flatten(base, "", m)
		for _, ch := range channels {
			row := maps.Clone(base)
			flatten(row, "", ch.(map[string]any))
			want = append(want, row)
		}
	}
	if len(rows) != len(want) || len(want) == 0 {
		t.Fatalf("%s: %d CSV rows, the JSON has %d channel lines", path, len(rows), len(want))
	}
	for i := range want {
		if len(want[i]) != len(header) {
			t.Errorf("%s row %d: %d columns, the JSON has %d values: %v", path, i+1, len(header), len(want[i]), want[i])
		}
		for c, v := range want[i] {
			if got := rows[i][c]; got != v {
				t.Errorf("%s row %d (%s/%s): %s = %q, the JSON has %q", path, i+1, rows[i]["moment"], rows[i]["channel"], c, got, v)
			}
		}
	}
}

// checkFormulaInjection checks the guard of text cells: a touchpoint starting with =, +, -, @, a
// tab, a carriage return or an apostrophe gets one leading apostrophe, others are as sent, and
// encoding/csv quotes commas, quotes and line breaks.
func checkFormulaInjection(t *testing.T, s *testServer) {
	_, rows, _ := getCSV(t, s, "metrics", "/v1/metrics?window=1h&by=touchpoint&moment=service&channel=chat&region=north", false)
	got := map[string]map[string]string{}
	for _, r := range rows {
		got[r["touchpoint"]] = r
	}
	for _, tp := range hostileTouchpoints {
		cell := tp
		if strings.ContainsAny(tp[:1], "=+-@\t\r'") {
			cell = "'" + tp
		}
		r, ok := got[cell]
		switch {
		case !ok:
			t.Errorf("touchpoint %q: no row with the cell %q (cells: %q)", tp, cell, slices.Collect(maps.Keys(got)))
		case r["events"] != fmt.Sprint(csvHostileEvents) || r["csat_n"] != fmt.Sprint(csvHostileEvents):
			t.Errorf("touchpoint %q: events %s, csat_n %s; want %d", tp, r["events"], r["csat_n"], csvHostileEvents)
		}
	}
	for cell := range got {
		if cell != "" && strings.ContainsAny(cell[:1], "=+-@\t\r") {
			t.Errorf("the cell %q starts a formula", cell)
		}
	}
}
