package live

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
)

// fixedSource is a Source of our own that answers every query with a fixed grid: events
// spread over a few moment × channel cells, the previous period, and trend buckets. It can be
// made to fail, and counts the queries it answers by grouping ("negatives" for the latest
// negative moments, which it answers with one event).
type fixedSource struct {
	events atomic.Uint64 // events of the zmot/web cell
	fail   atomic.Bool

	mu    sync.Mutex
	calls map[string]int // by the query's grouping
	// The last Rollup call's query by grouping, and the last LatestNegatives call's arguments.
	queries  map[string]rollup.Query
	negQuery rollup.Query
	negPlan  rollup.Plan
	negLimit int
}

func newFixedSource(events uint64) *fixedSource {
	s := &fixedSource{calls: map[string]int{}, queries: map[string]rollup.Query{}}
	s.events.Store(events)
	return s
}

func (s *fixedSource) Rollup(ctx context.Context, q rollup.Query, p rollup.Plan) ([]rollup.Group, error) {
	s.mu.Lock()
	s.calls[strings.Join(q.By, ",")]++
	s.queries[strings.Join(q.By, ",")] = q
	s.mu.Unlock()
	if s.fail.Load() {
		return nil, errors.New("connection refused")
	}
	newest := p.To.Add(-p.Resolution)
	cell := func(m, ch string, events, csatN, top2 uint64) rollup.Group {
		g := rollup.Group{Moment: m, Channel: ch, Newest: newest, Counts: rollup.Counts{Events: events, CSATN: csatN, CSATTop2: top2}}
		if q.Step > 0 {
			g.Bucket = newest.Truncate(q.Step)
			if !slices.Contains(q.By, "channel") {
				g.Channel = ""
			}
		}
		if len(q.By) == 3 {
			g.Touchpoint = "checkout"
		}
		return g
	}
	groups := []rollup.Group{
		cell("zmot", "web", s.events.Load(), 40, 30),
		cell("service", "voice", 60, 50, 31),
		cell("service", "ivr", 12, 10, 2),
	}
	if q.Compare {
		prev := cell("zmot", "web", 50, 20, 10)
		prev.Previous, prev.Newest = true, p.From.Add(-p.Resolution)
		groups = append(groups, prev)
	}
	return groups, nil
}

func (s *fixedSource) LatestNegatives(ctx context.Context, q rollup.Query, p rollup.Plan, limit int) ([]rollup.NegativeEvent, error) {
	s.mu.Lock()
	s.calls["negatives"]++
	s.negQuery, s.negPlan, s.negLimit = q, p, limit
	s.mu.Unlock()
	if s.fail.Load() {
		return nil, errors.New("connection refused")
	}
	csat := uint8(1)
	return []rollup.NegativeEvent{{EventID: "neg-1", OccurredAt: p.To.Add(-p.Resolution), Moment: "service",
		Channel: "voice", Touchpoint: "checkout", CSAT: &csat, Reasons: []string{"csat 1"}}}, nil
}

func (s *fixedSource) callsBy(by string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[by]
}

func (s *fixedSource) totalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

func newTestHub(t *testing.T, src Source, opts Options) *Hub {
	t.Helper()
	if opts.MaxMissed == 0 {
		opts.MaxMissed = 1 << 20 // only the slow-consumer test wants slow clients closed
	}
	h := NewHub(src, opts, slog.New(slog.DiscardHandler))
	t.Cleanup(h.Close)
	return h
}

