package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/alert/notify/notifytest"
	"github.com/truthboard/truthboard/internal/server"
)

// A TV paired through the API whose live connection closes, and stays silent beyond the offline
// delay, is a firing ScreenOffline alert in GET /v1/alerts and on its row of GET /v1/screens;
// back on its live connection, the alert resolves.
func TestSilentScreenAlert(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.AlertInterval, cfg.ScreenOfflineAfter = 200*time.Millisecond, 2*time.Second
	srv, err := server.Start(context.Background(), cfg, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())
	base, admin := srv.URL(), srv.AdminToken()
	ws := "ws" + strings.TrimPrefix(base, "http")

	pairing, _, err := websocket.DefaultDialer.Dial(ws+"/v1/screens/pairing", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pairing.Close()
	var code struct{ Code string }
	if err := pairing.ReadJSON(&code); err != nil {
		t.Fatal(err)
	}
	var sc struct{ ID string }
	if status := api(t, "POST", base+"/v1/screens/pair", admin, map[string]string{"code": code.Code, "name": "Wall 3", "group": "floor 2"}, &sc); status != http.StatusCreated {
		t.Fatalf("pair: %d", status)
	}
	var paired struct{ Token string }
	if err := pairing.ReadJSON(&paired); err != nil || paired.Token == "" {
		t.Fatalf("the TV got %+v, %v; want its token", paired, err)
	}
	live := func() *websocket.Conn {
		t.Helper()
		conn, resp, err := websocket.DefaultDialer.Dial(ws+"/v1/live?token="+paired.Token, nil)
		if err != nil {
			t.Fatalf("live with the TV's token: %v %v", err, resp)
		}
		return conn
	}
	conn := live()

	type alerts struct {
		Alerts []alert.Alert `json:"alerts"`
	}
	type screens struct {
		Screens []struct {
			ID    string       `json:"id"`
			Alert *alert.Alert `json:"alert"`
		} `json:"screens"`
	}
	screenAlert := func() (listed bool, onRow bool) {
		var a alerts
		api(t, "GET", base+"/v1/alerts", admin, nil, &a)
		for _, x := range a.Alerts {
			listed = listed || x.Labels["alertname"] == "ScreenOffline" && x.Labels["screen"] == sc.ID && x.Labels["group"] == "floor 2" && x.State == alert.Firing
		}
		var s screens
		api(t, "GET", base+"/v1/screens", admin, nil, &s)
		onRow = len(s.Screens) == 1 && s.Screens[0].Alert != nil && s.Screens[0].Alert.Annotations["since"] != ""
		return listed, onRow
	}
	if listed, onRow := screenAlert(); listed || onRow {
		t.Fatalf("a connected screen: alert listed %v, on its row %v; want neither", listed, onRow)
	}
	conn.Close()
	notifytest.Eventually(t, "the silent screen's alert listed and on its row", func() bool {
		listed, onRow := screenAlert()
		return listed && onRow
	})

	// The dashboards and the other walls are not told: the alert is for the screens page and
	// the receivers, not pinned on every wall.
	dash, _, err := websocket.DefaultDialer.Dial(ws+"/v1/live", http.Header{"Authorization": {"Bearer " + admin}})
	if err != nil {
		t.Fatal(err)
	}
	defer dash.Close()
	if err := dash.WriteJSON(map[string]any{"type": "subscribe", "view": "executive", "window": "5m"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		var msg struct {
			Type   string        `json:"type"`
			Alerts []alert.Alert `json:"alerts"`
		}
		_ = dash.SetReadDeadline(time.Now().Add(20 * time.Second))
		if err := dash.ReadJSON(&msg); err != nil {
			t.Fatalf("the executive view's live messages: %v", err)
		}
		for _, a := range msg.Alerts {
			if a.Labels["alertname"] == "ScreenOffline" {
				t.Fatalf("the executive view's %s carries the silent screen's alert: %v", msg.Type, a.Labels)
			}
		}
	}

	conn = live()
	defer conn.Close()
	notifytest.Eventually(t, "the alert resolved once the screen is back", func() bool {
		listed, onRow := screenAlert()
		return !listed && !onRow
	})
}
