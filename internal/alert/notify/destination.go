package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Delivery is how every destination of a sender is delivered to. The zero value of a field
// takes its default.
type Delivery struct {
	// QueueSize bounds the alerts waiting per destination (default 10000). When a destination
	// falls behind (down, slow, failing), the oldest waiting alerts are dropped and counted in
	// DestinationStats.Dropped. The notification being sent is held besides them.
	QueueSize int
	// Timeout bounds one HTTP request, connecting included (default 10s). A request that takes
	// longer counts as failed and is retried.
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one notification (default 10); after the last one
	// its alerts are dropped and counted. A 4xx answer other than 408 and 429 is not retried:
	// the destination refuses the payload, and sending it again would not change that.
	MaxAttempts int
	// MinBackoff is the wait after a first failed attempt (default 1s); each next failure
	// doubles it, up to MaxBackoff (default 1m). Each wait is drawn at random between half of
	// it and all of it, so that servers coming back are not hit by every sender at once.
	MinBackoff, MaxBackoff time.Duration
	// Client sends the requests (default: a client of the sender's own that honours
	// HTTPS_PROXY and NO_PROXY).
	Client *http.Client
	// Logger gets one line per failed notification (default slog.Default()).
	Logger *slog.Logger
}

// withDefaults fills in the defaults; own says whether the client is the sender's own.
func (d Delivery) withDefaults() (_ Delivery, own bool) {
	if d.QueueSize <= 0 {
		d.QueueSize = 10000
	}
	if d.Timeout <= 0 {
		d.Timeout = 10 * time.Second
	}
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = 10
	}
	if d.MinBackoff <= 0 {
		d.MinBackoff = time.Second
	}
	if d.MaxBackoff <= 0 {
		d.MaxBackoff = time.Minute
	}
	d.MaxBackoff = max(d.MaxBackoff, d.MinBackoff)
	if d.Client == nil {
		d.Client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		own = true
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return d, own
}

// DestinationStats are the counts of one destination since its sender was made. Counters only
// grow; Queued is now.
type DestinationStats struct {
	// Kind is "webhook" or "alertmanager".
	Kind string
	// URL is where notifications are posted, with a password and query values replaced by
	// "xxxxx" (a secret in the path shows: keep secrets in user:password@ or the query).
	URL string
	// Sent counts notifications (HTTP requests) the destination accepted with a 2xx answer,
	// AlertsSent the alerts in them.
	Sent, AlertsSent uint64
	// Failed counts attempts that failed: no connection, no answer within Delivery.Timeout,
	// or an answer other than 2xx.
	Failed uint64
	// Retries counts attempts that repeated a failed one.
	Retries uint64
	// Dropped counts alerts given up for this destination: pushed out of a full queue (oldest
	// first), refused with a 4xx, out of attempts, still waiting at Close, given after Close,
	// or invalid (a bug of the caller, logged).
	Dropped uint64
	// Queued is the alerts waiting now; QueueCapacity bounds it (Delivery.QueueSize).
	Queued, QueueCapacity int
}

// destination is one URL and its worker: a bounded queue of items of type T, batched into
// one request body by encode.
type destination[T any] struct {
	kind     string
	url      string
	redacted string
	opts     *Delivery
	batch    int // items per request
	encode   func([]T) ([]byte, error)
	header   http.Header

	mu     sync.Mutex
	q      *queue[T]
	closed bool
	stats  DestinationStats
	wake   chan struct{} // one pending wake-up is enough: the worker empties the queue
}

func newDestination[T any](kind, rawURL string, opts *Delivery, batch int, encode func([]T) ([]byte, error)) *destination[T] {
	redacted := redactRaw(rawURL)
	return &destination[T]{
		kind: kind, url: rawURL, redacted: redacted, opts: opts, batch: batch, encode: encode,
		header: http.Header{
			"Content-Type": {"application/json"},
			"User-Agent":   {"Truthboard-alerts"},
		},
		q:    newQueue[T](opts.QueueSize),
		wake: make(chan struct{}, 1),
		stats: DestinationStats{
			Kind: kind, URL: redacted, QueueCapacity: opts.QueueSize,
		},
	}
}

