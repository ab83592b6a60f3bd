// Package annotation is what Truthboard knows of annotations: marks (a point in time) and
// regions (a start and an end) that explain the figures around them — an outage, a campaign,
// a release. Their fields are those of Grafana's annotations (time and timeEnd in epoch
// milliseconds, tags, text), with an optional moment and channel scope. The package holds
// their validation, the comparison of the figures before and after one (Impact), and a cache
// of the recent ones that every live feed reads at each tick. It does no I/O of its own: the
// cache is filled by a load function it is given (the store's).
package annotation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/truthboard/truthboard/internal/event"
)

// Limits of one annotation and of the answers that list them.
const (
	// MaxText is the longest text, in characters.
	MaxText = 1000
	// MaxTags is the most tags of one annotation; MaxTagLen the longest tag, in characters.
	MaxTags   = 10
	MaxTagLen = 50
	// MaxRegion is the longest region, from time to timeEnd.
	MaxRegion = 366 * 24 * time.Hour
	// MaxFuture is how far ahead of now an annotation may start (a planned campaign).
	MaxFuture = 366 * 24 * time.Hour
	// MaxList is the most annotations of one GET /v1/annotations answer; DefaultList when the
	// request gives no limit (Grafana's default is 100 too).
	MaxList     = 1000
	DefaultList = 100
)

// earliest is the earliest time an annotation may have: a time before it is most likely
// seconds sent for milliseconds.
var earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Annotation is one mark or region. Times are epoch milliseconds, as Grafana writes them.
type Annotation struct {
	ID string `json:"id"`
	// Time is when it happened, or when the region starts.
	Time int64 `json:"time"`
	// TimeEnd is when the region ends; equal to Time for a mark.
	TimeEnd int64    `json:"timeEnd"`
	Tags    []string `json:"tags"`
	Text    string   `json:"text"`
	// Moment and Channel, when set, scope the annotation: it shows on the charts whose
	// filters include them (every chart without such a filter), and its impact is measured
	// on their events.
	Moment  string `json:"moment,omitempty"`
	Channel string `json:"channel,omitempty"`
	// Created and Updated are the times of its first and latest write.
	Created int64 `json:"created"`
	Updated int64 `json:"updated"`
}

// Region reports whether a is a region rather than a mark.
func (a *Annotation) Region() bool { return a.TimeEnd > a.Time }

// Start and End are Time and TimeEnd as times.
func (a *Annotation) Start() time.Time { return time.UnixMilli(a.Time).UTC() }
func (a *Annotation) End() time.Time   { return time.UnixMilli(a.TimeEnd).UTC() }

// Overlaps reports whether a lies, at least in part, within from..to.
func (a *Annotation) Overlaps(from, to time.Time) bool {
	return a.TimeEnd >= from.UnixMilli() && a.Time <= to.UnixMilli()
}

// InScope reports whether a concerns a view filtered to moments and channels (empty: all).
func (a *Annotation) InScope(moments, channels []string) bool {
	return (a.Moment == "" || len(moments) == 0 || slices.Contains(moments, a.Moment)) &&
		(a.Channel == "" || len(channels) == 0 || slices.Contains(channels, a.Channel))
}

// FieldError is bad input: the field to fix, as the request names it, and why.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func bad(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Fields are the fields a request body may have.
var Fields = []string{"time", "timeEnd", "tags", "text", "moment", "channel"}

// Decode reads a request body into a: every field of a create (base nil, then time and text
// are required) or the fields to change of an existing annotation (base, for PATCH). now
// bounds how far ahead an annotation may be. The id and the times of writes are the caller's.
func Decode(body []byte, base *Annotation, now time.Time) (Annotation, error) {
	var a Annotation
	if base != nil {
		a = *base
		a.Tags = slices.Clone(base.Tags)
	}
	if !utf8.Valid(body) {
		return a, bad("body", "not valid UTF-8 text; send the JSON as UTF-8")
	}
	fields, err := object(body)
	if err != nil {
		return a, err
	}
	if base == nil {
		for _, f := range []string{"time", "text"} {
			if _, ok := fields[f]; !ok {
				return a, bad(f, "required: %s", map[string]string{
					"time": "when it happened, in epoch milliseconds or RFC 3339",
					"text": "say what happened, in up to " + strconv.Itoa(MaxText) + " characters"}[f])
			}
		}
	}
	endGiven := false
	for _, name := range Fields {
		raw, ok := fields[name]
		if !ok {
			continue
		}
		switch name {
		case "time":
			a.Time, err = millis(name, raw, false)
		case "timeEnd":
			a.TimeEnd, err = millis(name, raw, true)
			endGiven = true
		case "tags":
			a.Tags, err = tags(raw)
		case "text":
			a.Text, err = text(raw)
		case "moment":
			a.Moment, err = enum(name, raw, event.Moments)
		case "channel":
			a.Channel, err = enum(name, raw, event.Channels)
		}
		if err != nil {
			return a, err
		}
	}
	if _, ok := fields["time"]; ok && !endGiven && (base == nil || !base.Region()) {
		a.TimeEnd = 0 // a mark moved stays a mark
	}
	if a.TimeEnd == 0 {
		a.TimeEnd = a.Time
	}
	if a.Tags == nil {
		a.Tags = []string{}
	}
	return a, a.check(now)
}

