// Package ingest makes accepted events durable. A single Writer goroutine groups the events of
// concurrent requests into one ClickHouse insert per flush (by size and by time), drops events
// already stored, and answers each request only once its events are committed.
//
// Duplicates: event_id is the idempotency key. An event is a duplicate when an event with the
// same event_id and the same occurred_at second is already stored, or comes earlier in the same
// flush. The horizon is therefore the raw table's retention: a retry of a stored event is
// recognised however late it comes, as long as it carries the same occurred_at (a retry re-sends
// the same event, so it does). Flushes run one at a time, so two requests carrying the same
// event through one node cannot both store it; two nodes behind a load balancer can, in the
// narrow window where both flush the same new event in the same instant.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store"
)

// Sink is where a Writer stores events: the ClickHouse store in production.
type Sink interface {
	ExistingKeys(ctx context.Context, evs []event.Event) (map[store.Key]bool, error)
	InsertEvents(ctx context.Context, evs []event.Event, receivedAt time.Time) error
}

// Options tunes the Writer. Zero values take the defaults below.
type Options struct {
	// FlushInterval is the longest an event waits before its flush starts. It bounds the
	// acknowledgement latency at low load; ClickHouse prefers few inserts, so keep it >= 50 ms.
	FlushInterval time.Duration
	// FlushRows starts a flush as soon as this many events wait.
	FlushRows int
	// QueueRows bounds the events waiting for a flush or in one. A request that would exceed it
	// is refused at once with ErrOverloaded (HTTP 503 + Retry-After), so memory stays bounded
	// whatever the offered load.
	QueueRows int
	// FlushTimeout bounds one flush (lookup and insert) against a ClickHouse that hangs.
	FlushTimeout time.Duration
}

// Defaults for Options.
const (
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultFlushRows     = 20_000
	DefaultQueueRows     = 200_000
	DefaultFlushTimeout  = 10 * time.Second
)

func (o Options) withDefaults() Options {
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.FlushRows <= 0 {
		o.FlushRows = DefaultFlushRows
	}
	if o.QueueRows <= 0 {
		o.QueueRows = DefaultQueueRows
	}
	if o.QueueRows < o.FlushRows {
		o.QueueRows = o.FlushRows
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = DefaultFlushTimeout
	}
	return o
}

// ErrOverloaded means the queue is full: the client should retry later.
var ErrOverloaded = errors.New("ingest queue is full")

// ErrClosed means the Writer is shutting down.
var ErrClosed = errors.New("ingest is shutting down")

// Result is what happened to the events of one Write.
type Result struct {
	Accepted   int // stored by this request
	Duplicates int // already stored, or repeated within the flush
}

// StoreError is a flush that failed; Unavailable tells whether ClickHouse could not be reached.
type StoreError struct {
	Err         error
	Unavailable bool
}

func (e *StoreError) Error() string { return "store events: " + e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

type request struct {
	events  []event.Event
	arrived time.Time
	done    chan outcome // buffered: the writer never waits for a request that went away
}

type outcome struct {
	res Result
	err error
}

// Writer is the single writer of events. Create it with New, stop it with Close.
type Writer struct {
	sink Sink
	opts Options
	log  *slog.Logger

	in      chan *request
	mu      sync.Mutex
	queued  int // rows accepted into the queue and not yet answered
	closing bool
	stopped chan struct{}
}

// New starts a Writer.
func New(sink Sink, opts Options, log *slog.Logger) *Writer {
	opts = opts.withDefaults()
	w := &Writer{
		sink:    sink,
		opts:    opts,
		log:     log,
		in:      make(chan *request, opts.QueueRows), // never full: queued rows bound it first
		stopped: make(chan struct{}),
	}
	go w.run()
	return w
}

// Write queues events for the next flush and waits until they are committed. ctx only bounds
// the wait: events already queued are still written if the caller goes away.
func (w *Writer) Write(ctx context.Context, evs []event.Event) (Result, error) {
	if len(evs) == 0 {
		return Result{}, nil
	}
	w.mu.Lock()
	switch {
	case w.closing:
		w.mu.Unlock()
		return Result{}, ErrClosed
	case w.queued+len(evs) > w.opts.QueueRows:
		w.mu.Unlock()
		return Result{}, ErrOverloaded
	}
	w.queued += len(evs)
	r := &request{events: evs, arrived: time.Now(), done: make(chan outcome, 1)}
	w.in <- r
	w.mu.Unlock()
	select {
	case o := <-r.done:
		return o.res, o.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Queued is the number of events waiting for or in a flush.
func (w *Writer) Queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}

// Close stops accepting events, flushes what is queued and waits for the flush to end or ctx.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closing {
		w.closing = true
		close(w.in)
	}
	w.mu.Unlock()
	select {
	case <-w.stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ingest: %d events not flushed at shutdown: %w", w.Queued(), ctx.Err())
	}
}

func (w *Writer) run() {
	defer close(w.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		first, ok := <-w.in
		if !ok {
			return
		}
		pending, rows := []*request{first}, len(first.events)
		// The flush is due FlushInterval after the oldest event arrived, not after the writer
		// got to it: requests that came in during the previous flush have waited already.
		timer.Reset(time.Until(first.arrived.Add(w.opts.FlushInterval)))
		open := true
	gather:
		for rows < w.opts.FlushRows {
			// Take what is already queued before looking at the timer, so that a due flush
			// still carries every waiting request.
			select {
			case r, ok := <-w.in:
				if !ok {
					open = false
					break gather
				}
				pending, rows = append(pending, r), rows+len(r.events)
				continue
			default:
			}
			select {
			case r, ok := <-w.in:
				if !ok {
					open = false
					break gather
				}
				pending, rows = append(pending, r), rows+len(r.events)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		w.flush(pending, rows)
		if !open {
			return
		}
	}
}

// flush stores the new events of pending requests in one insert and answers each request.
func (w *Writer) flush(pending []*request, rows int) {
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.FlushTimeout)
	defer cancel()
	results, err := w.commit(ctx, pending, rows)
	// Free the room before answering: a client that sends its next request as soon as it has
	// its answer must not be refused with ErrOverloaded by its own, finished, rows.
	w.mu.Lock()
	w.queued -= rows
	w.mu.Unlock()
	for i, r := range pending {
		if err != nil {
			r.done <- outcome{err: err}
		} else {
			r.done <- outcome{res: results[i]}
		}
	}
}

func (w *Writer) commit(ctx context.Context, pending []*request, rows int) ([]Result, error) {
	all := make([]event.Event, 0, rows)
	for _, r := range pending {
		all = append(all, r.events...)
	}
	stored, err := w.sink.ExistingKeys(ctx, all)
	if err != nil {
		return nil, &StoreError{Err: err, Unavailable: store.Unavailable(err)}
	}
	results := make([]Result, len(pending))
	fresh := all[:0] // reuses all: each event is read before its slot is overwritten
	i := 0
	for ri, r := range pending {
		for range r.events {
			e := all[i]
			i++
			k := store.KeyOf(&e)
			if stored[k] {
				results[ri].Duplicates++
				continue
			}
			stored[k] = true
			results[ri].Accepted++
			fresh = append(fresh, e)
		}
	}
	start := time.Now()
	if err := w.sink.InsertEvents(ctx, fresh, start.UTC()); err != nil {
		return nil, &StoreError{Err: err, Unavailable: store.Unavailable(err)}
	}
	w.log.Debug("flushed", "events", len(fresh), "duplicates", rows-len(fresh), "requests", len(pending), "took", time.Since(start))
	return results, nil
}
