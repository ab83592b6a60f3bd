package web_test

// The screens' API against a real server and ClickHouse: pairing over a real WebSocket, the bad
// input of pairing, commands and playlists, and the bounds a client without a credential meets.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/store/storetest"
)

// pairingTV is a TV waiting for pairing: its socket and the code it was given.
type pairingTV struct {
	conn *websocket.Conn
	code string
}

func openPairing(t *testing.T, n *accessNode) *pairingTV {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.url, "http")+"/v1/screens/pairing", nil)
	if err != nil {
		t.Fatalf("dial the pairing socket: %v (%v)", err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	var m struct{ Type, Code string }
	if err := conn.ReadJSON(&m); err != nil || m.Type != "code" || len(m.Code) != 6 {
		t.Fatalf("first message = %+v, %v; want a code", m, err)
	}
	return &pairingTV{conn: conn, code: m.Code}
}

func bearer() []string {
	return []string{"Authorization", "Bearer " + adminToken, "Content-Type", "application/json"}
}

// wantError checks an answer's status, field and that its message names what is wrong.
func wantError(t *testing.T, a answerOf, status int, field, says string) {
	t.Helper()
	var e struct{ Error, Field string }
	_ = json.Unmarshal([]byte(a.body), &e)
	if a.status != status || e.Field != field || !strings.Contains(e.Error, says) {
		t.Errorf("answer %d %s; want %d with field %q saying %q", a.status, a.body, status, field, says)
	}
}

func TestScreensAPI(t *testing.T) {
	n, _ := startScreensNode(t)

	t.Run("pairing hands the TV its credential, once", func(t *testing.T) {
		tv := openPairing(t, n)
		a := n.do(t, "POST", "/v1/screens/pair", fmt.Sprintf(`{"code":%q,"name":"Lobby","show":{"view":"trends","window":"1h"}}`, tv.code), bearer()...)
		if a.status != 201 || !strings.Contains(a.body, `"name":"Lobby"`) {
			t.Fatalf("pair: %d %s", a.status, a.body)
		}
		var m struct {
			Type, Token string
			Screen      struct{ ID, Name string }
		}
		if err := tv.conn.ReadJSON(&m); err != nil || m.Type != "paired" || !strings.HasPrefix(m.Token, "tbd_"+m.Screen.ID+"_") {
			t.Fatalf("the TV got %+v, %v; want its display token", m, err)
		}
		// The token opens the live feed, and is read-only.
		if a := n.do(t, "GET", "/v1/stats", "", "Authorization", "Bearer "+m.Token); a.status != 200 {
			t.Errorf("GET /v1/stats with the TV's token: %d %s", a.status, a.body)
		}
		if a := n.do(t, "GET", "/v1/screens", "", "Authorization", "Bearer "+m.Token); a.status != 403 {
			t.Errorf("GET /v1/screens with the TV's display token: %d, want 403", a.status)
		}
		// The same code again is refused as used.
		a = n.do(t, "POST", "/v1/screens/pair", fmt.Sprintf(`{"code":%q,"name":"Again"}`, tv.code), bearer()...)
		wantError(t, a, 409, "code", "already used")
	})

	t.Run("bad input names the field", func(t *testing.T) {
		for _, tc := range []struct {
			body          string
			status        int
			field, saying string
		}{
			{`{"code":"AB1","name":"W"}`, 400, "code", "is not a pairing code"},
			{`{"code":"ABCDEF","name":""}`, 400, "name", "is required"},
			{`{"code":"ABCDEF","name":"W","show":{"view":"pie"}}`, 400, "show.view", `"pie" is not a view`},
			{`{"code":"ABCDEF","name":"W","show":{"view":"tv","filters":{"channel":["fax"]}}}`, 400, "show.filters.channel", "fax"},
			{`{"code":"ABCDEF","name":"W","show":{"view":"tv","window":"2d"}}`, 400, "show.window", "2d"},
		} {
			wantError(t, n.do(t, "POST", "/v1/screens/pair", tc.body, bearer()...), tc.status, tc.field, tc.saying)
		}
		for _, tc := range []struct {
			body          string
			field, saying string
		}{
			{`{"items":[{"view":"pie","dwell":"30s"}]}`, "items[0].view", `"pie"`},
			{`{"items":[{"view":"overview","dwell":"30s"},{"view":"heatmap","dwell":"30s","filters":{"colour":["red"]}}]}`, "items[1].filters.colour", "not a filter"},
			{`{"items":[{"view":"overview","dwell":"1s"}]}`, "items[0].dwell", "5s"},
			{`{"items":[]}`, "items", "at least one"},
			{`{"items":[{"view":"overview","dwell":"30s"}],"schedule":{"open":"8am","close":"20:00"}}`, "schedule.open", "HH:MM"},
			{`{"items":[{"view":"overview","dwell":"30s"}],"schedule":{"open":"08:00","close":"20:00","outside":"off"}}`, "schedule.outside", "blank"},
		} {
			wantError(t, n.do(t, "PUT", "/v1/playlists/Floor", tc.body, bearer()...), 400, tc.field, tc.saying)
		}
		if a := n.do(t, "PUT", "/v1/playlists/Floor", `{"items":[{"view":"overview","dwell":"30s"}],"colour":"red"}`, bearer()...); a.status != 400 || !strings.Contains(a.body, "colour") {
			t.Errorf("unknown field: %d %s; want 400 naming it", a.status, a.body)
		}
	})

	t.Run("commands to an offline screen wait, up to a bound, then are refused", func(t *testing.T) {
		tv := openPairing(t, n)
		a := n.do(t, "POST", "/v1/screens/pair", fmt.Sprintf(`{"code":%q,"name":"Basement"}`, tv.code), bearer()...)
		var sc struct{ ID string }
		if err := json.Unmarshal([]byte(a.body), &sc); err != nil || a.status != 201 {
			t.Fatalf("pair: %d %s", a.status, a.body)
		}
		tv.conn.Close() // the TV never connects with its credential: offline
		a = n.do(t, "POST", "/v1/screens/"+sc.ID+"/commands", `{"command":"show","show":{"playlist":"Nope"}}`, bearer()...)
		wantError(t, a, 400, "show.playlist", "no such playlist")
		wantError(t, n.do(t, "POST", "/v1/screens/"+sc.ID+"/commands", `{"command":"dance"}`, bearer()...), 400, "command", "reload")
		for i := range 16 {
			if a := n.do(t, "POST", "/v1/screens/"+sc.ID+"/commands", `{"command":"reload"}`, bearer()...); a.status != 202 || !strings.Contains(a.body, `"state":"queued"`) {
				t.Fatalf("command %d: %d %s; want 202 queued", i, a.status, a.body)
			}
		}
		a = n.do(t, "POST", "/v1/screens/"+sc.ID+"/commands", `{"command":"reload"}`, bearer()...)
		if a.status != 409 || !strings.Contains(a.body, "undeliverable") {
			t.Errorf("command 17: %d %s; want 409 undeliverable", a.status, a.body)
		}
		// Unpairing gives the queued ones up as undeliverable; none is left queued silently.
		if a := n.do(t, "DELETE", "/v1/screens/"+sc.ID, "", bearer()...); a.status != 202 {
			t.Fatalf("unpair: %d %s", a.status, a.body)
		}
		a = n.do(t, "GET", "/v1/screens/"+sc.ID+"/commands", "", bearer()...)
		if strings.Contains(a.body, `"queued"`) || strings.Count(a.body, `"undeliverable"`) != 17 {
			t.Errorf("commands after unpairing: %s; want 16 reloads and the unpair undeliverable", a.body)
		}
	})

	t.Run("a command to every screen, in one request", func(t *testing.T) {
		a := n.do(t, "POST", "/v1/screens/commands", `{"command":"identify"}`, bearer()...)
		if a.status != 202 || !strings.Contains(a.body, `"queued":1,`) || !strings.Contains(a.body, `"undeliverable":[]`) {
			t.Errorf("identify every screen: %d %s; want the one paired screen (Lobby) queued", a.status, a.body)
		}
		a = n.do(t, "POST", "/v1/screens/commands", `{"command":"reload","screens":["00000000deadbeef"]}`, bearer()...)
		if a.status != 202 || !strings.Contains(a.body, `"queued":0,`) || !strings.Contains(a.body, `{"screen":"00000000deadbeef","error":"no such screen"}`) {
			t.Errorf("reload an unknown screen: %d %s; want it reported undeliverable", a.status, a.body)
		}
		wantError(t, n.do(t, "POST", "/v1/screens/commands", `{"command":"unpair"}`, bearer()...), 400, "command", "reload, show, identify")
		wantError(t, n.do(t, "POST", "/v1/screens/commands", `{"command":"reload","screens":[]}`, bearer()...), 400, "screens", "leave it out")
	})

	t.Run("wrong codes are throttled per address", func(t *testing.T) {
		got429 := false
		for i := range 12 {
			a := n.do(t, "POST", "/v1/screens/pair", `{"code":"ZZZZZ9","name":"Guess"}`, bearer()...)
			if a.status == 429 {
				got429 = true
				if a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "too many wrong pairing codes") {
					t.Errorf("429 without Retry-After or reason: %v %s", a.header, a.body)
				}
				break
			}
			wantError(t, a, 404, "code", "no TV shows this code")
			if i >= 10 {
				t.Fatalf("guess %d still checked; want 429 after 10", i+1)
			}
		}
		if !got429 {
			t.Error("no 429 after 12 wrong codes")
		}
	})

	t.Run("TVs waiting for a code are bounded per address", func(t *testing.T) {
		for range 3 {
			openPairing(t, n)
		}
		_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.url, "http")+"/v1/screens/pairing", nil)
		if err == nil || resp == nil || resp.StatusCode != 429 {
			t.Errorf("a fourth TV from one address: %v %v; want 429", err, resp)
		}
	})
}

