package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	s := NewSessions(NewKeySet("tba_one"), time.Hour)
	v := s.Issue(now)
	for _, tc := range []struct {
		name  string
		check *Sessions
		value string
		at    time.Time
		want  bool
	}{
		{"fresh", s, v, now, true},
		{"just before expiry", s, v, now.Add(time.Hour - time.Second), true},
		{"expired", s, v, now.Add(time.Hour), false},
		{"other admin token", NewSessions(NewKeySet("tba_two"), time.Hour), v, now, false},
		{"during a rotation", NewSessions(NewKeySet("tba_two", "tba_one"), time.Hour), v, now, true},
		{"no admin token", NewSessions(NewKeySet(), time.Hour), v, now, false},
		{"truncated", s, v[:len(v)-1], now, false},
		{"empty", s, "", now, false},
		{"no dot", s, "abc", now, false},
	} {
		if got := tc.check.Valid(tc.value, tc.at); got != tc.want {
			t.Errorf("%s: Valid = %v, want %v", tc.name, got, tc.want)
		}
	}
	if v2 := s.Issue(now); v2 == v {
		t.Errorf("two sessions got the same value")
	}
}

func TestDisplayCache(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	a, tokA := NewDisplayToken(" Wall 3 ", now)
	b, tokB := NewDisplayToken("Lobby", now)
	if a.Name != "Wall 3" {
		t.Errorf("name %q not trimmed", a.Name)
	}
	records := []DisplayToken{a, b}
	var fail error
	c := NewDisplayCache(func(context.Context) ([]DisplayToken, error) { return records, fail }, 0, nil)
	if c.Interval() != 5*time.Second {
		t.Errorf("default interval %s, want 5s", c.Interval())
	}
	if _, ok := c.Check(tokA); ok {
		t.Fatal("a token is accepted before the first refresh")
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	gone := c.Revoked(a.ID)
	for _, tc := range []struct {
		token string
		want  string
	}{
		{tokA, a.ID},
		{tokB, b.ID},
		{tokA + "x", ""},
		{strings.Replace(tokA, a.ID, b.ID, 1), ""}, // a's secret under b's id
		{"tbd_" + a.ID, ""},
		{"tba_" + tokA[4:], ""},
		{"", ""},
	} {
		got, ok := c.Check(tc.token)
		if ok != (tc.want != "") || got.ID != tc.want {
			t.Errorf("Check(%q) = %q, %v; want %q", tc.token, got.ID, ok, tc.want)
		}
	}

	records[0].RevokedAt = now.Add(time.Minute)
	fail = errors.New("clickhouse down")
	if err := c.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh hid the error")
	}
	if _, ok := c.Check(tokA); !ok {
		t.Error("a failed refresh dropped the tokens")
	}
	fail = nil
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Check(tokA); ok {
		t.Error("a revoked token is accepted")
	}
	select {
	case <-gone:
	default:
		t.Error("Revoked channel not closed by the revocation")
	}
	select {
	case <-c.Revoked(a.ID):
	default:
		t.Error("Revoked of a revoked token is not closed")
	}
}

func TestValidateDisplayTokenName(t *testing.T) {
	for name, ok := range map[string]bool{
		"Wall 3": true, strings.Repeat("é", 64): true, "": false, "  ": false,
		strings.Repeat("x", 65): false, "a\tb": false, "\xff": false,
	} {
		if err := ValidateDisplayTokenName(name); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", name, err, ok)
		}
	}
}
