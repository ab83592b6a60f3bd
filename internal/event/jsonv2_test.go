package event

// Two decoders of NDJSON events built on the maintained json/v2 packages
// (github.com/go-json-experiment/json), to weigh the hand-written reader of parse.go against:
// BenchmarkDecodeVsJSONv2 runs the three on the same body, and the tests below check that they
// take the same events and refuse the same bad ones.
//
//   - textDecoder reads each line with jsontext's Decoder (raw values, no reflection) and
//     applies the same rules with the same collector, so it lists every problem of an event
//     with its field, as DecodeBytes does. Invalid JSON, invalid UTF-8 and unpaired surrogates
//     are jsontext's own errors: they refuse the event with one message, named after the field
//     jsontext was in.
//   - unmarshalV2 is json/v2's Unmarshal into Event with unknown members rejected (its defaults
//     already refuse duplicate names, names in another case and invalid UTF-8), then the same
//     rules. It stops at the first problem of an event.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// textOptions lets duplicate names through jsontext, so that the decoder reports each one
// against its field and goes on, as the hand-written reader does.
var textOptions = jsontext.AllowDuplicateNames(true)

// unmarshalOptions are json/v2's defaults plus unknown members refused.
var unmarshalOptions = jsonv2.RejectUnknownMembers(true)

// textDecoder decodes NDJSON with jsontext. It can be reused, one body at a time.
type textDecoder struct {
	dec     jsontext.Decoder
	line    bytes.Buffer // the current line: jsontext reads a bytes.Buffer in place
	scratch []byte       // unquoted strings that had escapes
	c       collector
}

// ndjsonLines calls each with every non-blank line of body and its 1-based number.
func ndjsonLines(body []byte, each func(line []byte, number int)) {
	number := 0
	for start := 0; start < len(body); {
		end := bytes.IndexByte(body[start:], '\n')
		if end < 0 {
			end = len(body)
		} else {
			end += start
		}
		number++
		if line := body[start:end]; len(bytes.Trim(line, " \t\r")) > 0 {
			each(line, number)
		}
		start = end + 1
	}
}

// settle keeps the last event of b, at index, when c found no problem in it, and otherwise
// drops it and records its problems.
func settle(b *Batch, index int, c *collector) {
	if len(c.errs) == 0 {
		b.Indexes = append(b.Indexes, index)
		return
	}
	b.Events[len(b.Events)-1] = Event{}
	b.Events = b.Events[:len(b.Events)-1]
	b.Errors = append(b.Errors, c.finish()...)
}

func (d *textDecoder) decode(body []byte, now time.Time) Batch {
	w := newWindow(now, DefaultRetention)
	b := Batch{Events: make([]Event, 0, bytes.Count(body, []byte{'\n'})+1)}
	ndjsonLines(body, func(line []byte, number int) {
		index := b.Total
		b.Total++
		b.Events = append(b.Events, Event{})
		e := &b.Events[len(b.Events)-1]
		d.c = collector{errs: d.c.errs[:0], index: index}
		d.line = *bytes.NewBuffer(line)
		d.dec.Reset(&d.line, textOptions)
		err := d.event(e, &w)
		if err == nil {
			if _, err = d.dec.ReadValue(); err == io.EOF {
				err = nil
			} else if err == nil {
				err = errors.New("unexpected data after the end of the event (in NDJSON each line holds one event)")
			}
		}
		if err != nil {
			d.c = collector{errs: d.c.errs[:0], index: index}
			d.c.add(pointerField(err), fmt.Sprintf("invalid JSON at line %d: %v", number, err))
		}
		settle(&b, index, &d.c)
	})
	return b
}

// pointerField names the field of a json/v2 error from its JSON pointer: "csat",
// "attributes.plan", or "" for the event as a whole.
func pointerField(err error) string {
	var p jsontext.Pointer
	var se *jsontext.SyntacticError
	var me *jsonv2.SemanticError
	switch {
	case errors.As(err, &se):
		p = se.JSONPointer
	case errors.As(err, &me):
		p = me.JSONPointer
	}
	return strings.ReplaceAll(strings.TrimPrefix(string(p), "/"), "/", ".")
}

