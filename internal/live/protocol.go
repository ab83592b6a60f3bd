// Package live pushes the dashboards' figures to screens. A Hub keeps one feed per distinct
// subscription (view + window + filters); each feed runs one set of ClickHouse queries per tick
// however many screens share it, and offers the result to every subscriber through a
// latest-wins slot, so a slow screen gets the newest state and never slows the others. The
// package knows nothing of WebSockets: internal/web moves its messages over the wire.
// docs/live-protocol.md describes the messages.
package live

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

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
	// Window is one of 1m, 5m, 15m, 1h, 24h (default 5m).
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

// ParseClientMessage reads and validates a client's message, with errors that name the field.
func ParseClientMessage(b []byte) (Subscription, error) {
	var m ClientMessage
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Subscription{}, fmt.Errorf("the message is not a valid JSON object of type, view, window, filters: %v", err)
	}
	if dec.More() {
		return Subscription{}, errors.New("send one JSON object per message")
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
		if !slices.Contains(rollup.FilterParams, name) {
			return Subscription{}, fmt.Errorf("filters.%s: not a filter; use %s", name, strings.Join(rollup.FilterParams, ", "))
		}
		for _, v := range vals {
			values.Add(name, v)
		}
	}
	q, err := rollup.ParseQuery(values)
	if err != nil {
		var pe *rollup.ParamError
		if errors.As(err, &pe) && pe.Param != "window" {
			return Subscription{}, fmt.Errorf("filters.%s: %s", pe.Param, pe.Message)
		}
		return Subscription{}, err
	}
	return Subscription{View: m.View, Query: q, Key: feedView(m.View) + "?" + canonical(q)}, nil
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
}

// ErrorMessage is the frame answering a bad client message.
func ErrorMessage(err error) []byte {
	b, _ := json.Marshal(struct {
		Type  string `json:"type"`
		Error string `json:"error"`
	}{"error", err.Error()})
	return b
}
