package event

// A JSON reader made for Event, in one pass over bytes already in memory.
//
// Why not encoding/json: its v1 decoder matches field names case-insensitively ("EVENT_ID"
// fills event_id), keeps the last of duplicate keys, replaces invalid UTF-8 and unpaired
// surrogates with U+FFFD without a word, ignores null for non-pointer fields and stops at the
// first type error, while the SPEC wants each of those rejected and every problem of an event
// listed. Finding them needed a second scan of every event next to encoding/json's own; this
// reader does both jobs in one pass, several times faster, and nothing is shared with the
// request body after it returns (every string is copied or interned). An event's text fields
// are copied into one string and its attributes into another (arena), not one per value.

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects (an event needs 2): deeper input is refused
// before it can cost stack.
const maxDepth = 64

// syntaxError is JSON that cannot be read: its position and what was wrong, in plain words.
type syntaxError struct {
	off int // byte offset in the body
	msg string
}

// textStatus says whether a decoded JSON string is valid Unicode text.
type textStatus uint8

const (
	textOK textStatus = iota
	textBadUTF8
	textSurrogate
)

func (s textStatus) msg() string {
	if s == textBadUTF8 {
		return msgUTF8
	}
	return msgSurrogate
}

type parser struct {
	data   []byte // the body, or in NDJSON the body up to the end of the current line
	pos    int
	ndjson bool
	a      *arena // kept from one event and one NDJSON line to the next
}

// arena is what the parser reuses across the events of a body, so that an event costs a few
// allocations rather than one per value: its text fields become one string when the event ends,
// its attributes one string and the map, and the optional numbers of 64 events share one slice.
type arena struct {
	scratch []byte     // decoded strings that had escapes
	text    []byte     // the bytes of the strings of the event being read
	dests   []textDest // where each of them goes
	pairs   []attrPair // the attributes being read, in text
	nums    []numbers  // room for the optional numbers of the next events
}

// textDest is a string field waiting for its value, text[from:to].
type textDest struct {
	s        *string
	from, to int
}

// attrPair is an attribute being read: its key and value in text.
type attrPair struct{ key, value [2]int }

// setText gives *s the value b once the event ends (fillText).
func (a *arena) setText(s *string, b []byte) {
	a.dests = append(a.dests, textDest{s, len(a.text), len(a.text) + len(b)})
	a.text = append(a.text, b...)
}

// fillText makes the values given to setText one string and gives each field its part.
func (a *arena) fillText() {
	if len(a.dests) > 0 {
		all := string(a.text)
		for _, d := range a.dests {
			*d.s = all[d.from:d.to]
		}
	}
	a.text, a.dests = a.text[:0], a.dests[:0]
}

// numbers returns room for an event's optional numbers. The slices they come from start at 4
// and double up to 64, so that a body of one event does not keep the room of 64 alive.
func (a *arena) numbers() *numbers {
	if len(a.nums) == cap(a.nums) {
		a.nums = make([]numbers, 0, min(64, max(4, 2*cap(a.nums))))
	}
	a.nums = a.nums[:len(a.nums)+1]
	return &a.nums[len(a.nums)-1]
}

// safe marks the bytes a string can hold as they are: not '"', '\\' or a control character.
var safe = func() (t [256]bool) {
	for i := 0x20; i < 256; i++ {
		t[i] = i != '"' && i != '\\'
	}
	return t
}()

func (p *parser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) eof() *syntaxError {
	if p.ndjson {
		return &syntaxError{len(p.data), "the line ends before the JSON value is complete (in NDJSON each event must be on a single line)"}
	}
	return &syntaxError{len(p.data), "the body ends before the JSON is complete (is it cut off?)"}
}

// found describes the byte at p.pos for a message.
func (p *parser) found() string {
	c := p.data[p.pos]
	if c == '\'' {
		return "a single quote"
	}
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("'%c'", c)
	}
	return fmt.Sprintf("byte 0x%02X", c)
}

// unexpected reports what was expected at p.pos, or the end of the input.
func (p *parser) unexpected(expected string) *syntaxError {
	if p.pos >= len(p.data) {
		return p.eof()
	}
	return &syntaxError{p.pos, "expected " + expected + ", found " + p.found()}
}