// unquote returns the text of the JSON string v, valid until the next call.
func (d *textDecoder) unquote(v jsontext.Value) ([]byte, error) {
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], nil // jsontext has checked it is valid UTF-8
	}
	var err error
	d.scratch, err = jsontext.AppendUnquote(d.scratch[:0], v)
	return d.scratch, err
}

// describe says what a value of the wrong type was, as the hand-written reader's skip does.
func (d *textDecoder) describe(v jsontext.Value) string {
	switch v.Kind() {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		s, _ := d.unquote(v)
		return quote(string(s))
	case '0':
		return shorten(string(v), 32)
	}
	return string(v)
}

// event reads one event, applying the rules of parser.event. A returned error is jsontext's:
// the line is not valid JSON.
func (d *textDecoder) event(e *Event, w *window) error {
	dec, c := &d.dec, &d.c
	if dec.PeekKind() != '{' {
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		c.add("", "must be a JSON object (got "+d.describe(v)+")")
		return nil
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	var seen, present, skip uint32
	var nums *numbers
	num := func() *numbers {
		if nums == nil {
			nums = new(numbers)
		}
		return nums
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return err
		}
		key, err := d.unquote(name)
		if err != nil {
			return err
		}
		id := fieldID(key)
		switch {
		case id < 0:
			if c.full() {
				c.more++
			} else {
				c.add(unknownField(string(key), textOK))
			}
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		case seen&(1<<id) != 0:
			c.addf(id, msgDuplicate)
			skip |= 1 << id
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		seen |= 1 << id
		var ok, sent bool
		if id == fAttributes && dec.PeekKind() == '{' {
			if ok, err = d.attributes(&e.Attributes); err != nil {
				return err
			}
			sent = true
		} else {
			v, err := dec.ReadValue()
			if err != nil {
				return err
			}
			if ok, sent, err = d.field(id, v, e, num); err != nil {
				return err
			}
		}
		if !ok {
			skip |= 1 << id
		}
		if sent {
			present |= 1 << id
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	c.check(e, present, skip, w)
	return nil
}

// field reads the value v of the field id into e. ok is false when a problem was reported;
// sent is false for null (absent).
func (d *textDecoder) field(id int, v jsontext.Value, e *Event, num func() *numbers) (ok, sent bool, err error) {
	c := &d.c
	kind := v.Kind()
	if kind == 'n' {
		if id <= fTouchpoint { // event_id, occurred_at, moment, channel, touchpoint: required
			c.addf(id, msgRequiredNull)
			return false, false, nil
		}
		return true, false, nil
	}
	switch id {
	case fEventID, fTouchpoint, fCustomerID, fJourneyID, fRegion, fProduct, fSegment, fAgentTeam,
		fMoment, fChannel, fStage, fOutcome:
		var list []string
		want := "must be a string"
		switch id {
		case fMoment, fChannel, fStage, fOutcome:
			list, want = [...][]string{fMoment: Moments, fChannel: Channels, fStage: Stages, fOutcome: Outcomes}[id], enumMsg(id)
		}
		if kind != '"' {
			c.addf(id, want+" (got "+d.describe(v)+")")
			return false, true, nil
		}
		b, err := d.unquote(v)
		if err != nil {
			return false, false, err
		}
		s := textField(e, id)
		for _, known := range list {
			if string(b) == known {
				*s = known // the vocabulary's own string: no allocation
				return true, true, nil
			}
		}
		*s = string(b)
		return true, true, nil
	case fOccurredAt:
		if kind != '"' {
			c.addf(id, msgTimeExample+" (got "+d.describe(v)+")")
			return false, true, nil
		}
		b, err := d.unquote(v)
		if err != nil {
			return false, false, err
		}
		if msg := parseTime(b, &e.OccurredAt); msg != "" {
			c.addf(id, msg)
			return false, true, nil
		}
		return true, true, nil
	case fSentiment:
		var f float64
		valid := kind == '0'
		if valid {
			var perr error
			f, perr = strconv.ParseFloat(string(v), 64)
			valid = perr == nil && f >= -1 && f <= 1
		}
		if !valid {
			c.addf(id, msgSentiment+" (got "+d.describe(v)+")")
			return false, true, nil
		}
		n := num()
		n.sentiment, e.Sentiment = f, &n.sentiment
		return true, true, nil
	case fAttributes: // not an object: the object is read by attributes
		c.addf(id, msgAttributes+" (got "+d.describe(v)+")")
		return false, true, nil
	}
	// csat, nps, ces, wait_ms, handle_ms
	var i int64
	whole := false
	if kind == '0' {
		i, whole = wholeNumber(v)
	}
	if b := intBounds[id]; !whole || i < b[0] || i > b[1] {
		c.addf(id, intMsg(id, d.describe(v)))
		return false, true, nil
	}
	n := num()
	switch id {
	case fCSAT:
		n.csat, e.CSAT = uint8(i), &n.csat
	case fNPS:
		n.nps, e.NPS = uint8(i), &n.nps
	case fCES:
		n.ces, e.CES = uint8(i), &n.ces
	case fWaitMS:
		n.wait, e.WaitMS = uint32(i), &n.wait
	default:
		n.handle, e.HandleMS = uint32(i), &n.handle
	}
	return true, true, nil
}

// textField returns the string field of e with the identifier id.
func textField(e *Event, id int) *string {
	return [...]*string{fEventID: &e.EventID, fMoment: &e.Moment, fChannel: &e.Channel, fTouchpoint: &e.Touchpoint,
		fStage: &e.Stage, fOutcome: &e.Outcome, fCustomerID: &e.CustomerID, fJourneyID: &e.JourneyID,
		fRegion: &e.Region, fProduct: &e.Product, fSegment: &e.Segment, fAgentTeam: &e.AgentTeam}[id]
}

// attributes reads the attributes object, with the rules of parser.attributes.
func (d *textDecoder) attributes(m *map[string]string) (ok bool, err error) {
	dec, c := &d.dec, &d.c
	if _, err := dec.ReadToken(); err != nil { // '{'
		return false, err
	}
	ok = true
	count := 0
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return false, err
		}
		kb, err := d.unquote(name)
		if err != nil {
			return false, err
		}
		count++
		keep := count <= MaxAttributes+1 // keys past it are counted, not kept
		var key string
		if keep {
			key = string(kb)
		}
		v, err := dec.ReadValue()
		if err != nil {
			return false, err
		}
		_, dup := (*m)[key]
		switch {
		case keep && dup:
			ok = false
			c.add(attrField(key), msgAttrDup)
		case v.Kind() != '"':
			ok = false
			if keep {
				c.add(attrField(key), "must be a string (got "+d.describe(v)+")")
				setAttr(m, key, "")
			}
		case keep:
			vb, err := d.unquote(v)
			if err != nil {
				return false, err
			}
			setAttr(m, key, string(vb))
		}
	}
	if _, err := dec.ReadToken(); err != nil { // '}'
		return false, err
	}
	if !ok || count > MaxAttributes {
		c.attributes(*m, count)
		return false, nil
	}
	return true, nil
}

// unmarshalV2 decodes NDJSON with json/v2's Unmarshal, one line at a time, then applies the
// same rules. The first problem of an event is its only one.
func unmarshalV2(body []byte, now time.Time) Batch {
	w := newWindow(now, DefaultRetention)
	b := Batch{Events: make([]Event, 0, bytes.Count(body, []byte{'\n'})+1)}
	var c collector
	ndjsonLines(body, func(line []byte, number int) {
		index := b.Total
		b.Total++
		b.Events = append(b.Events, Event{})
		e := &b.Events[len(b.Events)-1]
		c = collector{errs: c.errs[:0], index: index}
		if err := jsonv2.Unmarshal(line, e, unmarshalOptions); err != nil {
			c.add(pointerField(err), fmt.Sprintf("line %d: %v", number, err))
		} else {
			e.OccurredAt = e.OccurredAt.UTC()
			c.check(e, 0, 0, &w)
		}
		settle(&b, index, &c)
	})
	return b
}

// decodersV2 are the json/v2 decoders, by name.
var decodersV2 = []struct {
	name   string
	decode func(body []byte, now time.Time) Batch
}{
	{"jsontext", new(textDecoder).decode},
	{"unmarshal", unmarshalV2},
}

// The decoders take the same events from the benchmark's body.
func TestJSONv2DecodersAgree(t *testing.T) {
	body := realisticNDJSON(1000)
	want, err := DecodeBytes(body, "application/x-ndjson", Limits{}, now)
	if err != nil || len(want.Events) != 1000 {
		t.Fatalf("DecodeBytes: %d events, %v", len(want.Events), err)
	}
	for _, d := range decodersV2 {
		got := d.decode(body, now)
		if len(got.Errors) > 0 {
			t.Errorf("%s: %d events refused, the first: %v", d.name, len(got.Errors), got.Errors[0])
		}
		if got.Total != want.Total || !reflect.DeepEqual(got.Indexes, want.Indexes) {
			t.Errorf("%s: %d events at %d indexes, want %d", d.name, got.Total, len(got.Indexes), want.Total)
		}
		for i := range min(len(got.Events), len(want.Events)) {
			if !reflect.DeepEqual(got.Events[i], want.Events[i]) {
				t.Fatalf("%s: event %d\n got %+v\nwant %+v", d.name, i, got.Events[i], want.Events[i])
			}
		}
	}
}

// Every decoder refuses each bad event; the jsontext one lists problems in the fields DecodeBytes
// names (Unmarshal stops at the first). -v shows the messages.
func TestJSONv2DecodersRefuseTheSame(t *testing.T) {
	at := strconv.Quote(now.Add(-time.Minute).Format(time.RFC3339))
	event := func(fields string) string {
		return `{"event_id":"e","occurred_at":` + at + `,"moment":"zmot","channel":"web","touchpoint":"search"` + fields + `}`
	}
	bad := []string{
		event(`,"colour":"red"`),
		event(`,"csat":"5"`),
		event(`,"csat":9,"nps":-1,"ces":2.5`),
		event(`,"moment":"fmot"`),
		`{"event_id":"e","occurred_at":` + at + `,"Moment":"zmot","channel":"web","touchpoint":"search"}`,
		`{"event_id":null,"occurred_at":` + at + `,"moment":"zmot","channel":"web","touchpoint":"search"}`,
		`{"event_id":"e","occurred_at":"yesterday","moment":"smot","channel":"fax","touchpoint":""}`,
		event(`,"sentiment":2,"wait_ms":86400001`),
		event(`,"attributes":{"plan":1,"plan":"gold"}`),
		event(`,"attributes":"gold"`),
		event(`,"region":"` + strings.Repeat("x", 65) + `"`),
		`[1]`,
		event(`,"product":"\ud800"`),
		event(`,"region":"` + "\xff" + `"`),
		event(``) + ` {}`,
		`{"event_id":"e"`,
	}
	var body bytes.Buffer
	for _, line := range bad {
		body.WriteString(line + "\n")
	}
	body.WriteString(event("") + "\n") // one good event, last
	want, err := DecodeBytes(body.Bytes(), "application/x-ndjson", Limits{}, now)
	if err != nil || len(want.Events) != 1 || want.Rejected() != len(bad) {
		t.Fatalf("DecodeBytes: %d events, %d rejected, %v; want the last one taken and %d rejected", len(want.Events), want.Rejected(), err, len(bad))
	}
	fields := func(b Batch, index int) []string {
		var out []string
		for _, e := range b.Errors {
			if e.Index == index {
				out = append(out, e.Field)
			}
		}
		return out
	}
	for _, d := range decodersV2 {
		got := d.decode(body.Bytes(), now)
		if len(got.Events) != 1 || !reflect.DeepEqual(got.Indexes, []int{len(bad)}) {
			t.Errorf("%s: took the events at %v, want only the last, %d", d.name, got.Indexes, len(bad))
		}
		for i, line := range bad {
			g, w := fields(got, i), fields(want, i)
			switch {
			case len(g) == 0:
				t.Errorf("%s: %s: no problem reported", d.name, line)
			case d.name == "jsontext" && !reflect.DeepEqual(g, w):
				t.Errorf("%s: %s: problems in %q, want %q", d.name, line, g, w)
			}
			for _, e := range got.Errors {
				if e.Index == i {
					t.Logf("%s: %s: %s: %s", d.name, line, e.Field, e.Message)
				}
			}
		}
	}
}

func setAttr(m *map[string]string, k, v string) {
	if *m == nil {
		*m = make(map[string]string, 4)
	}
	(*m)[k] = v
}
