package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// BenchmarkInsertSmallBatch times what a live screen waits for after the flush interval: one
// insert of 20 events (a flush at a few hundred events a second) into the raw table and every
// materialized view of the schema, 50 ms apart as a drainer's flushes are. It compares ClickHouse
// versions, not code: run it on 18.16 and on 26.x (chdb, see clickhouse/compat/README.md).
//
//	go test -run '^$' -bench InsertSmallBatch -benchtime 40x ./internal/store/
func BenchmarkInsertSmallBatch(b *testing.B) {
	db := storetest.Open(b)
	ctx := context.Background()
	evs := make([]event.Event, 20)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		for j := range evs {
			evs[j] = event.Event{EventID: fmt.Sprintf("%d-%d", i, j), OccurredAt: time.Now(), Moment: "service",
				Channel: "voice", Touchpoint: "billing_call", Region: "north"}
		}
		time.Sleep(50 * time.Millisecond)
		b.StartTimer()
		if err := db.InsertEvents(ctx, evs, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/insert")
}

// BenchmarkPrepareInsert times the Go side of an ingest insert of 20,000 demo events: opening
// the INSERT and building its block (PrepareInsert), then dropping it unsent, so that ClickHouse's
// own work does not count. It is the drainer's work per full batch.
//
//	go test -run '^$' -bench PrepareInsert -benchtime 20x ./internal/store/
func BenchmarkPrepareInsert(b *testing.B) {
	db := storetest.Open(b)
	ctx := context.Background()
	cfg := demo.DefaultConfig()
	cfg.Rate = 200
	gen, err := demo.NewGenerator(cfg, time.Now().Add(-3*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	evs := gen.Generate(20_000)
	received := make([]time.Time, len(evs))
	for i := range received {
		received[i] = time.Now()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ins, err := db.PrepareInsert(ctx, evs, received, "")
		if err != nil {
			b.Fatal(err)
		}
		ins.Abort()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}
