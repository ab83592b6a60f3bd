package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// DisplayTokenPrefix starts every display token: "tbd_<id>_<secret>". The id (16 hex digits)
// finds the token's record; only the SHA-256 of the secret is stored.
const DisplayTokenPrefix = "tbd_"

// MaxDisplayTokenName is the longest name of a display token, in characters.
const MaxDisplayTokenName = 64

// DisplayToken is the stored record of a read-only token for unattended screens (TV walls).
type DisplayToken struct {
	ID           string
	Name         string
	SecretSHA256 [sha256.Size]byte
	CreatedAt    time.Time
	// RevokedAt is when the token was revoked; zero while it is active.
	RevokedAt time.Time
}

// Revoked reports whether the token was revoked.
func (t DisplayToken) Revoked() bool { return !t.RevokedAt.IsZero() }

// ValidateDisplayTokenName returns a message in plain words when name is not a valid name.
func ValidateDisplayTokenName(name string) error {
	n := utf8.RuneCountInString(strings.TrimSpace(name))
	switch {
	case n == 0:
		return errors.New("is required: name the screen, e.g. \"Wall 3\"")
	case !utf8.ValidString(name):
		return errors.New("must be UTF-8 text")
	case utf8.RuneCountInString(name) > MaxDisplayTokenName:
		return fmt.Errorf("must be at most %d characters (got %d)", MaxDisplayTokenName, utf8.RuneCountInString(name))
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errors.New("must not contain control characters")
		}
	}
	return nil
}

// NewDisplayToken makes a token named name (which the caller validated) and returns its record
// and the token itself, which is shown once and never stored.
func NewDisplayToken(name string, now time.Time) (DisplayToken, string) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	t := DisplayToken{ID: hex.EncodeToString(id[:]), Name: strings.TrimSpace(name), CreatedAt: now.UTC().Truncate(time.Second)}
	secret := NewSecret("")
	t.SecretSHA256 = sha256.Sum256([]byte(secret))
	return t, DisplayTokenPrefix + t.ID + "_" + secret
}

// ParseDisplayToken splits a display token into its id and secret.
func ParseDisplayToken(token string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(token, DisplayTokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_") // the id is hex, so the first _ ends it
	return id, secret, ok && ValidDisplayTokenID(id) && secret != ""
}

// ValidDisplayTokenID reports whether id has the form of a display token's id.
func ValidDisplayTokenID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// DisplayCache holds the active display tokens in memory, refreshed from the database every
// interval so that a token created or revoked on any node takes effect on every node within
// one interval, without a database query per request.
type DisplayCache struct {
	load     func(context.Context) ([]DisplayToken, error)
	interval time.Duration
	log      *slog.Logger

	mu     sync.RWMutex
	active map[string]DisplayToken
	// revoked closes a channel per id given out by Watch when the id leaves the active set.
	watch map[string]chan struct{}
}

// NewDisplayCache makes a cache filled by load every interval (default 5 s) once Run runs.
func NewDisplayCache(load func(context.Context) ([]DisplayToken, error), interval time.Duration, log *slog.Logger) *DisplayCache {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	return &DisplayCache{load: load, interval: interval, log: log,
		active: map[string]DisplayToken{}, watch: map[string]chan struct{}{}}
}

// Interval is how often Run refreshes the cache.
func (c *DisplayCache) Interval() time.Duration { return c.interval }

// Refresh loads the tokens now. On an error the cache keeps what it had: a database outage
// neither locks out the screens nor revives revoked tokens.
func (c *DisplayCache) Refresh(ctx context.Context) error {
	all, err := c.load(ctx)
	if err != nil {
		return fmt.Errorf("load display tokens: %w", err)
	}
	active := make(map[string]DisplayToken, len(all))
	for _, t := range all {
		if !t.Revoked() {
			active[t.ID] = t
		}
	}
	c.mu.Lock()
	c.active = active
	for id, ch := range c.watch {
		if _, ok := active[id]; !ok {
			close(ch)
			delete(c.watch, id)
		}
	}
	c.mu.Unlock()
	return nil
}

// Run refreshes the cache now and every interval until ctx ends.
func (c *DisplayCache) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil && c.log != nil {
			c.log.Warn("display tokens not refreshed; keeping the previous ones", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check returns the active token that token presents. The secret is compared as SHA-256 sums
// in constant time.
func (c *DisplayCache) Check(token string) (DisplayToken, bool) {
	id, secret, ok := ParseDisplayToken(token)
	if !ok {
		return DisplayToken{}, false
	}
	c.mu.RLock()
	t, found := c.active[id]
	c.mu.RUnlock()
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], t.SecretSHA256[:]) != 1 || !found {
		return DisplayToken{}, false
	}
	return t, true
}

// Revoked returns a channel closed when the token id is no longer active (revoked, or gone),
// as seen by a refresh; it is closed at once when id is not active now.
func (c *DisplayCache) Revoked(id string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.active[id]; !ok {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	ch, ok := c.watch[id]
	if !ok {
		ch = make(chan struct{})
		c.watch[id] = ch
	}
	return ch
}
