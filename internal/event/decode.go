package event

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/bufpool"
)

// Defaults of Limits.
const (
	// DefaultMaxBodyBytes bounds a request body after decompression: 10 MiB holds the 10,000
	// events of DefaultMaxEvents at 1 KiB each, twice a typical event.
	DefaultMaxBodyBytes = 10 << 20
	// DefaultMaxEvents bounds the events of one request: at ~120k rows/s per ClickHouse insert,
	// 10,000 events are a fraction of a second of work, and a rejected request is cheap to retry.
	DefaultMaxEvents = 10_000
)

// Limits of one request. A zero field takes its default.
type Limits struct {
	// MaxBodyBytes bounds the body as decoded (after gzip), enforced while reading; 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxEvents bounds the events of one request, valid or not; 0 means DefaultMaxEvents.
	MaxEvents int
	// Retention is how old an event may be (occurred_at); 0 means DefaultRetention.
	Retention time.Duration
}

// DefaultLimits returns the limits Decode uses for zero fields.
func DefaultLimits() Limits {
	return Limits{MaxBodyBytes: DefaultMaxBodyBytes, MaxEvents: DefaultMaxEvents, Retention: DefaultRetention}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = d.MaxEvents
	}
	if l.Retention <= 0 {
		l.Retention = d.Retention
	}
	return l
}

// Batch is a decoded request: its valid events and the problems of the others.
type Batch struct {
	// Events are the valid events, in request order; each passed Validate.
	Events []Event
	// Indexes[i] is the position in the request of Events[i].
	Indexes []int
	// Errors are the problems of the invalid events, ordered by index, then by field in the
	// order of the SPEC table. An event has at most MaxErrorsPerEvent+1 of them.
	Errors []FieldError
	// Total is the number of events in the request, valid or not. Every index below Total is in
	// Indexes or in Errors, never both.
	Total int
}

// Rejected returns the number of invalid events.
func (b *Batch) Rejected() int { return b.Total - len(b.Events) }

var (
	// ErrTooLarge is the cause of a BodyError for a body over MaxBodyBytes or with more than
	// MaxEvents events: HTTP 413.
	ErrTooLarge = errors.New("request too large")
	// ErrUnsupportedEncoding is returned by Decompressed for a Content-Encoding other than gzip
	// or identity: HTTP 415.
	ErrUnsupportedEncoding = errors.New("unsupported Content-Encoding")
)

// BodyError is a problem that makes the whole body unusable, so no event of it is taken: HTTP
// 400, or 413 when errors.Is(err, ErrTooLarge).
type BodyError struct {
	// Offset is the byte offset in the decoded body where reading stopped, or -1.
	Offset int64
	// Message says what is wrong and where, in plain words.
	Message string
	// Err is the cause, if any: ErrTooLarge, or the error of the body reader.
	Err error

	syntax bool // invalid JSON, for tests
}

func (e *BodyError) Error() string { return e.Message }
func (e *BodyError) Unwrap() error { return e.Err }

func tooLarge(max int64) *BodyError {
	return &BodyError{Offset: max, Err: ErrTooLarge, Message: fmt.Sprintf(
		"the body is larger than %s (%d bytes) once decompressed; send fewer events per request", humanBytes(max), max)}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// IsNDJSON reports whether a Content-Type announces NDJSON (one event per line):
// application/x-ndjson, or its aliases application/ndjson, application/jsonl and
// application/x-jsonlines. Any other type is read as JSON.
func IsNDJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	for _, t := range []string{"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"} {
		if strings.EqualFold(mt, t) {
			return true
		}
	}
	return false
}

