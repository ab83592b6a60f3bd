package ingest_test

// Tests of the Writer on a real ClickHouse database (storetest): flushing by rows and by time,
// the duplicate rule, the queue bound, an unreachable or refusing ClickHouse, and Close. A slow
// ClickHouse is played by heldSink, which passes every call to the real store once the test
// lets it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

var (
	discard = slog.New(slog.DiscardHandler)
	// at is a recent second, the same for every call of events so that equal ids make equal
	// events.
	at = time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
)

// events returns n valid events with ids prefix-0 … prefix-(n-1), in the second at.
func events(prefix string, n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{
			EventID:    fmt.Sprintf("%s-%d", prefix, i),
			OccurredAt: at.Add(time.Duration(i) * time.Millisecond),
			Moment:     event.Moments[i%len(event.Moments)],
			Channel:    event.Channels[i%len(event.Channels)],
			Touchpoint: "checkout",
		}
	}
	return evs
}

func ids(evs ...[]event.Event) []string {
	var out []string
	for _, es := range evs {
		for _, e := range es {
			out = append(out, e.EventID)
		}
	}
	slices.Sort(out)
	return out
}

// storedIDs lists the event ids of the raw table, sorted, once per row.
func storedIDs(t *testing.T, db *store.Store) []string {
	t.Helper()
	rows, err := db.Conn().Query(context.Background(), "SELECT event_id FROM events ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func assertStored(t *testing.T, db *store.Store, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	slices.Sort(want)
	if got := storedIDs(t, db); !slices.Equal(got, want) {
		t.Fatalf("stored %d rows %v, want %d %v", len(got), got, len(want), want)
	}
}

// waitCtx bounds a wait that must end: it is a deadlock guard, not a speed requirement.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newWriter(t *testing.T, sink ingest.Sink, o ingest.Options) *ingest.Writer {
	w := ingest.New(sink, o, discard)
	t.Cleanup(func() {
		if h, ok := sink.(*heldSink); ok {
			h.letGo()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return w
}

// waitQueued waits until the writer holds n events.
func waitQueued(t *testing.T, w *ingest.Writer, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for w.Queued() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the writer holds %d events, want %d", w.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

type written struct {
	res ingest.Result
	err error
}

// writeAsync writes evs in a goroutine; the answer comes on the channel.
func writeAsync(ctx context.Context, w *ingest.Writer, evs []event.Event) <-chan written {
	c := make(chan written, 1)
	go func() {
		res, err := w.Write(ctx, evs)
		c <- written{res, err}
	}()
	return c
}

func wantResult(t *testing.T, what string, got written, accepted, duplicates int) {
	t.Helper()
	if got.err != nil || got.res != (ingest.Result{Accepted: accepted, Duplicates: duplicates}) {
		t.Fatalf("%s: %+v, %v; want %d accepted, %d duplicates", what, got.res, got.err, accepted, duplicates)
	}
}

// heldSink is the real store behind a gate: each flush waits in its lookup until the test
// opens the gate, as with a ClickHouse that is slow to answer. It records the flushes.
type heldSink struct {
	ingest.Sink
	gate    chan struct{} // closed: flushes go through
	once    sync.Once
	started chan int // the size of each flush, when it starts

	mu      sync.Mutex
	inserts [][]string
}

// newHeldSink returns a held sink in front of s. A writer made by newWriter lets it go before
// closing, so that a failed test does not wait for the flush timeout.
func newHeldSink(s ingest.Sink) *heldSink {
	return &heldSink{Sink: s, gate: make(chan struct{}), started: make(chan int, 100)}
}

func (h *heldSink) letGo() { h.once.Do(func() { close(h.gate) }) }

func (h *heldSink) ExistingKeys(ctx context.Context, evs []event.Event) (map[store.Key]bool, error) {
	select {
	case h.started <- len(evs):
	default: // nobody is counting
	}
	select {
	case <-h.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return h.Sink.ExistingKeys(ctx, evs)
}

func (h *heldSink) InsertEvents(ctx context.Context, evs []event.Event, at time.Time) error {
	err := h.Sink.InsertEvents(ctx, evs, at)
	if err == nil {
		h.mu.Lock()
		h.inserts = append(h.inserts, ids(evs))
		h.mu.Unlock()
	}
	return err
}

func (h *heldSink) flushes() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.inserts)
}

func TestWriterFlushesByRows(t *testing.T) {
	db := storetest.Open(t)
	// With an hour-long interval, only the row count can start a flush.
	w := newWriter(t, db, ingest.Options{FlushRows: 10, FlushInterval: time.Hour})

	a, b, c := events("a", 6), events("b", 4), events("c", 25)
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := w.Write(short, a); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("6 of 10 rows: Write = %v, want it still waiting when its context ends", err)
	}
	if q := w.Queued(); q != 6 {
		t.Fatalf("queued %d, want the 6 events of the abandoned write", q)
	}
	assertStored(t, db, nil)

	// 4 more reach the threshold: both requests are flushed; the abandoned one's events too,
	// since its context only bounded its wait.
	got, err := w.Write(waitCtx(t), b)
	wantResult(t, "the write reaching FlushRows", written{got, err}, 4, 0)
	assertStored(t, db, ids(a, b))

	// One request over the threshold is flushed whole, not split.
	got, err = w.Write(waitCtx(t), c)
	wantResult(t, "a write of 25 with FlushRows 10", written{got, err}, 25, 0)
	assertStored(t, db, ids(a, b, c))
	if q := w.Queued(); q != 0 {
		t.Errorf("queued %d after the flushes, want 0", q)
	}
}

func TestWriterFlushesByInterval(t *testing.T) {
	db := storetest.Open(t)
	held := newHeldSink(db)
	held.letGo()
	w := newWriter(t, held, ingest.Options{FlushRows: 1000, FlushInterval: 300 * time.Millisecond})

	// Requests arriving within one interval share its flush; a later one gets a flush of its own
	// (the timer is armed again after a flush it started).
	var all [][]event.Event
	for round := range 3 {
		var answers []<-chan written
		var batch [][]event.Event
		for i := range 3 {
			evs := events(fmt.Sprintf("r%d-w%d", round, i), 5)
			batch = append(batch, evs)
			answers = append(answers, writeAsync(waitCtx(t), w, evs))
		}
		for i, c := range answers {
			wantResult(t, fmt.Sprintf("round %d, write %d", round, i), <-c, 5, 0)
		}
		all = append(all, batch...)
		assertStored(t, db, ids(all...))
		if f := held.flushes(); len(f) != round+1 || !slices.Equal(f[round], ids(batch...)) {
			t.Fatalf("round %d: flushes %v, want one more with the round's 15 events", round, f)
		}
	}
}

func TestWriterDuplicates(t *testing.T) {
	db := storetest.Open(t)
	held := newHeldSink(db)
	w := newWriter(t, held, ingest.Options{FlushRows: 5, FlushInterval: 200 * time.Millisecond})

	// A first request fills a flush, which the test holds while two more requests queue
	// behind it; both share one event and go into the next flush together.
	first := events("first", 5)
	firstDone := writeAsync(waitCtx(t), w, first)
	if n := <-held.started; n != 5 {
		t.Fatalf("first flush of %d events, want 5", n)
	}
	shared := events("shared", 1)[0]
	r1 := []event.Event{shared, events("one", 1)[0]}
	r2 := []event.Event{events("two", 1)[0], shared}
	r1Done := writeAsync(waitCtx(t), w, r1)
	waitQueued(t, w, 7)
	r2Done := writeAsync(waitCtx(t), w, r2)
	waitQueued(t, w, 9)
	held.letGo()
	wantResult(t, "first", <-firstDone, 5, 0)
	wantResult(t, "r1, first in the flush with the shared event", <-r1Done, 2, 0)
	wantResult(t, "r2, second with it", <-r2Done, 1, 1)
	if f := held.flushes(); len(f) != 2 || !slices.Equal(f[1], []string{"one-0", "shared-0", "two-0"}) {
		t.Fatalf("flushes %v, want the first, then one with r1 and r2 holding the shared event once", f)
	}

	resent := func(e event.Event, change func(*event.Event)) []event.Event {
		change(&e)
		return []event.Event{e}
	}
	for _, tc := range []struct {
		name     string
		evs      []event.Event
		accepted int
	}{
		{name: "repeated within one request", evs: []event.Event{events("dup", 2)[0], events("dup", 2)[1], events("dup", 2)[0]}, accepted: 2},
		{name: "a retry of stored events", evs: first},
		{name: "stored and new mixed", evs: append(events("first", 7)[3:], r1...), accepted: 2}, // first-5, first-6 are new
		// Same id and second with another millisecond and other values: by the rule, the same
		// event sent again, the first one stored wins.
		{name: "same key, other values", evs: resent(shared, func(e *event.Event) {
			e.OccurredAt = e.OccurredAt.Add(999 * time.Millisecond)
			e.Touchpoint, e.CSAT, e.Outcome = "review", new(uint8(5)), "resolved"
		})},
		{name: "same key, other moment and channel", evs: resent(shared, func(e *event.Event) {
			e.Moment, e.Channel = "tmot", "review_site"
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.Write(waitCtx(t), tc.evs)
			wantResult(t, tc.name, written{got, err}, tc.accepted, len(tc.evs)-tc.accepted)
		})
	}
	// The first one stored is the one kept.
	var touchpoint string
	if err := db.Conn().QueryRow(context.Background(), "SELECT touchpoint FROM events WHERE event_id = 'shared-0'").Scan(&touchpoint); err != nil {
		t.Fatal(err)
	}
	if touchpoint != shared.Touchpoint {
		t.Errorf("shared-0 stored with touchpoint %q, want the first one sent (%q)", touchpoint, shared.Touchpoint)
	}
	want := ids(first, events("first", 7)[5:], r1, r2[:1], events("dup", 2))
	assertStored(t, db, want)
}

func TestWriterQueueBound(t *testing.T) {
	db := storetest.Open(t)
	held := newHeldSink(db)
	w := newWriter(t, held, ingest.Options{FlushRows: 5, QueueRows: 20, FlushInterval: 10 * time.Millisecond})

	// A flush the slow store holds, and requests waiting behind it up to the bound.
	a, b, c := events("a", 5), events("b", 5), events("c", 10)
	aDone := writeAsync(waitCtx(t), w, a)
	<-held.started
	bDone := writeAsync(waitCtx(t), w, b)
	cDone := writeAsync(waitCtx(t), w, c)
	waitQueued(t, w, 20)

	// Beyond the bound, requests are refused at once and nothing of them is kept.
	for _, n := range []int{1, 5, 20} {
		if _, err := w.Write(waitCtx(t), events(fmt.Sprintf("over%d", n), n)); !errors.Is(err, ingest.ErrOverloaded) {
			t.Fatalf("a write of %d with a full queue: %v, want ErrOverloaded", n, err)
		}
		if q := w.Queued(); q != 20 {
			t.Fatalf("queued %d after a refused write, want 20", q)
		}
	}

	// Once the store answers, every queued request is stored and the room comes back.
	held.letGo()
	wantResult(t, "a", <-aDone, 5, 0)
	wantResult(t, "b", <-bDone, 5, 0)
	wantResult(t, "c", <-cDone, 10, 0)
	if q := w.Queued(); q != 0 { // answered means no longer counted against the bound
		t.Fatalf("queued %d once every write was answered, want 0", q)
	}
	d := events("d", 20)
	got, err := w.Write(waitCtx(t), d)
	wantResult(t, "a write of exactly the bound on an empty queue", written{got, err}, 20, 0)
	if _, err := w.Write(waitCtx(t), events("e", 21)); !errors.Is(err, ingest.ErrOverloaded) {
		t.Fatalf("a write larger than the whole queue: %v, want ErrOverloaded", err)
	}
	assertStored(t, db, ids(a, b, c, d))
}

// A client that sends its next request as soon as it has its answer finds the room its last
// one took: with a queue of exactly one request, every write of a sequence is taken.
func TestWriterBackToBackWritesFitTheQueue(t *testing.T) {
	db := storetest.Open(t)
	w := newWriter(t, db, ingest.Options{FlushRows: 5, QueueRows: 5, FlushInterval: time.Millisecond})
	evs := events("again", 5) // stored by the first write, duplicates after: quick flushes
	for i := range 200 {
		res, err := w.Write(waitCtx(t), evs)
		if err != nil {
			t.Fatalf("write %d of a sequence, each sent after the answer to the one before: %v", i, err)
		}
		if want := (ingest.Result{Duplicates: 5}); i > 0 && res != want {
			t.Fatalf("write %d: %+v, want %+v", i, res, want)
		}
	}
	assertStored(t, db, ids(evs))
}

func TestWriterClickHouseUnavailable(t *testing.T) {
	direct, proxied, proxy := storetest.OpenProxied(t, 500*time.Millisecond)
	w := newWriter(t, proxied, ingest.Options{FlushInterval: 10 * time.Millisecond, FlushTimeout: 3 * time.Second})

	before := events("before", 5)
	got, err := w.Write(waitCtx(t), before)
	wantResult(t, "with ClickHouse up", written{got, err}, 5, 0)

	proxy.Cut()
	during := events("during", 5)
	for i := range 10 { // a client retrying during the outage: every write fails, none is kept
		_, err := w.Write(waitCtx(t), during)
		var se *ingest.StoreError
		if !errors.As(err, &se) || !se.Unavailable {
			t.Fatalf("write %d with ClickHouse cut off: %v, want a StoreError with Unavailable", i, err)
		}
		if q := w.Queued(); q != 0 {
			t.Fatalf("queued %d after a failed flush, want 0", q)
		}
	}
	assertStored(t, direct, ids(before))

	proxy.Restore()
	got, err = w.Write(waitCtx(t), during)
	wantResult(t, "the retry once ClickHouse is back", written{got, err}, 5, 0)
	assertStored(t, direct, ids(before, during))
}

func TestWriterClickHouseRefuses(t *testing.T) {
	db := storetest.Open(t)
	w := newWriter(t, db, ingest.Options{FlushInterval: 10 * time.Millisecond})
	if err := db.Conn().Exec(context.Background(), "RENAME TABLE events TO events_gone"); err != nil {
		t.Fatal(err)
	}
	_, err := w.Write(waitCtx(t), events("a", 3))
	var se *ingest.StoreError
	if !errors.As(err, &se) || se.Unavailable {
		t.Fatalf("write to a missing table: %v, want a StoreError that is not Unavailable (HTTP 500, not 503)", err)
	}
	if q := w.Queued(); q != 0 {
		t.Errorf("queued %d after a failed flush, want 0", q)
	}
}

func TestWriterClose(t *testing.T) {
	t.Run("flushes what is queued, then refuses", func(t *testing.T) {
		db := storetest.Open(t)
		w := ingest.New(db, ingest.Options{FlushRows: 1000, FlushInterval: time.Hour}, discard)
		pending := events("pending", 7)
		done := writeAsync(waitCtx(t), w, pending)
		waitQueued(t, w, 7)
		if err := w.Close(waitCtx(t)); err != nil {
			t.Fatalf("close: %v", err)
		}
		wantResult(t, "the write pending at Close", <-done, 7, 0)
		assertStored(t, db, ids(pending))
		if _, err := w.Write(waitCtx(t), events("late", 1)); !errors.Is(err, ingest.ErrClosed) {
			t.Fatalf("write after Close: %v, want ErrClosed", err)
		}
		if err := w.Close(waitCtx(t)); err != nil {
			t.Fatalf("second close: %v", err)
		}
		assertStored(t, db, ids(pending))
	})

	t.Run("gives up at its deadline and finishes later", func(t *testing.T) {
		db := storetest.Open(t)
		held := newHeldSink(db)
		defer held.letGo()
		w := ingest.New(held, ingest.Options{FlushRows: 1000, FlushInterval: time.Hour}, discard)
		pending := events("pending", 3)
		done := writeAsync(waitCtx(t), w, pending)
		waitQueued(t, w, 3)
		short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := w.Close(short)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("close with a held flush: %v, want the deadline", err)
		}
		if _, err := w.Write(waitCtx(t), events("late", 1)); !errors.Is(err, ingest.ErrClosed) {
			t.Fatalf("write after Close: %v, want ErrClosed", err)
		}
		held.letGo()
		if err := w.Close(waitCtx(t)); err != nil {
			t.Fatalf("close once the store answers: %v", err)
		}
		wantResult(t, "the write pending at Close", <-done, 3, 0)
		assertStored(t, db, ids(pending))
	})
}
