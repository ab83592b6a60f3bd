package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// TestRecovery works through each fate of a negative moment by hand.
func TestRecovery(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	day := 24 * time.Hour
	ev := func(id, journey, channel string, at time.Time, csat uint8) event.Event {
		return event.Event{EventID: id, OccurredAt: at, Moment: "service", Channel: channel, Touchpoint: "call",
			JourneyID: journey, CSAT: &csat}
	}
	evs := []event.Event{
		// voice: recovered 6 days later (window closed) → recovered.
		ev("v1", "j1", "voice", now.Add(-8*day), 1), ev("v1+", "j1", "web", now.Add(-2*day), 5),
		// voice: the positive event came 7.5 days later → lost.
		ev("v2", "j2", "voice", now.Add(-8*day), 2), ev("v2+", "j2", "web", now.Add(-8*day+180*time.Hour), 5),
		// voice: a positive event before the negative one does not recover it → lost.
		ev("v3-", "j3", "voice", now.Add(-9*day), 5), ev("v3", "j3", "voice", now.Add(-8*day), 1),
		// chat: window still open → pending, even though already recovered.
		ev("c1", "j4", "chat", now.Add(-time.Hour), 1), ev("c1+", "j4", "chat", now.Add(-time.Minute), 5),
		// chat: no journey → cannot be recovered, not counted.
		ev("c2", "", "chat", now.Add(-8*day), 1),
	}
	if err := s.InsertEvents(ctx, evs, now); err != nil {
		t.Fatal(err)
	}
	q := rollup.Query{By: []string{"channel"}}
	p := rollup.Plan{From: now.Add(-10 * day), To: now.Add(time.Second)}
	groups, err := s.Recovery(ctx, q, p, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]rollup.RecoveryGroup{}
	for _, g := range groups {
		got[g.Channel] = g
	}
	want := map[string]rollup.RecoveryGroup{
		"voice": {Channel: "voice", Recovered: 1, Lost: 2},
		"chat":  {Channel: "chat", Pending: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("groups = %+v, want %+v", got, want)
	}
	for ch, w := range want {
		if got[ch] != w {
			t.Errorf("%s: got %+v, want %+v", ch, got[ch], w)
		}
	}
}
