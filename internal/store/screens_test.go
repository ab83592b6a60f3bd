package store_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/screen"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// The screens' logs read back as their latest state, on a real ClickHouse.
func TestScreens(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

	t.Run("pairing: the earliest claim wins", func(t *testing.T) {
		p := screen.Pairing{Code: "ABC234", Address: "10.0.0.7", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
		if err := s.CreatePairing(ctx, p); err != nil {
			t.Fatal(err)
		}
		got, err := s.Pairings(ctx, []string{"ABC234", "ZZZ999"})
		if err != nil || len(got) != 1 || got[0].Claimed || got[0].Address != "10.0.0.7" || !got[0].ExpiresAt.Equal(p.ExpiresAt) {
			t.Fatalf("pairings = %+v, %v; want ABC234 unclaimed from 10.0.0.7", got, err)
		}
		first, second := p, p
		first.ScreenID, first.Name, first.Show = "00000000000000a1", "Wall 1", screen.Show{View: "tv", Window: "15m"}
		second.ScreenID, second.Name = "00000000000000b2", "Wall 2"
		if err := s.ClaimPairing(ctx, second, now.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.ClaimPairing(ctx, first, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		got, err = s.Pairings(ctx, []string{"ABC234"})
		if err != nil || len(got) != 1 || !got[0].Claimed || got[0].ScreenID != first.ScreenID || got[0].Name != "Wall 1" || got[0].Show.Window != "15m" {
			t.Fatalf("pairings = %+v, %v; want the claim of Wall 1", got, err)
		}
	})

	t.Run("screens with their last heartbeat", func(t *testing.T) {
		a := screen.Screen{ID: "00000000000000a1", Name: "Wall 1", Show: screen.Show{View: "tv"}, PairedAt: now}
		b := screen.Screen{ID: "00000000000000b2", Name: "Lobby", Show: screen.Show{View: "heatmap"}, PairedAt: now.Add(time.Minute)}
		for _, sc := range []screen.Screen{a, b} {
			if err := s.SaveScreens(ctx, []screen.Screen{sc}, sc.PairedAt); err != nil {
				t.Fatal(err)
			}
		}
		a.Name = "Wall One"
		if err := s.SaveScreens(ctx, []screen.Screen{a}, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		b.Unpaired = true
		if err := s.SaveScreens(ctx, []screen.Screen{b}, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		hs := []screen.Heartbeat{
			{ID: a.ID, Node: "n1", At: now.Add(time.Minute), Connected: true, Resolution: "1920x1080", Version: "v1"},
			{ID: a.ID, Node: "n2", At: now.Add(2 * time.Minute), Connected: false, Resolution: "3840x2160", Version: "v2", Errors: []string{"boom"}},
		}
		if err := s.SaveHeartbeats(ctx, hs); err != nil {
			t.Fatal(err)
		}
		all, err := s.Screens(ctx)
		if err != nil || len(all) != 2 {
			t.Fatalf("screens = %+v, %v; want 2", all, err)
		}
		h := all[0].Heartbeat
		if all[0].Name != "Wall One" || all[0].Unpaired || h.Node != "n2" || h.Connected || h.Resolution != "3840x2160" ||
			len(h.Errors) != 1 || !h.At.Equal(now.Add(2*time.Minute)) {
			t.Errorf("screen a = %+v; want renamed, with the later heartbeat (n2, disconnected)", all[0])
		}
		if one, ok, err := s.Screen(ctx, a.ID); err != nil || !ok || one.Name != "Wall One" || one.Heartbeat.Node != "n2" {
			t.Errorf("screen %s = %+v, %v, %v; want Wall One, last seen by n2", a.ID, one, ok, err)
		}
		if _, ok, err := s.Screen(ctx, "00000000000000ee"); err != nil || ok {
			t.Errorf("an unknown screen: found %v, %v", ok, err)
		}
		if !all[1].Unpaired || !all[1].Heartbeat.At.IsZero() {
			t.Errorf("screen b = %+v; want unpaired, never seen", all[1])
		}
	})

	t.Run("commands move from queued to delivered", func(t *testing.T) {
		arg, _ := json.Marshal(screen.Show{View: "trends"})
		c1 := screen.Command{ID: "c1", ScreenID: "00000000000000a1", CreatedAt: now, Kind: screen.Redirect, Arg: arg, State: screen.Queued}
		c2 := screen.Command{ID: "c2", ScreenID: "00000000000000a1", CreatedAt: now.Add(time.Second), Kind: screen.Reload, Arg: json.RawMessage("null"), State: screen.Queued}
		c3 := screen.Command{ID: "c3", ScreenID: "00000000000000ff", CreatedAt: now, Kind: screen.Reload, State: screen.Queued}
		if err := s.QueueCommands(ctx, []screen.Command{c1, c2, c3}); err != nil {
			t.Fatal(err)
		}
		c1.State = screen.Delivered
		if err := s.SetCommandStates(ctx, []screen.Command{c1}, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		queued, err := s.Commands(ctx, []string{"00000000000000a1"}, screen.Queued)
		if err != nil || len(queued) != 1 || queued[0].ID != "c2" {
			t.Fatalf("queued = %+v, %v; want c2 only", queued, err)
		}
		all, err := s.Commands(ctx, []string{"00000000000000a1"}, 0)
		if err != nil || len(all) != 2 || all[0].ID != "c1" || all[0].State != screen.Delivered || string(all[0].Arg) != string(arg) {
			t.Fatalf("commands = %+v, %v; want c1 delivered with its argument, then c2", all, err)
		}
	})

	t.Run("playlists: the latest version, deletions gone", func(t *testing.T) {
		p := screen.Playlist{Name: "Floor", Items: []screen.Item{{View: "overview", Dwell: "30s"}}}
		if err := s.SavePlaylist(ctx, p, now); err != nil {
			t.Fatal(err)
		}
		p.Items = append(p.Items, screen.Item{View: "heatmap", Window: "1h", Dwell: "1m"})
		if err := s.SavePlaylist(ctx, p, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.SavePlaylist(ctx, screen.Playlist{Name: "Old", Items: p.Items}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePlaylist(ctx, "Old", now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		all, err := s.Playlists(ctx)
		if err != nil || len(all) != 1 || all[0].Name != "Floor" || len(all[0].Items) != 2 || all[0].Items[1].Window != "1h" {
			t.Fatalf("playlists = %+v, %v; want Floor with 2 panels", all, err)
		}
	})
}

// Pairing codes expired for an hour, used or not, are deleted by every fleet, periodically, so
// the table holds the codes of the last hour only; the fresh ones stay.
func TestPairingsPruned(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	old := now.Add(-2 * time.Hour)
	for _, p := range []screen.Pairing{
		{Code: "OLD234", Address: "10.0.0.1", CreatedAt: old, ExpiresAt: old.Add(10 * time.Minute)},
		{Code: "USED34", Address: "10.0.0.2", CreatedAt: old, ExpiresAt: old.Add(10 * time.Minute)},
		{Code: "LATE34", Address: "10.0.0.3", CreatedAt: now.Add(-15 * time.Minute), ExpiresAt: now.Add(-5 * time.Minute)},
		{Code: "NEW234", Address: "10.0.0.4", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)},
	} {
		if err := s.CreatePairing(ctx, p); err != nil {
			t.Fatal(err)
		}
		if p.Code == "USED34" {
			p.ScreenID, p.Name = "00000000000000c3", "Used"
			if err := s.ClaimPairing(ctx, p, old.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := []string{"OLD234", "USED34", "LATE34", "NEW234"}
	fleet := screen.New(s, screen.Options{Prune: 100 * time.Millisecond}, slog.New(slog.DiscardHandler))
	fleet.Start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := s.Pairings(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		var codes []string
		for _, p := range got {
			codes = append(codes, p.Code)
		}
		if len(codes) == 2 && codes[0] == "LATE34" && codes[1] == "NEW234" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("codes left: %v; want the two of the last hour, LATE34 and NEW234", codes)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The deletion goes part by part: the codes may be gone before their claims.
	fleet.Stop()
	for {
		pending, err := s.PendingMutations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pending["screen_pairings"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deletion of the expired codes never ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var rows uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM screen_pairings").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 2 {
		t.Errorf("screen_pairings holds %d rows; want the 2 of the fresh codes (the claim deleted with its code)", rows)
	}
	if n, err := s.PrunePairings(ctx, now.Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("pruning again: %d, %v; want nothing to delete", n, err)
	}
}
