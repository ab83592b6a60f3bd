// Package ingest makes accepted events durable and moves them to ClickHouse exactly once.
//
// Write appends a request's events to the spool (a segmented log on local disk) and returns
// once they are synced: that is what a 202 means. A single drainer goroutine takes the spool's
// records in order, in batches of up to FlushRows events (waiting up to FlushInterval for a
// batch to fill), drops the events ClickHouse already has, inserts the rest in one insert and
// only then commits the batch, which lets the spool remove delivered segments. While ClickHouse
// is down the drainer retries with backoff and the spool grows up to its quota; Write keeps
// answering from local disk meanwhile.
//
// Duplicates: event_id is the idempotency key. An event is a duplicate when an event with the
// same event_id and the same occurred_at second is already stored, or comes earlier in the same
// batch. The drainer checks every batch against ClickHouse before inserting it, also a batch
// that may already have landed before a crash or a failed answer, so neither the raw table nor
// the rollups count an event twice. An insert cut off by a crash or a timeout may still be
// landing in ClickHouse when it is looked up again, so such a lookup first waits until no
// insert of this spool's runs (Sink.WaitForInserts). The horizon is therefore the raw table's retention. The
// answer to a request counts as duplicates the events repeated within it and those this server
// acknowledged among its last RecentKeys events; a retry of an older event is answered as
// accepted and still stored once. Two nodes behind a load balancer can both store the same new
// event in the narrow window where both insert it in the same instant.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/spool"
)

// Sink is where the drainer stores events: the ClickHouse store in production.
type Sink interface {
	ExistingKeys(ctx context.Context, evs []event.Event) (map[event.Key]bool, error)
	// InsertReceived inserts events under the ClickHouse query id queryID.
	InsertReceived(ctx context.Context, evs []event.Event, received []time.Time, queryID string) error
	// WaitForInserts returns once ClickHouse runs no insert whose query id starts with
	// prefix: one sent before a crash or a failed attempt may still be landing.
	WaitForInserts(ctx context.Context, prefix string) error
}

// Options tunes ingest. Zero values take the defaults below.
type Options struct {
	// Spool is where acknowledged events wait for ClickHouse; Spool.Dir is required.
	Spool spool.Options
	// FlushInterval is the longest an event waits in the spool for its batch to fill before
	// it is sent to ClickHouse, which prefers few inserts: keep it >= 50 ms.
	FlushInterval time.Duration
	// FlushRows is the most events of one insert.
	FlushRows int
	// FlushTimeout bounds one attempt (lookup and insert) against a ClickHouse that hangs.
	FlushTimeout time.Duration
	// RecentKeys is how many acknowledged events the answer's duplicate count remembers.
	RecentKeys int
	// Observe, when set, is told of each insert attempt (for metrics).
	Observe func(Attempt)
}

// Attempt is one try at sending a batch to ClickHouse.
type Attempt struct {
	Events   int // in the batch
	Inserted int // new events written (0 on error)
	Took     time.Duration
	Err      error
}

// Defaults for Options.
const (
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultFlushRows     = 20_000
	DefaultFlushTimeout  = 10 * time.Second
	DefaultRecentKeys    = 100_000
)

func (o Options) withDefaults() Options {
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.FlushRows <= 0 {
		o.FlushRows = DefaultFlushRows
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = DefaultFlushTimeout
	}
	if o.RecentKeys <= 0 {
		o.RecentKeys = DefaultRecentKeys
	}
	return o
}

var (
	// ErrSpoolFull means the spool reached its quota: nothing was made durable; retry later.
	ErrSpoolFull = spool.ErrFull
	// ErrClosed means ingest is shutting down.
	ErrClosed = errors.New("ingest is shutting down")
)

// Result is what happened to the events of one Write.
type Result struct {
	Accepted   int // made durable by this request
	Duplicates int // repeated within the request, or acknowledged before (see the package comment)
}

// Writer takes events into the spool and drains them to ClickHouse. Open it, stop it with Close.
type Writer struct {
	sink  Sink
	spool *spool.Spool
	opts  Options
	log   *slog.Logger

	mu      sync.Mutex
	closing bool
	recent  recentKeys
	// failures counts the drainer's attempts that failed in a row; lastErr is the latest.
	failures int
	lastErr  error
	// drainedSignal is closed and replaced after each committed batch.
	drainedSignal chan struct{}

	// nodePrefix starts the ClickHouse query id of every insert from this spool, the same
	// across restarts (see nodeID); insertPrefix adds this process's start to it, as two
	// processes must not share a query id; inserts counts them (drainer only).
	nodePrefix   string
	insertPrefix string
	inserts      uint64

	cancelDrain context.CancelFunc
	drainStop   chan struct{} // closed when the drainer has returned
}

