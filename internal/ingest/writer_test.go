package ingest_test

// Tests of the Writer on a real ClickHouse database (storetest) and a real spool folder:
// batching, the duplicate rule, an unreachable or refusing ClickHouse, a batch that landed
// without its answer, the spool's quota, and Close and reopen.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/spool"
	"github.com/truthboard/truthboard/internal/spool/spooltest"
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testOptions flush at once. FlushTimeout bounds an attempt against a hang, it is no speed
// requirement: with the machine loaded (load average 20 on 2 cores), an insert of a few events
// took over 3 s, the bound before, and the tests that expect it to succeed failed.
func testOptions(t *testing.T) ingest.Options {
	return ingest.Options{Spool: spool.Options{Dir: t.TempDir()}, FlushInterval: 10 * time.Millisecond, FlushTimeout: 15 * time.Second}
}

func open(t *testing.T, sink ingest.Sink, o ingest.Options) *ingest.Writer {
	t.Helper()
	return openLogged(t, sink, o, discard)
}

// openLogged is open with the writer's log going to log.
func openLogged(t *testing.T, sink ingest.Sink, o ingest.Options, log *slog.Logger) *ingest.Writer {
	t.Helper()
	w, err := ingest.Open(sink, o, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		w.Close(ctx) // a test that closes w checks Close's error itself
	})
	return w
}

func mustWrite(t *testing.T, w *ingest.Writer, evs []event.Event, accepted, duplicates int) {
	t.Helper()
	got, err := w.Write(waitCtx(t), evs)
	if err != nil || got != (ingest.Result{Accepted: accepted, Duplicates: duplicates}) {
		t.Fatalf("write of %d events: %+v, %v; want %d accepted, %d duplicates", len(evs), got, err, accepted, duplicates)
	}
}

func drained(t *testing.T, w *ingest.Writer) {
	t.Helper()
	if err := w.WaitDrained(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// recordingSink passes every call to the real store and records each insert's size; with
// failAfterInsert it reports an error after the first insert landed, as when the connection
// drops before ClickHouse's answer arrives.
type recordingSink struct {
	ingest.Sink
	mu              sync.Mutex
	inserts         []int
	failAfterInsert bool
	// holdFirst, when not nil, holds the first insert until it is closed; inserting signals
	// that the first insert has begun.
	holdFirst, inserting chan struct{}
	held                 bool
}

func (r *recordingSink) InsertReceived(ctx context.Context, evs []event.Event, received []time.Time, queryID string) error {
	r.mu.Lock()
	first := !r.held
	r.held = true
	r.mu.Unlock()
	if first && r.holdFirst != nil {
		close(r.inserting)
		<-r.holdFirst
	}
	err := r.Sink.InsertReceived(ctx, evs, received, queryID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.inserts = append(r.inserts, len(evs))
	}
	if err == nil && r.failAfterInsert {
		r.failAfterInsert = false
		return errors.New("connection reset before the answer")
	}
	return err
}

func (r *recordingSink) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.inserts)
}

// Concurrent writes are answered once durable and reach ClickHouse in few inserts.
func TestWriterBatchesConcurrentWrites(t *testing.T) {
	db := storetest.Open(t)
	sink := &recordingSink{Sink: db}
	o := testOptions(t)
	o.FlushInterval = 200 * time.Millisecond
	w := open(t, sink, o)
	var wg sync.WaitGroup
	var all [][]event.Event
	for i := range 20 {
		evs := events(fmt.Sprint("c", i), 10)
		all = append(all, evs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			mustWrite(t, w, evs, 10, 0)
		}()
	}
	wg.Wait()
	drained(t, w)
	assertStored(t, db, ids(all...))
	if n := len(sink.sizes()); n > 5 {
		t.Errorf("20 concurrent writes took %d inserts %v, want them batched", n, sink.sizes())
	}
	if st := w.Stats(); st.Events != 0 || st.Failures != 0 {
		t.Errorf("stats once drained: %+v", st)
	}
}

// Under light traffic, the events that arrive while an insert runs go into the next insert
// together: the drainer does not read a partial batch ahead, which would leave the later of
// them to the insert after it, an insert later on the screens.
func TestWriterEventsDuringAnInsertJoinTheNext(t *testing.T) {
	db := storetest.Open(t)
	sink := &recordingSink{Sink: db, holdFirst: make(chan struct{}), inserting: make(chan struct{})}
	o := testOptions(t)
	o.FlushInterval = 20 * time.Millisecond
	w := open(t, sink, o)
	mustWrite(t, w, events("first", 1), 1, 0)
	<-sink.inserting
	mustWrite(t, w, events("early", 1), 1, 0)
	time.Sleep(5 * o.FlushInterval) // a batch read ahead would have closed on "early" alone
	mustWrite(t, w, events("late", 1), 1, 0)
	close(sink.holdFirst)
	drained(t, w)
	if got := sink.sizes(); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("inserts %v, want [1 2]: the two events written during the first insert in the next one", got)
	}
}