// str reads the string at p.pos (which is '"'). It returns its decoded bytes, a sub-slice of
// data or of p.a.scratch (valid until the next call), and whether they are valid Unicode text.
func (p *parser) str() ([]byte, textStatus, *syntaxError) {
	start := p.pos + 1
	i := start
	var or byte
	for i < len(p.data) && safe[p.data[i]] {
		or |= p.data[i]
		i++
	}
	if i >= len(p.data) {
		p.pos = i
		return nil, 0, p.eof()
	}
	if p.data[i] == '"' {
		p.pos = i + 1
		b := p.data[start:i]
		if or >= 0x80 && !utf8.Valid(b) {
			return b, textBadUTF8, nil
		}
		return b, textOK, nil
	}
	return p.strEscaped(start, i)
}

// strEscaped continues str at data[i], the first '\\' or control character.
func (p *parser) strEscaped(start, i int) ([]byte, textStatus, *syntaxError) {
	buf := append(p.a.scratch[:0], p.data[start:i]...)
	status := textOK
	for {
		if i >= len(p.data) {
			p.pos = i
			return nil, 0, p.eof()
		}
		c := p.data[i]
		switch {
		case c == '"':
			p.pos = i + 1
			p.a.scratch = buf
			if status == textOK && !utf8.Valid(buf) {
				status = textBadUTF8
			}
			return buf, status, nil
		case c < 0x20:
			p.pos = i
			return nil, 0, &syntaxError{i, fmt.Sprintf("a string contains the control character 0x%02X, which JSON requires to be escaped (e.g. \\n, \\t or \\u0001)", c)}
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		if i+1 >= len(p.data) {
			p.pos = i + 1
			return nil, 0, p.eof()
		}
		esc := p.data[i+1]
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4(i + 2)
			if !ok {
				return nil, 0, p.badUnicodeEscape(i)
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(-1), false
				if i+1 < len(p.data) && p.data[i] == '\\' && p.data[i+1] == 'u' {
					if r2, ok2 = p.hex4(i + 2); !ok2 {
						return nil, 0, p.badUnicodeEscape(i)
					}
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
					status = textSurrogate
				}
			}
			buf = utf8.AppendRune(buf, r)
			continue
		default:
			p.pos = i
			return nil, 0, &syntaxError{i, fmt.Sprintf(`a string contains the invalid escape \%s (valid are \" \\ \/ \b \f \n \r \t and \uXXXX)`, printable(esc))}
		}
		i += 2
	}
}

func printable(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(rune(c))
	}
	return fmt.Sprintf("<byte 0x%02X>", c)
}

func (p *parser) hex4(i int) (rune, bool) {
	if i+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (p *parser) badUnicodeEscape(i int) *syntaxError {
	// The escape starts at data[i]; a cut-off body is the likelier story when it ends here.
	for j := i + 2; j < i+6; j++ {
		if j >= len(p.data) {
			p.pos = j
			return p.eof()
		}
		c := p.data[j]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			break
		}
	}
	p.pos = i
	return &syntaxError{i, `a string contains an invalid \u escape (it needs 4 hexadecimal digits, as in \u00e9)`}
}

// number reads the number at p.pos (which is '-' or a digit) and returns its text.
func (p *parser) number() ([]byte, *syntaxError) {
	start, i := p.pos, p.pos
	d := p.data
	digits := func() int {
		n := 0
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
			n++
		}
		return n
	}
	bad := func(msg string) ([]byte, *syntaxError) {
		p.pos = i
		if i >= len(d) {
			return nil, p.eof()
		}
		return nil, &syntaxError{i, msg}
	}
	if d[i] == '-' {
		i++
		if i < len(d) && (d[i] == 'I' || d[i] == 'i') {
			return bad("expected a digit after '-', found 'I' (JSON has no NaN or Infinity; leave the field out instead)")
		}
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
		if i < len(d) && d[i] >= '0' && d[i] <= '9' {
			return bad("a number must not start with 0 (write 7, not 07)")
		}
	case digits() == 0:
		return bad("expected a digit in the number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			return bad("expected a digit after the decimal point")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			return bad("expected a digit in the exponent of the number")
		}
	}
	p.pos = i
	return d[start:i], nil
}

