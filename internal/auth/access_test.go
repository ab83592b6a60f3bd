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

func TestCSRFTokens(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	admin := NewKeySet("tba_one")
	c := NewCSRFTokens(admin, time.Hour)
	v := c.Issue(now)
	session := NewSessions(admin, time.Hour).Issue(now)
	for _, tc := range []struct {
		name  string
		check *CSRFTokens
		value string
		at    time.Time
		want  bool
	}{
		{"fresh", c, v, now, true},
		{"on another node", NewCSRFTokens(NewKeySet("tba_one"), time.Hour), v, now, true},
		{"expired", c, v, now.Add(time.Hour), false},
		{"other admin token", NewCSRFTokens(NewKeySet("tba_two"), time.Hour), v, now, false},
		{"a session value", c, session, now, false},
		{"truncated", c, v[:len(v)-1], now, false},
		{"empty", c, "", now, false},
	} {
		if got := tc.check.Valid(tc.value, tc.at); got != tc.want {
			t.Errorf("%s: Valid = %v, want %v", tc.name, got, tc.want)
		}
	}
	if NewSessions(admin, time.Hour).Valid(v, now) {
		t.Error("a CSRF token is a valid session")
	}
	// Without an admin token no one signs in, but the sign-in form still renders.
	none := NewCSRFTokens(NewKeySet(), time.Hour)
	if !none.Valid(none.Issue(now), now) {
		t.Error("without an admin token, a token is not valid on the node that issued it")
	}
}

func TestCache(t *testing.T) {
	for _, kind := range []Kind{DisplayTokenKind, IngestKeyKind} {
		t.Run(kind.Noun, func(t *testing.T) { testCache(t, kind) })
	}
}

func testCache(t *testing.T, kind Kind) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	a, tokA := kind.New(" Wall 3 ", now)
	b, tokB := kind.New("Lobby", now)
	if a.Name != "Wall 3" {
		t.Errorf("name %q not trimmed", a.Name)
	}
	if !strings.HasPrefix(tokA, kind.Prefix+a.ID+"_") {
		t.Errorf("credential %q does not start with %s<id>_", tokA, kind.Prefix)
	}
	other := DisplayTokenKind
	if kind == DisplayTokenKind {
		other = IngestKeyKind
	}
	records := []Credential{a, b}
	var fail error
	c := NewCache(kind, func(context.Context) ([]Credential, error) { return records, fail }, 0, nil)
	if c.Interval() != 5*time.Second {
		t.Errorf("default interval %s, want 5s", c.Interval())
	}
	if _, ok := c.Check(tokA); ok {
		t.Fatal("a credential is accepted before the first refresh")
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
		{kind.Prefix + a.ID, ""},
		{other.Prefix + tokA[len(kind.Prefix):], ""}, // the same id and secret as the other kind
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
	if err := c.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), kind.Noun) {
		t.Fatalf("Refresh hid the error or did not name what it loads: %v", err)
	}
	if _, ok := c.Check(tokA); !ok {
		t.Error("a failed refresh dropped the credentials")
	}
	fail = nil
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Check(tokA); ok {
		t.Error("a revoked credential is accepted")
	}
	if _, ok := c.Check(tokB); !ok {
		t.Error("revoking one credential refused another")
	}
	select {
	case <-gone:
	default:
		t.Error("Revoked channel not closed by the revocation")
	}
	select {
	case <-c.Revoked(a.ID):
	default:
		t.Error("Revoked of a revoked credential is not closed")
	}
}

func TestValidateName(t *testing.T) {
	if err := IngestKeyKind.ValidateName(""); err == nil || !strings.Contains(err.Error(), "web-checkout") {
		t.Errorf("an empty ingest key name: %v; want a hint naming an example", err)
	}
	for name, ok := range map[string]bool{
		"Wall 3": true, strings.Repeat("é", 64): true, "": false, "  ": false,
		strings.Repeat("x", 65): false, "a\tb": false, "\xff": false,
	} {
		if err := DisplayTokenKind.ValidateName(name); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", name, err, ok)
		}
	}
}

func TestSessionSubject(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	s := NewSessions(NewKeySet("tba_one"), time.Hour)
	v := s.IssueFor(now, Subject{Account: "0123456789abcdef", Role: "viewer"})
	sub, ok := s.Check(v, now.Add(time.Minute))
	if !ok || sub.Account != "0123456789abcdef" || sub.Role != "viewer" || !sub.Issued.Equal(now) {
		t.Errorf("Check = %+v, %v", sub, ok)
	}
	if sub, ok := s.Check(s.Issue(now), now); !ok || sub.Account != "" || sub.Role != "admin" {
		t.Errorf("the admin token's session: %+v, %v", sub, ok)
	}
	// The role cannot be changed without the key.
	forged := strings.Replace(v, ".viewer.", ".admin.", 1)
	if _, ok := s.Check(forged, now); ok {
		t.Error("a session whose role was edited is accepted")
	}
	if _, ok := s.Check(v, now.Add(time.Hour)); ok {
		t.Error("an expired session is accepted")
	}
}