// behindWriter opens a writer whose drainer is behind: the insert of its first batch (10
// events) is held until release is closed, and 20 more events wait behind it, 30 in all
// against a PaceBacklog of 20. Pace with an empty spool is checked on the way.
func behindWriter(t *testing.T, paceWait time.Duration) (w *ingest.Writer, db *store.Store, release chan struct{}) {
	t.Helper()
	db = storetest.Open(t)
	sink := &recordingSink{Sink: db, holdFirst: make(chan struct{}), inserting: make(chan struct{})}
	o := testOptions(t)
	o.FlushRows, o.PaceBacklog, o.PaceWait = 10, 20, paceWait
	w = open(t, sink, o)
	if waited := w.Pace(waitCtx(t)); waited != 0 {
		t.Fatalf("Pace with an empty spool waited %s", waited)
	}
	mustWrite(t, w, events("first", 10), 10, 0)
	<-sink.inserting // held: the drainer is behind
	mustWrite(t, w, events("behind", 20), 20, 0)
	return w, db, sink.holdFirst
}

// While the spool holds more than PaceBacklog events and ClickHouse takes inserts, Pace waits
// for the drainer: until a commit brings the backlog down, or PaceWait at most.
func TestWriterPacesWhileTheDrainerIsBehind(t *testing.T) {
	const paceWait = 10 * time.Second
	w, db, release := behindWriter(t, paceWait)
	// The first batch lands in a moment: 20 events are left, not above PaceBacklog.
	time.AfterFunc(200*time.Millisecond, func() { close(release) })
	if waited := w.Pace(waitCtx(t)); waited == 0 || waited >= paceWait {
		t.Fatalf("Pace waited %s with 30 events in the spool (PaceBacklog 20) and the insert held; want a wait that ends with the insert's commit, below PaceWait %s", waited, paceWait)
	}
	drained(t, w)
	assertStored(t, db, ids(events("first", 10), events("behind", 20)))
}

// Pace waits at most PaceWait, however far behind the drainer is.
func TestWriterPaceWaitsAtMostPaceWait(t *testing.T) {
	const paceWait = 100 * time.Millisecond
	w, _, release := behindWriter(t, paceWait)
	// The upper bound guards against a wait without end; it is no speed requirement.
	if waited := w.Pace(waitCtx(t)); waited < paceWait || waited > paceWait+10*time.Second {
		t.Fatalf("Pace waited %s with the insert held, want PaceWait %s", waited, paceWait)
	}
	close(release)
	drained(t, w)
}

// preparingSink is the store, counting the inserts the drainer prepares ahead and what became
// of them.
type preparingSink struct {
	*store.Store
	mu                              sync.Mutex
	prepared, sent, aborted, failed int
	// failNext makes the next Send of a prepared insert fail after a while, without
	// sending anything.
	failNext bool
}

