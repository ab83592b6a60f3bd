package web_test

// The screens' part of TestBadInput: pairing codes (wrong, expired, used, and the throttle per
// address), pairing's fields, the screens' list, PATCH and commands (a group, a screen that is
// offline), and playlists. Screens and codes are written straight into the store with fixed ids
// and times, so that every answer is the same on every run.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	fleetpkg "github.com/truthboard/truthboard/internal/screen"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// badScreen is the catalogue's screen: paired at a fixed time, never connected, in no group.
const badScreen = "00000000000000b5"

type badScreensCase struct {
	// what the row is about, shown before the request.
	what         string
	method, path string
	body         string
	// before, when set, runs first (the commands that fill a screen's queue).
	before func(t *testing.T, n *accessNode)
}

func screensCases() []badScreensCase {
	pair := func(what, body string) badScreensCase {
		return badScreensCase{what: what, method: "POST", path: "/v1/screens/pair", body: body}
	}
	patch := func(what, body string) badScreensCase {
		return badScreensCase{what: what, method: "PATCH", path: "/v1/screens/" + badScreen, body: body}
	}
	command := func(what, body string) badScreensCase {
		return badScreensCase{what: what, method: "POST", path: "/v1/screens/" + badScreen + "/commands", body: body}
	}
	broadcast := func(what, body string) badScreensCase {
		return badScreensCase{what: what, method: "POST", path: "/v1/screens/commands", body: body}
	}
	playlist := func(what, body string) badScreensCase {
		return badScreensCase{what: what, method: "PUT", path: "/v1/playlists/Floor", body: body}
	}
	return []badScreensCase{
		pair("a code of the wrong length", `{"code":"AB1","name":"Wall 3"}`),
		pair("a code no TV shows", `{"code":"ZZZZZ9","name":"Wall 3"}`),
		pair("an expired code", `{"code":"EXP234","name":"Wall 3"}`),
		pair("a code already used", `{"code":"USD234","name":"Wall 3"}`),
		pair("no name", `{"code":"PKY234","name":" "}`),
		pair("a view that does not exist", `{"code":"PKY234","name":"Wall 3","show":{"view":"pie"}}`),
		pair("a playlist and a view", `{"code":"PKY234","name":"Wall 3","show":{"view":"tv","playlist":"Floor"}}`),
		pair("a playlist that does not exist", `{"code":"PKY234","name":"Wall 3","show":{"playlist":"Nope"}}`),
		pair("a group with spaces around", `{"code":"PKY234","name":"Wall 3","group":" floor 2 "}`),
		pair("a time zone that does not exist", `{"code":"PKY234","name":"Wall 3","timezone":"Mars/Olympus"}`),
		pair("an unknown field", `{"code":"PKY234","name":"Wall 3","colour":"red"}`),
		{what: "wrong codes from one address beyond 10 a minute (the 11th)", method: "POST", path: "/v1/screens/pair", body: `{"code":"ZZZZZ9","name":"Wall 3"}`,
			before: func(t *testing.T, n *accessNode) {
				for i := 0; i < 20; i++ { // up to the throttle, whatever the rows before took
					if a := n.do(t, "POST", "/v1/screens/pair", `{"code":"ZZZZZ8","name":"Wall 3"}`, bearer()...); a.status == http.StatusTooManyRequests {
						return
					}
				}
			}},
		{what: "an unknown parameter", method: "GET", path: "/v1/screens?floor=2"},
		{what: "an empty group", method: "GET", path: "/v1/screens?group="},
		patch("a time zone that does not exist", `{"timezone":"Europe/Pariss"}`),
		patch("the server's zone", `{"timezone":"Local"}`),
		patch("a group of 65 characters", `{"group":"`+strings.Repeat("g", 65)+`"}`),
		patch("nothing to change", `{}`),
		{what: "a screen that is not paired", method: "PATCH", path: "/v1/screens/00000000deadbeef", body: `{"group":"floor 2"}`},
		command("a command that does not exist", `{"command":"dance"}`),
		command("show without what", `{"command":"show"}`),
		command("show of a filter that does not exist", `{"command":"show","show":{"view":"heatmap","filters":{"colour":["red"]}}}`),
		command("rename to a name with a control character", `{"command":"rename","name":"a\u0007b"}`),
		command("a command to a screen that is offline: kept until it returns", `{"command":"reload"}`),
		{what: "a command to an offline screen with 16 waiting: undeliverable", method: "POST", path: "/v1/screens/" + badScreen + "/commands", body: `{"command":"reload"}`,
			before: func(t *testing.T, n *accessNode) {
				for i := 0; i < 20; i++ {
					if a := n.do(t, "POST", "/v1/screens/"+badScreen+"/commands", `{"command":"identify"}`, bearer()...); a.status == http.StatusConflict {
						return
					}
				}
			}},
		broadcast("a group no screen is in", `{"command":"reload","group":"floor 9"}`),
		broadcast("a group and screens", `{"command":"reload","group":"floor 2","screens":["`+badScreen+`"]}`),
		broadcast("a command for one screen only", `{"command":"unpair","group":"floor 2"}`),
		broadcast("screens that are not paired, and one whose queue is full", `{"command":"reload","screens":["00000000deadbeef","`+badScreen+`"]}`),
		playlist("a view that does not exist", `{"items":[{"view":"pie","dwell":"30s"}]}`),
		playlist("a filter that does not exist", `{"items":[{"view":"overview","dwell":"30s"},{"view":"heatmap","dwell":"30s","filters":{"colour":["red"]}}]}`),
		playlist("a filter value that is not one", `{"items":[{"view":"overview","dwell":"30s","filters":{"channel":["fax"]}}]}`),
		playlist("a dwell too short", `{"items":[{"view":"overview","dwell":"1s"}]}`),
		playlist("no panel", `{"items":[]}`),
		playlist("an opening time that is not HH:MM", `{"items":[{"view":"overview","dwell":"30s"}],"schedule":{"open":"8am","close":"20:00"}}`),
		playlist("a day that is not one", `{"items":[{"view":"overview","dwell":"30s"}],"schedule":{"open":"08:00","close":"20:00","days":["mon","funday"]}}`),
		playlist("a name that differs from the path's", `{"name":"Lobby","items":[{"view":"overview","dwell":"30s"}]}`),
		{what: "a playlist that does not exist", method: "DELETE", path: "/v1/playlists/Nope"},
	}
}

