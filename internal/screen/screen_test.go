package screen

import (
	"errors"
	"strings"
	"testing"
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