// Decode reads a request body and decodes its events: one JSON object, a JSON array of
// objects, or NDJSON when IsNDJSON(contentType). r gives the body as sent after
// decompression (see Decompressed); Decode stops reading past limits.MaxBodyBytes. now is the
// server time for the occurred_at rules.
//
// Decode returns a *BodyError when the body cannot be used as a whole: unreadable, too large,
// empty, not JSON, an array cut off, more than limits.MaxEvents events. Otherwise each event is
// either in Batch.Events or described in Batch.Errors. In NDJSON a line that is not valid JSON
// is a problem of that event only.
func Decode(r io.Reader, contentType string, limits Limits, now time.Time) (Batch, error) {
	limits = limits.withDefaults()
	buf := bytes.NewBuffer(bufpool.Get(bytes.MinRead))
	defer func() { bufpool.Put(buf.Bytes()) }()
	if _, err := buf.ReadFrom(limitReader(r, limits.MaxBodyBytes)); err != nil {
		var be *BodyError
		if errors.As(err, &be) {
			return Batch{}, be
		}
		return Batch{}, &BodyError{Offset: int64(buf.Len()), Err: err, Message: fmt.Sprintf(
			"cannot read the body after %d bytes: %v", buf.Len(), err)}
	}
	// The batch shares no memory with buf (the parser copies every string it keeps), so buf
	// can go back to bufpool.
	return DecodeBytes(buf.Bytes(), contentType, limits, now)
}

// DecodeBytes is Decode for a body already in memory (decompressed). The batch does not share
// memory with body.
func DecodeBytes(body []byte, contentType string, limits Limits, now time.Time) (Batch, error) {
	limits = limits.withDefaults()
	if int64(len(body)) > limits.MaxBodyBytes {
		return Batch{}, tooLarge(limits.MaxBodyBytes)
	}
	d := decoder{limits: limits, w: newWindow(now, limits.Retention)}
	start := 0
	if bytes.HasPrefix(body, []byte("\xEF\xBB\xBF")) {
		start = 3 // a UTF-8 byte order mark, as some Windows tools write; offsets still count it
	}
	var err *BodyError
	if IsNDJSON(contentType) {
		err = d.ndjson(body, start)
	} else {
		err = d.json(body, start)
	}
	if err != nil {
		return Batch{}, err
	}
	clear(d.b.Events[len(d.b.Events):cap(d.b.Events)]) // rejected events left in the spare room
	return d.b, nil
}

type decoder struct {
	limits Limits
	w      window
	b      Batch
	c      collector
	// arena is the parser's reused memory, kept from one NDJSON line to the next.
	arena arena
}

// one decodes the event at p.pos, the beginning of a value, with the next index. It returns a
// syntax error without recording anything for the event.
func (d *decoder) one(p *parser) *syntaxError {
	index := d.b.Total
	d.b.Events = append(d.b.Events, Event{})
	e := &d.b.Events[len(d.b.Events)-1]
	d.c = collector{errs: d.c.errs[:0], index: index, parsed: true}
	if p.data[p.pos] == '{' {
		if err := p.event(e, &d.c, &d.w); err != nil {
			d.b.Events = d.b.Events[:len(d.b.Events)-1]
			return err
		}
	} else {
		got, err := p.skip(1)
		if err != nil {
			d.b.Events = d.b.Events[:len(d.b.Events)-1]
			return err
		}
		d.c.add("", "must be a JSON object (got "+got+")")
	}
	d.b.Total++
	if len(d.c.errs) == 0 {
		d.b.Indexes = append(d.b.Indexes, index)
		return nil
	}
	*e = Event{}
	d.b.Events = d.b.Events[:len(d.b.Events)-1]
	d.b.Errors = append(d.b.Errors, d.c.finish()...)
	return nil
}

func (d *decoder) tooMany(where string) *BodyError {
	return &BodyError{Offset: -1, Err: ErrTooLarge, Message: fmt.Sprintf(
		"too many events in one request: at most %d are allowed, and %s holds event %d (index %d); split the events into several requests",
		d.limits.MaxEvents, where, d.b.Total+1, d.b.Total)}
}

