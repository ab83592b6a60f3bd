package ingest_test

// The drainer asks ClickHouse only about the events that may be stored: live traffic costs no
// lookup, and every way an event can come back (a retry the answer's memory forgot, a retry
// after the drainer forgot the key, a late event, a retry after a restart) is still looked up
// and stored once.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/claim"
	"github.com/truthboard/truthboard/internal/claim/claimtest"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// attempts records what each insert attempt of a writer looked up.
type attempts struct {
	mu  sync.Mutex
	all []ingest.Attempt
}

func (a *attempts) observe(at ingest.Attempt) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.all = append(a.all, at)
}

// last is the latest attempt.
func (a *attempts) last(t *testing.T) ingest.Attempt {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.all) == 0 {
		t.Fatal("no insert attempt seen")
	}
	return a.all[len(a.all)-1]
}

// eventsIn returns n events with ids prefix-0 … in the second sec.
func eventsIn(prefix string, n int, sec time.Time) []event.Event {
	evs := events(prefix, n)
	for i := range evs {
		evs[i].OccurredAt = sec.Add(time.Duration(i) * time.Millisecond)
	}
	return evs
}

func TestWriterLooksUpOnlyWhatMayBeStored(t *testing.T) {
	db := storetest.Open(t)
	seen := &attempts{}
	o := testOptions(t)
	o.RecentKeys = 1 // the answer forgets at once: retries reach the drainer
	o.StoredKeys = 8 // two generations of 4 keys
	o.Observe = seen.observe
	w := open(t, db, o)
	base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	second := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	var want [][]event.Event

	// step writes evs as one batch and checks what the drainer looked up and that every
	// event is stored once.
	step := func(name string, evs []event.Event, lookedUp, inserted int) {
		t.Helper()
		if _, err := w.Write(waitCtx(t), evs); err != nil {
			t.Fatalf("%s: write: %v", name, err)
		}
		drained(t, w)
		if a := seen.last(t); a.LookedUp != lookedUp || a.Inserted != inserted || a.Err != nil {
			t.Fatalf("%s: the drainer looked up %d events and inserted %d (%v), want %d looked up and %d inserted",
				name, a.LookedUp, a.Inserted, a.Err, lookedUp, inserted)
		}
		want = append(want, evs[:inserted])
		assertStored(t, db, ids(want...))
	}

	first := eventsIn("first", 2, second(0))
	step("the first batch after the start (an insert may be in flight)", first, 2, 2)
	step("live traffic, newer than anything forgotten", eventsIn("live", 2, second(1)), 0, 2)
	step("a retry the answer forgot, its key still held", first[:1], 1, 0)

	// Four more keys fill a generation: the next batch drops the oldest one, with first-*.
	step("more live traffic", eventsIn("more", 4, second(2)), 0, 4)
	step("live traffic after the oldest keys were dropped", eventsIn("after", 1, second(3)), 0, 1)
	step("a retry of a dropped key, at or before the newest dropped second", first, 2, 0)
	step("a late event of a dropped second, new", eventsIn("late", 1, second(1)), 1, 1)

	// After a restart, what was stored before is known only by ClickHouse's newest second.
	if err := w.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	w = open(t, db, o)
	step("the first batch after a restart", eventsIn("restart", 1, second(5)), 1, 1)
	step("a retry of an event stored before the restart", eventsIn("more", 1, second(2)), 1, 0)
	step("live traffic after the restart", eventsIn("fresh", 3, second(6)), 0, 3)
}

// With LookupEveryBatch, as several nodes without claims run, every event is looked up.
func TestWriterLookupEveryBatch(t *testing.T) {
	db := storetest.Open(t)
	seen := &attempts{}
	o := testOptions(t)
	o.LookupEveryBatch = true
	o.Observe = seen.observe
	w := open(t, db, o)
	for i, prefix := range []string{"a", "b", "c"} {
		mustWrite(t, w, events(prefix, 3), 3, 0)
		drained(t, w)
		if a := seen.last(t); a.LookedUp != 3 || a.Inserted != 3 {
			t.Fatalf("batch %d: looked up %d, inserted %d; want 3 and 3", i, a.LookedUp, a.Inserted)
		}
	}
}

// With claims, another node may have stored an event under a claim that has expired since:
// every event older than the claim window (less MaxFutureSkew) is looked up, newer ones are
// not, whatever this node's own memory says.
func TestWriterWithClaimsLooksUpWhatTheWindowForgot(t *testing.T) {
	db := storetest.Open(t)
	nats := claimtest.Start(t)
	claims, err := claim.Open(context.Background(), claim.Options{URL: nats.URL(), Window: time.Hour}, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(claims.Close)
	seen := &attempts{}
	o := testOptions(t)
	o.Claims, o.ClaimWindow = claims, time.Hour
	o.Observe = seen.observe
	w := open(t, db, o)
	now := time.Now().UTC().Truncate(time.Second)

	mustWrite(t, w, eventsIn("start", 1, now.Add(-time.Minute)), 1, 0)
	drained(t, w) // the first batch after the start looks everything up
	for _, tc := range []struct {
		name     string
		age      time.Duration
		lookedUp int
	}{
		{"a minute old", time.Minute, 0},
		{"50 minutes old: within the window less the skew", 50 * time.Minute, 0},
		{"two hours old: its claim may have expired", 2 * time.Hour, 2},
	} {
		mustWrite(t, w, eventsIn(tc.name, 2, now.Add(-tc.age)), 2, 0)
		drained(t, w)
		if a := seen.last(t); a.LookedUp != tc.lookedUp || a.Inserted != 2 {
			t.Errorf("%s: looked up %d and inserted %d, want %d looked up and 2 inserted", tc.name, a.LookedUp, a.Inserted, tc.lookedUp)
		}
	}
}
