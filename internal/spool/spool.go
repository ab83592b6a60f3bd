// Package spool is the durable local log between the ingest API and ClickHouse. An acknowledged
// request's events are appended to it and synced to disk before the answer; a reader (the
// ingest drainer) takes them out in order and commits each batch once ClickHouse has it.
//
// On disk the spool is a folder of segment files named by a growing number, each a sequence
// of records:
//
//	length  uint32  bytes of payload
//	crc     uint32  CRC-32C of count, received and payload
//	count   uint32  events in the record
//	received int64  Unix nanoseconds the request was received
//	payload         the events (codec.go)
//
// One goroutine appends: concurrent Appends are written together and share one fsync (group
// commit). A segment is removed once every record in it is committed, and the position after
// the last committed record is kept in delivered.json, so a restart sends only what was not.
// The segment being written is removed too, by starting a new one, once everything in it is
// committed after an append was refused for room (quota or a full disk): its room comes back
// at once, not when it fills up.
// Records appended in this process are also kept in memory (up to MemoryEvents), so the reader
// decodes from disk only a backlog and what a restart found. At Open, a record cut
// off by a crash (or failing its CRC) ends its segment: the segment is truncated there. Such a
// record was never acknowledged, since its fsync had not returned.
//
// The spool touches only its own folder.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/truthboard/truthboard/internal/bufpool"
	"github.com/truthboard/truthboard/internal/event"
)

// Options configure a spool.
type Options struct {
	// Dir is the spool's folder, created if missing. Keep it on a local disk: acknowledged
	// events live here until ClickHouse has them.
	Dir string
	// SegmentBytes is the size at which the spool starts a new segment file (default 16 MiB,
	// at most an eighth of MaxBytes).
	SegmentBytes int64
	// MaxBytes is the disk quota of the spool: an Append that would exceed it fails with ErrFull
	// (ingest answers 503 + Retry-After) until the drainer frees room (default 1 GiB).
	MaxBytes int64
	// MemoryEvents bounds the events the spool also keeps in memory, as appended, so that the
	// reader need not decode them from disk (default 50,000). Records beyond it, and those
	// found at Open, are read from disk.
	MemoryEvents int
}

// Defaults of Options.
const (
	DefaultSegmentBytes = 16 << 20
	DefaultMaxBytes     = 1 << 30
	DefaultMemoryEvents = 50_000
)

func (o Options) withDefaults() Options {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MemoryEvents <= 0 {
		o.MemoryEvents = DefaultMemoryEvents
	}
	// Room comes back a whole segment at a time: keep segments small against the quota, so
	// that one partly delivered segment does not hold much of it.
	o.SegmentBytes = max(min(o.SegmentBytes, o.MaxBytes/8), 256)
	return o
}

var (
	// ErrFull means the spool reached its disk quota (or the disk is full): nothing of the
	// request was made durable, the client should retry later.
	ErrFull = errors.New("the spool is full")
	// ErrClosed means the spool is closed.
	ErrClosed = errors.New("the spool is closed")
)