func (d *decoder) json(body []byte, start int) *BodyError {
	p := parser{data: body, pos: start, a: &d.arena}
	fail := func(err *syntaxError) *BodyError {
		line, col := lineCol(body, err.off)
		return &BodyError{Offset: int64(err.off), syntax: true, Message: fmt.Sprintf(
			"invalid JSON at byte %d (line %d, column %d): %s", err.off, line, col, err.msg)}
	}
	p.ws()
	if p.pos == len(body) {
		return emptyBody()
	}
	switch body[p.pos] {
	case '{':
		if err := d.one(&p); err != nil {
			return fail(err)
		}
	case '[':
		d.b.Events = make([]Event, 0, min(d.limits.MaxEvents, len(body)/256+1))
		p.pos++
		p.ws()
		if p.pos < len(body) && body[p.pos] == ']' {
			p.pos++
			break
		}
		for {
			p.ws()
			if d.b.Total == d.limits.MaxEvents {
				if p.pos >= len(body) {
					return fail(p.eof())
				}
				be := d.tooMany(fmt.Sprintf("byte %d", p.pos))
				be.Offset = int64(p.pos)
				return be
			}
			if p.pos >= len(body) {
				return fail(p.eof())
			}
			if err := d.one(&p); err != nil {
				return fail(err)
			}
			end, err := p.next(']', "")
			if err != nil {
				if p.pos < len(body) && body[p.pos] == '{' {
					err.msg += " (events in an array are separated by commas)"
				}
				return fail(err)
			}
			if end {
				break
			}
		}
	default:
		got, err := p.skip(1)
		if err != nil {
			return fail(err)
		}
		return &BodyError{Offset: 0, Message: "the body must be a JSON object or an array of objects (got " + got + ")"}
	}
	p.ws()
	if p.pos < len(body) {
		err := &syntaxError{p.pos, "unexpected data after the end of the JSON value"}
		if body[p.pos] == '{' {
			err.msg += "; to send several events, put them in a JSON array or send NDJSON (one event per line) with Content-Type: application/x-ndjson"
		}
		return fail(err)
	}
	return nil
}

func (d *decoder) ndjson(body []byte, start int) *BodyError {
	d.b.Events = make([]Event, 0, min(d.limits.MaxEvents, bytes.Count(body, []byte{'\n'})+1))
	line := 0
	for start < len(body) {
		end := bytes.IndexByte(body[start:], '\n')
		if end < 0 {
			end = len(body)
		} else {
			end += start
		}
		line++
		p := parser{data: body[:end], pos: start, ndjson: true, a: &d.arena}
		p.ws()
		if p.pos == end { // a blank line
			start = end + 1
			continue
		}
		if d.b.Total == d.limits.MaxEvents {
			return d.tooMany(fmt.Sprintf("line %d", line))
		}
		err := d.one(&p)
		if err == nil {
			if p.ws(); p.pos < end {
				// The event is fine but the line goes on: that sinks the event, not the body.
				d.dropLast()
				err = &syntaxError{p.pos, "unexpected data after the end of the event (in NDJSON each line holds one event)"}
			}
		}
		if err != nil {
			d.lineError(err, line, start)
		}
		start = end + 1
	}
	if d.b.Total == 0 { // only blank lines
		return emptyBody()
	}
	return nil
}

// dropLast turns the last decoded event of an NDJSON line into a rejected one, forgetting the
// problems found in it, if any.
func (d *decoder) dropLast() {
	last := d.b.Total - 1
	if n := len(d.b.Indexes); n > 0 && d.b.Indexes[n-1] == last {
		d.b.Indexes = d.b.Indexes[:n-1]
		d.b.Events[len(d.b.Events)-1] = Event{}
		d.b.Events = d.b.Events[:len(d.b.Events)-1]
	}
	for len(d.b.Errors) > 0 && d.b.Errors[len(d.b.Errors)-1].Index == last {
		d.b.Errors = d.b.Errors[:len(d.b.Errors)-1]
	}
	d.b.Total--
}

// lineError records a syntax error on an NDJSON line as the only problem of its event.
func (d *decoder) lineError(err *syntaxError, line, start int) {
	d.b.Errors = append(d.b.Errors, FieldError{Index: d.b.Total, Field: "", Message: fmt.Sprintf(
		"invalid JSON at line %d, column %d: %s", line, err.off-start+1, err.msg)})
	d.b.Total++
}

func emptyBody() *BodyError {
	return &BodyError{Offset: 0, Message: "the body is empty; send a JSON object, a JSON array of objects, or NDJSON (one object per line)"}
}

// lineCol returns the 1-based line and column (in bytes) of a body offset.
func lineCol(body []byte, off int) (int, int) {
	off = min(off, len(body))
	line := bytes.Count(body[:off], []byte{'\n'}) + 1
	return line, off - (bytes.LastIndexByte(body[:off], '\n') + 1) + 1
}
