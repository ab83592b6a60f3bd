package account

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
)

// Cache holds the accounts in memory, refreshed from the database every interval, so that an
// account created, changed or deleted on any node takes effect on every node within one
// interval, and a sign-in or a request costs no database query.
type Cache struct {
	load     func(context.Context) ([]Account, error)
	interval time.Duration
	log      *slog.Logger

	// refreshing runs one Refresh at a time, so an older list never replaces a newer one.
	refreshing sync.Mutex

	mu     sync.RWMutex
	byID   map[string]Account
	byName map[string]Account
	loaded bool
}

// NewCache makes a cache filled by load every interval (default 5 s) once Run runs.
func NewCache(load func(context.Context) ([]Account, error), interval time.Duration, log *slog.Logger) *Cache {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	return &Cache{load: load, interval: interval, log: log, byID: map[string]Account{}, byName: map[string]Account{}}
}

// Refresh loads the accounts now. On an error the cache keeps what it had: a database outage
// neither locks people out nor brings deleted accounts back.
func (c *Cache) Refresh(ctx context.Context) error {
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	all, err := c.load(ctx)
	if err != nil {
		return fmt.Errorf("load accounts: %w", err)
	}
	byID := make(map[string]Account, len(all))
	byName := make(map[string]Account, len(all))
	for _, a := range all { // oldest first: of two accounts given one username at once, the first wins
		if a.Deleted() {
			continue
		}
		byID[a.ID] = a
		if _, taken := byName[a.Username]; !taken {
			byName[a.Username] = a
		}
	}
	c.mu.Lock()
	c.byID, c.byName, c.loaded = byID, byName, true
	c.mu.Unlock()
	return nil
}

// Run refreshes the cache now and every interval until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	auth.RefreshEvery(ctx, c.interval, c.Refresh, c.log, "accounts not refreshed; keeping the previous ones")
}

// ByUsername returns the active account named username.
func (c *Cache) ByUsername(username string) (Account, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a, ok := c.byName[username]
	return a, ok
}

// ByID returns the active account id.
func (c *Cache) ByID(id string) (Account, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a, ok := c.byID[id]
	return a, ok
}

// All lists the active accounts, oldest first.
func (c *Cache) All() []Account {
	c.mu.RLock()
	out := make([]Account, 0, len(c.byID))
	for _, a := range c.byID {
		out = append(out, a)
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b Account) int {
		if d := a.CreatedAt.Compare(b.CreatedAt); d != 0 {
			return d
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Admins is the number of active admin accounts, and whether the accounts were loaded at all
// (before the first load, no one knows whether an admin exists).
func (c *Cache) Admins() (n int, loaded bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, a := range c.byID {
		if a.Role == Admin {
			n++
		}
	}
	return n, c.loaded
}

// Authenticate returns the account of username when password is its password. It always
// hashes once, whether or not the username exists, so that timing does not reveal usernames.
func (c *Cache) Authenticate(username, password string) (Account, bool) {
	a, found := c.ByUsername(username)
	ok := CheckPassword(a.PasswordHash, password) // "" when not found: checks the dummy hash
	if !found || !ok {
		return Account{}, false
	}
	return a, true
}
