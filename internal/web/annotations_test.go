package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/annotation"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

// startAnnotationNode is an access node with the annotations API; perMinute bounds writes.
func startAnnotationNode(t *testing.T, perMinute int) *accessNode {
	t.Helper()
	db := storetest.Open(t)
	return startAccessNode(t, db, time.Second, adminToken, func(o *web.Options) {
		o.Annotations = web.AnnotationOptions{Store: db, PerMinute: perMinute}
		o.Limits.Retention = 30 * 24 * time.Hour
	})
}

func (n *accessNode) annotationCall(t *testing.T, method, path, body string) answerOf {
	t.Helper()
	return n.do(t, method, path, body, "Authorization", "Bearer "+adminToken, "Content-Type", "application/json")
}

func decodeAnnotation(t *testing.T, a answerOf) annotation.Annotation {
	t.Helper()
	var x annotation.Annotation
	dec := json.NewDecoder(strings.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		t.Fatalf("answer %d is not an annotation: %v: %s", a.status, err, a.body)
	}
	return x
}

func (n *accessNode) listAnnotations(t *testing.T, query string) []annotation.Annotation {
	t.Helper()
	a := n.annotationCall(t, http.MethodGet, "/v1/annotations"+query, "")
	var list []annotation.Annotation
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &list) != nil {
		t.Fatalf("GET /v1/annotations%s: %d: %s", query, a.status, a.body)
	}
	return list
}

// TestAnnotationsAPI creates, lists, changes and deletes annotations as an admin would, with
// times in epoch milliseconds and in RFC 3339 as Grafana's clients send them.
func TestAnnotationsAPI(t *testing.T) {
	n := startAnnotationNode(t, 100)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)

	a := n.annotationCall(t, http.MethodPost, "/v1/annotations",
		fmt.Sprintf(`{"time": %d, "text": "release 4.2", "tags": ["release", "web"]}`, at.UnixMilli()))
	if a.status != http.StatusCreated {
		t.Fatalf("create a mark: %d: %s", a.status, a.body)
	}
	mark := decodeAnnotation(t, a)
	if len(mark.ID) != 16 || mark.Time != at.UnixMilli() || mark.TimeEnd != mark.Time || mark.Text != "release 4.2" ||
		strings.Join(mark.Tags, ",") != "release,web" || mark.Region() {
		t.Fatalf("created %+v", mark)
	}
	a = n.annotationCall(t, http.MethodPost, "/v1/annotations", fmt.Sprintf(
		`{"time": %q, "timeEnd": %q, "text": "voice outage", "tags": ["incident"], "channel": "voice"}`,
		at.Add(10*time.Minute).Format(time.RFC3339Nano), at.Add(40*time.Minute).Format(time.RFC3339)))
	if a.status != http.StatusCreated {
		t.Fatalf("create a region: %d: %s", a.status, a.body)
	}
	region := decodeAnnotation(t, a)
	if region.Time != at.Add(10*time.Minute).UnixMilli() || region.TimeEnd != at.Add(40*time.Minute).Truncate(time.Second).UnixMilli() || region.Channel != "voice" {
		t.Fatalf("created %+v", region)
	}

	ids := func(list []annotation.Annotation) string {
		var s []string
		for _, x := range list {
			s = append(s, x.ID)
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct{ query, want string }{
		{"", region.ID + "," + mark.ID},
		{"?tags=release", mark.ID},
		{"?tags=incident&tags=release", ""},
		{"?channel=voice", region.ID + "," + mark.ID},
		{"?channel=web", mark.ID},
		{fmt.Sprintf("?from=%d", at.Add(time.Minute).UnixMilli()), region.ID},
		{"?to=" + at.Add(-time.Minute).Format(time.RFC3339), ""},
		{"?limit=1", region.ID},
	} {
		if got := ids(n.listAnnotations(t, c.query)); got != c.want {
			t.Errorf("GET /v1/annotations%s: ids %q, want %q", c.query, got, c.want)
		}
	}

	a = n.annotationCall(t, http.MethodPatch, "/v1/annotations/"+region.ID, `{"text": "voice outage, fixed", "tags": ["incident", "fixed"]}`)
	changed := decodeAnnotation(t, a)
	if a.status != http.StatusOK || changed.Text != "voice outage, fixed" || changed.Time != region.Time || changed.TimeEnd != region.TimeEnd ||
		strings.Join(changed.Tags, ",") != "incident,fixed" || changed.Channel != "voice" {
		t.Fatalf("PATCH: %d %+v", a.status, changed)
	}
	if got := decodeAnnotation(t, n.annotationCall(t, http.MethodGet, "/v1/annotations/"+region.ID, "")); got.Text != changed.Text {
		t.Errorf("GET after PATCH: text %q, want %q", got.Text, changed.Text)
	}

	if a := n.annotationCall(t, http.MethodDelete, "/v1/annotations/"+mark.ID, ""); a.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d: %s", a.status, a.body)
	}
	if a := n.annotationCall(t, http.MethodGet, "/v1/annotations/"+mark.ID, ""); a.status != http.StatusNotFound {
		t.Errorf("GET a deleted annotation: %d, want 404", a.status)
	}
	if a := n.annotationCall(t, http.MethodPatch, "/v1/annotations/"+mark.ID, `{"text":"x"}`); a.status != http.StatusNotFound {
		t.Errorf("PATCH a deleted annotation: %d, want 404", a.status)
	}
	if got := ids(n.listAnnotations(t, "")); got != region.ID {
		t.Errorf("list after DELETE: %q, want %q", got, region.ID)
	}
}

