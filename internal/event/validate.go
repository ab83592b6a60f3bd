package event

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldError is one problem with one event of a request, as reported to its sender.
type FieldError struct {
	// Index is the position of the event in the request, from 0: the element index in a JSON
	// array, the number of non-blank lines before it in NDJSON, 0 for a single object.
	Index int `json:"index"`
	// Field is the JSON name of the field at fault ("csat", or "attributes.color" for one
	// attribute), or "" when the problem concerns the event as a whole (not a JSON object,
	// invalid JSON on an NDJSON line).
	Field string `json:"field"`
	// Message says what is wrong in plain words, e.g. "must be an integer from 1 to 5 (got 7)".
	Message string `json:"message"`
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("event %d: %s", e.Index, e.Message)
	}
	return fmt.Sprintf("event %d: %s: %s", e.Index, e.Field, e.Message)
}

// MaxErrorsPerEvent bounds the problems listed for one event, so that a pathological event
// (thousands of unknown fields) cannot blow up the response. Past it, one more FieldError with
// field "" says how many were left out.
const MaxErrorsPerEvent = 25

// Field identifiers, in the order of the Event struct. Errors of one event are listed in this
// order, which is also the order of the SPEC table, so a sender reads them top to bottom.
const (
	fEventID = iota
	fOccurredAt
	fMoment
	fChannel
	fTouchpoint
	fStage
	fOutcome
	fCustomerID
	fJourneyID
	fCSAT
	fNPS
	fCES
	fSentiment
	fWaitMS
	fHandleMS
	fRegion
	fProduct
	fSegment
	fAgentTeam
	fAttributes
	numFields
)

var fieldNames = [numFields]string{
	"event_id", "occurred_at", "moment", "channel", "touchpoint", "stage", "outcome",
	"customer_id", "journey_id", "csat", "nps", "ces", "sentiment", "wait_ms", "handle_ms",
	"region", "product", "segment", "agent_team", "attributes",
}

// fieldID returns the identifier of the JSON field name, or -1. Names are case-sensitive.
func fieldID(name []byte) int {
	switch string(name) { // no allocation: the compiler compares the bytes in place
	case "event_id":
		return fEventID
	case "occurred_at":
		return fOccurredAt
	case "moment":
		return fMoment
	case "channel":
		return fChannel
	case "touchpoint":
		return fTouchpoint
	case "stage":
		return fStage
	case "outcome":
		return fOutcome
	case "customer_id":
		return fCustomerID
	case "journey_id":
		return fJourneyID
	case "csat":
		return fCSAT
	case "nps":
		return fNPS
	case "ces":
		return fCES
	case "sentiment":
		return fSentiment
	case "wait_ms":
		return fWaitMS
	case "handle_ms":
		return fHandleMS
	case "region":
		return fRegion
	case "product":
		return fProduct
	case "segment":
		return fSegment
	case "agent_team":
		return fAgentTeam
	case "attributes":
		return fAttributes
	}
	return -1
}

// Integer bounds of the integer fields, indexed by field identifier.
var intBounds = [numFields][2]int64{
	fCSAT:     {1, 5},
	fNPS:      {0, 10},
	fCES:      {1, 7},
	fWaitMS:   {0, MaxDurationMS},
	fHandleMS: {0, MaxDurationMS},
}

// Messages shared by Validate and the decoder, so that a sender gets the same words whichever
// finds the problem.
var (
	momentMsg  = "must be one of " + strings.Join(Moments, ", ")
	channelMsg = "must be one of " + strings.Join(Channels, ", ")
	stageMsg   = "must be one of " + strings.Join(Stages, ", ")
	outcomeMsg = "must be one of " + strings.Join(Outcomes, ", ")
)

const (
	msgRequired     = "is required"
	msgRequiredNull = "is required (got null)"
	msgEmpty        = "must not be empty"
	msgUTF8         = "must be valid UTF-8 text"
	msgSurrogate    = `must be valid Unicode text (it contains a \u escape of an unpaired UTF-16 surrogate)`
	msgTimeExample  = "must be an RFC 3339 time such as 2026-11-22T09:30:00Z"
	msgSentiment    = "must be a number from -1 to 1"
	msgAttributes   = `must be an object of string values such as {"plan": "gold"}`
	msgDuplicate    = "appears more than once (each field may appear only once)"
	msgAttrDup      = "appears more than once in attributes"
)