// A playlist edited while a screen shows it reaches the screen again.
func TestPlaylistFollowed(t *testing.T) {
	n, _ := startScreensNode(t)
	if a := n.do(t, "PUT", "/v1/playlists/Floor", `{"items":[{"view":"overview","dwell":"30s"}]}`, bearer()...); a.status != 200 {
		t.Fatalf("put playlist: %d %s", a.status, a.body)
	}
	tv := openPairing(t, n)
	a := n.do(t, "POST", "/v1/screens/pair", fmt.Sprintf(`{"code":%q,"name":"Floor 1","show":{"playlist":"Floor"}}`, tv.code), bearer()...)
	if a.status != 201 {
		t.Fatalf("pair: %d %s", a.status, a.body)
	}
	var paired struct{ Token string }
	if err := tv.conn.ReadJSON(&paired); err != nil {
		t.Fatal(err)
	}
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.url, "http")+"/v1/live?token="+paired.Token, nil)
	for i := 0; err != nil && i < 50; i++ { // the node's credential cache was refreshed at pairing
		time.Sleep(100 * time.Millisecond)
		conn, resp, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.url, "http")+"/v1/live?token="+paired.Token, nil)
	}
	if err != nil {
		t.Fatalf("live with the TV's token: %v %v", err, resp)
	}
	defer conn.Close()
	readCommand := func(want string) map[string]any {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			var m map[string]any
			if err := conn.ReadJSON(&m); err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			if m["type"] == "command" && m["command"] == "show" && strings.Contains(fmt.Sprint(m["playlist"]), want) {
				return m
			}
		}
	}
	readCommand("overview")
	if a := n.do(t, "PUT", "/v1/playlists/Floor", `{"items":[{"view":"overview","dwell":"30s"},{"view":"journey","dwell":"1m"}]}`, bearer()...); a.status != 200 {
		t.Fatalf("edit playlist: %d %s", a.status, a.body)
	}
	readCommand("journey")
	if a := n.do(t, "DELETE", "/v1/playlists/Floor", "", bearer()...); a.status != 409 {
		t.Errorf("deleting a playlist a screen shows: %d %s; want 409", a.status, a.body)
	}
}