// literal reads true, false or null at p.pos.
func (p *parser) literal() ([]byte, *syntaxError) {
	var want string
	switch p.data[p.pos] {
	case 't':
		want = "true"
	case 'f':
		want = "false"
	default:
		want = "null"
	}
	end := p.pos + len(want)
	if end > len(p.data) {
		if bytes.HasPrefix([]byte(want), p.data[p.pos:]) {
			p.pos = len(p.data)
			return nil, p.eof()
		}
	} else if string(p.data[p.pos:end]) == want {
		b := p.data[p.pos:end]
		p.pos = end
		return b, nil
	}
	return nil, &syntaxError{p.pos, "expected a value, found " + p.found() + " (strings need double quotes; the only bare words are true, false and null)"}
}

// isNull reports whether the value at p.pos is null, and reads it if so.
func (p *parser) isNull() (bool, *syntaxError) {
	if p.data[p.pos] != 'n' {
		return false, nil
	}
	_, err := p.literal()
	return err == nil, err
}

// skip reads the value at p.pos (depth is the nesting of the value) and describes it for a
// message: "an object", "an array", a quoted string, a number or a literal.
func (p *parser) skip(depth int) (string, *syntaxError) {
	if p.pos >= len(p.data) {
		return "", p.eof()
	}
	switch c := p.data[p.pos]; {
	case c == '{' || c == '[':
		if depth > maxDepth {
			return "", &syntaxError{p.pos, fmt.Sprintf("the JSON is nested more than %d levels deep", maxDepth)}
		}
		if c == '{' {
			return "an object", p.skipObject(depth)
		}
		return "an array", p.skipArray(depth)
	case c == '"':
		b, _, err := p.str()
		if err != nil {
			return "", err
		}
		return quote(string(b)), nil
	case c == 't' || c == 'f' || c == 'n':
		b, err := p.literal()
		return string(b), err
	case c == '-' || c >= '0' && c <= '9':
		b, err := p.number()
		return shorten(string(b), 32), err
	}
	return "", p.badValue()
}

func (p *parser) badValue() *syntaxError {
	c := p.data[p.pos]
	switch {
	case c == 'N' || c == 'I':
		return &syntaxError{p.pos, "expected a value, found " + p.found() + " (JSON has no NaN or Infinity; leave the field out instead)"}
	case c == ']' || c == '}':
		return &syntaxError{p.pos, "expected a value, found " + p.found() + " (is there a trailing comma?)"}
	case c == '\'':
		return &syntaxError{p.pos, "expected a value, found a single quote (JSON strings need double quotes)"}
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return &syntaxError{p.pos, "expected a value, found " + p.found() + " (strings need double quotes; the only bare words are true, false and null)"}
	}
	return p.unexpected("a value")
}

// skipObject reads the object at p.pos.
func (p *parser) skipObject(depth int) *syntaxError {
	p.pos++
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		if err := p.key(); err != nil {
			return err
		}
		if _, _, err := p.str(); err != nil {
			return err
		}
		if err := p.colon(); err != nil {
			return err
		}
		if _, err := p.skip(depth + 1); err != nil {
			return err
		}
		end, err := p.next('}', "")
		if err != nil || end {
			return err
		}
	}
}

func (p *parser) skipArray(depth int) *syntaxError {
	p.pos++
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return nil
	}
	for {
		p.ws()
		if _, err := p.skip(depth + 1); err != nil {
			return err
		}
		end, err := p.next(']', "")
		if err != nil || end {
			return err
		}
	}
}

// key skips white space up to a field name.
func (p *parser) key() *syntaxError {
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == '"' {
		return nil
	}
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		return &syntaxError{p.pos, "expected a field name in double quotes, found '}' (is there a trailing comma?)"}
	}
	return p.unexpected("a field name in double quotes")
}

// colon reads the ':' after a field name and the white space around it.
func (p *parser) colon() *syntaxError {
	p.ws()
	if p.pos >= len(p.data) || p.data[p.pos] != ':' {
		return p.unexpected("':' after the field name")
	}
	p.pos++
	p.ws()
	if p.pos >= len(p.data) {
		return p.eof()
	}
	return nil
}

