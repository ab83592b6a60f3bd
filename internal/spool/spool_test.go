package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/truthboard/truthboard/internal/event"
)

func events(prefix string, n int) []event.Event {
	evs := make([]event.Event, n)
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := range evs {
		evs[i] = event.Event{EventID: fmt.Sprintf("%s-%d", prefix, i), OccurredAt: at, Moment: "fmot", Channel: "web", Touchpoint: "checkout"}
	}
	return evs
}

func open(t *testing.T, dir string, opts Options) *Spool {
	t.Helper()
	opts.Dir = dir
	s, err := Open(opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// drain takes everything waiting, committing each batch, and returns the event ids in order.
func drain(t *testing.T, s *Spool, maxEvents int) []string {
	t.Helper()
	var ids []string
	for s.Stats().Events > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := s.Next(ctx, maxEvents, 0)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range b.Events {
			ids = append(ids, e.EventID)
		}
		if err := s.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func TestAppendThenReadInOrder(t *testing.T) {
	s := open(t, t.TempDir(), Options{SegmentBytes: 1 << 10})
	for i := range 20 {
		if err := s.Append(events(fmt.Sprint("r", i), 5), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Events != 100 || st.Segments < 3 || st.Oldest.IsZero() {
		t.Fatalf("stats after 20 appends across small segments: %+v", st)
	}
	ids := drain(t, s, 12)
	if len(ids) != 100 || ids[0] != "r0-0" || ids[99] != "r19-4" || ids[5] != "r1-0" {
		t.Fatalf("read %d events, first %v, want 100 in append order", len(ids), ids[:min(len(ids), 6)])
	}
	st := s.Stats()
	if st.Events != 0 || st.Segments != 1 || !st.Oldest.IsZero() {
		t.Fatalf("after draining everything: %+v, want no events and only the segment being written", st)
	}
	files, _ := filepath.Glob(filepath.Join(s.opts.Dir, "*"+segmentExt))
	if len(files) != 1 {
		t.Fatalf("%d segment files left, want 1: %v", len(files), files)
	}
}

// Concurrent appends share fsyncs and none is lost or torn.
func TestConcurrentAppends(t *testing.T) {
	s := open(t, t.TempDir(), Options{SegmentBytes: 64 << 10})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if err := s.Append(events(fmt.Sprintf("g%d-%d", g, i), 3), time.Now()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ids := drain(t, s, 1000)
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("%s read twice", id)
		}
		seen[id] = true
	}
	if len(seen) != 8*50*3 {
		t.Fatalf("read %d distinct events, want %d", len(seen), 8*50*3)
	}
}

// What was appended and not committed is read again after a restart; committed records are not.
func TestReopenRereadsWhatWasNotCommitted(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SegmentBytes: 512})
	for i := range 10 {
		if err := s.Append(events(fmt.Sprint("r", i), 2), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Next(context.Background(), 6, 0)
	if err != nil || len(b.Events) != 6 {
		t.Fatalf("first batch: %d events, %v", len(b.Events), err)
	}
	if err := s.Commit(b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(context.Background(), 6, 0); err != nil { // handed out, never committed
		t.Fatal(err)
	}
	s.Close()

	s2 := open(t, dir, Options{SegmentBytes: 512})
	ids := drain(t, s2, 100)
	if len(ids) != 14 || ids[0] != "r3-0" || ids[len(ids)-1] != "r9-1" {
		t.Fatalf("after a restart read %d events %v, want the 14 not committed, r3-0 to r9-1", len(ids), ids)
	}
	s2.Close()

	// Everything delivered: a restart sends nothing again, and leaves one segment on disk.
	s3 := open(t, dir, Options{SegmentBytes: 512})
	if st := s3.Stats(); st.Events != 0 || st.Segments != 1 {
		t.Fatalf("after a restart with everything delivered: %+v, want nothing to send", st)
	}
}

// Without the delivered position (lost, or unreadable) every record on disk is sent again: the
// reader's duplicate check is what keeps that exactly once.
func TestLostCheckpointSendsAgain(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	for i := range 3 {
		if err := s.Append(events(fmt.Sprint("r", i), 2), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, s, 100)
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, checkpointFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ids := drain(t, open(t, dir, Options{}), 100); len(ids) != 6 {
		t.Fatalf("read %v, want the 6 events again", ids)
	}
}

// Records beyond MemoryEvents are read back from disk, in order with those kept in memory.
func TestMemoryAndDiskRecordsInOrder(t *testing.T) {
	s := open(t, t.TempDir(), Options{MemoryEvents: 7})
	for i := range 6 {
		if err := s.Append(events(fmt.Sprint("r", i), 3), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	ids := drain(t, s, 4)
	want := []string{"r0-0", "r0-1", "r0-2", "r1-0", "r1-1", "r1-2", "r2-0"}
	if len(ids) != 18 || !slices.Equal(ids[:7], want) || ids[17] != "r5-2" {
		t.Fatalf("read %v, want r0-0 … r5-2 in order", ids)
	}
	if s.memEvents != 0 {
		t.Fatalf("%d events still counted in memory after draining", s.memEvents)
	}
}

// A crash in the middle of a write leaves a cut-off record: Open keeps every whole record
// before it, drops the cut one, and appends after it.
func TestHalfWrittenLastRecord(t *testing.T) {
	for _, cut := range []struct {
		name string
		trim func(size int64) int64 // new size of the last segment
		tail []byte                 // bytes appended after trimming
	}{
		{name: "header cut off", trim: func(n int64) int64 { return n }, tail: []byte{200, 0, 0}},
		{name: "payload cut off", trim: func(n int64) int64 { return n - 7 }},
		{name: "garbage after the last record", trim: func(n int64) int64 { return n }, tail: []byte("\x10\x00\x00\x00garbage-garbage-garbage")},
	} {
		t.Run(cut.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, Options{})
			for i := range 3 {
				if err := s.Append(events(fmt.Sprint("r", i), 4), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			path := s.path(1)
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, cut.trim(info.Size())); err != nil {
				t.Fatal(err)
			}
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.Write(cut.tail)
			f.Close()

			s2 := open(t, dir, Options{})
			if err := s2.Append(events("after", 1), time.Now()); err != nil {
				t.Fatal(err)
			}
			ids := drain(t, s2, 100)
			want := 13
			if cut.trim(100) != 100 { // the last record was cut: its 4 events were never acknowledged
				want = 9
			}
			if len(ids) != want || ids[len(ids)-1] != "after-0" {
				t.Fatalf("read %d events %v, want %d ending with the one appended after the restart", len(ids), ids, want)
			}
		})
	}
}

func TestQuota(t *testing.T) {
	s := open(t, t.TempDir(), Options{SegmentBytes: 2 << 10, MaxBytes: 8 << 10})
	n := 0
	var err error
	for ; n < 1000; n++ {
		if err = s.Append(events(fmt.Sprint("q", n), 5), time.Now()); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("append %d: %v, want ErrFull", n, err)
	}
	if st := s.Stats(); st.Bytes > st.MaxBytes {
		t.Fatalf("the spool holds %d bytes, over its quota of %d", st.Bytes, st.MaxBytes)
	}
	// Draining frees room (whole segments) and appends work again.
	if ids := drain(t, s, 1000); len(ids) != n*5 {
		t.Fatalf("drained %d events, want the %d acknowledged", len(ids), n*5)
	}
	for i := range 3 {
		if err := s.Append(events(fmt.Sprint("again", i), 5), time.Now()); err != nil {
			t.Fatalf("append after draining: %v", err)
		}
	}
}

// Next lingers for more records up to linger after the first was received, unless the batch
// is full; it returns on ctx's end when nothing waits. The test runs on synctest's clock: a
// record appended 30 ms into the linger is in the batch, and the batch comes when the linger
// ends, whatever the machine's load.
func TestNextLingers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := open(t, t.TempDir(), Options{})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if _, err := s.Next(ctx, 10, time.Second); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next on an empty spool: %v, want the context's deadline", err)
		}
		const linger = 300 * time.Millisecond
		first := time.Now()
		if err := s.Append(events("a", 1), first); err != nil {
			t.Fatal(err)
		}
		appended := make(chan error, 1)
		go func() {
			time.Sleep(30 * time.Millisecond)
			appended <- s.Append(events("b", 1), time.Now())
		}()
		b, err := s.Next(t.Context(), 10, linger)
		if err != nil || len(b.Events) != 2 {
			t.Fatalf("lingering Next: %d events, %v; want both records", len(b.Events), err)
		}
		if waited := time.Since(first); waited != linger {
			t.Errorf("Next returned %v after the first record was received, want the linger, %v", waited, linger)
		}
		if err := <-appended; err != nil {
			t.Fatalf("append during the linger: %v", err)
		}
		// The next batch can be read while the first is delivered; a third cannot, and the
		// batches are committed in order.
		if err := s.Append(events("c", 1), time.Now()); err != nil {
			t.Fatal(err)
		}
		ahead, err := s.Next(t.Context(), 10, 0)
		if err != nil || len(ahead.Events) != 1 || ahead.Events[0].EventID != "c-0" {
			t.Fatalf("Next while one batch is out: %v, %v; want the record appended after it", ahead.Events, err)
		}
		if _, err := s.Next(t.Context(), 10, 0); !errors.Is(err, ErrUncommitted) {
			t.Fatalf("Next with %d batches out: %v, want ErrUncommitted", MaxUncommitted, err)
		}
		if err := s.Commit(ahead); err == nil {
			t.Fatal("the second batch was committed before the first")
		}
		if err := s.Commit(b); err != nil {
			t.Fatalf("commit the first batch: %v", err)
		}
		if err := s.Commit(ahead); err != nil {
			t.Fatalf("commit the second batch: %v", err)
		}
		if st := s.Stats(); st.Events != 0 {
			t.Fatalf("%d events left after both commits, want 0", st.Events)
		}
	})
}

// An event read back from disk equals the event appended, whatever its fields hold.
func TestDiskRoundTrip(t *testing.T) {
	received := time.Now().UTC()
	u8 := func(v uint8) *uint8 { return &v }
	u32 := func(v uint32) *uint32 { return &v }
	f := func(v float64) *float64 { return &v }
	evs := []event.Event{
		{EventID: `quote " back\slash <tag> & é 😀`, OccurredAt: received.Add(-time.Hour).Truncate(time.Microsecond), Moment: "service", Channel: "voice",
			Touchpoint: "billing_call", Stage: "service_interaction", Outcome: "unresolved", CustomerID: "c-1", JourneyID: "j-1",
			CSAT: u8(1), NPS: u8(0), CES: u8(7), Sentiment: f(-1e-7), WaitMS: u32(0), HandleMS: u32(86_400_000),
			Region: "north", Product: "mobile", Segment: "smb", AgentTeam: "tier 1",
			Attributes: map[string]string{"campaign": "spring \"sale\"", "ab": "b"}},
		{EventID: "minimal", OccurredAt: received.Add(4 * time.Minute), Moment: "zmot", Channel: "web", Touchpoint: "search"},
		{EventID: "old", OccurredAt: received.Add(-29 * 24 * time.Hour), Moment: "tmot", Channel: "review_site", Touchpoint: "review", Sentiment: f(0.999999)},
	}
	for i := range evs {
		if errs := event.Validate(&evs[i], received, event.DefaultRetention); len(errs) > 0 {
			t.Fatalf("test bug: event %d is invalid: %v", i, errs)
		}
	}
	dir := t.TempDir()
	s := open(t, dir, Options{MemoryEvents: 1}) // nothing kept in memory: read from disk
	if err := s.Append(evs, received); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, Options{}) // and after a restart
	b, err := s.Next(context.Background(), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != len(evs) {
		t.Fatalf("read %d events, want %d", len(b.Events), len(evs))
	}
	for i := range evs {
		got, want := b.Events[i], evs[i]
		if !got.OccurredAt.Equal(want.OccurredAt) {
			t.Errorf("event %d: occurred_at %v, want %v", i, got.OccurredAt, want.OccurredAt)
		}
		got.OccurredAt = want.OccurredAt
		if !reflect.DeepEqual(got, want) {
			t.Errorf("event %d read back as\n%+v\nwant\n%+v", i, got, want)
		}
		if !b.Received[i].Equal(received) {
			t.Errorf("event %d: received %v, want %v", i, b.Received[i], received)
		}
	}
}

// Damage in a segment that is not the last one is not a crash's cut-off write: the part after
// it is kept aside, not destroyed, and the records before it are still sent.
func TestDamagedEarlierSegmentIsKeptAside(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SegmentBytes: 256})
	for i := range 6 {
		if err := s.Append(events(fmt.Sprint("r", i), 1), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	first := s.path(1)
	data, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0xff // the last record of the first segment fails its CRC
	if err := os.WriteFile(first, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ids := drain(t, open(t, dir, Options{SegmentBytes: 256}), 100)
	if len(ids) == 0 || len(ids) >= 6 || ids[len(ids)-1] != "r5-0" {
		t.Fatalf("read %v, want every event but the damaged one(s)", ids)
	}
	aside, _ := filepath.Glob(first + ".damaged-*")
	if len(aside) != 1 {
		t.Fatalf("damaged part kept in %v, want one file", aside)
	}
}
