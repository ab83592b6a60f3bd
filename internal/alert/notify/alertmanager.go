package notify

import (
	"context"
	"encoding/json"
	"time"
)

// AlertmanagerConfig configures the Alertmanager sender.
type AlertmanagerConfig struct {
	// URLs are Alertmanager base URLs (from ParseAlertmanagerURLs; at least one). Every alert
	// goes to each: list every instance of an Alertmanager cluster, which deduplicates the
	// notifications itself.
	URLs []string
	// ResendInterval is how often alerts still firing are sent again (default 1m, Prometheus'
	// --rules.alert.resend-delay), as are resolved ones for 15 minutes after they resolved.
	ResendInterval time.Duration
	// BatchSize bounds the alerts of one request (default 256).
	BatchSize int
	Delivery
}

// Alertmanager pushes alerts to Prometheus Alertmanager's API v2 (POST /api/v2/alerts), as
// Prometheus does: Alertmanager then groups, silences, inhibits and routes them to Slack, Teams,
// PagerDuty, e-mail or any webhook.
//
// An alert changing status is sent at once. Alertmanager resolves by itself an alert that is
// not sent again before its endsAt, so while an alert fires it is sent again every
// ResendInterval with endsAt 4 intervals ahead: a firing alert survives three lost resends,
// and when Truthboard stops, its alerts resolve in Alertmanager within 4 intervals. A resolved
// alert is sent with endsAt at its resolve time, and again every ResendInterval for 15 minutes,
// in case Alertmanager missed it. Giving the same alert again in the same status sends
// nothing until the next resend, so the caller may give every alert at every tick.
//
// A destination's queue holds each alert once: a newer state of an alert replaces the waiting
// one.
type Alertmanager struct {
	*core
	cfg   AlertmanagerConfig
	dests []*destination[postableAlert]
}

// postableAlert is Alertmanager API v2's postableAlert.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// NewAlertmanager makes the sender; Start starts its workers and its resends.
func NewAlertmanager(cfg AlertmanagerConfig) (*Alertmanager, error) {
	c, err := newCore("alertmanager", cfg.URLs, cfg.Delivery)
	if err != nil {
		return nil, err
	}
	if cfg.ResendInterval <= 0 {
		cfg.ResendInterval = time.Minute
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 256
	}
	m := &Alertmanager{core: c, cfg: cfg}
	for _, u := range cfg.URLs {
		d := newDestination("alertmanager", u+"/api/v2/alerts", &c.opts, cfg.BatchSize,
			func(batch []postableAlert) ([]byte, error) { return json.Marshal(batch) })
		m.dests = append(m.dests, d)
		c.ends = append(c.ends, d)
	}
	return m, nil
}

// Start starts one worker per Alertmanager and the periodic resend. Alerts given before Start
// wait in the queues.
func (m *Alertmanager) Start() { m.start(m.resendLoop) }

// Send queues the alerts whose status changed for every Alertmanager and returns at once: it
// never waits for the network.
func (m *Alertmanager) Send(alerts []Alert) {
	changed := m.take(alerts)
	now := time.Now()
	for i := range changed {
		m.push(&changed[i], now)
	}
}

// Close stops the resends and taking alerts, delivers what waits until ctx ends or an
// Alertmanager fails, and returns once every goroutine has returned. Its error counts the
// alerts that were not delivered. Firing alerts resolve in Alertmanager at their endsAt unless
// another Truthboard keeps sending them.
func (m *Alertmanager) Close(ctx context.Context) error { return m.close(ctx) }

// Stats are the counts of every Alertmanager, in the order of AlertmanagerConfig.URLs.
func (m *Alertmanager) Stats() []DestinationStats { return m.stats() }

func (m *Alertmanager) push(a *Alert, now time.Time) {
	p := postableAlert{
		Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, EndsAt: a.EndsAt,
		GeneratorURL: a.GeneratorURL,
	}
	if a.Status == StatusFiring {
		// Prometheus' margin (rules/alerting.go, ValidUntil): room for lost resends.
		p.EndsAt = now.Add(4 * m.cfg.ResendInterval)
	}
	for _, d := range m.dests {
		d.push(a.Fingerprint, 1, p)
	}
}

// resendLoop sends every alert of the ledger again each ResendInterval.
func (m *Alertmanager) resendLoop(ctx context.Context, stop <-chan struct{}) {
	tick := time.NewTicker(m.cfg.ResendInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			m.resend()
		case <-stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (m *Alertmanager) resend() {
	now := time.Now()
	m.mu.Lock()
	m.ledger.prune(now)
	alerts := make([]Alert, 0, len(m.ledger.alerts))
	for _, t := range m.ledger.alerts {
		alerts = append(alerts, t.alert)
	}
	m.mu.Unlock()
	for i := range alerts {
		m.push(&alerts[i], now)
	}
}
