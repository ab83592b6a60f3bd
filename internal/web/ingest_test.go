package web_test

// Integration tests of POST /v1/events: a real HTTP server on 127.0.0.1, the real ingest.Writer
// and a fresh ClickHouse database per test (storetest). What a test checks is what a sender or an
// operator would check: the status and body of the answer, and the rows in ClickHouse, raw and
// rolled up.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

const (
	testKey  = "tbi_test_key_one"
	otherKey = "tbi_test_key_two"
)

// testServer is a running Truthboard HTTP edge with its writer, on a test database.
type testServer struct {
	url    string
	srv    *web.Server
	db     *store.Store // direct connection, to read back what was stored
	writer *ingest.Writer
	client *http.Client
}

// settle waits until every event acknowledged so far is in ClickHouse: a 202 means durable in
// the spool, and the drainer moves events on within a flush interval.
func (s *testServer) settle(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.writer.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
}

type serverConfig struct {
	db     *store.Store // read back from here; also the sink and pinger unless set below
	sink   ingest.Sink
	pinger web.Database
	writer ingest.Options
	web    web.Options // IngestKeys default to testKey and otherKey
	// wrap, when set, stands between the HTTP edge and the writer.
	wrap func(web.Writer) web.Writer
}

// startServer serves web.New(...) on 127.0.0.1:0 until the test ends. Without a db it opens a
// fresh test database.
func startServer(t *testing.T, cfg serverConfig) *testServer {
	t.Helper()
	if cfg.db == nil {
		cfg.db = storetest.Open(t)
	}
	if cfg.sink == nil {
		cfg.sink = cfg.db
	}
	if cfg.pinger == nil {
		cfg.pinger = cfg.db
	}
	if cfg.writer.FlushInterval == 0 {
		cfg.writer.FlushInterval = 10 * time.Millisecond
	}
	if cfg.web.IngestKeys == nil {
		cfg.web.IngestKeys = auth.NewKeySet(testKey, otherKey)
	}
	if cfg.web.AdminToken == nil {
		cfg.web.AdminToken = auth.NewKeySet("tba_test_admin")
	}
	if cfg.web.Limits.MaxBodyBytes == 0 {
		cfg.web.Limits.MaxBodyBytes = event.DefaultMaxBodyBytes
	}
	log := slog.New(slog.DiscardHandler)
	if cfg.writer.Spool.Dir == "" {
		cfg.writer.Spool.Dir = t.TempDir()
	}
	w, err := ingest.Open(cfg.sink, cfg.writer, log)
	if err != nil {
		t.Fatal(err)
	}
	var edge web.Writer = w
	if cfg.wrap != nil {
		edge = cfg.wrap(w)
	}
	srv := web.New(edge, cfg.pinger, cfg.web, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		client.CloseIdleConnections()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-ctx.Done():
			t.Errorf("Serve did not return after Shutdown")
		}
		if err := w.Close(ctx); err != nil {
			t.Errorf("close writer: %v", err)
		}
	})
	return &testServer{url: "http://" + ln.Addr().String(), srv: srv, db: cfg.db, writer: w, client: client}
}

// answer is the JSON body of any answer of POST /v1/events.
type answer struct {
	Accepted   int    `json:"accepted"`
	Duplicates int    `json:"duplicates"`
	Rejected   int    `json:"rejected"`
	Errors     []ferr `json:"errors"`
	Error      string `json:"error"`
}