// Open opens the spool (recovering what a crash left) and starts the drainer.
func Open(sink Sink, opts Options, log *slog.Logger) (*Writer, error) {
	opts = opts.withDefaults()
	sp, err := spool.Open(opts.Spool, log.With("component", "spool"))
	if err != nil {
		return nil, err
	}
	node, err := nodeID(opts.Spool.Dir)
	if err != nil {
		sp.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		nodePrefix:    "truthboard-insert-" + node + "-",
		insertPrefix:  "truthboard-insert-" + node + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-",
		sink:          sink,
		spool:         sp,
		opts:          opts,
		log:           log,
		recent:        newRecentKeys(opts.RecentKeys),
		drainedSignal: make(chan struct{}),
		cancelDrain:   cancel,
		drainStop:     make(chan struct{}),
	}
	go w.drain(ctx)
	return w, nil
}

// Write makes the new events of evs durable in the spool and returns once they are synced.
// Nothing of the request is kept when it fails.
func (w *Writer) Write(ctx context.Context, evs []event.Event) (Result, error) {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return Result{}, ErrClosed
	}
	fresh := make([]event.Event, 0, len(evs))
	inRequest := make(map[event.Key]bool, len(evs))
	for i := range evs {
		k := evs[i].Key()
		if inRequest[k] || w.recent.has(k) {
			continue
		}
		inRequest[k] = true
		fresh = append(fresh, evs[i])
	}
	w.mu.Unlock()
	res := Result{Accepted: len(fresh), Duplicates: len(evs) - len(fresh)}
	if len(fresh) == 0 {
		return res, nil
	}
	if err := w.spool.Append(fresh, time.Now()); err != nil {
		if errors.Is(err, spool.ErrClosed) {
			return Result{}, ErrClosed
		}
		return Result{}, err
	}
	// Only now, durable, may a retry be answered as a duplicate of these events.
	w.mu.Lock()
	for i := range fresh {
		w.recent.add(fresh[i].Key())
	}
	w.mu.Unlock()
	return res, nil
}

// Stats describe the spool and the drainer.
type Stats struct {
	spool.Stats
	// Failures is the drainer's failed attempts in a row (0 when ClickHouse takes inserts).
	Failures int
	// LastError is the latest failure while Failures > 0.
	LastError string
}

// Stats are the figures of ingest now.
func (w *Writer) Stats() Stats {
	st := Stats{Stats: w.spool.Stats()}
	w.mu.Lock()
	defer w.mu.Unlock()
	st.Failures = w.failures
	if w.failures > 0 && w.lastErr != nil {
		st.LastError = w.lastErr.Error()
	}
	return st
}

// WaitDrained waits until every event acknowledged so far is in ClickHouse, or ctx ends.
func (w *Writer) WaitDrained(ctx context.Context) error {
	for {
		w.mu.Lock()
		signal := w.drainedSignal
		w.mu.Unlock()
		if w.spool.Stats().Events == 0 {
			return nil
		}
		select {
		case <-signal:
		case <-w.drainStop:
			return fmt.Errorf("ingest: the drainer stopped with %d events in the spool", w.spool.Stats().Events)
		case <-ctx.Done():
			return fmt.Errorf("ingest: %d events still in the spool: %w", w.spool.Stats().Events, ctx.Err())
		}
	}
}

// Close stops taking events, sends what the spool holds to ClickHouse until ctx ends or an
// attempt fails, and closes the spool. What is not sent stays on disk for the next start.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	drained := make(chan error, 1)
	go func() { drained <- w.WaitDrained(ctx) }()
	var err error
	// Give up at once when ClickHouse is failing: the spool keeps the events.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err = <-drained:
			break wait
		case <-tick.C:
			if st := w.Stats(); st.Failures > 0 {
				err = fmt.Errorf("ingest: ClickHouse is failing (%s); %d events stay in the spool for the next start", st.LastError, st.Events)
				break wait
			}
		}
	}
	w.cancelDrain()
	<-w.drainStop
	if cerr := w.spool.Close(); err == nil {
		err = cerr
	}
	return err
}