// Two nodes on one ClickHouse: the TV waits on node A, the admin enters its code on node B, and
// B's commands reach the TV on A.
func TestScreensTwoNodes(t *testing.T) {
	db := storetest.Open(t)
	a, _ := startScreensNodeOn(t, db, "node-a")
	b, _ := startScreensNodeOn(t, db, "node-b")
	tv := openPairing(t, a)
	ans := b.do(t, "POST", "/v1/screens/pair", fmt.Sprintf(`{"code":%q,"name":"Across"}`, tv.code), bearer()...)
	if ans.status != 201 {
		t.Fatalf("pair on node B a TV waiting on node A: %d %s", ans.status, ans.body)
	}
	var paired struct {
		Type, Token string
		Screen      struct{ ID string }
	}
	if err := tv.conn.ReadJSON(&paired); err != nil || paired.Type != "paired" {
		t.Fatalf("the TV on A got %+v, %v", paired, err)
	}
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(a.url, "http")+"/v1/live?token="+paired.Token, nil)
	if err != nil {
		t.Fatalf("live on A with the TV's token: %v %v", err, resp)
	}
	defer conn.Close()
	if ans := b.do(t, "POST", "/v1/screens/"+paired.Screen.ID+"/commands", `{"command":"identify"}`, bearer()...); ans.status != 202 {
		t.Fatalf("identify from B: %d %s", ans.status, ans.body)
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		var m map[string]any
		if err := conn.ReadJSON(&m); err != nil {
			t.Fatalf("waiting for B's command on A: %v", err)
		}
		if m["type"] == "command" && m["command"] == "identify" && m["name"] == "Across" {
			break
		}
	}
	// B lists it online from A's heartbeat record.
	deadline := time.Now().Add(20 * time.Second)
	for {
		l := b.do(t, "GET", "/v1/screens", "", bearer()...)
		if strings.Contains(l.body, `"state":"online"`) && strings.Contains(l.body, `"node":"node-a"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node B's list: %s; want the screen online on node-a", l.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Groups and time zones: set at pairing and by PATCH, listed and filtered, and a group as the
// target of a command and of a playlist, each screen's result reported.
func TestScreenGroups(t *testing.T) {
	n, _ := startScreensNode(t)
	pair := func(name, extra string) string {
		t.Helper()
		tv := openPairing(t, n)
		a := n.do(t, "POST", "/v1/screens/pair", fmt.Sprintf(`{"code":%q,"name":%q%s}`, tv.code, name, extra), bearer()...)
		var sc struct{ ID, Group, Timezone string }
		if err := json.Unmarshal([]byte(a.body), &sc); err != nil || a.status != 201 {
			t.Fatalf("pair %s: %d %s", name, a.status, a.body)
		}
		return sc.ID
	}
	for _, tc := range []struct{ body, field, saying string }{
		{`{"code":"ABCDEF","name":"W","group":""}`, "", ""}, // no group: fine, the code is just unknown
		{`{"code":"ABCDEF","name":"W","group":" floor 2"}`, "group", "spaces"},
		{`{"code":"ABCDEF","name":"W","group":"` + strings.Repeat("g", 65) + `"}`, "group", "at most 64"},
		{`{"code":"ABCDEF","name":"W","timezone":"Mars/Olympus"}`, "timezone", "not an IANA time zone"},
		{`{"code":"ABCDEF","name":"W","timezone":"Local"}`, "timezone", "not an IANA time zone"},
	} {
		a := n.do(t, "POST", "/v1/screens/pair", tc.body, bearer()...)
		if tc.field == "" {
			wantError(t, a, 404, "code", "no TV shows this code")
			continue
		}
		wantError(t, a, 400, tc.field, tc.saying)
	}
	tokyo := pair("Tokyo lobby", `,"group":"floor 2","timezone":"Asia/Tokyo"`)
	paris := pair("Paris lobby", `,"group":"floor 2"`)
	other := pair("Basement", "")

	list := func(query string) []struct{ ID, Group, Timezone string } {
		t.Helper()
		a := n.do(t, "GET", "/v1/screens"+query, "", bearer()...)
		var l struct {
			Screens []struct{ ID, Group, Timezone string }
		}
		if err := json.Unmarshal([]byte(a.body), &l); err != nil || a.status != 200 {
			t.Fatalf("GET /v1/screens%s: %d %s", query, a.status, a.body)
		}
		return l.Screens
	}
	// Listed by pairing time, to the second, then by id: the order of two screens paired in one
	// second is not what this checks.
	floor2 := map[string]string{}
	for _, sc := range list("?group=floor%202") {
		floor2[sc.ID] = sc.Group + " " + sc.Timezone
	}
	if len(floor2) != 2 || floor2[tokyo] != "floor 2 Asia/Tokyo" || floor2[paris] != "floor 2 " {
		t.Errorf("the screens of floor 2: %v; want Tokyo (%s, in Asia/Tokyo) and Paris (%s)", floor2, tokyo, paris)
	}
	wantError(t, n.do(t, "GET", "/v1/screens?floor=2", "", bearer()...), 400, "floor", "unknown parameter")

	// PATCH moves Paris to its zone and the basement into the group; bad values name the field.
	wantError(t, n.do(t, "PATCH", "/v1/screens/"+paris, `{"timezone":"Europe/Pariss"}`, bearer()...), 400, "timezone", "Europe/Pariss")
	wantError(t, n.do(t, "PATCH", "/v1/screens/"+paris, `{"group":"a\u0007b"}`, bearer()...), 400, "group", "control characters")
	wantError(t, n.do(t, "PATCH", "/v1/screens/00000000deadbeef", `{"group":"x"}`, bearer()...), 404, "", "no paired screen")
	if a := n.do(t, "PATCH", "/v1/screens/"+paris, `{"timezone":"Europe/Paris"}`, bearer()...); a.status != 200 || !strings.Contains(a.body, `"timezone":"Europe/Paris"`) || !strings.Contains(a.body, `"group":"floor 2"`) {
		t.Errorf("PATCH the time zone: %d %s; want it set, the group kept", a.status, a.body)
	}
	if a := n.do(t, "PATCH", "/v1/screens/"+other, `{"group":"floor 2"}`, bearer()...); a.status != 200 {
		t.Errorf("PATCH the group: %d %s", a.status, a.body)
	}
	if got := list("?group=floor%202"); len(got) != 3 {
		t.Errorf("floor 2 after the PATCH: %+v; want three screens", got)
	}

	// A playlist to the group: each screen's command reported.
	if a := n.do(t, "PUT", "/v1/playlists/Floor", `{"items":[{"view":"overview","dwell":"30s"}],"schedule":{"open":"09:00","close":"18:00","outside":"blank"}}`, bearer()...); a.status != 200 {
		t.Fatalf("put playlist: %d %s", a.status, a.body)
	}
	a := n.do(t, "POST", "/v1/screens/commands", `{"command":"show","show":{"playlist":"Floor"},"group":"floor 2"}`, bearer()...)
	var out struct {
		Queued   int
		Commands []struct{ Screen, State string }
	}
	if err := json.Unmarshal([]byte(a.body), &out); err != nil || a.status != 202 || out.Queued != 3 || len(out.Commands) != 3 {
		t.Fatalf("the playlist to floor 2: %d %s; want three commands queued", a.status, a.body)
	}
	for _, c := range out.Commands {
		if c.State != "queued" {
			t.Errorf("command for %s: %s", c.Screen, c.State)
		}
	}
	if a := n.do(t, "GET", "/v1/screens?group=floor%202", "", bearer()...); strings.Count(a.body, `"playlist":"Floor"`) != 3 || !strings.Contains(a.body, `"hours":`) {
		t.Errorf("floor 2 after the playlist: %s; want all three on Floor, the zoned ones with their hours", a.body)
	}
	wantError(t, n.do(t, "POST", "/v1/screens/commands", `{"command":"reload","group":"floor 9"}`, bearer()...), 404, "group", `no paired screen is in the group "floor 9"`)
	wantError(t, n.do(t, "POST", "/v1/screens/commands", `{"command":"reload","group":"floor 2","screens":["`+tokyo+`"]}`, bearer()...), 400, "group", "not both")
	wantError(t, n.do(t, "POST", "/v1/screens/commands", `{"command":"reload","group":""}`, bearer()...), 400, "group", "is required")
}
