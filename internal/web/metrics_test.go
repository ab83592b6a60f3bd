package web_test

// Correctness you can see: TestMetricsMatchRawEvents ingests a simulated day of traffic through
// POST /v1/events (with retried batches, duplicates and late events), then asks GET /v1/metrics
// and GET /v1/consistency for every window, several groupings and filters, and compares each
// answer with the same figures computed here, with plain arithmetic, from the raw rows of the
// events table: counts exactly, shares and means to 1e-9, wait percentiles within the stated
// bound of the exact nearest-rank percentile, "no value" exactly when n is below 5. Nothing here
// uses internal/rollup or internal/metric to compute an expected value.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/web"
)

const metricsAdmin = "tba_metrics_admin"

// metricsNow is the server's clock in these tests: a fixed instant, half a second into a second,
// so that every window is known in advance.
var metricsNow = time.Date(2026, 3, 10, 10, 17, 42, 500_000_000, time.UTC)

// Rules of the product specification, written down here rather than read from internal/metric.
const (
	specMinN        = 5
	specMinChannelN = 30
	// specQuantileError is the stated bound of the wait percentiles: sqrt(1.1) − 1.
	specQuantileError = 0.04880884817015163
)

func startMetricsServer(t *testing.T) *testServer {
	t.Helper()
	if math.Abs(math.Sqrt(1.1)-1-specQuantileError) > 1e-15 || metric.QuantileRelativeError != specQuantileError {
		t.Fatalf("the stated percentile bound is %v, the test expects %v", metric.QuantileRelativeError, specQuantileError)
	}
	return startServer(t, serverConfig{web: web.Options{
		AdminToken: auth.NewKeySet(metricsAdmin),
		Now:        func() time.Time { return metricsNow },
	}})
}

// ---- the data set ----

// metricsDataSet simulates about 26 hours of traffic up to metricsNow, plus two minutes of
// events from the near future, which the server accepts (up to 5 minutes ahead) and only a
// window reaching past now may count: a quiet day, then a busy last 20 minutes so that the
// short windows have data in every moment. The demo generator repeats 2% of the events (same
// event_id, seconds later) and makes 2% late (sent 2 minutes to 6 hours after they occurred).
func metricsDataSet(t *testing.T) []event.Event {
	t.Helper()
	day := demoEvents(t, 0.2, 11, metricsNow.Add(-26*time.Hour), metricsNow.Add(-20*time.Minute))
	busy := demoEvents(t, 10, 12, metricsNow.Add(-20*time.Minute), metricsNow.Add(2*time.Minute))
	return append(day, busy...)
}

// demoEvents are the demo simulator's events from from to until at rate per second, 2% of them
// repeated and 2% late.
func demoEvents(t *testing.T, rate float64, seed int64, from, until time.Time) []event.Event {
	t.Helper()
	cfg := demo.DefaultConfig()
	cfg.Rate, cfg.Seed, cfg.DuplicateShare, cfg.LateShare = rate, seed, 0.02, 0.02
	g, err := demo.NewGenerator(cfg, from)
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Event
	for {
		e := g.Next()
		if g.Now().After(until) {
			return out
		}
		out = append(out, e)
	}
}

// ingestDataSet posts the events as NDJSON in batches, 4 requests at a time, then re-posts
// every fifth batch (a client that missed the acknowledgements), then posts 1 in 50 events of the
// last 24 hours that were held back (late events, older than everything posted before them).
// It checks every answer and returns the distinct events by event_id.
func ingestDataSet(t *testing.T, s *testServer, evs []event.Event) map[string]event.Event {
	t.Helper()
	seen := map[string]int{}
	for _, e := range evs {
		seen[e.EventID]++
	}
	var bulk, late []event.Event
	for i, e := range evs {
		if i%50 == 0 && seen[e.EventID] == 1 && e.OccurredAt.After(metricsNow.Add(-24*time.Hour)) {
			late = append(late, e)
		} else {
			bulk = append(bulk, e)
		}
	}
	var batches [][]event.Event
	for len(bulk) > 0 {
		n := min(2000, len(bulk))
		batches = append(batches, bulk[:n])
		bulk = bulk[n:]
	}
	var retries [][]event.Event
	for i := 0; i < len(batches); i += 5 {
		retries = append(retries, batches[i])
	}

	var mu sync.Mutex
	var accepted, duplicates, posted int
	post := func(phase [][]event.Event) {
		work := make(chan []event.Event)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for b := range work {
					var body bytes.Buffer
					enc := json.NewEncoder(&body)
					for i := range b {
						if err := enc.Encode(&b[i]); err != nil {
							panic(err) // a bug of the test: every event marshals
						}
					}
					r, err := s.post(body.Bytes(), "Content-Type", "application/x-ndjson")
					if err != nil || r.status != http.StatusAccepted || r.answer.Rejected != 0 {
						t.Errorf("POST %d events: %v, status %d: %.300s", len(b), err, r.status, r.body)
						continue
					}
					mu.Lock()
					accepted += r.answer.Accepted
					duplicates += r.answer.Duplicates
					posted += len(b)
					mu.Unlock()
				}
			})
		}
		for _, b := range phase {
			work <- b
		}
		close(work)
		wg.Wait()
	}
	post(batches)
	before := accepted
	post(retries)
	if accepted != before {
		t.Errorf("re-posted batches stored %d events again, want 0", accepted-before)
	}
	post([][]event.Event{late})
	if t.Failed() {
		t.FailNow()
	}

	unique := map[string]event.Event{}
	for _, e := range evs {
		unique[e.EventID] = e
	}
	// Concurrent requests carrying the same new event may each be answered as accepted (the
	// drainer stores it once, which checkRawEvents verifies); never fewer than the distinct ones.
	if accepted+duplicates != posted || accepted < len(unique) {
		t.Fatalf("posted %d events (%d distinct): accepted %d, duplicates %d; want accepted+duplicates = %d, accepted >= %d",
			posted, len(unique), accepted, duplicates, posted, len(unique))
	}
	s.settle(t)
	t.Logf("posted %d events in %d requests: %d distinct, %d duplicates (%d generated, %d in re-posted batches), %d held back and posted late",
		posted, len(batches)+len(retries)+1, len(unique), duplicates, len(evs)-len(unique), posted-len(evs), len(late))
	return unique
}

// ---- the raw rows and the figures computed from them ----

// rawEvent is one row of the events table, as the test reads it.
type rawEvent struct {
	id                                  string
	at                                  int64 // occurred_at, Unix seconds
	moment, channel, touchpoint         string
	outcome                             string
	csat, nps, ces                      *uint8
	sentiment                           *float64
	wait                                *uint32
	negative, positive                  uint8
	region, product, segment, agentTeam string
	journey                             string
	// fate is what became of a negative moment of a journey as of metricsNow: recovered or lost
	// once its 7 days have passed, pending before; fateNone for every other event.
	fate int
}

const (
	fateNone = iota
	fateRecovered
	fateLost
	fatePending
)

