package web_test

// Who may call what: every route of the server, taken from its router, called with every kind
// of credential. A new route without a rule here fails the test.

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/alert/evaluator"
	fleetpkg "github.com/truthboard/truthboard/internal/screen"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

// caller is one kind of credential a request may carry.
type caller struct {
	name    string
	headers []string // name, value pairs
}

// Who a route admits.
const (
	public      = "anyone"
	readers     = "readers"     // display tokens, viewers, admins
	admins      = "admins"      // admin accounts, the admin token
	adminToken_ = "admin token" // the admin token as a bearer token only
	ingesters   = "ingest keys"
)

// routeRules say who may call each route of the server.
var routeRules = map[string]string{
	"GET /livez":                               public,
	"GET /readyz":                              public,
	"GET /metrics":                             adminToken_,
	"POST /v1/events":                          ingesters,
	"GET /v1/metrics":                          readers,
	"GET /v1/consistency":                      readers,
	"GET /v1/stats":                            readers,
	"GET /v1/live":                             readers,
	"GET /v1/me":                               readers,
	"GET /v1/filter-values":                    readers,
	"GET /login":                               public,
	"POST /login":                              public,
	"POST /logout":                             public,
	"GET /v1/accounts":                         admins,
	"POST /v1/accounts":                        admins,
	"PATCH /v1/accounts/:id":                   admins,
	"DELETE /v1/accounts/:id":                  admins,
	"GET /v1/display-tokens":                   admins,
	"POST /v1/display-tokens":                  admins,
	"DELETE /v1/display-tokens/:id":            admins,
	"GET /v1/ingest-keys":                      admins,
	"POST /v1/ingest-keys":                     admins,
	"DELETE /v1/ingest-keys/:id":               admins,
	"GET /v1/alerts":                           readers,
	"GET /v1/alerts/history":                   readers,
	"GET /v1/alert-rules":                      readers,
	"GET /v1/silences":                         readers,
	"POST /v1/alerts/:fingerprint/acknowledge": admins,
	"PUT /v1/alert-rules":                      admins,
	"POST /v1/silences":                        admins,
	"DELETE /v1/silences/:id":                  admins,
	"GET /":                                    public,
	"GET /executive":                           public,
	"GET /drilldown":                           public,
	"GET /tv":                                  public,
	"GET /assets/*":                            public,
	"GET /admin":                               public, // the page has no data; its calls are admins'
	"GET /screens":                             public, // likewise
	"GET /v1/screens/pairing":                  public, // a TV without a credential waits for its code
	"POST /v1/screens/pair":                    admins,
	"GET /v1/screens":                          admins,
	"POST /v1/screens/commands":                admins,
	"POST /v1/screens/:id/commands":            admins,
	"GET /v1/screens/:id/commands":             admins,
	"DELETE /v1/screens/:id":                   admins,
	"PATCH /v1/screens/:id":                    admins,
	"GET /v1/playlists":                        admins,
	"PUT /v1/playlists/:name":                  admins,
	"DELETE /v1/playlists/:name":               admins,
	"GET /v1/annotations":                      readers,
	"GET /v1/annotations/:id":                  readers,
	"GET /v1/annotations/:id/impact":           readers,
	"POST /v1/annotations":                     admins,
	"PATCH /v1/annotations/:id":                admins,
	"DELETE /v1/annotations/:id":               admins,
}

// admitted are the callers each rule admits.
var admitted = map[string][]string{
	public:      {"no credential", "ingest key", "display token", "viewer", "admin", "admin token"},
	readers:     {"display token", "viewer", "admin", "admin token"},
	admins:      {"admin", "admin token"},
	adminToken_: {"admin token"},
	ingesters:   {"ingest key"},
}

