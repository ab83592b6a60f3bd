// Package live pushes the dashboards' figures to screens. A Hub keeps one feed per distinct
// subscription (view + window + filters); each feed runs one set of ClickHouse queries per tick
// however many screens share it, and offers the result to every subscriber through a
// latest-wins slot, so a slow screen gets the newest state and never slows the others. The
// package knows nothing of WebSockets: internal/web moves its messages over the wire.
// docs/live-protocol.md describes the messages.
package live

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/annotation"
	"github.com/truthboard/truthboard/internal/rollup"
)

// Views a client can subscribe to. The TV wall shows the executive figures, so it shares the
// executive feed.
var Views = []string{"executive", "drilldown", "tv"}

// ClientMessage is what a screen sends.
type ClientMessage struct {
	// Type is "subscribe" (the only message a client needs to send).
	Type string `json:"type"`
	// View is one of Views.
	View string `json:"view"`
	// Window is one of rollup.Windows: 1m, 5m, 15m, 1h, 24h, 7d, 30d (default 5m).
	Window string `json:"window"`
	// Filters narrow the view: moment, channel, touchpoint, region, product, segment,
	// agent_team, each a list of accepted values.
	Filters map[string][]string `json:"filters"`
}

// Subscription is a validated subscribe message.
type Subscription struct {
	View  string
	Query rollup.Query
	// Key identifies the feed: subscriptions with equal keys share one.
	Key string
}

// messageFields are the fields of a client's message.
var messageFields = []string{"type", "view", "window", "filters"}

// ParseClientMessage reads and validates a client's message, with errors that name the field.
// Like the event decoder, and unlike encoding/json alone, it refuses what would otherwise be
// read silently in some way: field names in another case, a field given twice, text that is
// not UTF-8.
func ParseClientMessage(b []byte) (Subscription, error) {
	fields, err := messageObject(b)
	if err != nil {
		return Subscription{}, err
	}
	var m ClientMessage
	for _, f := range fields {
		switch f.name {
		case "type":
			err = stringField(f, &m.Type)
		case "view":
			err = stringField(f, &m.View)
		case "window":
			err = stringField(f, &m.Window)
		case "filters":
			m.Filters, err = filtersField(f.value)
		}
		if err != nil {
			return Subscription{}, err
		}
	}
	if m.Type != "subscribe" {
		return Subscription{}, fmt.Errorf("type %q: the only message type is \"subscribe\"", m.Type)
	}
	if !slices.Contains(Views, m.View) {
		return Subscription{}, fmt.Errorf("view %q: use one of %s", m.View, strings.Join(Views, ", "))
	}
	values := url.Values{}
	if m.Window != "" {
		values.Set("window", m.Window)
	}
	for name, vals := range m.Filters {
		for _, v := range vals {
			values.Add(name, v)
		}
	}
	q, err := rollup.ParseQuery(values)
	if err != nil {
		var pe *rollup.ParamError
		if !errors.As(err, &pe) {
			return Subscription{}, err
		}
		if pe.Param == "window" {
			return Subscription{}, fmt.Errorf("window: %s", pe.Message)
		}
		return Subscription{}, fmt.Errorf("filters.%s: %s", pe.Param, pe.Message)
	}
	return Subscription{View: m.View, Query: q, Key: feedView(m.View) + "?" + canonical(q)}, nil
}

// member is one field of a JSON object, its value still raw.
type member struct {
	name  string
	value json.RawMessage
}

// messageObject checks that b is one JSON object of UTF-8 text whose fields are among
// messageFields, each once, and returns them in order.
func messageObject(b []byte) ([]member, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("the message is not valid UTF-8 text; send the JSON as UTF-8")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New(`the message is empty; send a JSON object such as {"type":"subscribe","view":"executive"}`)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errors.New("the message is not a valid JSON object: it ends before the object is complete")
		case errors.As(err, &se):
			return nil, fmt.Errorf("the message is not a valid JSON object: %v (at byte %d)", err, se.Offset)
		default:
			return nil, fmt.Errorf("the message is not a valid JSON object: %v", err)
		}
	}
	if dec.More() {
		return nil, errors.New("send one JSON object per message")
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf(`the message must be a JSON object such as {"type":"subscribe","view":"executive"} (got %s)`, describe(raw))
	}
	fields := members(raw)
	for i, f := range fields {
		if !slices.Contains(messageFields, f.name) {
			msg := fmt.Sprintf("unknown field %s; a message has the fields %s", strconv.Quote(shorten(f.name)), strings.Join(messageFields, ", "))
			if k := slices.IndexFunc(messageFields, func(n string) bool { return strings.EqualFold(n, f.name) }); k >= 0 {
				msg += fmt.Sprintf(" (field names are case-sensitive: did you mean %q?)", messageFields[k])
			}
			return nil, errors.New(msg)
		}
		if given(fields[:i], f.name) {
			return nil, fmt.Errorf("%s: appears more than once (each field may appear only once)", f.name)
		}
	}
	return fields, nil
}

