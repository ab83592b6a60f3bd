package store_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

func TestDropExpired(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	var evs []event.Event
	for i, age := range []time.Duration{40 * day, 31 * day, 10 * day, 3 * day, time.Hour} {
		evs = append(evs, event.Event{EventID: string(rune('a' + i)), OccurredAt: now.Add(-age), Moment: "fmot", Channel: "web", Touchpoint: "checkout"})
	}
	if err := s.InsertEvents(ctx, evs, now); err != nil {
		t.Fatal(err)
	}
	dropped, err := s.DropExpired(ctx, now, 30*day)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(dropped)
	// 30-day raw retention: 40 and 31 days old go from events, event_keys and overview_1m;
	// overview_1s keeps 2 days, detail_1m, overview_10s, overview_30s and overview_2m 8 days;
	// detail_1h, overview_30m and overview_1h keep 400 days by month.
	want := []string{
		"detail_1m:20261013", "detail_1m:20261022", "detail_1m:20261112",
		"event_keys:20261013", "event_keys:20261022",
		"events:20261013", "events:20261022",
		"overview_10s:20261013", "overview_10s:20261022", "overview_10s:20261112",
		"overview_1m:20261013", "overview_1m:20261022",
		"overview_1s:20261013", "overview_1s:20261022", "overview_1s:20261112", "overview_1s:20261119",
		"overview_2m:20261013", "overview_2m:20261022", "overview_2m:20261112",
		"overview_30s:20261013", "overview_30s:20261022", "overview_30s:20261112",
	}
	if len(dropped) != len(want) {
		t.Fatalf("dropped %v,\nwant    %v", dropped, want)
	}
	for i := range want {
		if dropped[i] != want[i] {
			t.Fatalf("dropped %v,\nwant    %v", dropped, want)
		}
	}
	n, err := s.CountEvents(ctx)
	if err != nil || n != 3 {
		t.Fatalf("events left = %d, %v; want 3", n, err)
	}
	again, err := s.DropExpired(ctx, now, 30*day)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run dropped %v, %v; want nothing", again, err)
	}
}