func enumMsg(f int) string {
	switch f {
	case fMoment:
		return momentMsg
	case fChannel:
		return channelMsg
	case fStage:
		return stageMsg
	default:
		return outcomeMsg
	}
}

func intMsg(f int, got string) string {
	b := intBounds[f]
	return fmt.Sprintf("must be an integer from %d to %d (got %s)", b[0], b[1], got)
}

func lengthMsg(max, got int) string {
	return fmt.Sprintf("must be at most %d characters (got %d)", max, got)
}

// textMsg checks that s is valid UTF-8 of at most max characters (runes), and returns what is
// wrong or "".
func textMsg(s string, max int) string {
	if !utf8.ValidString(s) {
		return msgUTF8
	}
	return lengthCheck(s, max)
}

// lengthCheck is textMsg's length rule for valid UTF-8.
func lengthCheck(s string, max int) string {
	if len(s) > max { // a rune takes at least one byte: shorter strings need no count
		if n := utf8.RuneCountInString(s); n > max {
			return lengthMsg(max, n)
		}
	}
	return ""
}

// quote returns s in double quotes for a message, shortened to 40 characters, with invalid
// UTF-8 and control characters escaped.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		n := 0
		for i := range s {
			if n == max {
				return strconv.Quote(s[:i]) + "…"
			}
			n++
		}
	}
	return strconv.Quote(s)
}

// shorten cuts a number literal or field name for a message.
func shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// window is the time range an event's occurred_at must fall in, computed once per request.
type window struct {
	now       time.Time // server time, for messages
	oldest    time.Time // now - retention
	latest    time.Time // now + MaxFutureSkew
	retention time.Duration
}

var unixEpoch = time.Unix(0, 0).UTC()

func newWindow(now time.Time, retention time.Duration) window {
	if retention <= 0 {
		retention = DefaultRetention
	}
	now = now.UTC()
	return window{now: now, oldest: now.Add(-retention), latest: now.Add(MaxFutureSkew), retention: retention}
}

func (w *window) msg(t time.Time) string {
	if !t.After(w.latest) && !t.Before(w.oldest) && !t.Before(unixEpoch) {
		return "" // the common case, without formatting anything
	}
	got := t.UTC().Format(time.RFC3339Nano)
	server := w.now.Truncate(time.Second).Format(time.RFC3339)
	switch {
	case t.After(w.latest):
		return fmt.Sprintf("must be at most %s in the future (got %s, server time %s)", humanDuration(MaxFutureSkew), got, server)
	case t.Before(w.oldest):
		return fmt.Sprintf("must be at most %s in the past (got %s, server time %s)", humanDuration(w.retention), got, server)
	default:
		// Only reachable with a retention of more than 56 years; ClickHouse DateTime starts here.
		return fmt.Sprintf("must be after 1970-01-01T00:00:00Z (got %s)", got)
	}
}

// humanDuration writes whole days, hours or minutes in words ("30 days", "5 minutes").
func humanDuration(d time.Duration) string {
	unit := func(n int64, name string) string {
		if n == 1 {
			return "1 " + name
		}
		return fmt.Sprintf("%d %ss", n, name)
	}
	switch {
	case d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	}
	return d.String()
}

// Validate checks e against every rule of the product specification and returns its problems,
// or nil. The FieldErrors have Index 0: a caller validating a batch sets it. now is the server
// time (events more than MaxFutureSkew ahead of it are refused); retention is how far back an
// event may be, DefaultRetention when <= 0.
//
// Events returned by Decode have passed it already; call it for events built in Go.
func Validate(e *Event, now time.Time, retention time.Duration) []FieldError {
	w := newWindow(now, retention)
	c := collector{}
	c.check(e, 0, 0, &w)
	if len(c.errs) == 0 {
		return nil
	}
	sortErrors(c.errs)
	return c.errs
}

