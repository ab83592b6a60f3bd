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
// What can never reach ClickHouse is kept aside in the dead-letter (internal/deadletter)
// instead of blocking everything behind it: a spool record whose events cannot be decoded, at
// once; and an event ClickHouse refuses for its values (an error the sink marks InvalidData:
// a type, parse or constraint error), once the batch was refused RefusedAttempts times: the
// batch is then split in halves until the refused events are alone, so the valid ones of the
// same batch still land, once. Any other error, ClickHouse away or failing for reasons of its
// own (a missing table, memory, too many parts), is retried for ever, as the data is not at
// fault. When the dead-letter is full, the record or event waits in the spool and is tried
// again: nothing acknowledged is dropped.
//
// Duplicates: event_id is the idempotency key. An event is a duplicate when an event with the
// same event_id and the same occurred_at second is already stored, or comes earlier in the same
// batch; neither the raw table nor the rollups may count it twice, whatever the retries,
// crashes and failed answers. The drainer asks ClickHouse only about the events that may be
// stored (Sink.ExistingKeys), so that live traffic costs no lookup at all:
//   - at the start, after a failed attempt and while a refused batch is isolated, every event
//     of the batch: an insert that was cut off by a crash or a timeout may still be landing,
//     so the lookup first waits until no insert of this spool's runs (Sink.WaitForInserts);
//   - otherwise, the events that storedKeys cannot rule out: those whose key it holds (it
//     remembers, as hashes, the last StoredKeys events inserted or found stored), and those at
//     or before the newest second it knows nothing about (the newest event stored when the
//     drainer started, Sink.NewestStored, then the newest of the keys it forgot): a late
//     event, or a retry long after the first try;
//   - with claims, also the events older than the claim window less MaxFutureSkew (another
//     node may have stored them under a claim that has expired since);
//   - with LookupEveryBatch (several nodes without claims), every event: another node's
//     inserts are in no index of this one;
//   - while the dead-letter holds entries, every event: an event kept there may also have
//     landed (a view that failed after the raw insert), and `truthboard dead-letter replay`
//     stores events from another process. When entries leave the dead-letter, the drainer
//     reads the newest stored second again (Sink.NewestStored), which covers what a replay
//     stored.
//
// The horizon is therefore the raw table's retention. The answer to a request counts as
// duplicates the events repeated within it and those this server acknowledged among its last
// RecentKeys events; a retry of an older event is answered as accepted and still stored once.
//
// Several nodes: with Options.Claims (internal/claim, a NATS JetStream bucket), a node claims
// each event it made durable, right after the spool's sync and before the 202; the first node
// to claim an event stores it, and every other node that took the same event answers it as a
// duplicate and its drainer leaves it out. The drainer claims, before inserting, every event
// whose claim was not settled at its Write (NATS away then, or a spool recovered after a
// crash), retrying while NATS is away: an event is inserted only by the node that holds its
// claim, whatever the order of the nodes' requests, crashes and outages. Without Claims, two
// nodes can both store the same new event in the window where both insert it at once.
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
	"sync/atomic"
	"time"

	"github.com/truthboard/truthboard/internal/deadletter"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/spool"
)

// Sink is where the drainer stores events: the ClickHouse store in production.
type Sink interface {
	// ExistingKeys returns which of the events are already stored.
	ExistingKeys(ctx context.Context, evs []event.Event) (map[event.Key]bool, error)
	// NewestStored returns the Unix second of the newest occurred_at stored, 0 when none.
	NewestStored(ctx context.Context) (int64, error)
	// InsertReceived inserts events under the ClickHouse query id queryID.
	InsertReceived(ctx context.Context, evs []event.Event, received []time.Time, queryID string) error
	// WaitForInserts returns once ClickHouse runs no insert whose query id starts with
	// prefix, but those of except: one sent before a crash or a failed attempt may still be
	// landing. except are inserts prepared ahead and not sent, which store nothing.
	WaitForInserts(ctx context.Context, prefix string, except ...string) error
}

// Prepared is an insert whose rows are built and whose INSERT is open, not yet sent.
type Prepared = interface {
	// Send stores the rows; its errors are InsertReceived's.
	Send() error
	// Abort drops the insert if it was not sent: ClickHouse stores nothing of it.
	Abort()
}

