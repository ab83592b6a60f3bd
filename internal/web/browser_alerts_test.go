package web_test

// The screens show what fires: a breach designed into the data fires through the real alert
// engine and evaluator; the executive view shows it in its banner, the TV wall stops its
// rotation on the moments × channels panel with the cell framed and the alert in large type,
// and both let go once it resolves. TRUTHBOARD_SCREENSHOT_DIR keeps screenshots of the pinned
// wall at 1080p and 4K and of the executive banner.

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

func TestScreensShowFiringAlerts(t *testing.T) {
	db := storetest.Open(t)
	// One rule, firing at once (for 0s) so the test needs no clock: CSAT of a moment × channel
	// in the last 15 minutes against the 3 hours before.
	ev := startEvaluator(t, db, `{"defaults": false, "rules": [
		{"name": "CSATDrop", "metric": "csat", "kind": "change", "window": "15m", "for": "0s", "keep_firing_for": "0s"}]}`)

	hub := live.NewHub(db, live.Options{Tick: 300 * time.Millisecond, Alerts: ev.Active}, slog.New(slog.DiscardHandler))
	s := startServer(t, serverConfig{db: db, web: web.Options{Hub: hub, Alerts: ev, AlertHistory: db}})
	t.Cleanup(hub.Close)

	// service × voice: 85% → 40% CSAT on 400 answers a side (a breach); service × chat: the same
	// drop on 12 answers a side (too few to judge).
	now := time.Now().UTC().Truncate(time.Second)
	base, cur := now.Add(-2*time.Hour), now.Add(-8*time.Minute)
	var evs []string
	evs = append(evs, judgedEvents("voice-base", "service", "voice", base, 400, 340, 0, 0, 11)...)
	evs = append(evs, judgedEvents("voice-cur", "service", "voice", cur, 400, 160, 0, 0, 12)...)
	evs = append(evs, judgedEvents("chat-base", "service", "chat", base, 12, 10, 0, 0, 13)...)
	evs = append(evs, judgedEvents("chat-cur", "service", "chat", cur, 12, 5, 0, 0, 14)...)
	s.mustPost(t, jsonArray(evs)).accepted(t, len(evs), 0)
	s.settle(t)

	ev.Evaluate(context.Background())
	active := ev.Active()
	if len(active) != 1 || active[0].State != alert.Firing || active[0].Labels["moment"] != "service" || active[0].Labels["channel"] != "voice" {
		t.Fatalf("active alerts %+v, want CSATDrop firing for service × voice only", active)
	}
	summary := active[0].Annotations["summary"]

	bctx := browser(t)
	t.Run("TV wall pins the breach", func(t *testing.T) {
		p := openSized(t, bctx, s.url+"/tv?token="+adminToken+"&window=15m&rotate=3s", 1920, 1080, 1)
		p.wait("the breach pinned", `document.body.dataset.breach === 'on' &&
			document.querySelector('#breach .what').textContent.includes('service › voice · CSAT')`)
		if got := eval[string](p, `document.querySelector('#breach .summary').textContent`); got != summary {
			t.Errorf("the wall says %q, want the alert's summary %q", got, summary)
		}
		onHeatmap := `document.querySelector('#panels > .panel.active [data-chart="heatmap"]') !== null`
		p.wait("the moments × channels panel", onHeatmap)
		p.wait("the breaching cell framed", `(() => { const g = echarts.getInstanceByDom(document.querySelector('[data-chart="heatmap"]')).getOption().graphic;
			return !!g && JSON.stringify(g).includes('breach'); })()`)
		// Readable from 5 m: the alert's line is at least 2.5% of the screen's height.
		if ratio := eval[float64](p, `parseFloat(getComputedStyle(document.querySelector('#breach .what')).fontSize) / innerHeight`); ratio < 0.025 {
			t.Errorf("the alert's type is %.1f%% of the screen's height, want at least 2.5%%", ratio*100)
		}
		// The rotation (3 s) stays on the breach: two periods later the panel is the same.
		time.Sleep(7 * time.Second)
		if !eval[bool](p, onHeatmap) {
			t.Error("the wall rotated away from the breach while the alert fires")
		}
		p.shoot("tv-alert-1080p")
		p4k := openSized(t, bctx, s.url+"/tv?token="+adminToken+"&window=15m", 3840, 2160, 1)
		p4k.wait("the breach pinned at 4K", `document.body.dataset.breach === 'on'`)
		p4k.shoot("tv-alert-4k")
		p4k.checkClean()
		p.checkClean()
	})

	t.Run("executive banner", func(t *testing.T) {
		p := openSized(t, bctx, s.url+"/executive?token="+adminToken+"&window=15m", 1920, 1080, 1)
		p.wait("the banner", `document.querySelectorAll('#alerts .alert.firing').length === 1`)
		got := eval[string](p, `document.querySelector('#alerts .alert.firing').textContent`)
		if !strings.Contains(got, "service › voice · CSAT") || !strings.Contains(got, summary) || !strings.Contains(got, "firing since") {
			t.Errorf("banner %q, want service › voice, CSAT, the summary and since when", got)
		}
		p.shoot("executive-alert-1080p")
		p.checkClean()
	})

	t.Run("resolved: the wall rotates again, the banner goes", func(t *testing.T) {
		p := openSized(t, bctx, s.url+"/tv?token="+adminToken+"&window=15m&rotate=3s", 1920, 1080, 1)
		p.wait("the breach pinned", `document.body.dataset.breach === 'on'`)
		exec := openSized(t, bctx, s.url+"/executive?token="+adminToken+"&window=15m", 1920, 1080, 1)
		exec.wait("the banner", `document.querySelectorAll('#alerts .alert.firing').length === 1`)

		// The rule goes: its alert resolves at the next evaluation.
		if err := ev.Engine().SetRules(nil); err != nil {
			t.Fatal(err)
		}
		ev.Evaluate(context.Background())
		if a := ev.Active(); len(a) != 0 {
			t.Fatalf("active alerts after the rule went: %+v", a)
		}
		p.wait("the breach released", `document.body.dataset.breach === undefined && document.querySelector('#breach').hidden`)
		p.wait("the rotation back", `document.querySelector('#panels > .panel.active [data-chart="heatmap"]') === null`)
		exec.wait("the banner gone", `document.querySelector('#alerts').hidden`)
		p.checkClean()
		exec.checkClean()
	})
}
