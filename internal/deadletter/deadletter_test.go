package deadletter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/spool"
)

func refused(id string) event.Event {
	return event.Event{EventID: id, OccurredAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Moment: "fmot", Channel: "web", Touchpoint: "checkout"}
}

func TestEntriesAreKeptCountedAndListed(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	received := time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC)
	rec := spool.Undecodable{Segment: 3, Offset: 120, Count: 7, Received: received, Payload: []byte{0xEE, 7, 1, 2}, Err: errors.New("payload version 238")}
	if err := d.AddRecord(rec); err != nil {
		t.Fatal(err)
	}
	if err := d.AddEvent(refused("a/../b"), received, errors.New("code: 395, throwIf")); err != nil {
		t.Fatal(err)
	}
	// The same again, as after a crash before the spool's commit: one entry each.
	if err := d.AddRecord(rec); err != nil {
		t.Fatal(err)
	}
	if err := d.AddEvent(refused("a/../b"), received, errors.New("code: 395, throwIf")); err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	if st.Records != 2 || st.Events != 8 || st.Bytes <= 0 || st.MaxBytes != DefaultMaxBytes ||
		st.LastReason != "code: 395, throwIf" || st.LastAt.IsZero() || st.UndecodableEvents != 7 || st.RefusedEvents != 1 {
		t.Fatalf("stats %+v, want 2 entries of 8 events, the last reason, 7 undecodable and 1 refused", st)
	}

	list, err := d.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %d entries, %v", len(list), err)
	}
	r, e := list[0], list[1]
	if r.Kind != KindRecord || r.Segment != 3 || r.Offset != 120 || r.Count != 7 || string(r.Payload) != string(rec.Payload) ||
		!r.Received.Equal(received) || r.Reason != "payload version 238" {
		t.Errorf("the record entry: %+v", r)
	}
	if _, err := r.Events(); err == nil {
		t.Errorf("the undecodable record's events decode")
	}
	evs, err := e.Events()
	if e.Kind != KindEvent || err != nil || len(evs) != 1 || evs[0].EventID != "a/../b" || !evs[0].OccurredAt.Equal(refused("").OccurredAt) {
		t.Errorf("the event entry: %+v, events %+v, %v", e, evs, err)
	}
	if strings.Contains(e.Name, "..") || filepath.Base(e.Name) != e.Name {
		t.Errorf("the entry's name %q comes from the event id", e.Name)
	}

	// Counted again from the folder after a restart (the counters since start are not).
	again, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if st := again.Stats(); st.Records != 2 || st.Events != 8 || st.LastReason == "" || st.RefusedEvents != 0 {
		t.Fatalf("after a restart: %+v", st)
	}
	// Another process removing an entry (a replay) is seen.
	if err := os.Remove(filepath.Join(dir, e.Name)); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Records != 1 || st.Events != 7 {
		t.Fatalf("after another process removed the event: %+v, want the record alone", st)
	}
	if err := d.Remove(r.Name); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Records != 0 || st.Events != 0 || st.Bytes != 0 {
		t.Fatalf("after removing everything: %+v", st)
	}
	if err := d.Remove("../delivered.json"); err == nil {
		t.Fatal("Remove took a name that is not an entry's")
	}
}

// Over the quota nothing is kept, ErrFull says how to make room, and the refusal is counted.
func TestQuota(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(Options{Dir: dir, MaxBytes: 1500})
	if err != nil {
		t.Fatal(err)
	}
	var kept int
	for i := 0; ; i++ {
		err := d.AddEvent(refused(strings.Repeat("x", 60)+string(rune('a'+i))), time.Now(), errors.New("refused"))
		if errors.Is(err, ErrFull) {
			if !strings.Contains(err.Error(), "TRUTHBOARD_DEAD_LETTER_MAX_BYTES") {
				t.Errorf("ErrFull %q does not say how to make room", err)
			}
			break
		}
		if err != nil || i > 100 {
			t.Fatalf("add %d: %v", i, err)
		}
		kept++
	}
	st := d.Stats()
	if st.Records != kept || st.Bytes > 1500 || st.Full != 1 {
		t.Fatalf("stats %+v, want %d entries within 1500 bytes and one refusal", st, kept)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != kept {
		t.Fatalf("%d files in the folder, want the %d entries and nothing of the refused one", len(files), kept)
	}
}

// A temporary file a crash left is not an entry, and Open removes it.
func TestCutOffWriteIsNotAnEntry(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".tmp-event-1-00.json")
	if err := os.WriteFile(tmp, []byte(`{"kind":`), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Records != 0 || st.Bytes != 0 {
		t.Fatalf("stats %+v, want nothing", st)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the cut-off write is still there: %v", err)
	}
}
