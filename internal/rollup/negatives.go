package rollup

import "time"

// How many latest negative moments a query returns: DefaultNegatives when it asks for none or
// fewer than one, never more than MaxNegatives.
const (
	DefaultNegatives = 20
	MaxNegatives     = 100
)

// NegativesLimit clamps a requested number of latest negative moments to 1..MaxNegatives,
// DefaultNegatives for none.
func NegativesLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultNegatives
	case n > MaxNegatives:
		return MaxNegatives
	}
	return n
}

// NegativeEvent is one raw negative moment as the drill-down lists it: the event's own values
// and the rules that made it negative (event.Event.NegativeReasons). It is read from the raw
// events, not from a rollup: the last step of the drill path shows single events.
type NegativeEvent struct {
	EventID    string    `json:"event_id"`
	OccurredAt time.Time `json:"occurred_at"` // to the millisecond
	Moment     string    `json:"moment"`
	Channel    string    `json:"channel"`
	Touchpoint string    `json:"touchpoint"`
	Outcome    string    `json:"outcome,omitempty"`
	CSAT       *uint8    `json:"csat,omitempty"`
	NPS        *uint8    `json:"nps,omitempty"`
	CES        *uint8    `json:"ces,omitempty"`
	Sentiment  *float64  `json:"sentiment,omitempty"`
	WaitMS     *uint32   `json:"wait_ms,omitempty"`
	Region     string    `json:"region,omitempty"`
	Product    string    `json:"product,omitempty"`
	Segment    string    `json:"segment,omitempty"`
	AgentTeam  string    `json:"agent_team,omitempty"`
	JourneyID  string    `json:"journey_id,omitempty"`
	// Reasons name each rule the event broke, e.g. ["csat 2", "outcome abandoned"].
	Reasons []string `json:"reasons"`
}
