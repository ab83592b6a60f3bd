// Package quota keeps the counts behind Truthboard's limits per client: token buckets (how
// often a connection may subscribe, how many wrong credentials an address may present) and
// counters per key (connections per credential and per address, bytes of ingest bodies per
// key). It is pure bookkeeping: no I/O, no clock of its own, no HTTP; the edge (internal/web)
// and the live hub (internal/live) decide what a refusal looks like.
package quota

import (
	"sync"
	"time"
)

// Bucket is a token bucket: it holds up to burst tokens and gains rate tokens per second. It is
// not safe for concurrent use; each connection owns its own.
type Bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// NewBucket returns a full bucket.
func NewBucket(rate float64, burst int) *Bucket {
	return &Bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// Take takes one token at now and reports whether there was one.
func (b *Bucket) Take(now time.Time) bool {
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// refill adds the tokens earned since the last call, up to burst.
func (b *Bucket) refill(now time.Time) {
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
}

// full reports whether the bucket is back at its burst at now: nothing to remember.
func (b *Bucket) full(now time.Time) bool {
	b.refill(now)
	return b.tokens >= b.burst
}

// wait is how long until the bucket holds a token again.
func (b *Bucket) wait() time.Duration {
	if b.tokens >= 1 || b.rate <= 0 {
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// Buckets is one token bucket per key, for many keys at once (e.g. one per client address),
// safe for concurrent use. Keys whose bucket is full again are forgotten, so memory follows the
// keys that spent tokens recently. It holds at most maxKeys keys: when that many are in debt at
// once, a new key is not tracked and is always allowed, so a flood of addresses can neither
// grow memory without bound nor lock out a client the table has no room for.
type Buckets struct {
	rate    float64
	burst   int
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*Bucket
}

// NewBuckets returns buckets of burst tokens gaining rate per second, for at most maxKeys keys.
func NewBuckets(rate float64, burst, maxKeys int) *Buckets {
	return &Buckets{rate: rate, burst: burst, maxKeys: maxKeys, buckets: map[string]*Bucket{}}
}

// Wait is how long key must wait at now before its bucket has a token: 0 when it has one.
func (b *Buckets) Wait(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, ok := b.buckets[key]
	if !ok {
		return 0
	}
	k.refill(now)
	return k.wait()
}

// Take takes a token from key's bucket at now, and reports whether there was one.
func (b *Buckets) Take(key string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, ok := b.buckets[key]
	if !ok {
		if len(b.buckets) >= b.maxKeys {
			for key, k := range b.buckets {
				if k.full(now) {
					delete(b.buckets, key)
				}
			}
			if len(b.buckets) >= b.maxKeys {
				return true // no room to remember it: see the type's comment
			}
		}
		k = NewBucket(b.rate, b.burst)
		b.buckets[key] = k
	}
	return k.Take(now)
}

// Len is the number of keys remembered.
func (b *Buckets) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buckets)
}

// Counts is an amount in use per key (connections, bytes), each key bounded by a limit that
// the caller gives, safe for concurrent use. A key at 0 is forgotten.
type Counts struct {
	mu   sync.Mutex
	used map[string]int64
}

// NewCounts returns counts at 0.
func NewCounts() *Counts { return &Counts{used: map[string]int64{}} }

// Add adds n to key's count when the result stays within limit (limit <= 0: no limit) and
// reports whether it did. A count of 0 may always add one n, so a single n above the limit is
// still taken when nothing else of the key is in use.
func (c *Counts) Add(key string, n, limit int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	used := c.used[key]
	if limit > 0 && used > 0 && used+n > limit {
		return false
	}
	c.used[key] = used + n
	return true
}

// Sub gives n of key's count back.
func (c *Counts) Sub(key string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if left := c.used[key] - n; left > 0 {
		c.used[key] = left
	} else {
		delete(c.used, key)
	}
}

// Get is key's count.
func (c *Counts) Get(key string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used[key]
}
