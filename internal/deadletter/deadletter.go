// Package deadletter keeps aside, on local disk, what the spool's drainer can never deliver:
// records of the spool whose bytes are intact but whose events cannot be decoded, and events
// ClickHouse refuses for their values. Retrying them would block every record behind them,
// for ever; kept here, they no longer do, and an operator can look at them and replay them
// once the cause is fixed (`truthboard dead-letter list|replay`).
//
// Each entry is one JSON file in the folder (by default <spool>/dead-letter), written to a
// temporary name, synced and renamed, so an entry is whole or absent:
//
//	record-<received ns>-<segment>-<offset>-<events>.json  an undecodable spool record
//	event-<occurred_at s>-<id hash>.json                    one event ClickHouse refused
//
// The names follow from the content, so keeping the same thing aside twice (after a crash
// between the dead-letter's sync and the spool's commit) writes one entry. Every entry holds
// its reason and the time it was put aside; a record keeps its payload as it was on disk
// (base64), an event its JSON as accepted.
//
// The folder has a quota (MaxBytes). When an entry does not fit, Add returns ErrFull and keeps
// nothing; the drainer then holds the record or event in the spool and tries again, so
// nothing acknowledged is dropped: it waits, and the spool fills behind it, until room is made
// (replay or remove entries) or the quota raised. Stats count these refusals.
package deadletter

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/spool"
)

// Options configure a dead-letter folder.
type Options struct {
	// Dir is the folder, created if missing.
	Dir string
	// MaxBytes is the quota of the entries' files together (default 64 MiB).
	MaxBytes int64
}

// DefaultMaxBytes is the default quota.
const DefaultMaxBytes = 64 << 20

// Kinds of entries.
const (
	KindRecord = "undecodable_record" // a spool record whose events cannot be decoded
	KindEvent  = "refused_event"      // an event ClickHouse refused for its values
)

// ErrFull means an entry does not fit the quota: nothing was kept.
var ErrFull = errors.New("the dead-letter is full")

// Entry is one thing kept aside, as stored in its file.
type Entry struct {
	Kind   string    `json:"kind"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"` // when it was put aside
	// Received is when the request that brought it was received.
	Received time.Time `json:"received"`
	// Count is the number of events: the record's header's for a record, 1 for an event.
	Count int `json:"count"`
	// Segment, Offset and Payload are the record's place in the spool and its bytes as they
	// were on disk (KindRecord).
	Segment uint64 `json:"segment,omitempty"`
	Offset  int64  `json:"offset,omitempty"`
	Payload []byte `json:"payload,omitempty"`
	// Event is the refused event (KindEvent).
	Event *event.Event `json:"event,omitempty"`

	// Name is the entry's file name in the folder.
	Name string `json:"-"`
}

// Events are the entry's events: the refused one, or the record's decoded again (which fails
// while the codec that wrote it is unknown to this version).
func (e Entry) Events() ([]event.Event, error) {
	if e.Kind == KindRecord {
		return spool.DecodePayload(e.Payload, e.Count)
	}
	if e.Event == nil {
		return nil, fmt.Errorf("dead-letter entry %s holds no event", e.Name)
	}
	return []event.Event{*e.Event}, nil
}

// Stats describe what is kept aside; the JSON is /readyz's "dead_letter".
type Stats struct {
	Records    int       `json:"records"` // entries kept: undecodable records and refused events
	Events     int64     `json:"events"`  // events in them
	Bytes      int64     `json:"bytes"`
	MaxBytes   int64     `json:"max_bytes"`
	LastReason string    `json:"last_reason,omitempty"` // of the newest entry
	LastAt     time.Time `json:"last_at,omitzero"`
	// Since this process started: events put aside by kind, and entries that did not fit the
	// quota and wait in the spool (each attempt counts).
	UndecodableEvents int64 `json:"-"`
	RefusedEvents     int64 `json:"-"`
	Full              int64 `json:"-"`
}

// DeadLetter is a dead-letter folder. Its methods are safe for concurrent use; another process
// (`truthboard dead-letter replay`) may remove entries meanwhile: the folder is read again
// when it changed.
type DeadLetter struct {
	opts Options

	mu sync.Mutex
	st Stats
	// seen is the folder's modification time when st was last true to it, and scanned when
	// the folder was last read (zero: not since the last change of ours).
	seen, scanned time.Time
}

