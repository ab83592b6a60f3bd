package spool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/truthboard/truthboard/internal/bufpool"
	"github.com/truthboard/truthboard/internal/event"
)

// Batch is records handed out by Next: their events, in order, each with the time its
// request was received, and the records whose events cannot be read. Commit it once
// downstream has every event and the undecodable records are kept aside. Batches are
// committed in the order Next handed them out.
type Batch struct {
	Events   []event.Event
	Received []time.Time
	// Undecodable are the records of the batch whose bytes are whole but whose events cannot
	// be decoded; their events are not in Events.
	Undecodable []Undecodable
	records     int
	seq         uint64 // the how-manieth batch handed out, from 1
}

// Undecodable is a record whose bytes are intact (its CRC holds) but whose payload cannot be
// decoded: written by another version of Truthboard, or by a bug. Reading it again gives the
// same error, so it is handed out beside the batch's events for the reader to keep aside:
// retrying it would block every record behind it, for ever.
type Undecodable struct {
	Segment  uint64
	Offset   int64
	Count    int       // events the record's header announces
	Received time.Time // when its request was received
	Payload  []byte    // the record's payload as on disk (codec.go)
	Err      error     // why it cannot be decoded
}

// Records is the number of appended records (requests) the batch holds.
func (b Batch) Records() int { return b.records }

// MaxUncommitted is how many batches Next hands out before the oldest is committed: one
// being delivered and the next one, read ahead while it is.
const MaxUncommitted = 2

// ErrUncommitted means Next was called while MaxUncommitted batches were not committed.
var ErrUncommitted = fmt.Errorf("spool: %d batches handed out are not committed", MaxUncommitted)

// Next waits until records are waiting behind the batches handed out, then returns the oldest
// of them: whole records, at least one, up to maxEvents events in all unless the first record
// alone holds more. It waits up to linger after the first record was received for more
// records, so that batches are large when the traffic is. ctx ending returns ctx's error.
// Only one goroutine may read; up to MaxUncommitted batches may be out at once.
func (s *Spool) Next(ctx context.Context, maxEvents int, linger time.Duration) (Batch, error) {
	var timer *time.Timer
	for {
		s.mu.Lock()
		if s.handedSeq-s.committedSeq >= MaxUncommitted {
			s.mu.Unlock()
			return Batch{}, ErrUncommitted
		}
		waiting := s.records[s.readPos:]
		take, events := 0, 0
		for _, r := range waiting {
			if take > 0 && events+r.count > maxEvents {
				break
			}
			take, events = take+1, events+r.count
		}
		var wait time.Duration
		if take > 0 {
			wait = time.Until(waiting[0].received.Add(linger))
		}
		full := take > 0 && (events >= maxEvents || take < len(waiting))
		if take > 0 && (full || wait <= 0) {
			recs := append([]record(nil), waiting[:take]...)
			s.readPos += take
			s.handedSeq++
			seq := s.handedSeq
			s.mu.Unlock()
			return s.read(recs, events, seq)
		}
		s.mu.Unlock()
		var lingerDone <-chan time.Time
		if take > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
				defer timer.Stop()
			} else {
				timer.Reset(wait)
			}
			lingerDone = timer.C
		}
		select {
		case <-s.more:
		case <-lingerDone:
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		}
	}
}

// read loads the events of recs from their segments. A record that does not decode goes to
// b.Undecodable; an error reading the disk fails the whole read, which the reader retries.
func (s *Spool) read(recs []record, events int, seq uint64) (Batch, error) {
	b := Batch{Events: make([]event.Event, 0, events), Received: make([]time.Time, 0, events), records: len(recs), seq: seq}
	var buf []byte // records read from disk, one at a time (bufpool)
	defer func() { bufpool.Put(buf) }()
	for _, r := range recs {
		if r.events != nil {
			b.Events = append(b.Events, r.events...)
			for range r.count {
				b.Received = append(b.Received, r.received)
			}
			continue
		}
		f, err := s.reader(r.segment)
		if err != nil {
			s.abandonRead(len(recs))
			return Batch{}, err
		}
		n := int(r.size - headerBytes)
		if cap(buf) < n {
			bufpool.Put(buf)
			buf = bufpool.Get(n)
		}
		buf = buf[:n]
		if _, err := f.ReadAt(buf, r.offset+headerBytes); err != nil {
			s.abandonRead(len(recs))
			return Batch{}, fmt.Errorf("spool: read segment %d at %d: %w", r.segment, r.offset, err)
		}
		b.Events, err = appendEvents(b.Events, buf, r.count)
		if err != nil {
			b.Undecodable = append(b.Undecodable, Undecodable{Segment: r.segment, Offset: r.offset, Count: r.count,
				Received: r.received, Payload: bytes.Clone(buf), Err: fmt.Errorf("spool: the record in segment %d at %d: %w", r.segment, r.offset, err)})
			continue
		}
		for range r.count {
			b.Received = append(b.Received, r.received)
		}
	}
	return b, nil
}

