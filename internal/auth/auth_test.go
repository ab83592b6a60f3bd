package auth

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestKeySetCheck(t *testing.T) {
	k := NewKeySet("alpha", "", "beta")
	for _, tc := range []struct {
		token string
		want  bool
	}{{"alpha", true}, {"beta", true}, {"", false}, {"alph", false}, {"alpha ", false}, {"gamma", false}} {
		if got := k.Check(tc.token); got != tc.want {
			t.Errorf("Check(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
	if k.Len() != 2 {
		t.Errorf("Len = %d, want 2 (empty keys ignored)", k.Len())
	}
	if NewKeySet().Check("") {
		t.Error("an empty set accepts the empty token")
	}
}

func TestKeySetWithStored(t *testing.T) {
	stored, key := IngestKeyKind.New("web-checkout", time.Now())
	_, token := DisplayTokenKind.New("Wall 3", time.Now()) // another kind, same form
	records := []Credential{stored}
	c := NewIngestKeyCache(func(context.Context) ([]Credential, error) { return records, nil }, time.Second, nil)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	configured := NewKeySet("tbi_configured")
	k := configured.WithStored(c)
	for _, tc := range []struct {
		token string
		want  bool
	}{
		{"tbi_configured", true}, {key, true}, {key + "x", false}, {token, false}, {"", false},
	} {
		if got := k.Check(tc.token); got != tc.want {
			t.Errorf("Check(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
	if configured.Check(key) {
		t.Error("WithStored changed the set it was called on")
	}
	records[0].RevokedAt = time.Now()
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if k.Check(key) || !k.Check("tbi_configured") {
		t.Error("after the revocation: the stored key is accepted, or the configured one refused")
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer  abc ", "abc", true},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"Bearer   ", "", false},
		{"", "", false},
	} {
		token, ok := BearerToken(tc.header)
		if token != tc.token || ok != tc.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tc.header, token, ok, tc.token, tc.ok)
		}
	}
}

func TestLoadOrCreateSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, created, err := LoadOrCreateSecrets(dir)
	if err != nil || !created || first.IngestKey == first.AdminToken || len(first.IngestKey) < 30 {
		t.Fatalf("first start: %+v, created %v, err %v", first, created, err)
	}
	info, err := os.Stat(filepath.Join(dir, SecretsFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file: %v, mode %v; want 0600", err, info.Mode())
	}
	again, created, err := LoadOrCreateSecrets(dir)
	if err != nil || created || again != first {
		t.Fatalf("second start: %+v, created %v, err %v; want the same secrets, nothing created", again, created, err)
	}
	if err := os.WriteFile(filepath.Join(dir, SecretsFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateSecrets(dir); err == nil {
		t.Fatal("a corrupt secrets file was accepted")
	}
}