func TestRoutesRequireTheirRole(t *testing.T) {
	db := storetest.Open(t)
	ev := startEvaluator(t, db, `{"defaults": true}`)
	var fleet *fleetpkg.Fleet
	n := startAccessNode(t, db, time.Second, adminToken, func(o *web.Options) {
		o.Alerts, o.AlertHistory, o.FilterValues = ev, db, db
		o.Annotations = web.AnnotationOptions{Store: db}
		fleet = fleetpkg.New(db, fleetpkg.Options{Node: "test"}, slog.New(slog.DiscardHandler))
		o.Screens = web.ScreenOptions{Fleet: fleet}
	})
	fleet.Start()
	t.Cleanup(fleet.Stop)
	bearer := "Bearer " + adminToken

	display := n.createDisplayToken(t, "Wall 3")
	n.createAccount(t, "vera", "viewer", "viewer password")
	n.createAccount(t, "ada", "admin", "admin password")
	viewerSession := n.signIn(t, "vera", "viewer password")
	adminSession := n.signIn(t, "ada", "admin password")
	csrf := n.csrfToken(t)
	cookie := func(session string) []string {
		return []string{"Cookie", web.SessionCookie + "=" + session + "; " + web.CSRFCookie + "=" + csrf}
	}
	callers := []caller{
		{"no credential", []string{"Cookie", web.CSRFCookie + "=" + csrf}},
		{"ingest key", []string{"Authorization", "Bearer " + testKey, "Cookie", web.CSRFCookie + "=" + csrf}},
		{"display token", []string{"Authorization", "Bearer " + display, "Cookie", web.CSRFCookie + "=" + csrf}},
		{"viewer", cookie(viewerSession)},
		{"admin", cookie(adminSession)},
		{"admin token", []string{"Authorization", bearer, "Cookie", web.CSRFCookie + "=" + csrf}},
	}

	routes := n.srv.Routes()
	if len(routes) < 30 {
		t.Fatalf("only %d routes listed: %v", len(routes), routes)
	}
	for _, r := range routes {
		key := r.Method + " " + r.Path
		rule, ok := routeRules[key]
		if !ok {
			t.Errorf("route %s has no rule of who may call it: add it to routeRules", key)
			continue
		}
		t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
			path := strings.NewReplacer(":id", "0123456789abcdef", ":name", "wall", ":fingerprint", "0123456789abcdef", "*", "js/live.js").Replace(r.Path)
			for _, c := range callers {
				headers := append([]string{"Origin", n.url, web.CSRFHeader, csrf}, c.headers...)
				body := "{}"
				switch {
				case r.Path == "/login" && r.Method == http.MethodPost:
					// A sign-in with right credentials: it works whoever asks.
					body = url.Values{"username": {"vera"}, "password": {"viewer password"}, web.CSRFField: {csrf}}.Encode()
					headers = append(headers, "Content-Type", "application/x-www-form-urlencoded")
				default:
					headers = append(headers, "Content-Type", "application/json")
				}
				var a answerOf
				if r.Path == "/v1/live" {
					a.status = n.dialStatus(t, headers)
				} else {
					a = n.do(t, r.Method, path, body, headers...)
				}
				refused := a.status == http.StatusUnauthorized || a.status == http.StatusForbidden
				want := slices.Contains(admitted[rule], c.name)
				if refused == want {
					t.Errorf("%s by %s: %d (%.150s); the route admits %s", key, c.name, a.status, a.body, rule)
				}
			}
		})
	}
	for key := range routeRules {
		if !slices.ContainsFunc(routes, func(r web.Route) bool { return r.Method+" "+r.Path == key }) {
			t.Errorf("routeRules has %s, which the server does not serve", key)
		}
	}
}

// dialStatus opens /v1/live with headers (name, value pairs) and returns the handshake's status.
func (n *accessNode) dialStatus(t *testing.T, headers []string) int {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] != "Content-Type" {
			h.Set(headers[i], headers[i+1])
		}
	}
	conn, resp, err := websocket.DefaultDialer.Dial(n.wsURL(""), h)
	if conn != nil {
		conn.Close()
	}
	if resp == nil {
		t.Fatalf("no HTTP answer to the handshake: %v", err)
	}
	return resp.StatusCode
}

// createDisplayToken creates a display token with the admin token and returns it.
func (n *accessNode) createDisplayToken(t *testing.T, name string) string {
	t.Helper()
	a := n.do(t, http.MethodPost, "/v1/display-tokens", `{"name":"`+name+`"}`, "Authorization", "Bearer "+adminToken, "Content-Type", "application/json")
	var tok struct{ Token string }
	if a.status != http.StatusCreated || json.Unmarshal([]byte(a.body), &tok) != nil {
		t.Fatalf("create a display token: %d %s", a.status, a.body)
	}
	return tok.Token
}

// createAccount creates an account with the admin token and returns its id.
func (n *accessNode) createAccount(t *testing.T, username, role, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": username, "role": role, "password": password})
	a := n.do(t, http.MethodPost, "/v1/accounts", string(body), "Authorization", "Bearer "+adminToken, "Content-Type", "application/json")
	var acc struct{ ID string }
	if a.status != http.StatusCreated || json.Unmarshal([]byte(a.body), &acc) != nil {
		t.Fatalf("create account %s: %d %s", username, a.status, a.body)
	}
	return acc.ID
}

// signIn posts the sign-in form with a username and password and returns the session.
func (n *accessNode) signIn(t *testing.T, username, password string) string {
	t.Helper()
	csrf := n.csrfToken(t)
	a := n.postForm(t, "/login", url.Values{"username": {username}, "password": {password}, "next": {"/"}, web.CSRFField: {csrf}},
		"Cookie", web.CSRFCookie+"="+csrf)
	c := sessionCookie(a.header)
	if a.status != http.StatusSeeOther || c == nil {
		t.Fatalf("sign in as %s: %d %.300s", username, a.status, a.body)
	}
	return c.Value
}

// startEvaluator runs an alert evaluator of the rules (JSON) on db until the test ends.
func startEvaluator(t *testing.T, db *store.Store, rulesJSON string) *evaluator.Evaluator {
	t.Helper()
	rules, err := alert.ParseRules([]byte(rulesJSON))
	if err != nil {
		t.Fatal(err)
	}
	engine, err := alert.NewEngine(alert.Config{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	ev := evaluator.New(engine, db, evaluator.Options{PublicURL: "http://truthboard.test"}, slog.New(slog.DiscardHandler))
	ev.Start(context.Background())
	t.Cleanup(ev.Stop)
	return ev
}
