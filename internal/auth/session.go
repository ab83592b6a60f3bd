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

// issue signs a value carrying fields (which must not contain '.').
func (s signer) issue(now time.Time, fields ...string) string {
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	payload := "v1." + strconv.FormatInt(now.Add(s.ttl).Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(nonce[:])
	for _, f := range fields {
		if strings.Contains(f, ".") {
			panic("auth: a signed field contains a dot") // the callers' fields are ids and names
		}
		payload += "." + f
	}
	return payload + "." + base64.RawURLEncoding.EncodeToString(sign(s.keys[0], payload))
}

func (s signer) valid(value string, now time.Time) bool {
	_, ok := s.open(value, now)
	return ok
}

// open checks value and returns the fields it carries.
func (s signer) open(value string, now time.Time) (fields []string, ok bool) {
	i := strings.LastIndexByte(value, '.')
	if i < 0 || len(value) > 300 {
		return nil, false
	}
	payload := value[:i]
	mac, err := base64.RawURLEncoding.DecodeString(value[i+1:])
	if err != nil {
		return nil, false
	}
	for _, k := range s.keys {
		ok = hmac.Equal(mac, sign(k, payload)) || ok
	}
	if !ok {
		return nil, false
	}
	// Only a value this server signed gets here, so its fields are well formed.
	parts := strings.Split(payload, ".")
	if len(parts) < 3 || parts[0] != "v1" {
		return nil, false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || now.Unix() >= exp {
		return nil, false
	}
	return parts[3:], true
}

func sign(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Sessions issues and checks the signed values of the session cookie of a signed-in person
// (see signer). A value carries who signed in (Subject); the caller checks at every request
// that the account still exists and has not changed since, so deleting an account ends its
// sessions. Signing out only deletes the browser's cookie; a copied value stays valid until it
// expires, its account changes, or the admin token changes.
type Sessions struct{ s signer }

// Subject is who a session is for: an account with its role and when the session was issued,
// or, with no account, the bootstrap sign-in of the admin token (an admin).
type Subject struct {
	// Account is the account's id; empty for a sign-in with the admin token.
	Account string
	// Role is the account's role when the session was issued ("admin" for the admin token).
	Role string
	// Issued is when the session was issued, to the second.
	Issued time.Time
}

// sessionPurpose separates the session key from any other key derived from the admin token.
const sessionPurpose = "truthboard session cookie v1"

// NewSessions derives the session keys from the admin tokens; ttl is how long a session lasts.
func NewSessions(admin *KeySet, ttl time.Duration) *Sessions {
	return &Sessions{newSigner(admin, sessionPurpose, ttl)}
}

// TTL is how long a new session lasts.
func (s *Sessions) TTL() time.Duration { return s.s.ttl }

// Issue returns a new session of the admin token that expires ttl after now. It panics
// without an admin token: the server refuses to start without one, so it is a bug.
func (s *Sessions) Issue(now time.Time) string { return s.IssueFor(now, Subject{Role: "admin"}) }

// IssueFor returns a new session of sub (its Issued is now) that expires ttl after now.
func (s *Sessions) IssueFor(now time.Time, sub Subject) string {
	if len(s.s.keys) == 0 {
		panic("auth: Sessions.Issue without an admin token")
	}
	return s.s.issue(now, sub.Account, sub.Role, strconv.FormatInt(now.Unix(), 10))
}

// Valid reports whether value was issued with one of the keys and has not expired at now.
func (s *Sessions) Valid(value string, now time.Time) bool { return s.s.valid(value, now) }

// Check returns the subject of value when it was issued with one of the keys and has not
// expired at now.
func (s *Sessions) Check(value string, now time.Time) (Subject, bool) {
	f, ok := s.s.open(value, now)
	if !ok || len(f) != 3 {
		return Subject{}, false
	}
	issued, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return Subject{}, false
	}
	return Subject{Account: f[0], Role: f[1], Issued: time.Unix(issued, 0).UTC()}, true
}

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
