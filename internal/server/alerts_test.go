package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/alert/alerttest"
	"github.com/truthboard/truthboard/internal/alert/notify/notifytest"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/server"
)

// api calls the server's HTTP API with a bearer token and decodes the JSON answer into out
// (when not nil); it returns the status.
func api(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %s: not JSON: %v\n%s", method, url, resp.Status, err, b)
		}
	}
	return resp.StatusCode
}

// refusal is the body of a 4xx answer.
type refusal struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

// TestAlertsAPI runs a server whose evaluator finds a CSAT drop in service › voice (designed
// data around the real time; the rules file makes CSATDrop fire at once), and goes through the
// alerts API as a TV wall (display token) and as an admin: what fires, acknowledgements,
// silences and the history, with each kind of bad input refused naming its field.
func TestAlertsAPI(t *testing.T) {
	cfg, db := testConfig(t)
	rules := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(rules, []byte(`{"rules": [{"name": "CSATDrop", "metric": "csat", "kind": "change", "for": "0s"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.AlertRulesFile, cfg.AlertInterval = rules, 100*time.Millisecond
	now := time.Now().UTC()
	var evs []event.Event
	for _, tr := range []alerttest.Traffic{
		{From: now.Add(-210 * time.Minute), To: now.Add(-16 * time.Minute), Top2: 0.85},
		{From: now.Add(-16 * time.Minute), To: now.Add(20 * time.Minute), Top2: 0.55}, // still dropping when the test ends
	} {
		tr.Moment, tr.Channel, tr.PerMinute = "service", "voice", 40
		evs = append(evs, tr.Events("api")...)
	}
	ctx := context.Background()
	if err := db.InsertEvents(ctx, evs, now); err != nil {
		t.Fatal(err)
	}
	srv, err := server.Start(ctx, cfg, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())
	base, admin := srv.URL(), srv.AdminToken()

	var token struct{ Token string }
	if status := api(t, "POST", base+"/v1/display-tokens", admin, map[string]string{"name": "Wall 3"}, &token); status != http.StatusCreated {
		t.Fatalf("create a display token: %d", status)
	}
	wall := token.Token

	// What fires: the same answer for the wall and the admin.
	type alertsAnswer struct {
		Alerts []alert.Alert `json:"alerts"`
	}
	var firing alert.Alert
	notifytest.Eventually(t, "the voice CSAT drop listed by GET /v1/alerts", func() bool {
		var got alertsAnswer
		if status := api(t, "GET", base+"/v1/alerts", admin, nil, &got); status != http.StatusOK {
			t.Fatalf("GET /v1/alerts: %d", status)
		}
		if len(got.Alerts) > 0 {
			firing = got.Alerts[0]
		}
		return len(got.Alerts) > 0
	})
	want := map[string]string{"alertname": "CSATDrop", "metric": "csat", "moment": "service", "channel": "voice", "severity": "warning"}
	if firing.State != alert.Firing || firing.Fingerprint != alert.Fingerprint(want) || firing.Labels["channel"] != "voice" {
		t.Fatalf("GET /v1/alerts lists %+v, want %v firing", firing, want)
	}
	fp := firing.Fingerprint
	var asWall alertsAnswer
	if status := api(t, "GET", base+"/v1/alerts", wall, nil, &asWall); status != http.StatusOK || len(asWall.Alerts) != 1 || asWall.Alerts[0].Fingerprint != fp {
		t.Fatalf("GET /v1/alerts with a display token: %d %+v", status, asWall)
	}

	// A display token reads, and changes nothing.
	later := now.Add(time.Hour).Format(time.RFC3339)
	silence := map[string]any{"matchers": []map[string]string{{"name": "channel", "value": "voice"}}, "ends_at": later, "reason": "planned IVR migration"}
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/alerts/" + fp + "/acknowledge"}, {"POST", "/v1/silences"}, {"DELETE", "/v1/silences/0123456789abcdef"},
	} {
		var r refusal
		if status := api(t, c.method, base+c.path, wall, silence, &r); status != http.StatusForbidden || !strings.Contains(r.Error, "read-only") {
			t.Errorf("%s %s with a display token: %d %q, want 403", c.method, c.path, status, r.Error)
		}
	}

	// Bad input is refused, naming the field.
	for _, c := range []struct {
		name, path string
		body       any
		status     int
		field      string
	}{
		{"unknown fingerprint", "/v1/alerts/0000000000000000/acknowledge", map[string]string{"by": "ops"}, http.StatusNotFound, ""},
		{"nobody acknowledges", "/v1/alerts/" + fp + "/acknowledge", map[string]string{"by": " "}, http.StatusBadRequest, "by"},
		{"no matcher", "/v1/silences", map[string]any{"matchers": []any{}, "ends_at": later, "reason": "x"}, http.StatusBadRequest, "matchers"},
		{"unknown label", "/v1/silences", map[string]any{"matchers": []map[string]string{{"name": "chanel", "value": "voice"}}, "ends_at": later, "reason": "x"}, http.StatusBadRequest, "matchers[0].name"},
		{"empty value", "/v1/silences", map[string]any{"matchers": []map[string]string{{"name": "channel", "value": ""}}, "ends_at": later, "reason": "x"}, http.StatusBadRequest, "matchers[0].value"},
		{"ends in the past", "/v1/silences", map[string]any{"matchers": silence["matchers"], "ends_at": now.Add(-time.Minute).Format(time.RFC3339), "reason": "x"}, http.StatusBadRequest, "ends_at"},
		{"no end", "/v1/silences", map[string]any{"matchers": silence["matchers"], "reason": "x"}, http.StatusBadRequest, "ends_at"},
		{"empty reason", "/v1/silences", map[string]any{"matchers": silence["matchers"], "ends_at": later, "reason": "  "}, http.StatusBadRequest, "reason"},
	} {
		var r refusal
		if status := api(t, "POST", base+c.path, admin, c.body, &r); status != c.status || r.Field != c.field || r.Error == "" {
			t.Errorf("%s: %d %+v, want %d naming the field %q", c.name, status, r, c.status, c.field)
		}
	}
	var r refusal
	if status := api(t, "POST", base+"/v1/silences", admin, map[string]any{"matchers": silence["matchers"], "ends_at": later, "reason": "x", "why": "y"}, &r); status != http.StatusBadRequest || !strings.Contains(r.Error, `"why"`) {
		t.Errorf("a silence with an unknown field: %d %+v, want 400 naming it", status, r)
	}

	// Acknowledged, then silenced: both show on the alert.
	var acked alert.Alert
	if status := api(t, "POST", base+"/v1/alerts/"+fp+"/acknowledge", admin, map[string]string{"by": "ops@example.com"}, &acked); status != http.StatusOK || acked.AcknowledgedBy != "ops@example.com" {
		t.Fatalf("acknowledge: %d %+v", status, acked)
	}
	var created alert.Silence
	if status := api(t, "POST", base+"/v1/silences", admin, silence, &created); status != http.StatusCreated || created.ID == "" {
		t.Fatalf("silence: %d %+v", status, created)
	}
	var listed struct{ Silences []alert.Silence }
	if status := api(t, "GET", base+"/v1/silences", wall, nil, &listed); status != http.StatusOK || len(listed.Silences) != 1 || listed.Silences[0].ID != created.ID {
		t.Errorf("GET /v1/silences: %d %+v, want the new silence", status, listed)
	}
	var got alertsAnswer
	api(t, "GET", base+"/v1/alerts", wall, nil, &got)
	if len(got.Alerts) != 1 || !got.Alerts[0].Silenced || len(got.Alerts[0].SilencedBy) != 1 || got.Alerts[0].SilencedBy[0] != created.ID ||
		got.Alerts[0].AcknowledgedBy != "ops@example.com" {
		t.Errorf("GET /v1/alerts after acknowledging and silencing: %+v", got.Alerts)
	}
	// Expired: gone from the list and from the alert; a second expiry finds nothing.
	if status := api(t, "DELETE", base+"/v1/silences/"+created.ID, admin, nil, nil); status != http.StatusOK {
		t.Errorf("expire the silence: %d", status)
	}
	if status := api(t, "DELETE", base+"/v1/silences/"+created.ID, admin, nil, nil); status != http.StatusNotFound {
		t.Errorf("expire it again: %d, want 404", status)
	}
	api(t, "GET", base+"/v1/silences", admin, nil, &listed)
	api(t, "GET", base+"/v1/alerts", admin, nil, &got)
	if len(listed.Silences) != 0 || len(got.Alerts) != 1 || got.Alerts[0].Silenced {
		t.Errorf("after the silence expired: silences %+v, alerts %+v", listed.Silences, got.Alerts)
	}

	// The history, newest first: the acknowledgement, then the firing; paged by limit and to.
	type historyAnswer struct {
		Transitions []alert.Transition `json:"transitions"`
	}
	var h historyAnswer
	if status := api(t, "GET", base+"/v1/alerts/history?fingerprint="+fp, wall, nil, &h); status != http.StatusOK || len(h.Transitions) != 2 {
		t.Fatalf("GET /v1/alerts/history: %d, %d transitions, want 2", status, len(h.Transitions))
	}
	if a, f := h.Transitions[0], h.Transitions[1]; a.From != alert.Firing || a.To != alert.Firing || a.Alert.AcknowledgedBy != "ops@example.com" ||
		f.From != alert.Inactive || f.To != alert.Firing {
		t.Errorf("history %s→%s, %s→%s: want the acknowledgement, then inactive→firing", a.From, a.To, f.From, f.To)
	}
	var page historyAnswer
	if status := api(t, "GET", base+"/v1/alerts/history?limit=1", admin, nil, &page); status != http.StatusOK || len(page.Transitions) != 1 ||
		!page.Transitions[0].At.Equal(h.Transitions[0].At) {
		t.Fatalf("history?limit=1: %d %+v, want the newest", status, page)
	}
	next := base + "/v1/alerts/history?limit=1&to=" + page.Transitions[0].At.Format(time.RFC3339Nano)
	if status := api(t, "GET", next, admin, nil, &page); status != http.StatusOK || len(page.Transitions) != 1 || !page.Transitions[0].At.Equal(h.Transitions[1].At) {
		t.Errorf("the next page: %d %+v, want the firing", status, page)
	}
	for query, field := range map[string]string{
		"limit=0": "limit", "limit=1001": "limit", "limit=ten": "limit",
		"from=yesterday": "from", "to=2026-13-01T00:00:00Z": "to",
		"from=2026-03-02T10:00:00Z&to=2026-03-02T09:00:00Z": "to",
		"fingerprint=": "fingerprint", "page=2": "page",
	} {
		var r refusal
		if status := api(t, "GET", base+"/v1/alerts/history?"+query, admin, nil, &r); status != http.StatusBadRequest || r.Field != field {
			t.Errorf("history?%s: %d %+v, want 400 naming %s", query, status, r, field)
		}
	}
}

// TestInvalidRulesFile: a rules file with a mistake stops the start, with a message that names
// the setting, the rule and the field.
func TestInvalidRulesFile(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.AlertRulesFile = filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(cfg.AlertRulesFile, []byte(`{"rules": [
		{"name": "VoiceCSAT", "metric": "csat", "kind": "target", "target": 0.8},
		{"name": "Happiness", "metric": "happiness", "kind": "change"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := server.Start(context.Background(), cfg, server.Options{})
	if err == nil {
		srv.Stop(context.Background())
		t.Fatal("the server started with an unknown metric in its rules")
	}
	for _, want := range []string{"TRUTHBOARD_ALERT_RULES", cfg.AlertRulesFile, `rules[1] "Happiness"`, `field "metric"`, "happiness"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %s", err, want)
		}
	}
}

// TestAlertRulesOverTheAPI replaces the rules over the API: a bad rule is refused naming its
// field and changes nothing, a good set is in force at once and after a restart; with a rules
// file configured, the API may not change them.
func TestAlertRulesOverTheAPI(t *testing.T) {
	cfg, _ := testConfig(t)
	ctx := context.Background()
	srv, err := server.Start(ctx, cfg, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rulesURL := srv.URL() + "/v1/alert-rules"
	var got struct{ Rules []alert.Rule }
	if code := api(t, http.MethodGet, rulesURL, srv.AdminToken(), nil, &got); code != http.StatusOK || len(got.Rules) != len(alert.DefaultRules()) {
		t.Fatalf("GET rules: %d with %d rules, want 200 and the %d default ones", code, len(got.Rules), len(alert.DefaultRules()))
	}

	var bad refusal
	badRules := json.RawMessage(`{"defaults": false, "rules": [{"name": "VoiceCSAT", "metric": "csat", "kind": "target", "target": 80}]}`)
	if code := api(t, http.MethodPut, rulesURL, srv.AdminToken(), badRules, &bad); code != http.StatusBadRequest || bad.Field != "target" || !strings.Contains(bad.Error, "VoiceCSAT") {
		t.Errorf("PUT a target of 80 for CSAT: %d %+v, want 400 naming the rule and the field target", code, bad)
	}
	good := json.RawMessage(`{"defaults": false, "rules": [{"name": "VoiceCSAT", "metric": "csat", "kind": "target", "target": 0.8, "moment": "service", "channel": "voice"}]}`)
	var token struct{ Token string }
	if code := api(t, http.MethodPost, srv.URL()+"/v1/display-tokens", srv.AdminToken(), map[string]string{"name": "Wall 3"}, &token); code != http.StatusCreated {
		t.Fatalf("create a display token: %d", code)
	}
	if code := api(t, http.MethodPut, rulesURL, token.Token, good, nil); code != http.StatusForbidden {
		t.Errorf("PUT rules with a display token: %d, want 403", code)
	}
	if code := api(t, http.MethodPut, rulesURL, srv.AdminToken(), good, &got); code != http.StatusOK || len(got.Rules) != 1 || got.Rules[0].Name != "VoiceCSAT" {
		t.Fatalf("PUT good rules: %d %+v, want 200 and the one rule", code, got.Rules)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// A restart keeps them.
	srv, err = server.Start(ctx, cfg, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if code := api(t, http.MethodGet, srv.URL()+"/v1/alert-rules", srv.AdminToken(), nil, &got); code != http.StatusOK || len(got.Rules) != 1 || got.Rules[0].Name != "VoiceCSAT" {
		t.Errorf("after a restart: %d %+v, want the rule set over the API", code, got.Rules)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// With a rules file, the file rules.
	file := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(file, []byte(`{"rules": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.AlertRulesFile = file
	srv, err = server.Start(ctx, cfg, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(ctx)
	if code := api(t, http.MethodPut, srv.URL()+"/v1/alert-rules", srv.AdminToken(), good, &bad); code != http.StatusConflict || !strings.Contains(bad.Error, "TRUTHBOARD_ALERT_RULES") {
		t.Errorf("PUT rules with a rules file configured: %d %+v, want 409 naming TRUTHBOARD_ALERT_RULES", code, bad)
	}
}