func subscription(t *testing.T, msg string) Subscription {
	t.Helper()
	sub, err := ParseClientMessage([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// received is a server message as a screen reads it.
type received struct {
	Type        string         `json:"type"`
	Seq         uint64         `json:"seq"`
	Feed        string         `json:"feed"`
	View        string         `json:"view"`
	Tick        *time.Time     `json:"tick"`
	NewestEvent *time.Time     `json:"newest_event"`
	Degraded    bool           `json:"degraded"`
	Problem     string         `json:"problem"`
	Charts      map[string]any `json:"charts"`
	Data        *struct {
		KPIs struct {
			Events uint64 `json:"events"`
		} `json:"kpis"`
		Touchpoints []any `json:"touchpoints"`
		Negatives   []struct {
			EventID string   `json:"event_id"`
			Reasons []string `json:"reasons"`
		} `json:"negatives"`
	} `json:"data"`
}

// next waits for the client's next message.
func next(t *testing.T, c *Client) received {
	t.Helper()
	var m received
	nextInto(t, c, &m)
	return m
}

// nextInto waits for the client's next message and decodes it into v.
func nextInto(t *testing.T, c *Client, v any) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		if msg, ok := c.TryNext(); ok {
			if err := json.Unmarshal(msg, v); err != nil {
				t.Fatalf("message is not JSON: %v: %s", err, msg)
			}
			return
		}
		select {
		case <-c.Wake():
		case <-c.Done():
			t.Fatalf("client closed (%v) while waiting for a message", c.Reason())
		case <-timeout:
			t.Fatal("no message within 5 s")
		}
	}
}

// nextWhere reads messages until one satisfies ok.
func nextWhere(t *testing.T, c *Client, what string, ok func(received) bool) received {
	t.Helper()
	for range 500 {
		if m := next(t, c); ok(m) {
			return m
		}
	}
	t.Fatalf("no message %s", what)
	return received{}
}

func TestHubOneFeedPerKey(t *testing.T) {
	src := newFixedSource(100)
	h := newTestHub(t, src, Options{Tick: time.Hour}) // one tick, when a feed starts
	msgs := []string{
		`{"type":"subscribe","view":"executive"}`,
		`{"type":"subscribe","view":"executive","window":"5m"}`,
		`{"type":"subscribe","view":"tv"}`,
		`{"type":"subscribe","view":"executive","filters":{"channel":["web","app"]}}`,
		`{"type":"subscribe","view":"tv","filters":{"channel":["app","web"]}}`,
		`{"type":"subscribe","view":"drilldown"}`,
		`{"type":"subscribe","view":"executive","window":"1h"}`,
	}
	clients := make([]*Client, len(msgs))
	for i, msg := range msgs {
		clients[i] = NewClient()
		h.Subscribe(clients[i], subscription(t, msg))
	}
	if st := h.Stats(); st.Feeds != 4 || st.Clients != len(msgs) {
		t.Fatalf("stats %+v, want 4 feeds for %d clients", st, len(msgs))
	}
	for i, c := range clients {
		m := next(t, c)
		if m.Type != "snapshot" || m.Seq != 1 || m.Tick == nil || m.NewestEvent == nil || m.Degraded || len(m.Charts) == 0 {
			t.Fatalf("client %d: first %s seq %d degraded %v, %d charts: want a snapshot with charts", i, m.Type, m.Seq, m.Degraded, len(m.Charts))
		}
		// The feed's view, whoever subscribed first: a TV wall reads the executive feed.
		if want := map[bool]string{true: "drilldown", false: "executive"}[i == 5]; m.View != want {
			t.Errorf("client %d: view %q, want %q", i, m.View, want)
		}
	}
	// A client joining a running feed gets its last frame as a snapshot at once.
	late := NewClient()
	h.Subscribe(late, subscription(t, msgs[0]))
	if m := next(t, late); m.Type != "snapshot" || m.Seq != 1 {
		t.Fatalf("late client: %s seq %d, want the snapshot of seq 1", m.Type, m.Seq)
	}
	if st := h.Stats(); st.Feeds != 4 || st.Ticks != 4 {
		t.Errorf("stats %+v, want 4 feeds that ticked once each", st)
	}
}

func TestHubDrilldownCharts(t *testing.T) {
	src := newFixedSource(100)
	h := newTestHub(t, src, Options{Tick: time.Hour})
	c := NewClient()
	h.Subscribe(c, subscription(t, `{"type":"subscribe","view":"drilldown","window":"15m","filters":{"moment":["service"],"region":["north"]}}`))
	m := next(t, c)
	if m.Data == nil || len(m.Data.Touchpoints) == 0 {
		t.Fatalf("drill-down snapshot data %+v: want touchpoints", m.Data)
	}
	// The latest negative moments: the drill path's filters, the touchpoints' window.
	if len(m.Data.Negatives) != 1 || m.Data.Negatives[0].EventID != "neg-1" || !slices.Equal(m.Data.Negatives[0].Reasons, []string{"csat 1"}) {
		t.Fatalf("drill-down negatives %+v, want the source's one event with its reason", m.Data.Negatives)
	}
	src.mu.Lock()
	nq, np, limit := src.negQuery, src.negPlan, src.negLimit
	src.mu.Unlock()
	if !slices.Equal(nq.Filters.Moment, []string{"service"}) || !slices.Equal(nq.Filters.Region, []string{"north"}) ||
		np.To.Sub(np.From) != 15*time.Minute || np.Table != "detail_1m" || limit != rollup.DefaultNegatives {
		t.Errorf("negatives asked with filters %+v, plan %+v, limit %d: want the subscription's filters over its 15 minutes, %d events",
			nq.Filters, np, limit, rollup.DefaultNegatives)
	}
	// Channel bars for every moment, those without answers too (fmot here): an update never
	// names a chart the snapshot did not have.
	for _, moment := range event.Moments {
		bars, _ := m.Charts["channels_"+moment].(map[string]any)
		if bars["xAxis"] == nil {
			t.Errorf("drill-down snapshot has no full channel bars of %s: charts %v", moment, keys(m.Charts))
		}
	}
	// Moving the screen to the executive view: a new snapshot, the drill-down feed stops.
	h.Subscribe(c, subscription(t, `{"type":"subscribe","view":"executive"}`))
	m = next(t, c)
	if m.Type != "snapshot" || m.View != "executive" || m.Charts["channels_service"] != nil || m.Data.Negatives != nil {
		t.Fatalf("after resubscribing: %s of %s with %v, want an executive snapshot", m.Type, m.View, keys(m.Charts))
	}
	if st := h.Stats(); st.Feeds != 1 || st.Clients != 1 {
		t.Errorf("stats %+v, want the drill-down feed gone", st)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestHubQueriesPerTickIndependentOfClients(t *testing.T) {
	for _, tc := range []struct {
		view    string
		perTick uint64
	}{{"executive", 2}, {"tv", 2}, {"drilldown", 4}} {
		t.Run(tc.view, func(t *testing.T) {
			src := newFixedSource(100)
			h := NewHub(src, Options{Tick: 5 * time.Millisecond, MaxMissed: 1 << 20}, slog.New(slog.DiscardHandler))
			defer h.Close()
			sub := subscription(t, `{"type":"subscribe","view":"`+tc.view+`"}`)
			clients := make([]*Client, 50)
			for i := range clients {
				clients[i] = NewClient()
				h.Subscribe(clients[i], sub)
			}
			nextWhere(t, clients[0], "of seq 10", func(m received) bool { return m.Seq >= 10 })
			if st := h.Stats(); st.Feeds != 1 || st.Clients != 50 {
				t.Fatalf("stats %+v, want one feed for 50 clients", st)
			}
			h.Close() // counters settle once the feed has stopped
			st := h.Stats()
			if st.Ticks < 10 || st.Queries != tc.perTick*st.Ticks {
				t.Fatalf("%d queries in %d ticks, want %d per tick", st.Queries, st.Ticks, tc.perTick)
			}
			if got := src.totalCalls(); uint64(got) != st.Queries {
				t.Errorf("source answered %d queries, hub counted %d", got, st.Queries)
			}
			if got := src.callsBy("moment,channel"); uint64(got) != st.Ticks {
				t.Errorf("%d grid queries in %d ticks", got, st.Ticks)
			}
			if got, want := src.callsBy("negatives"), map[bool]uint64{true: st.Ticks}[tc.view == "drilldown"]; uint64(got) != want {
				t.Errorf("%d negative-moment queries in %d ticks of the %s view, want %d", got, st.Ticks, tc.view, want)
			}
		})
	}
}

// The test runs on synctest's clock, so "no more queries" is checked over a second of
// ticks once every goroutine has settled, not over a sleep that a loaded machine may stretch.
func TestHubFeedStopsAfterLastClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFixedSource(100)
		h := newTestHub(t, src, Options{Tick: 5 * time.Millisecond})
		sub := subscription(t, `{"type":"subscribe","view":"executive"}`)
		a, b := NewClient(), NewClient()
		h.Subscribe(a, sub)
		h.Subscribe(b, sub)
		next(t, a)
		h.Leave(a, ClientGone)
		if st := h.Stats(); st.Feeds != 1 || st.Clients != 1 {
			t.Fatalf("stats %+v after one of two left, want the feed kept", st)
		}
		nextWhere(t, b, "after a left", func(m received) bool { return m.Type == "update" })
		h.Leave(b, SlowConsumer)
		st := h.Stats()
		if st.Feeds != 0 || st.Clients != 0 {
			t.Fatalf("stats %+v after the last client left, want no feed", st)
		}
		if st.Closes["client gone"] != 1 || st.Closes["slow consumer"] != 1 {
			t.Errorf("closes %v, want one client gone and one slow consumer", st.Closes)
		}
		// The feed's goroutine ends and the source hears no more queries.
		done := make(chan struct{})
		go func() { h.wg.Wait(); close(done) }()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("the feed's goroutine did not end")
		}
		calls := src.totalCalls()
		time.Sleep(time.Second) // 200 ticks
		synctest.Wait()
		if got := src.totalCalls(); got != calls {
			t.Errorf("source queried %d more times after the feed stopped", got-calls)
		}
	})
}