type ferr struct {
	Index   int    `json:"index"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

type reply struct {
	status int
	header http.Header
	body   string
	answer answer
}

// post sends body to POST /v1/events with the ingest key testKey unless headers name another
// Authorization; a header given as "" is not sent. It is safe from any goroutine.
func (s *testServer) post(body []byte, headers ...string) (reply, error) {
	req, err := http.NewRequest(http.MethodPost, s.url+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testKey)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return r, fmt.Errorf("answer %d has Content-Type %q, want JSON: %s", r.status, ct, b)
	}
	if err := json.Unmarshal(b, &r.answer); err != nil {
		return r, fmt.Errorf("answer %d is not JSON: %v: %s", r.status, err, b)
	}
	return r, nil
}

func (s *testServer) mustPost(t *testing.T, body []byte, headers ...string) reply {
	t.Helper()
	r, err := s.post(body, headers...)
	if err != nil {
		t.Fatalf("POST /v1/events: %v", err)
	}
	return r
}

// accepted checks a 202 answer for n events, of which dup were duplicates.
func (r reply) accepted(t *testing.T, n, dup int) {
	t.Helper()
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", r.status, r.body)
	}
	a := r.answer
	if a.Accepted != n-dup || a.Duplicates != dup || a.Rejected != 0 || a.Errors == nil || len(a.Errors) != 0 {
		t.Fatalf("answer %s, want accepted %d, duplicates %d, rejected 0, errors []", r.body, n-dup, dup)
	}
}

// ---- events ----

// base is a recent second, so every event of a test is inside the accepted window and, within
// one request, in one day partition.
func base() time.Time { return time.Now().UTC().Add(-time.Minute).Truncate(time.Second) }

// eventJSON is a valid event; i spreads events over moments, channels and csat scores.
func eventJSON(id string, at time.Time, i int) string {
	return fmt.Sprintf(`{"event_id":%q,"occurred_at":%q,"moment":%q,"channel":%q,"touchpoint":"tp%d","csat":%d}`,
		id, at.Format(time.RFC3339Nano), event.Moments[i%len(event.Moments)], event.Channels[i%len(event.Channels)], i%3, 1+i%5)
}

// batch returns n events with ids prefix-0 … prefix-(n-1).
func batch(prefix string, n int, at time.Time) (ids, evs []string) {
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		ids = append(ids, id)
		evs = append(evs, eventJSON(id, at.Add(time.Duration(i)*time.Millisecond), i))
	}
	return ids, evs
}

func jsonArray(evs []string) []byte { return []byte("[" + strings.Join(evs, ",") + "]") }
func ndjson(evs []string) []byte    { return []byte(strings.Join(evs, "\n") + "\n") }

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ---- reading back ----

func assertStoredOnce(t testing.TB, db *store.Store, want []string) {
	t.Helper()
	storetest.AssertStoredOnce(t, db, want)
}

// count is the number of stored events once the spool is drained.
func (s *testServer) count(t testing.TB) uint64 {
	t.Helper()
	s.settle(t)
	n, err := s.db.CountEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// ---- 1. formats and content ----

func TestIngestFormats(t *testing.T) {
	at := base()
	one := eventJSON("single", at, 0)
	ids, evs := batch("ev", 25, at)
	// A body with blank lines and CRLF line ends, as Windows tools write NDJSON.
	crlf := []byte("\r\n" + strings.Join(evs, "\r\n\r\n") + "\r\n")
	for _, tc := range []struct {
		name    string
		body    []byte
		headers []string
		wantIDs []string
	}{
		{name: "one object", body: []byte(one), wantIDs: []string{"single"}},
		{name: "array", body: jsonArray(evs), wantIDs: ids},
		{name: "ndjson", body: ndjson(evs), headers: []string{"Content-Type", "application/x-ndjson"}, wantIDs: ids},
		{name: "ndjson crlf and blank lines", body: crlf, headers: []string{"Content-Type", "application/x-ndjson; charset=utf-8"}, wantIDs: ids},
		{name: "gzip ndjson", body: gzipped(t, ndjson(evs)), headers: []string{"Content-Type", "application/x-ndjson", "Content-Encoding", "gzip"}, wantIDs: ids},
		{name: "gzip array", body: gzipped(t, jsonArray(evs)), headers: []string{"Content-Encoding", "gzip"}, wantIDs: ids},
		{name: "identity encoding", body: jsonArray(evs), headers: []string{"Content-Encoding", "identity"}, wantIDs: ids},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, serverConfig{})
			r := s.mustPost(t, tc.body, tc.headers...)
			r.accepted(t, len(tc.wantIDs), 0)
			s.settle(t)
			assertStoredOnce(t, s.db, tc.wantIDs)
		})
	}
}

// storedRow is one raw row, with nullable columns rendered as "NULL" or their value so that a
// mismatch prints readably.
type storedRow struct {
	EventID                               string
	OccurredAt                            time.Time
	OccurredMS                            uint16
	Moment, Channel, Touchpoint           string
	Stage, Outcome, CustomerID, JourneyID string
	CSAT, NPS, CES, Sentiment             string
	WaitMS, HandleMS                      string
	Negative, Positive                    uint8
	Region, Product, Segment, AgentTeam   string
	AttrKeys, AttrValues                  []string
	receivedAt                            time.Time
}

func nullable[T any](p *T) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprint(*p)
}

func readRows(t testing.TB, db *store.Store) map[string]storedRow {
	t.Helper()
	rows, err := db.Conn().Query(context.Background(), `SELECT event_id, occurred_at, occurred_ms, received_at,
		toString(moment), toString(channel), touchpoint, toString(stage), toString(outcome), customer_id, journey_id,
		csat, nps, ces, sentiment, wait_ms, handle_ms, negative, positive,
		region, product, segment, agent_team, attr_keys, attr_values FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]storedRow{}
	for rows.Next() {
		var (
			r                storedRow
			csat, nps, ces   *uint8
			sentiment        *float64
			waitMS, handleMS *uint32
		)
		if err := rows.Scan(&r.EventID, &r.OccurredAt, &r.OccurredMS, &r.receivedAt,
			&r.Moment, &r.Channel, &r.Touchpoint, &r.Stage, &r.Outcome, &r.CustomerID, &r.JourneyID,
			&csat, &nps, &ces, &sentiment, &waitMS, &handleMS, &r.Negative, &r.Positive,
			&r.Region, &r.Product, &r.Segment, &r.AgentTeam, &r.AttrKeys, &r.AttrValues); err != nil {
			t.Fatal(err)
		}
		r.OccurredAt = r.OccurredAt.UTC()
		r.CSAT, r.NPS, r.CES, r.Sentiment = nullable(csat), nullable(nps), nullable(ces), nullable(sentiment)
		r.WaitMS, r.HandleMS = nullable(waitMS), nullable(handleMS)
		got[r.EventID] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// Request bodies are read into buffers kept for the next requests: bodies of very different
// sizes one after another, on the same connections, are each taken whole and alone.
func TestIngestBodiesOfDifferentSizesOneAfterAnother(t *testing.T) {
	s := startServer(t, serverConfig{})
	at := base()
	var all []string
	for round, n := range []int{3000, 1, 200, 2500, 3, 40} {
		ids, evs := batch(fmt.Sprintf("size%d-", round), n, at)
		s.mustPost(t, ndjson(evs), "Content-Type", "application/x-ndjson").accepted(t, n, 0)
		all = append(all, ids...)
	}
	s.settle(t)
	assertStoredOnce(t, s.db, all)
}

func TestIngestStoresEveryField(t *testing.T) {
	s := startServer(t, serverConfig{})
	at := base().Add(-time.Hour) // a whole second
	// occurred_at as sent: with milliseconds and a +02:00 offset; stored as UTC second + ms.
	sentAt := at.Add(250 * time.Millisecond).In(time.FixedZone("", 2*3600)).Format("2006-01-02T15:04:05.000-07:00")
	full := fmt.Sprintf(`{"event_id":"full-1","occurred_at":%q,"moment":"service","channel":"voice",
		"touchpoint":"billing_call","stage":"service_interaction","outcome":"resolved",
		"customer_id":"cust-42","journey_id":"jrn-7","csat":2,"nps":9,"ces":6,"sentiment":-0.5,
		"wait_ms":1500,"handle_ms":0,"region":"emea","product":"fibre","segment":"smb","agent_team":"tier2",
		"attributes":{"plan":"gold","lang":"de","a":""}}`, sentAt)
	minimal := fmt.Sprintf(`{"event_id":"min-1","occurred_at":%q,"moment":"zmot","channel":"web","touchpoint":"search"}`,
		at.Format(time.RFC3339))
	nulls := fmt.Sprintf(`{"event_id":"nulls-1","occurred_at":%q,"moment":"zmot","channel":"web","touchpoint":"search",
		"stage":null,"outcome":null,"customer_id":null,"journey_id":null,"csat":null,"nps":null,"ces":null,
		"sentiment":null,"wait_ms":null,"handle_ms":null,"region":null,"product":null,"segment":null,
		"agent_team":null,"attributes":null}`, at.Format(time.RFC3339))
	positive := fmt.Sprintf(`{"event_id":"pos-1","occurred_at":%q,"moment":"tmot","channel":"review_site","touchpoint":"review",
		"csat":5,"outcome":"completed","sentiment":0.75}`, at.Add(999*time.Millisecond).Format(time.RFC3339Nano))
	negative := fmt.Sprintf(`{"event_id":"neg-1","occurred_at":%q,"moment":"fmot","channel":"app","touchpoint":"checkout",
		"outcome":"abandoned","wait_ms":86400000,"attributes":{}}`, at.Add(time.Millisecond).Format(time.RFC3339Nano))

	before := time.Now().Add(-time.Second)
	r := s.mustPost(t, jsonArray([]string{full, minimal, nulls, positive, negative}))
	r.accepted(t, 5, 0)
	after := time.Now().Add(time.Second)

	empty := storedRow{CSAT: "NULL", NPS: "NULL", CES: "NULL", Sentiment: "NULL", WaitMS: "NULL", HandleMS: "NULL",
		AttrKeys: []string{}, AttrValues: []string{}}
	want := map[string]storedRow{}
	add := func(r storedRow) { want[r.EventID] = r }
	add(storedRow{EventID: "full-1", OccurredAt: at, OccurredMS: 250, Moment: "service", Channel: "voice",
		Touchpoint: "billing_call", Stage: "service_interaction", Outcome: "resolved", CustomerID: "cust-42",
		JourneyID: "jrn-7", CSAT: "2", NPS: "9", CES: "6", Sentiment: "-0.5", WaitMS: "1500", HandleMS: "0",
		Negative: 1, Positive: 1, // csat 2 is negative, nps 9 positive: both flags, by the SPEC rules
		Region: "emea", Product: "fibre", Segment: "smb", AgentTeam: "tier2",
		AttrKeys: []string{"a", "lang", "plan"}, AttrValues: []string{"", "de", "gold"}})
	m := empty
	m.EventID, m.OccurredAt, m.Moment, m.Channel, m.Touchpoint = "min-1", at, "zmot", "web", "search"
	add(m)
	m.EventID = "nulls-1"
	add(m)
	p := empty
	p.EventID, p.OccurredAt, p.OccurredMS, p.Moment, p.Channel, p.Touchpoint = "pos-1", at, 999, "tmot", "review_site", "review"
	p.CSAT, p.Outcome, p.Sentiment, p.Positive = "5", "completed", "0.75", 1
	add(p)
	n := empty
	n.EventID, n.OccurredAt, n.OccurredMS, n.Moment, n.Channel, n.Touchpoint = "neg-1", at, 1, "fmot", "app", "checkout"
	n.Outcome, n.WaitMS, n.Negative = "abandoned", "86400000", 1
	add(n)

	s.settle(t)
	got := readRows(t, s.db)
	if len(got) != len(want) {
		t.Fatalf("%d rows stored, want %d", len(got), len(want))
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("%s not stored", id)
			continue
		}
		if g.receivedAt.Before(before.Truncate(time.Second)) || g.receivedAt.After(after) {
			t.Errorf("%s: received_at %v, want between %v and %v", id, g.receivedAt, before, after)
		}
		g.receivedAt = time.Time{}
		if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) {
			t.Errorf("%s stored as\n%+v\nwant\n%+v", id, g, w)
		}
	}
	s.settle(t)
	assertStoredOnce(t, s.db, []string{"full-1", "min-1", "nulls-1", "pos-1", "neg-1"})
}