func (s *preparingSink) PrepareInsert(ctx context.Context, evs []event.Event, received []time.Time, queryID string) (ingest.Prepared, error) {
	ins, err := s.Store.PrepareInsert(ctx, evs, received, queryID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.prepared++
	s.mu.Unlock()
	return &countedInsert{Prepared: ins, sink: s}, nil
}

func (s *preparingSink) counts() (prepared, sent, aborted int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prepared, s.sent, s.aborted
}

type countedInsert struct {
	ingest.Prepared
	sink       *preparingSink
	sent, done bool
}

func (c *countedInsert) Send() error {
	c.sink.mu.Lock()
	c.sink.sent++
	c.sent = true
	fail := c.sink.failNext
	c.sink.failNext = false
	c.sink.mu.Unlock()
	err := errors.New("connection reset before the data was sent")
	if fail {
		time.Sleep(300 * time.Millisecond) // long enough for the next batch to be prepared
		c.Prepared.Abort()
	} else {
		err = c.Prepared.Send()
	}
	if err != nil {
		c.sink.mu.Lock()
		c.sink.failed++
		c.sink.mu.Unlock()
	}
	return err
}

func (c *countedInsert) Abort() {
	c.sink.mu.Lock()
	if !c.sent && !c.done {
		c.sink.aborted++
	}
	c.done = true
	c.sink.mu.Unlock()
	c.Prepared.Abort()
}

// steadyPreparingWriter opens a writer that prepares inserts ahead (FlushRows 10) on a
// preparingSink, with a first batch ("first", 10 events) landed: its attempt looked the events
// up, as the first after a start does, so only the batches after it are prepared.
func steadyPreparingWriter(t *testing.T) (*ingest.Writer, *store.Store, *preparingSink) {
	t.Helper()
	db := storetest.Open(t)
	sink := &preparingSink{Store: db}
	o := testOptions(t)
	o.FlushRows, o.PrepareAhead = 10, true
	w := open(t, sink, o)
	mustWrite(t, w, events("first", 10), 10, 0)
	drained(t, w)
	return w, db, sink
}

// Behind a full batch, the next one's insert is prepared while ClickHouse takes the current
// one, and sent as it is: every event lands once.
func TestWriterPreparesTheNextInsert(t *testing.T) {
	w, db, sink := steadyPreparingWriter(t)
	var all [][]event.Event
	for i := range 20 {
		evs := events(fmt.Sprint("b", i), 10)
		all = append(all, evs)
		mustWrite(t, w, evs, 10, 0)
	}
	drained(t, w)
	assertStored(t, db, ids(append(all, events("first", 10))...))
	if prepared, sent, aborted := sink.counts(); prepared == 0 || sent != prepared || aborted != 0 {
		t.Fatalf("inserts prepared ahead %d, sent %d, dropped %d; want some prepared, every one sent", prepared, sent, aborted)
	}
}

// A prepared insert whose batch holds an event already stored is dropped: the batch goes in
// without that event, once.
func TestWriterDropsAPreparedInsertWithAStoredEvent(t *testing.T) {
	db := storetest.Open(t)
	sink := &preparingSink{Store: db}
	o := testOptions(t)
	o.FlushRows, o.RecentKeys, o.PrepareAhead = 10, 10, true
	w := open(t, sink, o)
	again := events("again", 1)
	mustWrite(t, w, again, 1, 0)
	drained(t, w)
	// Full batches, so that the next is read and prepared ahead; the answers forgot "again"
	// (RecentKeys 10), so it is accepted, and the drainer finds it stored.
	mustWrite(t, w, events("fill", 10), 10, 0)
	later := append(events("later", 9), again...)
	mustWrite(t, w, later, 10, 0)
	mustWrite(t, w, events("more", 10), 10, 0)
	drained(t, w)
	assertStored(t, db, ids(again, events("fill", 10), events("later", 9), events("more", 10)))
	// Every batch after the first is full and prepared; "later" holds the stored event.
	if prepared, sent, aborted := sink.counts(); aborted != 1 || prepared != sent+aborted {
		t.Fatalf("inserts prepared ahead %d, sent %d, dropped %d; want the one of the batch with the stored event dropped, the others sent", prepared, sent, aborted)
	}
}

// An attempt that fails while the next batch's insert is prepared waits for this node's
// inserts before it looks its events up, but not for the prepared one, which has sent
// nothing: it neither stalls on it nor kills it, and every event lands once.
func TestWriterFailedAttemptLeavesThePreparedInsert(t *testing.T) {
	w, db, sink := steadyPreparingWriter(t)
	sink.mu.Lock()
	sink.failNext = true
	sink.mu.Unlock()
	var all [][]event.Event
	for _, prefix := range []string{"a", "b", "c"} {
		all = append(all, events(prefix, 10))
		mustWrite(t, w, all[len(all)-1], 10, 0)
	}
	drained(t, w)
	assertStored(t, db, ids(append(all, events("first", 10))...))
	prepared, sent, aborted := sink.counts()
	sink.mu.Lock()
	failed := sink.failed
	sink.mu.Unlock()
	if failed != 1 || prepared < 2 || prepared != sent+aborted {
		t.Fatalf("inserts prepared ahead %d, sent %d (%d failed), dropped %d; want the injected failure only, the next batch's prepared insert sent", prepared, sent, failed, aborted)
	}
}

func TestWriterFlushRowsBoundsAnInsert(t *testing.T) {
	db := storetest.Open(t)
	sink := &recordingSink{Sink: db}
	o := testOptions(t)
	o.FlushRows = 25
	w := open(t, sink, o)
	for i := range 6 {
		mustWrite(t, w, events(fmt.Sprint("r", i), 10), 10, 0)
	}
	drained(t, w)
	for _, n := range sink.sizes() {
		if n > 25 {
			t.Fatalf("inserts %v, want none above FlushRows=25", sink.sizes())
		}
	}
	if got := len(storedIDs(t, db)); got != 60 {
		t.Fatalf("stored %d events, want 60", got)
	}
}

func TestWriterDuplicates(t *testing.T) {
	db := storetest.Open(t)
	o := testOptions(t)
	o.RecentKeys = 10
	w := open(t, db, o)

	first := events("d", 5)
	twice := append(slices.Clone(first[:2]), first[:2]...)
	mustWrite(t, w, twice, 2, 2) // repeated within the request
	mustWrite(t, w, first, 3, 2) // two acknowledged just before
	mustWrite(t, w, first, 0, 5) // a retry of the whole request

	// An event that left the recent keys is answered as accepted, and still stored once.
	mustWrite(t, w, events("other", 10), 10, 0)
	mustWrite(t, w, first, 5, 0)
	drained(t, w)
	assertStored(t, db, ids(first, events("other", 10)))

	// The same event_id in another second is another event.
	moved := events("d", 1)
	moved[0].OccurredAt = moved[0].OccurredAt.Add(time.Second)
	mustWrite(t, w, moved, 1, 0)
	drained(t, w)
	if got := len(storedIDs(t, db)); got != 16 {
		t.Fatalf("stored %d, want 16", got)
	}
}

// With ClickHouse cut off, writes are still acknowledged from the spool, and every one is
// stored exactly once when ClickHouse is back.
func TestWriterClickHouseUnavailable(t *testing.T) {
	direct, proxied, proxy := storetest.OpenProxied(t, 500*time.Millisecond)
	o := testOptions(t)
	o.PaceBacklog, o.PaceWait = 2, time.Minute
	w := open(t, proxied, o)

	before := events("before", 5)
	mustWrite(t, w, before, 5, 0)
	drained(t, w)

	proxy.Cut()
	during := events("during", 5)
	mustWrite(t, w, during, 5, 0)
	deadline := time.Now().Add(20 * time.Second)
	for w.Stats().Failures == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt seen with ClickHouse cut off: %+v", w.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := w.Stats(); st.Events != 5 || st.Oldest.IsZero() || st.LastError == "" {
		t.Fatalf("stats during the outage: %+v, want 5 events waiting, their age and the error", st)
	}
	// The spool takes the events while ClickHouse is away: nothing waits for the drainer.
	if waited := w.Pace(waitCtx(t)); waited != 0 {
		t.Fatalf("Pace waited %s during the outage, with 5 events above PaceBacklog 2; want no wait", waited)
	}
	assertStored(t, direct, ids(before))

	proxy.Restore()
	drained(t, w)
	assertStored(t, direct, ids(before, during))
	if st := w.Stats(); st.Failures != 0 {
		t.Fatalf("failures after recovery: %+v", st)
	}
}

