package ingest_test

// Tests of what cannot reach ClickHouse (a spool record that cannot be decoded, events
// ClickHouse refuses for their values) and of a full spool or disk, on a real ClickHouse
// database and real spool folders.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/deadletter"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/spool"
	"github.com/truthboard/truthboard/internal/spool/spooltest"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// deadLetterOf opens the dead-letter of the writer's spool as another process would
// (`truthboard dead-letter`).
func deadLetterOf(t *testing.T, o ingest.Options) *deadletter.DeadLetter {
	t.Helper()
	d, err := deadletter.Open(deadletter.Options{Dir: ingest.DeadLetterDir(o.Spool.Dir)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// spoolWithPoison leaves in the spool of o one record per element of records, as a stopped
// server would, the one at index poisoned made undecodable.
func spoolWithPoison(t *testing.T, o spool.Options, poisoned int, records ...[]event.Event) {
	t.Helper()
	sp, err := spool.Open(o, discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, evs := range records {
		if err := sp.Append(evs, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	sp.Close()
	spooltest.PoisonRecord(t, o.Dir, poisoned)
}

// A spool record with a valid CRC whose payload cannot be decoded (a codec version no
// Truthboard wrote) goes to the dead-letter with its reason; the records before and after it
// reach ClickHouse exactly once, and a restart sends nothing again.
func TestPoisonRecordIsKeptAside(t *testing.T) {
	db := storetest.Open(t)
	o := testOptions(t)
	before, poison, after := events("before", 3), events("poison", 2), events("after", 4)
	spoolWithPoison(t, o.Spool, 1, before, poison, after)

	w := open(t, db, o)
	drained(t, w)
	storetest.AssertStoredOnce(t, db, ids(before, after))
	st := w.Stats()
	if dl := st.DeadLetter; dl.Records != 1 || dl.Events != 2 || dl.UndecodableEvents != 2 || !strings.Contains(dl.LastReason, "payload version 238") {
		t.Fatalf("dead-letter %+v, want the poisoned record's 2 events and why", dl)
	}
	if st.Failures != 0 || st.Events != 0 {
		t.Fatalf("stats %+v, want nothing failing and nothing left in the spool", st)
	}
	entries, err := deadLetterOf(t, o).List()
	if err != nil || len(entries) != 1 {
		t.Fatalf("dead-letter entries %+v, %v; want one", entries, err)
	}
	if e := entries[0]; e.Kind != deadletter.KindRecord || e.Count != 2 || len(e.Payload) == 0 || e.Payload[0] != 0xEE {
		t.Fatalf("entry %+v, want the record's raw payload", e)
	}

	// A restart on the same folder sends nothing again and keeps the one entry.
	if err := w.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	w = open(t, db, o)
	mustWrite(t, w, events("later", 2), 2, 0)
	drained(t, w)
	storetest.AssertStoredOnce(t, db, ids(before, after, events("later", 2)))
	if dl := w.Stats().DeadLetter; dl.Records != 1 {
		t.Fatalf("after a restart the dead-letter holds %d entries, want 1", dl.Records)
	}
}

// Events that decode but that ClickHouse refuses for their values are isolated: after the
// batch is refused RefusedAttempts times it is split until the refused events are alone, so
// the valid events of the same batch land exactly once and the refused ones go to the
// dead-letter with ClickHouse's reason.
func TestRefusedEventsAreIsolated(t *testing.T) {
	for _, tc := range []struct {
		name string
		// refuse makes ClickHouse refuse the events it returns, among evs.
		refuse func(t *testing.T, db *store.Store, evs []event.Event) []event.Event
		reason string
	}{
		{"a moment the table's Enum8 lacks", func(t *testing.T, db *store.Store, evs []event.Event) []event.Event {
			// As a spool written by a version of Truthboard with another vocabulary would hold:
			// the codec takes any string, the column's type does not.
			evs[13].Moment = "moment-of-a-newer-version"
			return evs[13:14]
		}, `unknown element "moment-of-a-newer-version"`},
		{"a value ClickHouse itself refuses (throwIf in a materialized column)", func(t *testing.T, db *store.Store, evs []event.Event) []event.Event {
			// No valid event breaks the schema Truthboard creates, so the test changes the
			// schema to refuse some, as a CHECK constraint of an operator's would on a modern
			// ClickHouse (18.16 has no constraints): the server answers exception 395.
			err := db.Conn().Exec(context.Background(),
				"ALTER TABLE events ADD COLUMN refuse UInt8 MATERIALIZED throwIf(event_id IN ('r-3', 'r-17', 'r-18'))")
			if err != nil {
				t.Fatal(err)
			}
			return []event.Event{evs[3], evs[17], evs[18]}
		}, "code: 395"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := storetest.Open(t)
			sink := &recordingSink{Sink: db}
			o := testOptions(t)
			w := open(t, sink, o)
			evs := events("r", 20)
			bad := tc.refuse(t, db, evs)
			mustWrite(t, w, evs, 20, 0)
			drained(t, w)

			var good []string
			badIDs := map[string]bool{}
			for _, e := range bad {
				badIDs[e.EventID] = true
			}
			for _, e := range evs {
				if !badIDs[e.EventID] {
					good = append(good, e.EventID)
				}
			}
			storetest.AssertStoredOnce(t, db, good)
			st := w.Stats()
			if dl := st.DeadLetter; dl.Records != len(bad) || dl.RefusedEvents != int64(len(bad)) || !strings.Contains(dl.LastReason, tc.reason) {
				t.Fatalf("dead-letter %+v, want the %d refused events, for %q", dl, len(bad), tc.reason)
			}
			if st.Failures != 0 {
				t.Fatalf("stats %+v: failing once the refused events are aside", st)
			}
			entries, err := deadLetterOf(t, o).List()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				evs, err := e.Events()
				if err != nil || len(evs) != 1 || !badIDs[evs[0].EventID] || !strings.Contains(e.Reason, tc.reason) {
					t.Errorf("entry %+v (%v), want one of the refused events and why", e, err)
				}
			}
			// Each attempt is one insert: a batch refused 3 times, then halves down to the bad
			// events, each tried once: far fewer than one insert per event.
			if n := len(sink.sizes()); n > 20 {
				t.Errorf("%d successful inserts for 20 events, want the halves that hold no refused event", n)
			}
		})
	}
}

// When the dead-letter is full, a refused event is not dropped: it waits in the spool with
// everything behind it, the failure says why, and it lands once ClickHouse takes it.
func TestFullDeadLetterHoldsTheEvent(t *testing.T) {
	db := storetest.Open(t)
	o := testOptions(t)
	o.DeadLetter.MaxBytes = 100 // less than one entry
	w := open(t, db, o)
	ctx := context.Background()
	if err := db.Conn().Exec(ctx, "ALTER TABLE events ADD COLUMN refuse UInt8 MATERIALIZED throwIf(event_id = 'held-1')"); err != nil {
		t.Fatal(err)
	}
	held, behind := events("held", 3), events("behind", 2)
	mustWrite(t, w, held, 3, 0)
	mustWrite(t, w, behind, 2, 0)
	spooltest.Eventually(t, "saying the dead-letter is full", func() bool {
		st := w.Stats()
		return strings.Contains(st.LastError, "dead-letter is full") && st.DeadLetter.Full > 0
	})
	if st := w.Stats(); st.Events == 0 || st.DeadLetter.Records != 0 {
		t.Fatalf("stats %+v: want the events kept in the spool and nothing in the dead-letter", st)
	}
	if err := db.Conn().Exec(ctx, "ALTER TABLE events DROP COLUMN refuse"); err != nil {
		t.Fatal(err)
	}
	drained(t, w)
	storetest.AssertStoredOnce(t, db, ids(held, behind))
}

// Replay sends dead-letter entries to ClickHouse once the cause is fixed, exactly once, and
// removes them; an entry still refused stays, with the new reason.
func TestReplay(t *testing.T) {
	db := storetest.Open(t)
	o := testOptions(t)
	o.RecentKeys = 2 // the answer forgets soon: resends below reach the drainer
	poison := events("poison", 2)
	spoolWithPoison(t, o.Spool, 0, poison)
	w := open(t, db, o)
	ctx := context.Background()
	if err := db.Conn().Exec(ctx, "ALTER TABLE events ADD COLUMN refuse UInt8 MATERIALIZED throwIf(event_id LIKE 'refused-%')"); err != nil {
		t.Fatal(err)
	}
	refused := events("refused", 2)
	mustWrite(t, w, refused, 2, 0)
	drained(t, w)
	if dl := w.Stats().DeadLetter; dl.Records != 3 {
		t.Fatalf("dead-letter %+v, want the record and the 2 refused events", dl)
	}

	dead := deadLetterOf(t, o)
	var stayed, replayed []string
	report := func(r ingest.Replayed) {
		if r.Err != nil {
			stayed = append(stayed, r.Entry.Kind)
		} else {
			replayed = append(replayed, r.Entry.Kind)
		}
	}
	// Not fixed yet: everything stays, the refused events with ClickHouse's new answer.
	if err := ingest.Replay(ctx, db, dead, nil, report); err != nil {
		t.Fatal(err)
	}
	if len(stayed) != 3 || len(replayed) != 0 {
		t.Fatalf("replay before the fix: stayed %v, replayed %v; want all 3 to stay", stayed, replayed)
	}
	storetest.AssertStoredOnce(t, db, nil)

	// Fixed: the schema takes the events again, and the record's codec is known (as to a
	// later version of Truthboard: here its version byte is put back).
	if err := db.Conn().Exec(ctx, "ALTER TABLE events DROP COLUMN refuse"); err != nil {
		t.Fatal(err)
	}
	entries, err := dead.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Kind == deadletter.KindRecord {
			e.Payload[0] = 1
			if err := dead.Replace(e, e.Reason); err != nil {
				t.Fatal(err)
			}
		}
	}
	stayed, replayed = nil, nil
	if err := ingest.Replay(ctx, db, dead, nil, report); err != nil {
		t.Fatal(err)
	}
	if len(stayed) != 0 || len(replayed) != 3 {
		t.Fatalf("replay after the fix: stayed %v, replayed %v; want all 3 replayed", stayed, replayed)
	}
	storetest.AssertStoredOnce(t, db, ids(poison, refused))
	spooltest.Eventually(t, "seeing the dead-letter emptied by the replay", func() bool { return w.Stats().DeadLetter.Records == 0 })

	// The client resends the replayed events once the answer forgot them: the drainer, which
	// never stored them itself (another process did), still looks them up.
	other := events("other", 2)
	mustWrite(t, w, other, 2, 0)
	drained(t, w) // a batch of its own: after the failures above, it is looked up whole
	mustWrite(t, w, append(slices.Clone(refused), poison...), 4, 0)
	drained(t, w)
	storetest.AssertStoredOnce(t, db, ids(poison, refused, other))

	// Replaying an entry whose events are stored already stores nothing twice.
	if err := dead.AddEvent(refused[0], time.Now(), errors.New("kept twice")); err != nil {
		t.Fatal(err)
	}
	if err := ingest.Replay(ctx, db, dead, nil, report); err != nil {
		t.Fatal(err)
	}
	storetest.AssertStoredOnce(t, db, ids(poison, refused, other))
}

// fillWhileAway writes 10-event requests with ClickHouse cut off until the spool refuses one,
// and returns the acknowledged events.
func fillWhileAway(t *testing.T, w *ingest.Writer, proxy *storetest.Proxy) [][]event.Event {
	t.Helper()
	proxy.Cut()
	var acked [][]event.Event
	for i := 0; ; i++ {
		evs := events(fmt.Sprint("fill", i), 10)
		_, err := w.Write(waitCtx(t), evs)
		if errors.Is(err, ingest.ErrSpoolFull) {
			break
		}
		if err != nil || i > 100_000 {
			t.Fatalf("write %d: %v, want the spool to fill up", i, err)
		}
		acked = append(acked, evs)
	}
	if len(acked) == 0 {
		t.Fatal("nothing acknowledged before the spool was full")
	}
	return acked
}

// After a ClickHouse outage filled the spool, to its quota or to a full disk, the room comes
// back once the backlog is delivered, without a restart: a request almost as large as the
// room the spool had empty is taken again.
func TestRoomComesBackAfterOutage(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run calls test with the spool options to use.
		run func(t *testing.T, test func(t *testing.T, o spool.Options))
		big int // events of the request that must be taken again
	}{
		{"quota", func(t *testing.T, test func(t *testing.T, o spool.Options)) {
			test(t, spool.Options{Dir: t.TempDir(), MaxBytes: 256 << 10}) // segments of 32 KiB
		}, 5000}, // ≈ 240 KiB: more than the quota less the segment being written
		{"disk smaller than a segment", func(t *testing.T, test func(t *testing.T, o spool.Options)) {
			spooltest.SmallDisk(t, 512<<10, func(t *testing.T, dir string) {
				test(t, spool.Options{Dir: dir}) // segments of 16 MiB, a quota of 1 GiB: the disk fills first
			})
		}, 6000}, // ≈ 300 KiB
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, func(t *testing.T, so spool.Options) {
				direct, proxied, proxy := storetest.OpenProxied(t, 500*time.Millisecond)
				o := testOptions(t)
				o.Spool = so
				w := open(t, proxied, o)
				acked := fillWhileAway(t, w, proxy)
				proxy.Restore()
				drained(t, w)
				storetest.AssertStoredOnce(t, direct, ids(acked...))

				big := events("big", tc.big)
				var err error
				spooltest.Eventually(t, "taking a large request again", func() bool {
					_, err = w.Write(waitCtx(t), big)
					return err == nil
				})
				drained(t, w)
				storetest.AssertStoredOnce(t, direct, ids(append(acked, big)...))
			})
		})
	}
}
