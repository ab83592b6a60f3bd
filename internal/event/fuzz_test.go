package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecode checks the decoder's promises on any input: no panic, the same answer twice,
// every event accounted for exactly once, accepted events valid and stable through a JSON
// round trip, and agreement with encoding/json on what is valid JSON.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		obj(),
		"[" + obj() + "," + obj("csat", "9", "foo", "1") + ",5,null]",
		obj() + "\n\n" + obj("event_id", `"b"`) + "\r\n{\"a\":\n[]\n",
		obj("event_id", `"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800z"`, "attributes", `{"k":"v","k":"w","":"x"}`),
		obj("csat", "4.0", "nps", "1e1", "ces", "7E0", "sentiment", "-0.25e0", "wait_ms", "8.64e7", "handle_ms", "0.0e5"),
		obj("csat", "1e400", "nps", "-0", "ces", strings.Repeat("9", 40), "sentiment", "1e-400"),
		obj("occurred_at", `"2026-11-22T09:04:59.999999999+00:00"`, "stage", `""`, "outcome", "null"),
		obj("occurred_at", `"2026-11-22T08:59:00-23:59"`, "region", `"é€😀"`),
		"{\"event_id\":\"\xff\",\"EVENT_ID\":1,\"event\\u005fid\":2}",
		`{"attributes":{"a":{"b":[1,{"c":null}]}},"x":[[[[[]]]]]}`,
		`[{"sentiment":NaN}]`, `[1,]`, `{"a":1}{"b":2}`, "\xEF\xBB\xBF[]", `"x"`, ``, `[`, `{"a":"\u12`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		ct := "application/json"
		if ndjson {
			ct = "application/x-ndjson"
		}
		limits := Limits{MaxEvents: 100, MaxBodyBytes: 1 << 20}
		b, err := DecodeBytes(body, ct, limits, now)
		b2, err2 := DecodeBytes(body, ct, limits, now)
		if !reflect.DeepEqual(b, b2) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("two decodes differ:\n%+v %v\n%+v %v", b, err, b2, err2)
		}
		trimmed := bytes.TrimPrefix(body, []byte("\xEF\xBB\xBF"))
		if err != nil {
			var be *BodyError
			if !errors.As(err, &be) {
				t.Fatalf("error %T %v, want a *BodyError", err, err)
			}
			if b.Total != 0 || b.Events != nil || b.Errors != nil || b.Indexes != nil {
				t.Fatalf("batch %+v returned with an error", b)
			}
			if !utf8.ValidString(be.Message) {
				t.Fatalf("message not UTF-8: %q", be.Message)
			}
			if be.syntax && !ndjson && json.Valid(trimmed) && !strings.Contains(be.Message, "nested more than") {
				t.Fatalf("encoding/json finds %q valid, we say: %v", body, err)
			}
			return
		}
		if !ndjson && !json.Valid(trimmed) {
			t.Fatalf("encoding/json finds %q invalid, we accept it: %+v", body, b)
		}
		if b.Total > limits.MaxEvents {
			t.Fatalf("Total %d over MaxEvents", b.Total)
		}
		if len(b.Events) != len(b.Indexes) {
			t.Fatalf("%d events, %d indexes", len(b.Events), len(b.Indexes))
		}
		// Every index below Total is in exactly one of Indexes and Errors, in order.
		seen := make([]int, b.Total) // 1 valid, 2 invalid
		last := -1
		for _, i := range b.Indexes {
			if i <= last || i >= b.Total {
				t.Fatalf("indexes %v out of order or over Total %d", b.Indexes, b.Total)
			}
			last, seen[i] = i, 1
		}
		last = -1
		perEvent := map[int]int{}
		for _, e := range b.Errors {
			if e.Index < last || e.Index >= b.Total || seen[e.Index] == 1 {
				t.Fatalf("problem %+v: index out of order, over Total %d, or of a valid event", e, b.Total)
			}
			last, seen[e.Index] = e.Index, 2
			if perEvent[e.Index]++; perEvent[e.Index] > MaxErrorsPerEvent+1 {
				t.Fatalf("event %d has more than %d problems", e.Index, MaxErrorsPerEvent+1)
			}
			if e.Message == "" || !utf8.ValidString(e.Message) || !utf8.ValidString(e.Field) {
				t.Fatalf("bad problem %+v", e)
			}
		}
		for i, s := range seen {
			if s == 0 {
				t.Fatalf("event %d of %d neither valid nor invalid", i, b.Total)
			}
		}
		if ndjson {
			// Per line, "invalid JSON" exactly when encoding/json finds the line invalid.
			// (Nesting deeper than maxDepth is ours to refuse, not encoding/json's.)
			syntax, deep := map[int]bool{}, map[int]bool{}
			for _, e := range b.Errors {
				if e.Field == "" && strings.HasPrefix(e.Message, "invalid JSON") {
					syntax[e.Index] = true
					deep[e.Index] = strings.Contains(e.Message, "nested more than")
				}
			}
			i := 0
			for _, line := range bytes.Split(trimmed, []byte("\n")) {
				if len(bytes.Trim(line, " \t\r")) == 0 {
					continue
				}
				if json.Valid(line) == syntax[i] && !deep[i] {
					t.Fatalf("line %q: encoding/json says valid=%v, we say invalid JSON=%v", line, json.Valid(line), syntax[i])
				}
				i++
			}
		}
		for i := range b.Events {
			e := &b.Events[i]
			if errs := Validate(e, now, 0); errs != nil {
				t.Fatalf("accepted event %+v fails Validate: %v", e, errs)
			}
			// Round trip: what we accepted, written by encoding/json, reads back the same.
			out, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := DecodeBytes(out, "", limits, now)
			if err != nil || len(rb.Events) != 1 || !reflect.DeepEqual(rb.Events[0], *e) {
				t.Fatalf("round trip of %+v through %s: %+v %v", e, out, rb, err)
			}
		}
		// A single accepted object reads the same with encoding/json, when it can read it
		// (it cannot for whole numbers written 4.0 or 4e0 in integer fields).
		if !ndjson && len(b.Events) == 1 && bytes.HasPrefix(bytes.TrimLeft(trimmed, " \t\r\n"), []byte("{")) {
			var std Event
			if json.Unmarshal(trimmed, &std) == nil {
				std.OccurredAt = std.OccurredAt.UTC()
				if len(std.Attributes) == 0 {
					std.Attributes = nil // we keep no empty map
				}
				if !reflect.DeepEqual(std, b.Events[0]) {
					t.Fatalf("encoding/json reads %s as\n%+v\nwe read\n%+v", body, std, b.Events[0])
				}
			}
		}
	})
}