// A batch whose insert landed but whose answer was lost is sent again; the lookup before the
// insert finds it, so nothing is stored twice.
func TestWriterBatchThatLandedWithoutAnswer(t *testing.T) {
	db := storetest.Open(t)
	sink := &recordingSink{Sink: db, failAfterInsert: true}
	w := open(t, sink, testOptions(t))
	evs := events("landed", 8)
	mustWrite(t, w, evs, 8, 0)
	drained(t, w)
	assertStored(t, db, ids(evs))
	if got := sink.sizes(); !slices.Equal(got, []int{8, 0}) {
		t.Fatalf("inserts %v, want the batch once, then an empty retry", got)
	}
	var rollup uint64
	if err := db.Conn().QueryRow(context.Background(), "SELECT toUInt64(sumMerge(events)) FROM overview_1m").Scan(&rollup); err != nil {
		t.Fatal(err)
	}
	if rollup != 8 {
		t.Fatalf("the rollup counts %d events, want 8", rollup)
	}
}

// A ClickHouse that refuses the insert for a reason other than its values (here: the table is
// gone) keeps the events in the spool and the writer retries until it takes them, however
// long: nothing is put in the dead-letter.
func TestWriterClickHouseRefuses(t *testing.T) {
	db := storetest.Open(t)
	o := testOptions(t)
	o.RefusedAttempts = 1
	w := open(t, db, o)
	ctx := context.Background()
	if err := db.Conn().Exec(ctx, "RENAME TABLE events TO events_gone"); err != nil {
		t.Fatal(err)
	}
	evs := events("a", 3)
	mustWrite(t, w, evs, 3, 0)
	spooltest.Eventually(t, "retried several times", func() bool { return w.Stats().Failures >= 4 })
	if dl := w.Stats().DeadLetter; dl.Records != 0 {
		t.Fatalf("dead-letter %+v with the table missing, want nothing put aside", dl)
	}
	if err := db.Conn().Exec(ctx, "RENAME TABLE events_gone TO events"); err != nil {
		t.Fatal(err)
	}
	drained(t, w)
	assertStored(t, db, ids(evs))
}

