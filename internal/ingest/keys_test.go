package ingest

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"

	"github.com/truthboard/truthboard/internal/event"
)

// The memo answers as a map of the last n keys put would, through evictions that move keys
// back over the gaps they leave, with keys crowded onto a few home slots.
func TestMemoRemembersTheLastKeysPut(t *testing.T) {
	const n = 50
	rng := rand.New(rand.NewPCG(1, 2))
	m := newMemo(n)
	want := map[keyHash]bool{}
	var order []keyHash
	for step := range 20_000 {
		// Eight home slots only, so that long runs form and wrap around the table's end.
		h := keyHash{uint64(rng.IntN(8)) + uint64(len(m.slots)-4), uint64(rng.IntN(3 * n))}
		held := rng.IntN(2) == 0
		if _, ok := want[h]; !ok {
			order = append(order, h)
			if len(order) > n {
				delete(want, order[0])
				order = order[1:]
			}
		}
		want[h] = held
		m.put(h, held)
		for k, v := range want {
			if got, ok := m.get(k); !ok || got != v {
				t.Fatalf("step %d: key %v: got (%v, %v), want (%v, true)", step, k, got, ok, v)
			}
		}
		if len(order) == n && m.has(keyHash{1 << 40, 0}) {
			t.Fatalf("step %d: a key never put is remembered", step)
		}
		used := 0
		for _, s := range m.slots {
			if s.used {
				used++
			}
		}
		if used != len(want) {
			t.Fatalf("step %d: %d slots used for %d keys", step, used, len(want))
		}
	}
}

// mapMemo is the memo as a Go map with a ring, as it was before memo: the baseline of
// BenchmarkMemo.
type mapMemo struct {
	held map[keyHash]bool
	ring []keyHash
	next int
}

func (m *mapMemo) has(h keyHash) bool { _, ok := m.held[h]; return ok }

func (m *mapMemo) put(h keyHash, held bool) {
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

// BenchmarkMemo measures the answers' memory of recent keys as ingest uses it, once full: check
// a new key, then add it (evicting the oldest), against the same on a Go map.
//
//	go test -run '^$' -bench Memo -benchtime 3000000x ./internal/ingest/
func BenchmarkMemo(b *testing.B) {
	hash := newHasher()
	keys := make([]keyHash, 1<<20)
	for i := range keys {
		keys[i] = hash.of(event.Key{EventID: "4f1c2a9e-" + strconv.Itoa(i), Second: 1_780_000_000 + int64(i/3000)})
	}
	heap := func() uint64 {
		var st runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&st)
		return st.HeapAlloc
	}
	type memory interface {
		has(keyHash) bool
		put(keyHash, bool)
	}
	run := func(b *testing.B, open func() memory) {
		before := heap()
		m := open()
		for _, h := range keys[:DefaultRecentKeys] {
			m.put(h, true)
		}
		size := float64(heap()-before) / (1 << 20)
		b.ResetTimer()
		for i := range b.N {
			h := keys[i%len(keys)]
			if !m.has(h) {
				m.put(h, true)
			}
		}
		b.ReportMetric(size, "MiB")
	}
	b.Run("table", func(b *testing.B) {
		run(b, func() memory { m := newMemo(DefaultRecentKeys); return &m })
	})
	b.Run("go-map", func(b *testing.B) {
		run(b, func() memory { return &mapMemo{held: map[keyHash]bool{}, ring: make([]keyHash, 0, DefaultRecentKeys)} })
	})
}

// The drainer's hash set holds exactly what was added, the hash 0 as 1, through runs that wrap
// around the end of its slots.
func TestHashSetHoldsWhatWasAdded(t *testing.T) {
	s := newHashSet(100)
	rng := rand.New(rand.NewPCG(3, 4))
	in := map[uint64]bool{}
	top := uint64(len(s.slots) - 1)
	for _, h := range []uint64{0, top, top - 1, 2*top + 1} { // the last lands on slot top too
		s.add(h)
		in[max(h, 1)] = true
	}
	for len(in) < 100 {
		h := rng.Uint64()
		s.add(h)
		s.add(h) // twice: counted once
		in[h] = true
	}
	if s.n != len(in) {
		t.Fatalf("n = %d, want %d", s.n, len(in))
	}
	for h := range in {
		if !s.has(h) {
			t.Fatalf("hash %d added but not held", h)
		}
	}
	if !s.has(0) || !s.has(1) {
		t.Fatal("the hash 0 is not held as 1")
	}
	for range 10_000 {
		if h := rng.Uint64(); !in[h] && s.has(h) {
			t.Fatalf("hash %d never added but held", h)
		}
	}
}
