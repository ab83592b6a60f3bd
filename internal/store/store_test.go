package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

func u8(v uint8) *uint8 { return &v }

func TestMigrateTwiceIsHarmless(t *testing.T) {
	s := storetest.Open(t) // migrates once
	applied, err := s.Migrate(context.Background())
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if len(applied) != 0 {
		t.Fatalf("second migrate applied %d migrations, want 0", len(applied))
	}
	ms, _ := store.Migrations()
	var n uint64
	if err := s.Conn().QueryRow(context.Background(), "SELECT count() FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(ms)) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
	}
}

// opt writes an optional number for a comparison: its value or "none".
func opt[T any](p *T) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

// Inserts of several sizes one after another keep each event's own attributes, sorted by key,
// and its own fields and optional numbers: the column slices are reused from one insert to the
// next.
func TestInsertKeepsEachEventsValuesAcrossInserts(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Second)
	want := map[string][]string{} // event_id: region, then attribute keys and values in key order
	for round, n := range []int{50, 20, 35} {
		evs := make([]event.Event, n)
		for i := range evs {
			id := fmt.Sprintf("r%d-%d", round, i)
			e := event.Event{EventID: id, OccurredAt: at, Moment: "fmot", Channel: "web", Touchpoint: "checkout",
				Region: fmt.Sprintf("region-%d", (i+round)%3)}
			if (i+round)%3 == 0 {
				e.CSAT = u8(uint8(1 + i%5))
			}
			if (i+round)%2 == 0 {
				w := uint32(1000 * i)
				e.WaitMS = &w
			}
			if i%5 == round {
				v := -0.5
				e.Sentiment = &v
			}
			row := []string{e.Region, opt(e.CSAT), opt(e.WaitMS), opt(e.Sentiment)}
			var keys, values []string
			for k := (i + round) % 4; k > 0; k-- { // keys put in reverse order
				if e.Attributes == nil {
					e.Attributes = map[string]string{}
				}
				key, value := fmt.Sprintf("k%d", k), fmt.Sprintf("%s-v%d", id, k)
				e.Attributes[key] = value
				keys, values = append([]string{key}, keys...), append([]string{value}, values...)
			}
			want[id] = append(append(row, keys...), values...)
			evs[i] = e
		}
		if err := s.InsertEvents(ctx, evs, at); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.Conn().Query(ctx, "SELECT event_id, region, csat, wait_ms, sentiment, attr_keys, attr_values FROM events")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var (
			id, region   string
			csat         *uint8
			wait         *uint32
			sentiment    *float64
			keys, values []string
		)
		if err := rows.Scan(&id, &region, &csat, &wait, &sentiment, &keys, &values); err != nil {
			t.Fatal(err)
		}
		got++
		row := append(append([]string{region, opt(csat), opt(wait), opt(sentiment)}, keys...), values...)
		if !slices.Equal(row, want[id]) {
			t.Errorf("event %s stored %q, want %q", id, row, want[id])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got != len(want) {
		t.Fatalf("%d events stored, want %d", got, len(want))
	}
}

func TestInsertAndFindExisting(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 22, 9, 30, 15, 250e6, time.UTC)
	evs := []event.Event{
		{EventID: "a'1\\x", OccurredAt: at, Moment: "fmot", Channel: "web", Touchpoint: "checkout", CSAT: u8(2),
			Attributes: map[string]string{"b": "2", "a": "1"}},
		{EventID: "b", OccurredAt: at.Add(time.Hour), Moment: "service", Channel: "voice", Touchpoint: "billing_call", Outcome: "resolved"},
	}
	if err := s.InsertEvents(ctx, evs, at); err != nil {
		t.Fatal(err)
	}
	n, err := s.CountEvents(ctx)
	if err != nil || n != 2 {
		t.Fatalf("count = %d, %v; want 2", n, err)
	}
	var (
		id         string
		ms         uint16
		neg, pos   uint8
		csat       *uint8
		keys, vals []string
	)
	row := s.Conn().QueryRow(ctx, "SELECT event_id, occurred_ms, negative, positive, csat, attr_keys, attr_values FROM events WHERE moment = 'fmot'")
	if err := row.Scan(&id, &ms, &neg, &pos, &csat, &keys, &vals); err != nil {
		t.Fatal(err)
	}
	if id != "a'1\\x" || ms != 250 || neg != 1 || pos != 0 || csat == nil || *csat != 2 ||
		len(keys) != 2 || keys[0] != "a" || vals[1] != "2" {
		t.Fatalf("stored row = %q %d %d %d %v %v %v", id, ms, neg, pos, csat, keys, vals)
	}

	probe := append(evs, event.Event{EventID: "c", OccurredAt: at, Moment: "fmot", Channel: "web"},
		event.Event{EventID: "b", OccurredAt: at, Moment: "service", Channel: "voice"}) // same id, other second
	found, err := s.ExistingKeys(ctx, probe)
	if err != nil {
		t.Fatal(err)
	}
	want := map[event.Key]bool{evs[0].Key(): true, evs[1].Key(): true}
	if len(found) != len(want) {
		t.Fatalf("found %v, want %v", found, want)
	}
	for k := range want {
		if !found[k] {
			t.Fatalf("found %v, missing %v", found, k)
		}
	}
}

// WaitForInserts waits for the inserts of one writer (by query id prefix), and ends one that
// runs past a grace period, as an insert abandoned by a crashed writer would; it leaves other
// writers' queries alone.
func TestWaitForInserts(t *testing.T) {
	storetest.SkipOnChdb(t, "it needs two queries running while a third looks at system.processes and kills one")
	s := storetest.Open(t)
	ctx := context.Background()
	// Stand-ins for inserts that run on: 20 one-row blocks of half a second each.
	slow := func(id string) chan error {
		done := make(chan error, 1)
		go func() {
			done <- s.Conn().Exec(clickhouse.Context(ctx, clickhouse.WithQueryID(id)),
				"SELECT sleepEachRow(0.5) FROM numbers(20) SETTINGS max_block_size = 1")
		}()
		return done
	}
	waitRunning := func(id string) {
		for range 200 {
			var n uint64
			if err := s.Conn().QueryRow(ctx, "SELECT count() FROM system.processes WHERE query_id = ?", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("query %s never showed in system.processes", id)
	}
	mine, other := slow("truthboard-insert-node1-a-1"), slow("truthboard-insert-node2-a-1")
	waitRunning("truthboard-insert-node1-a-1")
	waitRunning("truthboard-insert-node2-a-1")

	start := time.Now()
	if err := s.WaitForInserts(ctx, "truthboard-insert-node1-"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("WaitForInserts returned after %v, before the 2 s grace", took)
	}
	if err := <-mine; err == nil {
		t.Errorf("the abandoned query finished normally, want it killed")
	}
	select {
	case err := <-other:
		t.Errorf("another writer's query ended too: %v", err)
	default:
	}
	// Nothing of node1 runs now: it returns at once.
	start = time.Now()
	if err := s.WaitForInserts(ctx, "truthboard-insert-node1-"); err != nil || time.Since(start) > time.Second {
		t.Errorf("with nothing running: %v after %v", err, time.Since(start))
	}
	_ = s.Conn().Exec(ctx, "KILL QUERY WHERE query_id = 'truthboard-insert-node2-a-1' SYNC")
	<-other
}