// Open opens (creating if need be) the folder and counts what it holds.
func Open(opts Options) (*DeadLetter, error) {
	if opts.Dir == "" {
		return nil, errors.New("dead-letter: no folder given")
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("dead-letter: create %s: %w", opts.Dir, err)
	}
	// A temporary file is an entry whose write a crash cut off: it was never kept, and the
	// spool still holds what it was for.
	if tmps, err := filepath.Glob(filepath.Join(opts.Dir, ".tmp-*")); err == nil {
		for _, tmp := range tmps {
			os.Remove(tmp)
		}
	}
	d := &DeadLetter{opts: opts}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.rescan(); err != nil {
		return nil, err
	}
	return d, nil
}

// Dir is the folder of the entries.
func (d *DeadLetter) Dir() string { return d.opts.Dir }

// AddRecord keeps aside a spool record that cannot be decoded.
func (d *DeadLetter) AddRecord(u spool.Undecodable) error {
	name := fmt.Sprintf("record-%d-%d-%d-%d.json", u.Received.UnixNano(), u.Segment, u.Offset, u.Count)
	return d.add(name, Entry{Kind: KindRecord, Reason: u.Err.Error(), Received: u.Received, Count: u.Count,
		Segment: u.Segment, Offset: u.Offset, Payload: u.Payload})
}

// AddEvent keeps aside an event ClickHouse refused, for reason.
func (d *DeadLetter) AddEvent(e event.Event, received time.Time, reason error) error {
	k := e.Key()
	sum := sha256.Sum256([]byte(k.EventID))
	name := fmt.Sprintf("event-%d-%s.json", k.Second, hex.EncodeToString(sum[:8]))
	return d.add(name, Entry{Kind: KindEvent, Reason: reason.Error(), Received: received, Count: 1, Event: &e})
}

func (d *DeadLetter) add(name string, e Entry) error {
	e.At = time.Now().UTC()
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("dead-letter: encode %s: %w", name, err)
	}
	b = append(b, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.refresh(false); err != nil {
		return err
	}
	path := filepath.Join(d.opts.Dir, name)
	if _, err := os.Stat(path); err == nil {
		return nil // kept already, before a crash or a failed commit
	}
	if d.st.Bytes+int64(len(b)) > d.opts.MaxBytes && d.rescan() == nil && d.st.Bytes+int64(len(b)) > d.opts.MaxBytes {
		d.st.Full++
		return fmt.Errorf("%w: %d of %d bytes used, %d more needed (raise TRUTHBOARD_DEAD_LETTER_MAX_BYTES, or replay or remove entries of %s)",
			ErrFull, d.st.Bytes, d.opts.MaxBytes, len(b), d.opts.Dir)
	}
	if err := writeSynced(d.opts.Dir, name, b); err != nil {
		return err
	}
	d.st.Records++
	d.st.Events += int64(e.Count)
	d.st.Bytes += int64(len(b))
	d.st.LastReason, d.st.LastAt = e.Reason, e.At
	if e.Kind == KindRecord {
		d.st.UndecodableEvents += int64(e.Count)
	} else {
		d.st.RefusedEvents += int64(e.Count)
	}
	d.seen, d.scanned = modTime(d.opts.Dir), time.Time{}
	return nil
}

