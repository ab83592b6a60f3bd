package event

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current output")

// badEvents is a catalogue of the mistakes webhook sources make. Its output, in
// testdata/bad_events.golden, is what their developers will read: review it by eye after -update.
var badEvents = []struct{ name, body string }{
	{"empty object", `{}`},
	{"everything wrong at once", `{"event_id":"","occurred_at":"yesterday","moment":"ZMOT","channel":"phone","touchpoint":"","stage":"purchasing","outcome":"success","csat":"5","nps":7.5,"ces":0,"sentiment":"positive","wait_ms":-1,"handle_ms":172800000,"attributes":{"vip":true}}`},
	{"timestamp instead of occurred_at", obj("occurred_at", "-", "timestamp", `"2026-11-22T08:59:00Z"`)},
	{"unix milliseconds", obj("occurred_at", "1795337940000")},
	{"time without zone", obj("occurred_at", `"2026-11-22T08:59:00"`)},
	{"time with a space", obj("occurred_at", `"2026-11-22 08:59:00+00:00"`)},
	{"time in the future", obj("occurred_at", `"2026-11-22T10:00:00+00:00"`)},
	{"time too old", obj("occurred_at", `"2026-01-01T00:00:00Z"`)},
	{"field names in camel case", obj("event_id", "-", "eventId", `"a"`, "Moment", `"zmot"`)},
	{"field name in upper case", obj("CSAT", "5")},
	{"duplicate field", strings.TrimSuffix(obj("csat", "4"), "}") + `,"csat":5}`},
	{"csat as a string", obj("csat", `"5"`)},
	{"csat out of range", obj("csat", "10")},
	{"nps with a fraction", obj("nps", "7.5")},
	{"nps huge", obj("nps", "1e400")},
	{"ces negative", obj("ces", "-3")},
	{"sentiment out of range", obj("sentiment", "-2.5")},
	{"sentiment as a word", obj("sentiment", `"negative"`)},
	{"wait over a day", obj("wait_ms", "86400001")},
	{"moment in upper case", obj("moment", `"FMOT"`)},
	{"unknown channel", obj("channel", `"phone"`)},
	{"unknown stage", obj("stage", `"checkout"`)},
	{"unknown outcome", obj("outcome", `"success"`)},
	{"required field null", obj("moment", "null", "channel", "null")},
	{"event_id a number", obj("event_id", "12345")},
	{"event_id too long", obj("event_id", `"`+strings.Repeat("0123456789", 11)+`"`)},
	{"touchpoint empty", obj("touchpoint", `""`)},
	{"region too long", obj("region", `"`+strings.Repeat("é", 65)+`"`)},
	{"invalid UTF-8 in a value", obj("product", "\"caf\xe9\"")},
	{"unpaired surrogate escape", obj("segment", `"\ud83d"`)},
	{"attributes as an array", obj("attributes", `[{"key":"plan","value":"gold"}]`)},
	{"attribute values not strings", obj("attributes", `{"vip":true,"visits":3,"tags":["a"],"note":null}`)},
	{"attribute key too long", obj("attributes", `{"`+strings.Repeat("k", 41)+`":"v"}`)},
	{"attribute value too long", obj("attributes", `{"comment":"`+strings.Repeat("v", 101)+`"}`)},
	{"attribute key empty", obj("attributes", `{"":"v"}`)},
	{"duplicate attribute", obj("attributes", `{"plan":"gold","plan":"silver"}`)},
	{"too many attributes", obj("attributes", manyAttributes(30))},
	{"hundreds of unknown fields", manyUnknown(300)},
}

// badBodies is a catalogue of bodies refused as a whole, in testdata/bad_bodies.golden.
var badBodies = []struct{ name, contentType, body string }{
	{"empty", "application/json", ""},
	{"not JSON", "application/json", "event_id=1&moment=zmot"},
	{"a string", "application/json", `"hello"`},
	{"cut off", "application/json", "[" + obj() + ",\n" + obj()[:40]},
	{"pretty-printed and cut off", "application/json", "[\n  {\n    \"event_id\": \"a\",\n    \"moment\": \"zmot\""},
	{"NDJSON sent as JSON", "application/json", obj() + "\n" + obj() + "\n"},
	{"objects without commas", "application/json", "[" + obj() + obj() + "]"},
	{"trailing comma", "application/json", "[" + obj() + ",]"},
	{"single quotes", "application/json", `{'event_id': 'a'}`},
	{"NaN", "application/json", "[" + obj("sentiment", "NaN") + "]"},
	{"raw tab in a string", "application/json", "{\"touchpoint\":\"a\tb\"}"},
	{"too many events", "application/json", "[" + strings.Repeat(obj()+",", 10_000) + obj() + "]"},
	{"NDJSON line cut off", "application/x-ndjson", obj() + "\n" + obj()[:40] + "\n" + obj() + "\n"},
}

func manyAttributes(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"a%02d":"v"`, i)
	}
	b.WriteByte('}')
	return b.String()
}

func manyUnknown(n int) string {
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(obj(), "}"))
	for i := range n {
		fmt.Fprintf(&b, `,"x%03d":%d`, i, i)
	}
	b.WriteByte('}')
	return b.String()
}

// show prints a body for a golden file: as is when it is short printable text, else quoted
// and cut.
func show(body string) string {
	if len(body) > 300 {
		body = body[:300] + fmt.Sprintf("… (%d bytes)", len(body))
	}
	if !utf8.ValidString(body) || strings.ContainsAny(body, "\t\r") {
		return fmt.Sprintf("%q", body)
	}
	return body
}

func asJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestGoldenBadEvents(t *testing.T) {
	var out strings.Builder
	out.WriteString("# Per-event problems for a catalogue of bad events, as the sender receives them.\n")
	out.WriteString("# Server time 2026-11-22T09:00:00Z. Regenerate with: go test ./internal/event -run Golden -update\n")
	for _, c := range badEvents {
		b, err := DecodeBytes([]byte(c.body), "application/json", Limits{}, now)
		if err != nil {
			t.Fatalf("%s: body refused: %v", c.name, err)
		}
		if len(b.Events) != 0 || len(b.Errors) == 0 {
			t.Fatalf("%s: accepted", c.name)
		}
		fmt.Fprintf(&out, "\n## %s\n%s\n", c.name, show(c.body))
		for _, e := range b.Errors {
			fmt.Fprintf(&out, "  %s\n", asJSON(e))
		}
	}
	golden(t, "bad_events.golden", out.String())
}

func TestGoldenBadBodies(t *testing.T) {
	var out strings.Builder
	out.WriteString("# Bodies refused as a whole (HTTP 400, or 413 when too large), and NDJSON lines refused alone.\n")
	out.WriteString("# Regenerate with: go test ./internal/event -run Golden -update\n")
	for _, c := range badBodies {
		b, err := DecodeBytes([]byte(c.body), c.contentType, Limits{}, now)
		fmt.Fprintf(&out, "\n## %s (%s)\n%s\n", c.name, c.contentType, show(c.body))
		if err != nil {
			fmt.Fprintf(&out, "  error: %s\n", err)
			continue
		}
		for _, e := range b.Errors {
			fmt.Fprintf(&out, "  %s\n", asJSON(e))
		}
		fmt.Fprintf(&out, "  accepted: %d of %d\n", len(b.Events), b.Total)
	}
	golden(t, "bad_bodies.golden", out.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update and review the diff):\n%s", path, firstDiff(string(want), got))
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d\nwant: %s\ngot:  %s", i+1, wl, gl)
		}
	}
	return ""
}