// Preparer is a Sink that can build an insert ahead of sending it (the store): the drainer
// prepares the next full batch's insert, on another connection, while ClickHouse takes the
// current one, so that ClickHouse does not wait for the drainer's building of the rows.
type Preparer interface {
	PrepareInsert(ctx context.Context, evs []event.Event, received []time.Time, queryID string) (Prepared, error)
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
	// DeadLetter is where records that cannot be decoded and events ClickHouse refuses are
	// kept aside (Dir default: DeadLetterDir(Spool.Dir)).
	DeadLetter deadletter.Options
	// RefusedAttempts is how many times a batch is sent while ClickHouse refuses it for its
	// values before the drainer isolates the events it refuses (default 3): a refusal may
	// come from a schema being changed at that moment.
	RefusedAttempts int
	// Observe, when set, is told of each insert attempt (for metrics).
	Observe func(Attempt)
	// Claims, when set, decides which node stores an event that several nodes took (see the
	// package comment). Nil: one node, nothing to decide.
	Claims Claimer
	// ClaimMemo is how many claims decided at Write the drainer remembers, so it need not ask
	// again (default DefaultClaimMemo); beyond it, the oldest are asked again at drain time.
	ClaimMemo int
	// ClaimWindow is how long a claim lasts (internal/claim's window); required with Claims.
	ClaimWindow time.Duration
	// StoredKeys is how many stored events the drainer remembers so that it need not ask
	// ClickHouse about them (default DefaultStoredKeys: 4 MiB, BenchmarkStoredKeys in docs/benchmarks.md). An
	// event older than the oldest second it remembers is looked up: at 10M events an hour the
	// default covers about a minute and a half of traffic, far more than live events lag.
	StoredKeys int
	// LookupEveryBatch makes the drainer ask ClickHouse about every event of every batch, as
	// several nodes without Claims must: another node's inserts are in no index of this one.
	LookupEveryBatch bool
	// PrepareAhead lets the drainer, with a Preparer sink, prepare the next full batch's
	// insert on a second connection while ClickHouse takes the current one (Preparer): give
	// the drainer two connections of the pool.
	PrepareAhead bool
	// PaceBacklog is the spool backlog, in events, above which Pace holds requests back while
	// ClickHouse takes inserts; 0: Pace never waits. Keep it at 2·FlushRows or more, so that
	// the drainer can read a full batch ahead.
	PaceBacklog int
	// PaceWait is the longest Pace holds a request (default DefaultPaceWait).
	PaceWait time.Duration
}

// Claimer decides, across nodes, which node stores an event: internal/claim.
type Claimer interface {
	// Claim reports for each key whether owner holds its claim (made now or before by
	// owner); false means another owner stores the event.
	Claim(ctx context.Context, owner string, keys []event.Key) ([]bool, error)
}

// Attempt is one try at sending a batch to ClickHouse.
type Attempt struct {
	Events   int // in the batch
	Inserted int // new events written (0 on error)
	LookedUp int // events ClickHouse was asked about before the insert (duplicate check)
	Took     time.Duration
	Err      error
}

// Defaults for Options.
const (
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultFlushRows     = 20_000
	DefaultFlushTimeout  = 10 * time.Second
	DefaultRecentKeys    = 100_000
	DefaultRefusedTries  = 3
	DefaultClaimMemo     = 200_000
	DefaultStoredKeys    = 250_000
	DefaultPaceWait      = 250 * time.Millisecond
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
	if o.DeadLetter.Dir == "" && o.Spool.Dir != "" {
		o.DeadLetter.Dir = DeadLetterDir(o.Spool.Dir)
	}
	if o.RefusedAttempts <= 0 {
		o.RefusedAttempts = DefaultRefusedTries
	}
	if o.ClaimMemo <= 0 {
		o.ClaimMemo = DefaultClaimMemo
	}
	if o.StoredKeys <= 0 {
		o.StoredKeys = DefaultStoredKeys
	}
	if o.PaceWait <= 0 {
		o.PaceWait = DefaultPaceWait
	}
	return o
}

// DeadLetterDir is the default dead-letter folder of the spool in spoolDir.
func DeadLetterDir(spoolDir string) string { return filepath.Join(spoolDir, "dead-letter") }

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
	// Unclaimed is how many accepted events could not be claimed at once (NATS away): they
	// are durable, and claimed before they are inserted.
	Unclaimed int
}

