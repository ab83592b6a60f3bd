package web_test

// Tests of stored ingest keys: added and revoked through the admin API while two nodes share
// one ClickHouse database, beside the configured keys.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

// createdKey is the answer of POST /v1/ingest-keys.
type createdKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked"`
}

// createKey adds a stored ingest key through the admin API of n.
func (n *accessNode) createKey(t *testing.T, name string) createdKey {
	t.Helper()
	a := n.do(t, http.MethodPost, "/v1/ingest-keys", `{"name":"`+name+`"}`, "Authorization", "Bearer "+adminToken, "Content-Type", "application/json")
	var k createdKey
	dec := json.NewDecoder(strings.NewReader(a.body))
	dec.DisallowUnknownFields()
	if a.status != http.StatusCreated || dec.Decode(&k) != nil {
		t.Fatalf("create ingest key: %d: %s", a.status, a.body)
	}
	if k.Name != name || !strings.HasPrefix(k.Key, "tbi_"+k.ID+"_") || len(k.ID) != 16 || k.Revoked ||
		time.Since(k.CreatedAt) > time.Minute || a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create answered %+v, Cache-Control %q", k, a.header.Get("Cache-Control"))
	}
	return k
}

// ingestStatus posts one valid event with key and returns the status.
func (n *accessNode) ingestStatus(t *testing.T, key, prefix string) int {
	t.Helper()
	_, evs := batch(prefix, 1, base())
	return n.mustPost(t, jsonArray(evs), "Authorization", "Bearer "+key).status
}