// next reads the ',' between the members of an object or array, or its closing byte; it
// reports whether that was the end. field names the member just read, for the message.
func (p *parser) next(closing byte, field string) (bool, *syntaxError) {
	p.ws()
	if p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ',':
			p.pos++
			return false, nil
		case closing:
			p.pos++
			return true, nil
		}
	}
	after := "after the value"
	if field != "" {
		after = "after the value of " + strconv.Quote(field)
	}
	return false, p.unexpected(fmt.Sprintf("',' or '%c' %s", closing, after))
}

// numbers holds the numeric fields of one event, so that their pointers point into one value
// (handed out by arena.numbers from a slice shared with the next events).
type numbers struct {
	sentiment float64
	wait      uint32
	handle    uint32
	csat      uint8
	nps       uint8
	ces       uint8
}

// event reads the object at p.pos into e, which must be zero, and checks it. The problems of
// the event go to c. A syntax error stops it; the caller decides whether that sinks the whole
// body (JSON) or only this line (NDJSON).
func (p *parser) event(e *Event, c *collector, w *window) *syntaxError {
	p.pos++ // '{'
	var seen, present, skip uint32
	var nums *numbers
	num := func() *numbers {
		if nums == nil {
			nums = p.a.numbers()
		}
		return nums
	}
	p.a.text, p.a.dests = p.a.text[:0], p.a.dests[:0] // what an event cut short left
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		c.check(e, 0, 0, w)
		return nil
	}
	for {
		if err := p.key(); err != nil {
			return err
		}
		kb, kst, err := p.str()
		if err != nil {
			return err
		}
		id := fieldID(kb)
		if err := p.colon(); err != nil { // kb stays valid: no string is read in between
			return err
		}
		switch {
		case id < 0:
			if c.full() {
				c.more++ // spare building a message nobody will see
			} else {
				c.add(unknownField(string(kb), kst))
			}
			if _, err := p.skip(2); err != nil {
				return err
			}
		case seen&(1<<id) != 0:
			c.addf(id, msgDuplicate)
			skip |= 1 << id
			if _, err := p.skip(2); err != nil {
				return err
			}
		default:
			seen |= 1 << id
			var ok, sent bool
			var err *syntaxError
			switch id {
			case fEventID, fTouchpoint, fCustomerID, fJourneyID, fRegion, fProduct, fSegment, fAgentTeam:
				var s *string
				switch id {
				case fEventID:
					s = &e.EventID
				case fTouchpoint:
					s = &e.Touchpoint
				case fCustomerID:
					s = &e.CustomerID
				case fJourneyID:
					s = &e.JourneyID
				case fRegion:
					s = &e.Region
				case fProduct:
					s = &e.Product
				case fSegment:
					s = &e.Segment
				default:
					s = &e.AgentTeam
				}
				ok, sent, err = p.text(id, s, nil, c)
			case fMoment:
				ok, sent, err = p.text(id, &e.Moment, Moments, c)
			case fChannel:
				ok, sent, err = p.text(id, &e.Channel, Channels, c)
			case fStage:
				ok, sent, err = p.text(id, &e.Stage, Stages, c)
			case fOutcome:
				ok, sent, err = p.text(id, &e.Outcome, Outcomes, c)
			case fOccurredAt:
				ok, sent, err = p.time(&e.OccurredAt, c)
			case fCSAT, fNPS, fCES, fWaitMS, fHandleMS:
				var v int64
				ok, sent, v, err = p.integer(id, c)
				if ok && sent {
					n := num()
					switch id {
					case fCSAT:
						n.csat, e.CSAT = uint8(v), &n.csat
					case fNPS:
						n.nps, e.NPS = uint8(v), &n.nps
					case fCES:
						n.ces, e.CES = uint8(v), &n.ces
					case fWaitMS:
						n.wait, e.WaitMS = uint32(v), &n.wait
					default:
						n.handle, e.HandleMS = uint32(v), &n.handle
					}
				}
			case fSentiment:
				var v float64
				ok, sent, v, err = p.float(c)
				if ok && sent {
					n := num()
					n.sentiment, e.Sentiment = v, &n.sentiment
				}
			case fAttributes:
				ok, sent, err = p.attributes(&e.Attributes, c)
			}
			if err != nil {
				return err
			}
			if !ok {
				skip |= 1 << id
			}
			if sent {
				present |= 1 << id
			}
		}
		field := ""
		if id >= 0 {
			field = fieldNames[id]
		}
		end, err := p.next('}', field)
		if err != nil {
			return err
		}
		if end {
			break
		}
	}
	p.a.fillText()
	c.check(e, present, skip, w)
	return nil
}

