package screen

import (
	"context"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
)

// OfflineAlert is the alertname of a paired screen gone silent.
const OfflineAlert = "ScreenOffline"

// OfflineAlerts raises an alert for every paired screen silent for After (see Silent),
// through the alert engine: the alert evaluator reads it at every evaluation
// (internal/alert/evaluator.Observer). An alert resolves when its screen is heard again or is
// unpaired.
type OfflineAlerts struct {
	Store interface {
		Screens(ctx context.Context) ([]Screen, error)
	}
	After time.Duration
}

// Alertname names the alerts: OfflineAlert.
func (OfflineAlerts) Alertname() string { return OfflineAlert }

// Page is the screens page, where the alerts show by their screen.
func (OfflineAlerts) Page() string { return "/screens" }

// Observe returns a condition per silent screen, labelled with its id, name and group.
// Renaming or regrouping a silent screen resolves its alert and raises one of the new labels.
func (o OfflineAlerts) Observe(ctx context.Context, now time.Time) ([]alert.Condition, error) {
	all, err := o.Store.Screens(ctx)
	if err != nil {
		return nil, err
	}
	var out []alert.Condition
	for _, s := range all {
		if !Silent(s, now, o.After) {
			continue
		}
		out = append(out, OfflineCondition(s))
	}
	return out, nil
}

// OfflineCondition is the alert of screen s gone silent.
func OfflineCondition(s Screen) alert.Condition {
	since := LastSeen(s).UTC()
	labels := map[string]string{"screen": s.ID, "screen_name": s.Name, "severity": "warning"}
	if s.Place.Group != "" {
		labels["group"] = s.Place.Group
	}
	where := ""
	if s.Heartbeat.Node != "" {
		where = ", last connected to " + s.Heartbeat.Node
	}
	return alert.Condition{
		Labels: labels,
		Annotations: map[string]string{
			"summary": `Screen "` + s.Name + `" is offline: silent since ` + since.Format(time.RFC3339),
			"description": "No heartbeat from screen " + s.ID + " since " + since.Format(time.RFC3339) + where +
				" (screens send one every 5 s). It resolves when the screen reconnects or is unpaired.",
			"since": since.Format(time.RFC3339),
		},
		Since: since,
	}
}