// ---- 2. invalid input ----

func TestIngestMixedValidAndInvalid(t *testing.T) {
	at := base()
	valid := func(id string) string { return eventJSON(id, at, len(id)) }
	for _, tc := range []struct {
		name       string
		body       []byte
		headers    []string
		wantStatus int
		wantIDs    []string
		wantErrs   []ferr // Message is a part of the message
		rejected   int
	}{
		{
			name: "array",
			body: jsonArray([]string{
				valid("ok-0"),
				`{"event_id":"bad-1","occurred_at":"` + at.Format(time.RFC3339) + `","moment":"fmot","channel":"web","touchpoint":"x","csat":9}`,
				valid("ok-2"),
				`{"event_id":"bad-3","occurred_at":"` + at.Format(time.RFC3339) + `","moment":"fmot","channel":"web","touchpoint":"x","colour":"red"}`,
				`{"event_id":"bad-4","occurred_at":"` + at.Format(time.RFC3339) + `","channel":"fax","touchpoint":"x"}`,
				`"not an object"`,
				`{"event_id":"bad-6","occurred_at":"` + at.Add(time.Hour).Format(time.RFC3339) + `","moment":"fmot","channel":"web","touchpoint":"x"}`,
			}),
			wantStatus: http.StatusAccepted,
			wantIDs:    []string{"ok-0", "ok-2"},
			rejected:   5,
			wantErrs: []ferr{
				{1, "csat", "must be an integer from 1 to 5 (got 9)"},
				{3, "colour", `unknown field "colour"`},
				{4, "moment", "is required"},
				{4, "channel", "must be one of web, app"},
				{5, "", "must be a JSON object"},
				{6, "occurred_at", "in the future"},
			},
		},
		{
			name: "ndjson with a broken line",
			body: ndjson([]string{
				valid("ok-0"),
				`{"event_id":"broken",`,
				valid("ok-2"),
				`{"event_id":"bad-3","occurred_at":"yesterday","moment":"fmot","channel":"web","touchpoint":"x"}`,
			}),
			headers:    []string{"Content-Type", "application/x-ndjson"},
			wantStatus: http.StatusAccepted,
			wantIDs:    []string{"ok-0", "ok-2"},
			rejected:   2,
			wantErrs: []ferr{
				{1, "", "invalid JSON at line 2"},
				{3, "occurred_at", "must be an RFC 3339 time"},
			},
		},
		{
			name: "all invalid",
			body: jsonArray([]string{
				`{"event_id":"","occurred_at":"` + at.Format(time.RFC3339) + `","moment":"fmot","channel":"web","touchpoint":"x"}`,
				`{"event_id":"bad-1","occurred_at":"` + at.Format(time.RFC3339) + `","moment":"fmot","channel":"web","touchpoint":"x","nps":11}`,
			}),
			wantStatus: http.StatusBadRequest,
			rejected:   2,
			wantErrs: []ferr{
				{0, "event_id", "must not be empty"},
				{1, "nps", "must be an integer from 0 to 10 (got 11)"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, serverConfig{})
			r := s.mustPost(t, tc.body, tc.headers...)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			a := r.answer
			if a.Accepted != len(tc.wantIDs) || a.Duplicates != 0 || a.Rejected != tc.rejected {
				t.Errorf("accepted %d, duplicates %d, rejected %d; want %d, 0, %d: %s",
					a.Accepted, a.Duplicates, a.Rejected, len(tc.wantIDs), tc.rejected, r.body)
			}
			if len(a.Errors) != len(tc.wantErrs) {
				t.Fatalf("%d errors, want %d: %s", len(a.Errors), len(tc.wantErrs), r.body)
			}
			for i, w := range tc.wantErrs {
				g := a.Errors[i]
				if g.Index != w.Index || g.Field != w.Field || !strings.Contains(g.Message, w.Message) {
					t.Errorf("error %d = %+v, want index %d, field %q, a message with %q", i, g, w.Index, w.Field, w.Message)
				}
			}
			s.settle(t)
			assertStoredOnce(t, s.db, tc.wantIDs)
		})
	}
}

