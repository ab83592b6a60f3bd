package ingest

// What the drainer knows, without asking ClickHouse, about which events are stored: the
// drainer's state only, touched by no other goroutine.

import "github.com/truthboard/truthboard/internal/event"

// storedKeys answers "may this event already be stored?" for the drainer, so that it asks
// ClickHouse only about the events for which the answer is yes: usually none in a batch of
// live traffic. It holds the keys of the events the drainer inserted or found stored, as
// 64-bit hashes (half of a keyHash, in a hashSet), in two generations of at most half its
// capacity each; when the older generation is dropped, the newest second among its keys becomes
// the bound at or below which the drainer knows nothing (lookBelow), as does, at the start, the
// newest event ClickHouse already holds.
//
// Why "no" is exact: an event stored before has a key in the index (same hash), or it was
// stored before the drainer started (so its second is at most the newest stored then), or its
// key was dropped with an older generation (so its second is at most that generation's
// newest). Every other answer is "maybe", and ClickHouse is asked: a hash that matches
// another key only costs a lookup.
type storedKeys struct {
	half      int // the most keys of one generation
	cur, prev generation
	// lookBelow is the Unix second at or below which an event may be stored without its key
	// being here; known is false until the newest stored event was read at the start.
	lookBelow int64
	known     bool
}

func newStoredKeys(capacity int) storedKeys {
	half := max(1, capacity/2)
	return storedKeys{half: half, cur: newGeneration(half), prev: newGeneration(0)}
}

type generation struct {
	hashes hashSet
	newest int64 // the newest second among the keys
}

func newGeneration(size int) generation {
	return generation{hashes: newHashSet(size)}
}

// hashSet is a set of 64-bit hashes for the drainer: open addressing with linear probing, at
// most half full, as memo. Full, a memory of 250,000 keys takes 4.0 MiB in it against 9.0 MiB
// in Go maps, and checking and recording a key about 70 ns against 120 (BenchmarkStoredKeys).
// A slot of 0 is empty, so the hash 0 is kept as 1: the keys of both then share a hash, which
// costs at most a lookup.
type hashSet struct {
	slots []uint64 // a power of two long, at least twice the most hashes held
	mask  int
	n     int
}

func newHashSet(max int) hashSet {
	size := 2
	for size < 2*max {
		size *= 2
	}
	return hashSet{slots: make([]uint64, size), mask: size - 1}
}

// find returns the slot of h, or the empty slot where h would go.
func (s *hashSet) find(h uint64) int {
	h = max(h, 1)
	i := int(h) & s.mask
	for s.slots[i] != 0 && s.slots[i] != h {
		i = (i + 1) & s.mask
	}
	return i
}

func (s *hashSet) has(h uint64) bool { return s.slots[s.find(h)] != 0 }

// add adds h; the set must have room (n below half its slots).
func (s *hashSet) add(h uint64) {
	if i := s.find(h); s.slots[i] == 0 {
		s.slots[i] = max(h, 1)
		s.n++
	}
}

// start sets what the drainer knows at its start: nothing at or below newest, the second of
// the newest event ClickHouse holds.
func (s *storedKeys) start(newest int64) {
	s.lookBelow = max(s.lookBelow, newest)
	s.known = true
}

// forgetStart makes the newest stored second unknown again, until start: events were stored
// meanwhile by another process (a dead-letter replay).
func (s *storedKeys) forgetStart() { s.known = false }

// mayHave reports whether the event of key k, whose hash is h, may already be stored.
func (s *storedKeys) mayHave(k event.Key, h uint64) bool {
	if !s.known || k.Second <= s.lookBelow {
		return true
	}
	return s.cur.hashes.has(h) || s.prev.hashes.has(h)
}

// add records that the event of key k, whose hash is h, is stored.
func (s *storedKeys) add(k event.Key, h uint64) {
	if s.cur.hashes.n >= s.half {
		s.lookBelow = max(s.lookBelow, s.prev.newest)
		s.prev, s.cur = s.cur, newGeneration(s.half)
	}
	s.cur.hashes.add(h)
	s.cur.newest = max(s.cur.newest, k.Second)
}