// Writer takes events into the spool and drains them to ClickHouse. Open it, stop it with Close.
type Writer struct {
	sink  Sink
	spool *spool.Spool
	dead  *deadletter.DeadLetter
	opts  Options
	log   *slog.Logger

	// hash gives the keyHash of an event's key, for every memory below.
	hash hasher

	// paced counts the requests Pace holds now.
	paced atomic.Int32

	mu      sync.Mutex
	closing bool
	recent  memo
	// claims remembers the claims decided at Write for the drainer: true when this node holds
	// the claim, false when another node does (with Options.Claims only).
	claims memo
	// failures counts the drainer's attempts that failed in a row; lastErr is the latest.
	failures int
	lastErr  error
	// drainedSignal is closed and replaced after each committed batch; landedSignal after each
	// committed batch that had events (Landed).
	drainedSignal, landedSignal chan struct{}

	// nodePrefix starts the ClickHouse query id of every insert from this spool, the same
	// across restarts (see nodeID); insertPrefix adds this process's start to it, as two
	// processes must not share a query id; inserts counts them (drainer only).
	node         string
	nodePrefix   string
	insertPrefix string
	inserts      uint64
	// preparedInserts counts the inserts prepared ahead, for their query ids (read-ahead only).
	preparedInserts atomic.Uint64
	// steady is true while the drainer's last attempt succeeded outside isolation: only then
	// does the read-ahead prepare inserts (prepare).
	steady atomic.Bool
	// unsent holds the query ids of the inserts prepared ahead and not sent (guarded by mu):
	// they store nothing, so the wait for this node's inserts leaves them out.
	unsent map[string]struct{}
	// uncertain says an insert may still be landing or have landed in part: at the start (a
	// crash may have left one), after a failed attempt and while a refused batch is isolated
	// (drainer only).
	uncertain, isolating bool
	// stored is what the drainer knows of the stored events without asking (drainer only).
	stored storedKeys
	// deadEntries is how many entries the dead-letter held at the last attempt (drainer only).
	deadEntries int

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
	dead, err := deadletter.Open(opts.DeadLetter)
	if err != nil {
		sp.Close()
		return nil, err
	}
	if st := dead.Stats(); st.Records > 0 {
		log.Warn("the dead-letter holds entries that never reached ClickHouse; see truthboard dead-letter list",
			"folder", dead.Dir(), "entries", st.Records, "events", st.Events, "last_reason", st.LastReason)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		node:          node,
		nodePrefix:    "truthboard-insert-" + node + "-",
		insertPrefix:  "truthboard-insert-" + node + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-",
		sink:          sink,
		spool:         sp,
		dead:          dead,
		uncertain:     true,
		stored:        newStoredKeys(opts.StoredKeys),
		hash:          newHasher(),
		opts:          opts,
		log:           log,
		recent:        newMemo(opts.RecentKeys),
		unsent:        map[string]struct{}{},
		drainedSignal: make(chan struct{}),
		landedSignal:  make(chan struct{}),
		cancelDrain:   cancel,
		drainStop:     make(chan struct{}),
	}
	if opts.Claims != nil {
		w.claims = newMemo(opts.ClaimMemo)
	}
	go w.drain(ctx)
	return w, nil
}

// Write makes the new events of evs durable in the spool and returns once they are synced.
// Nothing of the request is kept when it fails.
func (w *Writer) Write(ctx context.Context, evs []event.Event) (Result, error) {
	hashes := make([]keyHash, len(evs))
	for i := range evs {
		hashes[i] = w.hash.of(evs[i].Key())
	}
	var repeated []bool // nil while no event is a duplicate, the usual case
	inRequest := make(map[keyHash]struct{}, len(evs))
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return Result{}, ErrClosed
	}
	// The memory of recent keys first, in a loop of its own: its lookups are cache misses, and
	// with nothing else in the loop the processor waits for several of them at once.
	for i, h := range hashes {
		if w.recent.has(h) {
			if repeated == nil {
				repeated = make([]bool, len(evs))
			}
			repeated[i] = true
		}
	}
	w.mu.Unlock()
	for i, h := range hashes {
		if repeated != nil && repeated[i] {
			continue
		}
		if _, again := inRequest[h]; again {
			if repeated == nil {
				repeated = make([]bool, len(evs))
			}
			repeated[i] = true
			continue
		}
		inRequest[h] = struct{}{}
	}
	fresh, freshHashes := evs, hashes
	if repeated != nil {
		fresh, freshHashes = nil, nil
		for i := range evs {
			if !repeated[i] {
				fresh, freshHashes = append(fresh, evs[i]), append(freshHashes, hashes[i])
			}
		}
	}
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
	for _, h := range freshHashes {
		w.recent.add(h)
	}
	w.mu.Unlock()
	if w.opts.Claims != nil {
		w.claimAtWrite(ctx, fresh, freshHashes, &res)
	}
	return res, nil
}

