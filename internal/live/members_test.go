package live

import (
	"slices"
	"testing"
	"time"
)

// drilldownData is what a test reads of a drill-down message's data.
type drilldownData struct {
	KPIs struct {
		Events uint64 `json:"events"`
	} `json:"kpis"`
	Members *struct {
		Level string `json:"level"`
		Rows  []struct {
			Moment, Channel, Touchpoint string
			Delta, Judgement, Previous  map[string]any
		} `json:"rows"`
	} `json:"members"`
}

// nextData waits for the client's next message and reads its data.
func nextData(t *testing.T, c *Client) drilldownData {
	t.Helper()
	var m struct{ Data drilldownData }
	nextInto(t, c, &m)
	return m.Data
}

// TestDrilldownKeepsComparing: the drill path narrows the tiles, the touchpoints and the
// members, never the grid, and the members are the level below the path.
func TestDrilldownKeepsComparing(t *testing.T) {
	for _, tc := range []struct {
		name, filters string
		level         string
		members       []string
		events        uint64 // of the tiles
	}{
		{"no path", `{"region":["north"]}`, "moment", []string{"service", "zmot"}, 172},
		{"a moment", `{"moment":["service"],"region":["north"]}`, "channel", []string{"ivr", "voice", "web"}, 172},
		// (The fixed source ignores filters: its three cells each have a checkout touchpoint.)
		{"a channel", `{"moment":["service"],"channel":["voice"]}`, "touchpoint", []string{"checkout", "checkout", "checkout"}, 172},
		// The chosen touchpoint among its siblings; the tiles are its own (none here).
		{"another touchpoint", `{"moment":["service"],"channel":["voice"],"touchpoint":["refund"]}`, "touchpoint", []string{"checkout", "checkout", "checkout"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newFixedSource(100)
			h := newTestHub(t, src, Options{Tick: time.Hour})
			c := NewClient()
			h.Subscribe(c, subscription(t, `{"type":"subscribe","view":"drilldown","window":"15m","filters":`+tc.filters+`}`))
			d := nextData(t, c)
			if d.Members == nil {
				t.Fatalf("drill-down snapshot data %+v: want members", d)
			}
			var names []string
			for _, r := range d.Members.Rows {
				names = append(names, map[string]string{"moment": r.Moment, "channel": r.Channel, "touchpoint": r.Touchpoint}[tc.level])
				if r.Delta == nil || r.Judgement == nil || r.Previous != nil {
					t.Errorf("member %+v: want its delta and judgement, without the previous period", r)
				}
			}
			slices.Sort(names)
			if d.Members.Level != tc.level || !slices.Equal(names, tc.members) {
				t.Errorf("members %s %v, want %s %v", d.Members.Level, names, tc.level, tc.members)
			}
			if d.KPIs.Events != tc.events {
				t.Errorf("tiles of %d events, want %d", d.KPIs.Events, tc.events)
			}
			src.mu.Lock()
			grid, tp := src.queries["moment,channel"], src.queries["moment,channel,touchpoint"]
			src.mu.Unlock()
			if grid.Filters.Moment != nil || grid.Filters.Channel != nil || grid.Filters.Touchpoint != nil {
				t.Errorf("the grid was asked with the drill path's filters %+v: the heatmap would lose the comparison", grid.Filters)
			}
			if tp.Filters.Touchpoint != nil {
				t.Errorf("the touchpoints were asked for %v only, want the chosen one among its siblings", tp.Filters.Touchpoint)
			}
			if tc.name == "no path" && !slices.Equal(grid.Filters.Region, []string{"north"}) {
				t.Errorf("the grid lost the other filters: %+v", grid.Filters)
			}
		})
	}
}
