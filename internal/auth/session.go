package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// signer issues and checks stateless signed values, "v1.<expiry unix seconds>.<nonce>.<HMAC-SHA256>",
// so every node behind a load balancer accepts what any node issued without shared state. The
// HMAC key is derived from the admin token(s) and a purpose: rotating the admin token ends
// every value, nothing else has to be kept secret, and a value of one purpose is never valid
// for another.
type signer struct {
	keys [][]byte // keys[0] signs; every key verifies (several admin tokens during a rotation)
	ttl  time.Duration
}

func newSigner(admin *KeySet, purpose string, ttl time.Duration) signer {
	s := signer{ttl: ttl}
	for _, sum := range admin.sums {
		m := hmac.New(sha256.New, sum[:])
		m.Write([]byte(purpose))
		s.keys = append(s.keys, m.Sum(nil))
	}
	return s
}

func (s signer) issue(now time.Time) string {
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	payload := "v1." + strconv.FormatInt(now.Add(s.ttl).Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(nonce[:])
	return payload + "." + base64.RawURLEncoding.EncodeToString(sign(s.keys[0], payload))
}

func (s signer) valid(value string, now time.Time) bool {
	i := strings.LastIndexByte(value, '.')
	if i < 0 || len(value) > 200 {
		return false
	}
	payload := value[:i]
	mac, err := base64.RawURLEncoding.DecodeString(value[i+1:])
	if err != nil {
		return false
	}
	ok := false
	for _, k := range s.keys {
		ok = hmac.Equal(mac, sign(k, payload)) || ok
	}
	if !ok {
		return false
	}
	// Only a value this server signed gets here, so its fields are well formed.
	parts := strings.Split(payload, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	return err == nil && now.Unix() < exp
}

func sign(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Sessions issues and checks the signed values of the session cookie of a signed-in viewer
// (see signer). Signing out only deletes the browser's cookie; a copied value stays valid until
// it expires or the admin token changes.
type Sessions struct{ s signer }

// sessionPurpose separates the session key from any other key derived from the admin token.
const sessionPurpose = "truthboard session cookie v1"

// NewSessions derives the session keys from the admin tokens; ttl is how long a session lasts.
func NewSessions(admin *KeySet, ttl time.Duration) *Sessions {
	return &Sessions{newSigner(admin, sessionPurpose, ttl)}
}

// TTL is how long a new session lasts.
func (s *Sessions) TTL() time.Duration { return s.s.ttl }

// Issue returns a new session value that expires ttl after now. It panics without an admin
// token: the server refuses to start without one, so it is a bug.
func (s *Sessions) Issue(now time.Time) string {
	if len(s.s.keys) == 0 {
		panic("auth: Sessions.Issue without an admin token")
	}
	return s.s.issue(now)
}

// Valid reports whether value was issued with one of the keys and has not expired at now.
func (s *Sessions) Valid(value string, now time.Time) bool { return s.s.valid(value, now) }

// CSRFTokens issues and checks the anti-CSRF tokens of the sign-in form and of requests
// authenticated by the session cookie. Like sessions they are signed rather than stored, so
// a form served by one node is accepted by another behind the load balancer.
type CSRFTokens struct{ s signer }

// csrfPurpose separates the CSRF key from the session key: a session value is not a CSRF token.
const csrfPurpose = "truthboard csrf token v1"

// NewCSRFTokens derives the keys from the admin tokens; ttl is how long a token is accepted.
// Without an admin token (no one can sign in then) a random key still lets the form render.
func NewCSRFTokens(admin *KeySet, ttl time.Duration) *CSRFTokens {
	if admin.Len() == 0 {
		admin = NewKeySet(NewSecret(""))
	}
	return &CSRFTokens{newSigner(admin, csrfPurpose, ttl)}
}

// TTL is how long a new token is accepted.
func (c *CSRFTokens) TTL() time.Duration { return c.s.ttl }

// Issue returns a new token that expires ttl after now.
func (c *CSRFTokens) Issue(now time.Time) string { return c.s.issue(now) }

// Valid reports whether token was issued with one of the keys and has not expired at now.
func (c *CSRFTokens) Valid(token string, now time.Time) bool { return c.s.valid(token, now) }
