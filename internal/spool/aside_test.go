package spool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/spool/spooltest"
)

// A record whose bytes are intact but whose events cannot be decoded (here: a codec version
// no Truthboard wrote) is handed out beside the batch, so the reader can keep it aside, and
// the records behind it are read as usual.
func TestUndecodableRecordIsHandedOutAside(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	received := time.Now()
	for i := range 3 {
		if err := s.Append(events(fmt.Sprint("r", i), 2), received); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	spooltest.PoisonRecord(t, dir, 1)

	s = open(t, dir, Options{})
	if st := s.Stats(); st.Events != 6 {
		t.Fatalf("after a restart: %+v, want the 6 events of the 3 records (the poisoned one passes its CRC)", st)
	}
	b, err := s.Next(context.Background(), 100, 0)
	if err != nil {
		t.Fatalf("Next with an undecodable record in the way: %v", err)
	}
	var got []string
	for _, e := range b.Events {
		got = append(got, e.EventID)
	}
	if strings.Join(got, " ") != "r0-0 r0-1 r2-0 r2-1" {
		t.Fatalf("events %v, want those of the records before and after the undecodable one", got)
	}
	if len(b.Undecodable) != 1 {
		t.Fatalf("%d undecodable records, want 1", len(b.Undecodable))
	}
	u := b.Undecodable[0]
	if u.Count != 2 || len(u.Payload) == 0 || u.Payload[0] != 0xEE || !u.Received.Equal(received) ||
		u.Err == nil || !strings.Contains(u.Err.Error(), "payload version 238") {
		t.Fatalf("the undecodable record: %+v (%v), want its 2 events' count, its payload, its receive time and why", u, u.Err)
	}
	if _, err := DecodePayload(u.Payload, u.Count); err == nil {
		t.Fatal("the kept payload decodes, want the same error again")
	}
	if err := s.Commit(b); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Events != 0 {
		t.Fatalf("after the commit: %+v, want nothing left", st)
	}
}

// fillUntilFull appends 10-event records until the spool refuses one, and returns how many it
// took; the refusal must be ErrFull.
func fillUntilFull(t *testing.T, s *Spool) int {
	t.Helper()
	for n := 0; n < 100_000; n++ {
		err := s.Append(events(fmt.Sprint("fill", n), 10), time.Now())
		if errors.Is(err, ErrFull) {
			if n == 0 {
				t.Fatal("the spool took nothing")
			}
			return n
		}
		if err != nil {
			t.Fatalf("append %d: %v, want nil or ErrFull", n, err)
		}
	}
	t.Fatal("the spool never filled up")
	return 0
}

// bigRecord is the number of events whose record takes about bytes.
func bigRecord(bytes int) int {
	return bytes * 10 / (headerBytes + len(encodeEvents(nil, events("big-00000", 10))))
}

// Once everything is delivered, the room the segment being written took comes back without a
// restart, whether appends were refused for room before or not.
func TestQuotaRoomComesBackWhenDelivered(t *testing.T) {
	const quota = 64 << 10 // segments of 8 KiB
	s := open(t, t.TempDir(), Options{MaxBytes: quota})

	// Filled to the quota, then drained: the spool rolls the delivered segment by itself.
	n := fillUntilFull(t, s)
	if ids := drain(t, s, 1000); len(ids) != n*10 {
		t.Fatalf("drained %d events, want %d", len(ids), n*10)
	}
	spooltest.Eventually(t, "rolled the delivered segment", func() bool { return s.Stats().Bytes == 0 })
	if err := s.Append(events("big", bigRecord(quota*9/10)), time.Now()); err != nil {
		t.Fatalf("a record of 90%% of the quota on a drained spool: %v", err)
	}
	drain(t, s, 100_000)

	// Nothing refused, but the segment being written holds delivered records: a record that
	// needs their room gets it.
	for i := range 4 {
		if err := s.Append(events(fmt.Sprint("small", i), 10), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, s, 1000)
	if st := s.Stats(); st.Bytes == 0 {
		t.Fatalf("%+v: the test wants delivered records in the segment being written", st)
	}
	if err := s.Append(events("big2", bigRecord(quota*95/100)), time.Now()); err != nil {
		t.Fatalf("a record of 95%% of the quota after delivered records: %v", err)
	}
}

// On a disk smaller than a segment, a full disk (ENOSPC) is answered ErrFull, and once the
// spool is delivered its room comes back without a restart: the segment being written is
// rolled away, though it never reached its size.
func TestFullDiskRoomComesBackWhenDelivered(t *testing.T) {
	spooltest.SmallDisk(t, 512<<10, func(t *testing.T, dir string) {
		s := open(t, dir, Options{}) // segments of 16 MiB, a quota of 1 GiB: the disk fills first
		n := fillUntilFull(t, s)
		err := s.Append(events("refused", 10), time.Now())
		if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "disk is full") {
			t.Fatalf("an append on a full disk: %v, want ErrFull saying the disk is full", err)
		}
		if ids := drain(t, s, 1000); len(ids) != n*10 {
			t.Fatalf("drained %d events, want the %d acknowledged", len(ids), n*10)
		}
		spooltest.Eventually(t, "rolled the delivered segment", func() bool { return s.Stats().Bytes == 0 })
		if err := s.Append(events("big", bigRecord(256<<10)), time.Now()); err != nil {
			t.Fatalf("a record of half the disk once the spool is delivered: %v", err)
		}
		if ids := drain(t, s, 100_000); len(ids) != bigRecord(256<<10) {
			t.Fatalf("drained %d events, want the big record's", len(ids))
		}
	})
}
