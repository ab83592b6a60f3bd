package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SpoolStats describe the spool on disk, which holds acknowledged events while ClickHouse is
// away.
type SpoolStats struct {
	Segments int
	Bytes    int64
	Events   int64
	// Oldest is when the oldest event still spooled was written; zero when the spool is empty.
	Oldest time.Time
}

// WatchSpool exposes the spool's gauges, read from stats at each scrape (one call per scrape).
// Call it once: a second call panics, as two spools would report the same series.
func (m *Metrics) WatchSpool(stats func() SpoolStats) {
	m.Registry.MustRegister(&spoolCollector{stats: stats, now: m.now})
}

var (
	spoolBytes = prometheus.NewDesc("truthboard_spool_bytes",
		"Bytes of the spool's segment files on disk.", nil, nil)
	spoolSegments = prometheus.NewDesc("truthboard_spool_segments",
		"Segment files in the spool.", nil, nil)
	spoolEvents = prometheus.NewDesc("truthboard_spool_events",
		"Events in the spool, acknowledged and not yet in ClickHouse.", nil, nil)
	spoolOldestAge = prometheus.NewDesc("truthboard_spool_oldest_age_seconds",
		"Age of the oldest event in the spool (0 when it is empty): how far ClickHouse lags behind the acknowledgements.", nil, nil)
)

// spoolCollector reads the spool's figures once per scrape, so the four gauges agree.
type spoolCollector struct {
	stats func() SpoolStats
	now   func() time.Time
}

func (c *spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- spoolBytes
	ch <- spoolSegments
	ch <- spoolEvents
	ch <- spoolOldestAge
}

func (c *spoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	age := 0.0
	if !s.Oldest.IsZero() {
		age = max(c.now().Sub(s.Oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(spoolBytes, prometheus.GaugeValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(spoolSegments, prometheus.GaugeValue, float64(s.Segments))
	ch <- prometheus.MustNewConstMetric(spoolEvents, prometheus.GaugeValue, float64(s.Events))
	ch <- prometheus.MustNewConstMetric(spoolOldestAge, prometheus.GaugeValue, age)
}

// ObserveInsert counts one attempt of the drainer to send a batch to ClickHouse: lookedUp
// events asked about first, inserted new events, taking took (lookup and insert), failed when
// err is not nil.
func (m *Metrics) ObserveInsert(lookedUp, inserted int, took time.Duration, err error) {
	m.InsertDuration.Observe(took.Seconds())
	m.LookedUpEvents.Add(float64(lookedUp))
	if err != nil {
		m.InsertBatches.WithLabelValues(ResultError).Inc()
		return
	}
	m.InsertBatches.WithLabelValues(ResultOK).Inc()
	m.InsertedEvents.Add(float64(inserted))
}