func TestHubDegradedKeepsLastGoodData(t *testing.T) {
	src := newFixedSource(100)
	// A clock that moves a microsecond per tick: every tick sees the same window, so the
	// newest event time of any healthy tick is the last good one.
	base, ticks := time.Now().Truncate(time.Second), atomic.Int64{}
	now := func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Microsecond) }
	h := newTestHub(t, src, Options{Tick: 5 * time.Millisecond, Now: now})
	c := NewClient()
	h.Subscribe(c, subscription(t, `{"type":"subscribe","view":"executive"}`))
	good := next(t, c)
	if good.Type != "snapshot" || good.Degraded || good.Data == nil || good.Data.KPIs.Events != 172 {
		t.Fatalf("first %s: degraded %v, data %+v: want a healthy snapshot of 172 events", good.Type, good.Degraded, good.Data)
	}

	charts := len(good.Charts)

	src.fail.Store(true)
	bad := nextWhere(t, c, "degraded", func(m received) bool {
		if !m.Degraded {
			good = m // a healthy tick that ran before the source failed
		}
		return m.Degraded
	})
	if bad.Type != "update" || bad.Problem == "" || bad.Data == nil || bad.Data.KPIs.Events != 172 ||
		bad.NewestEvent == nil || !bad.NewestEvent.Equal(*good.NewestEvent) || len(bad.Charts) != charts {
		t.Fatalf("degraded %s: problem %q, data %+v, newest event %v (last good %v), %d charts (want %d): want an update with the last good figures and charts",
			bad.Type, bad.Problem, bad.Data, bad.NewestEvent, good.NewestEvent, len(bad.Charts), charts)
	}
	if !bad.Tick.After(*good.Tick) || bad.Seq <= good.Seq {
		t.Errorf("degraded tick %v seq %d, want later than %v seq %d: ticks go on", bad.Tick, bad.Seq, good.Tick, good.Seq)
	}

	src.events.Store(200)
	src.fail.Store(false)
	back := nextWhere(t, c, "recovered", func(m received) bool { return !m.Degraded })
	if back.Type != "update" || back.Problem != "" || back.Data == nil || back.Data.KPIs.Events != 272 {
		t.Fatalf("recovered %s: problem %q, data %+v: want fresh figures of 272 events", back.Type, back.Problem, back.Data)
	}
}

