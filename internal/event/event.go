// Package event holds the customer touchpoint event ("moment of truth") as it is sent to
// POST /v1/events, its vocabulary and its validation. It is pure code: no I/O, no HTTP, no
// database, so every other package can rely on an Event that passed Validate.
package event

import (
	"strconv"
	"time"
)

// The vocabulary of the domain. The order of each list is the order the dashboards show and
// the order of the ClickHouse Enum8 values in clickhouse/migrations (a test keeps them equal).
var (
	// Moments in journey order: zero, first, second and third moment of truth, then service
	// (contact-centre interactions at any point).
	Moments = []string{"zmot", "fmot", "smot", "tmot", "service"}
	// Stages of the customer journey.
	Stages = []string{"initial_contact", "purchase", "delivery_installation", "service_interaction", "post_purchase_follow_up"}
	// Channels through which a customer meets the company.
	Channels = []string{"web", "app", "store", "voice", "ivr", "chat", "messaging", "email", "social", "review_site", "field_service"}
	// Outcomes of an interaction.
	Outcomes = []string{"resolved", "unresolved", "abandoned", "transferred", "escalated", "completed", "failed"}
)

// Limits of a single event, from the product specification.
const (
	MaxIDLen         = 100 // event_id and touchpoint
	MaxRefLen        = 256 // customer_id, journey_id
	MaxDimensionLen  = 64  // region, product, segment, agent_team
	MaxAttributes    = 25
	MaxAttrKeyLen    = 40
	MaxAttrValueLen  = 100
	MaxDurationMS    = 86_400_000 // wait_ms, handle_ms
	MaxFutureSkew    = 5 * time.Minute
	DefaultRetention = 30 * 24 * time.Hour
)

// Event is one customer touchpoint. Optional numeric fields are pointers: absent is not zero.
type Event struct {
	EventID    string            `json:"event_id"`
	OccurredAt time.Time         `json:"occurred_at"`
	Moment     string            `json:"moment"`
	Channel    string            `json:"channel"`
	Touchpoint string            `json:"touchpoint"`
	Stage      string            `json:"stage,omitempty"`
	Outcome    string            `json:"outcome,omitempty"`
	CustomerID string            `json:"customer_id,omitempty"`
	JourneyID  string            `json:"journey_id,omitempty"`
	CSAT       *uint8            `json:"csat,omitempty"`      // 1–5
	NPS        *uint8            `json:"nps,omitempty"`       // 0–10
	CES        *uint8            `json:"ces,omitempty"`       // 1–7
	Sentiment  *float64          `json:"sentiment,omitempty"` // -1..1
	WaitMS     *uint32           `json:"wait_ms,omitempty"`
	HandleMS   *uint32           `json:"handle_ms,omitempty"`
	Region     string            `json:"region,omitempty"`
	Product    string            `json:"product,omitempty"`
	Segment    string            `json:"segment,omitempty"`
	AgentTeam  string            `json:"agent_team,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// negativeRules are the rules of a negative moment, in the order NegativeReasons gives them:
// csat <= 2, nps <= 6, ces <= 3, sentiment <= -0.25, or an outcome of abandoned, failed or
// unresolved. Negative and NegativeReasons both read this one list, so they cannot disagree.
var negativeRules = []struct {
	hit    func(e *Event) bool
	reason func(e *Event) string
}{
	{func(e *Event) bool { return e.CSAT != nil && *e.CSAT <= 2 },
		func(e *Event) string { return "csat " + strconv.Itoa(int(*e.CSAT)) }},
	{func(e *Event) bool { return e.NPS != nil && *e.NPS <= 6 },
		func(e *Event) string { return "nps " + strconv.Itoa(int(*e.NPS)) }},
	{func(e *Event) bool { return e.CES != nil && *e.CES <= 3 },
		func(e *Event) string { return "ces " + strconv.Itoa(int(*e.CES)) }},
	{func(e *Event) bool { return e.Sentiment != nil && *e.Sentiment <= -0.25 },
		func(e *Event) string { return "sentiment " + strconv.FormatFloat(*e.Sentiment, 'f', -1, 64) }},
	{func(e *Event) bool {
		return e.Outcome == "abandoned" || e.Outcome == "failed" || e.Outcome == "unresolved"
	}, func(e *Event) string { return "outcome " + e.Outcome }},
}

// Negative reports whether the event is a negative moment: csat <= 2, nps <= 6, ces <= 3,
// sentiment <= -0.25, or an outcome of abandoned, failed or unresolved.
func (e *Event) Negative() bool {
	for _, r := range negativeRules {
		if r.hit(e) {
			return true
		}
	}
	return false
}

// NegativeReasons names every rule that makes the event a negative moment, with the value that
// broke it ("csat 2", "nps 4", "ces 3", "sentiment -0.5", "outcome abandoned"), in that order;
// nil when the event is not negative.
func (e *Event) NegativeReasons() []string {
	var out []string
	for _, r := range negativeRules {
		if r.hit(e) {
			out = append(out, r.reason(e))
		}
	}
	return out
}

// Positive reports whether the event recovers an earlier negative moment of its journey:
// csat >= 4, nps >= 7, ces >= 5, or outcome resolved.
func (e *Event) Positive() bool {
	return e.CSAT != nil && *e.CSAT >= 4 ||
		e.NPS != nil && *e.NPS >= 7 ||
		e.CES != nil && *e.CES >= 5 ||
		e.Outcome == "resolved"
}

// Key identifies an event for duplicate detection: its event_id and the second it occurred in.
// A retry re-sends the same event, so it carries the same time; keying on the time too lets a
// lookup of stored events use their sort order (occurred_at, event_id) instead of a scan.
type Key struct {
	EventID string
	Second  int64 // Unix seconds of occurred_at
}

// Key is the duplicate-detection key of the event.
func (e *Event) Key() Key { return Key{EventID: e.EventID, Second: e.OccurredAt.Unix()} }