func TestIngestRefusedRequests(t *testing.T) {
	const maxBody = 64 << 10
	s := startServer(t, serverConfig{web: web.Options{Limits: event.Limits{MaxBodyBytes: maxBody, MaxEvents: 100}}})
	at := base()
	_, evs := batch("r", 20, at)
	valid := jsonArray(evs)
	_, many := batch("many", 101, at)
	_, big := batch("big", 600, at) // about 90 KiB
	if len(jsonArray(big)) <= maxBody {
		t.Fatalf("test bug: big body is %d bytes", len(jsonArray(big)))
	}
	// Small on the wire, over the limit once inflated: a gzip bomb in miniature.
	bomb := gzipped(t, []byte("["+evs[0]+strings.Repeat(" ", 2*maxBody)+"]"))
	for _, tc := range []struct {
		name       string
		body       []byte
		headers    []string
		wantStatus int
		wantHeader [2]string // a header the answer must carry, and a part of its value
		wantError  string    // a part of the error message
	}{
		{name: "unreadable json", body: []byte(`[` + evs[0] + `, {"event_id": "x"`), wantStatus: 400, wantError: "invalid JSON"},
		{name: "not json", body: []byte("event_id=1&moment=fmot"), wantStatus: 400, wantError: "invalid JSON"},
		{name: "empty body", body: nil, wantStatus: 400, wantError: "the body is empty"},
		{name: "empty array", body: []byte("[]"), wantStatus: 400, wantError: "no event"},
		{name: "two objects without ndjson", body: []byte(evs[0] + "\n" + evs[1]), wantStatus: 400, wantError: "NDJSON"},
		{name: "gzip header but plain body", body: valid, headers: []string{"Content-Encoding", "gzip"}, wantStatus: 400, wantError: "not gzip"},
		{name: "gzip cut off", body: gzipped(t, valid)[:40], headers: []string{"Content-Encoding", "gzip"}, wantStatus: 400, wantError: "cut off"},
		{name: "body over the limit", body: jsonArray(big), wantStatus: 413, wantError: "larger than"},
		{name: "gzip body over the limit once inflated", body: bomb, headers: []string{"Content-Encoding", "gzip"}, wantStatus: 413, wantError: "larger than"},
		{name: "too many events", body: jsonArray(many), wantStatus: 413, wantError: "too many events"},
		{name: "unknown encoding", body: valid, headers: []string{"Content-Encoding", "br"}, wantStatus: 415, wantError: `"br"`},
		{name: "no key", body: valid, headers: []string{"Authorization", ""}, wantStatus: 401,
			wantHeader: [2]string{"WWW-Authenticate", "Bearer"}, wantError: "missing Authorization"},
		{name: "wrong key", body: valid, headers: []string{"Authorization", "Bearer tbi_wrong"}, wantStatus: 401,
			wantHeader: [2]string{"WWW-Authenticate", "invalid_token"}, wantError: "not a valid ingest key"},
		{name: "key in another scheme", body: valid, headers: []string{"Authorization", "Basic " + testKey}, wantStatus: 401,
			wantHeader: [2]string{"WWW-Authenticate", "Bearer"}, wantError: "missing Authorization"},
		{name: "empty bearer", body: valid, headers: []string{"Authorization", "Bearer "}, wantStatus: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.mustPost(t, tc.body, tc.headers...)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			if r.answer.Accepted != 0 {
				t.Errorf("answer says %d accepted: %s", r.answer.Accepted, r.body)
			}
			if r.answer.Error == "" || !strings.Contains(r.answer.Error, tc.wantError) {
				t.Errorf("error %q, want one with %q", r.answer.Error, tc.wantError)
			}
			if h := tc.wantHeader; h[0] != "" && !strings.Contains(r.header.Get(h[0]), h[1]) {
				t.Errorf("header %s = %q, want it to contain %q", h[0], r.header.Get(h[0]), h[1])
			}
			if n := s.count(t); n != 0 {
				t.Fatalf("%d events stored after a refused request", n)
			}
		})
	}
	// The server still takes a good request afterwards, and only that one was stored.
	s.mustPost(t, valid).accepted(t, len(evs), 0)
	if n := s.count(t); n != uint64(len(evs)) {
		t.Fatalf("%d events stored, want %d", n, len(evs))
	}
}

