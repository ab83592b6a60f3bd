package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/annotation"
	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/server"
)

// TestDemoIncidentsAreAnnotated runs demo traffic with an incident against a whole server:
// the incident is on the charts as a region of its channel tagged "demo", as GET
// /v1/annotations lists it.
func TestDemoIncidentsAreAnnotated(t *testing.T) {
	cfg, _ := testConfig(t)
	ctx := context.Background()
	srv, err := server.Start(ctx, cfg, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })

	dc := demo.DefaultConfig()
	dc.URL, dc.Key, dc.AdminToken, dc.Rate, dc.Duration = srv.URL(), srv.IngestKeys()[0], srv.AdminToken(), 20, 2*time.Second
	inc, err := demo.ParseIncident("voice:outage:+0s:10m")
	if err != nil {
		t.Fatal(err)
	}
	dc.Incidents = demo.Incidents{inc}
	started := time.Now()
	if err := demo.Run(ctx, dc, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/v1/annotations?tags=demo", nil)
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []annotation.Annotation
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/annotations?tags=demo: %d %v", resp.StatusCode, err)
	}
	if len(list) != 1 {
		t.Fatalf("demo annotations %+v, want the one incident", list)
	}
	a := list[0]
	if a.Channel != "voice" || a.End().Sub(a.Start()) != 10*time.Minute || a.Start().Sub(started).Abs() > time.Minute ||
		a.Text != "Demo incident: voice outage for 10m0s" {
		t.Errorf("the incident's annotation %+v, want a 10-minute region on voice from the start of the run", a)
	}
}
