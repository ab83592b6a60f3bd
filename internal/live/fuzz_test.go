package live

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
)

// hostileMessages seed FuzzParseClientMessage: what a broken or hostile screen could send over
// /v1/live. They run as test cases in every go test.
var hostileMessages = []string{
	`{"type":"subscribe","view":"drilldown","window":"1h","filters":{"moment":["service"],"channel":["web","app"],"region":["north"]}}`,
	`{"type":"subscribe","view":"tv","window":null,"filters":null}`,
	``, ` `, `null`, `[]`, `"subscribe"`, `{}`, `{"type":"subscribe"`, `{"type":"subscribe","view":"executive"}{}`,
	`{"type":"subscribe","view":"executive"} {"type":"subscribe"}`,
	`{"type":"hello","view":"executive"}`, `{"type":"subscribe","view":"wall"}`, `{"type":"subscribe","view":"EXECUTIVE"}`,
	`{"TYPE":"subscribe","View":"executive"}`, `{"type":"subscribe","view":"executive","view":"tv"}`,
	`{"type":"subscribe","view":"executive","window":"10y"}`, `{"type":"subscribe","view":"executive","window":60}`,
	`{"type":"subscribe","view":"executive","extra":{"a":[1,{"b":null}]}}`,
	`{"type":"subscribe","view":"executive","filters":{"colour":["red"]}}`,
	`{"type":"subscribe","view":"executive","filters":{"region":"north"}}`,
	`{"type":"subscribe","view":"executive","filters":{"region":[1,true,null]}}`,
	`{"type":"subscribe","view":"executive","filters":{"region":["a"],"region":["b"]}}`,
	`{"type":"subscribe","view":"executive","filters":{"region":["' OR 1=1 --","\\' OR 1=1 --","x'); DROP TABLE events; --"]}}`,
	`{"type":"subscribe","view":"executive","filters":{"touchpoint":["?","$1","{p:String}","/*","\\"]}}`,
	`{"type":"subscribe","view":"executive","filters":{"region":["a,b"," a ","",","]}}`,
	`{"type":"subscribe","view":"executive","filters":{"region":["a\u0000b","\ud800","\ufeff"]}}`,
	"{\"type\":\"subscribe\",\"view\":\"executive\",\"filters\":{\"region\":[\"caf\xe9\",\"\xc0\xaf\"]}}",
	`{"type":"subscribe","view":"executive","filters":{"channel":["web","fax"],"moment":["ZMOT"]}}`,
	`{"type":"subscribe","view":"executive","filters":{"region":["` + strings.Repeat("x", 101) + `"]}}`,
	`{"type":"subscribe","view":"executive","filters":{"touchpoint":["` + strings.Repeat("é", 100) + `"]}}`,
	`{"type":"subscribe","view":"executive","filters":{"region":[` + strings.Repeat(`"r",`, 60) + `"s"]}}`,
	`{"type":"subscribe","view":"executive","filters":{"region":[` + strings.Repeat(`[`, 200) + `]}}`,
	"\xef\xbb\xbf{\"type\":\"subscribe\",\"view\":\"executive\"}",
}

// FuzzParseClientMessage checks ParseClientMessage's promises on any message: no panic, the
// same answer twice; an error says which field is wrong (or that the message as a whole is)
// in valid UTF-8; an accepted subscription holds only allowed values, and written back as a
// message it reads back as the same subscription.
func FuzzParseClientMessage(f *testing.F) {
	for _, s := range hostileMessages {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sub, err := ParseClientMessage(b)
		sub2, err2 := ParseClientMessage(b)
		if !reflect.DeepEqual(sub, sub2) || (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("%q: two parses differ: %v, %v", b, err, err2)
		}
		if err != nil {
			msg := err.Error()
			if !utf8.ValidString(msg) || !namesAField(msg) {
				t.Fatalf("%q: error %q does not name a field or the message", b, msg)
			}
			return
		}
		if !slices.Contains(Views, sub.View) || sub.Key != feedView(sub.View)+"?"+canonical(sub.Query) {
			t.Fatalf("%q: view %q, key %q", b, sub.View, sub.Key)
		}
		q := sub.Query
		if q.By != nil || q.Compare || q.Step != 0 || q.Recovery || q.WithoutWait {
			t.Fatalf("%q: a subscription sets more than window and filters: %+v", b, q)
		}
		filters := map[string][]string{}
		for _, p := range rollup.FilterParams {
			vals := *q.Filters.Field(p)
			for i, s := range vals {
				if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00,") || s == "" || strings.TrimSpace(s) != s ||
					utf8.RuneCountInString(s) > rollup.MaxFilterLen || slices.Contains(vals[:i], s) ||
					p == "moment" && !slices.Contains(event.Moments, s) || p == "channel" && !slices.Contains(event.Channels, s) {
					t.Fatalf("%q: filters.%s takes the value %q", b, p, s)
				}
			}
			if len(vals) > rollup.MaxFilterValues {
				t.Fatalf("%q: %d values of filters.%s", b, len(vals), p)
			}
			if len(vals) > 0 {
				filters[p] = vals
			}
		}
		again, err := json.Marshal(ClientMessage{Type: "subscribe", View: sub.View, Window: q.WindowName, Filters: filters})
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseClientMessage(again)
		if err != nil || !reflect.DeepEqual(back, sub) {
			t.Fatalf("%q reads as %+v; written back as %s it reads as %+v, %v", b, sub, again, back, err)
		}
	})
}

// namesAField reports whether an error message starts by naming a field of the message, or
// the message as a whole.
func namesAField(msg string) bool {
	for _, p := range []string{"the message ", "send one JSON object", "unknown field ", "type", "view", "window", "filters"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
