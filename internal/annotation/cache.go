package annotation

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Bounds of the cache the live feeds read.
const (
	// Horizon is how far back the cache reaches: the longest window a screen shows (30d) and
	// a day of margin.
	Horizon = 31 * 24 * time.Hour
	// MaxCached is the most annotations the cache holds, the newest ones: a bound on what every
	// tick scans, whatever the table holds.
	MaxCached = 2000
	// MaxShown is the most annotations one live message carries, the newest ones.
	MaxShown = 100
)

// Stamp reads what changes with every write to the annotations (a checksum of the table's
// ids and versions); the store's AnnotationsStamp. It is much cheaper than Load, so the cache reloads only
// when it moved.
type Stamp func(ctx context.Context) (int64, error)

// FullReload is the longest the cache goes without a reload, whatever the stamp says: a
// safety net, not what keeps it current.
const FullReload = 10 * time.Minute

// Load reads the annotations not deleted that end at or after since, newest first, at most
// limit of them; the store's RecentAnnotations.
type Load func(ctx context.Context, since time.Time, limit int) ([]Annotation, error)

// Cache holds the recent annotations in memory for the live feeds, reloaded every interval
// so that a change made on any node reaches this node's screens within that interval, and at
// once after a change made here (Refresh).
type Cache struct {
	load     Load
	stamp    Stamp // nil: reload every interval
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu       sync.RWMutex
	list     []Annotation // newest first
	stamped  int64        // the stamp read before the last load
	loadedAt time.Time
}

// NewCache returns an empty cache filled by load; Run refreshes it every interval, when stamp
// (nil: always) says the table changed.
func NewCache(load Load, stamp Stamp, interval time.Duration, log *slog.Logger) *Cache {
	return &Cache{load: load, stamp: stamp, interval: interval, now: time.Now, log: log}
}

// Refresh reloads the cache now. On an error it keeps what it had.
func (c *Cache) Refresh(ctx context.Context) error {
	var stamped int64
	if c.stamp != nil {
		// Read before the load: a write between the two moves the stamp again, so the next
		// check reloads.
		var err error
		if stamped, err = c.stamp(ctx); err != nil {
			return err
		}
	}
	list, err := c.load(ctx, c.now().Add(-Horizon), MaxCached)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.list, c.stamped, c.loadedAt = list, stamped, c.now()
	c.mu.Unlock()
	return nil
}

// changed tells whether the table moved since the last load (or FullReload has passed). An
// error reading the stamp counts as a change, so that Refresh reports it.
func (c *Cache) changed(ctx context.Context) bool {
	if c.stamp == nil {
		return true
	}
	c.mu.RLock()
	stamped, loadedAt := c.stamped, c.loadedAt
	c.mu.RUnlock()
	if loadedAt.IsZero() || c.now().Sub(loadedAt) >= FullReload {
		return true
	}
	now, err := c.stamp(ctx)
	return err != nil || now != stamped
}

// Run refreshes the cache every interval until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.changed(ctx) {
			continue
		}
		err := c.Refresh(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			c.log.Warn("annotations not refreshed; keeping the previous ones", "err", err)
			failing = true
		case err == nil && failing:
			c.log.Info("annotations refreshed again")
			failing = false
		}
	}
}

// Overlapping returns the annotations that lie at least in part within from..to and concern a
// view filtered to moments and channels (empty: all), at most MaxShown, oldest first. Never
// nil.
func (c *Cache) Overlapping(from, to time.Time, moments, channels []string) []Annotation {
	out := []Annotation{}
	c.mu.RLock()
	for i := range c.list {
		a := &c.list[i]
		if a.Overlaps(from, to) && a.InScope(moments, channels) {
			out = append(out, *a)
			if len(out) == MaxShown {
				break
			}
		}
	}
	c.mu.RUnlock()
	slices.Reverse(out)
	return out
}
