package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/annotation"
	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/telemetry"
)

// Options tune the Hub. Zero values take the defaults.
type Options struct {
	// Tick is how often every feed queries and pushes at least (default 1 s).
	Tick time.Duration
	// Landed, when set, returns a channel that is closed when new events have landed in
	// ClickHouse (the ingest drainer's ingest.Writer.Landed): every feed then ticks at once, or
	// MinTick after its previous tick if that is later, so that a screen shows an event one
	// tick's queries after it lands instead of up to a Tick later. nil: feeds tick every Tick.
	Landed func() <-chan struct{}
	// MinTick is the shortest time between two ticks of a feed that Landed brings forward
	// (default 500 ms, at most Tick): under steady traffic each feed runs its queries every
	// MinTick instead of every Tick.
	MinTick time.Duration
	// QueryTimeout bounds one tick's queries (default 3 ticks, at least 2 s); past it the feed is
	// degraded for that tick.
	QueryTimeout time.Duration
	// MaxMissed closes a screen as a slow consumer once this many frames in a row were replaced
	// before its connection took them (default 5): its writer is stuck.
	MaxMissed int
	// Rules decide when a figure has enough data.
	Rules metric.Rules
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Alerts, when set, gives the alerts every screen shows at each tick, whatever its view and
	// filters (an alert in another channel still concerns the viewer); nil: none.
	Alerts func() []alert.Alert
	// Annotations, when set, gives the annotations that lie within from..to and concern a view
	// filtered to moments and channels (empty: all), for every feed at each tick; nil: none.
	Annotations func(from, to time.Time, moments, channels []string) []annotation.Annotation
	// Telemetry receives the Hub's metrics (nil: metrics of its own, which nothing exposes).
	Telemetry *telemetry.Metrics

	// MaxQueries bounds the queries all feeds run at once (0: no bound). It is the live feeds'
	// share of the database's connections: the rest stays free for ingest, credential reloads
	// and the admin API however many feeds there are. A feed waits for a free one within its
	// tick's QueryTimeout, else that tick is degraded.
	MaxQueries int
	// MaxFeeds bounds the distinct feeds (0: no bound); a subscribe that would start one more is
	// refused.
	MaxFeeds int
	// MaxFeedsPerCredential bounds the distinct feeds the clients of one credential (see
	// NewClientOf) are subscribed to (0: no bound).
	MaxFeedsPerCredential int
}

// DefaultMinTick is Options.MinTick's default.
const DefaultMinTick = 500 * time.Millisecond

func (o Options) withDefaults() Options {
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.MinTick <= 0 {
		o.MinTick = DefaultMinTick
	}
	o.MinTick = min(o.MinTick, o.Tick)
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = max(3*o.Tick, 2*time.Second)
	}
	if o.MaxMissed <= 0 {
		o.MaxMissed = 5
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Telemetry == nil {
		o.Telemetry = telemetry.New()
	}
	return o
}

// Hub owns the feeds and their subscribers.
type Hub struct {
	src  Source
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	feeds  map[string]*feed
	closed bool
	wg     sync.WaitGroup
	// held counts, per credential, its clients on each feed key: the distinct feeds it holds.
	held map[string]map[string]int

	queries, ticks atomic.Uint64
	closes         [numCloseReasons]atomic.Uint64

	m            *telemetry.Metrics
	closeCounter [numCloseReasons]prometheus.Counter // m.LiveCloses by reason
}

// NewHub returns a Hub reading from src.
func NewHub(src Source, opts Options, log *slog.Logger) *Hub {
	opts = opts.withDefaults()
	m := opts.Telemetry
	h := &Hub{opts: opts, log: log, feeds: map[string]*feed{}, held: map[string]map[string]int{}, m: m}
	h.src = timedSource{src: src, duration: m.LiveQueryDuration}
	if opts.MaxQueries > 0 {
		h.src = slotSource{src: h.src, slots: make(chan struct{}, opts.MaxQueries)}
	}
	for r := CloseReason(0); r < numCloseReasons; r++ {
		h.closeCounter[r] = m.LiveCloses.WithLabelValues(r.Label()) // every reason's series exists at 0
	}
	return h
}