const (
	headerBytes = 20
	segmentExt  = ".seg"
	// maxRecordBytes bounds one record's payload, so a corrupt length cannot make Open or the
	// reader allocate gigabytes.
	maxRecordBytes = 256 << 20
	// appendQueue bounds the Appends waiting for the appender.
	appendQueue = 1024
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is where one appended record lies and what it holds.
type record struct {
	segment  uint64
	offset   int64 // of the header
	size     int64 // header and payload
	count    int
	received time.Time
	events   []event.Event // as appended, when kept in memory; nil: read from disk
}

// segment is one file of the spool.
type segment struct {
	id   uint64
	size int64
}

// Spool is a durable, segmented log of event batches. Open it, Append from any goroutine,
// and read with Next and Commit from one goroutine.
type Spool struct {
	opts Options
	log  *slog.Logger

	in       chan *appendReq
	appended chan struct{} // closed when the appender has stopped
	more     chan struct{} // a buffered signal to the reader: records were added
	roll     chan struct{} // a buffered signal to the appender: roll the delivered segment

	mu       sync.Mutex
	closed   bool
	segments []segment    // oldest first; the last one is being written
	bytes    int64        // sum of the segments' sizes
	records  []record     // not yet committed, oldest first
	events   atomic.Int64 // events in records; read without mu by Backlog
	// memEvents counts the events of records that keep them in memory (record.events).
	memEvents int
	readPos   int // records[:readPos] were handed out by Next and not yet committed
	// handedSeq counts the batches handed out by Next, committedSeq those committed.
	handedSeq, committedSeq uint64
	// refused is set when an append was refused for want of room (quota or disk), until the
	// segment being written is rolled (rollDelivered).
	refused bool

	cur     *os.File // the segment being written (appender goroutine only)
	readers map[uint64]*os.File
}

type appendReq struct {
	payload  []byte
	events   []event.Event
	received time.Time
	done     chan error
}

// Open opens the spool in opts.Dir, recovers what a crash left (see the package comment) and
// starts its appender. Records found are read again from the start: the reader must tolerate
// records it may have committed downstream already.
func Open(opts Options, log *slog.Logger) (*Spool, error) {
	opts = opts.withDefaults()
	if opts.Dir == "" {
		return nil, errors.New("spool: no folder given (set -spool-dir or TRUTHBOARD_SPOOL_DIR)")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", opts.Dir, err)
	}
	s := &Spool{
		opts:     opts,
		log:      log,
		in:       make(chan *appendReq, appendQueue),
		appended: make(chan struct{}),
		more:     make(chan struct{}, 1),
		roll:     make(chan struct{}, 1),
		readers:  map[uint64]*os.File{},
	}
	ids, err := s.segmentIDs()
	if err != nil {
		return nil, err
	}
	delivered := s.loadCheckpoint()
	for i, id := range ids {
		if err := s.recover(id, delivered, i == len(ids)-1); err != nil {
			return nil, err
		}
	}
	// Always write a new segment: a recovered one is never appended to.
	next := uint64(1)
	if len(ids) > 0 {
		next = ids[len(ids)-1] + 1
	}
	if err := s.startSegment(next); err != nil {
		return nil, err
	}
	if err := s.removeDelivered(); err != nil {
		return nil, err
	}
	if len(s.records) > 0 {
		s.log.Info("spool: events from before the restart will be sent to ClickHouse", "events", s.events.Load(), "records", len(s.records), "bytes", s.bytes)
		s.signal()
	}
	go s.appender()
	return s, nil
}

func (s *Spool) path(id uint64) string {
	return filepath.Join(s.opts.Dir, fmt.Sprintf("%020d%s", id, segmentExt))
}

func (s *Spool) segmentIDs() ([]uint64, error) {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool: read %s: %w", s.opts.Dir, err)
	}
	var ids []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segmentExt)
		if !ok || e.IsDir() {
			continue
		}
		id, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// recover indexes the records of one segment that were not delivered before, and truncates
// it after its last whole record. Only the last segment can end in a record cut by a crash
// (the others were synced whole before the next one started); damage in an earlier one is the
// disk's, and what follows it is kept aside in a .damaged file rather than destroyed.
func (s *Spool) recover(id uint64, delivered position, last bool) error {
	path := s.path(id)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("spool: read segment %s: %w", path, err)
	}
	var off int64
	for off < int64(len(data)) {
		r, err := parseHeader(data[off:], id, off)
		if err != nil {
			if last {
				s.log.Warn("spool: segment ends in a damaged record, which was never acknowledged; truncating it",
					"segment", path, "offset", off, "dropped_bytes", int64(len(data))-off, "reason", err)
			} else {
				aside := fmt.Sprintf("%s.damaged-%d", path, off)
				if err := os.WriteFile(aside, data[off:], 0o600); err != nil {
					return fmt.Errorf("spool: keep the damaged part of %s: %w", path, err)
				}
				s.log.Error("spool: a segment is damaged in the middle (disk damage?): the acknowledged events after the damage cannot be read and are not sent; its bytes are kept aside",
					"segment", path, "offset", off, "bytes", int64(len(data))-off, "kept_in", aside, "reason", err)
			}
			if err := os.Truncate(path, off); err != nil {
				return fmt.Errorf("spool: truncate %s: %w", path, err)
			}
			break
		}
		if id > delivered.Segment || id == delivered.Segment && off >= delivered.Offset {
			s.records = append(s.records, r)
			s.events.Add(int64(r.count))
		}
		off += r.size
	}
	if off == 0 {
		return os.Remove(path)
	}
	s.segments = append(s.segments, segment{id: id, size: off})
	s.bytes += off
	return nil
}