func unknownField(name string, st textStatus) (string, string) {
	if st != textOK {
		return shorten(string(bytes.ToValidUTF8([]byte(name), []byte("\uFFFD"))), 64), "is an unknown field, and field names must be valid Unicode text"
	}
	msg := "unknown field " + quote(name)
	if known := suggest(name); known != "" {
		if strings.EqualFold(name, known) {
			msg += fmt.Sprintf(" (field names are case-sensitive: did you mean %q?)", known)
		} else {
			msg += fmt.Sprintf(" (did you mean %q?)", known)
		}
	}
	return shorten(name, 64), msg
}

// synonyms are names other systems give to our fields.
var synonyms = map[string]string{
	"id": "event_id", "timestamp": "occurred_at", "time": "occurred_at", "ts": "occurred_at",
	"date": "occurred_at", "datetime": "occurred_at", "createdat": "occurred_at", "eventtime": "occurred_at",
	"score": "csat", "attrs": "attributes", "metadata": "attributes", "tags": "attributes",
}

// suggest returns the field a sender probably meant by an unknown name: the same name in
// another case or spelling (eventId, Event-ID), or a common synonym (timestamp).
func suggest(name string) string {
	if len(name) > 40 {
		return ""
	}
	norm := strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == ' ' || r == '.' {
			return -1
		}
		return unicode.ToLower(r)
	}, name)
	for _, known := range fieldNames {
		if norm == strings.ReplaceAll(known, "_", "") {
			return known
		}
	}
	return synonyms[norm]
}

// text reads a string field into *s, interned from list when the value is in it. ok is false
// when a problem was reported; sent is false for null (absent).
func (p *parser) text(f int, s *string, list []string, c *collector) (ok, sent bool, err *syntaxError) {
	required := f <= fTouchpoint // event_id, moment, channel, touchpoint
	if p.data[p.pos] != '"' {
		if null, err := p.isNull(); err != nil || null {
			if null && required {
				c.addf(f, msgRequiredNull)
				return false, false, nil
			}
			return true, false, err
		}
		got, err := p.skip(2)
		if err != nil {
			return false, false, err
		}
		want := "must be a string"
		if list != nil {
			want = enumMsg(f)
		}
		c.addf(f, want+" (got "+got+")")
		return false, true, nil
	}
	b, st, err := p.str()
	if err != nil {
		return false, false, err
	}
	if st != textOK {
		c.addf(f, st.msg())
		return false, true, nil
	}
	for _, v := range list {
		if string(b) == v {
			*s = v // the vocabulary's own string: no allocation
			return true, true, nil
		}
	}
	p.a.setText(s, b)
	return true, true, nil
}

func (p *parser) time(t *time.Time, c *collector) (ok, sent bool, err *syntaxError) {
	if p.data[p.pos] != '"' {
		if null, err := p.isNull(); err != nil || null {
			if null {
				c.addf(fOccurredAt, msgRequiredNull)
			}
			return false, false, err
		}
		got, err := p.skip(2)
		if err != nil {
			return false, false, err
		}
		c.addf(fOccurredAt, msgTimeExample+" (got "+got+")")
		return false, true, nil
	}
	b, st, err := p.str()
	if err != nil {
		return false, false, err
	}
	if st != textOK {
		c.addf(fOccurredAt, st.msg())
		return false, true, nil
	}
	if msg := parseTime(b, t); msg != "" {
		c.addf(fOccurredAt, msg)
		return false, true, nil
	}
	return true, true, nil
}

