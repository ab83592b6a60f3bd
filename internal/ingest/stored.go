package ingest

// What the drainer knows, without asking ClickHouse, about which events are stored: the
// drainer's state only, touched by no other goroutine.

import "github.com/truthboard/truthboard/internal/event"

// storedKeys answers "may this event already be stored?" for the drainer, so that it asks
// ClickHouse only about the events for which the answer is yes: usually none in a batch of
// live traffic. It holds the keys of the events the drainer inserted or found stored, as
// 64-bit hashes (half of a keyHash), in two generations of at most half its capacity each; when the older
// generation is dropped, the newest second among its keys becomes the bound at or below which
// the drainer knows nothing (lookBelow), as does, at the start, the newest event ClickHouse
// already holds.
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

type generation struct {
	hashes map[uint64]struct{}
	newest int64 // the newest second among the keys
}

func newStoredKeys(capacity int) storedKeys {
	half := max(1, capacity/2)
	return storedKeys{half: half, cur: newGeneration(half), prev: newGeneration(0)}
}

func newGeneration(size int) generation {
	return generation{hashes: make(map[uint64]struct{}, size)}
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
	_, inCur := s.cur.hashes[h]
	_, inPrev := s.prev.hashes[h]
	return inCur || inPrev
}

// add records that the event of key k, whose hash is h, is stored.
func (s *storedKeys) add(k event.Key, h uint64) {
	if len(s.cur.hashes) >= s.half {
		s.lookBelow = max(s.lookBelow, s.prev.newest)
		s.prev, s.cur = s.cur, newGeneration(s.half)
	}
	s.cur.hashes[h] = struct{}{}
	s.cur.newest = max(s.cur.newest, k.Second)
}