func TestHubDegradedFromTheStart(t *testing.T) {
	src := newFixedSource(100)
	src.fail.Store(true)
	h := newTestHub(t, src, Options{Tick: 5 * time.Millisecond})
	c := NewClient()
	h.Subscribe(c, subscription(t, `{"type":"subscribe","view":"tv"}`))
	m := next(t, c)
	if m.Type != "update" || !m.Degraded || m.Data != nil || m.Charts != nil || m.NewestEvent != nil || m.Tick == nil {
		t.Fatalf("first %s: degraded %v, data %v, %d charts, newest %v: want a degraded update without figures", m.Type, m.Degraded, m.Data, len(m.Charts), m.NewestEvent)
	}
	src.fail.Store(false)
	m = nextWhere(t, c, "healthy", func(m received) bool { return !m.Degraded })
	if m.Type != "snapshot" || len(m.Charts) == 0 {
		t.Fatalf("first healthy message %s with %d charts, want the snapshot the client is still waiting for", m.Type, len(m.Charts))
	}
	if m = next(t, c); m.Type != "update" {
		t.Fatalf("after the snapshot: %s, want updates", m.Type)
	}
}

func TestHubClosesSlowConsumer(t *testing.T) {
	h := newTestHub(t, newFixedSource(100), Options{Tick: 10 * time.Millisecond, MaxMissed: 5})
	sub := subscription(t, `{"type":"subscribe","view":"executive"}`)
	slow, fast := NewClient(), NewClient()
	h.Subscribe(slow, sub)
	h.Subscribe(fast, sub)
	var seq uint64
	for {
		select {
		case <-slow.Done():
			if slow.Reason() != SlowConsumer {
				t.Fatalf("slow client closed as %v", slow.Reason())
			}
			select {
			case <-fast.Done():
				t.Fatal("the fast client was closed too")
			default:
			}
			return
		default:
		}
		m := next(t, fast)
		if m.Seq <= seq {
			t.Fatalf("fast client's seq went from %d to %d", seq, m.Seq)
		}
		seq = m.Seq
	}
}

