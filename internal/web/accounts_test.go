package web_test

// Tests of accounts: the admin API of /v1/accounts, signing in with a username and password,
// the throttle per username, and what deleting or changing an account does to its sessions
// and live screens, across two nodes sharing one ClickHouse database.

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

func TestAccountsAPI(t *testing.T) {
	db := storetest.Open(t)
	const refresh = 100 * time.Millisecond
	n := startAccessNode(t, db, refresh, adminToken, func(o *web.Options) {
		o.Live = web.LiveOptions{PingInterval: 100 * time.Millisecond, WriteTimeout: time.Second}
		o.AuthFailuresPerMinute = 5
		o.TrustedProxies = []string{"127.0.0.1"} // so the test can speak from several addresses
	})
	other := startAccessNode(t, db, refresh, adminToken)
	bearer := []string{"Authorization", "Bearer " + adminToken, "Content-Type", "application/json"}

	t.Run("bad input names the field", func(t *testing.T) {
		for _, tc := range []struct{ body, field, says string }{
			{`{"username":"Maria","role":"viewer","password":"long enough pw"}`, "username", "lower-case"},
			{`{"role":"viewer","password":"long enough pw"}`, "username", "is required"},
			{`{"username":"maria","role":"owner","password":"long enough pw"}`, "role", `"viewer" or "admin"`},
			{`{"username":"maria","role":"viewer","password":"short"}`, "password", "at least 10"},
		} {
			a := n.do(t, http.MethodPost, "/v1/accounts", tc.body, bearer...)
			var e struct{ Error, Field string }
			if a.status != http.StatusBadRequest || json.Unmarshal([]byte(a.body), &e) != nil || e.Field != tc.field || !strings.Contains(e.Error, tc.says) {
				t.Errorf("%s: %d %s; want 400 naming %s and saying %q", tc.body, a.status, a.body, tc.field, tc.says)
			}
		}
		a := n.do(t, http.MethodPost, "/v1/accounts", `{"username":"maria","rôle":"viewer"}`, bearer...)
		if a.status != http.StatusBadRequest || !strings.Contains(a.body, "rôle") {
			t.Errorf("an unknown field: %d %s; want 400 naming it", a.status, a.body)
		}
	})

	vera := n.createAccount(t, "vera", "viewer", "viewer password")
	ada := n.createAccount(t, "ada", "admin", "admin password")

	t.Run("list shows no password", func(t *testing.T) {
		a := n.do(t, http.MethodGet, "/v1/accounts", "", bearer...)
		if a.status != http.StatusOK || !strings.Contains(a.body, `"username":"vera"`) || !strings.Contains(a.body, `"role":"admin"`) {
			t.Fatalf("list: %d %s", a.status, a.body)
		}
		if strings.Contains(a.body, "argon2") || strings.Contains(a.body, "password") {
			t.Errorf("the list shows a password or its hash: %s", a.body)
		}
		if a := n.do(t, http.MethodPost, "/v1/accounts", `{"username":"vera","role":"viewer","password":"another password"}`, bearer...); a.status != http.StatusConflict || !strings.Contains(a.body, "taken") {
			t.Errorf("a second vera: %d %s; want 409", a.status, a.body)
		}
	})

	t.Run("me", func(t *testing.T) {
		session := n.signIn(t, "vera", "viewer password")
		a := n.do(t, http.MethodGet, "/v1/me", "", "Cookie", web.SessionCookie+"="+session)
		if a.status != http.StatusOK || !strings.Contains(a.body, `"role":"viewer"`) || !strings.Contains(a.body, `"username":"vera"`) || !strings.Contains(a.body, `"can_admin":false`) {
			t.Errorf("GET /v1/me as vera: %d %s", a.status, a.body)
		}
	})

	t.Run("the last admin stays", func(t *testing.T) {
		if a := n.do(t, http.MethodDelete, "/v1/accounts/"+ada, "", bearer...); a.status != http.StatusConflict || !strings.Contains(a.body, "only admin") {
			t.Errorf("delete the only admin: %d %s; want 409", a.status, a.body)
		}
		if a := n.do(t, http.MethodPatch, "/v1/accounts/"+ada, `{"role":"viewer"}`, bearer...); a.status != http.StatusConflict {
			t.Errorf("demote the only admin: %d %s; want 409", a.status, a.body)
		}
	})

	t.Run("the admin token signs in on the form only before the first admin account", func(t *testing.T) {
		a := n.login(t, adminToken, "/")
		if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "only until the first admin account exists") || sessionCookie(a.header) != nil {
			t.Errorf("token sign-in with an admin account present: %d %.300s", a.status, a.body)
		}
	})

	t.Run("throttled per username across addresses", func(t *testing.T) {
		n.createAccount(t, "target", "viewer", "target password")
		// Wrong passwords from five client addresses, one each: the sixth try, from a sixth
		// address, is refused even with the right password.
		for i := 0; i < 5; i++ {
			csrf := n.csrfToken(t)
			a := n.postForm(t, "/login", url.Values{"username": {"target"}, "password": {"wrong password"}, web.CSRFField: {csrf}},
				"Cookie", web.CSRFCookie+"="+csrf, "X-Forwarded-For", "10.0.0."+strconv.Itoa(i+1))
			if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "Wrong username or password") {
				t.Fatalf("wrong password %d: %d %.200s", i, a.status, a.body)
			}
		}
		csrf := n.csrfToken(t)
		a := n.postForm(t, "/login", url.Values{"username": {"target"}, "password": {"target password"}, web.CSRFField: {csrf}},
			"Cookie", web.CSRFCookie+"="+csrf, "X-Forwarded-For", "10.0.0.99")
		if a.status != http.StatusTooManyRequests || sessionCookie(a.header) != nil || a.header.Get("Retry-After") == "" {
			t.Errorf("after 5 wrong passwords: %d %.300s; want 429 with Retry-After", a.status, a.body)
		}
	})

	t.Run("deleting an account ends its sessions and live screens on every node", func(t *testing.T) {
		session := n.signIn(t, "vera", "viewer password")
		conn := openScreen(t, n.wsURL(""), http.Header{"Cookie": {web.SessionCookie + "=" + session}})
		closed := make(chan int, 1)
		go func() { closed <- closeCodeOf(conn) }() // reading answers the server's pings meanwhile
		if a := other.do(t, http.MethodGet, "/v1/stats", "", "Cookie", web.SessionCookie+"="+session); a.status != http.StatusOK {
			t.Fatalf("vera on the other node: %d %s", a.status, a.body)
		}
		if a := n.do(t, http.MethodDelete, "/v1/accounts/"+vera, "", bearer...); a.status != http.StatusNoContent {
			t.Fatalf("delete vera: %d %s", a.status, a.body)
		}
		if code := <-closed; code != 4401 {
			t.Fatalf("vera's screen ended with close %d, want 4401", code)
		}
		a := n.do(t, http.MethodGet, "/v1/stats", "", "Cookie", web.SessionCookie+"="+session)
		if a.status != http.StatusUnauthorized || !strings.Contains(a.body, `"reason":"revoked"`) {
			t.Errorf("vera's session after deletion: %d %s; want 401 with reason revoked", a.status, a.body)
		}
		eventually(t, 10*time.Second, func() bool {
			return other.do(t, http.MethodGet, "/v1/stats", "", "Cookie", web.SessionCookie+"="+session).status == http.StatusUnauthorized
		}, "the other node refuses vera's session")
	})

	t.Run("a password change ends the sessions before it", func(t *testing.T) {
		id := n.createAccount(t, "paula", "viewer", "first password")
		old := n.signIn(t, "paula", "first password")
		time.Sleep(1100 * time.Millisecond) // sessions and changes are compared to the second
		if a := n.do(t, http.MethodPatch, "/v1/accounts/"+id, `{"password":"second password"}`, bearer...); a.status != http.StatusOK {
			t.Fatalf("change paula's password: %d %s", a.status, a.body)
		}
		if a := n.do(t, http.MethodGet, "/v1/me", "", "Cookie", web.SessionCookie+"="+old); a.status != http.StatusUnauthorized {
			t.Errorf("the session from before the change: %d %s; want 401", a.status, a.body)
		}
		fresh := n.signIn(t, "paula", "second password")
		if a := n.do(t, http.MethodGet, "/v1/me", "", "Cookie", web.SessionCookie+"="+fresh); a.status != http.StatusOK {
			t.Errorf("a session after the change: %d %s", a.status, a.body)
		}
	})
}

// openScreen opens a live connection, subscribes to the TV view and reads its snapshot.
func openScreen(t *testing.T, wsURL string, h http.Header) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(wsURL, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","view":"tv","window":"5m"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.ReadMessage(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return conn
}

// closeCodeOf reads until the connection closes, within 15 s, and returns its close code (0:
// it ended without a close frame).
func closeCodeOf(conn *websocket.Conn) int {
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		return 0
	}
}