// TestAnnotationsBadInput: each mistake is refused with 400 and the field that has it.
func TestAnnotationsBadInput(t *testing.T) {
	n := startAnnotationNode(t, 1000)
	now := time.Now().UnixMilli()
	a := n.annotationCall(t, http.MethodPost, "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "x"}`, now))
	if a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	id := decodeAnnotation(t, a).ID
	long := strings.Repeat("é", annotation.MaxText+1)
	for _, c := range []struct {
		name, method, path, body, field, says string
	}{
		{"missing time", "POST", "/v1/annotations", `{"text": "x"}`, "time", "required"},
		{"missing text", "POST", "/v1/annotations", fmt.Sprintf(`{"time": %d}`, now), "text", "required"},
		{"unparseable time", "POST", "/v1/annotations", `{"time": "yesterday", "text": "x"}`, "time", "epoch milliseconds"},
		{"time as a float", "POST", "/v1/annotations", `{"time": 1.5e12, "text": "x"}`, "time", "epoch milliseconds"},
		{"seconds, not milliseconds", "POST", "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "x"}`, now/1000), "time", "before the year 2000"},
		{"end before start", "POST", "/v1/annotations", fmt.Sprintf(`{"time": %d, "timeEnd": %d, "text": "x"}`, now, now-1000), "timeEnd", "before time"},
		{"text too long", "POST", "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": %q}`, now, long), "text", "more than the 1000"},
		{"empty text", "POST", "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "  "}`, now), "text", "empty"},
		{"too many tags", "POST", "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "x", "tags": ["1","2","3","4","5","6","7","8","9","10","11"]}`, now), "tags", "more than the 10"},
		{"a tag not a string", "POST", "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "x", "tags": ["ok", 3]}`, now), "tags[1]", "must be a string"},
		{"a tag too long", "POST", "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "x", "tags": [%q]}`, now, strings.Repeat("t", 51)), "tags[0]", "more than the 50"},
		{"unknown moment", "POST", "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "x", "moment": "nmot"}`, now), "moment", "unknown moment"},
		{"unknown channel", "POST", "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "x", "channel": "fax"}`, now), "channel", "unknown channel"},
		{"unknown field", "POST", "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "x", "dashboardUID": "a"}`, now), "dashboardUID", "unknown field"},
		{"a field in another case", "POST", "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "x", "timeend": 1}`, now), "timeend", `did you mean "timeEnd"`},
		{"not an object", "POST", "/v1/annotations", `[1]`, "body", "one JSON object"},
		{"PATCH: end before start", "PATCH", "/v1/annotations/" + id, fmt.Sprintf(`{"timeEnd": %d}`, now-60000), "timeEnd", "before time"},
		{"PATCH: a malformed id", "PATCH", "/v1/annotations/nope", `{"text": "y"}`, "id", "16 hex digits"},
		{"GET: bad from", "GET", "/v1/annotations?from=soon", "", "from", "epoch milliseconds"},
		{"GET: to before from", "GET", fmt.Sprintf("/v1/annotations?from=%d&to=%d", now, now-1), "", "to", "before from"},
		{"GET: limit over the maximum", "GET", "/v1/annotations?limit=1001", "", "limit", "1 to 1000"},
		{"GET: unknown parameter", "GET", "/v1/annotations?dashboardId=3", "", "dashboardId", "unknown parameter"},
		{"GET: unknown channel", "GET", "/v1/annotations?channel=fax", "", "channel", "unknown channel"},
		{"impact: unknown window", "GET", "/v1/annotations/" + id + "/impact?window=2d", "", "window", "one of 5m"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := n.annotationCall(t, c.method, c.path, c.body)
			var e struct{ Error, Field string }
			if a.status != http.StatusBadRequest || json.Unmarshal([]byte(a.body), &e) != nil || e.Field != c.field || !strings.Contains(e.Error, c.says) {
				t.Errorf("%d %s; want 400 naming field %q and saying %q", a.status, a.body, c.field, c.says)
			}
		})
	}
	if got := n.listAnnotations(t, ""); len(got) != 1 {
		t.Errorf("refused requests stored something: %d annotations, want 1", len(got))
	}
}

// TestAnnotationsAccess: display tokens read and never write; a credential's writes are bounded.
func TestAnnotationsAccess(t *testing.T) {
	n := startAnnotationNode(t, 3)
	a := n.annotationCall(t, http.MethodPost, "/v1/display-tokens", `{"name":"Wall"}`)
	var tok createdToken
	if a.status != http.StatusCreated || json.Unmarshal([]byte(a.body), &tok) != nil {
		t.Fatalf("create display token: %d %s", a.status, a.body)
	}
	body := fmt.Sprintf(`{"time": %d, "text": "x"}`, time.Now().UnixMilli())
	display := []string{"Authorization", "Bearer " + tok.Token, "Content-Type", "application/json"}
	if a := n.do(t, http.MethodPost, "/v1/annotations", body, display...); a.status != http.StatusForbidden {
		t.Errorf("POST with a display token: %d, want 403", a.status)
	}
	if a := n.do(t, http.MethodPost, "/v1/annotations", body); a.status != http.StatusUnauthorized {
		t.Errorf("POST without credentials: %d, want 401", a.status)
	}
	if a := n.do(t, http.MethodGet, "/v1/annotations", "", display...); a.status != http.StatusOK {
		t.Errorf("GET with a display token: %d, want 200: %s", a.status, a.body)
	}
	for i := range 3 {
		if a := n.annotationCall(t, http.MethodPost, "/v1/annotations", body); a.status != http.StatusCreated {
			t.Fatalf("create %d of the 3 allowed per minute: %d %s", i+1, a.status, a.body)
		}
	}
	a = n.annotationCall(t, http.MethodPost, "/v1/annotations", body)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "3 annotation changes per minute") {
		t.Errorf("the 4th create within a minute: %d (Retry-After %q) %s; want 429", a.status, a.header.Get("Retry-After"), a.body)
	}
	if got := n.listAnnotations(t, ""); len(got) != 3 {
		t.Errorf("%d annotations stored, want 3", len(got))
	}
}

// TestAnnotationImpact: a fix deployed between bad and good answers shows as a significant
// rise of CSAT after it, with the n of both windows.
func TestAnnotationImpact(t *testing.T) {
	n := startAnnotationNode(t, 100)
	fix := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Minute)
	var evs []string
	for i := range 200 {
		csat := 1 // before the fix: unhappy
		at := fix.Add(-4*time.Minute + time.Duration(i)*time.Second)
		if i >= 100 {
			csat, at = 5, fix.Add(time.Minute+time.Duration(i-100)*time.Second)
		}
		evs = append(evs, fmt.Sprintf(`{"event_id":"imp-%d","occurred_at":%q,"moment":"service","channel":"voice","touchpoint":"call","csat":%d}`,
			i, at.Format(time.RFC3339), csat))
	}
	n.mustPost(t, jsonArray(evs), "Authorization", "Bearer "+testKey).accepted(t, 200, 0)
	n.settle(t)

	a := n.annotationCall(t, http.MethodPost, "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "IVR fix", "channel": "voice"}`, fix.UnixMilli()))
	id := decodeAnnotation(t, a).ID
	a = n.annotationCall(t, http.MethodGet, "/v1/annotations/"+id+"/impact?window=5m", "")
	var imp annotation.Impact
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &imp) != nil {
		t.Fatalf("impact: %d %s", a.status, a.body)
	}
	if !imp.Before.From.Equal(fix.Add(-5*time.Minute)) || len(imp.Comparisons) != 1 || imp.Comparisons[0].Period != "after" {
		t.Fatalf("impact windows: %s", a.body)
	}
	var csat annotation.Change
	for _, c := range imp.Comparisons[0].Changes {
		if c.Figure == "csat" {
			csat = c
		}
	}
	j := csat.Judgement
	if csat.Before.N != 100 || csat.After.N != 100 || csat.Before.Value != 0 || csat.After.Value != 1 || !csat.Delta.OK || csat.Delta.By != 1 ||
		!j.Tested || j.P >= 0.001 || j.Verdict != "better" {
		t.Errorf("CSAT before → after the fix: %+v; want 0 → 100%% on 100 answers each, significantly better", csat)
	}
	// A scope with no events: the figures say "not enough data", never a change.
	a = n.annotationCall(t, http.MethodPost, "/v1/annotations", fmt.Sprintf(`{"time": %d, "text": "web release", "channel": "web"}`, fix.UnixMilli()))
	a = n.annotationCall(t, http.MethodGet, "/v1/annotations/"+decodeAnnotation(t, a).ID+"/impact?window=5m", "")
	if a.status != http.StatusOK || !strings.Contains(a.body, `"figure":"csat","before":{"value":null,"n":0}`) || !strings.Contains(a.body, `"reason":"too_few"`) {
		t.Errorf("impact of an empty scope: %d %s", a.status, a.body)
	}
}
