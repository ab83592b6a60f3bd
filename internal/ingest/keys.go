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
// recently, and the claims decided at Write (whether this node holds each).
type memo struct {
	held map[keyHash]bool
	ring []keyHash
	next int
}

func newMemo(n int) memo {
	return memo{held: make(map[keyHash]bool), ring: make([]keyHash, 0, n)}
}

func (m *memo) get(h keyHash) (held, ok bool) { held, ok = m.held[h]; return held, ok }

func (m *memo) has(h keyHash) bool { _, ok := m.held[h]; return ok }

func (m *memo) add(h keyHash) { m.put(h, true) }

func (m *memo) put(h keyHash, held bool) {
	if _, ok := m.held[h]; !ok {
		if len(m.ring) < cap(m.ring) {
			m.ring = append(m.ring, h)
		} else {
			delete(m.held, m.ring[m.next])
			m.ring[m.next] = h
			m.next = (m.next + 1) % len(m.ring)
		}
	}
	m.held[h] = held
}
