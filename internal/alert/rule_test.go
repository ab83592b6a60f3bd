package alert

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultRules(t *testing.T) {
	rules := DefaultRules()
	if len(rules) != len(Metrics) {
		t.Fatalf("%d default rules, want one per metric (%d)", len(rules), len(Metrics))
	}
	names := map[string]bool{}
	for i, r := range rules {
		if err := r.Validate(); err != nil {
			t.Errorf("default rule %d: %v", i, err)
		}
		if names[r.Name] {
			t.Errorf("default rule name %s twice", r.Name)
		}
		names[r.Name] = true
		if r.Metric != Metrics[i] || r.Kind != Change || r.Moment != "" || r.Channel != "" {
			t.Errorf("default rule %d = %+v, want a change rule of %s over every moment × channel", i, r, Metrics[i])
		}
		if r.Alpha != DefaultAlpha || r.For != 2*time.Minute || r.KeepFiringFor != 2*time.Minute {
			t.Errorf("default rule %s: alpha %v, for %v, keep_firing_for %v", r.Name, r.Alpha, r.For, r.KeepFiringFor)
		}
	}
	vol := rules[len(rules)-1]
	if vol.Metric != Volume || vol.Baseline != LastWeek || vol.Window != time.Hour {
		t.Errorf("volume rule = %+v, want an hour against last week", vol)
	}
	if csat := rules[0]; csat.Baseline != Trailing || csat.BaselineHours != 3 || csat.Window != 15*time.Minute || csat.MinChange != 0.05 {
		t.Errorf("CSAT rule = %+v, want 15m against the trailing 3 h, 5 points", csat)
	}
}

