package live

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseClientMessageValid(t *testing.T) {
	cases := []struct {
		name, msg  string
		view       string
		window     time.Duration
		key        string
		channel    []string
		region     []string
		agentTeams []string
	}{
		{
			name: "defaults", msg: `{"type":"subscribe","view":"executive"}`,
			view: "executive", window: 5 * time.Minute, key: "executive?window=5m",
		},
		{
			name: "tv reads the executive feed", msg: `{"type":"subscribe","view":"tv","window":"15m"}`,
			view: "tv", window: 15 * time.Minute, key: "executive?window=15m",
		},
		{
			name: "drilldown with filters",
			msg:  `{"type":"subscribe","view":"drilldown","window":"1h","filters":{"channel":["web","app"],"region":["north"],"agent_team":["t 1"]}}`,
			view: "drilldown", window: time.Hour,
			key:     "drilldown?agent_team=t+1&channel=app&channel=web&region=north&window=1h",
			channel: []string{"web", "app"}, region: []string{"north"}, agentTeams: []string{"t 1"},
		},
		{
			name: "empty filter lists are no filter", msg: `{"type":"subscribe","view":"executive","window":"24h","filters":{"region":[]}}`,
			view: "executive", window: 24 * time.Hour, key: "executive?window=24h",
		},
		{
			name: "null is no value", msg: `{"type":"subscribe","view":"executive","window":null,"filters":{"region":null}}`,
			view: "executive", window: 5 * time.Minute, key: "executive?window=5m",
		},
		{
			name: "hostile values are only values", msg: `{"type":"subscribe","view":"executive","filters":{"region":["' OR 1=1 --"]}}`,
			view: "executive", window: 5 * time.Minute, key: "executive?region=%27+OR+1%3D1+--&window=5m", region: []string{"' OR 1=1 --"},
		},
		{
			name: "duplicates and blanks dropped", msg: `{"type":"subscribe","view":"executive","filters":{"channel":["web"," web",""]}}`,
			view: "executive", window: 5 * time.Minute, key: "executive?channel=web&window=5m", channel: []string{"web"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := ParseClientMessage([]byte(tc.msg))
			if err != nil {
				t.Fatal(err)
			}
			if sub.View != tc.view || sub.Query.Window != tc.window || sub.Key != tc.key {
				t.Errorf("view %q window %v key %q, want %q %v %q", sub.View, sub.Query.Window, sub.Key, tc.view, tc.window, tc.key)
			}
			f := sub.Query.Filters
			if !slices.Equal(f.Channel, tc.channel) || !slices.Equal(f.Region, tc.region) || !slices.Equal(f.AgentTeam, tc.agentTeams) {
				t.Errorf("filters %+v", f)
			}
		})
	}
}

func TestParseClientMessageKeys(t *testing.T) {
	key := func(msg string) string {
		t.Helper()
		sub, err := ParseClientMessage([]byte(msg))
		if err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
		return sub.Key
	}
	same := [][2]string{
		{ // values and filters in another order
			`{"type":"subscribe","view":"executive","filters":{"channel":["web","app"],"region":["b","a"]}}`,
			`{"filters":{"region":["a","b"],"channel":["app","web"]},"view":"executive","type":"subscribe"}`,
		},
		{ // the TV wall shares the executive feed
			`{"type":"subscribe","view":"tv","window":"1h","filters":{"moment":["smot"]}}`,
			`{"type":"subscribe","view":"executive","window":"1h","filters":{"moment":["smot"]}}`,
		},
		{ // the default window named or not
			`{"type":"subscribe","view":"drilldown"}`,
			`{"type":"subscribe","view":"drilldown","window":"5m"}`,
		},
	}
	for _, p := range same {
		if a, b := key(p[0]), key(p[1]); a != b {
			t.Errorf("keys differ:\n%s → %s\n%s → %s", p[0], a, p[1], b)
		}
	}
	differ := [][2]string{
		{`{"type":"subscribe","view":"executive"}`, `{"type":"subscribe","view":"drilldown"}`},
		{`{"type":"subscribe","view":"executive"}`, `{"type":"subscribe","view":"executive","window":"1m"}`},
		{`{"type":"subscribe","view":"tv","filters":{"region":["a"]}}`, `{"type":"subscribe","view":"tv","filters":{"product":["a"]}}`},
	}
	for _, p := range differ {
		if a, b := key(p[0]), key(p[1]); a == b {
			t.Errorf("%s and %s share the key %s", p[0], p[1], a)
		}
	}
}