// parseHeader checks the record at the start of b, which lies at offset off of segment id.
func parseHeader(b []byte, id uint64, off int64) (record, error) {
	if len(b) < headerBytes {
		return record{}, fmt.Errorf("header cut off after %d of %d bytes", len(b), headerBytes)
	}
	n := binary.LittleEndian.Uint32(b[0:])
	if n > maxRecordBytes {
		return record{}, fmt.Errorf("length %d over the %d limit", n, maxRecordBytes)
	}
	if int64(len(b)) < headerBytes+int64(n) {
		return record{}, fmt.Errorf("payload cut off after %d of %d bytes", len(b)-headerBytes, n)
	}
	if crc32.Checksum(b[8:headerBytes+n], castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return record{}, errors.New("checksum mismatch")
	}
	return record{
		segment:  id,
		offset:   off,
		size:     headerBytes + int64(n),
		count:    int(binary.LittleEndian.Uint32(b[8:])),
		received: time.Unix(0, int64(binary.LittleEndian.Uint64(b[12:]))),
	}, nil
}

func encodeRecord(buf []byte, r *appendReq) []byte {
	var h [headerBytes]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(r.payload)))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(r.events)))
	binary.LittleEndian.PutUint64(h[12:], uint64(r.received.UnixNano()))
	crc := crc32.Update(crc32.Checksum(h[8:], castagnoli), castagnoli, r.payload)
	binary.LittleEndian.PutUint32(h[4:], crc)
	return append(append(buf, h[:]...), r.payload...)
}

func (s *Spool) startSegment(id uint64) error {
	f, err := os.OpenFile(s.path(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("spool: create segment: %w", err)
	}
	if err := syncDir(s.opts.Dir); err != nil {
		f.Close()
		return err
	}
	s.cur = f
	s.mu.Lock()
	s.segments = append(s.segments, segment{id: id})
	s.mu.Unlock()
	return nil
}

// syncDir makes a created or removed file's name durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: open folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: sync folder: %w", err)
	}
	return nil
}