// judgeRecovery sets the fate of every negative moment by the SPEC's rule: recovered when a
// later event of the same journey within 7 days is positive; undecided ("pending") until the 7
// days have passed. Times are compared in the seconds of occurred_at.
func judgeRecovery(raw []rawEvent, now time.Time) {
	const week = 7 * 24 * 3600
	positives := map[string][]int64{}
	for i := range raw {
		if r := &raw[i]; r.journey != "" && r.isPositive() {
			positives[r.journey] = append(positives[r.journey], r.at)
		}
	}
	for i := range raw {
		r := &raw[i]
		switch {
		case r.journey == "" || !r.isNegative():
			r.fate = fateNone
		case !time.Unix(r.at+week, 0).Before(now):
			r.fate = fatePending
		case slices.ContainsFunc(positives[r.journey], func(at int64) bool { return at > r.at && at <= r.at+week }):
			r.fate = fateRecovered
		default:
			r.fate = fateLost
		}
	}
}

// field is the value of a filter or grouping parameter.
func (r *rawEvent) field(param string) string {
	switch param {
	case "moment":
		return r.moment
	case "channel":
		return r.channel
	case "touchpoint":
		return r.touchpoint
	case "region":
		return r.region
	case "product":
		return r.product
	case "segment":
		return r.segment
	case "agent_team":
		return r.agentTeam
	}
	panic("unknown parameter " + param)
}

// isNegative is the SPEC's rule for a negative moment.
func (r *rawEvent) isNegative() bool {
	return r.csat != nil && *r.csat <= 2 || r.nps != nil && *r.nps <= 6 || r.ces != nil && *r.ces <= 3 ||
		r.sentiment != nil && *r.sentiment <= -0.25 ||
		r.outcome == "abandoned" || r.outcome == "failed" || r.outcome == "unresolved"
}

// isPositive is the SPEC's rule for an event that recovers an earlier negative moment.
func (r *rawEvent) isPositive() bool {
	return r.csat != nil && *r.csat >= 4 || r.nps != nil && *r.nps >= 7 || r.ces != nil && *r.ces >= 5 ||
		r.outcome == "resolved"
}

