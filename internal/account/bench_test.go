package account

import (
	"context"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
)

// What a sign-in and a request of a signed-in person cost, each against a baseline in the same
// run (docs/benchmarks.md, "Sign-in and sessions").

// BenchmarkCheckPassword is one sign-in's password check: argon2id with the default parameters.
func BenchmarkCheckPassword(b *testing.B) {
	h := HashPassword("correct horse battery")
	for b.Loop() {
		if !CheckPassword(h, "correct horse battery") {
			b.Fatal("no match")
		}
	}
}

// BenchmarkCheckAdminToken is the baseline: the admin token's check of the sign-in form before
// accounts (SHA-256 and a constant-time compare).
func BenchmarkCheckAdminToken(b *testing.B) {
	keys := auth.NewKeySet("tba_0123456789abcdef0123456789abcdef")
	for b.Loop() {
		if !keys.Check("tba_0123456789abcdef0123456789abcdef") {
			b.Fatal("no match")
		}
	}
}

// BenchmarkSessionOfAccount is the check of every request of a signed-in person: the session's
// HMAC, then its account in the cache of 1,000 accounts.
func BenchmarkSessionOfAccount(b *testing.B) {
	accounts := make([]Account, 1000)
	for i := range accounts {
		accounts[i] = Account{ID: NewID(), Username: "user" + NewID(), Role: Viewer, CreatedAt: time.Unix(0, 0)}
	}
	c := NewCache(func(context.Context) ([]Account, error) { return accounts, nil }, time.Hour, nil)
	if err := c.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	s := auth.NewSessions(auth.NewKeySet("tba_0123456789abcdef0123456789abcdef"), time.Hour)
	now := time.Now()
	v := s.IssueFor(now, auth.Subject{Account: accounts[500].ID, Role: "viewer"})
	for b.Loop() {
		sub, ok := s.Check(v, now)
		if !ok {
			b.Fatal("invalid")
		}
		if a, ok := c.ByID(sub.Account); !ok || sub.Issued.Before(a.ChangedAt) {
			b.Fatal("no account")
		}
	}
}

// BenchmarkSessionOfAdminToken is the baseline: the check of the session of the admin token,
// which names no account (the only session before accounts).
func BenchmarkSessionOfAdminToken(b *testing.B) {
	s := auth.NewSessions(auth.NewKeySet("tba_0123456789abcdef0123456789abcdef"), time.Hour)
	now := time.Now()
	v := s.Issue(now)
	for b.Loop() {
		if !s.Valid(v, now) {
			b.Fatal("invalid")
		}
	}
}
