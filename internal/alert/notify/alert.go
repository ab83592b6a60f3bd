// Package notify delivers alerts to where people already look: any HTTP endpoint that takes
// Prometheus Alertmanager's webhook payload (version 4), and Prometheus Alertmanager itself
// through its API v2 (POST /api/v2/alerts), which routes them on to Slack, Teams, PagerDuty,
// e-mail…
//
// Both senders take alerts from the caller (the alert engine's tick) without ever blocking
// it: Send only puts them in a bounded queue per destination, and one worker per destination
// delivers them in order, with a timeout per request and retries with exponential backoff and
// jitter. A full queue drops its oldest alerts and counts them. Stats gives the counts per
// destination for /metrics.
//
// The package has its own Alert type so that delivery depends on nothing of the engine.
package notify

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
)

// Status is an alert's state as Alertmanager names it.
type Status string

const (
	// StatusFiring is an alert whose condition holds.
	StatusFiring Status = "firing"
	// StatusResolved is an alert whose condition stopped holding.
	StatusResolved Status = "resolved"
)

// Alert is one alert as it is delivered. Its identity is its labels: two alerts with the same
// labels are the same alert, in another state or with other annotations.
type Alert struct {
	// Labels identify the alert and are what Alertmanager routes, groups and silences on.
	// "alertname" is required; Truthboard's alerts also carry "metric", "moment" and
	// "channel". Names must match [a-zA-Z_][a-zA-Z0-9_]* (Alertmanager refuses others).
	Labels map[string]string
	// Annotations are for people: "summary", "description", "runbook_url"…
	Annotations map[string]string
	// StartsAt is when the alert started firing. Zero: when it was first sent.
	StartsAt time.Time
	// EndsAt is when a resolved alert stopped firing. Zero for a resolved alert: when it was
	// sent. Ignored while firing (the Alertmanager sender sets its own, see Alertmanager).
	EndsAt time.Time
	// GeneratorURL links back to the view that shows the alert's figures.
	GeneratorURL string
	// Fingerprint identifies the alert in payloads. Empty: Fingerprint(Labels), the value
	// Alertmanager computes for the same labels.
	Fingerprint string
	// Status is StatusFiring or StatusResolved.
	Status Status
}

// Fingerprint is the identity Alertmanager gives an alert with these labels (a 64-bit FNV-1a
// hash of the sorted label pairs, in hex), so that payloads sent directly and those sent through
// Alertmanager name an alert the same way.
func Fingerprint(labels map[string]string) string {
	return labelSet(labels).Fingerprint().String()
}

func labelSet(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// validate says why Alertmanager would refuse a, before a refusal of one alert makes a whole
// batch fail.
func validate(a *Alert) error {
	if a.Status != StatusFiring && a.Status != StatusResolved {
		return fmt.Errorf("status %q: want %q or %q", a.Status, StatusFiring, StatusResolved)
	}
	if a.Labels["alertname"] == "" {
		return errors.New(`no "alertname" label`)
	}
	if err := validNames("label", a.Labels); err != nil {
		return err
	}
	if err := validNames("annotation", a.Annotations); err != nil {
		return err
	}
	// Alertmanager checks generatorURL's format and refuses the whole batch if one is bad.
	if _, err := url.Parse(a.GeneratorURL); err != nil {
		return fmt.Errorf("generator URL: %w", unwrapURLError(err))
	}
	return nil
}

func validNames(what string, m map[string]string) error {
	for k, v := range m {
		// The legacy name rule: Alertmanager 0.25 (Debian's) accepts nothing else.
		if !model.LegacyValidation.IsValidLabelName(k) {
			return fmt.Errorf("%s name %q: use letters, digits and _ only, not starting with a digit", what, k)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("%s %s: value is not valid UTF-8", what, k)
		}
	}
	return nil
}

// ledger is what a sender remembers of the alerts it has taken, by fingerprint, so that a
// caller may give the same alert on every tick without it being notified again. It holds the
// firing alerts until they are given as resolved, and resolved ones for a retention period; the
// caller's rules bound how many there are.
type ledger struct {
	alerts    map[string]*tracked
	retention time.Duration
}

type tracked struct {
	alert Alert
	// since is when the alert entered its current status.
	since time.Time
}

func newLedger(retention time.Duration) *ledger {
	return &ledger{alerts: map[string]*tracked{}, retention: retention}
}

// take records a (valid) alert and says whether its status changed: a new firing alert, a
// firing one resolved, a resolved one firing again, or a resolved one never seen (a resolve
// after a restart, which must still reach who saw it fire). It returns a normalized.
func (l *ledger) take(a Alert, now time.Time) (Alert, bool) {
	if a.Fingerprint == "" {
		a.Fingerprint = Fingerprint(a.Labels)
	}
	prev := l.alerts[a.Fingerprint]
	if prev != nil && a.StartsAt.IsZero() {
		a.StartsAt = prev.alert.StartsAt
	}
	a = normalize(a, now)
	if prev != nil && prev.alert.Status == a.Status {
		if a.Status == StatusFiring {
			prev.alert = a // the newest annotations go out with the next resend
		}
		return a, false
	}
	l.alerts[a.Fingerprint] = &tracked{alert: a, since: now}
	return a, true
}

// prune forgets resolved alerts older than the retention.
func (l *ledger) prune(now time.Time) {
	for fp, t := range l.alerts {
		if t.alert.Status == StatusResolved && now.Sub(t.since) > l.retention {
			delete(l.alerts, fp)
		}
	}
}

// normalize fills in what the caller may leave empty and copies the maps, so the caller may
// reuse its own after Send returns.
func normalize(a Alert, now time.Time) Alert {
	a.Labels = maps.Clone(a.Labels)
	a.Annotations = maps.Clone(a.Annotations)
	if a.Annotations == nil {
		a.Annotations = map[string]string{}
	}
	if a.StartsAt.IsZero() {
		a.StartsAt = now
	}
	switch a.Status {
	case StatusFiring:
		a.EndsAt = time.Time{}
	case StatusResolved:
		if a.EndsAt.IsZero() {
			a.EndsAt = now
		}
		// Alertmanager refuses an end before the start.
		if a.EndsAt.Before(a.StartsAt) {
			a.EndsAt = a.StartsAt
		}
	}
	return a
}
