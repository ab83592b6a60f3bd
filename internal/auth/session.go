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

// Sessions issues and checks the signed values of the session cookie of a signed-in viewer.
// A value is stateless, "v1.<expiry unix seconds>.<nonce>.<HMAC-SHA256>", so every node behind a
// load balancer accepts it without shared state. The HMAC key is derived from the admin
// token(s): rotating the admin token ends every session, and nothing else has to be kept
// secret. Signing out only deletes the browser's cookie; a copied value stays valid until it
// expires or the admin token changes.
type Sessions struct {
	keys [][]byte // keys[0] signs; every key verifies (several admin tokens during a rotation)
	ttl  time.Duration
}

// sessionPurpose separates the session key from any other key derived from the admin token.
const sessionPurpose = "truthboard session cookie v1"

// NewSessions derives the session keys from the admin tokens; ttl is how long a session lasts.
func NewSessions(admin *KeySet, ttl time.Duration) *Sessions {
	s := &Sessions{ttl: ttl}
	for _, sum := range admin.sums {
		m := hmac.New(sha256.New, sum[:])
		m.Write([]byte(sessionPurpose))
		s.keys = append(s.keys, m.Sum(nil))
	}
	return s
}

// TTL is how long a new session lasts.
func (s *Sessions) TTL() time.Duration { return s.ttl }

// Issue returns a new session value that expires ttl after now. It panics without an admin
// token: the server refuses to start without one, so it is a bug.
func (s *Sessions) Issue(now time.Time) string {
	if len(s.keys) == 0 {
		panic("auth: Sessions.Issue without an admin token")
	}
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	payload := "v1." + strconv.FormatInt(now.Add(s.ttl).Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(nonce[:])
	return payload + "." + base64.RawURLEncoding.EncodeToString(sign(s.keys[0], payload))
}

// Valid reports whether value was issued with one of the keys and has not expired at now.
func (s *Sessions) Valid(value string, now time.Time) bool {
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
