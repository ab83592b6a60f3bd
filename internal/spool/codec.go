package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/truthboard/truthboard/internal/event"
)

// The payload of a record is its events in a compact binary form, written and read by hand:
// encoding/json took 700 ns an event to write and several µs to read, on the path of every
// acknowledged event. The record's CRC guards the bytes; the decoder still checks every length,
// so a bug cannot make it read out of bounds.
//
//	version   byte     payloadVersion
//	count     uvarint
//	per event:
//	  12 strings       event_id, moment, channel, touchpoint, stage, outcome, customer_id,
//	                   journey_id, region, product, segment, agent_team (uvarint length, bytes)
//	  occurred_at      varint, Unix nanoseconds
//	  present          byte, a bit per optional number: csat, nps, ces, sentiment, wait_ms, handle_ms
//	  the numbers present, in that order: csat, nps, ces one byte each, sentiment 8 bytes
//	                   (IEEE 754, little endian), wait_ms and handle_ms uvarint
//	  attributes       uvarint count, then key and value strings, keys sorted
//
// A new layout gets a new version byte; readers keep reading the old ones, since a spool may
// outlive an upgrade.
const payloadVersion = 1

const (
	hasCSAT = 1 << iota
	hasNPS
	hasCES
	hasSentiment
	hasWait
	hasHandle
)

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// encodeEvents appends the payload of evs to b.
func encodeEvents(b []byte, evs []event.Event) []byte {
	b = append(b, payloadVersion)
	b = binary.AppendUvarint(b, uint64(len(evs)))
	for i := range evs {
		e := &evs[i]
		for _, s := range [...]string{e.EventID, e.Moment, e.Channel, e.Touchpoint, e.Stage, e.Outcome,
			e.CustomerID, e.JourneyID, e.Region, e.Product, e.Segment, e.AgentTeam} {
			b = appendString(b, s)
		}
		b = binary.AppendVarint(b, e.OccurredAt.UnixNano())
		var present byte
		if e.CSAT != nil {
			present |= hasCSAT
		}
		if e.NPS != nil {
			present |= hasNPS
		}
		if e.CES != nil {
			present |= hasCES
		}
		if e.Sentiment != nil {
			present |= hasSentiment
		}
		if e.WaitMS != nil {
			present |= hasWait
		}
		if e.HandleMS != nil {
			present |= hasHandle
		}
		b = append(b, present)
		for _, v := range [...]*uint8{e.CSAT, e.NPS, e.CES} {
			if v != nil {
				b = append(b, *v)
			}
		}
		if e.Sentiment != nil {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(*e.Sentiment))
		}
		for _, v := range [...]*uint32{e.WaitMS, e.HandleMS} {
			if v != nil {
				b = binary.AppendUvarint(b, uint64(*v))
			}
		}
		b = binary.AppendUvarint(b, uint64(len(e.Attributes)))
		keys := make([]string, 0, len(e.Attributes))
		for k := range e.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendString(appendString(b, k), e.Attributes[k])
		}
	}
	return b
}

var errCorrupt = errors.New("the events of the record are cut off or malformed")

// payloadReader reads a payload, remembering the first error. The strings it returns are
// parts of whole, the payload as one string, so that a record's events share one allocation.
type payloadReader struct {
	b     []byte
	whole string
	err   error
}

func (r *payloadReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *payloadReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *payloadReader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *payloadReader) str() string {
	n := r.uvarint()
	at := len(r.whole) - len(r.b)
	if r.bytes(n) == nil {
		return ""
	}
	return r.whole[at : at+int(n)]
}

func (r *payloadReader) byte() byte {
	if b := r.bytes(1); len(b) == 1 {
		return b[0]
	}
	return 0
}

// uint8 reads a byte into the next of the bytes in *room, which has room for it.
func (r *payloadReader) uint8(room *[]uint8) *uint8 {
	*room = append(*room, r.byte())
	return &(*room)[len(*room)-1]
}

// uint32 reads a uvarint into the next of the numbers in *room, which has room for it.
func (r *payloadReader) uint32(room *[]uint32) *uint32 {
	n := r.uvarint()
	if n > math.MaxUint32 {
		r.fail()
	}
	*room = append(*room, uint32(n))
	return &(*room)[len(*room)-1]
}

func (r *payloadReader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.b = nil
}

// DecodePayload reads the payload of a record (Undecodable.Payload), which must hold count
// events: a record kept aside can be read again by a later version of Truthboard.
func DecodePayload(payload []byte, count int) ([]event.Event, error) {
	return decodeEvents(payload, count)
}

// decodeEvents reads a payload written by encodeEvents; it must hold count events.
func decodeEvents(payload []byte, count int) ([]event.Event, error) {
	return appendEvents(nil, payload, count)
}

// appendEvents is decodeEvents appending the events to dst; on error dst is returned as it was.
func appendEvents(dst []event.Event, payload []byte, count int) ([]event.Event, error) {
	r := &payloadReader{b: payload, whole: string(payload)}
	if v := r.byte(); v != payloadVersion {
		return dst, fmt.Errorf("payload version %d, want %d (a spool written by another version of Truthboard)", v, payloadVersion)
	}
	if n := r.uvarint(); r.err != nil || n != uint64(count) {
		return dst, fmt.Errorf("the payload holds %d events, the record says %d (%v)", n, count, r.err)
	}
	start := len(dst)
	dst = slices.Grow(dst, count)[:start+count]
	evs := dst[start:]
	fail := func(err error) ([]event.Event, error) {
		clear(evs)
		return dst[:start], err
	}
	// The optional numbers of all the events, allocated once; the events point into them.
	scores, durations, sentiments := make([]uint8, 0, 3*count), make([]uint32, 0, 2*count), make([]float64, 0, count)
	for i := range evs {
		e := &evs[i]
		for _, s := range [...]*string{&e.EventID, &e.Moment, &e.Channel, &e.Touchpoint, &e.Stage, &e.Outcome,
			&e.CustomerID, &e.JourneyID, &e.Region, &e.Product, &e.Segment, &e.AgentTeam} {
			*s = r.str()
		}
		e.OccurredAt = time.Unix(0, r.varint()).UTC()
		present := r.byte()
		if present&hasCSAT != 0 {
			e.CSAT = r.uint8(&scores)
		}
		if present&hasNPS != 0 {
			e.NPS = r.uint8(&scores)
		}
		if present&hasCES != 0 {
			e.CES = r.uint8(&scores)
		}
		if present&hasSentiment != 0 {
			if b := r.bytes(8); len(b) == 8 {
				v := math.Float64frombits(binary.LittleEndian.Uint64(b))
				if math.IsNaN(v) || math.IsInf(v, 0) { // never written: validation refuses them
					r.fail()
				}
				sentiments = append(sentiments, v)
				e.Sentiment = &sentiments[len(sentiments)-1]
			}
		}
		if present&hasWait != 0 {
			e.WaitMS = r.uint32(&durations)
		}
		if present&hasHandle != 0 {
			e.HandleMS = r.uint32(&durations)
		}
		if n := r.uvarint(); n > 0 && n <= uint64(len(r.b)) {
			e.Attributes = make(map[string]string, n)
			for range n {
				k := r.str()
				e.Attributes[k] = r.str()
			}
		} else if n > 0 {
			r.fail()
		}
		if r.err != nil {
			return fail(r.err)
		}
	}
	if len(r.b) != 0 {
		return fail(fmt.Errorf("%d bytes after the last event", len(r.b)))
	}
	return dst, nil
}
