package quota

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func TestBucketBurstThenRate(t *testing.T) {
	b := NewBucket(2, 10)
	for i := range 10 {
		if !b.Take(t0) {
			t.Fatalf("take %d of a burst of 10 refused", i+1)
		}
	}
	if b.Take(t0) {
		t.Fatal("an 11th take in the same instant was allowed")
	}
	if b.Take(t0.Add(400 * time.Millisecond)) {
		t.Fatal("a take 0.4 s later was allowed at 2 per second")
	}
	if !b.Take(t0.Add(500 * time.Millisecond)) {
		t.Fatal("a take 0.5 s later was refused at 2 per second")
	}
	// A clock going back earns nothing and takes nothing away.
	if b.Take(t0) {
		t.Fatal("a take at an earlier time was allowed")
	}
	// Long idle refills to the burst, not beyond.
	later := t0.Add(time.Hour)
	n := 0
	for b.Take(later) {
		n++
	}
	if n != 10 {
		t.Fatalf("%d takes after an hour, want the burst of 10", n)
	}
}

func TestBucketsPerKey(t *testing.T) {
	b := NewBuckets(1.0/3, 3, 100) // 20 a minute after a burst of 3
	for range 3 {
		b.Take("10.0.0.1", t0)
	}
	if w := b.Wait("10.0.0.1", t0); w != 3*time.Second {
		t.Fatalf("wait %v after the burst, want 3s", w)
	}
	if w := b.Wait("10.0.0.2", t0); w != 0 {
		t.Fatalf("another key waits %v", w)
	}
	if w := b.Wait("10.0.0.1", t0.Add(3*time.Second)); w != 0 {
		t.Fatalf("wait %v once a token was earned", w)
	}
}

// The table is bounded: keys whose bucket is full again are forgotten to make room, and when
// every remembered key is in debt a new key is let through untracked.
func TestBucketsBounded(t *testing.T) {
	b := NewBuckets(1, 1, 4)
	for i := range 4 {
		b.Take(strconv.Itoa(i), t0)
	}
	if !b.Take("new", t0) || b.Len() != 4 {
		t.Fatalf("a new key with the table full of debtors: len %d, want it let through untracked", b.Len())
	}
	if w := b.Wait("new", t0); w != 0 {
		t.Fatalf("the untracked key waits %v", w)
	}
	// A second later every bucket is full again: room is made.
	if !b.Take("new", t0.Add(time.Second)) || b.Len() != 1 {
		t.Fatalf("after the others refilled: len %d, want only the new key", b.Len())
	}
}

func TestCounts(t *testing.T) {
	c := NewCounts()
	first := c.Add("k", 8, 16)
	second := c.Add("k", 8, 16)
	if !first || !second || c.Add("k", 1, 16) {
		t.Fatal("want 16 of 16 taken, then a refusal")
	}
	if !c.Add("other", 8, 16) {
		t.Fatal("another key refused")
	}
	c.Sub("k", 8)
	if got := c.Get("k"); got != 8 {
		t.Fatalf("count %d after giving 8 back, want 8", got)
	}
	// A single amount over the limit is taken when nothing else of the key is.
	if !c.Add("big", 32, 16) || c.Add("big", 1, 16) {
		t.Fatal("want one oversized amount alone, then a refusal")
	}
	c.Sub("big", 32)
	c.Sub("k", 8)
	if c.Get("big") != 0 || c.Get("k") != 0 || len(c.used) != 1 {
		t.Fatalf("keys at 0 are not forgotten: %v", c.used)
	}
	if !c.Add("free", 1000, 0) {
		t.Fatal("no limit refused")
	}
}

func TestCountsConcurrent(t *testing.T) {
	c := NewCounts()
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := 0
	for range 100 {
		wg.Go(func() {
			if c.Add("k", 1, 10) {
				mu.Lock()
				taken++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if taken != 10 || c.Get("k") != 10 {
		t.Fatalf("%d taken, count %d, want 10 of 100 concurrent adds", taken, c.Get("k"))
	}
}