// parseTime reads an RFC 3339 time into *t as UTC, or says what is wrong.
func parseTime(b []byte, t *time.Time) string {
	// Time.UnmarshalText is the strict RFC 3339 parser (Go 1.20+), but it takes a ',' for the
	// decimal point, which RFC 3339 does not.
	if bytes.IndexByte(b, ',') < 0 && t.UnmarshalText(b) == nil {
		*t = t.UTC()
		return ""
	}
	*t = time.Time{}
	if _, err := time.Parse("2006-01-02T15:04:05.999999999", string(b)); err == nil {
		return "must be an RFC 3339 time with a time zone, such as 2026-11-22T09:30:00Z or 2026-11-22T10:30:00+01:00 (got " + quote(string(b)) + ")"
	}
	return msgTimeExample + " (got " + quote(string(b)) + ")"
}

// integer reads an integer field. A number with a fraction or exponent is taken when its value
// is a whole number (4.0, 4e0), as JSON does not tell integers from other numbers.
func (p *parser) integer(f int, c *collector) (ok, sent bool, v int64, err *syntaxError) {
	if ch := p.data[p.pos]; ch != '-' && (ch < '0' || ch > '9') {
		if null, err := p.isNull(); err != nil || null {
			return err == nil, false, 0, err
		}
		got, err := p.skip(2)
		if err != nil {
			return false, false, 0, err
		}
		c.addf(f, intMsg(f, got))
		return false, true, 0, nil
	}
	lit, err := p.number()
	if err != nil {
		return false, false, 0, err
	}
	v, whole := wholeNumber(lit)
	if b := intBounds[f]; !whole || v < b[0] || v > b[1] {
		c.addf(f, intMsg(f, shorten(string(lit), 32)))
		return false, true, 0, nil
	}
	return true, true, v, nil
}

// wholeNumber returns the value of a valid JSON number literal when it is a whole number of
// at most 15 digits, exactly (no float rounding: 4.0000000000000001 is not whole).
func wholeNumber(lit []byte) (int64, bool) {
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	// Split into digits (integer and fraction parts, without the point) and exponent.
	mant := lit
	exp := 0
	if i := bytes.IndexAny(lit, "eE"); i >= 0 {
		mant = lit[:i]
		e := lit[i+1:]
		eneg := false
		if e[0] == '+' || e[0] == '-' {
			eneg = e[0] == '-'
			e = e[1:]
		}
		for _, d := range e {
			if exp > 1000 { // saturate: 1e999999999 is out of range either way
				break
			}
			exp = exp*10 + int(d-'0')
		}
		if eneg {
			exp = -exp
		}
	}
	var digits []byte
	var buf [64]byte
	point := len(mant)
	if i := bytes.IndexByte(mant, '.'); i >= 0 {
		point = i
		digits = append(append(buf[:0], mant[:i]...), mant[i+1:]...)
	} else {
		digits = mant
	}
	point += exp // digits[:point] is the integer part
	// Leading zeros do not count toward the size.
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
		point--
	}
	if len(digits) == 0 {
		return 0, true // zero, whatever the exponent
	}
	var v int64
	for i, d := range digits {
		if i >= point {
			if d != '0' {
				return 0, false
			}
			continue
		}
		if i >= 15 {
			return 0, false
		}
		v = v*10 + int64(d-'0')
	}
	for i := len(digits); i < point; i++ {
		if i >= 15 {
			return 0, false
		}
		v *= 10
	}
	if neg {
		v = -v
	}
	return v, true
}

func (p *parser) float(c *collector) (ok, sent bool, v float64, err *syntaxError) {
	if ch := p.data[p.pos]; ch != '-' && (ch < '0' || ch > '9') {
		if null, err := p.isNull(); err != nil || null {
			return err == nil, false, 0, err
		}
		got, err := p.skip(2)
		if err != nil {
			return false, false, 0, err
		}
		c.addf(fSentiment, msgSentiment+" (got "+got+")")
		return false, true, 0, nil
	}
	lit, err := p.number()
	if err != nil {
		return false, false, 0, err
	}
	v, perr := strconv.ParseFloat(string(lit), 64)
	if perr != nil || v < -1 || v > 1 {
		c.addf(fSentiment, msgSentiment+" (got "+shorten(string(lit), 32)+")")
		return false, true, 0, nil
	}
	return true, true, v, nil
}