// check validates the fields that depend on each other and on now.
func (a *Annotation) check(now time.Time) error {
	if t := a.Start(); t.Before(earliest) {
		return bad("time", "%s is before the year 2000: send epoch milliseconds (seconds × 1000), or an RFC 3339 time", t.Format(time.RFC3339))
	}
	if t := a.Start(); t.After(now.Add(MaxFuture)) {
		return bad("time", "%s is more than a year ahead", t.Format(time.RFC3339))
	}
	if a.TimeEnd < a.Time {
		return bad("timeEnd", "ends (%s) before time (%s): a region's end comes after its start", a.End().Format(time.RFC3339Nano), a.Start().Format(time.RFC3339Nano))
	}
	if a.End().Sub(a.Start()) > MaxRegion {
		return bad("timeEnd", "the region lasts %s, longer than the %d days allowed", a.End().Sub(a.Start()), int(MaxRegion.Hours()/24))
	}
	return nil
}

// object reads a JSON object's fields, refusing unknown ones and fields given twice.
func object(body []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, bad("body", `must be one JSON object such as {"time": 1767225600000, "text": "release 4.2", "tags": ["release"]}`)
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad("body", "is not valid JSON: %v", err)
		}
		name := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, bad("body", "is not valid JSON: %v", err)
		}
		if !slices.Contains(Fields, name) {
			msg := "unknown field; an annotation has the fields " + strings.Join(Fields, ", ")
			if k := slices.IndexFunc(Fields, func(f string) bool { return strings.EqualFold(f, name) }); k >= 0 {
				msg += fmt.Sprintf(" (names are case-sensitive: did you mean %q?)", Fields[k])
			}
			return nil, bad(shorten(name), "%s", msg)
		}
		if _, dup := out[name]; dup {
			return nil, bad(name, "appears more than once")
		}
		out[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("body", "is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, bad("body", "has data after its JSON object")
	}
	return out, nil
}

// millis reads a time: epoch milliseconds (a number or a string of digits, as Grafana sends
// them) or an RFC 3339 string. null (when nullable) or 0 is no time.
func millis(field string, raw json.RawMessage, nullable bool) (int64, error) {
	const want = "want epoch milliseconds such as 1767225600000 or an RFC 3339 time such as 2026-01-01T00:00:00Z"
	s := string(raw)
	if s == "null" {
		if nullable {
			return 0, nil
		}
		return 0, bad(field, "is null; %s", want)
	}
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, bad(field, "%s, got %s", want, shorten(string(raw)))
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, bad(field, "%s, got %s", want, shorten(string(raw)))
	}
	return ms, nil
}

func tags(raw json.RawMessage) ([]string, error) {
	if string(raw) == "null" {
		return []string{}, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, bad("tags", `must be a list of strings such as ["release", "web"], got %s`, shorten(string(raw)))
	}
	if len(list) > MaxTags {
		return nil, bad("tags", "has %d tags, more than the %d allowed", len(list), MaxTags)
	}
	out := make([]string, 0, len(list))
	for i, v := range list {
		field := "tags[" + strconv.Itoa(i) + "]"
		var t string
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, bad(field, "must be a string, got %s", shorten(string(v)))
		}
		t = strings.TrimSpace(t)
		switch n := utf8.RuneCountInString(t); {
		case n == 0:
			return nil, bad(field, "is empty")
		case n > MaxTagLen:
			return nil, bad(field, "has %d characters, more than the %d allowed", n, MaxTagLen)
		case strings.ContainsFunc(t, unicode.IsControl):
			return nil, bad(field, "contains a control character")
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func text(raw json.RawMessage) (string, error) {
	var t string
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", bad("text", "must be a string, got %s", shorten(string(raw)))
	}
	t = strings.TrimSpace(t)
	switch n := utf8.RuneCountInString(t); {
	case n == 0:
		return "", bad("text", "is empty: say what happened")
	case n > MaxText:
		return "", bad("text", "has %d characters, more than the %d allowed", n, MaxText)
	}
	return t, nil
}

func enum(field string, raw json.RawMessage, values []string) (string, error) {
	var v string
	if string(raw) == "null" {
		return "", nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", bad(field, "must be a string, got %s", shorten(string(raw)))
	}
	if v != "" && !slices.Contains(values, v) {
		return "", bad(field, "unknown %s %q: use one of %s", field, shorten(v), strings.Join(values, ", "))
	}
	return v, nil
}

// shorten cuts s to about 40 bytes, never inside a character.
func shorten(s string) string {
	if len(s) <= 40 {
		return s
	}
	return strings.ToValidUTF8(s[:40], "") + "…"
}

// ParseTime reads a query parameter's time: epoch milliseconds or RFC 3339.
func ParseTime(param, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, bad(param, "want epoch milliseconds such as 1767225600000 or an RFC 3339 time such as 2026-01-01T00:00:00Z, got %q", shorten(v))
	}
	return time.UnixMilli(ms).UTC(), nil
}

// Filter selects annotations, as GET /v1/annotations asks.
type Filter struct {
	// From and To: the annotations that lie at least in part between them.
	From, To time.Time
	// Tags: the annotations that have every one of them (Grafana's default, matchAny=false).
	Tags []string
	// Moment and Channel: the annotations that concern them (scoped to them or unscoped).
	Moment, Channel string
	// Limit: at most this many, the newest first.
	Limit int
}

// Match reports whether a passes f's conditions (all but Limit).
func (f *Filter) Match(a *Annotation) bool {
	if !a.Overlaps(f.From, f.To) {
		return false
	}
	for _, t := range f.Tags {
		if !slices.Contains(a.Tags, t) {
			return false
		}
	}
	var ms, cs []string
	if f.Moment != "" {
		ms = []string{f.Moment}
	}
	if f.Channel != "" {
		cs = []string{f.Channel}
	}
	return a.InScope(ms, cs)
}