// collector gathers the problems of one event.
type collector struct {
	errs  []FieldError
	index int
	more  int // problems past MaxErrorsPerEvent, not listed
	// parsed says the event's strings come from the parser, which keeps only valid UTF-8:
	// the text rules then skip that check. attrsFit says the parser found the attributes within
	// every limit in bytes: their rules are then skipped.
	parsed, attrsFit bool
}

// textMsg is textMsg, without the UTF-8 check for a parsed event.
func (c *collector) textMsg(s string, max int) string {
	if c.parsed {
		return lengthCheck(s, max)
	}
	return textMsg(s, max)
}

func (c *collector) add(field, msg string) {
	if len(c.errs) >= MaxErrorsPerEvent {
		c.more++
		return
	}
	c.errs = append(c.errs, FieldError{Index: c.index, Field: field, Message: msg})
}

func (c *collector) addf(f int, msg string) { c.add(fieldNames[f], msg) }

// full reports whether the next problem would not be listed.
func (c *collector) full() bool { return len(c.errs) >= MaxErrorsPerEvent }

// finish sorts the problems by field and notes the ones left out.
func (c *collector) finish() []FieldError {
	sortErrors(c.errs)
	if c.more > 0 {
		c.errs = append(c.errs, FieldError{Index: c.index, Field: "", Message: fmt.Sprintf(
			"has %d more problems not listed (at most %d are listed per event)", c.more, MaxErrorsPerEvent)})
	}
	return c.errs
}

// check applies the value rules to e. present has a bit per field the JSON had with a non-null
// value (0 when e was built in Go): it turns "is required" into "must not be empty" for an
// empty string that was sent. skip has a bit per field the decoder already reported.
func (c *collector) check(e *Event, present, skip uint32, w *window) {
	has := func(f int) bool { return present&(1<<f) != 0 }
	ok := func(f int) bool { return skip&(1<<f) == 0 }

	if ok(fEventID) {
		c.requiredText(fEventID, e.EventID, has(fEventID), MaxIDLen)
	}
	if ok(fOccurredAt) {
		if e.OccurredAt.IsZero() && !has(fOccurredAt) {
			c.addf(fOccurredAt, msgRequired)
		} else if msg := w.msg(e.OccurredAt); msg != "" {
			c.addf(fOccurredAt, msg)
		}
	}
	if ok(fMoment) {
		c.enum(fMoment, e.Moment, Moments, true, has(fMoment))
	}
	if ok(fChannel) {
		c.enum(fChannel, e.Channel, Channels, true, has(fChannel))
	}
	if ok(fTouchpoint) {
		c.requiredText(fTouchpoint, e.Touchpoint, has(fTouchpoint), MaxIDLen)
	}
	if ok(fStage) {
		c.enum(fStage, e.Stage, Stages, false, false)
	}
	if ok(fOutcome) {
		c.enum(fOutcome, e.Outcome, Outcomes, false, false)
	}
	c.optionalText(fCustomerID, e.CustomerID, MaxRefLen, ok(fCustomerID))
	c.optionalText(fJourneyID, e.JourneyID, MaxRefLen, ok(fJourneyID))
	c.uint8Range(fCSAT, e.CSAT, ok(fCSAT))
	c.uint8Range(fNPS, e.NPS, ok(fNPS))
	c.uint8Range(fCES, e.CES, ok(fCES))
	if s := e.Sentiment; s != nil && ok(fSentiment) && !(*s >= -1 && *s <= 1) { // NaN fails both
		c.addf(fSentiment, fmt.Sprintf("%s (got %s)", msgSentiment, strconv.FormatFloat(*s, 'g', -1, 64)))
	}
	c.uint32Range(fWaitMS, e.WaitMS, ok(fWaitMS))
	c.uint32Range(fHandleMS, e.HandleMS, ok(fHandleMS))
	c.optionalText(fRegion, e.Region, MaxDimensionLen, ok(fRegion))
	c.optionalText(fProduct, e.Product, MaxDimensionLen, ok(fProduct))
	c.optionalText(fSegment, e.Segment, MaxDimensionLen, ok(fSegment))
	c.optionalText(fAgentTeam, e.AgentTeam, MaxDimensionLen, ok(fAgentTeam))
	if ok(fAttributes) && !c.attrsFit {
		c.attributes(e.Attributes, len(e.Attributes))
	}
}

