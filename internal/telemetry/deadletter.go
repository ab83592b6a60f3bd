package telemetry

import "github.com/prometheus/client_golang/prometheus"

// DeadLetterStats describe what the drainer kept aside because ClickHouse can never take it:
// spool records that cannot be decoded and events ClickHouse refused for their values.
type DeadLetterStats struct {
	Records int   // entries kept
	Events  int64 // events in them
	Bytes   int64
	// Since the server started: events put aside, by reason, and attempts to put something
	// aside that the dead-letter's quota refused (it then waits in the spool).
	UndecodableEvents int64
	RefusedEvents     int64
	Full              int64
}

// Reasons of truthboard_events_dead_lettered_total.
const (
	DeadLetterUndecodable = "undecodable" // a spool record whose events cannot be decoded
	DeadLetterRefused     = "refused"     // an event ClickHouse refused for its values
)

// WatchDeadLetter exposes the dead-letter's gauges and counters, read from stats at each
// scrape. Call it once.
func (m *Metrics) WatchDeadLetter(stats func() DeadLetterStats) {
	m.Registry.MustRegister(&deadLetterCollector{stats: stats})
}

var (
	deadLetterRecords = prometheus.NewDesc("truthboard_dead_letter_records",
		"Entries in the dead-letter: spool records that cannot be decoded and events ClickHouse refused, kept on disk for an operator to replay.", nil, nil)
	deadLetterEvents = prometheus.NewDesc("truthboard_dead_letter_events",
		"Events in the dead-letter's entries.", nil, nil)
	deadLetterBytes = prometheus.NewDesc("truthboard_dead_letter_bytes",
		"Bytes of the dead-letter's files on disk.", nil, nil)
	deadLetterAdded = prometheus.NewDesc("truthboard_events_dead_lettered_total",
		"Events put in the dead-letter since the server started, by reason (undecodable, refused); the records behind them went on to ClickHouse.", []string{"reason"}, nil)
	deadLetterFull = prometheus.NewDesc("truthboard_dead_letter_full_total",
		"Attempts to put something in the dead-letter that its quota refused: it waits in the spool, with everything behind it, until room is made.", nil, nil)
)

// deadLetterCollector reads the dead-letter's figures once per scrape.
type deadLetterCollector struct {
	stats func() DeadLetterStats
}

func (c *deadLetterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- deadLetterRecords
	ch <- deadLetterEvents
	ch <- deadLetterBytes
	ch <- deadLetterAdded
	ch <- deadLetterFull
}

func (c *deadLetterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(deadLetterRecords, prometheus.GaugeValue, float64(s.Records))
	ch <- prometheus.MustNewConstMetric(deadLetterEvents, prometheus.GaugeValue, float64(s.Events))
	ch <- prometheus.MustNewConstMetric(deadLetterBytes, prometheus.GaugeValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(deadLetterAdded, prometheus.CounterValue, float64(s.UndecodableEvents), DeadLetterUndecodable)
	ch <- prometheus.MustNewConstMetric(deadLetterAdded, prometheus.CounterValue, float64(s.RefusedEvents), DeadLetterRefused)
	ch <- prometheus.MustNewConstMetric(deadLetterFull, prometheus.CounterValue, float64(s.Full))
}
