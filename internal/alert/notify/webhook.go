package notify

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// WebhookConfig configures the Webhook sender.
type WebhookConfig struct {
	// URLs receive every notification (from ParseWebhookURLs; at least one).
	URLs []string
	// Receiver is the payload's "receiver" (default "truthboard"), which receivers built for
	// Alertmanager use to tell their sources apart.
	Receiver string
	// ExternalURL is the payload's "externalURL": Truthboard's address as its users reach it.
	ExternalURL string
	Delivery
}

// Webhook posts Alertmanager's webhook payload (version 4) to one or more URLs, so that
// anything made to receive Alertmanager's notifications receives Truthboard's directly.
//
// A notification is sent when an alert's status changes: a new firing alert, a resolved one,
// one firing again. Giving the same alert again in the same status sends nothing, so the caller
// may give every alert at every tick. The alerts of one Send are grouped by alertname, one
// payload per group, like Alertmanager with group_by: [alertname]. There is no reminder of an
// alert that keeps firing: route through Alertmanager (repeat_interval) for that.
type Webhook struct {
	*core
	cfg   WebhookConfig
	dests []*destination[[]byte]
}

// NewWebhook makes the sender; Start starts its workers.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	c, err := newCore("webhook", cfg.URLs, cfg.Delivery)
	if err != nil {
		return nil, err
	}
	if cfg.Receiver == "" {
		cfg.Receiver = "truthboard"
	}
	w := &Webhook{core: c, cfg: cfg}
	for _, u := range cfg.URLs {
		// One payload per request: a payload is a notification of its own.
		d := newDestination("webhook", u, &c.opts, 1, func(b [][]byte) ([]byte, error) { return b[0], nil })
		w.dests = append(w.dests, d)
		c.ends = append(c.ends, d)
	}
	return w, nil
}

// Start starts one worker per URL. Alerts given before Start wait in the queues.
func (w *Webhook) Start() { w.start() }

// Send queues a notification of the alerts whose status changed, for every URL, and returns at
// once: it never waits for the network.
func (w *Webhook) Send(alerts []Alert) {
	changed := w.take(alerts)
	if len(changed) == 0 {
		return
	}
	for _, p := range webhookPayloads(changed, w.cfg.Receiver, w.cfg.ExternalURL, w.opts.QueueSize) {
		body, err := json.Marshal(p)
		if err != nil { // maps of strings and times always encode
			panic("notify: encode webhook payload: " + err.Error())
		}
		n := len(p.Alerts)
		for _, d := range w.dests {
			d.push("", n, body)
			if p.TruncatedAlerts > 0 {
				d.drop(int(p.TruncatedAlerts))
			}
		}
	}
}

// Close stops taking alerts, delivers what waits until ctx ends or a URL fails, and returns
// once every worker has returned. Its error counts the alerts that were not delivered.
func (w *Webhook) Close(ctx context.Context) error { return w.close(ctx) }

// Stats are the counts of every URL, in the order of WebhookConfig.URLs.
func (w *Webhook) Stats() []DestinationStats { return w.stats() }

// WebhookPayload is Alertmanager's webhook message, version 4 (its notify/webhook package),
// field for field and in its order: what every webhook URL receives, exported for receivers
// written in Go (and tests) to decode.
type WebhookPayload struct {
	Receiver          string            `json:"receiver"`
	Status            Status            `json:"status"`
	Alerts            []WebhookAlert    `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
}

// WebhookAlert is one alert of a WebhookPayload.
type WebhookAlert struct {
	Status       Status            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // zero while firing, as Alertmanager sends it
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// webhookPayloads groups alerts by alertname (in alphabetical order), at most maxAlerts each:
// the rest of a group is cut and counted in truncatedAlerts, as Alertmanager's max_alerts does.
func webhookPayloads(alerts []Alert, receiver, externalURL string, maxAlerts int) []WebhookPayload {
	groups := map[string][]Alert{}
	for _, a := range alerts {
		groups[a.Labels["alertname"]] = append(groups[a.Labels["alertname"]], a)
	}
	var out []WebhookPayload
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		group := groups[name]
		groupLabels := map[string]string{"alertname": name}
		p := WebhookPayload{
			Receiver:          receiver,
			Status:            StatusResolved,
			GroupLabels:       groupLabels,
			CommonLabels:      common(group, func(a *Alert) map[string]string { return a.Labels }),
			CommonAnnotations: common(group, func(a *Alert) map[string]string { return a.Annotations }),
			ExternalURL:       externalURL,
			Version:           "4",
			// Alertmanager's form: the route's matchers ({} for the root), then the group's labels.
			GroupKey: "{}:" + labelSet(groupLabels).String(),
		}
		if len(group) > maxAlerts {
			p.TruncatedAlerts = uint64(len(group) - maxAlerts)
			group = group[:maxAlerts]
		}
		for _, a := range group {
			if a.Status == StatusFiring {
				p.Status = StatusFiring
			}
			p.Alerts = append(p.Alerts, WebhookAlert{
				Status: a.Status, Labels: a.Labels, Annotations: a.Annotations,
				StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL,
				Fingerprint: a.Fingerprint,
			})
		}
		out = append(out, p)
	}
	return out
}

// common is the pairs that every alert's map has, as Alertmanager computes commonLabels.
func common(alerts []Alert, of func(*Alert) map[string]string) map[string]string {
	out := maps.Clone(of(&alerts[0]))
	if out == nil {
		out = map[string]string{}
	}
	for i := 1; i < len(alerts); i++ {
		m := of(&alerts[i])
		maps.DeleteFunc(out, func(k, v string) bool { w, ok := m[k]; return !ok || w != v })
	}
	return out
}