// members returns the fields of a valid JSON object, in order.
func members(obj json.RawMessage) []member {
	dec := json.NewDecoder(bytes.NewReader(obj))
	_, _ = dec.Token() // '{'
	var out []member
	for dec.More() {
		name, err := dec.Token()
		if err != nil {
			break // not reached: obj is valid JSON
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			break
		}
		out = append(out, member{name: name.(string), value: v})
	}
	return out
}

func given(fields []member, name string) bool {
	return slices.ContainsFunc(fields, func(f member) bool { return f.name == name })
}

// stringField reads a string field; null is the same as leaving the field out.
func stringField(f member, s *string) error {
	if err := json.Unmarshal(f.value, s); err != nil {
		return fmt.Errorf("%s: must be a string (got %s)", f.name, describe(f.value))
	}
	return nil
}

// filtersField reads the filters object: known filter names, each once, each a list of strings.
func filtersField(v json.RawMessage) (map[string][]string, error) {
	if string(v) == "null" {
		return nil, nil
	}
	if v[0] != '{' {
		return nil, fmt.Errorf(`filters: must be an object of lists such as {"region": ["north"]} (got %s)`, describe(v))
	}
	out := map[string][]string{}
	fields := members(v)
	for i, f := range fields {
		if !slices.Contains(rollup.FilterParams, f.name) {
			return nil, fmt.Errorf("filters.%s: not a filter; use %s", shorten(f.name), strings.Join(rollup.FilterParams, ", "))
		}
		if given(fields[:i], f.name) {
			return nil, fmt.Errorf("filters.%s: appears more than once (each filter may appear only once)", f.name)
		}
		var vals []string
		if err := json.Unmarshal(f.value, &vals); err != nil {
			got := describe(f.value)
			var list []json.RawMessage
			if json.Unmarshal(f.value, &list) == nil {
				i := slices.IndexFunc(list, func(v json.RawMessage) bool { return v[0] != '"' && v[0] != 'n' }) // null reads as ""
				got = describe(list[i]) + " in the list"
			}
			return nil, fmt.Errorf(`filters.%s: must be a list of strings such as ["north"] (got %s)`, f.name, got)
		}
		out[f.name] = vals
	}
	return out, nil
}

// describe shows a JSON value in a message: an object or a list by its kind, other values as
// they are, cut.
func describe(v json.RawMessage) string {
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	}
	return shorten(string(v))
}

// shorten cuts s to about 40 bytes, never inside a character.
func shorten(s string) string {
	if len(s) <= 40 {
		return s
	}
	return strings.ToValidUTF8(s[:40], "") + "…"
}

// feedView is the view whose feed a view reads: the TV wall shows the executive figures.
func feedView(view string) string {
	if view == "tv" {
		return "executive"
	}
	return view
}

// canonical encodes a query's window and filters in a stable order.
func canonical(q rollup.Query) string {
	v := url.Values{"window": {q.WindowName}}
	for _, p := range rollup.FilterParams {
		vals := slices.Clone(*q.Filters.Field(p))
		sort.Strings(vals)
		for _, x := range vals {
			v.Add(p, x)
		}
	}
	return v.Encode()
}

// Message is what the server sends: a snapshot (full chart options), an update (series data
// only, merged by the browser), or an error.
type Message struct {
	// Type is "snapshot", "update" or "error".
	Type string `json:"type"`
	// Seq increases by one per tick of the feed; a snapshot carries the current one.
	Seq uint64 `json:"seq,omitempty"`
	// Feed is the feed's key (view and canonical query); View is the feed's view, "executive"
	// for a "tv" subscription.
	Feed string `json:"feed,omitempty"`
	View string `json:"view,omitempty"`
	// Tick is when the feed computed the message; NewestEvent is the start of the latest rollup
	// time step of the window with events (null when the window is empty), so its precision is
	// the table's resolution (1 s, 1 min or 1 h). Together they tell a screen how fresh it is.
	Tick        *time.Time `json:"tick,omitempty"`
	NewestEvent *time.Time `json:"newest_event"`
	// Degraded is true when the last query failed: the figures are those of the last good tick.
	Degraded bool   `json:"degraded"`
	Problem  string `json:"problem,omitempty"`
	// Data holds the figures behind the charts (KPI tiles, tables).
	Data any `json:"data,omitempty"`
	// Charts are ECharts options by chart name.
	Charts map[string]any `json:"charts,omitempty"`
	// Alerts are the pending and firing alerts of the whole server, firing first (the pages
	// show a banner, the TV wall pins the breach); always present in a tick's message.
	Alerts []alert.Alert `json:"alerts"`
	// Annotations are the marks and regions of the feed's window that concern its filters (an annotation scoped to another moment or channel is left out),
	// oldest first, at most annotation.MaxShown; always present in a tick's message. The pages
	// draw them on the trend charts.
	Annotations []annotation.Annotation `json:"annotations"`
}

// ErrorMessage is the frame answering a bad client message.
func ErrorMessage(err error) []byte {
	b, _ := json.Marshal(struct {
		Type  string `json:"type"`
		Error string `json:"error"`
	}{"error", err.Error()})
	return b
}
