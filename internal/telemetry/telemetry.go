// Package telemetry defines Truthboard's own metrics, exposed in the Prometheus text format on
// GET /metrics. Every metric is registered on the Metrics' own registry (never the client
// library's global one), beside the Go runtime and process collectors, so tests and several
// servers in one process do not share series.
package telemetry

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Reasons of truthboard_events_rejected_total. A request refused before its events were read
// counts one (bad_body, too_large, too_slow, unauthorized, rate_limited, key_in_flight,
// overloaded); otherwise events
// are counted: each invalid one (invalid_event), and the valid ones of a request that could not
// be made durable (spool_full, unavailable, shutting_down).
const (
	RejectInvalid      = "invalid_event" // an event failed validation (400, or listed in a 207)
	RejectBadBody      = "bad_body"      // the body is not a JSON array or object of events (400)
	RejectTooLarge     = "too_large"     // the body or its event count is over the limit (413)
	RejectUnauthorized = "unauthorized"  // no bearer token, or one that is not valid (401)
	RejectRateLimited  = "rate_limited"  // the key's requests per second are used up (429)
	RejectKeyInFlight  = "key_in_flight" // the key's share of the bodies in flight is used up (429)
	RejectTooSlow      = "too_slow"      // the body arrived slower than the minimum rate (408)
	RejectOverloaded   = "overloaded"    // the bodies in flight are at their bound (503)
	RejectSpoolFull    = "spool_full"    // the spool on disk is at its bound (503)
	RejectUnavailable  = "unavailable"   // ClickHouse does not answer and nothing can hold the events (503)
	RejectShuttingDown = "shutting_down" // the server is stopping (503)
)

// RejectReasons lists every reason of truthboard_events_rejected_total.
var RejectReasons = []string{
	RejectInvalid, RejectBadBody, RejectTooLarge, RejectTooSlow, RejectUnauthorized, RejectRateLimited,
	RejectKeyInFlight, RejectOverloaded, RejectSpoolFull, RejectUnavailable, RejectShuttingDown,
}

// Reasons of truthboard_http_refused_total: requests the HTTP edge refused before their
// handler, outside ingest (whose refusals are in truthboard_events_rejected_total).
const (
	RefusedAuthThrottled  = "auth_throttled"  // the client address presented too many wrong credentials (429)
	RefusedExpect         = "expect_refused"  // Expect: 100-continue without a valid ingest key (417)
	RefusedBodyTooLarge   = "body_too_large"  // a body over 64 KiB outside POST /v1/events, multipart included (413)
	RefusedReadBusy       = "read_busy"       // GET /v1/metrics or /v1/consistency found the read API's queries all in use (503)
	RefusedAnnotationRate = "annotation_rate" // a credential's annotation changes past their rate per minute (429)
	RefusedHashingBusy    = "hashing_busy"    // a sign-in or new password found the password hashes all in use for 5 s (503)
)

// RefusedReasons lists every reason of truthboard_http_refused_total.
var RefusedReasons = []string{RefusedAuthThrottled, RefusedExpect, RefusedBodyTooLarge, RefusedReadBusy, RefusedAnnotationRate, RefusedHashingBusy}

// Reasons of truthboard_live_refused_total.
const (
	LiveRefusedConnsPerCredential = "conns_per_credential" // upgrade refused: the credential's connections are at their bound (429)
	LiveRefusedConnsPerAddress    = "conns_per_address"    // upgrade refused: the address's connections are at their bound (429)
	LiveRefusedFeedsPerCredential = "feeds_per_credential" // subscribe refused: the credential's distinct feeds are at their bound
	LiveRefusedFeedsPerServer     = "feeds_per_server"     // subscribe refused: the server's distinct feeds are at their bound
)

// LiveRefusedReasons lists every reason of truthboard_live_refused_total.
var LiveRefusedReasons = []string{LiveRefusedConnsPerCredential, LiveRefusedConnsPerAddress, LiveRefusedFeedsPerCredential, LiveRefusedFeedsPerServer}

// Results of truthboard_insert_batches_total.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// Metrics are the server's metrics. Components update the fields they own; nothing else reads
// them but the registry.
type Metrics struct {
	// Registry holds every metric below and the Go and process collectors.
	Registry *prometheus.Registry

	// Ingest.
	EventsAccepted  prometheus.Counter     // truthboard_events_accepted_total
	EventsRejected  *prometheus.CounterVec // truthboard_events_rejected_total{reason}
	EventsDuplicate prometheus.Counter     // truthboard_events_duplicate_total
	InsertBatches   *prometheus.CounterVec // truthboard_insert_batches_total{result}
	InsertedEvents  prometheus.Counter     // truthboard_inserted_events_total
	InsertDuration  prometheus.Histogram   // truthboard_insert_duration_seconds
	LookedUpEvents  prometheus.Counter     // truthboard_looked_up_events_total
	// Ingest requests held back while the drainer was behind (ingest.Writer.Pace).
	IngestPaced        prometheus.Counter // truthboard_ingest_paced_requests_total
	IngestPacedSeconds prometheus.Counter // truthboard_ingest_paced_seconds_total

	// The HTTP edge's defences.
	AuthFailures prometheus.Counter     // truthboard_auth_failures_total
	HTTPRefused  *prometheus.CounterVec // truthboard_http_refused_total{reason}

	// Live screens (internal/live).
	LiveClients       prometheus.Gauge       // truthboard_live_clients
	LiveCloses        *prometheus.CounterVec // truthboard_live_closes_total{reason}
	LiveFeeds         prometheus.Gauge       // truthboard_live_feeds
	LiveFeedsDegraded prometheus.Gauge       // truthboard_live_feeds_degraded
	LiveRefused       *prometheus.CounterVec // truthboard_live_refused_total{reason}
	LiveTicks         prometheus.Counter     // truthboard_live_ticks_total
	LiveQueries       prometheus.Counter     // truthboard_live_queries_total
	LiveTickQueries   prometheus.Gauge       // truthboard_live_tick_queries
	LiveQueryDuration prometheus.Histogram   // truthboard_live_query_duration_seconds
	LiveTickDuration  prometheus.Histogram   // truthboard_live_tick_duration_seconds

	// The rollup audit (audit.go).
	Audit AuditMetrics

	now func() time.Time // the clock of the spool's age
}