// claimAtWrite claims the events just made durable, so that the answer counts those another
// node took first as duplicates. When NATS does not answer, the events stay accepted: they are
// in the spool, and the drainer claims them before inserting.
func (w *Writer) claimAtWrite(ctx context.Context, evs []event.Event, hashes []keyHash, res *Result) {
	keys := make([]event.Key, len(evs))
	for i := range evs {
		keys[i] = evs[i].Key()
	}
	held, err := w.opts.Claims.Claim(ctx, w.node, keys)
	if err != nil {
		res.Unclaimed = len(evs)
		w.log.Debug("claims not settled at write; the drainer claims the events", "events", len(evs), "err", err)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, h := range hashes {
		w.claims.put(h, held[i])
		if !held[i] {
			res.Accepted--
			res.Duplicates++
		}
	}
}

// ownEvents returns the events of a batch that this node stores: with claims, those whose
// claim it holds, claiming the ones not settled at Write first (retrying while NATS is away).
// False when ctx ended first.
func (w *Writer) ownEvents(ctx context.Context, p pending) (pending, bool) {
	if w.opts.Claims == nil || p.len() == 0 {
		return p, true
	}
	held := make([]bool, p.len())
	var ask []int
	w.mu.Lock()
	for i, h := range p.hashes {
		isHeld, ok := w.claims.get(h)
		if !ok {
			ask = append(ask, i)
		}
		held[i] = isHeld
	}
	w.mu.Unlock()
	if len(ask) > 0 {
		keys := make([]event.Key, len(ask))
		for j, i := range ask {
			keys[j] = p.keys[i]
		}
		for {
			answers, err := w.opts.Claims.Claim(ctx, w.node, keys)
			if err == nil {
				for j, i := range ask {
					held[i] = answers[j]
				}
				break
			}
			w.failed(fmt.Errorf("claim events before inserting them: %w", err))
			if !sleep(ctx, w.backoff()) {
				return pending{}, false
			}
		}
	}
	own := p.only(func(i int) bool { return held[i] })
	if skipped := p.len() - own.len(); skipped > 0 {
		w.log.Debug("events stored by another node left out", "events", skipped)
	}
	return own, true
}

// Stats describe the spool and the drainer.
type Stats struct {
	spool.Stats
	// Failures is the drainer's failed attempts in a row (0 when ClickHouse takes inserts).
	Failures int
	// LastError is the latest failure while Failures > 0.
	LastError string
	// DeadLetter is what was kept aside: records that cannot be decoded, events ClickHouse
	// refused.
	DeadLetter deadletter.Stats
}

// Stats are the figures of ingest now.
func (w *Writer) Stats() Stats {
	st := Stats{Stats: w.spool.Stats(), DeadLetter: w.dead.Stats()}
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

// MaxPaced is how many requests Pace holds at once; the ones beyond go on at once, as
// without pacing, so that waiting requests never pile up without bound.
const MaxPaced = 1024

// Pace holds an ingest request back while the drainer is behind, and returns how long it did:
// while the spool holds more than PaceBacklog events and ClickHouse takes inserts, it waits for
// the drainer's commits until the backlog is at most PaceBacklog again, for at most PaceWait.
// A burst up to PaceBacklog events is taken in at full speed; beyond it, requests are
// acknowledged about as fast as ClickHouse stores them, so that decoding them takes the CPU at
// the pace of the inserts instead of all at once while ClickHouse's inserts wait for it
// (docs/benchmarks.md, Ingest). It does not wait while the drainer's last attempt failed
// (ClickHouse away: the spool takes the events up to its quota), while ingest shuts down, or
// when MaxPaced requests wait already. Call it before the request takes any budget or memory.
func (w *Writer) Pace(ctx context.Context) time.Duration {
	if w.opts.PaceBacklog <= 0 || w.spool.Backlog() <= int64(w.opts.PaceBacklog) {
		return 0
	}
	if w.paced.Add(1) > MaxPaced {
		w.paced.Add(-1)
		return 0
	}
	defer w.paced.Add(-1)
	start := time.Now()
	var deadline *time.Timer // set once the request waits
	for {
		w.mu.Lock()
		committed, goOn := w.drainedSignal, w.failures > 0 || w.closing
		w.mu.Unlock()
		if goOn || w.spool.Backlog() <= int64(w.opts.PaceBacklog) {
			break
		}
		if deadline == nil {
			deadline = time.NewTimer(w.opts.PaceWait)
			defer deadline.Stop()
		}
		select {
		case <-committed:
			continue
		case <-deadline.C:
		case <-ctx.Done():
		case <-w.drainStop:
		}
		break
	}
	if deadline == nil {
		return 0
	}
	return time.Since(start)
}

// Landed returns a channel that is closed when the drainer next commits a batch with events:
// they are in ClickHouse (or, refused, in the dead-letter). The live feeds tick right after it, so that a
// screen shows an event one query after it lands instead of up to a tick later. Events stored
// by other nodes do not close it.
func (w *Writer) Landed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.landedSignal
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

// drain moves the spool's records to ClickHouse, a batch at a time, until ctx ends. A batch is
// committed once every event of it is in ClickHouse or in the dead-letter, and every record
// that cannot be decoded is in the dead-letter: nothing acknowledged leaves the spool unkept,
// and nothing blocks the records behind it for ever.
//
// It works in two stages, so that ClickHouse does not wait for the drainer's own work between
// two inserts: readAhead reads the next batch from the spool, hashes its keys, claims its
// events and, with a Preparer sink, builds its insert (prepare) while the batch before it (a
// full one) is being inserted, and hands it over in spool order, one batch ahead at most
// (spool.MaxUncommitted). What the insert of a batch must know of the
// ones before it (which keys are stored) is decided here, after they landed.
func (w *Writer) drain(ctx context.Context) {
	defer close(w.drainStop)
	ready := make(chan readBatch)
	var reader sync.WaitGroup
	reader.Go(func() { w.readAhead(ctx, ready) })
	defer reader.Wait()
	for {
		var b readBatch
		select {
		case b = <-ready:
		case <-ctx.Done():
			return
		}
		if !w.land(ctx, b) {
			return
		}
		if err := w.spool.Commit(b.Batch); err != nil {
			w.log.Error("spool commit", "err", err)
		}
		if b.landed != nil {
			close(b.landed)
		}
		w.mu.Lock()
		close(w.drainedSignal)
		w.drainedSignal = make(chan struct{})
		if len(b.Events) > 0 {
			close(w.landedSignal)
			w.landedSignal = make(chan struct{})
		}
		w.mu.Unlock()
	}
}

// land puts the undecodable records of b in the dead-letter and its events in ClickHouse, so
// that b can be committed; its insert prepared ahead is sent or dropped either way. False when
// ctx ended first.
func (w *Writer) land(ctx context.Context, b readBatch) bool {
	if b.prepared != nil {
		defer b.prepared.abort() // nothing, once sent
	}
	for _, u := range b.Undecodable {
		for !w.keep(u.Err, func() error { return w.dead.AddRecord(u) }) {
			if !sleep(ctx, w.backoff()) {
				return false
			}
		}
		w.log.Error("a spool record cannot be decoded: kept aside in the dead-letter, the records behind it go on",
			"events", u.Count, "segment", u.Segment, "offset", u.Offset, "folder", w.dead.Dir(), "reason", u.Err)
	}
	return w.deliver(ctx, b.own, b.prepared)
}

// readBatch is a batch of the spool and the events of it this node stores, with their keys.
type readBatch struct {
	spool.Batch
	own pending
	// landed, when not nil, is closed once the batch is committed: the reader waits for it
	// before it reads the next batch.
	landed chan struct{}
	// prepared, when not nil, is the insert of every event of own, built ahead (prepare).
	prepared *prepared
}

// prepared is an insert built ahead by the read-ahead stage, with the end of its context.
type prepared struct {
	Prepared
	cancel context.CancelFunc
	// sending, called once before it is sent or after it is dropped, takes its query id out
	// of the Writer's unsent ones.
	sending func()
}

func (p *prepared) send() error {
	defer p.cancel()
	p.sending()
	return p.Send()
}

// abort drops the insert if it was not sent; after send it does nothing.
func (p *prepared) abort() {
	p.Abort()
	p.cancel()
	p.sending()
}

// prepare builds the insert of every event of p ahead, when the sink can (Preparer) and
// PrepareAhead allows, under a query id of this process. Nil when it cannot, when the insert
// is sure to look events up (LookupEveryBatch), or while the drainer's last attempt was not a
// plain success (w.steady): the insert stage then builds the insert as usual. Its query id is
// among the unsent ones from before the INSERT opens until it is sent or dropped, so that an
// attempt that waits for this node's inserts meanwhile neither waits for it nor kills it. The
// insert must land within two FlushTimeouts: it waits for the insert before it, then is sent.
func (w *Writer) prepare(ctx context.Context, p pending) *prepared {
	prep, ok := w.sink.(Preparer)
	if !ok || !w.opts.PrepareAhead || p.len() == 0 || w.opts.LookupEveryBatch || !w.steady.Load() {
		return nil
	}
	queryID := w.insertPrefix + "ahead-" + strconv.FormatUint(w.preparedInserts.Add(1), 10)
	w.mu.Lock()
	w.unsent[queryID] = struct{}{}
	w.mu.Unlock()
	var once sync.Once
	sending := func() {
		once.Do(func() {
			w.mu.Lock()
			delete(w.unsent, queryID)
			w.mu.Unlock()
		})
	}
	ctx, cancel := context.WithTimeout(ctx, 2*w.opts.FlushTimeout)
	ins, err := prep.PrepareInsert(ctx, p.evs, p.received, queryID)
	if err != nil {
		cancel()
		sending()
		w.log.Debug("insert not prepared ahead; it is built when sent", "events", p.len(), "err", err)
		return nil
	}
	return &prepared{Prepared: ins, cancel: cancel, sending: sending}
}

// unsentAhead lists the query ids of the inserts prepared ahead and not sent.
func (w *Writer) unsentAhead() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]string, 0, len(w.unsent))
	for id := range w.unsent {
		ids = append(ids, id)
	}
	return ids
}