// push queues v (n alerts) without waiting: a full queue drops its oldest alerts.
func (d *destination[T]) push(key string, n int, v T) {
	d.mu.Lock()
	if d.closed {
		d.stats.Dropped += uint64(n)
		d.mu.Unlock()
		return
	}
	if dropped := d.q.push(key, n, v); dropped > 0 {
		d.stats.Dropped += uint64(dropped)
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// shut refuses further alerts and drops (and counts) those still waiting.
func (d *destination[T]) shut() {
	d.mu.Lock()
	d.closed = true
	d.stats.Dropped += uint64(d.q.clear())
	d.mu.Unlock()
}

// drop counts alerts given up without a send.
func (d *destination[T]) drop(n int) {
	d.mu.Lock()
	d.stats.Dropped += uint64(n)
	d.mu.Unlock()
}

func (d *destination[T]) snapshot() DestinationStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Queued = d.q.alerts
	return s
}

// run delivers the queue in order until stop is closed and the queue is empty, or ctx ends
// (then what is left is dropped). ctx also cancels a request in flight.
func (d *destination[T]) run(ctx context.Context, stop <-chan struct{}) {
	defer d.shut()
	for ctx.Err() == nil {
		d.mu.Lock()
		batch, n := d.q.take(d.batch)
		d.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-d.wake:
				continue
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
		if !d.deliver(ctx, stop, batch, n) && closed(stop) {
			return // shutting down and the destination fails: drop the rest, do not wait on each
		}
	}
}

// deliver sends one batch of n alerts, retrying with backoff. It says false when the
// destination failed to take it (no answer, or an answer to try again later); a refused batch
// is dropped but the destination works. After stop, a failure is final: Close should not wait out the backoff of a destination that
// is down.
func (d *destination[T]) deliver(ctx context.Context, stop <-chan struct{}, batch []T, n int) bool {
	body, err := d.encode(batch)
	if err != nil {
		d.opts.Logger.Error("alert delivery: cannot encode alerts", "kind", d.kind, "url", d.redacted, "alerts", n, "err", err)
		d.drop(n)
		return true
	}
	for attempt := 1; ; attempt++ {
		err := d.post(ctx, body)
		d.mu.Lock()
		if attempt > 1 {
			d.stats.Retries++
		}
		if err == nil {
			d.stats.Sent++
			d.stats.AlertsSent += uint64(n)
			d.mu.Unlock()
			return true
		}
		d.stats.Failed++
		d.mu.Unlock()
		var refused *refusedError
		isRefused := errors.As(err, &refused)
		if isRefused || attempt >= d.opts.MaxAttempts || ctx.Err() != nil || closed(stop) {
			d.opts.Logger.Error("alert delivery failed; alerts dropped", "kind", d.kind, "url", d.redacted,
				"alerts", n, "attempts", attempt, "err", err)
			d.drop(n)
			return isRefused
		}
		if attempt == 1 {
			d.opts.Logger.Warn("alert delivery failed; retrying", "kind", d.kind, "url", d.redacted,
				"alerts", n, "err", err)
		}
		select {
		case <-time.After(backoff(attempt, d.opts.MinBackoff, d.opts.MaxBackoff)):
		case <-stop: // one last attempt now, then give up
		case <-ctx.Done():
		}
	}
}

// refusedError is an answer that sending again would not change (a 4xx but 408 and 429).
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }

// post sends body once, within the request timeout.
func (d *destination[T]) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return &refusedError{fmt.Errorf("build request: %w", err)}
	}
	req.Header = d.header.Clone()
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		// Without url.Error's copy of the URL, whose query may hold a token: the log line
		// names the destination already, redacted.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	// The start of the answer says why it failed (Alertmanager explains a 400 in its body); the
	// rest is read so the connection can be reused.
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("answered %s: %s", resp.Status, strings.TrimSpace(string(head)))
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return &refusedError{err}
	}
	return err
}

// backoff is the wait after the attempt-th failure: min doubled per failure up to max, drawn
// between half of it and all of it (jitter).
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// workers is a sender's goroutines: started once, stopped and joined by close.
type workers struct {
	mu      sync.Mutex
	started bool
	stopped bool
	stop    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// running counts the goroutines not yet returned: 0 once close has returned.
	running atomic.Int32
}

func newWorkers() *workers {
	ctx, cancel := context.WithCancel(context.Background())
	return &workers{stop: make(chan struct{}), ctx: ctx, cancel: cancel}
}

// start runs each fn in a goroutine of its own, once; after close it does nothing.
func (w *workers) start(fns ...func(ctx context.Context, stop <-chan struct{})) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.stopped {
		return
	}
	w.started = true
	for _, fn := range fns {
		w.wg.Add(1)
		w.running.Add(1)
		go func() {
			defer w.wg.Done()
			defer w.running.Add(-1)
			fn(w.ctx, w.stop)
		}()
	}
}

// close asks the goroutines to finish their work, cancels it when ctx ends, and returns once
// every goroutine has returned. It says whether it was the first call.
func (w *workers) close(ctx context.Context) bool {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return false
	}
	w.stopped = true
	close(w.stop)
	w.mu.Unlock()
	exited := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-ctx.Done():
		w.cancel()
		<-exited
	}
	w.cancel()
	return true
}