// Stats are the Hub's counters.
type Stats struct {
	Feeds   int    `json:"feeds"`
	Clients int    `json:"clients"`
	Ticks   uint64 `json:"ticks"`   // feed ticks run, all feeds together
	Queries uint64 `json:"queries"` // ClickHouse queries run by all feeds
	// Closes counts closed screens by reason.
	Closes map[string]uint64 `json:"closes"`
}

// Stats returns the counters now.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	s := Stats{Feeds: len(h.feeds)}
	for _, f := range h.feeds {
		s.Clients += len(f.clients)
	}
	h.mu.Unlock()
	s.Ticks, s.Queries = h.ticks.Load(), h.queries.Load()
	s.Closes = map[string]uint64{}
	for r := CloseReason(0); r < numCloseReasons; r++ {
		s.Closes[r.String()] = h.closes[r].Load()
	}
	return s
}

// RefusedError is the answer to a subscribe that a bound of the Hub refuses: its message is
// for the screen's user, and the client keeps the feed it had.
type RefusedError struct {
	// Reason is the label of truthboard_live_refused_total.
	Reason  string
	Message string
}

func (e *RefusedError) Error() string { return e.Message }

// Subscribe moves c to the feed of sub, starting the feed if it is the first subscriber. The
// client's next frame is a snapshot, sent at once when the feed has one. It returns a
// *RefusedError, and leaves c where it was, when the move would take the server or c's
// credential past its bound on distinct feeds.
func (h *Hub) Subscribe(c *Client, sub Subscription) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		c.Close(GoingAway)
		return nil
	}
	if err := h.admitLocked(c, sub.Key); err != nil {
		h.mu.Unlock()
		h.m.LiveRefused.WithLabelValues(err.Reason).Inc()
		return err
	}
	if c.feed != nil && c.feed.sub.Key != sub.Key {
		h.removeLocked(c)
	}
	f := h.feeds[sub.Key]
	if f == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f = &feed{hub: h, sub: sub, clients: map[*Client]struct{}{}, ctx: ctx, stop: cancel}
		h.feeds[sub.Key] = f
		h.m.LiveFeeds.Inc()
		h.wg.Add(1)
		go f.run()
	}
	if _, ok := f.clients[c]; !ok {
		h.m.LiveClients.Inc()
		h.holdLocked(c, sub.Key, 1)
	}
	f.clients[c] = struct{}{}
	c.feed = f
	c.resubscribed(f)
	last := f.last.Load()
	h.mu.Unlock()
	if last != nil {
		c.offer(last, 0)
	}
	return nil
}

// admitLocked checks the bounds on distinct feeds for c moving to the feed key. The feed c
// leaves counts as gone when c was its last client (or its credential's last one on it).
func (h *Hub) admitLocked(c *Client, key string) *RefusedError {
	cur := c.feed
	if cur != nil && cur.sub.Key == key {
		return nil
	}
	if limit := h.opts.MaxFeedsPerCredential; limit > 0 && c.credential != "" {
		held := h.held[c.credential]
		if held[key] == 0 {
			n := len(held)
			if cur != nil && held[cur.sub.Key] == 1 {
				n--
			}
			if n >= limit {
				return &RefusedError{Reason: telemetry.LiveRefusedFeedsPerCredential, Message: fmt.Sprintf(
					"refused: the screens of this display token or sign-in already show %d different views, the most allowed; "+
						"close one of them, or choose a view, window and filters that one of them already shows", limit)}
			}
		}
	}
	if limit := h.opts.MaxFeeds; limit > 0 && h.feeds[key] == nil {
		n := len(h.feeds)
		if cur != nil && len(cur.clients) == 1 {
			n--
		}
		if n >= limit {
			return &RefusedError{Reason: telemetry.LiveRefusedFeedsPerServer, Message: fmt.Sprintf(
				"refused: the server already computes %d different live views, the most allowed; "+
					"choose a view, window and filters that another screen already shows, or try again later", limit)}
		}
	}
	return nil
}

