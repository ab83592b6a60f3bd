package ingest

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/truthboard/truthboard/internal/event"
)

// BenchmarkStoredKeys measures the drainer's memory of stored keys when full (DefaultStoredKeys
// keys) and the cost of checking and recording one key, the work it does per event instead of
// a lookup in ClickHouse.
//
//	go test -run '^$' -bench StoredKeys -benchtime 3x ./internal/ingest/
func BenchmarkStoredKeys(b *testing.B) {
	keys := make([]event.Key, DefaultStoredKeys)
	for i := range keys {
		keys[i] = event.Key{EventID: "4f1c2a9e-" + strconv.Itoa(i), Second: 1_780_000_000 + int64(i/3000)}
	}
	var before, after runtime.MemStats
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, hash := newStoredKeys(DefaultStoredKeys), newHasher()
		s.start(0)
		for _, k := range keys {
			h := hash.of(k)[0]
			if s.mayHave(k, h) {
				b.Fatal("a new key counted as stored")
			}
			s.add(k, h)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB/full")
		runtime.KeepAlive(&s)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/key")
}
