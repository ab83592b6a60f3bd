package screen

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		c := NewCode()
		if n, ok := NormalizeCode(c); !ok || n != c {
			t.Fatalf("NewCode() = %q, which NormalizeCode reads as %q, %v", c, n, ok)
		}
		seen[c] = true
	}
	if len(seen) < 990 {
		t.Errorf("1000 codes gave %d distinct ones", len(seen))
	}
	for in, want := range map[string]string{"k7p-2qx": "K7P2QX", " K7P 2QX ": "K7P2QX"} {
		if got, ok := NormalizeCode(in); !ok || got != want {
			t.Errorf("NormalizeCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "K7P2Q", "K7P2QXX", "K7P2Q0", "K7P2QI", "K7P2QL", "K7P2Q1", "K7P2QÉ"} {
		if got, ok := NormalizeCode(in); ok {
			t.Errorf("NormalizeCode(%q) = %q, accepted; want refused (ambiguous or wrong length)", in, got)
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		p     Playlist
		field string
	}{
		{Playlist{Name: "", Items: []Item{{View: "overview", Dwell: "30s"}}}, "name"},
		{Playlist{Name: "F", Items: []Item{{View: "overview", Dwell: "30s"}, {View: "map", Dwell: "30s"}}}, "items[1].view"},
		{Playlist{Name: "F", Items: []Item{{View: "overview", Window: "2d", Dwell: "30s"}}}, "items[0].window"},
		{Playlist{Name: "F", Items: []Item{{View: "overview", Filters: map[string][]string{"moment": {"xmot"}}, Dwell: "30s"}}}, "items[0].filters.moment"},
		{Playlist{Name: "F", Items: []Item{{View: "overview", Dwell: "2h"}}}, "items[0].dwell"},
		{Playlist{Name: "F", Items: []Item{{View: "overview", Dwell: "30s"}}, Schedule: &Schedule{Open: "08:00", Close: "24:00"}}, "schedule.close"},
		{Playlist{Name: "F", Items: []Item{{View: "overview", Dwell: "30s"}}, Schedule: &Schedule{Open: "08:00", Close: "20:00", Days: []string{"mon", "funday"}}}, "schedule.days[1]"},
	} {
		err := tc.p.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: %v; want an error about %s", tc.p, err, tc.field)
		}
	}
	ok := Playlist{Name: "Floor", Items: []Item{{View: "heatmap", Window: "1h", Filters: map[string][]string{"channel": {"voice"}}, Dwell: "1m"}},
		Schedule: &Schedule{Open: "22:00", Close: "06:00", Days: []string{"Mon"}, Outside: "blank"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("a valid playlist: %v", err)
	}
	show := Show{Playlist: "Floor", View: "tv"}
	if err := show.Validate("show"); err == nil || !strings.Contains(err.Error(), "show.playlist") {
		t.Errorf("a show with a playlist and a view: %v; want refused", err)
	}
}

func TestParseHeartbeat(t *testing.T) {
	if _, ok, _ := ParseHeartbeat([]byte(`{"type":"subscribe","view":"tv"}`)); ok {
		t.Error("a subscribe message read as a heartbeat")
	}
	long := strings.Repeat("x", 500)
	h, ok, err := ParseHeartbeat([]byte(`{"type":"heartbeat","resolution":"1920x1080","version":"v","errors":["a","b","c","d","e","f","` + long + `"]}`))
	if !ok || err != nil || h.Resolution != "1920x1080" || len(h.Errors) != maxErrors {
		t.Errorf("heartbeat = %+v, %v, %v; want 5 errors kept", h, ok, err)
	}
	if _, ok, err := ParseHeartbeat([]byte(`{"type":"heartbeat","colour":"red"}`)); !ok || err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown field: %v, %v; want an error naming it", ok, err)
	}
}

// Opening hours are read in the screen's zone: a Tokyo wall open 09:00–18:00 on weekdays blanks
// at Tokyo's 18:00 (09:00 UTC), whatever the day is in UTC.
func TestScheduleInTimezone(t *testing.T) {
	tokyo, err := Location("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	s := &Schedule{Open: "09:00", Close: "18:00", Days: []string{"mon", "tue", "wed", "thu", "fri"}, Outside: "blank"}
	for _, tc := range []struct {
		utc  string
		want string
	}{
		{"2026-12-06T23:59:00Z", "blank"}, // Monday 08:59 in Tokyo, still Sunday in UTC
		{"2026-12-07T00:00:00Z", ""},      // Monday 09:00 in Tokyo: open
		{"2026-12-07T08:59:00Z", ""},      // Monday 17:59
		{"2026-12-07T09:00:00Z", "blank"}, // Monday 18:00: closed
		{"2026-12-04T15:30:00Z", "blank"}, // Saturday 00:30 in Tokyo, Friday in UTC
		{"2026-12-05T03:00:00Z", "blank"}, // Saturday noon
	} {
		at, _ := time.Parse(time.RFC3339, tc.utc)
		if got := s.At(at, tokyo); got != tc.want {
			t.Errorf("at %s (%s in Tokyo): %q, want %q", tc.utc, at.In(tokyo).Format("Mon 15:04"), got, tc.want)
		}
	}
	// Across midnight, dimmed by default.
	night := &Schedule{Open: "22:00", Close: "06:00"}
	if got := night.At(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), tokyo); got != "dim" { // 21:00 in Tokyo
		t.Errorf("a night shift at 21:00: %q, want dim", got)
	}
	for _, bad := range []string{"", "Local", "Mars/Olympus", "../etc/passwd", strings.Repeat("A", 65)} {
		var fe *FieldError
		if err := (Place{Timezone: bad}).Validate(""); bad != "" && (!errors.As(err, &fe) || fe.Field != "timezone") {
			t.Errorf("time zone %q: %v; want refused, naming timezone", bad, err)
		}
	}
}