func TestParseClientMessageErrorsNameTheField(t *testing.T) {
	long := strings.Repeat("x", 101)
	var vals []string
	for i := range 51 {
		vals = append(vals, fmt.Sprintf("%q", fmt.Sprint("r", i)))
	}
	many := strings.Join(vals, ",")
	cases := []struct{ msg, want string }{
		{``, "the message is empty"},
		{" \n", "the message is empty"},
		{`{"type":"subscribe"`, "not a valid JSON object"},
		{`["subscribe"]`, `must be a JSON object such as {"type":"subscribe","view":"executive"} (got a list)`},
		{`null`, "must be a JSON object"},
		{"{\"type\":\"subscribe\",\"view\":\"executive\",\"filters\":{\"region\":[\"caf\xe9\"]}}", "not valid UTF-8"},
		{`{"TYPE":"subscribe","view":"executive"}`, `unknown field "TYPE"; a message has the fields type, view, window, filters (field names are case-sensitive: did you mean "type"?)`},
		{`{"type":"subscribe","view":"executive","view":"tv"}`, "view: appears more than once"},
		{`{"type":"subscribe","view":"executive","filters":{"region":["a"],"region":["b"]}}`, "filters.region: appears more than once"},
		{`{"type":"subscribe","view":"executive","window":60}`, "window: must be a string (got 60)"},
		{`{"type":["subscribe"],"view":"executive"}`, `type: must be a string (got a list)`},
		{`{"type":"subscribe","view":"executive","filters":["region"]}`, `filters: must be an object of lists such as {"region": ["north"]} (got a list)`},
		{`{"type":"subscribe","view":"executive","filters":{"region":[1]}}`, `filters.region: must be a list of strings such as ["north"] (got 1 in the list)`},
		{`{"type":"subscribe","view":"executive","filters":{"region":["a\u0000b"]}}`, "filters.region: a value contains the NUL character"},
		{`{"type":"subscribe","view":"executive","extra":1}`, `"extra"`},
		{`{"type":"subscribe","view":"executive"} {"type":"subscribe"}`, "one JSON object per message"},
		{`{"view":"executive"}`, `type ""`},
		{`{"type":"hello","view":"executive"}`, `type "hello"`},
		{`{"type":"subscribe"}`, `view ""`},
		{`{"type":"subscribe","view":"wall"}`, `view "wall"`},
		{`{"type":"subscribe","view":"executive","window":"2h"}`, `window: "2h" is not a window; use one of 1m, 5m, 15m, 1h, 24h`},
		{`{"type":"subscribe","view":"executive","filters":{"colour":["red"]}}`, "filters.colour"},
		{`{"type":"subscribe","view":"executive","filters":{"channel":["fax"]}}`, "filters.channel"},
		{`{"type":"subscribe","view":"executive","filters":{"moment":["amot"]}}`, "filters.moment"},
		{`{"type":"subscribe","view":"executive","filters":{"touchpoint":["` + long + `"]}}`, "filters.touchpoint"},
		{`{"type":"subscribe","view":"executive","filters":{"region":[` + many + `]}}`, "filters.region: at most 50 values"},
		{`{"type":"subscribe","view":"executive","filters":{"segment":"vip"}}`, `filters.segment: must be a list of strings such as ["north"] (got "vip")`},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			_, err := ParseClientMessage([]byte(tc.msg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: error %v, want one naming %q", tc.msg, err, tc.want)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	got := string(ErrorMessage(errors.New(`view "wall": use one of executive, drilldown, tv`)))
	if want := `{"type":"error","error":"view \"wall\": use one of executive, drilldown, tv"}`; got != want {
		t.Errorf("ErrorMessage = %s, want %s", got, want)
	}
}
