package event

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// baseFields is a valid event as JSON fields, in order.
var baseFields = [][2]string{
	{"event_id", `"evt-1"`},
	{"occurred_at", `"2026-11-22T08:59:00Z"`},
	{"moment", `"fmot"`},
	{"channel", `"web"`},
	{"touchpoint", `"checkout"`},
}

// obj returns the base event as a JSON object, changed by name/value pairs: the raw JSON value
// replaces the field's, or adds it at the end; "-" removes it.
func obj(changes ...string) string {
	fields := append([][2]string(nil), baseFields...)
	for i := 0; i < len(changes); i += 2 {
		name, value := changes[i], changes[i+1]
		found := false
		for j := range fields {
			if fields[j][0] == name {
				fields[j][1] = value
				found = true
			}
		}
		if !found {
			fields = append(fields, [2]string{name, value})
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	for _, f := range fields {
		if f[1] == "-" {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", f[0], f[1])
	}
	b.WriteByte('}')
	return b.String()
}

func baseEvent() Event {
	return Event{EventID: "evt-1", OccurredAt: time.Date(2026, 11, 22, 8, 59, 0, 0, time.UTC), Moment: "fmot", Channel: "web", Touchpoint: "checkout"}
}

func decode(t *testing.T, body, contentType string) Batch {
	t.Helper()
	b, err := DecodeBytes([]byte(body), contentType, Limits{}, now)
	if err != nil {
		t.Fatalf("DecodeBytes(%q): %v", shorten(body, 200), err)
	}
	return b
}

func TestDecodeEvent(t *testing.T) {
	// ok: the decoded event is the base event changed by want.
	type tc struct {
		name string
		body string
		want func(*Event) // nil when the event is invalid
		errs []FieldError // for an invalid event, all its problems
	}
	e := func(field, msg string) FieldError { return FieldError{0, field, msg} }
	intErr := func(field, lo, hi, got string) []FieldError {
		return []FieldError{e(field, fmt.Sprintf("must be an integer from %s to %s (got %s)", lo, hi, got))}
	}
	cases := []tc{
		{"base", obj(), func(*Event) {}, nil},
		{"every field", obj("stage", `"purchase"`, "outcome", `"resolved"`, "customer_id", `"c"`, "journey_id", `"j"`,
			"csat", "5", "nps", "0", "ces", "7", "sentiment", "-0.25", "wait_ms", "0", "handle_ms", "86400000",
			"region", `"emea"`, "product", `"p"`, "segment", `"s"`, "agent_team", `"a"`, "attributes", `{"plan":"gold","tier":""}`),
			func(e *Event) {
				e.Stage, e.Outcome, e.CustomerID, e.JourneyID = "purchase", "resolved", "c", "j"
				e.CSAT, e.NPS, e.CES, e.Sentiment = ptr[uint8](5), ptr[uint8](0), ptr[uint8](7), ptr(-0.25)
				e.WaitMS, e.HandleMS = ptr[uint32](0), ptr[uint32](86_400_000)
				e.Region, e.Product, e.Segment, e.AgentTeam = "emea", "p", "s", "a"
				e.Attributes = map[string]string{"plan": "gold", "tier": ""}
			}, nil},
		{"white space everywhere", " {\t\"event_id\" :\r\n\"evt-1\" , \"occurred_at\":\"2026-11-22T08:59:00Z\",\"moment\":\"fmot\",\"channel\":\"web\",\"touchpoint\":\"checkout\"\n}\n",
			func(*Event) {}, nil},
		{"optional nulls are absent", obj("stage", "null", "csat", "null", "sentiment", "null", "attributes", "null", "region", "null"), func(*Event) {}, nil},
		{"optional empty strings are absent", obj("stage", `""`, "outcome", `""`, "region", `""`), func(*Event) {}, nil},
		{"empty attributes", obj("attributes", "{}"), func(*Event) {}, nil},

		// Strings.
		{"escapes", obj("event_id", `"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00z"`), func(e *Event) { e.EventID = "a\"\\/\b\f\n\r\té😀z" }, nil},
		{"escaped field name", `{"event\u005fid":"evt-1","occurred_at":"2026-11-22T08:59:00Z","moment":"fmot","channel":"web","touchpoint":"checkout"}`, func(*Event) {}, nil},
		{"raw UTF-8", obj("touchpoint", `"caf\u00e9 ☕"`), func(e *Event) { e.Touchpoint = "café ☕" }, nil},
		{"event_id null", obj("event_id", "null"), nil, []FieldError{e("event_id", "is required (got null)")}},
		{"event_id missing", obj("event_id", "-"), nil, []FieldError{e("event_id", "is required")}},
		{"event_id empty", obj("event_id", `""`), nil, []FieldError{e("event_id", "must not be empty")}},
		{"event_id number", obj("event_id", "42"), nil, []FieldError{e("event_id", "must be a string (got 42)")}},
		{"event_id object", obj("event_id", `{"a":[1]}`), nil, []FieldError{e("event_id", "must be a string (got an object)")}},
		{"event_id 101 chars", obj("event_id", `"`+strings.Repeat("x", 101)+`"`), nil, []FieldError{e("event_id", "must be at most 100 characters (got 101)")}},
		{"event_id invalid UTF-8", obj("event_id", "\"a\xffb\""), nil, []FieldError{e("event_id", "must be valid UTF-8 text")}},
		{"event_id invalid UTF-8 with escapes", obj("event_id", "\"\\n\xc3\""), nil, []FieldError{e("event_id", "must be valid UTF-8 text")}},
		{"event_id UTF-16 surrogate", obj("event_id", "\"\xed\xa0\x80\""), nil, []FieldError{e("event_id", "must be valid UTF-8 text")}},
		{"event_id lone surrogate escape", obj("event_id", `"a\ud800b"`), nil, []FieldError{e("event_id", msgSurrogate)}},
		{"event_id reversed surrogates", obj("event_id", `"\ude00\ud83d"`), nil, []FieldError{e("event_id", msgSurrogate)}},
		{"touchpoint true", obj("touchpoint", "true"), nil, []FieldError{e("touchpoint", "must be a string (got true)")}},
		{"region 65 chars", obj("region", `"`+strings.Repeat("r", 65)+`"`), nil, []FieldError{e("region", "must be at most 64 characters (got 65)")}},
		{"customer_id array", obj("customer_id", `[1,2]`), nil, []FieldError{e("customer_id", "must be a string (got an array)")}},

		// Enums.
		{"moment upper case", obj("moment", `"FMOT"`), nil, []FieldError{e("moment", `must be one of zmot, fmot, smot, tmot, service (got "FMOT")`)}},
		{"moment number", obj("moment", `2`), nil, []FieldError{e("moment", `must be one of zmot, fmot, smot, tmot, service (got 2)`)}},
		{"moment empty", obj("moment", `""`), nil, []FieldError{e("moment", `must be one of zmot, fmot, smot, tmot, service (got "")`)}},
		{"channel null", obj("channel", `null`), nil, []FieldError{e("channel", "is required (got null)")}},
		{"stage unknown", obj("stage", `"buy"`), nil, []FieldError{e("stage", stageMsg+` (got "buy")`)}},

		// Times.
		{"occurred_at fraction", obj("occurred_at", `"2026-11-22T08:59:00.123456789Z"`), func(e *Event) { e.OccurredAt = e.OccurredAt.Add(123456789) }, nil},
		{"occurred_at offset kept as UTC", obj("occurred_at", `"2026-11-22T09:59:00+01:00"`), func(*Event) {}, nil},
		{"occurred_at 5 min ahead", obj("occurred_at", `"2026-11-22T09:05:00Z"`), func(e *Event) { e.OccurredAt = now.Add(5 * time.Minute) }, nil},
		{"occurred_at too far ahead", obj("occurred_at", `"2026-11-22T10:00:00Z"`), nil,
			[]FieldError{e("occurred_at", "must be at most 5 minutes in the future (got 2026-11-22T10:00:00Z, server time 2026-11-22T09:00:00Z)")}},
		{"occurred_at too old", obj("occurred_at", `"2025-11-22T09:00:00Z"`), nil,
			[]FieldError{e("occurred_at", "must be at most 30 days in the past (got 2025-11-22T09:00:00Z, server time 2026-11-22T09:00:00Z)")}},
		{"occurred_at year 0", obj("occurred_at", `"0000-01-01T00:00:00Z"`), nil,
			[]FieldError{e("occurred_at", "must be at most 30 days in the past (got 0000-01-01T00:00:00Z, server time 2026-11-22T09:00:00Z)")}},
		{"occurred_at no zone", obj("occurred_at", `"2026-11-22T08:59:00"`), nil,
			[]FieldError{e("occurred_at", `must be an RFC 3339 time with a time zone, such as 2026-11-22T09:30:00Z or 2026-11-22T10:30:00+01:00 (got "2026-11-22T08:59:00")`)}},
		{"occurred_at space", obj("occurred_at", `"2026-11-22 08:59:00Z"`), nil,
			[]FieldError{e("occurred_at", `must be an RFC 3339 time such as 2026-11-22T09:30:00Z (got "2026-11-22 08:59:00Z")`)}},
		{"occurred_at decimal comma", obj("occurred_at", `"2026-11-22T08:59:00,5Z"`), nil,
			[]FieldError{e("occurred_at", `must be an RFC 3339 time such as 2026-11-22T09:30:00Z (got "2026-11-22T08:59:00,5Z")`)}},
		{"occurred_at hour 24", obj("occurred_at", `"2026-11-22T24:00:00Z"`), nil,
			[]FieldError{e("occurred_at", `must be an RFC 3339 time such as 2026-11-22T09:30:00Z (got "2026-11-22T24:00:00Z")`)}},
		{"occurred_at unix seconds", obj("occurred_at", `1795338000`), nil,
			[]FieldError{e("occurred_at", `must be an RFC 3339 time such as 2026-11-22T09:30:00Z (got 1795338000)`)}},
		{"occurred_at null", obj("occurred_at", `null`), nil, []FieldError{e("occurred_at", "is required (got null)")}},
		{"occurred_at missing", obj("occurred_at", `-`), nil, []FieldError{e("occurred_at", "is required")}},

		// Integers.
		{"csat 1", obj("csat", "1"), func(e *Event) { e.CSAT = ptr[uint8](1) }, nil},
		{"csat 4.0 is whole", obj("csat", "4.0"), func(e *Event) { e.CSAT = ptr[uint8](4) }, nil},
		{"csat 5e0 is whole", obj("csat", "5e0"), func(e *Event) { e.CSAT = ptr[uint8](5) }, nil},
		{"csat 0", obj("csat", "0"), nil, intErr("csat", "1", "5", "0")},
		{"csat 6", obj("csat", "6"), nil, intErr("csat", "1", "5", "6")},
		{"csat 4.5", obj("csat", "4.5"), nil, intErr("csat", "1", "5", "4.5")},
		{"csat -1", obj("csat", "-1"), nil, intErr("csat", "1", "5", "-1")},
		{"csat 256 would wrap a byte", obj("csat", "257"), nil, intErr("csat", "1", "5", "257")},
		{"csat 1e400", obj("csat", "1e400"), nil, intErr("csat", "1", "5", "1e400")},
		{"csat huge", obj("csat", strings.Repeat("9", 5000)), nil, intErr("csat", "1", "5", strings.Repeat("9", 32)+"…")},
		{"csat string", obj("csat", `"4"`), nil, intErr("csat", "1", "5", `"4"`)},
		{"csat bool", obj("csat", `true`), nil, intErr("csat", "1", "5", `true`)},
		{"nps 0 and 10", obj("nps", "10"), func(e *Event) { e.NPS = ptr[uint8](10) }, nil},
		{"nps 11", obj("nps", "11"), nil, intErr("nps", "0", "10", "11")},
		{"ces 8", obj("ces", "8"), nil, intErr("ces", "1", "7", "8")},
		{"wait_ms 86400000", obj("wait_ms", "8.64e7"), func(e *Event) { e.WaitMS = ptr[uint32](86_400_000) }, nil},
		{"wait_ms 86400001", obj("wait_ms", "86400001"), nil, intErr("wait_ms", "0", "86400000", "86400001")},
		{"handle_ms -1", obj("handle_ms", "-1"), nil, intErr("handle_ms", "0", "86400000", "-1")},
		{"handle_ms 4294967296 would wrap", obj("handle_ms", "4294967296"), nil, intErr("handle_ms", "0", "86400000", "4294967296")},

		// Sentiment.
		{"sentiment -1", obj("sentiment", "-1"), func(e *Event) { e.Sentiment = ptr(-1.0) }, nil},
		{"sentiment 1e-400 is 0", obj("sentiment", "1e-400"), func(e *Event) { e.Sentiment = ptr(0.0) }, nil},
		{"sentiment 1.0000001", obj("sentiment", "1.0000001"), nil, []FieldError{e("sentiment", "must be a number from -1 to 1 (got 1.0000001)")}},
		{"sentiment 1e400", obj("sentiment", "1e400"), nil, []FieldError{e("sentiment", "must be a number from -1 to 1 (got 1e400)")}},
		{"sentiment NaN string", obj("sentiment", `"NaN"`), nil, []FieldError{e("sentiment", `must be a number from -1 to 1 (got "NaN")`)}},

		// Attributes.
		{"attribute number", obj("attributes", `{"a":"x","n":1}`), nil, []FieldError{e("attributes.n", "must be a string (got 1)")}},
		{"attribute null", obj("attributes", `{"n":null}`), nil, []FieldError{e("attributes.n", "must be a string (got null)")}},
		{"attributes array", obj("attributes", `["a"]`), nil, []FieldError{e("attributes", msgAttributes+" (got an array)")}},
		{"attributes string", obj("attributes", `"a=b"`), nil, []FieldError{e("attributes", msgAttributes+` (got "a=b")`)}},
		{"attribute duplicate", obj("attributes", `{"a":"x","a":"y"}`), nil, []FieldError{e("attributes.a", "appears more than once in attributes")}},
		{"attribute key 41 chars and a bad value", obj("attributes", `{"`+strings.Repeat("k", 41)+`":"v","a":1}`), nil, []FieldError{
			e("attributes.a", "must be a string (got 1)"),
			e("attributes", `key "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"… must be at most 40 characters (got 41)`)}},
		{"attribute key invalid UTF-8", obj("attributes", "{\"\xff\":\"v\"}"), nil, []FieldError{e("attributes", `keys must be valid Unicode text (got "\xff")`)}},
		{"attribute value invalid UTF-8", obj("attributes", "{\"k\":\"\xff\"}"), nil, []FieldError{e("attributes.k", "must be valid UTF-8 text")}},
		{"26 attributes", obj("attributes", `{"a":"","b":"","c":"","d":"","e":"","f":"","g":"","h":"","i":"","j":"","k":"","l":"","m":"",`+
			`"n":"","o":"","p":"","q":"","r":"","s":"","t":"","u":"","v":"","w":"","x":"","y":"","z":""}`), nil,
			[]FieldError{e("attributes", "must have at most 25 keys (got 26)")}},

		// Field names.
		{"unknown field", obj("foo", "1"), nil, []FieldError{e("foo", `unknown field "foo"`)}},
		{"unknown field with a nested value", obj("foo", `{"a":[1,{"b":null}]}`), nil, []FieldError{e("foo", `unknown field "foo"`)}},
		{"field name in another case", obj("Csat", "1"), nil, []FieldError{e("Csat", `unknown field "Csat" (field names are case-sensitive: did you mean "csat"?)`)}},
		{"field name invalid UTF-8", strings.TrimSuffix(obj(), "}") + ",\"\xff\":1}", nil, []FieldError{e("\uFFFD", "is an unknown field, and field names must be valid Unicode text")}},
		{"duplicate field", obj("csat", "1") + "", nil, nil}, // replaced below
		{"duplicate by escape", `{"event_id":"a","event\u005fid":"b","occurred_at":"2026-11-22T08:59:00Z","moment":"fmot","channel":"web","touchpoint":"checkout"}`, nil,
			[]FieldError{e("event_id", "appears more than once (each field may appear only once)")}},

		// Several problems at once, listed in field order.
		{"every problem listed", `{"zzz":1,"csat":9,"moment":"x","nps":1.5,"csat":2,"attributes":{"a":1},"event_id":""}`, nil, []FieldError{
			e("event_id", "must not be empty"),
			e("occurred_at", "is required"),
			e("moment", `must be one of zmot, fmot, smot, tmot, service (got "x")`),
			e("channel", "is required"),
			e("touchpoint", "is required"),
			e("csat", "must be an integer from 1 to 5 (got 9)"),
			e("csat", "appears more than once (each field may appear only once)"),
			e("nps", "must be an integer from 0 to 10 (got 1.5)"),
			e("attributes.a", "must be a string (got 1)"),
			e("zzz", `unknown field "zzz"`),
		}},
		{"empty object", `{}`, nil, []FieldError{
			e("event_id", "is required"), e("occurred_at", "is required"), e("moment", "is required"),
			e("channel", "is required"), e("touchpoint", "is required")}},
	}
	for i := range cases {
		if cases[i].name == "duplicate field" {
			cases[i].body = strings.TrimSuffix(obj("csat", "1"), "}") + `,"csat":2}`
			cases[i].errs = []FieldError{e("csat", "appears more than once (each field may appear only once)")}
		}
	}
	for _, c := range cases {
		for _, mode := range []string{"application/json", "application/x-ndjson"} {
			if mode != "application/json" && strings.Contains(c.body, "\n") {
				continue // not one line
			}
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				b := decode(t, c.body, mode)
				if b.Total != 1 {
					t.Fatalf("Total = %d, want 1", b.Total)
				}
				if c.want == nil {
					if len(b.Events) != 0 {
						t.Fatalf("accepted %+v, want problems %v", b.Events[0], c.errs)
					}
					if !reflect.DeepEqual(b.Errors, c.errs) {
						t.Fatalf("problems\n%s\nwant\n%s", lines(b.Errors), lines(c.errs))
					}
					return
				}
				if len(b.Errors) != 0 {
					t.Fatalf("problems %v, want none", b.Errors)
				}
				want := baseEvent()
				c.want(&want)
				if !reflect.DeepEqual(b.Events, []Event{want}) || !reflect.DeepEqual(b.Indexes, []int{0}) {
					t.Fatalf("events %+v %v\nwant %+v", b.Events, b.Indexes, want)
				}
				if errs := Validate(&b.Events[0], now, 0); errs != nil {
					t.Fatalf("accepted event fails Validate: %v", errs)
				}
			})
		}
	}
}

func lines(errs []FieldError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  %d %q %q\n", e.Index, e.Field, e.Message)
	}
	return b.String()
}

func TestDecodeTooManyProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 100 {
		fmt.Fprintf(&b, `"f%d":1,`, i)
	}
	b.WriteString(`"g":1}`)
	batch := decode(t, b.String(), "")
	if len(batch.Errors) != MaxErrorsPerEvent+1 {
		t.Fatalf("%d problems listed, want %d", len(batch.Errors), MaxErrorsPerEvent+1)
	}
	last := batch.Errors[len(batch.Errors)-1]
	// 101 unknown fields and 5 missing required ones.
	if want := "has 81 more problems not listed (at most 25 are listed per event)"; last.Message != want || last.Field != "" {
		t.Fatalf("last problem %+v, want %q", last, want)
	}
}

func TestDecodeArray(t *testing.T) {
	body := "[\n" + strings.Join([]string{
		obj("event_id", `"a"`),
		obj("csat", "7"),
		`"not an event"`,
		obj("event_id", `"d"`),
		`[` + obj() + `]`,
		`null`,
		obj("event_id", `"g"`, "foo", "1", "nps", "11"),
		obj("event_id", `"h"`),
	}, ",\n") + "\n]"
	b := decode(t, body, "application/json")
	if b.Total != 8 || !reflect.DeepEqual(b.Indexes, []int{0, 3, 7}) {
		t.Fatalf("Total %d, Indexes %v, want 8, [0 3 7]", b.Total, b.Indexes)
	}
	for i, id := range []string{"a", "d", "h"} {
		if b.Events[i].EventID != id {
			t.Errorf("Events[%d].EventID = %q, want %q", i, b.Events[i].EventID, id)
		}
	}
	want := []FieldError{
		{1, "csat", "must be an integer from 1 to 5 (got 7)"},
		{2, "", `must be a JSON object (got "not an event")`},
		{4, "", "must be a JSON object (got an array)"},
		{5, "", "must be a JSON object (got null)"},
		{6, "nps", "must be an integer from 0 to 10 (got 11)"},
		{6, "foo", `unknown field "foo"`},
	}
	if !reflect.DeepEqual(b.Errors, want) {
		t.Fatalf("problems\n%s\nwant\n%s", lines(b.Errors), lines(want))
	}
	if b.Rejected() != 5 {
		t.Fatalf("Rejected() = %d, want 5", b.Rejected())
	}

	if b := decode(t, " [ ] ", ""); b.Total != 0 || len(b.Events) != 0 || len(b.Errors) != 0 {
		t.Fatalf("empty array: %+v", b)
	}
}