// New returns the metrics, registered, every labelled series at 0.
func New() *Metrics {
	r := prometheus.NewRegistry()
	f := factory{r}
	m := &Metrics{
		Registry: r,
		now:      time.Now,

		EventsAccepted: f.counter("truthboard_events_accepted_total",
			"Events made durable and acknowledged with 202 (in ClickHouse, or in the spool while it is away)."),
		EventsRejected: f.counterVec("truthboard_events_rejected_total",
			"Ingest refusals by reason: events (invalid_event; and the valid events of a request not made durable: spool_full, unavailable, shutting_down), or requests whose events were not read (bad_body, too_large, too_slow, unauthorized, rate_limited, key_in_flight, overloaded).",
			"reason"),
		EventsDuplicate: f.counter("truthboard_events_duplicate_total",
			"Events acknowledged but not stored again because their event_id was already stored."),
		InsertBatches: f.counterVec("truthboard_insert_batches_total",
			"Batches the writer sent to ClickHouse, by result (ok or error).",
			"result"),
		InsertedEvents: f.counter("truthboard_inserted_events_total",
			"Rows written to ClickHouse's raw events table."),
		InsertDuration: f.histogram("truthboard_insert_duration_seconds",
			"Time of one batch written to ClickHouse: the duplicate lookup and the insert.",
			prometheus.ExponentialBuckets(0.005, 2, 13)), // 5 ms to 20 s
		LookedUpEvents: f.counter("truthboard_looked_up_events_total",
			"Events the writer asked ClickHouse about before inserting them, as they may be stored already (retries, late events, the first batch after a start or a failed attempt)."),
		IngestPaced: f.counter("truthboard_ingest_paced_requests_total",
			"Ingest requests that waited for the drainer before being read, because the spool held more than -pace-backlog events while ClickHouse took inserts."),
		IngestPacedSeconds: f.counter("truthboard_ingest_paced_seconds_total",
			"Time ingest requests waited for the drainer (truthboard_ingest_paced_requests_total), in seconds: added to their answers' latency."),

		AuthFailures: f.counter("truthboard_auth_failures_total",
			"Wrong credentials presented: bearer tokens, ?token= and sign-in forms that match no key or token."),
		HTTPRefused: f.counterVec("truthboard_http_refused_total",
			"Requests refused by the HTTP edge's defences outside ingest, by reason (auth_throttled, expect_refused, body_too_large, read_busy, annotation_rate, hashing_busy).",
			"reason"),

		LiveClients: f.gauge("truthboard_live_clients",
			"Live screens subscribed to a feed."),
		LiveCloses: f.counterVec("truthboard_live_closes_total",
			"Live screens whose connection ended, by reason (client_gone, going_away, slow_consumer, message_too_big, revoked, subscribing_too_fast).",
			"reason"),
		LiveFeeds: f.gauge("truthboard_live_feeds",
			"Live feeds running: distinct subscriptions (view, window and filters), each querying ClickHouse once per tick however many screens share it."),
		LiveFeedsDegraded: f.gauge("truthboard_live_feeds_degraded",
			"Live feeds whose last tick failed and which show their last good figures."),
		LiveRefused: f.counterVec("truthboard_live_refused_total",
			"Live connections and subscriptions refused by a bound, by reason (conns_per_credential, conns_per_address: the upgrade got 429; feeds_per_credential, feeds_per_server: the subscribe got an error message).",
			"reason"),
		LiveTicks: f.counter("truthboard_live_ticks_total",
			"Ticks run by the live feeds, all feeds together."),
		LiveQueries: f.counter("truthboard_live_queries_total",
			"ClickHouse queries run by the live feeds."),
		LiveTickQueries: f.gauge("truthboard_live_tick_queries",
			"ClickHouse queries the live feeds run per tick: the sum over the feeds of the queries of each one's last tick."),
		LiveQueryDuration: f.histogram("truthboard_live_query_duration_seconds",
			"Time of one ClickHouse query of a live feed.",
			prometheus.ExponentialBuckets(0.001, 2, 13)), // 1 ms to 4 s
		LiveTickDuration: f.histogram("truthboard_live_tick_duration_seconds",
			"Time of one live feed's tick: its queries and the encoding of its frame.",
			prometheus.ExponentialBuckets(0.001, 2, 13)),
	}
	m.Audit = newAuditMetrics(f)
	for _, reason := range RejectReasons {
		m.EventsRejected.WithLabelValues(reason)
	}
	for _, reason := range RefusedReasons {
		m.HTTPRefused.WithLabelValues(reason)
	}
	for _, reason := range LiveRefusedReasons {
		m.LiveRefused.WithLabelValues(reason)
	}
	m.InsertBatches.WithLabelValues(ResultOK)
	m.InsertBatches.WithLabelValues(ResultError)
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// factory creates metrics registered on one registry.
type factory struct{ r *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.r.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help, label string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	f.r.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.r.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.r.MustRegister(h)
	return h
}