// attributes reads the attributes object. Keys and values go to the map as they are; the
// value rules (count, lengths) are the collector's. Here: types, Unicode, duplicate keys.
func (p *parser) attributes(m *map[string]string, c *collector) (ok, sent bool, err *syntaxError) {
	if p.data[p.pos] != '{' {
		if null, err := p.isNull(); err != nil || null {
			return err == nil, false, err
		}
		got, err := p.skip(2)
		if err != nil {
			return false, false, err
		}
		c.addf(fAttributes, msgAttributes+" (got "+got+")")
		return false, true, nil
	}
	p.pos++
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return true, true, nil
	}
	// The kept keys and values go to p.a.text from base on, and become one string at the end.
	a := p.a
	base := len(a.text)
	a.pairs = a.pairs[:0]
	ok = true
	count := 0
	for {
		if err := p.key(); err != nil {
			return false, false, err
		}
		kb, kst, err := p.str()
		if err != nil {
			return false, false, err
		}
		count++
		// Past MaxAttributes the event is refused anyway: keys are counted, not kept, so a
		// body of a million keys cannot cost a million map entries.
		kept := count <= MaxAttributes+1
		// kb may be the parser's scratch, which the value's string overwrites: the key is
		// copied to the end of p.a.text first, and dropped from it again unless kept.
		kFrom := len(a.text)
		var key []byte
		if kept || kst != textOK {
			a.text = append(a.text, kb...)
			key = a.text[kFrom:]
		}
		keep := func(v []byte) {
			a.text = append(a.text, v...)
			a.pairs = append(a.pairs, attrPair{[2]int{kFrom, kFrom + len(key)}, [2]int{kFrom + len(key), len(a.text)}})
		}
		drop := func() { a.text = a.text[:kFrom] }
		if err := p.colon(); err != nil {
			return false, false, err
		}
		dup := false
		for _, q := range a.pairs {
			if kept && string(a.text[q.key[0]:q.key[1]]) == string(key) {
				dup = true
				break
			}
		}
		switch {
		case kst != textOK:
			ok = false
			c.addf(fAttributes, "keys must be valid Unicode text (got "+quote(string(key))+")")
			drop()
			if _, err := p.skip(3); err != nil {
				return false, false, err
			}
		case kept && dup:
			ok = false
			c.add(attrField(string(key)), msgAttrDup)
			drop()
			if _, err := p.skip(3); err != nil {
				return false, false, err
			}
		case p.data[p.pos] != '"':
			ok = false
			got, err := p.skip(3)
			if err != nil {
				return false, false, err
			}
			if kept {
				c.add(attrField(string(key)), "must be a string (got "+got+")")
				keep(nil)
			}
		default:
			vb, vst, err := p.str()
			if err != nil {
				return false, false, err
			}
			if !kept {
				drop()
				break
			}
			if vst != textOK {
				ok = false
				c.add(attrField(string(key)), vst.msg())
				vb = nil
			}
			keep(vb)
		}
		end, err := p.next('}', "")
		if err != nil {
			return false, false, err
		}
		if end {
			break
		}
	}
	// Keys and values within their limits in bytes are within them in characters too: then
	// the collector's rules have nothing to find, and it is told so.
	fit := ok && count <= MaxAttributes
	if len(a.pairs) > 0 {
		all := string(a.text[base:])
		*m = make(map[string]string, len(a.pairs))
		for _, q := range a.pairs {
			k, v := all[q.key[0]-base:q.key[1]-base], all[q.value[0]-base:q.value[1]-base]
			(*m)[k] = v
			fit = fit && k != "" && len(k) <= MaxAttrKeyLen && len(v) <= MaxAttrValueLen
		}
		a.text = a.text[:base]
	}
	c.attrsFit = fit
	if !ok || count > MaxAttributes {
		// Still check what could be read (count, lengths), so every problem is listed.
		c.attributes(*m, count)
		return false, true, nil
	}
	return true, true, nil
}

func attrField(key string) string { return "attributes." + shorten(key, 64) }