func TestIngestKeys(t *testing.T) {
	db := storetest.Open(t)
	const refresh = 200 * time.Millisecond
	n := startAccessNode(t, db, refresh, adminToken)
	other := startAccessNode(t, db, refresh, adminToken) // another node behind the load balancer
	bearer := "Bearer " + adminToken

	k := n.createKey(t, "web-checkout")
	secret := strings.TrimPrefix(k.Key, "tbi_"+k.ID+"_")

	// The node that created it takes it at once; the other within one refresh.
	if got := n.ingestStatus(t, k.Key, "created"); got != http.StatusAccepted {
		t.Fatalf("POST /v1/events with the new key on the node that created it: %d, want 202", got)
	}
	eventually(t, 5*refresh, func() bool { return other.ingestStatus(t, k.Key, "other") == http.StatusAccepted },
		"the other node to accept the new key")
	if got := n.ingestStatus(t, testKey, "configured"); got != http.StatusAccepted {
		t.Errorf("a configured key beside the stored ones: %d, want 202", got)
	}

	t.Run("list shows no keys", func(t *testing.T) {
		a := n.do(t, http.MethodGet, "/v1/ingest-keys", "", "Authorization", bearer)
		var list struct {
			IngestKeys []createdKey `json:"ingest_keys"`
		}
		if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &list) != nil || len(list.IngestKeys) != 1 ||
			list.IngestKeys[0].ID != k.ID || list.IngestKeys[0].Name != "web-checkout" {
			t.Fatalf("list: %d: %s", a.status, a.body)
		}
		if strings.Contains(a.body, secret) || strings.Contains(a.body, `"key"`) || strings.Contains(a.body, "sha256") {
			t.Errorf("the list shows a key: %s", a.body)
		}
	})

	t.Run("what a key may do", func(t *testing.T) {
		for _, r := range []struct{ method, path, body string }{
			{http.MethodGet, "/v1/metrics?window=5m", ""},
			{http.MethodGet, "/v1/ingest-keys", ""},
			{http.MethodPost, "/v1/ingest-keys", `{"name":"mine"}`},
			{http.MethodDelete, "/v1/ingest-keys/" + k.ID, ""},
			{http.MethodGet, "/v1/display-tokens", ""},
		} {
			if a := n.do(t, r.method, r.path, r.body, "Authorization", "Bearer "+k.Key, "Content-Type", "application/json"); a.status != http.StatusUnauthorized {
				t.Errorf("%s %s with a stored ingest key: %d, want 401: %s", r.method, r.path, a.status, a.body)
			}
		}
		if a := n.login(t, k.Key, "/"); a.status != http.StatusUnauthorized {
			t.Errorf("sign-in with an ingest key: %d, want 401", a.status)
		}
		tok := n.do(t, http.MethodPost, "/v1/display-tokens", `{"name":"Wall"}`, "Authorization", bearer)
		var dt createdToken
		if json.Unmarshal([]byte(tok.body), &dt) != nil || dt.Token == "" {
			t.Fatalf("create display token: %d %s", tok.status, tok.body)
		}
		if got := n.ingestStatus(t, dt.Token, "display"); got != http.StatusUnauthorized {
			t.Errorf("POST /v1/events with a display token: %d, want 401", got)
		}
		for _, h := range []string{"Bearer " + dt.Token, "Bearer " + testKey} {
			if a := n.do(t, http.MethodPost, "/v1/ingest-keys", `{"name":"x"}`, "Authorization", h); a.status != http.StatusForbidden && a.status != http.StatusUnauthorized {
				t.Errorf("create an ingest key with %.14s…: %d, want 401 or 403", h, a.status)
			}
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name, body, field, says string
		}{
			{"no name", `{}`, "name", `name the sender, e.g. \"web-checkout\"`},
			{"too long", `{"name":"` + strings.Repeat("x", 65) + `"}`, "name", "at most 64"},
			{"unknown field", `{"name":"x","key":"mine"}`, "", `{\"name\": \"web-checkout\"}`},
		} {
			a := n.do(t, http.MethodPost, "/v1/ingest-keys", tc.body, "Authorization", bearer, "Content-Type", "application/json")
			var e struct{ Error, Field string }
			if a.status != http.StatusBadRequest || json.Unmarshal([]byte(a.body), &e) != nil || e.Field != tc.field || !strings.Contains(a.body, tc.says) {
				t.Errorf("%s: %d: %s; want 400 naming %q and saying %q", tc.name, a.status, a.body, tc.field, tc.says)
			}
		}
		if a := n.do(t, http.MethodDelete, "/v1/ingest-keys/nope", "", "Authorization", bearer); a.status != http.StatusBadRequest ||
			!strings.Contains(a.body, "an ingest key's id (see GET /v1/ingest-keys)") {
			t.Errorf("DELETE bad id: %d: %s", a.status, a.body)
		}
		if a := n.do(t, http.MethodDelete, "/v1/ingest-keys/00000000deadbeef", "", "Authorization", bearer); a.status != http.StatusNotFound ||
			!strings.Contains(a.body, "no ingest key has the id") {
			t.Errorf("DELETE unknown id: %d: %s", a.status, a.body)
		}
	})

	t.Run("session needs a CSRF token", func(t *testing.T) {
		session := sessionCookie(n.login(t, adminToken, "/", "Origin", n.url).header)
		if session == nil {
			t.Fatal("no session")
		}
		cookie := web.SessionCookie + "=" + session.Value
		if a := n.do(t, http.MethodPost, "/v1/ingest-keys", `{"name":"x"}`, "Cookie", cookie, "Origin", n.url); a.status != http.StatusForbidden ||
			!strings.Contains(a.body, "CSRF check failed") {
			t.Errorf("create with a session and no CSRF token: %d %s, want 403", a.status, a.body)
		}
		csrf := n.csrfToken(t)
		if a := n.do(t, http.MethodPost, "/v1/ingest-keys", `{"name":"from the browser"}`, "Cookie", cookie+"; "+web.CSRFCookie+"="+csrf,
			web.CSRFHeader, csrf, "Origin", n.url); a.status != http.StatusCreated {
			t.Errorf("create with a session and its CSRF token: %d %s, want 201", a.status, a.body)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		if a := n.do(t, http.MethodDelete, "/v1/ingest-keys/"+k.ID, "", "Authorization", bearer); a.status != http.StatusNoContent {
			t.Fatalf("revoke: %d: %s", a.status, a.body)
		}
		revokedAt := time.Now()
		if got := n.ingestStatus(t, k.Key, "revoked"); got != http.StatusUnauthorized {
			t.Errorf("revoking node: POST /v1/events %d, want 401", got)
		}
		eventually(t, 5*refresh, func() bool { return other.ingestStatus(t, k.Key, "revoked-other") == http.StatusUnauthorized },
			"the other node to refuse the revoked key")
		t.Logf("refused by the other node %s after the revocation (refresh %s)", time.Since(revokedAt).Round(time.Millisecond), refresh)
		if got := n.ingestStatus(t, testKey, "configured-after"); got != http.StatusAccepted {
			t.Errorf("a configured key after a revocation: %d, want 202", got)
		}
		a := n.do(t, http.MethodGet, "/v1/ingest-keys", "", "Authorization", bearer)
		if !strings.Contains(a.body, `"id":"`+k.ID+`","name":"web-checkout"`) || !strings.Contains(a.body, `"revoked":true,"revoked_at":"`) {
			t.Errorf("list after revoking: %s", a.body)
		}
	})
}

// The rate limit is per key: a stored key over its limit does not slow another key.
func TestIngestKeyRateLimit(t *testing.T) {
	n := startAccessNode(t, storetest.Open(t), time.Second, adminToken, func(o *web.Options) { o.IngestRate = 2 })
	a, b := n.createKey(t, "busy"), n.createKey(t, "quiet")
	var statuses []int
	for i := range 3 {
		statuses = append(statuses, n.ingestStatus(t, a.Key, "busy"+string(rune('a'+i))))
	}
	if statuses[0] != http.StatusAccepted || statuses[2] != http.StatusTooManyRequests {
		t.Fatalf("three requests in a second with a limit of 2: %v, want 202 first and 429 last", statuses)
	}
	if got := n.ingestStatus(t, b.Key, "quiet"); got != http.StatusAccepted {
		t.Errorf("another stored key while the first is limited: %d, want 202", got)
	}
	if got := n.ingestStatus(t, testKey, "configured"); got != http.StatusAccepted {
		t.Errorf("a configured key while a stored one is limited: %d, want 202", got)
	}
}