// writeSynced writes b to dir/name durably: a temporary file, synced, renamed, and the folder
// synced, so that a crash leaves the entry whole or absent.
func writeSynced(dir, name string, b []byte) error {
	tmp := filepath.Join(dir, ".tmp-"+name)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("dead-letter: create %s: %w", tmp, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("dead-letter: write %s: %w", name, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("dead-letter: open folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("dead-letter: sync folder: %w", err)
	}
	return nil
}

// Stats are the dead-letter's figures now.
func (d *DeadLetter) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = d.refresh(true) // on an error, the figures last known
	st := d.st
	st.MaxBytes = d.opts.MaxBytes
	return st
}

// refresh reads the folder again when it changed since the figures were last true to it
// (another process replayed or removed entries). A folder's modification time has the
// granularity of the kernel's clock tick, so a change right after the last reading may leave
// it equal: with racy, the folder is also read again while the last reading is within
// racyWindow of that time, as git does with its index. d.mu is held.
func (d *DeadLetter) refresh(racy bool) error {
	m := modTime(d.opts.Dir)
	if m.IsZero() || !m.Equal(d.seen) || racy && d.scanned.Sub(m) < racyWindow {
		return d.rescan()
	}
	return nil
}

// racyWindow is longer than any file system's timestamp granularity (1 s on ext3, 2 s FAT).
const racyWindow = 2 * time.Second

func modTime(dir string) time.Time {
	info, err := os.Stat(dir)
	if err != nil {
		return time.Time{}
	}
	return info.ModTime()
}

// rescan counts the entries from their names and sizes, and reads the newest one's reason.
// d.mu is held.
func (d *DeadLetter) rescan() error {
	scanned := time.Now()
	seen := modTime(d.opts.Dir)
	entries, err := os.ReadDir(d.opts.Dir)
	if err != nil {
		return fmt.Errorf("dead-letter: read %s: %w", d.opts.Dir, err)
	}
	st := Stats{UndecodableEvents: d.st.UndecodableEvents, RefusedEvents: d.st.RefusedEvents, Full: d.st.Full}
	var newest string
	var newestAt time.Time
	for _, de := range entries {
		count, ok := entryCount(de.Name())
		if !ok || de.IsDir() {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		st.Records++
		st.Events += int64(count)
		st.Bytes += info.Size()
		if info.ModTime().After(newestAt) {
			newest, newestAt = de.Name(), info.ModTime()
		}
	}
	if newest != "" {
		if e, err := d.read(newest); err == nil {
			st.LastReason, st.LastAt = e.Reason, e.At
		}
	}
	d.st, d.seen, d.scanned = st, seen, scanned
	return nil
}

// entryCount is the number of events of the entry named name, read from the name; false when
// name is not an entry's.
func entryCount(name string) (int, bool) {
	base, ok := strings.CutSuffix(name, ".json")
	switch {
	case !ok:
		return 0, false
	case strings.HasPrefix(base, "event-"):
		return 1, true
	case strings.HasPrefix(base, "record-"):
		parts := strings.Split(base, "-")
		n, err := strconv.Atoi(parts[len(parts)-1])
		return n, err == nil && len(parts) == 5
	}
	return 0, false
}

// List reads every entry, oldest first.
func (d *DeadLetter) List() ([]Entry, error) {
	des, err := os.ReadDir(d.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("dead-letter: read %s: %w", d.opts.Dir, err)
	}
	var out []Entry
	for _, de := range des {
		if _, ok := entryCount(de.Name()); !ok || de.IsDir() {
			continue
		}
		e, err := d.read(de.Name())
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b Entry) int { return a.At.Compare(b.At) })
	return out, nil
}

// Get reads the entry named name.
func (d *DeadLetter) Get(name string) (Entry, error) {
	if _, ok := entryCount(name); !ok || filepath.Base(name) != name {
		return Entry{}, fmt.Errorf("dead-letter: %q is not the name of an entry (see truthboard dead-letter list)", name)
	}
	return d.read(name)
}

func (d *DeadLetter) read(name string) (Entry, error) {
	b, err := os.ReadFile(filepath.Join(d.opts.Dir, name))
	if err != nil {
		return Entry{}, fmt.Errorf("dead-letter: read %s: %w", name, err)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return Entry{}, fmt.Errorf("dead-letter: %s is not an entry: %w", name, err)
	}
	e.Name = name
	return e, nil
}

// Remove deletes the entry named name (once replayed).
func (d *DeadLetter) Remove(name string) error {
	if _, ok := entryCount(name); !ok || filepath.Base(name) != name {
		return fmt.Errorf("dead-letter: %q is not the name of an entry", name)
	}
	if err := os.Remove(filepath.Join(d.opts.Dir, name)); err != nil {
		return fmt.Errorf("dead-letter: remove %s: %w", name, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rescan()
}

// Replace writes e again over its file, with a new reason (a replay that failed again).
func (d *DeadLetter) Replace(e Entry, reason string) error {
	e.Reason, e.At = reason, time.Now().UTC()
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("dead-letter: encode %s: %w", e.Name, err)
	}
	if err := writeSynced(d.opts.Dir, e.Name, append(b, '\n')); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rescan()
}