func (c *collector) requiredText(f int, s string, present bool, max int) {
	switch {
	case s == "" && present:
		c.addf(f, msgEmpty)
	case s == "":
		c.addf(f, msgRequired)
	default:
		if msg := c.textMsg(s, max); msg != "" {
			c.addf(f, msg)
		}
	}
}

func (c *collector) optionalText(f int, s string, max int, ok bool) {
	if s == "" || !ok {
		return
	}
	if msg := c.textMsg(s, max); msg != "" {
		c.addf(f, msg)
	}
}

func (c *collector) enum(f int, s string, list []string, required, present bool) {
	switch {
	case s == "" && !required:
		// absent
	case s == "" && !present:
		c.addf(f, msgRequired)
	case !slices.Contains(list, s):
		c.addf(f, fmt.Sprintf("%s (got %s)", enumMsg(f), quote(s)))
	}
}

func (c *collector) uint8Range(f int, p *uint8, ok bool) {
	if p == nil || !ok {
		return
	}
	if b := intBounds[f]; int64(*p) < b[0] || int64(*p) > b[1] {
		c.addf(f, intMsg(f, strconv.Itoa(int(*p))))
	}
}

func (c *collector) uint32Range(f int, p *uint32, ok bool) {
	if p == nil || !ok {
		return
	}
	if b := intBounds[f]; int64(*p) < b[0] || int64(*p) > b[1] {
		c.addf(f, intMsg(f, strconv.FormatUint(uint64(*p), 10)))
	}
}

// attributes checks the attributes; count is the number of keys sent, which the map may not
// all hold.
func (c *collector) attributes(m map[string]string, count int) {
	if count > MaxAttributes {
		c.addf(fAttributes, fmt.Sprintf("must have at most %d keys (got %d)", MaxAttributes, count))
	}
	var bad []FieldError // map order is random: sort before listing
	for k, v := range m {
		keyMsg := ""
		switch {
		case k == "":
			keyMsg = "must not have an empty key"
		case !c.parsed && !utf8.ValidString(k):
			keyMsg = "keys must be valid UTF-8 text (got " + quote(k) + ")"
		case len(k) > MaxAttrKeyLen:
			if n := utf8.RuneCountInString(k); n > MaxAttrKeyLen {
				keyMsg = fmt.Sprintf("key %s must be at most %d characters (got %d)", quote(k), MaxAttrKeyLen, n)
			}
		}
		valueMsg := c.textMsg(v, MaxAttrValueLen)
		if keyMsg == "" && valueMsg == "" {
			continue
		}
		field := "attributes"
		if keyMsg != "" {
			bad = append(bad, FieldError{Field: field, Message: keyMsg})
		} else {
			field = attrField(k)
		}
		if valueMsg != "" {
			bad = append(bad, FieldError{Field: field, Message: valueMsg})
		}
	}
	slices.SortFunc(bad, func(a, b FieldError) int {
		if n := strings.Compare(a.Field, b.Field); n != 0 {
			return n
		}
		return strings.Compare(a.Message, b.Message)
	})
	for _, b := range bad {
		c.add(b.Field, b.Message)
	}
}

// fieldRank orders the errors of one event: whole-event problems first, then the fields in
// struct order, then unknown fields.
func fieldRank(field string) int {
	if field == "" {
		return -1
	}
	if id := fieldID([]byte(field)); id >= 0 {
		return id
	}
	if strings.HasPrefix(field, "attributes.") {
		return fAttributes
	}
	return numFields
}

// sortErrors sorts the errors of one event by field rank, keeping the order of equal ranks
// (document order for the decoder's findings).
func sortErrors(errs []FieldError) {
	if len(errs) < 2 {
		return
	}
	slices.SortStableFunc(errs, func(a, b FieldError) int { return fieldRank(a.Field) - fieldRank(b.Field) })
}
