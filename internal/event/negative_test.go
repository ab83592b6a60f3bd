package event

import (
	"slices"
	"testing"
)

func TestNegativeReasons(t *testing.T) {
	u := func(v uint8) *uint8 { return &v }
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name string
		e    Event
		want []string
	}{
		{"nothing", Event{}, nil},
		{"good scores", Event{CSAT: u(3), NPS: u(7), CES: u(4), Sentiment: f(-0.24), Outcome: "resolved"}, nil},
		{"csat", Event{CSAT: u(2)}, []string{"csat 2"}},
		{"nps", Event{NPS: u(6)}, []string{"nps 6"}},
		{"nps zero", Event{NPS: u(0)}, []string{"nps 0"}},
		{"ces", Event{CES: u(3)}, []string{"ces 3"}},
		{"sentiment", Event{Sentiment: f(-0.25)}, []string{"sentiment -0.25"}},
		{"abandoned", Event{Outcome: "abandoned"}, []string{"outcome abandoned"}},
		{"failed", Event{Outcome: "failed"}, []string{"outcome failed"}},
		{"unresolved", Event{Outcome: "unresolved"}, []string{"outcome unresolved"}},
		{"escalated is not negative", Event{Outcome: "escalated"}, nil},
		{"all", Event{CSAT: u(1), NPS: u(3), CES: u(1), Sentiment: f(-1), Outcome: "failed"},
			[]string{"csat 1", "nps 3", "ces 1", "sentiment -1", "outcome failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.e.NegativeReasons()
			if !slices.Equal(got, tc.want) {
				t.Errorf("reasons %q, want %q", got, tc.want)
			}
			if tc.e.Negative() != (len(tc.want) > 0) {
				t.Errorf("Negative() = %v with reasons %q", tc.e.Negative(), got)
			}
		})
	}
}