// abandonRead takes back the batch of n records being read, the last one handed out.
func (s *Spool) abandonRead(n int) {
	s.mu.Lock()
	s.readPos -= n
	s.handedSeq--
	s.mu.Unlock()
}

func (s *Spool) reader(id uint64) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.readers[id]; f != nil {
		return f, nil
	}
	f, err := os.Open(s.path(id))
	if err != nil {
		return nil, fmt.Errorf("spool: open segment: %w", err)
	}
	s.readers[id] = f
	return f, nil
}

// Commit marks the oldest batch handed out by Next and not committed as delivered: its records
// leave the spool, and so does every segment whose records all have. The position after the batch is saved (checkpoint),
// so that a restart does not send delivered records again; without it, for instance after a
// crash, they are sent again and the reader's duplicate check drops them.
func (s *Spool) Commit(b Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.seq != s.committedSeq+1 || b.records > s.readPos || b.records == 0 {
		return fmt.Errorf("spool: commit of batch %d (%d records), but the oldest not committed is batch %d (%d records handed out)",
			b.seq, b.records, s.committedSeq+1, s.readPos)
	}
	last := s.records[b.records-1]
	for _, r := range s.records[:b.records] {
		s.events.Add(-int64(r.count))
		if r.events != nil {
			s.memEvents -= r.count
		}
	}
	n := copy(s.records, s.records[b.records:])
	clear(s.records[n:]) // let the delivered events go
	s.records = s.records[:n]
	s.readPos -= b.records
	s.committedSeq++
	if err := s.saveCheckpoint(position{Segment: last.segment, Offset: last.offset + last.size}); err != nil {
		s.log.Warn("spool: cannot save the delivered position; a restart sends the last records again (and drops them as duplicates)", "err", err)
	}
	if s.refused && len(s.records) == 0 {
		// Appends were refused for room and everything is delivered now: the segment being
		// written can go, so that /readyz and the next request see the room at once.
		select {
		case s.roll <- struct{}{}:
		default:
		}
	}
	return s.removeDelivered()
}

// removeDelivered removes the segments before the one holding the oldest record left; the
// last segment is being written and stays. s.mu is held.
func (s *Spool) removeDelivered() error {
	keepFrom := s.segments[len(s.segments)-1].id
	if len(s.records) > 0 {
		keepFrom = s.records[0].segment
	}
	for len(s.segments) > 1 && s.segments[0].id < keepFrom {
		seg := s.segments[0]
		if f := s.readers[seg.id]; f != nil {
			f.Close()
			delete(s.readers, seg.id)
		}
		if err := os.Remove(s.path(seg.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spool: remove a delivered segment: %w", err)
		}
		s.segments = s.segments[1:]
		s.bytes -= seg.size
	}
	return nil
}

// position is a place in the spool: a segment and a byte offset in it.
type position struct {
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
}

const checkpointFile = "delivered.json"

// saveCheckpoint records that everything before p is delivered. It is replaced atomically
// but not synced: losing it costs only a duplicate check of records already delivered.
func (s *Spool) saveCheckpoint(p position) error {
	b, _ := json.Marshal(p)
	tmp := filepath.Join(s.opts.Dir, checkpointFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.opts.Dir, checkpointFile))
}

// loadCheckpoint reads the delivered position; the zero position when there is none.
func (s *Spool) loadCheckpoint() position {
	var p position
	b, err := os.ReadFile(filepath.Join(s.opts.Dir, checkpointFile))
	if err == nil && json.Unmarshal(b, &p) != nil {
		s.log.Warn("spool: the delivered position is unreadable; every record found is sent again (and dropped as a duplicate if ClickHouse has it)")
		p = position{}
	}
	return p
}