// readAhead is the drainer's first stage: it reads batches from the spool and hands them to
// ready, until ctx ends. It reads a batch ahead only behind a full one (FlushRows events):
// under light traffic the next batch is read once the current one landed, so that it takes
// every event that arrived meanwhile, where a batch read ahead would have left those to the
// insert after it, an insert later on the screens.
func (w *Writer) readAhead(ctx context.Context, ready chan<- readBatch) {
	for {
		b, err := w.spool.Next(ctx, w.opts.FlushRows, w.opts.FlushInterval)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// The spool cannot read its own disk. Retrying keeps the events; skipping would
			// lose acknowledged ones.
			w.failed(err)
			if !sleep(ctx, w.backoff()) {
				return
			}
			continue
		}
		own, ok := w.ownEvents(ctx, newPending(w.hash, b.Events, b.Received))
		if !ok {
			return
		}
		rb := readBatch{Batch: b, own: own}
		if len(b.Events)+len(b.Undecodable) < w.opts.FlushRows {
			rb.landed = make(chan struct{})
		} else {
			rb.prepared = w.prepare(ctx, own)
		}
		select {
		case ready <- rb:
		case <-ctx.Done():
			if rb.prepared != nil {
				rb.prepared.abort()
			}
			return
		}
		if rb.landed != nil {
			select {
			case <-rb.landed:
			case <-ctx.Done():
				return
			}
		}
	}
}

