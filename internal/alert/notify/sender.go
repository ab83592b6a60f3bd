package notify

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// endpoint is a destination of any item type, as the sender that owns it sees it.
type endpoint interface {
	run(ctx context.Context, stop <-chan struct{})
	shut()
	drop(n int)
	snapshot() DestinationStats
}

// core is what both senders share: their destinations, the ledger of alerts taken, and the
// goroutines' lifecycle.
type core struct {
	kind      string
	opts      Delivery
	ownClient bool // made by the sender, so its idle connections are closed with it
	workers   *workers
	ends      []endpoint

	mu     sync.Mutex // guards ledger
	ledger *ledger
}

// resolvedRetention is how long a resolved alert is remembered (and, by the Alertmanager
// sender, re-sent): Prometheus' value, long enough for a resolve to get through a short
// outage of the destination.
const resolvedRetention = 15 * time.Minute

func newCore(kind string, urls []string, opts Delivery) (*core, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("%s: no URL to send to", kind)
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s: URL %q: want http(s)://host[:port][/path], as ParseWebhookURLs and ParseAlertmanagerURLs return", kind, redactRaw(raw))
		}
	}
	opts, own := opts.withDefaults()
	return &core{
		kind: kind, opts: opts, ownClient: own, workers: newWorkers(),
		ledger: newLedger(resolvedRetention),
	}, nil
}

// take validates alerts and records them in the ledger; it returns the valid ones whose status
// changed, normalized. Invalid ones are logged and counted as dropped on every destination.
func (c *core) take(alerts []Alert) (changed []Alert) {
	now := time.Now()
	invalid := 0
	c.mu.Lock()
	for _, a := range alerts {
		if err := validate(&a); err != nil {
			invalid++
			c.opts.Logger.Error("alert delivery: invalid alert dropped", "kind", c.kind, "labels", a.Labels, "err", err)
			continue
		}
		if a, ok := c.ledger.take(a, now); ok {
			changed = append(changed, a)
		}
	}
	c.ledger.prune(now)
	c.mu.Unlock()
	if invalid > 0 {
		for _, e := range c.ends {
			e.drop(invalid)
		}
	}
	return changed
}

func (c *core) start(extra ...func(ctx context.Context, stop <-chan struct{})) {
	fns := extra
	for _, e := range c.ends {
		fns = append(fns, e.run)
	}
	c.workers.start(fns...)
}

// close stops the goroutines (letting them deliver what waits until ctx ends or a destination
// fails) and joins them. Its error counts the alerts lost on the way.
func (c *core) close(ctx context.Context) error {
	before := c.dropped()
	if !c.workers.close(ctx) {
		return nil
	}
	for _, e := range c.ends {
		e.shut() // never started, or already shut by its worker
	}
	if c.ownClient {
		c.opts.Client.CloseIdleConnections() // their goroutines end with them
	}
	if lost := c.dropped() - before; lost > 0 {
		return fmt.Errorf("%s: %d alerts not delivered at shutdown", c.kind, lost)
	}
	return nil
}

func (c *core) dropped() (n uint64) {
	for _, e := range c.ends {
		n += e.snapshot().Dropped
	}
	return n
}

// stats are the counts of every destination, in the order of the URLs.
func (c *core) stats() []DestinationStats {
	out := make([]DestinationStats, len(c.ends))
	for i, e := range c.ends {
		out[i] = e.snapshot()
	}
	return out
}