// drain moves the spool's records to ClickHouse, a batch at a time, until ctx ends.
func (w *Writer) drain(ctx context.Context) {
	defer close(w.drainStop)
	uncertain := true
	for {
		b, err := w.spool.Next(ctx, w.opts.FlushRows, w.opts.FlushInterval)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// The spool cannot read its own record: a damaged disk or a bug. Retrying keeps
			// the events; skipping would lose acknowledged ones.
			w.failed(err)
			if !sleep(ctx, w.backoff()) {
				return
			}
			continue
		}
		for !w.send(ctx, b, uncertain) {
			uncertain = true
			if !sleep(ctx, w.backoff()) {
				return
			}
		}
		uncertain = false
		if err := w.spool.Commit(b); err != nil {
			w.log.Error("spool commit", "err", err)
		}
		w.mu.Lock()
		close(w.drainedSignal)
		w.drainedSignal = make(chan struct{})
		w.mu.Unlock()
	}
}

// send stores the events of b that ClickHouse does not have yet; false when it failed.
// uncertain says an insert may be in flight from before: the first batch after Open (a crash
// may have left one) and every attempt after a failed one (a timed-out or cut-off insert can
// still land). The lookup then waits for it, or it would miss its events.
func (w *Writer) send(ctx context.Context, b spool.Batch, uncertain bool) bool {
	ctx, cancel := context.WithTimeout(ctx, w.opts.FlushTimeout)
	defer cancel()
	start := time.Now()
	var inserted int
	err := error(nil)
	if uncertain {
		err = w.sink.WaitForInserts(ctx, w.nodePrefix)
	}
	if err == nil {
		inserted, err = w.insertNew(ctx, b)
	}
	if w.opts.Observe != nil {
		w.opts.Observe(Attempt{Events: len(b.Events), Inserted: inserted, Took: time.Since(start), Err: err})
	}
	if err != nil {
		w.failed(err)
		return false
	}
	w.mu.Lock()
	if w.failures > 0 {
		w.log.Info("ClickHouse takes inserts again", "failed_attempts", w.failures)
	}
	w.failures, w.lastErr = 0, nil
	w.mu.Unlock()
	w.log.Debug("drained", "events", len(b.Events), "inserted", inserted, "requests", b.Records(), "took", time.Since(start))
	return true
}

func (w *Writer) insertNew(ctx context.Context, b spool.Batch) (int, error) {
	stored, err := w.sink.ExistingKeys(ctx, b.Events)
	if err != nil {
		return 0, err
	}
	fresh := make([]event.Event, 0, len(b.Events))
	received := make([]time.Time, 0, len(b.Events))
	for i := range b.Events {
		k := b.Events[i].Key()
		if stored[k] {
			continue
		}
		stored[k] = true
		fresh = append(fresh, b.Events[i])
		received = append(received, b.Received[i])
	}
	w.inserts++
	if err := w.sink.InsertReceived(ctx, fresh, received, w.insertPrefix+strconv.FormatUint(w.inserts, 10)); err != nil {
		return 0, err
	}
	return len(fresh), nil
}

func (w *Writer) failed(err error) {
	w.mu.Lock()
	w.failures++
	w.lastErr = err
	n := w.failures
	w.mu.Unlock()
	if n == 1 || n%20 == 0 {
		w.log.Warn("events wait in the spool: ClickHouse insert failed; retrying", "attempts", n, "unavailable", unavailable(err), "err", err)
	}
}

// unavailable reports whether err says that ClickHouse could not be reached, as opposed to a
// query it refused: the sink marks such errors with an Unavailable method.
func unavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// backoff is the wait before the next attempt: 100 ms doubling up to 5 s.
func (w *Writer) backoff() time.Duration {
	w.mu.Lock()
	n := w.failures
	w.mu.Unlock()
	d := 100 * time.Millisecond
	for i := 1; i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// recentKeys remembers the last n keys added, for the answer's duplicate count.
type recentKeys struct {
	set  map[event.Key]struct{}
	ring []event.Key
	next int
}

func newRecentKeys(n int) recentKeys {
	return recentKeys{set: make(map[event.Key]struct{}), ring: make([]event.Key, 0, n)}
}

func (r *recentKeys) has(k event.Key) bool { _, ok := r.set[k]; return ok }

func (r *recentKeys) add(k event.Key) {
	if _, ok := r.set[k]; ok {
		return
	}
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, k)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = k
		r.next = (r.next + 1) % len(r.ring)
	}
	r.set[k] = struct{}{}
}

// nodeID names the spool in the query ids of its inserts, so that after a crash the next
// process finds (and if need be ends) the inserts of the one before: it is kept in the
// spool's folder.
func nodeID(dir string) (string, error) {
	path := filepath.Join(dir, "node-id")
	if b, err := os.ReadFile(path); err == nil && len(b) == 16 {
		return string(b), nil
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(id), 0o600); err != nil {
		return "", fmt.Errorf("spool: save the node id: %w", err)
	}
	return id, nil
}