// deliver stores the events of p in ClickHouse, retrying while it is away or failing for reasons of its
// own, for ever. When it refuses the batch for its values RefusedAttempts times, the events it
// refuses are isolated and kept aside (isolate). False when ctx ended first.
func (w *Writer) deliver(ctx context.Context, p pending, ahead *prepared) bool {
	if p.len() == 0 {
		return true
	}
	for refusals := 1; ; refusals++ {
		refusal, ok := w.sendAnswered(ctx, p, ahead)
		ahead = nil // used, or left aside, by the first attempt
		if !ok || refusal == nil {
			return ok
		}
		w.failed(refusal)
		if refusals >= w.opts.RefusedAttempts {
			// A refused insert may have stored some days of the batch: every part sent
			// while isolating is looked up whole.
			w.isolating = true
			defer func() { w.isolating = false }()
			return w.isolate(ctx, p, refusal)
		}
		if !sleep(ctx, w.backoff()) {
			return false
		}
	}
}

// isolate delivers a batch ClickHouse refused for its values, finding the events it refuses:
// each half is sent, and a refused half is split again, down to single events, which go to
// the dead-letter. The valid events land exactly once, as every attempt looks its events up
// first; a batch with one bad event costs about 2·log2(n) attempts, one where all are bad
// about 2n. False when ctx ended first.
func (w *Writer) isolate(ctx context.Context, p pending, refusal error) bool {
	if p.len() == 1 {
		for !w.keep(refusal, func() error { return w.dead.AddEvent(p.evs[0], p.received[0], refusal) }) {
			if !sleep(ctx, w.backoff()) {
				return false
			}
			// Meanwhile ClickHouse may have been made to take it.
			var ok bool
			if refusal, ok = w.sendAnswered(ctx, p, nil); !ok || refusal == nil {
				return ok
			}
		}
		w.log.Error("ClickHouse refuses an event for its values: kept aside in the dead-letter, the events behind it go on",
			"event_id", p.evs[0].EventID, "folder", w.dead.Dir(), "reason", refusal)
		return true
	}
	mid := p.len() / 2
	for _, part := range [][2]int{{0, mid}, {mid, p.len()}} {
		part := p.slice(part[0], part[1])
		refusal, ok := w.sendAnswered(ctx, part, nil)
		if !ok || refusal != nil && !w.isolate(ctx, part, refusal) {
			return false
		}
	}
	return true
}

