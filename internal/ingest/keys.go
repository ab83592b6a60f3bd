package ingest

// How the writer remembers events by key without holding their strings: the answers' memory of
// recent events, the claims decided at Write and the drainer's stored keys hold 128-bit hashes.

import (
	"hash/maphash"
	"time"

	"github.com/truthboard/truthboard/internal/event"
)

// keyHash stands for an event's key: two 64-bit hashes under seeds chosen at start, so that a
// client cannot make two of its keys share one, and two keys share one by chance with odds of
// about n²/2¹²⁹ for n keys remembered (never, in practice). A memory of keyHashes holds no
// pointer for the garbage collector to follow, and compares in one step.
type keyHash [2]uint64

// hasher gives the keyHash of a key; its seeds are the same for the life of the Writer.
type hasher struct{ a, b maphash.Seed }

func newHasher() hasher { return hasher{a: maphash.MakeSeed(), b: maphash.MakeSeed()} }

func (h hasher) of(k event.Key) keyHash {
	return keyHash{maphash.Comparable(h.a, k), maphash.Comparable(h.b, k)}
}

// pending is events on their way to ClickHouse, each with when it was received, its key and
// the key's hash; every slice has one entry per event.
type pending struct {
	evs      []event.Event
	received []time.Time
	keys     []event.Key
	hashes   []keyHash
}

func newPending(h hasher, evs []event.Event, received []time.Time) pending {
	p := pending{evs: evs, received: received, keys: make([]event.Key, len(evs)), hashes: make([]keyHash, len(evs))}
	for i := range evs {
		p.keys[i] = evs[i].Key()
		p.hashes[i] = h.of(p.keys[i])
	}
	return p
}

func (p pending) len() int { return len(p.evs) }

// slice is the events [i, j) of p.
func (p pending) slice(i, j int) pending {
	return pending{evs: p.evs[i:j], received: p.received[i:j], keys: p.keys[i:j], hashes: p.hashes[i:j]}
}

// only is the events of p whose index keep reports true, in order.
func (p pending) only(keep func(i int) bool) pending {
	var q pending
	for i := range p.evs {
		if keep(i) {
			q.evs = append(q.evs, p.evs[i])
			q.received = append(q.received, p.received[i])
			q.keys = append(q.keys, p.keys[i])
			q.hashes = append(q.hashes, p.hashes[i])
		}
	}
	return q
}

// memo remembers the last n keys put, by hash, with a flag each: the keys acknowledged
// recently, and the claims decided at Write (whether this node holds each). A full memo forgets
// its oldest key to take a new one.
//
// It is a table of its own rather than a Go map: open addressing with linear probing, at most
// half full, each key at the slot its hash's first half names or in the slots right after.
// Ingest touches it two to three times per event (Write's check and add, the eviction of the
// oldest key), and with this many keys each touch is a cache miss; a lookup here reads one slot
// or its next neighbours, with no pointer to follow, where a Go map of the same keys spent
// about half as long again (BenchmarkMemo).
type memo struct {
	slots []memoSlot // a power of two long, at least twice the most keys held
	mask  int
	ring  []keyHash // the keys in the order put, the oldest at next once the ring is full
	next  int
}

type memoSlot struct {
	key        keyHash
	used, held bool
}

func newMemo(n int) memo {
	size := 2
	for size < 2*n {
		size *= 2
	}
	return memo{slots: make([]memoSlot, size), mask: size - 1, ring: make([]keyHash, 0, n)}
}

// find returns the slot of h, or the empty slot where h would go.
func (m *memo) find(h keyHash) int {
	i := int(h[0]) & m.mask
	for m.slots[i].used && m.slots[i].key != h {
		i = (i + 1) & m.mask
	}
	return i
}

func (m *memo) get(h keyHash) (held, ok bool) {
	s := &m.slots[m.find(h)]
	return s.held, s.used
}

func (m *memo) has(h keyHash) bool { return m.slots[m.find(h)].used }

func (m *memo) add(h keyHash) { m.put(h, true) }

func (m *memo) put(h keyHash, held bool) {
	i := m.find(h)
	if !m.slots[i].used {
		if len(m.ring) < cap(m.ring) {
			m.ring = append(m.ring, h)
		} else {
			m.remove(m.ring[m.next])
			m.ring[m.next] = h
			m.next = (m.next + 1) % len(m.ring)
			i = m.find(h) // the removal may have moved the slots after h's
		}
	}
	m.slots[i] = memoSlot{key: h, used: true, held: held}
}

// remove empties h's slot and moves back the keys after it that would no longer be found past
// the gap (deletion without tombstones, Knuth's Algorithm R).
func (m *memo) remove(h keyHash) {
	gap := m.find(h)
	if !m.slots[gap].used {
		return
	}
	for j := (gap + 1) & m.mask; m.slots[j].used; j = (j + 1) & m.mask {
		// The key at j stays when its home slot lies cyclically in (gap, j].
		home := int(m.slots[j].key[0]) & m.mask
		if (j-home)&m.mask < (j-gap)&m.mask {
			continue
		}
		m.slots[gap] = m.slots[j]
		gap = j
	}
	m.slots[gap] = memoSlot{}
}
