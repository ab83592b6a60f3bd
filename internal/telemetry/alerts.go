package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AlertStats describe the alert evaluator.
type AlertStats struct {
	Evaluations, Failures uint64
	LastDuration          time.Duration
	Firing, Pending       int
	// Leader is whether this node records and delivers the alerts (always, on a single node).
	Leader bool
}

// DeliveryStats describe one destination of alerts (a webhook URL or an Alertmanager).
type DeliveryStats struct {
	// Kind is "webhook" or "alertmanager"; URL the destination with any secret hidden.
	Kind, URL                      string
	Sent, Failed, Retries, Dropped uint64
	Queued                         int
}

// WatchAlerts exposes the evaluator's figures and every destination's delivery counts, read
// at each scrape. Call it once.
func (m *Metrics) WatchAlerts(alerts func() AlertStats, delivery func() []DeliveryStats) {
	m.Registry.MustRegister(&alertCollector{alerts: alerts, delivery: delivery})
}

var (
	alertEvaluations = prometheus.NewDesc("truthboard_alert_evaluations_total",
		"Evaluations of the alert rules (one query set each, whatever the number of screens).", nil, nil)
	alertEvaluationFailures = prometheus.NewDesc("truthboard_alert_evaluation_failures_total",
		"Evaluations that could not read the rollups; alerts keep their state.", nil, nil)
	alertEvaluationSeconds = prometheus.NewDesc("truthboard_alert_evaluation_last_seconds",
		"Duration of the last evaluation, queries included.", nil, nil)
	alertsActive = prometheus.NewDesc("truthboard_alerts",
		"Alerts pending or firing now.", []string{"state"}, nil)
	alertLeader = prometheus.NewDesc("truthboard_alert_leader",
		"1 if this node records and delivers the alerts (it holds the cluster's lease, or runs alone), else 0.", nil, nil)
	deliveryLabels   = []string{"kind", "url"}
	alertDeliveries  = prometheus.NewDesc("truthboard_alert_deliveries_total", "Requests a destination accepted.", deliveryLabels, nil)
	alertFailures    = prometheus.NewDesc("truthboard_alert_delivery_failures_total", "Requests to a destination that failed (each is retried with backoff, up to a limit).", deliveryLabels, nil)
	alertRetries     = prometheus.NewDesc("truthboard_alert_delivery_retries_total", "Retried requests to a destination.", deliveryLabels, nil)
	alertDropped     = prometheus.NewDesc("truthboard_alert_delivery_dropped_total", "Alerts dropped for a destination: its queue was full, or it refused them, or it failed past the retries.", deliveryLabels, nil)
	alertQueueLength = prometheus.NewDesc("truthboard_alert_delivery_queued", "Alerts waiting for a destination.", deliveryLabels, nil)
)

type alertCollector struct {
	alerts   func() AlertStats
	delivery func() []DeliveryStats
}

func (c *alertCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{alertEvaluations, alertEvaluationFailures, alertEvaluationSeconds, alertsActive, alertLeader,
		alertDeliveries, alertFailures, alertRetries, alertDropped, alertQueueLength} {
		ch <- d
	}
}

func (c *alertCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.alerts()
	ch <- prometheus.MustNewConstMetric(alertEvaluations, prometheus.CounterValue, float64(a.Evaluations))
	ch <- prometheus.MustNewConstMetric(alertEvaluationFailures, prometheus.CounterValue, float64(a.Failures))
	ch <- prometheus.MustNewConstMetric(alertEvaluationSeconds, prometheus.GaugeValue, a.LastDuration.Seconds())
	ch <- prometheus.MustNewConstMetric(alertsActive, prometheus.GaugeValue, float64(a.Firing), "firing")
	ch <- prometheus.MustNewConstMetric(alertsActive, prometheus.GaugeValue, float64(a.Pending), "pending")
	leader := 0.0
	if a.Leader {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(alertLeader, prometheus.GaugeValue, leader)
	for _, d := range c.delivery() {
		ch <- prometheus.MustNewConstMetric(alertDeliveries, prometheus.CounterValue, float64(d.Sent), d.Kind, d.URL)
		ch <- prometheus.MustNewConstMetric(alertFailures, prometheus.CounterValue, float64(d.Failed), d.Kind, d.URL)
		ch <- prometheus.MustNewConstMetric(alertRetries, prometheus.CounterValue, float64(d.Retries), d.Kind, d.URL)
		ch <- prometheus.MustNewConstMetric(alertDropped, prometheus.CounterValue, float64(d.Dropped), d.Kind, d.URL)
		ch <- prometheus.MustNewConstMetric(alertQueueLength, prometheus.GaugeValue, float64(d.Queued), d.Kind, d.URL)
	}
}