// loadRawEvents reads the whole events table, sorted by occurred_at.
func loadRawEvents(t *testing.T, s *testServer) []rawEvent {
	t.Helper()
	rows, err := s.db.Conn().Query(context.Background(), `SELECT event_id, toUInt32(occurred_at),
		toString(moment), toString(channel), touchpoint, toString(outcome), csat, nps, ces, sentiment,
		wait_ms, negative, positive, region, product, segment, agent_team, journey_id FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []rawEvent
	for rows.Next() {
		var r rawEvent
		var at uint32
		if err := rows.Scan(&r.id, &at, &r.moment, &r.channel, &r.touchpoint, &r.outcome, &r.csat, &r.nps, &r.ces,
			&r.sentiment, &r.wait, &r.negative, &r.positive, &r.region, &r.product, &r.segment, &r.agentTeam, &r.journey); err != nil {
			t.Fatal(err)
		}
		r.at = int64(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out
}

// checkedRawEvents reads the raw table, checks it holds the events sent, and judges the fate of
// its negative moments as of metricsNow.
func checkedRawEvents(t *testing.T, s *testServer, sent map[string]event.Event, start time.Time) []rawEvent {
	t.Helper()
	raw := loadRawEvents(t, s)
	checkRawEvents(t, s, raw, sent)
	judgeRecovery(raw, metricsNow)
	t.Logf("data set stored and checked in %v: %d raw rows from %v to %v", time.Since(start).Round(time.Millisecond),
		len(raw), time.Unix(raw[0].at, 0).UTC(), time.Unix(raw[len(raw)-1].at, 0).UTC())
	return raw
}

// checkRawEvents checks that the raw table holds every distinct event once, as it was sent.
func checkRawEvents(t *testing.T, s *testServer, raw []rawEvent, sent map[string]event.Event) {
	t.Helper()
	var rows, ids uint64
	if err := s.db.Conn().QueryRow(context.Background(), "SELECT count(), uniqExact(event_id) FROM events").Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	if rows != ids || rows != uint64(len(sent)) {
		t.Fatalf("events holds %d rows with %d distinct event_ids, want %d of each: a retry was stored twice or an event was lost", rows, ids, len(sent))
	}
	eq := func(a, b *uint8) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
	for i := range raw {
		r := &raw[i]
		e, ok := sent[r.id]
		switch {
		case !ok:
			t.Fatalf("events holds %q, which was never sent", r.id)
		case r.at != e.OccurredAt.Unix() || r.moment != e.Moment || r.channel != e.Channel || r.touchpoint != e.Touchpoint ||
			r.outcome != e.Outcome || !eq(r.csat, e.CSAT) || !eq(r.nps, e.NPS) || !eq(r.ces, e.CES) ||
			(r.wait == nil) != (e.WaitMS == nil) || r.wait != nil && *r.wait != *e.WaitMS ||
			r.region != e.Region || r.product != e.Product || r.segment != e.Segment || r.agentTeam != e.AgentTeam ||
			r.journey != e.JourneyID:
			t.Fatalf("stored row %+v differs from the event sent %+v", *r, e)
		case (r.negative == 1) != r.isNegative() || (r.positive == 1) != r.isPositive():
			t.Fatalf("stored row %+v has negative = %d, positive = %d; the SPEC's rules say %v, %v",
				*r, r.negative, r.positive, r.isNegative(), r.isPositive())
		}
	}
}

// rawTally is what the raw rows of one group and period add up to.
type rawTally struct {
	events, csatN, csatTop2, npsN, promoters, detractors, cesN, cesSum int64
	negative, withOutcome, abandoned                                   int64
	recovered, lost, pending                                           int64
	waits                                                              []uint32
}

func (c *rawTally) add(r *rawEvent) {
	c.events++
	if r.csat != nil {
		c.csatN++
		if *r.csat >= 4 {
			c.csatTop2++
		}
	}
	if r.nps != nil {
		c.npsN++
		switch {
		case *r.nps >= 9:
			c.promoters++
		case *r.nps <= 6:
			c.detractors++
		}
	}
	if r.ces != nil {
		c.cesN++
		c.cesSum += int64(*r.ces)
	}
	if r.isNegative() {
		c.negative++
	}
	if r.outcome != "" {
		c.withOutcome++
		if r.outcome == "abandoned" {
			c.abandoned++
		}
	}
	if r.wait != nil {
		c.waits = append(c.waits, *r.wait)
	}
	switch r.fate {
	case fateRecovered:
		c.recovered++
	case fateLost:
		c.lost++
	case fatePending:
		c.pending++
	}
}

type rowKey struct{ moment, channel, touchpoint, region, agentTeam string }

// filterSet is the filter parameters of a request, with their values.
type filterSet [][2]string // {param, comma-separated values}

func (f filterSet) match(r *rawEvent) bool {
	for _, kv := range f {
		if !slices.Contains(strings.Split(kv[1], ","), r.field(kv[0])) {
			return false
		}
	}
	return true
}

func (f filterSet) String() string {
	if len(f) == 0 {
		return "unfiltered"
	}
	var s []string
	for _, kv := range f {
		s = append(s, kv[0]+"="+kv[1])
	}
	return strings.Join(s, "&")
}

// rawTallies adds up the raw rows that occurred in [from, to) and match f, per group of by.
func rawTallies(raw []rawEvent, from, to time.Time, f filterSet, by []string) map[rowKey]*rawTally {
	lo := sort.Search(len(raw), func(i int) bool { return raw[i].at >= from.Unix() })
	hi := sort.Search(len(raw), func(i int) bool { return raw[i].at >= to.Unix() })
	out := map[rowKey]*rawTally{}
	for i := lo; i < hi; i++ {
		r := &raw[i]
		if !f.match(r) {
			continue
		}
		var k rowKey
		for _, d := range by {
			switch d {
			case "moment":
				k.moment = r.moment
			case "channel":
				k.channel = r.channel
			case "touchpoint":
				k.touchpoint = r.touchpoint
			case "region":
				k.region = r.region
			case "agent_team":
				k.agentTeam = r.agentTeam
			}
		}
		c := out[k]
		if c == nil {
			c = &rawTally{}
			out[k] = c
		}
		c.add(r)
	}
	return out
}

func sumRawTallies(m map[rowKey]*rawTally) *rawTally {
	t := &rawTally{}
	for _, c := range m {
		t.events += c.events
		t.csatN += c.csatN
		t.csatTop2 += c.csatTop2
		t.npsN += c.npsN
		t.promoters += c.promoters
		t.detractors += c.detractors
		t.cesN += c.cesN
		t.cesSum += c.cesSum
		t.negative += c.negative
		t.withOutcome += c.withOutcome
		t.abandoned += c.abandoned
		t.recovered += c.recovered
		t.lost += c.lost
		t.pending += c.pending
		t.waits = append(t.waits, c.waits...)
	}
	return t
}

// wantFigure is a figure as the SPEC defines it: a value from n observations, none below the
// minimum n.
type wantFigure struct {
	value float64
	n     int64
}

func (e wantFigure) ok() bool { return e.n >= specMinN }

func wantRatio(part, whole int64, scale float64) wantFigure {
	if whole == 0 {
		return wantFigure{n: 0}
	}
	return wantFigure{value: scale * float64(part) / float64(whole), n: whole}
}

// exactQuantile is the nearest-rank q-quantile (q = num/den) of the waits: the ceil(q·N)-th
// smallest, in integer arithmetic.
func exactQuantile(waits []uint32, num, den int) (uint32, int64) {
	n := len(waits)
	if n == 0 {
		return 0, 0
	}
	s := slices.Clone(waits)
	slices.Sort(s)
	rank := (num*n + den - 1) / den
	return s[max(rank, 1)-1], int64(n)
}

// ---- the API's answers ----

// apiFigure is {"value": number or null, "n": int}; set records that the field was present.
type apiFigure struct {
	Value *float64
	N     int64
	set   bool
}

func (f *apiFigure) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("figure %s: %w", b, err)
	}
	if len(m) != 2 || m["value"] == nil || m["n"] == nil {
		return fmt.Errorf("figure %s: want exactly the keys value and n", b)
	}
	if err := json.Unmarshal(m["value"], &f.Value); err != nil {
		return err
	}
	f.set = true
	return json.Unmarshal(m["n"], &f.N)
}

// apiChange is a number or null; set records that the field was present.
type apiChange struct {
	By  *float64
	set bool
}

func (c *apiChange) UnmarshalJSON(b []byte) error {
	c.set = true
	return json.Unmarshal(b, &c.By)
}

type apiMetrics struct {
	Events       int64     `json:"events"`
	Rate         float64   `json:"rate_per_s"`
	CSAT         apiFigure `json:"csat"`
	NPS          apiFigure `json:"nps"`
	CES          apiFigure `json:"ces"`
	NegativeRate apiFigure `json:"negative_rate"`
	Abandonment  apiFigure `json:"abandonment"`
	WaitP50      apiFigure `json:"wait_p50_ms"`
	WaitP90      apiFigure `json:"wait_p90_ms"`
}

type apiDeltas struct {
	Events       int64     `json:"events"`
	CSAT         apiChange `json:"csat"`
	NPS          apiChange `json:"nps"`
	CES          apiChange `json:"ces"`
	NegativeRate apiChange `json:"negative_rate"`
	Abandonment  apiChange `json:"abandonment"`
	WaitP50      apiChange `json:"wait_p50_ms"`
	WaitP90      apiChange `json:"wait_p90_ms"`
}

type apiPoint struct {
	T time.Time `json:"t"`
	apiMetrics
	Partial bool    `json:"partial"`
	Seconds float64 `json:"seconds"`
}

// apiJudgement is the verdict on one delta (docs/api.md).
type apiJudgement struct {
	Verdict   string   `json:"verdict"`
	Reason    string   `json:"reason"`
	Test      string   `json:"test"`
	P         *float64 `json:"p"`
	N         int64    `json:"n"`
	NPrevious int64    `json:"n_previous"`
}

type apiRow struct {
	Moment     string `json:"moment"`
	Channel    string `json:"channel"`
	Touchpoint string `json:"touchpoint"`
	Region     string `json:"region"`
	AgentTeam  string `json:"agent_team"`
	apiMetrics
	Previous  *apiMetrics             `json:"previous"`
	Delta     *apiDeltas              `json:"delta"`
	Judgement map[string]apiJudgement `json:"judgement"`
	Series    []apiPoint              `json:"series"`
	Recovery  *apiRecovery            `json:"recovery"`
}

type apiRecovery struct {
	Rate    apiFigure `json:"rate"`
	Pending *int64    `json:"pending"`
}

type apiResult struct {
	Window       string     `json:"window"`
	From         time.Time  `json:"from"`
	To           time.Time  `json:"to"`
	Resolution   string     `json:"resolution"`
	Step         string     `json:"step"`
	Compare      string     `json:"compare"`
	PreviousFrom *time.Time `json:"previous_from"`
	PreviousTo   *time.Time `json:"previous_to"`
	By           []string   `json:"by"`
	Total        apiRow     `json:"total"`
	Rows         []apiRow   `json:"rows"`
}

type apiChannel struct {
	Channel  string    `json:"channel"`
	N        int64     `json:"n"`
	CSAT     apiFigure `json:"csat"`
	Low      float64   `json:"low"`
	High     float64   `json:"high"`
	Excluded bool      `json:"excluded"`
}

type apiMoment struct {
	Moment        string    `json:"moment"`
	CCI           apiFigure `json:"cci"`
	Heterogeneity *struct {
		ChiSquare float64 `json:"chi_square"`
		DF        int     `json:"df"`
		PValue    float64 `json:"p_value"`
		I2        float64 `json:"i2"`
	} `json:"heterogeneity"`
	Gap *struct {
		Best  apiChannelCSAT `json:"best"`
		Worst apiChannelCSAT `json:"worst"`
		By    float64        `json:"by"`
	} `json:"gap"`
	Channels []apiChannel `json:"channels"`
}

type apiChannelCSAT struct {
	Channel  string    `json:"channel"`
	CSAT     apiFigure `json:"csat"`
	Low      float64   `json:"low"`
	High     float64   `json:"high"`
	Excluded bool      `json:"excluded"`
}

type apiConsistency struct {
	Window  string      `json:"window"`
	From    time.Time   `json:"from"`
	To      time.Time   `json:"to"`
	Moments []apiMoment `json:"moments"`
}

// apiGet sends GET path with the bearer token (none when empty) and returns the status and body.
func apiGet(t *testing.T, s *testServer, path, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// apiGetJSON sends GET path with the admin token, expects 200 and decodes the body strictly:
// a field the test does not know is an error, so docs/api.md and this test follow the API.
func apiGetJSON(t *testing.T, s *testServer, path string, v any) {
	t.Helper()
	code, _, b := apiGet(t, s, path, metricsAdmin)
	if code != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, code, b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("GET %s: %v: %.500s", path, err, b)
	}
}

// ---- comparing ----

// metricsCoverage counts what the comparisons met, so that the test can insist it met each case.
type metricsCoverage struct {
	mu                                 sync.Mutex
	figures, nulls, values, waitValues int
	rows, deltas, nullDeltas, points   int
	ccis, nullCCIs, excluded, included int
	pending                            int64
	worstWaitError                     float64
}

func (c *metricsCoverage) figure(ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.figures++
	if ok {
		c.values++
	} else {
		c.nulls++
	}
}

func nearlyEqual(got, want float64) bool { return math.Abs(got-want) <= 1e-9*max(1, math.Abs(want)) }

func checkFigure(t *testing.T, cov *metricsCoverage, where, name string, got apiFigure, want wantFigure) {
	t.Helper()
	cov.figure(want.ok())
	switch {
	case !got.set:
		t.Errorf("%s: %s is missing", where, name)
	case got.N != want.n:
		t.Errorf("%s: %s has n = %d, the raw rows have %d", where, name, got.N, want.n)
	case !want.ok() && got.Value != nil:
		t.Errorf("%s: %s = %v from n = %d, want null below n = %d", where, name, *got.Value, want.n, specMinN)
	case want.ok() && got.Value == nil:
		t.Errorf("%s: %s is null with n = %d, want %v", where, name, want.n, want.value)
	case want.ok() && !nearlyEqual(*got.Value, want.value):
		t.Errorf("%s: %s = %v, the raw rows give %v", where, name, *got.Value, want.value)
	}
}

func checkWait(t *testing.T, cov *metricsCoverage, where, name string, got apiFigure, waits []uint32, num, den int) {
	t.Helper()
	exact, n := exactQuantile(waits, num, den)
	want := wantFigure{value: float64(exact), n: n}
	cov.figure(want.ok())
	switch {
	case !got.set:
		t.Errorf("%s: %s is missing", where, name)
	case got.N != n:
		t.Errorf("%s: %s has n = %d, the raw rows have %d waits", where, name, got.N, n)
	case !want.ok() && got.Value != nil:
		t.Errorf("%s: %s = %v from n = %d, want null", where, name, *got.Value, n)
	case want.ok() && got.Value == nil:
		t.Errorf("%s: %s is null with n = %d", where, name, n)
	case want.ok():
		rel := 0.0
		if exact == 0 {
			if *got.Value != 0 {
				t.Errorf("%s: %s = %v, the exact percentile is 0 ms", where, name, *got.Value)
			}
		} else if rel = math.Abs(*got.Value-float64(exact)) / float64(exact); rel > specQuantileError+1e-12 {
			t.Errorf("%s: %s = %v, the exact percentile is %d ms: %.2f%% off, the bound is %.2f%%",
				where, name, *got.Value, exact, 100*rel, 100*specQuantileError)
		}
		cov.mu.Lock()
		cov.waitValues++
		cov.worstWaitError = max(cov.worstWaitError, rel)
		cov.mu.Unlock()
	}
}

// checkMetrics compares the figures of one group and period with its raw rows.
func checkMetrics(t *testing.T, cov *metricsCoverage, where string, got *apiMetrics, c *rawTally, seconds float64) {
	t.Helper()
	if got.Events != c.events {
		t.Errorf("%s: events = %d, the raw rows have %d", where, got.Events, c.events)
	}
	if !nearlyEqual(got.Rate, float64(c.events)/seconds) {
		t.Errorf("%s: rate_per_s = %v, want %d / %v s", where, got.Rate, c.events, seconds)
	}
	checkFigure(t, cov, where, "csat", got.CSAT, wantRatio(c.csatTop2, c.csatN, 1))
	checkFigure(t, cov, where, "nps", got.NPS, wantRatio(c.promoters-c.detractors, c.npsN, 100))
	checkFigure(t, cov, where, "ces", got.CES, wantRatio(c.cesSum, c.cesN, 1))
	checkFigure(t, cov, where, "negative_rate", got.NegativeRate, wantRatio(c.negative, c.events, 1))
	checkFigure(t, cov, where, "abandonment", got.Abandonment, wantRatio(c.abandoned, c.withOutcome, 1))
	checkWait(t, cov, where, "wait_p50_ms", got.WaitP50, c.waits, 1, 2)
	checkWait(t, cov, where, "wait_p90_ms", got.WaitP90, c.waits, 9, 10)
}

// checkDeltas checks current − previous of every figure, null when either side is null.
func checkDeltas(t *testing.T, cov *metricsCoverage, where string, d *apiDeltas, cur, prev *apiMetrics) {
	t.Helper()
	if d.Events != cur.Events-prev.Events {
		t.Errorf("%s: delta events = %d, want %d − %d", where, d.Events, cur.Events, prev.Events)
	}
	for _, x := range []struct {
		name      string
		d         apiChange
		cur, prev apiFigure
	}{
		{"csat", d.CSAT, cur.CSAT, prev.CSAT}, {"nps", d.NPS, cur.NPS, prev.NPS}, {"ces", d.CES, cur.CES, prev.CES},
		{"negative_rate", d.NegativeRate, cur.NegativeRate, prev.NegativeRate},
		{"abandonment", d.Abandonment, cur.Abandonment, prev.Abandonment},
		{"wait_p50_ms", d.WaitP50, cur.WaitP50, prev.WaitP50}, {"wait_p90_ms", d.WaitP90, cur.WaitP90, prev.WaitP90},
	} {
		cov.mu.Lock()
		cov.deltas++
		if x.d.By == nil {
			cov.nullDeltas++
		}
		cov.mu.Unlock()
		switch both := x.cur.Value != nil && x.prev.Value != nil; {
		case !x.d.set:
			t.Errorf("%s: delta %s is missing", where, x.name)
		case !both && x.d.By != nil:
			t.Errorf("%s: delta %s = %v, want null (a side has no value)", where, x.name, *x.d.By)
		case both && x.d.By == nil:
			t.Errorf("%s: delta %s is null, want %v − %v", where, x.name, *x.cur.Value, *x.prev.Value)
		case both && !nearlyEqual(*x.d.By, *x.cur.Value-*x.prev.Value):
			t.Errorf("%s: delta %s = %v, want %v − %v", where, x.name, *x.d.By, *x.cur.Value, *x.prev.Value)
		}
	}
}

// checkJudgements checks that every delta has a verdict, on the n of its two periods, and is
// coloured only with a p-value under the alpha of docs/api.md.
func checkJudgements(t *testing.T, where string, js map[string]apiJudgement, cur, prev *apiMetrics) {
	t.Helper()
	for _, x := range []struct {
		name      string
		cur, prev apiFigure
	}{
		{"csat", cur.CSAT, prev.CSAT}, {"nps", cur.NPS, prev.NPS}, {"ces", cur.CES, prev.CES},
		{"negative_rate", cur.NegativeRate, prev.NegativeRate}, {"abandonment", cur.Abandonment, prev.Abandonment},
		{"wait_p50_ms", cur.WaitP50, prev.WaitP50}, {"wait_p90_ms", cur.WaitP90, prev.WaitP90},
	} {
		j, ok := js[x.name]
		switch {
		case !ok:
			t.Errorf("%s: judgement of %s is missing", where, x.name)
		case j.N != x.cur.N || j.NPrevious != x.prev.N:
			t.Errorf("%s: judgement of %s on n = %d / %d, the figures have %d / %d", where, x.name, j.N, j.NPrevious, x.cur.N, x.prev.N)
		case j.Verdict != "neutral" && (j.P == nil || *j.P >= 0.001 || j.N < 30 || j.NPrevious < 30):
			t.Errorf("%s: %s judged %s with p %v on n = %d / %d", where, x.name, j.Verdict, j.P, j.N, j.NPrevious)
		}
	}
	if _, ok := js["events"]; !ok {
		t.Errorf("%s: judgement of events is missing", where)
	}
}

// spec tables: the SPEC's vocabulary order, and the documented table choice and trend step.
var (
	specMoments  = []string{"zmot", "fmot", "smot", "tmot", "service"}
	specChannels = []string{"web", "app", "store", "voice", "ivr", "chat", "messaging", "email", "social", "review_site", "field_service"}
	specWindows  = []struct {
		name         string
		length, step time.Duration
	}{
		{"1m", time.Minute, 2 * time.Second}, {"5m", 5 * time.Minute, 10 * time.Second},
		{"15m", 15 * time.Minute, 30 * time.Second}, {"1h", time.Hour, time.Minute},
		{"24h", 24 * time.Hour, 30 * time.Minute}, {"7d", 7 * 24 * time.Hour, 4 * time.Hour},
		{"30d", 30 * 24 * time.Hour, 24 * time.Hour},
	}
	// specDayWindows are the windows of specWindows up to 24h, which a data set of a day fills.
	specDayWindows = 5
)

// specName is how the API names a resolution or step: like a window.
var specName = map[time.Duration]string{
	time.Second: "1s", 2 * time.Second: "2s", 10 * time.Second: "10s", 30 * time.Second: "30s",
	time.Minute: "1m", 2 * time.Minute: "2m", 30 * time.Minute: "30m", time.Hour: "1h", 4 * time.Hour: "4h", 24 * time.Hour: "1d",
}

// specResolution is the step of the table that answers: the overview tables (1 s for 1m, except
// with compare=last_week, 10 s up to 5m, 30 s for 15m, 2 min for 1h, 30 min for 24h, 1 h for 7d
// and 30d)
// unless a filter beyond moment and channel or a grouping by touchpoint needs the detail tables
// (1 min up to 1h, else 1 h).
func specResolution(window time.Duration, by []string, f filterSet, lastWeek bool) time.Duration {
	detailed := slices.ContainsFunc(by, func(d string) bool { return d != "moment" && d != "channel" })
	for _, kv := range f {
		detailed = detailed || kv[0] != "moment" && kv[0] != "channel"
	}
	switch {
	case !detailed && window <= time.Minute && !lastWeek:
		return time.Second
	case !detailed && window <= 5*time.Minute:
		return 10 * time.Second
	case !detailed && window <= 15*time.Minute:
		return 30 * time.Second
	case !detailed && window <= time.Hour:
		return 2 * time.Minute
	case detailed && window <= time.Hour:
		return time.Minute
	case !detailed && window <= 24*time.Hour:
		return 30 * time.Minute
	}
	return time.Hour
}

func lessKey(a, b rowKey) bool {
	if a.moment != b.moment {
		return slices.Index(specMoments, a.moment) < slices.Index(specMoments, b.moment)
	}
	if a.channel != b.channel {
		return slices.Index(specChannels, a.channel) < slices.Index(specChannels, b.channel)
	}
	if a.touchpoint != b.touchpoint {
		return a.touchpoint < b.touchpoint
	}
	if a.region != b.region {
		return a.region < b.region
	}
	return a.agentTeam < b.agentTeam
}

type metricsCase struct {
	window                    int // index in specWindows
	by                        []string
	filters                   filterSet
	compare, series, recovery bool
	// lastWeek, with compare, is compare=last_week instead of compare=previous.
	lastWeek bool
}

func (c metricsCase) path() string {
	v := url.Values{}
	v.Set("window", specWindows[c.window].name)
	if len(c.by) > 0 {
		v.Set("by", strings.Join(c.by, ","))
	}
	for _, kv := range c.filters {
		v.Set(kv[0], kv[1])
	}
	if c.compare {
		v.Set("compare", c.comparison())
	}
	if c.series {
		v.Set("series", "true")
	}
	if c.recovery {
		v.Set("recovery", "true")
	}
	return "/v1/metrics?" + v.Encode()
}

func (c metricsCase) comparison() string {
	if c.lastWeek {
		return "last_week"
	}
	return "previous"
}

// checkMetricsCase asks one question and compares the whole answer with the raw rows.
func checkMetricsCase(t *testing.T, s *testServer, raw []rawEvent, cov *metricsCoverage, c metricsCase) {
	t.Helper()
	w := specWindows[c.window]
	path := c.path()
	var res apiResult
	apiGetJSON(t, s, path, &res)

	// The window: exact, ending at the end of the current step of the table that answers.
	resolution := specResolution(w.length, c.by, c.filters, c.compare && c.lastWeek)
	to := metricsNow.Truncate(resolution).Add(resolution)
	if !res.From.Equal(to.Add(-w.length)) || !res.To.Equal(to) || res.Window != w.name || res.Resolution != specName[resolution] {
		t.Fatalf("%s: window %s [%v, %v) at %s resolution, want %s [%v, %v) at %s",
			path, res.Window, res.From, res.To, res.Resolution, w.name, to.Add(-w.length), to, resolution)
	}
	if res.By == nil || !slices.Equal(res.By, c.by) {
		t.Errorf("%s: by = %v, want %v", path, res.By, c.by)
	}
	seconds := w.length.Seconds()
	cur := rawTallies(raw, res.From, res.To, c.filters, c.by)
	var prev map[rowKey]*rawTally
	if c.compare {
		// The window just before, or the same window 168 hours earlier.
		prevFrom, prevTo := res.From.Add(-w.length), res.From
		if c.lastWeek {
			prevFrom, prevTo = res.From.Add(-7*24*time.Hour), res.To.Add(-7*24*time.Hour)
		}
		if res.Compare != c.comparison() || res.PreviousFrom == nil || !res.PreviousFrom.Equal(prevFrom) ||
			res.PreviousTo == nil || !res.PreviousTo.Equal(prevTo) {
			t.Errorf("%s: compare %q from %v to %v, want %s [%v, %v)", path, res.Compare, res.PreviousFrom, res.PreviousTo, c.comparison(), prevFrom, prevTo)
		}
		prev = rawTallies(raw, prevFrom, prevTo, c.filters, c.by)
	} else if res.Compare != "" || res.PreviousFrom != nil || res.PreviousTo != nil {
		t.Errorf("%s: compare %q from %v to %v without compare", path, res.Compare, res.PreviousFrom, res.PreviousTo)
	}

	check := func(where string, row *apiRow, k rowKey) {
		cc, pc := cur[k], prev[k]
		if cc == nil {
			cc = &rawTally{}
		}
		if pc == nil {
			pc = &rawTally{}
		}
		if k == (rowKey{}) && len(c.by) > 0 { // the total
			cc, pc = sumRawTallies(cur), sumRawTallies(prev)
		}
		checkMetrics(t, cov, where, &row.apiMetrics, cc, seconds)
		switch {
		case c.compare && (row.Previous == nil || row.Delta == nil):
			t.Errorf("%s: compare=previous without previous and delta", where)
		case c.compare:
			checkMetrics(t, cov, where+" previous", row.Previous, pc, seconds)
			checkDeltas(t, cov, where, row.Delta, &row.apiMetrics, row.Previous)
			checkJudgements(t, where, row.Judgement, &row.apiMetrics, row.Previous)
		case row.Previous != nil || row.Delta != nil || row.Judgement != nil:
			t.Errorf("%s: previous and delta without compare=previous", where)
		}
		switch rec := row.Recovery; {
		case !c.recovery && rec != nil:
			t.Errorf("%s: recovery without recovery=true", where)
		case c.recovery && (rec == nil || rec.Pending == nil):
			t.Errorf("%s: recovery=true without recovery and its pending count", where)
		case c.recovery:
			checkFigure(t, cov, where, "recovery rate", rec.Rate, wantRatio(cc.recovered, cc.recovered+cc.lost, 1))
			if *rec.Pending != cc.pending {
				t.Errorf("%s: %d negative moments pending recovery, the raw rows have %d", where, *rec.Pending, cc.pending)
			}
			cov.mu.Lock()
			cov.pending += cc.pending
			cov.mu.Unlock()
		}
		if !c.series {
			if row.Series != nil {
				t.Errorf("%s: a series without series=true", where)
			}
			return
		}
		checkSeries(t, cov, where, row.Series, raw, &res, w.step, resolution, c.filters, k, c.by)
	}
	check(path+" total", &res.Total, rowKey{})
	if res.Total.Moment+res.Total.Channel+res.Total.Touchpoint+res.Total.Region+res.Total.AgentTeam != "" {
		t.Errorf("%s: the total has keys %+v", path, res.Total)
	}

	// One row per group with events in the window (or in the previous one, with compare), in
	// the order of the SPEC's vocabulary.
	var want []rowKey
	if len(c.by) > 0 {
		for k, v := range cur {
			if v.events > 0 {
				want = append(want, k)
			}
		}
		for k, v := range prev {
			if v.events > 0 && cur[k] == nil {
				want = append(want, k)
			}
		}
	}
	sort.Slice(want, func(i, j int) bool { return lessKey(want[i], want[j]) })
	var got []rowKey
	for _, r := range res.Rows {
		got = append(got, rowKey{r.Moment, r.Channel, r.Touchpoint, r.Region, r.AgentTeam})
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: rows %v,\nwant %v", path, got, want)
	}
	for i := range res.Rows {
		check(fmt.Sprintf("%s row %v", path, got[i]), &res.Rows[i], got[i])
	}
	cov.mu.Lock()
	cov.rows += len(res.Rows)
	cov.mu.Unlock()
}

// checkSeries checks the trend of one row: every step of the window, empty ones included, each
// with the figures of the raw rows in its part of the window.
func checkSeries(t *testing.T, cov *metricsCoverage, where string, pts []apiPoint, raw []rawEvent, res *apiResult,
	step, resolution time.Duration, f filterSet, k rowKey, by []string) {
	t.Helper()
	step = max(step, resolution)
	if res.Step != specName[step] {
		t.Errorf("%s: step %q, want %v", where, res.Step, step)
	}
	var ts []time.Time
	for at := res.From.Truncate(step); at.Before(res.To); at = at.Add(step) {
		ts = append(ts, at)
	}
	if len(pts) != len(ts) {
		t.Fatalf("%s: %d points, want %d (one per %v from %v)", where, len(pts), len(ts), step, ts[0])
	}
	for i, p := range pts {
		if !p.T.Equal(ts[i]) {
			t.Fatalf("%s: point %d at %v, want %v", where, i, p.T, ts[i])
		}
		from, to := ts[i], ts[i].Add(step)
		if from.Before(res.From) {
			from = res.From
		}
		if to.After(res.To) {
			to = res.To
		}
		groups := rawTallies(raw, from, to, f, by)
		c := groups[k]
		if k == (rowKey{}) {
			c = sumRawTallies(groups)
		}
		if c == nil {
			c = &rawTally{}
		}
		checkMetrics(t, cov, fmt.Sprintf("%s point %v", where, p.T.Format(time.TimeOnly)), &p.apiMetrics, c, step.Seconds())
	}
	cov.mu.Lock()
	cov.points += len(pts)
	cov.mu.Unlock()
}

// ---- consistency, from the SPEC's formulas ----

// specZ is the 97.5% quantile of the standard normal distribution.
var specZ = math.Sqrt2 * math.Erfinv(0.95)

func specWilson(k, n int64) (low, high float64) {
	if n == 0 {
		return 0, 1
	}
	p, nf, z2 := float64(k)/float64(n), float64(n), specZ*specZ
	center := (p + z2/(2*nf)) / (1 + z2/nf)
	half := specZ / (1 + z2/nf) * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return max(0, center-half), min(1, center+half)
}

// specPValue is P(χ²_df >= x) by the closed forms of the regularized upper incomplete gamma
// function Q(df/2, x/2): for even df, e^−y Σ_{i<df/2} y^i / i!; for odd df, erfc(√y) and
// Q(a+1, y) = Q(a, y) + y^a e^−y / Γ(a+1).
func specPValue(x float64, df int) float64 {
	y := x / 2
	if x <= 0 {
		return 1
	}
	var q, a float64
	if df%2 == 0 {
		q, a = math.Exp(-y), 1
	} else {
		q, a = math.Erfc(math.Sqrt(y)), 0.5
	}
	for ; a < float64(df)/2; a++ {
		lg, _ := math.Lgamma(a + 1)
		q += math.Exp(a*math.Log(y) - y - lg)
	}
	return q
}

// checkConsistency compares GET /v1/consistency with the CCI computed from the raw csat counts.
func checkConsistency(t *testing.T, s *testServer, raw []rawEvent, cov *metricsCoverage, window int, f filterSet) {
	t.Helper()
	w := specWindows[window]
	v := url.Values{"window": {w.name}}
	for _, kv := range f {
		v.Set(kv[0], kv[1])
	}
	path := "/v1/consistency?" + v.Encode()
	var res apiConsistency
	apiGetJSON(t, s, path, &res)
	resolution := specResolution(w.length, nil, f, false)
	to := metricsNow.Truncate(resolution).Add(resolution)
	if res.Window != w.name || !res.To.Equal(to) || !res.From.Equal(to.Add(-w.length)) {
		t.Fatalf("%s: window %s [%v, %v), want %s [%v, %v)", path, res.Window, res.From, res.To, w.name, to.Add(-w.length), to)
	}
	groups := rawTallies(raw, res.From, res.To, f, []string{"moment", "channel"})

	var wantMoments []string
	for _, m := range specMoments {
		for _, ch := range specChannels {
			if c := groups[rowKey{moment: m, channel: ch}]; c != nil && c.csatN > 0 {
				wantMoments = append(wantMoments, m)
				break
			}
		}
	}
	var gotMoments []string
	for _, m := range res.Moments {
		gotMoments = append(gotMoments, m.Moment)
	}
	if !slices.Equal(gotMoments, wantMoments) {
		t.Fatalf("%s: moments %v, want %v (those with csat answers, in journey order)", path, gotMoments, wantMoments)
	}
	for _, m := range res.Moments {
		where := path + " " + m.Moment
		// Every channel with csat answers, in vocabulary order; those under 30 answers excluded.
		var chans []string
		var n, top2 int64
		var included []apiChannel
		for _, ch := range specChannels {
			if c := groups[rowKey{moment: m.Moment, channel: ch}]; c != nil && c.csatN > 0 {
				chans = append(chans, ch)
			}
		}
		var gotChans []string
		for _, line := range m.Channels {
			gotChans = append(gotChans, line.Channel)
		}
		if !slices.Equal(gotChans, chans) {
			t.Fatalf("%s: channels %v, want %v", where, gotChans, chans)
		}
		for _, line := range m.Channels {
			c := groups[rowKey{moment: m.Moment, channel: line.Channel}]
			lw := where + "/" + line.Channel
			if line.N != c.csatN {
				t.Errorf("%s: n = %d, the raw rows have %d csat answers", lw, line.N, c.csatN)
			}
			checkFigure(t, cov, lw, "csat", line.CSAT, wantRatio(c.csatTop2, c.csatN, 1))
			low, high := specWilson(c.csatTop2, c.csatN)
			if !nearlyEqual(line.Low, low) || !nearlyEqual(line.High, high) {
				t.Errorf("%s: Wilson interval [%v, %v], want [%v, %v] (%d of %d)", lw, line.Low, line.High, low, high, c.csatTop2, c.csatN)
			}
			if line.Excluded != (c.csatN < specMinChannelN) {
				t.Errorf("%s: excluded = %v with n = %d (minimum %d)", lw, line.Excluded, c.csatN, specMinChannelN)
			}
			cov.mu.Lock()
			if line.Excluded {
				cov.excluded++
			} else {
				cov.included++
			}
			cov.mu.Unlock()
			if !line.Excluded {
				included = append(included, line)
				n += c.csatN
				top2 += c.csatTop2
			}
		}
		if m.CCI.N != n {
			t.Errorf("%s: cci n = %d, want %d (csat answers of the included channels)", where, m.CCI.N, n)
		}
		cov.mu.Lock()
		cov.ccis++
		if len(included) < 2 {
			cov.nullCCIs++
		}
		cov.mu.Unlock()
		if len(included) < 2 {
			if m.CCI.Value != nil || m.Heterogeneity != nil || m.Gap != nil {
				t.Errorf("%s: %d included channels, want cci, heterogeneity and gap null", where, len(included))
			}
			continue
		}
		k := len(included)
		p := float64(top2) / float64(n)
		var chi2 float64
		for _, line := range included {
			c := groups[rowKey{moment: m.Moment, channel: line.Channel}]
			d := float64(c.csatTop2)/float64(c.csatN) - p
			chi2 += float64(c.csatN) * d * d / (p * (1 - p))
		}
		if top2 == 0 || top2 == n {
			chi2 = 0
		}
		cci := 1 - math.Sqrt(max(0, chi2-float64(k-1))/float64(n))
		switch h := m.Heterogeneity; {
		case m.CCI.Value == nil || !nearlyEqual(*m.CCI.Value, cci):
			t.Errorf("%s: cci = %v, want %v (χ² %v, k %d, N %d)", where, m.CCI.Value, cci, chi2, k, n)
		case h == nil || m.Gap == nil:
			t.Errorf("%s: heterogeneity or gap missing", where)
		case !nearlyEqual(h.ChiSquare, chi2) || h.DF != k-1:
			t.Errorf("%s: χ² = %v with df %d, want %v with df %d", where, h.ChiSquare, h.DF, chi2, k-1)
		case math.Abs(h.PValue-specPValue(chi2, k-1)) > 1e-9+1e-7*specPValue(chi2, k-1):
			t.Errorf("%s: p = %v, want %v (χ² %v, df %d)", where, h.PValue, specPValue(chi2, k-1), chi2, k-1)
		case chi2 > 0 && !nearlyEqual(h.I2, max(0, (chi2-float64(k-1))/chi2)) || chi2 == 0 && h.I2 != 0:
			t.Errorf("%s: I² = %v, want max(0, (χ² − df) / χ²) with χ² %v", where, h.I2, chi2)
		}
		if m.Gap == nil {
			continue
		}
		best, worst := included[0], included[0]
		rate := func(line apiChannel) float64 {
			c := groups[rowKey{moment: m.Moment, channel: line.Channel}]
			return float64(c.csatTop2) / float64(c.csatN)
		}
		for _, line := range included[1:] {
			if rate(line) > rate(best) {
				best = line
			}
			if rate(line) < rate(worst) {
				worst = line
			}
		}
		if m.Gap.Best.Channel != best.Channel || m.Gap.Worst.Channel != worst.Channel || !nearlyEqual(m.Gap.By, rate(best)-rate(worst)) {
			t.Errorf("%s: gap %s − %s = %v, want %s − %s = %v", where, m.Gap.Best.Channel, m.Gap.Worst.Channel, m.Gap.By,
				best.Channel, worst.Channel, rate(best)-rate(worst))
		}
		if m.Gap.Best.Low != best.Low || m.Gap.Worst.High != worst.High {
			t.Errorf("%s: the gap's channels differ from their lines", where)
		}
	}
}

// ---- the tests ----

func TestMetricsMatchRawEvents(t *testing.T) {
	start := time.Now()
	s := startMetricsServer(t)
	raw := checkedRawEvents(t, s, ingestDataSet(t, s, metricsDataSet(t)), start)

	groupings := [][]string{nil, {"moment"}, {"channel"}, {"moment", "channel"}, {"touchpoint"}}
	filterSets := []filterSet{
		nil,
		{{"moment", "service"}},
		{{"channel", "voice,chat"}},
		{{"moment", "fmot"}, {"channel", "web,app,store"}},
		{{"region", "north"}},
		{{"segment", "small_business,enterprise"}},
		{{"agent_team", "billing"}},
		{{"moment", "service"}, {"region", "east,west"}, {"product", "broadband"}},
		{{"touchpoint", "checkout"}},
	}
	cov := &metricsCoverage{}
	var cases []metricsCase
	for w := range specDayWindows {
		for _, by := range groupings {
			for _, f := range filterSets {
				cases = append(cases, metricsCase{window: w, by: by, filters: f, compare: true})
			}
			cases = append(cases, metricsCase{window: w, by: by, recovery: true})
		}
		// The drill-down's level below a touchpoint: its regions, its teams.
		for _, by := range [][]string{{"region"}, {"agent_team"}} {
			for _, f := range []filterSet{{{"touchpoint", "checkout"}}, {{"moment", "service"}, {"channel", "voice"}, {"touchpoint", "billing_call,tech_support_call"}}} {
				cases = append(cases, metricsCase{window: w, by: by, filters: f, compare: true})
			}
			cases = append(cases, metricsCase{window: w, by: by, filters: filterSet{{"touchpoint", "checkout"}}, recovery: true})
		}
	}
	cases = append(cases,
		metricsCase{window: 0, by: []string{"moment", "channel"}, series: true},
		metricsCase{window: 1, by: []string{"moment"}, series: true, compare: true, recovery: true},
		metricsCase{window: 2, filters: filterSet{{"channel", "voice"}}, series: true},
		metricsCase{window: 3, by: []string{"touchpoint"}, filters: filterSet{{"agent_team", "billing"}}, series: true},
		metricsCase{window: 4, by: []string{"channel"}, filters: filterSet{{"region", "north"}}, series: true},
		metricsCase{window: 4, by: []string{"moment"}, series: true},
		metricsCase{window: 2, by: []string{"region"}, filters: filterSet{{"touchpoint", "checkout"}}, series: true},
		metricsCase{window: 3, by: []string{"touchpoint", "region", "agent_team"}, compare: true},
	)
	queries := time.Now()
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.path(), "/v1/metrics?"), func(t *testing.T) {
			checkMetricsCase(t, s, raw, cov, c)
		})
	}
	consistencyFilters := []filterSet{nil, {{"region", "north"}}, {{"segment", "consumer"}},
		{{"channel", "voice,chat,ivr,messaging,email"}}, {{"agent_team", "billing,technical"}}}
	for w := range specDayWindows {
		for _, f := range consistencyFilters {
			t.Run(fmt.Sprintf("consistency/window=%s/%v", specWindows[w].name, f), func(t *testing.T) {
				checkConsistency(t, s, raw, cov, w, f)
			})
		}
	}
	t.Logf("%d metrics and %d consistency requests checked in %v: %d rows, %d trend points, %d figures (%d with a value, %d null), "+
		"%d deltas (%d null), %d wait percentiles with a value (worst error %.2f%%, bound %.2f%%), %d negative moments pending recovery, %d moments' CCI (%d null), %d channels included, %d excluded",
		len(cases), specDayWindows*len(consistencyFilters), time.Since(queries).Round(time.Millisecond), cov.rows, cov.points,
		cov.figures, cov.values, cov.nulls, cov.deltas, cov.nullDeltas, cov.waitValues, 100*cov.worstWaitError, 100*specQuantileError, cov.pending,
		cov.ccis, cov.nullCCIs, cov.included, cov.excluded)
	// The data set must exercise every branch the comparisons have.
	if cov.nulls == 0 || cov.values == 0 || cov.nullDeltas == 0 || cov.deltas == cov.nullDeltas || cov.waitValues == 0 ||
		cov.ccis == cov.nullCCIs || cov.nullCCIs == 0 || cov.excluded == 0 || cov.included == 0 || cov.points == 0 || cov.pending == 0 {
		t.Errorf("the data set does not cover every case: %+v", cov)
	}
}

// TestMetricsBadRequests checks that every bad parameter is answered 400 with a message naming
// it, that filter values never reach the SQL as text, and that only an admin or display token
// reads the metrics.
func TestMetricsBadRequests(t *testing.T) {
	s := startMetricsServer(t)
	at := metricsNow.Add(-time.Minute)
	_, evs := batch("bad", 20, at)
	s.mustPost(t, ndjson(evs), "Content-Type", "application/x-ndjson").accepted(t, 20, 0)
	s.settle(t)

	many := make([]string, 60)
	for i := range many {
		many[i] = fmt.Sprintf("r%d", i)
	}
	for _, tc := range []struct {
		path, param string
	}{
		{"/v1/metrics?window=2h", "window"},
		{"/v1/metrics?by=product", "by"},
		{"/v1/metrics?by=moment,,channel,segment", "by"},
		{"/v1/metrics?compare=next", "compare"},
		{"/v1/metrics?compare=yesterday", "compare"},
		{"/v1/metrics?format=xml", "format"},
		{"/v1/metrics?format=csv&format=json", "format"},
		{"/v1/metrics?format=csv&window=2h", "window"},
		{"/v1/metrics?format=csv&series=true&compare=previous", "series"},
		{"/v1/consistency?format=xml", "format"},
		{"/v1/consistency?format=csv&compare=last_week", "compare"},
		{"/v1/metrics?moment=xyz", "moment"},
		{"/v1/metrics?channel=web,fax", "channel"},
		{"/v1/metrics?regoin=north", "regoin"},
		{"/v1/metrics?region=" + strings.Join(many, ","), "region"},
		{"/v1/metrics?segment=" + strings.Repeat("x", 101), "segment"},
		{"/v1/metrics?agent_team=%FF", "agent_team"},
		{"/v1/metrics?series=yes", "series"},
		{"/v1/metrics?recovery=1", "recovery"},
		{"/v1/consistency?window=2h", "window"},
		{"/v1/consistency?by=moment", "by"},
		{"/v1/consistency?compare=previous", "compare"},
		{"/v1/consistency?series=true", "series"},
		{"/v1/consistency?recovery=true", "recovery"},
		{"/v1/consistency?channel=fax", "channel"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, _, b := apiGet(t, s, tc.path, metricsAdmin)
			var e struct {
				Error string `json:"error"`
				Param string `json:"param"`
			}
			if err := json.Unmarshal(b, &e); err != nil || code != http.StatusBadRequest {
				t.Fatalf("status %d, %v: %s; want 400 with a JSON error", code, err, b)
			}
			if e.Param != tc.param || !strings.Contains(e.Error, tc.param) {
				t.Errorf("answer %s, want param %q named in the message", b, tc.param)
			}
		})
	}

	t.Run("malformed query string", func(t *testing.T) {
		if code, _, b := apiGet(t, s, "/v1/metrics?window=%zz", metricsAdmin); code != http.StatusBadRequest {
			t.Errorf("status %d: %s; want 400", code, b)
		}
	})

	// Filter values are bound, never spliced into SQL: these are just regions nobody has.
	for _, region := range []string{`' OR 1=1 --`, `\' OR 1=1 --`, `north') OR ('1'='1`, `x'; DROP TABLE events; --`, `\`} {
		t.Run("region="+region, func(t *testing.T) {
			for _, path := range []string{"/v1/metrics", "/v1/metrics?by=touchpoint&compare=previous&window=24h"} {
				sep := "?"
				if strings.Contains(path, "?") {
					sep = "&"
				}
				var res apiResult
				apiGetJSON(t, s, path+sep+"region="+url.QueryEscape(region), &res)
				if res.Total.Events != 0 || len(res.Rows) != 0 || res.Total.Previous != nil && res.Total.Previous.Events != 0 {
					t.Errorf("%s: %d events in %d rows, want none", path, res.Total.Events, len(res.Rows))
				}
			}
			var res apiConsistency
			apiGetJSON(t, s, "/v1/consistency?region="+url.QueryEscape(region), &res)
			if len(res.Moments) != 0 {
				t.Errorf("consistency: %d moments, want none", len(res.Moments))
			}
		})
	}
	var unfiltered apiResult
	apiGetJSON(t, s, "/v1/metrics", &unfiltered)
	if unfiltered.Total.Events != 20 {
		t.Errorf("unfiltered: %d events, want the 20 posted", unfiltered.Total.Events)
	}

	for _, tc := range []struct {
		name, path, header string
	}{
		{"no token", "/v1/metrics", ""},
		{"wrong token", "/v1/metrics", "Bearer tba_wrong"},
		{"ingest key", "/v1/metrics", "Bearer " + testKey},
		{"not bearer", "/v1/metrics", "Basic " + metricsAdmin},
		{"consistency without token", "/v1/consistency", ""},
		{"consistency with ingest key", "/v1/consistency", "Bearer " + testKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.url+tc.path, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") ||
				!json.Valid(b) || bytes.Contains(b, []byte("events")) {
				t.Errorf("status %d, WWW-Authenticate %q: %s; want 401 and no data", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), b)
			}
		})
	}
	t.Run("admin token does not ingest", func(t *testing.T) {
		r, err := s.post(ndjson(evs), "Authorization", "Bearer "+metricsAdmin)
		if err != nil || r.status != http.StatusUnauthorized {
			t.Errorf("POST /v1/events with the admin token: %v, status %d: %s; want 401", err, r.status, r.body)
		}
	})
}