func TestParseRuleFillsDefaults(t *testing.T) {
	r, err := ParseRule([]byte(`{"name": "VoiceCSAT", "metric": "csat", "kind": "target", "target": 0.8,
		"moment": "service", "channel": "voice", "filters": {"region": "north"}, "severity": "critical"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Rule{Name: "VoiceCSAT", Metric: CSAT, Kind: Target, Moment: "service", Channel: "voice",
		Filters: map[string]string{"region": "north"}, Window: 15 * time.Minute, Target: 0.8, MinN: 30,
		For: 2 * time.Minute, KeepFiringFor: 2 * time.Minute, Severity: "critical"}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("ParseRule = %+v\nwant %+v", r, want)
	}
	c, err := ParseRule([]byte(`{"name": "NPSWeek", "metric": "nps", "kind": "change", "baseline": "last_week",
		"window": "1h", "alpha": 0.001, "for": "0s", "keep_firing_for": "5m"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Baseline != LastWeek || c.BaselineHours != 0 || c.Window != time.Hour || c.Alpha != 0.001 ||
		c.For != 0 || c.KeepFiringFor != 5*time.Minute || c.MinChange != 10 || c.RecoveryP != 0.05 || c.MinBaselineN != 100 {
		t.Fatalf("ParseRule of a change rule = %+v", c)
	}
}

func TestParseRuleErrors(t *testing.T) {
	tests := []struct {
		name, json string
		field      string // the field the error must name
		hint       string // and a piece of its advice
	}{
		{"unknown metric", `{"name": "x", "metric": "cast", "kind": "change"}`, "metric", "use one of csat, nps, ces"},
		{"missing metric", `{"name": "x", "kind": "change"}`, "metric", "missing"},
		{"missing kind", `{"name": "x", "metric": "csat"}`, "kind", `use "target"`},
		{"unknown kind", `{"name": "x", "metric": "csat", "kind": "drop"}`, "kind", `"drop" is not a kind`},
		{"unknown moment", `{"name": "x", "metric": "csat", "kind": "change", "moment": "lmot"}`, "moment", "zmot, fmot, smot, tmot, service"},
		{"unknown channel", `{"name": "x", "metric": "csat", "kind": "change", "channel": "fax"}`, "channel", "web, app"},
		{"window not offered", `{"name": "x", "metric": "csat", "kind": "change", "window": "10m"}`, "window", "1m, 5m, 15m, 1h, 24h"},
		{"CSAT target above 1", `{"name": "x", "metric": "csat", "kind": "target", "target": 80}`, "target", "share above 0 and below 1, e.g. 0.8"},
		{"CES target out of scale", `{"name": "x", "metric": "ces", "kind": "target", "target": 9}`, "target", "above 1 and below 7"},
		{"missing target", `{"name": "x", "metric": "nps", "kind": "target"}`, "target", "missing"},
		{"target on a change rule", `{"name": "x", "metric": "csat", "kind": "change", "target": 0.8}`, "target", "target rules only"},
		{"alpha on a target rule", `{"name": "x", "metric": "csat", "kind": "target", "target": 0.8, "alpha": 0.01}`, "alpha", "change rules only"},
		{"alpha too large", `{"name": "x", "metric": "csat", "kind": "change", "alpha": 0.2}`, "alpha", "at most 0.05"},
		{"recovery below alpha", `{"name": "x", "metric": "csat", "kind": "change", "alpha": 0.01, "recovery_p": 0.001}`, "recovery_p", "above alpha"},
		{"min change of a share", `{"name": "x", "metric": "abandonment", "kind": "change", "min_change": 5}`, "min_change", "0.05 (5 points)"},
		{"unknown baseline", `{"name": "x", "metric": "csat", "kind": "change", "baseline": "yesterday"}`, "baseline", `"trailing"`},
		{"baseline hours too many", `{"name": "x", "metric": "csat", "kind": "change", "baseline_hours": 48}`, "baseline_hours", "1 to 24"},
		{"baseline hours with last week", `{"name": "x", "metric": "csat", "kind": "change", "baseline": "last_week", "baseline_hours": 3}`, "baseline_hours", "trailing"},
		{"bad duration", `{"name": "x", "metric": "csat", "kind": "change", "for": "2 minutes"}`, "for", `e.g. "2m"`},
		{"negative duration", `{"name": "x", "metric": "csat", "kind": "change", "keep_firing_for": "-1m"}`, "keep_firing_for", "0s to 24h"},
		{"unknown severity", `{"name": "x", "metric": "csat", "kind": "change", "severity": "page"}`, "severity", "info, warning, critical"},
		{"unknown filter", `{"name": "x", "metric": "csat", "kind": "change", "filters": {"city": "Paris"}}`, "filters", "touchpoint, region"},
		{"min_n too small", `{"name": "x", "metric": "csat", "kind": "change", "min_n": 2}`, "min_n", "at least 5"},
		{"unknown field", `{"name": "x", "metric": "csat", "kind": "change", "alfa": 0.01}`, "alfa", "a rule has name, metric"},
		{"wrong type", `{"name": "x", "metric": "csat", "kind": "change", "alpha": "0.01"}`, "alpha", "want a number"},
		{"negative min_n", `{"name": "x", "metric": "csat", "kind": "change", "min_n": -3}`, "min_n", "whole number of 0 or more"},
		{"no name", `{"metric": "csat", "kind": "change"}`, "name", "alertname"},
		{"bad name", `{"name": "CSAT drop!", "metric": "csat", "kind": "change"}`, "name", "letters, digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRule([]byte(tt.json))
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("ParseRule(%s) = %v, want a *RuleError", tt.json, err)
			}
			if re.Field != tt.field || !strings.Contains(err.Error(), tt.hint) {
				t.Fatalf("ParseRule(%s):\n  %v\nwant field %q and advice containing %q", tt.json, err, tt.field, tt.hint)
			}
			if re.Index != -1 || strings.HasPrefix(err.Error(), "rules[") {
				t.Fatalf("a single rule's error names a file position: %v", err)
			}
		})
	}
	if _, err := ParseRule([]byte(`[1]`)); err == nil || !strings.Contains(err.Error(), "JSON object") {
		t.Errorf("ParseRule([1]) = %v", err)
	}
	if _, err := ParseRule([]byte(`{"name": "x", "metric": "csat", "kind": "change"} {}`)); err == nil {
		t.Error("ParseRule accepted two objects")
	}
}

func TestParseRules(t *testing.T) {
	file := `{
  "rules": [
    {"name": "VoiceCSATTarget", "metric": "csat", "kind": "target", "target": 0.75, "moment": "service", "channel": "voice"},
    {"name": "CSATDrop", "metric": "csat", "kind": "change", "min_change": 0.1}
  ]
}`
	rules, err := ParseRules([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != len(DefaultRules())+1 {
		t.Fatalf("%d rules, want the defaults and one more", len(rules))
	}
	if rules[0].Name != "CSATDrop" || rules[0].MinChange != 0.1 {
		t.Errorf("the file's CSATDrop should replace the default one in place: %+v", rules[0])
	}
	if last := rules[len(rules)-1]; last.Name != "VoiceCSATTarget" {
		t.Errorf("last rule = %s, want VoiceCSATTarget", last.Name)
	}

	only, err := ParseRules([]byte(`{"defaults": false, "rules": [{"name": "A", "metric": "nps", "kind": "change"}]}`))
	if err != nil || len(only) != 1 || only[0].Name != "A" {
		t.Errorf(`"defaults": false: %d rules, %v; want just A`, len(only), err)
	}
	none, err := ParseRules([]byte(`{"defaults": false}`))
	if err != nil || len(none) != 0 {
		t.Errorf("no rules at all: %v, %v", none, err)
	}

	errs := []struct{ file, want string }{
		{`{"rules": [{"name": "A", "metric": "nps", "kind": "change"}, {"name": "B", "metric": "nps", "kind": "change", "window": "2h"}]}`,
			`rules[1] "B": field "window": "2h" is not a window`},
		{`{"rules": [{"name": "A", "metric": "nps", "kind": "change"}, {"name": "A", "metric": "csat", "kind": "change"}]}`,
			`rules[1] "A": field "name": rules[0] has the same name`},
		{`{"rules": [{"name": "A", "metric": "nps", "kind": "change", "alfa": 1}]}`, `rules[0] "A": field "alfa": unknown field`},
		{"{\n  \"rules\": [\n    {\"name\": \"A\",}\n  ]\n}", "line 3, column 19: not valid JSON"},
		{`{"rule": []}`, `unknown field "rule" at the top level`},
		{`[]`, "not a rules file"},
	}
	for _, tt := range errs {
		_, err := ParseRules([]byte(tt.file))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRules(%s) = %v, want an error containing %q", tt.file, err, tt.want)
		}
	}
}

// TestRuleJSONRoundTrip: a rule written by MarshalJSON reads back the same, so the API can
// show the effective rules and take them back.
func TestRuleJSONRoundTrip(t *testing.T) {
	rules := append(DefaultRules(),
		Rule{Name: "T", Metric: WaitP90, Kind: Target, Channel: "chat", Filters: map[string]string{"agent_team": "billing", "touchpoint": "refund"},
			Window: time.Hour, Target: 180000, MinN: 50, For: 90 * time.Second, KeepFiringFor: 0, Severity: "info"})
	for _, r := range rules {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back Rule
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", b, back, r)
		}
	}
}
