package livebench

import (
	"context"
	"log/slog"
	"time"

	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/server"
	"github.com/truthboard/truthboard/internal/store"
)

// queryCost is what a feed's tick costs before any screen: the time from the tick to the frame
// being offered to the feed's subscribers (the tick's ClickHouse queries, building the charts,
// encoding), measured with no server running through a live.Hub in this process, on a
// store.Store like the server's (same pool of 8 connections) and the data the run's demo
// traffic wrote. The subscribers are live.Clients read at once, so no WebSocket is involved.
type queryCost struct {
	// OneView: the unfiltered 5m view, alone in its hub.
	OneView dist
	// Spread: one spread view at a time, alone in its hub.
	Spread dist
	// BurstFirst and Burst: all spread views subscribed at once, so their feeds tick in step;
	// per tick, the time until the first and until the last feed offered its frame.
	BurstFirst, Burst dist
	// PerFeedTick is the queries per feed tick the hub counted.
	PerFeedTick float64
}

func (e *benchEnv) queryCost(ctx context.Context) (queryCost, error) {
	var qc queryCost
	db, err := store.Open(ctx, server.StoreOptions(e.o.ch.ServerConfig(e.tmp, e.database, nil, "")))
	if err != nil {
		return qc, err
	}
	defer db.Close()
	parse := func(s subscription) live.Subscription {
		sub, err := live.ParseClientMessage(s.message())
		if err != nil {
			panic("the bench's own subscription is refused: " + err.Error()) // TestParseHeadOfRealMessage checks them
		}
		return sub
	}
	var spread []live.Subscription
	for _, s := range spreadFilters()[:e.o.views] {
		spread = append(spread, parse(s))
	}

	// Alone: a short tick gives more samples; each tick's work is well below it here.
	var ones, spreads []int64
	var queries, ticks uint64
	measure := func(subs []live.Subscription, tick time.Duration, n int) ([][]int64, error) {
		hub := live.NewHub(db, live.Options{Tick: tick}, slog.New(slog.DiscardHandler))
		defer func() {
			st := hub.Stats()
			queries, ticks = queries+st.Queries, ticks+st.Ticks
			hub.Close()
		}()
		return offerTimes(ctx, hub, subs, n)
	}
	lags, err := measure([]live.Subscription{parse(executive5m)}, 250*time.Millisecond, 20)
	if err != nil {
		return qc, err
	}
	ones = lags[0]
	for i, sub := range spread {
		if i == 10 {
			break
		}
		lags, err := measure([]live.Subscription{sub}, 250*time.Millisecond, 4)
		if err != nil {
			return qc, err
		}
		spreads = append(spreads, lags[0]...)
	}
	// In step: every spread view at once, at the real tick.
	lags, err = measure(spread, e.o.tick, 5)
	if err != nil {
		return qc, err
	}
	var firsts, lasts []int64
	for k := range lags[0] {
		first, last := lags[0][k], lags[0][k]
		for _, l := range lags[1:] {
			if k < len(l) {
				first, last = min(first, l[k]), max(last, l[k])
			}
		}
		firsts, lasts = append(firsts, first), append(lasts, last)
	}
	qc.OneView, qc.Spread = summarize(ones), summarize(spreads)
	qc.BurstFirst, qc.Burst = summarize(firsts), summarize(lasts)
	if ticks > 0 {
		qc.PerFeedTick = float64(queries) / float64(ticks)
	}
	e.log.Info("tick cost", "one_view_p50_ms", qc.OneView.P50, "spread_view_p50_ms", qc.Spread.P50,
		"in_step_last_p50_ms", qc.Burst.P50, "views", len(spread), "queries_per_feed_tick", qc.PerFeedTick)
	return qc, nil
}

// offerTimes subscribes one live.Client per subscription and returns, per client, the time
// from each tick to the client being woken with its frame, for n frames after the first (the
// first may be a snapshot offered at subscription).
func offerTimes(ctx context.Context, hub *live.Hub, subs []live.Subscription, n int) ([][]int64, error) {
	clients := make([]*live.Client, len(subs))
	for i, sub := range subs {
		clients[i] = live.NewClient()
		hub.Subscribe(clients[i], sub)
	}
	out := make([][]int64, len(subs))
	errc := make(chan error, len(subs))
	for i, c := range clients {
		go func() {
			defer hub.Leave(c, live.ClientGone)
			seen := 0
			for seen <= n {
				select {
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				case <-time.After(30 * time.Second):
					errc <- context.DeadlineExceeded
					return
				case <-c.Wake():
				}
				for {
					msg, ok := c.TryNext()
					if !ok {
						break
					}
					now := time.Now().UnixNano()
					h, ok := parseHead(msg[:min(len(msg), headBytes)])
					if !ok || h.typ == "error" {
						continue
					}
					if seen > 0 {
						out[i] = append(out[i], now-h.tick)
					}
					seen++
				}
			}
			errc <- nil
		}()
	}
	for range clients {
		if err := <-errc; err != nil {
			return nil, err
		}
	}
	return out, nil
}
