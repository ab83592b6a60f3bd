package web_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

// TestBrowserTVStaleAndDegraded plays a ClickHouse that hangs, then one that refuses, under an
// open TV wall: with no update for three ticks the wall says Stale and greys its last figures;
// with failing queries the server reports the feed degraded and the wall says so beside its last
// figures; each time it is Fresh again, without a reload, once ClickHouse answers.
func TestBrowserTVStaleAndDegraded(t *testing.T) {
	direct, proxied, proxy := storetest.OpenProxied(t, 500*time.Millisecond)
	const tick = 200 * time.Millisecond
	hub := live.NewHub(proxied, live.Options{Tick: tick, QueryTimeout: time.Minute}, slog.New(slog.DiscardHandler))
	s := startServer(t, serverConfig{db: direct, web: web.Options{Hub: hub}})
	t.Cleanup(hub.Close)
	now := time.Now().UTC().Truncate(time.Second)
	s.mustPost(t, jsonArray(dashboardEvents("s", 30, now.Add(-time.Minute)))).accepted(t, 30, 0)
	s.settle(t)

	p := openPage(t, browser(t), s.url+"/tv?token="+adminToken+"&rotate=0")
	const volume = `document.querySelector('.tile[data-kpi="events"] .value').textContent`
	p.wait("fresh figures", `document.body.dataset.live === 'fresh' && `+volume+` === '30'`)

	badge := func() (state, label, detail string, greyed bool, value string) {
		got := eval[struct {
			State, Label, Detail, Value string
			Greyed                      bool
		}](p, `({State: document.body.dataset.live,
			Label: document.querySelector('#badge .label').textContent,
			Detail: document.querySelector('#badge .detail').textContent,
			Greyed: document.body.classList.contains('greyed'),
			Value: `+volume+`})`)
		return got.State, got.Label, got.Detail, got.Greyed, got.Value
	}

	// A hanging ClickHouse: the feed's tick waits for its query, no update comes.
	proxy.Hold()
	p.wait("stale", `document.body.dataset.live === 'stale'`)
	if state, label, _, greyed, value := badge(); label != "Stale" || !greyed || value != "30" {
		t.Errorf("TV wall with no update for three ticks: %s %q greyed=%v value %s; want Stale, the last figures greyed", state, label, greyed, value)
	}
	proxy.Release()
	p.wait("fresh after the hang", `document.body.dataset.live === 'fresh'`)

	// A refusing ClickHouse: the feed's queries fail, the server says the feed is degraded.
	proxy.Cut()
	p.wait("degraded", `document.body.dataset.live === 'degraded'`)
	if state, label, detail, greyed, value := badge(); greyed || value != "30" || !strings.Contains(detail, "did not answer") {
		t.Errorf("TV wall with a failing database: %s %q %q greyed=%v value %s; want degraded, saying why, with the last figures", state, label, detail, greyed, value)
	}
	proxy.Restore()
	p.wait("fresh after the outage", `document.body.dataset.live === 'fresh' && !document.body.classList.contains('greyed')`)
	p.checkClean()
}