// keep runs add, which puts what ClickHouse cannot take in the dead-letter, and reports
// whether it did. While it fails (the dead-letter is full, or its disk fails) the record or
// event stays in the spool and is tried again by the caller, everything behind it waits, and
// the failure shows in Stats.
func (w *Writer) keep(reason error, add func() error) bool {
	err := add()
	if err != nil {
		w.failed(fmt.Errorf("cannot keep aside what ClickHouse cannot take (%v), so it waits in the spool: %w", reason, err))
	}
	return err == nil
}

// sendAnswered sends p until ClickHouse takes its events (nil) or refuses them for their values
// (that error); other failures are retried with backoff. False when ctx ended first.
func (w *Writer) sendAnswered(ctx context.Context, p pending, ahead *prepared) (refusal error, ok bool) {
	for {
		err := w.send(ctx, p, ahead)
		ahead = nil
		if err == nil || invalidData(err) {
			return err, true
		}
		w.failed(err)
		if !sleep(ctx, w.backoff()) {
			return nil, false
		}
	}
}

// send makes one attempt at storing the events of evs that ClickHouse does not have yet. When
// an insert may be in flight from before (w.uncertain: the first attempt after Open, as a
// crash may have left one, and every attempt after a failed one, as a timed-out or cut-off
// insert can still land), the attempt first waits for it and then looks up every event, or it
// would miss its events. ahead, when not nil, is p's insert prepared ahead: sent when nothing
// of p is left out, dropped otherwise, and always before waiting for this node's inserts (it
// is one of them).
func (w *Writer) send(ctx context.Context, p pending, ahead *prepared) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.FlushTimeout)
	defer cancel()
	start := time.Now()
	a := Attempt{Events: p.len()}
	err := error(nil)
	if w.uncertain {
		if ahead != nil {
			ahead.abort()
			ahead = nil
		}
		err = w.sink.WaitForInserts(ctx, w.nodePrefix, w.unsentAhead()...)
	}
	// Entries that left the dead-letter since the last attempt may have been stored by a
	// replay in another process: what the drainer knew stands only up to the newest second
	// stored now.
	dead := w.dead.Stats().Records
	if dead < w.deadEntries {
		w.stored.forgetStart()
	}
	w.deadEntries = dead
	if err == nil && !w.stored.known {
		var newest int64
		if newest, err = w.sink.NewestStored(ctx); err == nil {
			w.stored.start(newest)
		}
	}
	if err == nil {
		w.inserts++
		a.Inserted, a.LookedUp, err = w.storeNew(ctx, p, w.insertPrefix+strconv.FormatUint(w.inserts, 10), ahead)
	} else if ahead != nil {
		ahead.abort()
	}
	a.Took, a.Err = time.Since(start), err
	if w.opts.Observe != nil {
		w.opts.Observe(a)
	}
	w.uncertain = err != nil || w.isolating
	w.steady.Store(!w.uncertain)
	if err != nil {
		return err
	}
	w.mu.Lock()
	if w.failures > 0 {
		w.log.Info("ClickHouse takes inserts again", "failed_attempts", w.failures)
	}
	w.failures, w.lastErr = 0, nil
	w.mu.Unlock()
	w.log.Debug("drained", "events", p.len(), "inserted", a.Inserted, "looked_up", a.LookedUp, "took", a.Took)
	return nil
}