// Append makes events durable: it returns nil once they are written and synced to disk.
// ErrFull means the quota is reached and nothing was written. The spool may keep evs for its
// reader: do not change them afterwards.
func (s *Spool) Append(evs []event.Event, received time.Time) error {
	// Encoded into a pooled buffer: the appender copies the record into its write, so the buffer
	// serves another Append once this one is answered.
	payload := encodeEvents(bufpool.Get(typicalEventBytes*len(evs)), evs)
	defer bufpool.Put(payload)
	if len(payload) > maxRecordBytes {
		return fmt.Errorf("spool: %d bytes of events in one record, over the %d limit", len(payload), maxRecordBytes)
	}
	r := &appendReq{payload: payload, events: evs, received: received, done: make(chan error, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.in <- r // holding mu: Close cannot close s.in under us
	s.mu.Unlock()
	return <-r.done
}

// typicalEventBytes is a little more than an event of demo traffic takes in a record (about 150
// bytes): per event, the room Append asks bufpool for (the buffer grows when events need more).
const typicalEventBytes = 192

// appender writes what Appends sent, a group at a time with one fsync, until Close. Between
// groups it also starts a new segment when the reader asks for one (see rollDelivered).
func (s *Spool) appender() {
	defer close(s.appended)
	defer func() {
		if s.cur != nil {
			s.cur.Close()
		}
	}()
	var buf []byte
	for {
		var first *appendReq
		select {
		case r, ok := <-s.in:
			if !ok {
				return
			}
			first = r
		case <-s.roll:
			s.rollDelivered()
			continue
		}
		group := []*appendReq{first}
	gather:
		for len(group) < appendQueue {
			select {
			case r, ok := <-s.in:
				if !ok {
					break gather
				}
				group = append(group, r)
			default:
				break gather
			}
		}
		buf = s.writeGroup(group, buf[:0])
	}
}

// writeGroup writes the records of group that fit the quota in one write and one fsync, and
// answers each request. When the quota or the disk is full while the segment being written
// holds only delivered records, that segment is rolled away (rollDelivered) and the write
// tried again: its room comes back without waiting for it to fill.
func (s *Spool) writeGroup(group []*appendReq, buf []byte) []byte {
	var need int64
	for _, r := range group {
		need += headerBytes + int64(len(r.payload))
	}
	s.mu.Lock()
	room := s.opts.MaxBytes - s.bytes
	s.mu.Unlock()
	if need > room {
		s.rollDelivered()
	}
	written, buf, err := s.write(group, buf)
	if errors.Is(err, ErrFull) && s.rollDelivered() {
		written, buf, err = s.write(written, buf[:0])
	}
	for _, r := range written {
		r.done <- err
	}
	return buf
}

// write writes the records of group that fit the quota at the end of the segment being written
// and syncs them; those that do not fit are answered ErrFull at once. It returns the requests
// it wrote, or tried to: the caller answers them with err.
func (s *Spool) write(group []*appendReq, buf []byte) (written []*appendReq, _ []byte, err error) {
	s.mu.Lock()
	room := s.opts.MaxBytes - s.bytes
	cur := s.segments[len(s.segments)-1]
	s.mu.Unlock()
	var added []record
	off := cur.size
	for _, r := range group {
		size := headerBytes + int64(len(r.payload))
		if size > room {
			s.refuse()
			r.done <- ErrFull
			continue
		}
		room -= size
		buf = encodeRecord(buf, r)
		added = append(added, record{segment: cur.id, offset: off, size: size, count: len(r.events), received: r.received, events: r.events})
		off += size
		written = append(written, r)
	}
	if len(written) == 0 {
		return nil, buf, nil
	}
	if err := s.writeSynced(buf, cur.size); err != nil {
		if errors.Is(err, ErrFull) {
			s.refuse()
		}
		return written, buf, err
	}
	// Index the records before answering: a reader may look right after.
	s.mu.Lock()
	s.segments[len(s.segments)-1].size = off
	s.bytes += off - cur.size
	for _, r := range added {
		s.events.Add(int64(r.count))
		if s.memEvents+r.count <= s.opts.MemoryEvents {
			s.memEvents += r.count
		} else {
			r.events = nil // the reader takes it from disk
		}
		s.records = append(s.records, r)
	}
	s.mu.Unlock()
	s.signal()
	if off >= s.opts.SegmentBytes {
		if err := s.rotate(cur.id + 1); err != nil {
			s.log.Error("spool: cannot start a new segment; appending to the current one", "err", err)
		}
	}
	return written, buf, nil
}

// refuse notes that an append was refused for want of room, so that the reader's next Commit
// that leaves nothing undelivered asks the appender to roll the segment being written.
func (s *Spool) refuse() {
	s.mu.Lock()
	s.refused = true
	s.mu.Unlock()
}

// rollDelivered starts a new segment when every record of the one being written is delivered,
// and removes the old one. Otherwise a delivered segment being written stays on disk until it
// fills up, which never happens on a disk smaller than a segment: room came back only at a
// restart. It reports whether it rolled. Appender goroutine only, which is the only one to add
// records: the check stays true until the new segment is in place.
func (s *Spool) rollDelivered() bool {
	s.mu.Lock()
	cur := s.segments[len(s.segments)-1]
	delivered := cur.size > 0 && len(s.records) == 0
	s.mu.Unlock()
	if !delivered {
		return false
	}
	if err := s.rotate(cur.id + 1); err != nil {
		s.log.Error("spool: cannot start a new segment to free the delivered one; its room comes back when it fills up", "err", err)
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused = false
	if err := s.removeDelivered(); err != nil {
		s.log.Error("spool: cannot remove a delivered segment", "err", err)
	}
	return true
}

// writeSynced writes b at the end of the current segment (size bytes long) and syncs it. On
// failure the segment is cut back to size, so no half-written record stays behind.
func (s *Spool) writeSynced(b []byte, size int64) error {
	_, err := s.cur.Write(b)
	if err == nil {
		err = s.cur.Sync()
	}
	if err == nil {
		return nil
	}
	if terr := s.cur.Truncate(size); terr != nil {
		s.log.Error("spool: cannot cut back a failed write", "err", terr)
	}
	if _, serr := s.cur.Seek(size, 0); serr != nil {
		s.log.Error("spool: cannot seek after a failed write", "err", serr)
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: the disk is full: %v", ErrFull, err)
	}
	return fmt.Errorf("spool: write: %w", err)
}

func (s *Spool) rotate(id uint64) error {
	old := s.cur
	if err := s.startSegment(id); err != nil {
		return err
	}
	return old.Close() // synced by its last write
}

func (s *Spool) signal() {
	select {
	case s.more <- struct{}{}:
	default:
	}
}

// Close stops appending and waits for the appender; records not committed stay on disk for
// the next Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.in)
	s.mu.Unlock()
	<-s.appended
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, f := range s.readers {
		f.Close()
		delete(s.readers, id)
	}
	return nil
}

// Stats describe what waits in the spool.
type Stats struct {
	Segments int
	Bytes    int64
	MaxBytes int64
	Events   int64     // events not yet committed
	Oldest   time.Time // when the oldest of them was received; zero when there is none
}

// Backlog is the number of events not yet committed, as Stats gives it, without waiting for the
// spool's lock (which an Append blocked on a full queue holds).
func (s *Spool) Backlog() int64 { return s.events.Load() }

// Stats are the spool's figures now.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Segments: len(s.segments), Bytes: s.bytes, MaxBytes: s.opts.MaxBytes, Events: s.events.Load()}
	if len(s.records) > 0 {
		st.Oldest = s.records[0].received
	}
	return st
}