func TestDecodeNDJSON(t *testing.T) {
	body := strings.Join([]string{
		obj("event_id", `"a"`),
		"",
		"   \t",
		obj("event_id", `"b"`) + "\r", // CRLF line ends
		`{"event_id": "c", "moment":`, // cut: a per-event problem only
		obj("event_id", `"d"`, "csat", "0"),
		obj("event_id", `"e"`) + ` {"event_id":"e2"}`,
		`[` + obj() + `]`,
		`{"event_id": tru}`,
		"{\"event_id\": \"\xff\"}",
		obj("event_id", `"i"`),
	}, "\n") // no final newline
	b := decode(t, body, "application/x-ndjson; charset=utf-8")
	if b.Total != 9 || !reflect.DeepEqual(b.Indexes, []int{0, 1, 8}) {
		t.Fatalf("Total %d, Indexes %v, want 9, [0 1 8]", b.Total, b.Indexes)
	}
	want := []FieldError{
		{2, "", "invalid JSON at line 5, column 28: the line ends before the JSON value is complete (in NDJSON each event must be on a single line)"},
		{3, "csat", "must be an integer from 1 to 5 (got 0)"},
		{4, "", "invalid JSON at line 7, column 111: unexpected data after the end of the event (in NDJSON each line holds one event)"},
		{5, "", "must be a JSON object (got an array)"},
		{6, "", "invalid JSON at line 9, column 14: expected a value, found 't' (strings need double quotes; the only bare words are true, false and null)"},
		{7, "event_id", "must be valid UTF-8 text"},
		{7, "occurred_at", "is required"},
		{7, "moment", "is required"},
		{7, "channel", "is required"},
		{7, "touchpoint", "is required"},
	}
	if !reflect.DeepEqual(b.Errors, want) {
		t.Fatalf("problems\n%s\nwant\n%s", lines(b.Errors), lines(want))
	}
	if b.Events[2].EventID != "i" {
		t.Fatalf("last event %q", b.Events[2].EventID)
	}

	// A pretty-printed object sent as NDJSON: every line is a problem, none sinks the body.
	b = decode(t, "{\n  \"event_id\": \"a\"\n}\n", "application/x-ndjson")
	if b.Total != 3 || len(b.Events) != 0 || len(b.Errors) != 3 {
		t.Fatalf("pretty-printed NDJSON: %+v", b)
	}
}

func TestIsNDJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/x-ndjson":                 true,
		"Application/X-NDJSON ; charset=utf-8": true,
		"application/jsonl":                    true,
		"application/json":                     false,
		"":                                     false,
		"text/plain":                           false,
	} {
		if IsNDJSON(ct) != want {
			t.Errorf("IsNDJSON(%q) = %v, want %v", ct, !want, want)
		}
	}
}

// TestDecodeBodyErrors covers the bodies that are refused as a whole.
func TestDecodeBodyErrors(t *testing.T) {
	three := strings.Repeat(obj()+",", 3)
	for _, c := range []struct {
		name, body, contentType string
		limits                  Limits
		msg                     string // the whole message
		tooLarge                bool
	}{
		{"empty", "", "", Limits{}, "the body is empty; send a JSON object, a JSON array of objects, or NDJSON (one object per line)", false},
		{"white space", " \n\t", "", Limits{}, "the body is empty; send a JSON object, a JSON array of objects, or NDJSON (one object per line)", false},
		{"empty NDJSON", "\n\n", "application/x-ndjson", Limits{}, "the body is empty; send a JSON object, a JSON array of objects, or NDJSON (one object per line)", false},
		{"string", `"hello"`, "", Limits{}, `the body must be a JSON object or an array of objects (got "hello")`, false},
		{"number", `42`, "", Limits{}, `the body must be a JSON object or an array of objects (got 42)`, false},
		{"null", `null`, "", Limits{}, `the body must be a JSON object or an array of objects (got null)`, false},
		{"not JSON", `event_id=1`, "", Limits{}, `invalid JSON at byte 0 (line 1, column 1): expected a value, found 'e' (strings need double quotes; the only bare words are true, false and null)`, false},
		{"object cut off", `{"event_id":"a","mom`, "", Limits{}, "invalid JSON at byte 20 (line 1, column 21): the body ends before the JSON is complete (is it cut off?)", false},
		{"array cut off", "[" + obj() + ",\n" + obj()[:30], "", Limits{}, "invalid JSON at byte 146 (line 2, column 31): the body ends before the JSON is complete (is it cut off?)", false},
		{"array cut after comma", "[" + obj() + ",", "", Limits{}, "invalid JSON at byte 115 (line 1, column 116): the body ends before the JSON is complete (is it cut off?)", false},
		{"array without commas", "[" + obj() + obj() + "]", "", Limits{}, "invalid JSON at byte 114 (line 1, column 115): expected ',' or ']' after the value, found '{' (events in an array are separated by commas)", false},
		{"trailing comma", "[" + obj() + ",]", "", Limits{}, "invalid JSON at byte 115 (line 1, column 116): expected a value, found ']' (is there a trailing comma?)", false},
		{"trailing comma in object", `[{"event_id":"a",}]`, "", Limits{}, "invalid JSON at byte 17 (line 1, column 18): expected a field name in double quotes, found '}' (is there a trailing comma?)", false},
		{"two objects", obj() + "\n" + obj(), "application/json", Limits{}, "invalid JSON at byte 114 (line 2, column 1): unexpected data after the end of the JSON value; to send several events, put them in a JSON array or send NDJSON (one event per line) with Content-Type: application/x-ndjson", false},
		{"garbage after array", "[] x", "", Limits{}, "invalid JSON at byte 3 (line 1, column 4): unexpected data after the end of the JSON value", false},
		{"single quotes", `[{'event_id':'a'}]`, "", Limits{}, "invalid JSON at byte 2 (line 1, column 3): expected a field name in double quotes, found a single quote", false},
		{"unquoted key", `{event_id:"a"}`, "", Limits{}, "invalid JSON at byte 1 (line 1, column 2): expected a field name in double quotes, found 'e'", false},
		{"missing colon", `{"event_id" "a"}`, "", Limits{}, "invalid JSON at byte 12 (line 1, column 13): expected ':' after the field name, found '\"'", false},
		{"missing comma", `{"event_id":"a" "moment":"zmot"}`, "", Limits{}, "invalid JSON at byte 16 (line 1, column 17): expected ',' or '}' after the value of \"event_id\", found '\"'", false},
		{"NaN", `[{"sentiment":NaN}]`, "", Limits{}, "invalid JSON at byte 14 (line 1, column 15): expected a value, found 'N' (JSON has no NaN or Infinity; leave the field out instead)", false},
		{"-Infinity", `[{"sentiment":-Infinity}]`, "", Limits{}, "invalid JSON at byte 15 (line 1, column 16): expected a digit after '-', found 'I' (JSON has no NaN or Infinity; leave the field out instead)", false},
		{"leading zero", `{"csat":05}`, "", Limits{}, "invalid JSON at byte 9 (line 1, column 10): a number must not start with 0 (write 7, not 07)", false},
		{"lone decimal point", `{"csat":5.}`, "", Limits{}, "invalid JSON at byte 10 (line 1, column 11): expected a digit after the decimal point", false},
		{"bare minus", `{"csat":-}`, "", Limits{}, "invalid JSON at byte 9 (line 1, column 10): expected a digit in the number", false},
		{"invalid escape", `{"event_id":"a\x"}`, "", Limits{}, `invalid JSON at byte 14 (line 1, column 15): a string contains the invalid escape \x (valid are \" \\ \/ \b \f \n \r \t and \uXXXX)`, false},
		{"short unicode escape", `{"event_id":"\u12G4"}`, "", Limits{}, `invalid JSON at byte 13 (line 1, column 14): a string contains an invalid \u escape (it needs 4 hexadecimal digits, as in \u00e9)`, false},
		{"raw newline in string", "{\"event_id\":\"a\nb\"}", "", Limits{}, `invalid JSON at byte 14 (line 1, column 15): a string contains the control character 0x0A, which JSON requires to be escaped (e.g. \n, \t or \u0001)`, false},
		{"invalid UTF-8 outside strings", "[\xff]", "", Limits{}, "invalid JSON at byte 1 (line 1, column 2): expected a value, found byte 0xFF", false},
		{"deep nesting", `{"foo":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "", Limits{}, "invalid JSON at byte 70 (line 1, column 71): the JSON is nested more than 64 levels deep", false},
		{"too many in array", "[" + three + obj() + "]", "", Limits{MaxEvents: 3}, "too many events in one request: at most 3 are allowed, and byte 343 holds event 4 (index 3); split the events into several requests", true},
		{"too many in NDJSON", strings.ReplaceAll(three, ",", "\n\n") + obj(), "application/x-ndjson", Limits{MaxEvents: 3}, "too many events in one request: at most 3 are allowed, and line 7 holds event 4 (index 3); split the events into several requests", true},
		{"body too large", obj(), "", Limits{MaxBodyBytes: 100}, "the body is larger than 100 bytes (100 bytes) once decompressed; send fewer events per request", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := DecodeBytes([]byte(c.body), c.contentType, c.limits, now)
			var be *BodyError
			if !errors.As(err, &be) {
				t.Fatalf("DecodeBytes = %+v, %v; want a *BodyError", b, err)
			}
			if be.Message != c.msg {
				t.Errorf("message\n  %s\nwant\n  %s", be.Message, c.msg)
			}
			if errors.Is(err, ErrTooLarge) != c.tooLarge {
				t.Errorf("errors.Is(err, ErrTooLarge) = %v, want %v", !c.tooLarge, c.tooLarge)
			}
			if b.Total != 0 || b.Events != nil || b.Errors != nil {
				t.Errorf("batch %+v returned with the error", b)
			}
		})
	}
}

func TestDecodeLimitsAtTheEdge(t *testing.T) {
	three := "[" + strings.TrimSuffix(strings.Repeat(obj()+",", 3), ",") + "]"
	b, err := DecodeBytes([]byte(three), "", Limits{MaxEvents: 3, MaxBodyBytes: int64(len(three))}, now)
	if err != nil || len(b.Events) != 3 {
		t.Fatalf("3 events at both limits: %d events, %v", len(b.Events), err)
	}
	b, err = Decode(strings.NewReader(three), "", Limits{MaxEvents: 3, MaxBodyBytes: int64(len(three))}, now)
	if err != nil || len(b.Events) != 3 {
		t.Fatalf("Decode, 3 events at both limits: %d events, %v", len(b.Events), err)
	}
	_, err = Decode(strings.NewReader(three), "", Limits{MaxBodyBytes: int64(len(three)) - 1}, now)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode one byte over: %v, want ErrTooLarge", err)
	}
}

func TestDecodeBOM(t *testing.T) {
	for _, ct := range []string{"", "application/x-ndjson"} {
		b := decode(t, "\xEF\xBB\xBF"+obj(), ct)
		if len(b.Events) != 1 {
			t.Fatalf("%q: body with a byte order mark: %+v", ct, b)
		}
	}
	// Offsets count the mark, as they are offsets in the body as sent.
	_, err := DecodeBytes([]byte("\xEF\xBB\xBF{x"), "", Limits{}, now)
	if want := "invalid JSON at byte 4 (line 1, column 5): expected a field name in double quotes, found 'x'"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	if _, err := DecodeBytes([]byte("\xEF\xBB\xBF\n"), "application/x-ndjson", Limits{}, now); err == nil {
		t.Fatal("a body of a byte order mark and a blank line is not empty")
	}
}

// TestDecodeSharesNoMemory checks that a batch survives the reuse of Decode's pooled buffer
// and changes to the body given to DecodeBytes.
func TestDecodeSharesNoMemory(t *testing.T) {
	body := []byte(obj("event_id", `"a\u00e9"`, "touchpoint", `"tp"`, "region", `"r"`, "attributes", `{"k":"v","k\n2":"v\n2"}`))
	b1, err := DecodeBytes(body, "", Limits{}, now)
	if err != nil || len(b1.Events) != 1 {
		t.Fatal(b1, err)
	}
	b2, err := Decode(bytes.NewReader(body), "", Limits{}, now)
	if err != nil || len(b2.Events) != 1 {
		t.Fatal(b2, err)
	}
	want := b1.Events[0]
	want.Attributes = map[string]string{"k": "v", "k\n2": "v\n2"}
	for i := range body {
		body[i] = 'X'
	}
	for range 10 { // overwrite the pooled buffer
		Decode(bytes.NewReader(bytes.Repeat([]byte("Y"), len(body))), "", Limits{}, now)
	}
	if b1.Events[0].EventID != "aé" || b1.Events[0].Touchpoint != "tp" || b1.Events[0].Attributes["k\n2"] != "v\n2" {
		t.Fatalf("DecodeBytes batch changed with its body: %+v", b1.Events[0])
	}
	if !reflect.DeepEqual(b2.Events[0], want) {
		t.Fatalf("Decode batch changed with the pool: %+v", b2.Events[0])
	}
}

// The parser reuses its memory from one event to the next: nothing of an event, whole or cut
// off by an error anywhere (in a text, in its attributes, after them), shows in the next one,
// and each event keeps its own values once the next ones are read.
func TestDecodeKeepsNothingOfTheEventBefore(t *testing.T) {
	full := obj("event_id", `"full"`, "region", `"north"`, "customer_id", `"c\u00e9"`, "csat", "2", "wait_ms", "40",
		"attributes", `{"k":"v","k2":"v2"}`)
	for name, cut := range map[string]string{
		"cut in a text": strings.TrimSuffix(obj("region", `"north"`, "csat", "2", "customer_id", `"x"`), `x"}`),
		"cut in the attributes": strings.TrimSuffix(obj("region", `"north"`, "attributes", `{"k":"v","k2":"v2"}`),
			`v2"}}`),
		"bad after attributes":   obj("region", `"north"`, "attributes", `{"k":"v"}`, "csat", "nope"),
		"refused for its values": obj("region", `"north"`, "attributes", `{"k":"v","k":"w"}`, "moment", `"none"`),
	} {
		if strings.HasSuffix(cut, "}") == strings.HasPrefix(name, "cut") {
			t.Fatalf("%s: the line %s is not what its name says", name, cut)
		}
		body := full + "\n" + cut + "\n" + obj("event_id", `"plain"`) + "\n" + full + "\n"
		b := decode(t, body, "application/x-ndjson")
		if len(b.Events) != 3 {
			t.Fatalf("%s: %d events, want 3; errors %s", name, len(b.Events), lines(b.Errors))
		}
		plain := baseEvent()
		plain.EventID = "plain"
		if !reflect.DeepEqual(b.Events[1], plain) {
			t.Errorf("%s: the event after it decoded as %+v, want %+v", name, b.Events[1], plain)
		}
		for _, i := range []int{0, 2} {
			e := b.Events[i]
			if e.EventID != "full" || e.Region != "north" || e.CustomerID != "cé" || e.CSAT == nil || *e.CSAT != 2 ||
				e.WaitMS == nil || *e.WaitMS != 40 || !reflect.DeepEqual(e.Attributes, map[string]string{"k": "v", "k2": "v2"}) {
				t.Errorf("%s: event %d decoded as %+v", name, i, e)
			}
		}
	}
	// The same in a JSON array, where an event after a full one leaves out its fields.
	b := decode(t, "["+full+","+obj("event_id", `"plain"`)+","+full+"]", "application/json")
	if len(b.Events) != 3 || b.Events[1].Region != "" || b.Events[1].Attributes != nil || b.Events[1].CSAT != nil ||
		b.Events[2].Region != "north" || b.Events[0].Attributes["k2"] != "v2" {
		t.Fatalf("array decoded as %+v", b.Events)
	}
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecompressed(t *testing.T) {
	events := []byte(obj() + "\n" + obj("event_id", `"b"`) + "\n")
	t.Run("gzip", func(t *testing.T) {
		for _, enc := range []string{"gzip", "GZip ", "x-gzip"} {
			r, err := Decompressed(bytes.NewReader(gz(t, events)), enc, 0)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Decode(r, "application/x-ndjson", Limits{}, now)
			if err != nil || len(b.Events) != 2 {
				t.Fatalf("%s: %d events, %v", enc, len(b.Events), err)
			}
		}
	})
	t.Run("identity", func(t *testing.T) {
		for _, enc := range []string{"", "identity"} {
			r, err := Decompressed(bytes.NewReader(events), enc, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := io.ReadAll(r); !bytes.Equal(got, events) {
				t.Fatalf("%q: read %q", enc, got)
			}
		}
	})
	t.Run("exactly the limit", func(t *testing.T) {
		r, _ := Decompressed(bytes.NewReader(gz(t, events)), "gzip", int64(len(events)))
		if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, events) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
	})
	t.Run("gzip bomb", func(t *testing.T) {
		bomb := gz(t, make([]byte, 10<<20)) // 10 MiB of zeros, about 10 KiB compressed
		if len(bomb) > 20<<10 {
			t.Fatalf("bomb is %d bytes", len(bomb))
		}
		r, err := Decompressed(bytes.NewReader(bomb), "gzip", 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Decode(r, "", Limits{}, now) // Decode's own limit (10 MiB) is above the reader's
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Decode = %v, want ErrTooLarge", err)
		}
		if want := "the body is larger than 1 MiB (1048576 bytes) once decompressed; send fewer events per request"; err.Error() != want {
			t.Fatalf("message %q, want %q", err, want)
		}
		// With no reader limit, Decode's MaxBodyBytes stops it too.
		r, _ = Decompressed(bytes.NewReader(bomb), "gzip", 100<<20)
		if _, err := Decode(r, "", Limits{MaxBodyBytes: 64 << 10}, now); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Decode with MaxBodyBytes = %v, want ErrTooLarge", err)
		}
	})
	t.Run("unsupported encoding", func(t *testing.T) {
		_, err := Decompressed(bytes.NewReader(events), "br", 0)
		if !errors.Is(err, ErrUnsupportedEncoding) || !strings.Contains(err.Error(), `"br"`) {
			t.Fatalf("err = %v, want ErrUnsupportedEncoding naming br", err)
		}
		if want := `unsupported Content-Encoding "br": send the body uncompressed or with Content-Encoding: gzip`; err.Error() != want {
			t.Fatalf("message %q, want %q", err, want)
		}
	})
	t.Run("not gzip", func(t *testing.T) {
		_, err := Decompressed(bytes.NewReader(events), "gzip", 0)
		if err == nil || !strings.Contains(err.Error(), "not gzip data") {
			t.Fatalf("err = %v", err)
		}
		if _, err := Decompressed(bytes.NewReader(nil), "gzip", 0); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Fatalf("empty body: err = %v", err)
		}
	})
	t.Run("gzip cut off", func(t *testing.T) {
		z := gz(t, bytes.Repeat(events, 100))
		r, err := Decompressed(bytes.NewReader(z[:len(z)/2]), "gzip", 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Decode(r, "application/x-ndjson", Limits{}, now)
		var be *BodyError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), "cut off") || errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("gzip corrupt", func(t *testing.T) {
		z := gz(t, events)
		z[len(z)-5] ^= 0xff // the CRC-32
		r, _ := Decompressed(bytes.NewReader(z), "gzip", 0)
		if _, err := Decode(r, "application/x-ndjson", Limits{}, now); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("err = %v", err)
		}
	})
}