// holdLocked adds d to the clients of c's credential on the feed key.
func (h *Hub) holdLocked(c *Client, key string, d int) {
	if c.credential == "" {
		return
	}
	held := h.held[c.credential]
	if held == nil {
		held = map[string]int{}
		h.held[c.credential] = held
	}
	if held[key] += d; held[key] <= 0 {
		delete(held, key)
	}
	if len(held) == 0 {
		delete(h.held, c.credential)
	}
}

// Leave removes c from its feed (the connection ended) and counts why it was closed. A feed
// with no subscriber left stops.
func (h *Hub) Leave(c *Client, reason CloseReason) {
	c.Close(reason)
	h.closes[c.Reason()].Add(1)
	h.closeCounter[c.Reason()].Inc()
	h.mu.Lock()
	h.removeLocked(c)
	h.mu.Unlock()
}

func (h *Hub) removeLocked(c *Client) {
	f := c.feed
	if f == nil {
		return
	}
	if _, ok := f.clients[c]; ok {
		delete(f.clients, c)
		h.m.LiveClients.Dec()
		h.holdLocked(c, f.sub.Key, -1)
	}
	c.feed = nil
	if len(f.clients) == 0 && h.feeds[f.sub.Key] == f {
		h.stopLocked(f)
	}
}

// stopLocked ends a feed's goroutine, and its queries in flight, and forgets the feed.
func (h *Hub) stopLocked(f *feed) {
	f.stop()
	delete(h.feeds, f.sub.Key)
	h.m.LiveFeeds.Dec()
}

// Close stops every feed and closes every client as going away; connections then send 1001.
// The clients stay counted as live until their connections Leave.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	for _, f := range h.feeds {
		for c := range f.clients {
			c.Close(GoingAway)
		}
		h.stopLocked(f)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// feed is one distinct subscription: one goroutine, one query set per tick.
type feed struct {
	hub     *Hub
	sub     Subscription
	clients map[*Client]struct{} // guarded by hub.mu
	// ctx ends when the feed stops (its last client left): its goroutine returns and its
	// queries in flight, or waiting for a free query, are given up.
	ctx  context.Context
	stop context.CancelFunc
	last atomic.Pointer[frame]

	// Owned by the feed's goroutine.
	seq      uint64
	lastGood *view
	degraded bool
	queries  int // of the last tick, its share of m.LiveTickQueries
}

func (f *feed) run() {
	defer f.hub.wg.Done()
	defer f.stopped()
	// The first tick runs at once, for the screen that is waiting; the following ones every
	// Tick at an offset within the tick that depends on the feed, so that many feeds started
	// together do not all query ClickHouse in the same instant and queue for its connections,
	// or sooner when events land (Options.Landed), MinTick after the previous tick at the
	// earliest. A feed abandoned before its first tick (a screen that subscribed and moved on
	// at once) never queries.
	if f.ctx.Err() != nil {
		return
	}
	opts := f.hub.opts
	landed := f.landed() // taken before the tick's queries: what lands during them ticks again
	f.tick()
	last := time.Now()
	timer := time.NewTimer(tickOffset(f.sub.Key, opts.Tick))
	defer timer.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-timer.C:
		case <-landed:
			if wait := time.Until(last.Add(opts.MinTick)); wait > 0 {
				select {
				case <-f.ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		landed = f.landed()
		f.tick()
		last = time.Now()
		timer.Reset(opts.Tick)
	}
}

// landed is the channel of Options.Landed, or nil (never ready) without it.
func (f *feed) landed() <-chan struct{} {
	if f.hub.opts.Landed == nil {
		return nil
	}
	return f.hub.opts.Landed()
}

// tickOffset spreads feeds over the tick by a hash of their key.
func tickOffset(key string, tick time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(tick))
}

