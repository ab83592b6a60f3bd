package web_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/spool"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

// node is one run of the server on a fixed address, stopped as `truthboard serve` stops on
// SIGTERM: live screens first (1001), then HTTP, then the writer.
type node struct {
	t      *testing.T
	hub    *live.Hub
	srv    *web.Server
	writer *ingest.Writer
	served chan error
	done   bool
}

func startNode(t *testing.T, db *store.Store, addr string) *node {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	hub := live.NewHub(db, live.Options{Tick: 200 * time.Millisecond}, log)
	w, err := ingest.Open(db, ingest.Options{FlushInterval: 10 * time.Millisecond, Spool: spool.Options{Dir: t.TempDir()}}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := web.New(w, db, web.Options{
		Hub:        hub,
		Live:       web.LiveOptions{PingInterval: time.Second, WriteTimeout: time.Second},
		IngestKeys: auth.NewKeySet(testKey),
		AdminToken: auth.NewKeySet(adminToken),
		Limits:     event.Limits{MaxBodyBytes: event.DefaultMaxBodyBytes},
	}, log)
	// The port was free a moment ago; the previous run's listener is closed by now, and Go
	// listens with SO_REUSEADDR, so connections in TIME_WAIT do not keep it.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s again: %v", addr, err)
	}
	n := &node{t: t, hub: hub, srv: srv, writer: w, served: make(chan error, 1)}
	go func() { n.served <- srv.Serve(ln) }()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	if n.done {
		return
	}
	n.done = true
	n.hub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.srv.Shutdown(ctx); err != nil {
		n.t.Errorf("shutdown: %v", err)
	}
	if err := <-n.served; err != nil {
		n.t.Errorf("serve: %v", err)
	}
	if err := n.writer.Close(ctx); err != nil {
		n.t.Errorf("close writer: %v", err)
	}
}

// TestBrowserTVRestart stops the server under an open TV wall and starts it again on the same
// port: the wall shows Offline with its last figures, then live data again without a reload.
func TestBrowserTVRestart(t *testing.T) {
	db := storetest.Open(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ts := &testServer{url: "http://" + addr, db: db, client: &http.Client{Timeout: 15 * time.Second}}

	first := startNode(t, db, addr)
	now := time.Now().UTC().Truncate(time.Second)
	ts.mustPost(t, jsonArray(dashboardEvents("before", 60, now.Add(-time.Minute)))).accepted(t, 60, 0)

	bctx := browser(t)
	// openPage's tab lives 20 s; this one lives through a restart.
	ctx, cancel := chromedp.NewContext(bctx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer func() { cancelTimeout(); cancel() }()
	p := &page{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, p.record); err != nil {
		t.Fatal(err)
	}
	p.do(chromedp.Navigate(ts.url + "/tv?token=" + adminToken + "&rotate=0"))
	const volume = `document.querySelector('.tile[data-kpi="events"] .value').textContent`
	p.wait("fresh figures", `document.body.dataset.live === 'fresh' && `+volume+` === '60'`)

	first.stop()
	// The page's backoff (static/js/live.js): a retry within 1 s, then 1–2 s, then Offline.
	p.wait("reconnecting or offline", `['reconnecting', 'offline'].includes(document.body.dataset.live)`)
	p.wait("offline", `document.body.dataset.live === 'offline'`)
	got := eval[struct {
		Greyed        bool
		Label, Detail string
		Value         string
	}](p, `({Greyed: document.body.classList.contains('greyed'),
		Label: document.querySelector('#badge .label').textContent,
		Detail: document.querySelector('#badge .detail').textContent,
		Value: `+volume+`})`)
	if !got.Greyed || got.Label != "Offline" || !strings.Contains(got.Detail, "last data") || got.Value != "60" {
		t.Errorf("TV wall with the server down: %+v, want Offline with the last figures greyed", got)
	}

	startNode(t, db, addr)
	ts.mustPost(t, jsonArray(dashboardEvents("after", 40, now.Add(-30*time.Second)))).accepted(t, 40, 0)
	// Retries by then are 2–4 s apart, or 4–8 s: wait for one of them.
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](
		`document.body.dataset.live === 'fresh' && `+volume+` === '100'`,
		chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("waiting for live data from the new server: %v (page: %s)", err,
			eval[string](p, `document.body.dataset.live + ' ' + document.querySelector('#badge').textContent`))
	}
	seq := eval[int](p, `truthboard.live.last.seq`)
	p.wait("updates from the new server", `truthboard.live.last.seq > `+strconv.Itoa(seq+2)+` && document.body.dataset.live === 'fresh'`)
	if eval[bool](p, `document.body.classList.contains('greyed')`) {
		t.Errorf("the TV wall is still greyed after the restart")
	}
	if n := eval[int](p, `performance.getEntriesByType('navigation').length`); n != 1 {
		t.Errorf("%d navigations, want the first one only (no reload)", n)
	}

	// While the server was down, the page's fetch of /v1/stats (live.js asks it why a
	// connection was refused) was logged as a failed load: expected, like refused WebSockets.
	p.mu.Lock()
	var errs []string
	for _, e := range p.errs {
		if !strings.Contains(e, "ERR_CONNECTION_REFUSED") {
			errs = append(errs, e)
		}
	}
	p.errs = errs
	p.mu.Unlock()
	p.checkClean()
}