func TestIngestRateLimitPerKey(t *testing.T) {
	s := startServer(t, serverConfig{web: web.Options{IngestRate: 2}})
	at := base()
	var want []string
	for i := range 2 {
		ids, evs := batch(fmt.Sprintf("k1-%d", i), 3, at)
		s.mustPost(t, jsonArray(evs)).accepted(t, 3, 0)
		want = append(want, ids...)
	}
	// The third request of the same second: refused, nothing of it stored. Fiber's window
	// counts in whole seconds, so even a request that crosses a second boundary sees the two
	// before it.
	_, over := batch("k1-over", 3, at)
	r := s.mustPost(t, jsonArray(over))
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("third request: status %d, want 429: %s", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("429 without a usable Retry-After: %q", r.header.Get("Retry-After"))
	}
	if !strings.Contains(r.answer.Error, "rate limit") {
		t.Errorf("error %q does not name the rate limit", r.answer.Error)
	}
	// Another key has its own budget.
	ids, evs := batch("k2", 3, at)
	s.mustPost(t, jsonArray(evs), "Authorization", "Bearer "+otherKey).accepted(t, 3, 0)
	want = append(want, ids...)
	s.settle(t)
	assertStoredOnce(t, s.db, want)
}

// ---- 3. retries ----

// recordingSink passes every call to the real store and records the flushes: lookups and the
// event ids of each successful insert.
type recordingSink struct {
	ingest.Sink
	lookups atomic.Int32
	mu      sync.Mutex
	inserts [][]string
}

func (r *recordingSink) ExistingKeys(ctx context.Context, evs []event.Event) (map[event.Key]bool, error) {
	r.lookups.Add(1)
	return r.Sink.ExistingKeys(ctx, evs)
}

func (r *recordingSink) InsertReceived(ctx context.Context, evs []event.Event, received []time.Time, queryID string) error {
	err := r.Sink.InsertReceived(ctx, evs, received, queryID)
	if err == nil {
		ids := make([]string, len(evs))
		for i := range evs {
			ids[i] = evs[i].EventID
		}
		r.mu.Lock()
		r.inserts = append(r.inserts, ids)
		r.mu.Unlock()
	}
	return err
}

