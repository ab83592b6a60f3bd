package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AuditMetrics are the rollup audit's (internal/audit).
type AuditMetrics struct {
	Runs              *prometheus.CounterVec // truthboard_audit_runs_total{result}
	BucketsChecked    prometheus.Counter     // truthboard_audit_buckets_checked_total
	BucketsRepaired   *prometheus.CounterVec // truthboard_audit_buckets_repaired_total{table}
	DuplicatesRemoved prometheus.Counter     // truthboard_audit_duplicates_removed_total
	Duration          prometheus.Histogram   // truthboard_audit_duration_seconds
}

func newAuditMetrics(f factory) AuditMetrics {
	m := AuditMetrics{
		Runs: f.counterVec("truthboard_audit_runs_total",
			"Runs of the rollup audit, by result (ok or error).",
			"result"),
		BucketsChecked: f.counter("truthboard_audit_buckets_checked_total",
			"Time buckets of a rollup table compared with the raw table by the audit (one per table and bucket)."),
		BucketsRepaired: f.counterVec("truthboard_audit_buckets_repaired_total",
			"Time buckets of a rollup table rebuilt from the raw table because they disagreed with it, by table.",
			"table"),
		DuplicatesRemoved: f.counter("truthboard_audit_duplicates_removed_total",
			"Raw rows removed by the audit because an event was stored more than once."),
		Duration: f.histogram("truthboard_audit_duration_seconds",
			"Time of one run of the rollup audit: its comparisons and repairs.",
			prometheus.ExponentialBuckets(0.01, 2, 14)), // 10 ms to 80 s
	}
	m.Runs.WithLabelValues(ResultOK)
	m.Runs.WithLabelValues(ResultError)
	return m
}

// ObserveAudit counts one run of the audit that took took and ended with err.
func (m *AuditMetrics) ObserveAudit(took time.Duration, err error) {
	m.Duration.Observe(took.Seconds())
	if err != nil {
		m.Runs.WithLabelValues(ResultError).Inc()
		return
	}
	m.Runs.WithLabelValues(ResultOK).Inc()
}