// stopped takes the feed's share out of the gauges its ticks keep.
func (f *feed) stopped() {
	m := f.hub.m
	m.LiveTickQueries.Sub(float64(f.queries))
	if f.degraded {
		m.LiveFeedsDegraded.Dec()
	}
}

// tick runs the feed's queries once and offers the frame to every subscriber.
func (f *feed) tick() {
	h, m := f.hub, f.hub.m
	started := time.Now()
	now := h.opts.Now().UTC()
	ctx, cancel := context.WithTimeout(f.ctx, h.opts.QueryTimeout)
	v, queries, err := buildView(ctx, h.src, f.sub, now, h.opts.Rules)
	cancel()
	h.queries.Add(uint64(queries))
	h.ticks.Add(1)
	m.LiveTicks.Inc()
	m.LiveQueries.Add(float64(queries))
	m.LiveTickQueries.Add(float64(queries - f.queries))
	f.queries = queries
	if f.ctx.Err() != nil {
		// Stopped meanwhile: its queries were given up, and no one waits for its frame.
		m.LiveTickDuration.Observe(time.Since(started).Seconds())
		return
	}
	f.seq++
	// The tick is stamped when its figures are ready, so that a screen's lag behind it is the
	// delivery alone; the window itself ends at now.
	ready := h.opts.Now().UTC()

	// The feed's view, not its first subscriber's: a TV wall and an executive screen share it.
	msg := Message{Seq: f.seq, Feed: f.sub.Key, View: feedView(f.sub.View), Tick: &ready, Alerts: []alert.Alert{},
		Annotations: []annotation.Annotation{}}
	if h.opts.Alerts != nil {
		msg.Alerts = h.opts.Alerts()
	}
	if h.opts.Annotations != nil {
		// The window the trend charts show.
		p := f.sub.Query.Plan(now)
		msg.Annotations = h.opts.Annotations(p.From, p.To, f.sub.Query.Filters.Moment, f.sub.Query.Filters.Channel)
	}
	if err != nil {
		if !f.degraded {
			h.log.Warn("live feed degraded", "feed", f.sub.Key, "err", err)
			m.LiveFeedsDegraded.Inc()
		}
		f.degraded = true
		msg.Degraded, msg.Problem = true, "the database did not answer; showing the last figures"
		if errors.Is(err, errNoQuerySlot) {
			msg.Problem = "the server is busy computing other live views; showing the last figures"
		}
		v = f.lastGood
	} else {
		if f.degraded {
			h.log.Info("live feed recovered", "feed", f.sub.Key)
			m.LiveFeedsDegraded.Dec()
		}
		f.degraded, f.lastGood = false, v
	}
	fr := &frame{feed: f, seq: f.seq}
	if v != nil {
		msg.Data, msg.NewestEvent = v.data, v.newest
		msg.Type, msg.Charts = "snapshot", v.charts
		fr.snapshot = mustJSON(msg)
		msg.Type, msg.Charts = "update", v.updates
		fr.update = mustJSON(msg)
		fr.full = true
	} else {
		msg.Type = "update"
		fr.update = mustJSON(msg)
		fr.snapshot = fr.update
	}
	f.last.Store(fr)
	m.LiveTickDuration.Observe(time.Since(started).Seconds())

	h.mu.Lock()
	clients := make([]*Client, 0, len(f.clients))
	for c := range f.clients {
		clients = append(clients, c)
	}
	h.mu.Unlock()
	for _, c := range clients {
		if !c.offer(fr, h.opts.MaxMissed) {
			c.Close(SlowConsumer)
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("live: message does not marshal: " + err.Error()) // only our own types go in
	}
	return b
}