// postConcurrently posts every body at once, one goroutine each, and returns the replies in
// order.
func postConcurrently(t *testing.T, s *testServer, bodies [][]byte, headers ...string) []reply {
	t.Helper()
	replies := make([]reply, len(bodies))
	errs := make([]error, len(bodies))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Go(func() {
			<-start
			replies[i], errs[i] = s.post(b, headers...)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return replies
}

func TestIngestRetriesCountOnce(t *testing.T) {
	at := base()

	t.Run("same request twice", func(t *testing.T) {
		s := startServer(t, serverConfig{})
		ids, evs := batch("twice", 20, at)
		body := gzipped(t, ndjson(evs))
		hdr := []string{"Content-Type", "application/x-ndjson", "Content-Encoding", "gzip"}
		s.mustPost(t, body, hdr...).accepted(t, 20, 0)
		s.mustPost(t, body, hdr...).accepted(t, 20, 20)
		// The same events in another format and order are still the same events.
		slices.Reverse(evs)
		s.mustPost(t, jsonArray(evs)).accepted(t, 20, 20)
		s.settle(t)
		assertStoredOnce(t, s.db, ids)
	})

	t.Run("duplicates within one request", func(t *testing.T) {
		s := startServer(t, serverConfig{})
		ids, evs := batch("dup", 3, at)
		// e0 again with a different millisecond of the same second and other content: the
		// same idempotency key, so a duplicate; the first one sent wins.
		e0again := eventJSON("dup-0", at.Add(500*time.Millisecond), 4)
		s.mustPost(t, jsonArray([]string{evs[0], evs[1], evs[0], evs[2], evs[1], e0again})).accepted(t, 6, 3)
		s.settle(t)
		assertStoredOnce(t, s.db, ids)
		if row := readRows(t, s.db)["dup-0"]; row.OccurredMS != 0 || row.Moment != event.Moments[0] {
			t.Errorf("dup-0 stored as %+v, want the first one sent (ms 0, moment %s)", row, event.Moments[0])
		}
	})

	t.Run("same request from concurrent clients", func(t *testing.T) {
		s := startServer(t, serverConfig{})
		ids, evs := batch("conc", 50, at)
		body := jsonArray(evs)
		bodies := make([][]byte, 8)
		for i := range bodies {
			bodies[i] = body
		}
		// Twice: concurrent first sends, then concurrent retries of stored events.
		for round := range 2 {
			accepted := 0
			for i, r := range postConcurrently(t, s, bodies) {
				if r.status != http.StatusAccepted || r.answer.Accepted+r.answer.Duplicates != 50 {
					t.Fatalf("round %d, request %d: %d %s; want 202 with accepted+duplicates = 50", round, i, r.status, r.body)
				}
				accepted += r.answer.Accepted
			}
			// Concurrent first sends may each be answered as accepted (each is spooled and
			// the drainer stores one); once acknowledged, a retry is a duplicate.
			if round == 0 && accepted < 50 || round == 1 && accepted != 0 {
				t.Errorf("round %d: the answers accepted %d events in all, want at least 50 in the first, none in the retries", round, accepted)
			}
		}
		s.settle(t)
		assertStoredOnce(t, s.db, ids)
	})

	t.Run("same event in concurrent requests of one batch", func(t *testing.T) {
		db := storetest.Open(t)
		sink := &recordingSink{Sink: db}
		// A flush interval long enough for both requests to arrive before it ends.
		s := startServer(t, serverConfig{db: db, sink: sink, writer: ingest.Options{FlushInterval: 500 * time.Millisecond}})
		shared := eventJSON("shared", at, 0)
		aIDs, a := batch("a", 3, at)
		bIDs, b := batch("b", 2, at)
		replies := postConcurrently(t, s, [][]byte{
			jsonArray(append([]string{shared}, a...)),
			jsonArray(append(b, shared)),
		})
		accepted, dups := 0, 0
		for i, r := range replies {
			n := []int{4, 3}[i]
			if r.status != http.StatusAccepted || r.answer.Accepted+r.answer.Duplicates != n {
				t.Fatalf("request %d: %d %s; want 202 with accepted+duplicates = %d", i, r.status, r.body, n)
			}
			accepted += r.answer.Accepted
			dups += r.answer.Duplicates
		}
		// Each request may or may not see the other's copy of "shared" as acknowledged
		// already; either way it is stored once.
		if accepted+dups != 7 || dups > 1 {
			t.Errorf("the answers accepted %d and found %d duplicates, want 7 in all with at most 1 duplicate", accepted, dups)
		}
		// Both requests were in one batch: one lookup, one insert holding "shared" once.
		s.settle(t)
		sink.mu.Lock()
		inserts := sink.inserts
		sink.mu.Unlock()
		if lookups := sink.lookups.Load(); lookups != 1 || len(inserts) != 1 {
			t.Fatalf("%d lookups and %d inserts, want both requests in one flush: %v", lookups, len(inserts), inserts)
		}
		want := append(append([]string{"shared"}, aIDs...), bIDs...)
		got := slices.Clone(inserts[0])
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("the flush inserted %v, want %v", got, want)
		}
		s.settle(t)
		assertStoredOnce(t, s.db, want)
	})
}

// ---- 4. ClickHouse unavailable: events wait in the spool ----

// readiness is the body of GET /readyz.
type readiness struct {
	Ready      bool   `json:"ready"`
	ClickHouse string `json:"clickhouse"`
	Spool      struct {
		Events           int64   `json:"events"`
		Bytes            int64   `json:"bytes"`
		MaxBytes         int64   `json:"max_bytes"`
		OldestAgeSeconds float64 `json:"oldest_age_seconds"`
		FailedInserts    int     `json:"failed_inserts"`
	} `json:"spool"`
}

func (s *testServer) readyz(t *testing.T) (int, readiness) {
	t.Helper()
	resp, err := s.client.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r readiness
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("/readyz %d: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, r
}

// unavailable checks a 503 answer that asks the sender to retry later.
func (r reply) unavailable(t *testing.T) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("503 without a usable Retry-After: %q", r.header.Get("Retry-After"))
	}
	if r.answer.Error == "" || r.answer.Accepted != 0 {
		t.Errorf("503 answer %s, want an error and nothing accepted", r.body)
	}
}