// The test runs on synctest's clock: once Close has returned and every goroutine has settled,
// the feeds' goroutines are counted at once, without polling.
func TestHubCloseGoingAwayNoLeak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		before := runtime.NumGoroutine()
		h := NewHub(newFixedSource(100), Options{Tick: 5 * time.Millisecond, MaxMissed: 1 << 20}, slog.New(slog.DiscardHandler))
		var clients []*Client
		for _, msg := range []string{
			`{"type":"subscribe","view":"executive"}`,
			`{"type":"subscribe","view":"tv"}`,
			`{"type":"subscribe","view":"drilldown"}`,
			`{"type":"subscribe","view":"executive","window":"1m"}`,
			`{"type":"subscribe","view":"executive","filters":{"region":["north"]}}`,
		} {
			c := NewClient()
			h.Subscribe(c, subscription(t, msg))
			next(t, c)
			clients = append(clients, c)
		}
		if st := h.Stats(); st.Feeds != 4 {
			t.Fatalf("feeds = %d, want 4", st.Feeds)
		}
		closed := make(chan struct{})
		go func() { h.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
		default:
			t.Fatal("Close did not return")
		}
		for i, c := range clients {
			select {
			case <-c.Done():
			default:
				t.Fatalf("client %d not closed", i)
			}
			if c.Reason() != GoingAway || c.Reason().Code() != 1001 {
				t.Errorf("client %d closed as %v, want going away", i, c.Reason())
			}
			h.Leave(c, ClientGone) // what the connection does next: the hub's reason stays
		}
		if st := h.Stats(); st.Feeds != 0 || st.Clients != 0 || st.Closes["going away"] != uint64(len(clients)) {
			t.Errorf("stats after Close %+v", st)
		}
		// A screen subscribing during shutdown is told to go away at once.
		late := NewClient()
		h.Subscribe(late, subscription(t, `{"type":"subscribe","view":"executive"}`))
		if late.Reason() != GoingAway {
			t.Errorf("subscribe after Close: reason %v, want going away", late.Reason())
		}
		if st := h.Stats(); st.Feeds != 0 {
			t.Errorf("subscribe after Close started a feed")
		}

		// Every feed goroutine has ended (a little tolerance for the runtime's own).
		synctest.Wait()
		if n := runtime.NumGoroutine(); n > before+1 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
	})
}
