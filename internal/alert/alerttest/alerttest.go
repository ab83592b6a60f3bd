// Package alerttest designs traffic for the tests of alerts: stretches of steady events in one
// moment × channel whose CSAT is exactly what the test says, minute after minute, so that a
// test knows which alert must fire, when, and which must not. The events go into a real
// ClickHouse through internal/store like any others; the rollups fill from them.
package alerttest

import (
	"fmt"
	"math"
	"time"

	"github.com/truthboard/truthboard/internal/event"
)

// Traffic is a stretch of steady traffic in one moment × channel: PerMinute events every
// minute from From (included) to To (excluded), evenly spaced, each with a CSAT answer. A
// share Top2 of them answer 5, spread evenly over the stretch (Bresenham's way, so every
// window of whole minutes has the share as exactly as its size allows); the others answer 3,
// which is neither top-2-box nor a negative moment, so that only CSAT moves: no NPS, CES,
// outcome or wait is given.
type Traffic struct {
	Moment, Channel string
	From, To        time.Time
	PerMinute       int
	Top2            float64
}

// Events are the stretch's events; prefix makes their IDs unique across stretches and runs.
func (tr Traffic) Events(prefix string) []event.Event {
	if tr.PerMinute <= 0 || !tr.To.After(tr.From) {
		return nil
	}
	gap := time.Minute / time.Duration(tr.PerMinute)
	var out []event.Event
	for j, at := 0, tr.From; at.Before(tr.To); j, at = j+1, at.Add(gap) {
		csat := uint8(3)
		if math.Floor(float64(j+1)*tr.Top2+1e-9) > math.Floor(float64(j)*tr.Top2+1e-9) {
			csat = 5
		}
		out = append(out, event.Event{
			EventID:    fmt.Sprintf("%s-%s-%s-%d-%d", prefix, tr.Moment, tr.Channel, tr.From.Unix(), j),
			OccurredAt: at,
			Moment:     tr.Moment,
			Channel:    tr.Channel,
			Touchpoint: "designed",
			CSAT:       &csat,
		})
	}
	return out
}