// The writer's warning tells an operator whether ClickHouse is away, which waiting fixes, or
// refuses the insert, which needs a person.
func TestWriterWarningSaysWhetherClickHouseIsAway(t *testing.T) {
	for _, tc := range []struct {
		name string
		sink func(t *testing.T) ingest.Sink
		want bool
	}{
		{"cut off", func(t *testing.T) ingest.Sink {
			_, proxied, proxy := storetest.OpenProxied(t, 500*time.Millisecond)
			proxy.Cut()
			return proxied
		}, true},
		{"refusing the insert", func(t *testing.T) ingest.Sink {
			db := storetest.Open(t)
			if err := db.Conn().Exec(context.Background(), "RENAME TABLE events TO events_gone"); err != nil {
				t.Fatal(err)
			}
			return db
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warnings := &warningLog{}
			w := openLogged(t, tc.sink(t), testOptions(t), slog.New(warnings))
			mustWrite(t, w, events("w", 1), 1, 0)
			deadline := time.Now().Add(20 * time.Second)
			for len(warnings.unavailable()) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no warning of the failed insert: %+v", w.Stats())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got := warnings.unavailable()[0]; got != tc.want {
				t.Fatalf("the warning says unavailable=%v for %q, want %v", got, w.Stats().LastError, tc.want)
			}
		})
	}
}

// warningLog is a slog.Handler that keeps the "unavailable" attribute of each warning.
type warningLog struct {
	mu   sync.Mutex
	seen []bool
}

func (h *warningLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *warningLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *warningLog) WithGroup(string) slog.Handler            { return h }

func (h *warningLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if r.Level == slog.LevelWarn && a.Key == "unavailable" {
			h.mu.Lock()
			h.seen = append(h.seen, a.Value.Bool())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *warningLog) unavailable() []bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen)
}

func TestWriterSpoolFull(t *testing.T) {
	direct, proxied, proxy := storetest.OpenProxied(t, 500*time.Millisecond)
	o := testOptions(t)
	o.Spool.SegmentBytes, o.Spool.MaxBytes = 4<<10, 16<<10
	w := open(t, proxied, o)
	proxy.Cut()
	var acked [][]event.Event
	var err error
	for i := 0; i < 1000; i++ {
		evs := events(fmt.Sprint("q", i), 10)
		if _, err = w.Write(waitCtx(t), evs); err != nil {
			break
		}
		acked = append(acked, evs)
	}
	if !errors.Is(err, ingest.ErrSpoolFull) || len(acked) == 0 {
		t.Fatalf("after %d acknowledged writes: %v, want ErrSpoolFull", len(acked), err)
	}
	proxy.Restore()
	drained(t, w)
	assertStored(t, direct, ids(acked...))
	mustWrite(t, w, events("after", 2), 2, 0) // room again
}

// Close sends what it can; with ClickHouse down it returns at once and the events wait in the
// spool for the next Open, which sends them exactly once.
func TestWriterCloseAndReopen(t *testing.T) {
	direct, proxied, proxy := storetest.OpenProxied(t, 500*time.Millisecond)
	o := testOptions(t)
	w, err := ingest.Open(proxied, o, discard)
	if err != nil {
		t.Fatal(err)
	}
	sent := events("sent", 4)
	mustWrite(t, w, sent, 4, 0)
	if err := w.Close(waitCtx(t)); err != nil {
		t.Fatalf("close with ClickHouse up: %v", err)
	}
	assertStored(t, direct, ids(sent))
	if _, err := w.Write(waitCtx(t), events("late", 1)); !errors.Is(err, ingest.ErrClosed) {
		t.Fatalf("write after Close: %v, want ErrClosed", err)
	}

	w = open(t, proxied, o)
	proxy.Cut()
	kept := events("kept", 6)
	mustWrite(t, w, kept, 6, 0)
	start := time.Now()
	if err := w.Close(waitCtx(t)); err == nil || !strings.Contains(err.Error(), "stay in the spool") {
		t.Fatalf("close with ClickHouse down: %v, want an error saying the events stay in the spool", err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("close with ClickHouse down took %v", took)
	}
	proxy.Restore()
	w = open(t, proxied, o)
	drained(t, w)
	assertStored(t, direct, ids(sent, kept))
}