// proxiedServer is a server whose store reaches ClickHouse through a proxy the test can cut;
// the returned store is a direct connection, for reading back.
func proxiedServer(t *testing.T, o ingest.Options) (*testServer, *store.Store, *storetest.Proxy) {
	direct, proxied, proxy := storetest.OpenProxied(t, 500*time.Millisecond)
	if o.FlushInterval == 0 {
		o.FlushInterval = 10 * time.Millisecond
	}
	o.FlushTimeout = 3 * time.Second
	s := startServer(t, serverConfig{db: direct, sink: proxied, pinger: proxied, writer: o})
	return s, direct, proxy
}

// waitFailedInsert waits until the drainer has failed to reach ClickHouse at least once.
func (s *testServer) waitFailedInsert(t *testing.T) readiness {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, r := s.readyz(t)
		if r.Spool.FailedInserts > 0 {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed insert reported with ClickHouse cut off: %+v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIngestClickHouseUnavailable(t *testing.T) {
	s, direct, proxy := proxiedServer(t, ingest.Options{})
	at := base()
	beforeIDs, before := batch("before", 10, at)
	s.mustPost(t, jsonArray(before)).accepted(t, 10, 0)
	if code, r := s.readyz(t); code != http.StatusOK || !r.Ready || r.ClickHouse != "ok" {
		t.Fatalf("/readyz with ClickHouse up: %d %+v", code, r)
	}
	s.settle(t)

	proxy.Cut()
	ids, evs := batch("during", 10, at.Add(time.Second))
	body := gzipped(t, ndjson(evs))
	hdr := []string{"Content-Type", "application/x-ndjson", "Content-Encoding", "gzip"}
	// Acknowledged from the spool; the sender's retry is recognised as one.
	s.mustPost(t, body, hdr...).accepted(t, 10, 0)
	s.mustPost(t, body, hdr...).accepted(t, 10, 10)
	r := s.waitFailedInsert(t)
	code, r := s.readyz(t)
	if code != http.StatusOK || !r.Ready || !strings.HasPrefix(r.ClickHouse, "unavailable") || r.Spool.Events != 10 || r.Spool.OldestAgeSeconds <= 0 {
		t.Errorf("/readyz with ClickHouse cut off: %d %+v; want ready (the spool takes events), ClickHouse unavailable, 10 events waiting and their age", code, r)
	}
	assertStoredOnce(t, direct, beforeIDs) // through the direct connection, which the cut spares

	proxy.Restore()
	s.settle(t)
	assertStoredOnce(t, direct, append(beforeIDs, ids...))
	if _, r := s.readyz(t); r.Spool.Events != 0 || r.Spool.FailedInserts != 0 || r.ClickHouse != "ok" {
		t.Errorf("/readyz after ClickHouse came back: %+v", r)
	}
}

// Under steady load, ClickHouse goes away and comes back: every request is acknowledged
// throughout, and every acknowledged event ends up stored exactly once.
func TestIngestCutUnderLoad(t *testing.T) {
	s, direct, proxy := proxiedServer(t, ingest.Options{FlushInterval: 20 * time.Millisecond})
	at := base()
	const (
		clients = 6
		perReq  = 20
	)
	var (
		phase    atomic.Int32
		answered [3]atomic.Int32 // 202s by phase: before, during and after the cut
		mu       sync.Mutex
		want     []string
		failed   = make(chan error, clients)
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for c := range clients {
		wg.Go(func() {
			for r := 0; ; r++ {
				select {
				case <-stop:
					return
				default:
				}
				ids, evs := batch(fmt.Sprintf("c%d-r%d", c, r), perReq, at.Add(time.Duration(r%30)*time.Second))
				p := phase.Load()
				rep, err := s.post(jsonArray(evs))
				if err == nil && (rep.status != http.StatusAccepted || rep.answer.Accepted != perReq) {
					err = fmt.Errorf("request %s in phase %d: %d %s; want 202 with %d accepted", ids[0], p, rep.status, rep.body, perReq)
				}
				if err != nil {
					failed <- err
					return
				}
				answered[p].Add(1)
				mu.Lock()
				want = append(want, ids...)
				mu.Unlock()
			}
		})
	}
	waitFor := func(what string, cond func() bool) {
		atLeast, deadline := time.Now().Add(300*time.Millisecond), time.Now().Add(15*time.Second)
		for time.Now().Before(atLeast) || !cond() {
			if time.Now().After(deadline) {
				t.Errorf("gave up waiting for %s", what)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("202s before the cut", func() bool { return answered[0].Load() >= clients })
	proxy.Cut()
	phase.Store(1)
	waitFor("202s during the cut", func() bool { return answered[1].Load() >= 2*clients })
	s.waitFailedInsert(t)
	proxy.Restore()
	phase.Store(2)
	waitFor("202s after the cut", func() bool { return answered[2].Load() >= 2*clients })
	close(stop)
	wg.Wait()
	close(failed)
	for err := range failed {
		t.Error(err)
	}
	t.Logf("requests of %d events answered 202 before, during and after the cut: %d %d %d",
		perReq, answered[0].Load(), answered[1].Load(), answered[2].Load())
	s.settle(t)
	assertStoredOnce(t, direct, want)
}

// The spool's quota bounds the disk used while ClickHouse is away: beyond it ingest answers 503
// with Retry-After and keeps nothing of the request; what was acknowledged is stored once
// ClickHouse is back.
func TestIngestSpoolFull(t *testing.T) {
	o := ingest.Options{}
	o.Spool.SegmentBytes, o.Spool.MaxBytes = 8<<10, 32<<10
	s, direct, proxy := proxiedServer(t, o)
	at := base()
	proxy.Cut()
	var acked []string
	var refused reply
	for i := 0; i < 200; i++ {
		ids, evs := batch(fmt.Sprintf("q%d", i), 10, at)
		r := s.mustPost(t, jsonArray(evs))
		if r.status != http.StatusAccepted {
			refused = r
			break
		}
		acked = append(acked, ids...)
	}
	refused.unavailable(t)
	if !strings.Contains(refused.answer.Error, "spool is full") || refused.header.Get("Retry-After") != "5" {
		t.Errorf("answer beyond the quota: Retry-After %q, %s", refused.header.Get("Retry-After"), refused.body)
	}
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged before the spool was full")
	}
	if code, r := s.readyz(t); code != http.StatusServiceUnavailable || r.Ready {
		t.Errorf("/readyz with a full spool: %d %+v, want 503 and not ready", code, r)
	}
	proxy.Restore()
	s.settle(t)
	assertStoredOnce(t, direct, acked)
	ids, evs := batch("after", 3, at)
	s.mustPost(t, jsonArray(evs)).accepted(t, 3, 0)
	s.settle(t)
	assertStoredOnce(t, direct, append(acked, ids...))
}

// gatedWriter holds every Write until the test opens its gate.
type gatedWriter struct {
	web.Writer
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (g *gatedWriter) Write(ctx context.Context, evs []event.Event) (ingest.Result, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.Writer.Write(ctx, evs)
}

func (g *gatedWriter) open() { g.once.Do(func() { close(g.gate) }) }

// The bodies being decoded or written are bounded in bytes: a request beyond the bound is
// refused before its body is read.
func TestIngestTooManyRequestsAtOnce(t *testing.T) {
	at := base()
	var held [][]string
	var bodies [][]byte
	for i := range 2 {
		ids, evs := batch(fmt.Sprintf("held%d", i), 3, at)
		held, bodies = append(held, ids), append(bodies, jsonArray(evs))
	}
	gate := &gatedWriter{entered: make(chan struct{}, 2), gate: make(chan struct{})}
	// Room for exactly the two held bodies.
	budget := int64(len(bodies[0]) + len(bodies[1]))
	s := startServer(t, serverConfig{
		web:  web.Options{MaxInflightBytes: budget},
		wrap: func(w web.Writer) web.Writer { gate.Writer = w; return gate },
	})
	t.Cleanup(gate.open)
	done := make(chan ingestResult, 2)
	for _, body := range bodies {
		go func() { r, err := s.post(body); done <- ingestResult{r, err} }()
	}
	<-gate.entered
	<-gate.entered
	ids, evs := batch("third", 3, at)
	r := s.mustPost(t, jsonArray(evs))
	r.unavailable(t)
	if r.header.Get("Retry-After") != "1" || !strings.Contains(r.answer.Error, "too many ingest requests") {
		t.Errorf("answer beyond the in-flight limit: Retry-After %q, %s", r.header.Get("Retry-After"), r.body)
	}
	gate.open()
	for range 2 {
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		res.reply.accepted(t, 3, 0)
	}
	s.mustPost(t, jsonArray(evs)).accepted(t, 3, 0) // the room is free again
	s.settle(t)
	assertStoredOnce(t, s.db, append(append(held[0], held[1]...), ids...))
}

type ingestResult struct {
	reply
	err error
}

// A body over the limit gets its 413 whether its length is declared or it comes chunked, and
// whether it is a little or a lot larger: the client reads the answer, not a reset connection.
// Other routes take small bodies only.
func TestOversizeBodiesGetTheirAnswer(t *testing.T) {
	const maxBody = 64 << 10
	s := startServer(t, serverConfig{web: web.Options{Limits: event.Limits{MaxBodyBytes: maxBody}}})
	for _, size := range []int{maxBody + 1, 3 * maxBody, 40 * maxBody} {
		body := []byte("[" + strings.Repeat(" ", size-2) + "]")
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d bytes chunked=%v", size, chunked), func(t *testing.T) {
				var r io.Reader = bytes.NewReader(body)
				if chunked { // a reader of unknown length makes net/http send chunks
					r = io.MultiReader(r)
				}
				req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/events", r)
				req.Header.Set("Authorization", "Bearer "+testKey)
				resp, err := s.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "larger than 65536 bytes") {
					t.Fatalf("status %d: %s", resp.StatusCode, b)
				}
			})
		}
	}
	resp, err := s.client.Post(s.url+"/login", "application/x-www-form-urlencoded", strings.NewReader("token="+strings.Repeat("x", 100<<10)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 100 KiB sign-in form: status %d, want 413: %s", resp.StatusCode, b)
	}
	// The server still takes a good request afterwards.
	_, evs := batch("after", 3, base())
	s.mustPost(t, jsonArray(evs)).accepted(t, 3, 0)
}

// fasthttp's own error for unreadable headers quotes the raw request; the answer must keep
// only the reason, never the Authorization header or the body.
func TestUnreadableHeadersAreNotEchoed(t *testing.T) {
	s := startServer(t, serverConfig{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: -1\r\nConnection: close\r\n\r\n{\"event_id\":\"secret-body\"}", testKey)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, _ := io.ReadAll(conn)
	if !strings.Contains(string(answer), " 400 ") || !strings.Contains(string(answer), "the request headers cannot be read") {
		t.Fatalf("answer to a bad Content-Length: %q", answer)
	}
	if strings.Contains(string(answer), testKey) || strings.Contains(string(answer), "secret-body") {
		t.Fatalf("the answer echoes the request: %q", answer)
	}
}
