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

// Credential is the stored record of a credential an admin creates and may revoke while the
// servers run: a display token or a stored ingest key. It is presented as
// "<prefix><id>_<secret>"; the id (16 hex digits) finds the record, and only the SHA-256 of the
// secret is stored, so a copy of the database lets no one in.
type Credential struct {
	ID           string
	Name         string
	SecretSHA256 [sha256.Size]byte
	CreatedAt    time.Time
	// RevokedAt is when the credential was revoked; zero while it is active.
	RevokedAt time.Time
}

// Revoked reports whether the credential was revoked.
func (c Credential) Revoked() bool { return !c.RevokedAt.IsZero() }

// Kind is one sort of stored credential: its prefix tells the sorts apart, so a display token
// is never taken for an ingest key or the other way round.
type Kind struct {
	// Prefix starts every credential of the kind, e.g. "tbd_".
	Prefix string
	// Noun names the kind in messages, e.g. "display token".
	Noun string
	// NameHint says what to name one, e.g. `name the screen, e.g. "Wall 3"`.
	NameHint string
}

// ANoun is the noun with its article, e.g. "an ingest key", for messages.
func (k Kind) ANoun() string {
	if strings.ContainsRune("aeiou", rune(k.Noun[0])) {
		return "an " + k.Noun
	}
	return "a " + k.Noun
}

// MaxCredentialName is the longest name of a stored credential, in characters.
const MaxCredentialName = 64

// ValidateName returns a message in plain words when name is not a valid name.
func (k Kind) ValidateName(name string) error {
	n := utf8.RuneCountInString(strings.TrimSpace(name))
	switch {
	case n == 0:
		return errors.New("is required: " + k.NameHint)
	case !utf8.ValidString(name):
		return errors.New("must be UTF-8 text")
	case utf8.RuneCountInString(name) > MaxCredentialName:
		return fmt.Errorf("must be at most %d characters (got %d)", MaxCredentialName, utf8.RuneCountInString(name))
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errors.New("must not contain control characters")
		}
	}
	return nil
}

// New makes a credential named name (which the caller validated) and returns its record and
// the credential itself, which is shown once and never stored.
func (k Kind) New(name string, now time.Time) (Credential, string) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	c := Credential{ID: hex.EncodeToString(id[:]), Name: strings.TrimSpace(name), CreatedAt: now.UTC().Truncate(time.Second)}
	secret := NewSecret("")
	c.SecretSHA256 = sha256.Sum256([]byte(secret))
	return c, k.Prefix + c.ID + "_" + secret
}

// Parse splits a presented credential of the kind into its id and secret.
func (k Kind) Parse(token string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(token, k.Prefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_") // the id is hex, so the first _ ends it
	return id, secret, ok && ValidCredentialID(id) && secret != ""
}

// ValidCredentialID reports whether id has the form of a stored credential's id.
func ValidCredentialID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// Cache holds the active credentials of one kind in memory, refreshed from the database every
// interval so that a credential created or revoked on any node takes effect on every node
// within one interval, without a database query per request.
type Cache struct {
	kind     Kind
	load     func(context.Context) ([]Credential, error)
	interval time.Duration
	log      *slog.Logger

	// refreshing runs one Refresh at a time: two that overlapped (the periodic one and the one
	// after a change through the admin API) could finish in the other order, and the older
	// list would then win, hiding a new credential or bringing a revoked one back until the
	// next refresh.
	refreshing sync.Mutex

	mu     sync.RWMutex
	active map[string]Credential
	// watch holds a channel per id given out by Revoked, closed when the id leaves the active set.
	watch map[string]chan struct{}
}

// NewCache makes a cache of kind filled by load every interval (default 5 s) once Run runs.
func NewCache(kind Kind, load func(context.Context) ([]Credential, error), interval time.Duration, log *slog.Logger) *Cache {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	return &Cache{kind: kind, load: load, interval: interval, log: log,
		active: map[string]Credential{}, watch: map[string]chan struct{}{}}
}

// Interval is how often Run refreshes the cache.
func (c *Cache) Interval() time.Duration { return c.interval }

// Refresh loads the credentials now. On an error the cache keeps what it had: a database
// outage neither locks out screens and senders nor revives revoked credentials.
func (c *Cache) Refresh(ctx context.Context) error {
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	all, err := c.load(ctx)
	if err != nil {
		return fmt.Errorf("load %ss: %w", c.kind.Noun, err)
	}
	active := make(map[string]Credential, len(all))
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
func (c *Cache) Run(ctx context.Context) {
	RefreshEvery(ctx, c.interval, c.Refresh, c.log, c.kind.Noun+"s not refreshed; keeping the previous ones")
}

// RefreshEvery calls refresh now and every interval until ctx ends, logging a failure with
// message (log may be nil): the loop of the caches of credentials and accounts.
func RefreshEvery(ctx context.Context, interval time.Duration, refresh func(context.Context) error, log *slog.Logger, message string) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := refresh(ctx); err != nil && ctx.Err() == nil && log != nil {
			log.Warn(message, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check returns the active credential that token presents. The secret is compared as SHA-256
// sums in constant time. The id is not secret (it is listed), so finding it by a map lookup
// reveals nothing.
func (c *Cache) Check(token string) (Credential, bool) {
	id, secret, ok := c.kind.Parse(token)
	if !ok {
		return Credential{}, false
	}
	c.mu.RLock()
	t, found := c.active[id]
	c.mu.RUnlock()
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], t.SecretSHA256[:]) != 1 || !found {
		return Credential{}, false
	}
	return t, true
}

// Revoked returns a channel closed when the credential id is no longer active (revoked, or
// gone), as seen by a refresh; it is closed at once when id is not active now.
func (c *Cache) Revoked(id string) <-chan struct{} {
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