// storeNew inserts the events of p that ClickHouse does not have yet, in one insert under
// queryID (or ahead, p's insert prepared ahead, see insertNew), and returns how many it
// inserted and how many it asked ClickHouse about first: every event when w.uncertain,
// otherwise those that may be stored (mayBeStored).
func (w *Writer) storeNew(ctx context.Context, p pending, queryID string, ahead *prepared) (inserted, lookedUp int, err error) {
	now := time.Now()
	var ask []event.Event
	lookAll := w.uncertain || w.deadEntries > 0
	for i := range p.evs {
		if lookAll || w.mayBeStored(p.keys[i], p.hashes[i][0], now) {
			ask = append(ask, p.evs[i])
		}
	}
	if inserted, err = insertNew(ctx, w.sink, p, ask, queryID, ahead); err != nil {
		return 0, len(ask), err
	}
	for i := range p.keys {
		w.stored.add(p.keys[i], p.hashes[i][0])
	}
	return inserted, len(ask), nil
}

// insertNew inserts, in one insert under queryID, the events of p that are neither stored
// nor earlier in p, asking ClickHouse which of the events of ask (a part of p: those that
// may be stored) it has. It returns how many it inserted. ahead, when not nil, is the insert
// of every event of p prepared ahead: it is sent when no event is left out, and dropped
// otherwise.
func insertNew(ctx context.Context, sink Sink, p pending, ask []event.Event, queryID string, ahead *prepared) (int, error) {
	if ahead != nil {
		defer ahead.abort() // nothing, once sent
	}
	var stored map[event.Key]bool
	if len(ask) > 0 {
		var err error
		if stored, err = sink.ExistingKeys(ctx, ask); err != nil {
			return 0, err
		}
	}
	var left []bool // nil while every event goes in, the usual case
	seen := make(map[keyHash]struct{}, p.len())
	for i, h := range p.hashes {
		if _, again := seen[h]; again || stored[p.keys[i]] {
			if left == nil {
				left = make([]bool, p.len())
			}
			left[i] = true
			continue
		}
		seen[h] = struct{}{}
	}
	if left == nil && ahead != nil {
		if err := ahead.send(); err != nil {
			return 0, err
		}
		return p.len(), nil
	}
	fresh := p
	if left != nil {
		fresh = p.only(func(i int) bool { return !left[i] })
	}
	if err := sink.InsertReceived(ctx, fresh.evs, fresh.received, queryID); err != nil {
		return 0, err
	}
	return fresh.len(), nil
}

// claimClockMargin widens the claims' horizon for clocks that disagree: an event's second
// comes from its node's clock, a claim's expiry from the NATS server's, now from this node's.
const claimClockMargin = time.Minute

// mayBeStored reports whether ClickHouse must be asked whether the event of key k is stored
// (see the package comment).
func (w *Writer) mayBeStored(k event.Key, h uint64, now time.Time) bool {
	switch {
	case w.opts.LookupEveryBatch:
		return true
	case w.opts.Claims != nil && k.Second <= now.Add(-w.opts.ClaimWindow+event.MaxFutureSkew+claimClockMargin).Unix():
		return true
	}
	return w.stored.mayHave(k, h)
}

func (w *Writer) failed(err error) {
	w.mu.Lock()
	w.failures++
	w.lastErr = err
	n := w.failures
	w.mu.Unlock()
	if n == 1 || n%20 == 0 {
		w.log.Warn("events wait in the spool: ClickHouse insert failed; retrying", "attempts", n, "unavailable", unavailable(err),
			"invalid_data", invalidData(err), "err", err)
	}
}

// invalidData reports whether err says that ClickHouse refuses the values of an insert, which
// sending them again cannot change: the sink marks such errors with an InvalidData method.
func invalidData(err error) bool {
	var v interface{ InvalidData() bool }
	return errors.As(err, &v) && v.InvalidData()
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