// screensCatalogue sends the screens' cases to a node with a fleet, on a store holding the
// catalogue's codes and screen.
func screensCatalogue(t *testing.T) string {
	ctx := context.Background()
	db := storetest.Open(t)
	now := time.Now().UTC().Truncate(time.Second)
	for _, p := range []fleetpkg.Pairing{
		{Code: "EXP234", Address: "10.0.0.1", CreatedAt: now.Add(-15 * time.Minute), ExpiresAt: now.Add(-5 * time.Minute)},
		{Code: "USD234", Address: "10.0.0.2", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)},
		{Code: "PKY234", Address: "10.0.0.3", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := db.CreatePairing(ctx, p); err != nil {
			t.Fatal(err)
		}
		if p.Code == "USD234" {
			p.ScreenID, p.Name = "00000000000000a4", "Used"
			if err := db.ClaimPairing(ctx, p, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	paired := fleetpkg.Screen{ID: badScreen, Name: "Basement", Show: fleetpkg.Show{View: "tv"}, PairedAt: badNow.Add(-time.Hour)}
	if err := db.SaveScreens(ctx, []fleetpkg.Screen{paired}, now); err != nil {
		t.Fatal(err)
	}
	n, _ := startScreensNodeOn(t, db, "node-a")

	var out strings.Builder
	out.WriteString("\n## Screens, pairing and playlists\n\nWith the admin token, on a server holding a paired screen `" + badScreen +
		"` (Basement, paired at " + badNow.Add(-time.Hour).Format(time.RFC3339) + ", never connected since: offline, in no group) and the pairing codes " +
		"`EXP234` (expired), `USD234` (entered already) and `PKY234` (waiting). A wrong, expired or used code counts against the client " +
		"address: 10 a minute, in a burst. A command to a screen that is offline is queued until it connects (16 at most per screen), " +
		"beyond which it is refused as undeliverable; unpairing gives the queued ones up as undeliverable.\n\n" +
		"| # | case | request | status | answer |\n|---|---|---|---|---|\n")
	for i, sc := range screensCases() {
		if sc.before != nil {
			sc.before(t, n)
		}
		a := n.do(t, sc.method, sc.path, sc.body, bearer()...)
		cell, err := screensAnswerCell(a)
		if err != nil {
			t.Errorf("row %d (%s): %v", i+1, sc.what, err)
		}
		req := code(sc.method + " " + sc.path)
		if sc.body != "" {
			req += "<br>" + code(strings.Replace(sc.body, strings.Repeat("g", 65), "g×65", 1))
		}
		fmt.Fprintf(&out, "| %d | %s | %s | %d | %s |\n", i+1, sc.what, req, a.status, cell)
	}
	return out.String()
}

// screensAnswerCell shows an answer: the error and the field it names; for a command, its
// state; for many, what was queued and refused.
func screensAnswerCell(a answerOf) (string, error) {
	if a.status >= 500 {
		return "", fmt.Errorf("status %d: %s", a.status, a.body)
	}
	var body struct {
		Error, Field, State string
		Queued              *int
		Undeliverable       []struct{ Screen, Error string }
	}
	if err := json.Unmarshal([]byte(a.body), &body); err != nil {
		return "", fmt.Errorf("status %d, not JSON: %s", a.status, a.body)
	}
	switch {
	case body.Error != "":
		cell := code(body.Error)
		if body.Field != "" {
			cell += "<br>field " + code(body.Field)
		}
		if ra := a.header.Get("Retry-After"); ra != "" {
			cell += "<br>Retry-After: " + ra
		}
		return cell, nil
	case body.Queued != nil:
		cell := fmt.Sprintf("queued for %d", *body.Queued)
		for _, u := range body.Undeliverable {
			cell += "<br>undeliverable to " + code(u.Screen) + ": " + code(u.Error)
		}
		return cell, nil
	case body.State != "":
		return "command " + code(body.State), nil
	}
	return "", fmt.Errorf("status %d: an answer the catalogue does not show: %s", a.status, a.body)
}
