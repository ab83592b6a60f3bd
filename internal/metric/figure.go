// Package metric is the arithmetic of the dashboard: CSAT, NPS, CES, rates, wait-time
// percentiles, confidence intervals and the Channel Consistency Index, each computed from
// the counts that the ClickHouse rollups return. It is pure code (no I/O, no database, no
// HTTP) so that the same numbers come out in the live feed, the API and the tests.
//
// Every figure carries the n it was computed from, and a figure from fewer than a minimum n
// responses has no value at all: the dashboard shows "not enough data", never a 0 that reads
// like a real (and alarming) score.
package metric

import (
	"encoding/json"
	"math"
)

// Defaults of Rules, from the product specification.
const (
	// DefaultMinN is the smallest n for which a figure has a value.
	DefaultMinN = 5
	// DefaultMinChannelN is the smallest number of csat responses for which a channel takes
	// part in the Channel Consistency Index: below it a channel's share is too noisy to say
	// whether it differs from the others, so it is shown but not counted.
	DefaultMinChannelN = 30
)

// Rules are the thresholds that decide when a figure is worth showing. The zero value uses
// the defaults: a field of 0 (or below) means its default, because neither threshold has a
// meaningful value below 1 (a share of nothing is undefined).
type Rules struct {
	// MinN is the smallest n for which a figure has a value; below it the figure has none.
	MinN int64
	// MinChannelN is the smallest number of csat responses for which a channel is included
	// in the Channel Consistency Index; channels below it are returned flagged as excluded.
	MinChannelN int64
}

func (r Rules) minN() int64 {
	if r.MinN <= 0 {
		return DefaultMinN
	}
	return r.MinN
}

func (r Rules) minChannelN() int64 {
	if r.MinChannelN <= 0 {
		return DefaultMinChannelN
	}
	return r.MinChannelN
}

// Figure is one number of the dashboard with the n it was computed from. OK is false when
// there is not enough data (n below the minimum, or nothing to divide by); Value is then 0 and
// must not be shown. It marshals to JSON as {"value": <number or null>, "n": <int>}, so a
// client cannot mistake "no data" for zero.
type Figure struct {
	Value float64
	OK    bool
	N     int64
}

// figureJSON is the wire form of Figure; a nil Value is JSON null.
type figureJSON struct {
	Value *float64 `json:"value"`
	N     int64    `json:"n"`
}

// figure returns a Figure of value from n observations, with no value below the minimum n or
// when value is not a finite number (which the JSON encoder would reject anyway).
func (r Rules) figure(value float64, n int64) Figure {
	if n < r.minN() || math.IsNaN(value) || math.IsInf(value, 0) {
		return Figure{N: n}
	}
	return Figure{Value: value, OK: true, N: n}
}

// MarshalJSON writes {"value": <number or null>, "n": <int>}. A Figure built by hand with OK
// set but a non-finite Value is written as null rather than failing the whole response.
func (f Figure) MarshalJSON() ([]byte, error) {
	w := figureJSON{N: f.N}
	if f.OK && !math.IsNaN(f.Value) && !math.IsInf(f.Value, 0) {
		w.Value = &f.Value
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON writes, so clients and tests written in Go can decode
// the API.
func (f *Figure) UnmarshalJSON(b []byte) error {
	var w figureJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*f = Figure{N: w.N}
	if w.Value != nil {
		f.Value, f.OK = *w.Value, true
	}
	return nil
}

// Change is how much a figure moved since the previous period, in the figure's own unit
// (share points for CSAT, NPS points, ms). OK is false when either period has no value: a
// change from or to "not enough data" is unknown, not zero. It marshals to a JSON number or
// null.
type Change struct {
	By float64
	OK bool
}

// Delta returns current − previous, with no value when either side has none.
func Delta(current, previous Figure) Change {
	if !current.OK || !previous.OK {
		return Change{}
	}
	d := current.Value - previous.Value
	if math.IsNaN(d) || math.IsInf(d, 0) {
		return Change{}
	}
	return Change{By: d, OK: true}
}

// MarshalJSON writes the change as a JSON number, or null when it is unknown.
func (c Change) MarshalJSON() ([]byte, error) {
	if !c.OK || math.IsNaN(c.By) || math.IsInf(c.By, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(c.By)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Change) UnmarshalJSON(b []byte) error {
	var v *float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = Change{}
	if v != nil {
		c.By, c.OK = *v, true
	}
	return nil
}
