// Package audit keeps the rollup tables equal to the raw events they are made from.
//
// A materialized view is not atomic with the insert into its source: a ClickHouse crash in the
// middle of an insert (kill -9, OOM) can leave the raw table and some rollups with the insert
// and the others without, and the writer's retry, which looks the batch up in event_keys (one
// of the rollups), may then store the raw rows a second time. Measured once: 497 events twice in
// the raw table and the detail rollups, once in the overviews and event_keys.
//
// The raw table is the truth. Every run the auditor:
//
//  1. finishes a removal of duplicates that a crash interrupted (store.FinishRemoval);
//  2. counts the raw events per minute, moment and channel over the window, and each rollup's
//     events per bucket (a minute, an hour for detail_1h) over the same times: a cheap first
//     pass that reads one small column of the raw table and the rollups' sums;
//  3. looks for events stored twice in the raw table, in the buckets that disagree and in a
//     slice of the window of about SweepRows rows that moves on every run (so the whole window
//     is swept for duplicates of any origin, a slice at a time), and removes the extra copies;
//  4. counts the buckets that still disagree a second time, after a pause: a bucket whose raw
//     count changed meanwhile is receiving inserts and is left for the next run (a rebuild
//     racing an insert would count it twice); the others are rebuilt from the raw table.
//
// Tables with an unfinished mutation are left for the next run. The audit never looks where
// retention may already have dropped a table's older days (see window), where the raw table and
// a rollup differ by design.
//
// The audit must run on one node of a database: two audits at once could both rebuild a bucket
// and count it twice (the next run repairs it) and would share the table that holds the copies
// of a removal. Turn it off on the other nodes (-audit-interval 0).
package audit

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/telemetry"
)

// Options tune the auditor. Zero values take the defaults below.
type Options struct {
	// Interval is the time between the starts of two runs.
	Interval time.Duration
	// Window is how far back from now each run compares.
	Window time.Duration
	// Retention is the raw events' retention: older times are never audited.
	Retention time.Duration
	// Settle is the pause between the two counts of a disagreeing bucket.
	Settle time.Duration
	// SweepRows is about how many raw rows of the window each run searches for duplicates,
	// whether or not their buckets disagree: whole minutes, at least one, from where the last
	// run stopped. Searching for duplicates groups by event key, the costliest query of the
	// audit (BenchmarkAudit: about 40 times the raw counts per minute over the same rows), so
	// it is bounded by rows, not by time, and the whole window is swept over as many runs as
	// it needs.
	SweepRows uint64
	// Metrics, when set, count the runs.
	Metrics *telemetry.AuditMetrics
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Defaults for Options.
const (
	DefaultInterval  = time.Minute
	DefaultWindow    = 2 * time.Hour
	DefaultRetention = 30 * 24 * time.Hour
	DefaultSettle    = time.Second
	DefaultSweepRows = 100_000
)

func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Settle <= 0 {
		o.Settle = DefaultSettle
	}
	if o.SweepRows == 0 {
		o.SweepRows = DefaultSweepRows
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// runTimeout bounds one run: a mutation that never finishes must not stop the audit for good.
const runTimeout = 10 * time.Minute

// maxDuplicates bounds the duplicate keys one run removes; the rest wait for the next run.
const maxDuplicates = 100_000

// retentionSlack is how far inside a table's retention the audit stays: retention drops whole
// days (or months), decided on UTC dates, while ClickHouse cuts partitions in its own time
// zone (up to 14 h away).
const retentionSlack = 38 * time.Hour

// Auditor compares the rollups with the raw table and repairs them. Run it with Run.
type Auditor struct {
	db   *store.Store
	opts Options
	log  *slog.Logger

	sweepNext time.Time // start of the next slice swept for duplicates (Run's goroutine only)
}

// New returns an auditor of db.
func New(db *store.Store, opts Options, log *slog.Logger) *Auditor {
	return &Auditor{db: db, opts: opts.withDefaults(), log: log}
}

// Report is what one run found and did.
type Report struct {
	// Checked counts the (table, bucket) pairs compared.
	Checked int
	// Repaired counts the buckets rebuilt, per table.
	Repaired map[string]int
	// Duplicates is the raw rows removed as extra copies of an event.
	Duplicates uint64
	// Restored is the raw rows put back by finishing a removal a crash interrupted.
	Restored uint64
	// Deferred counts the buckets that disagreed but were still changing, or whose table had a
	// mutation running: the next run looks again.
	Deferred int
	Took     time.Duration
}

// Repairs reports whether the run changed anything.
func (r Report) Repairs() bool {
	return len(r.Repaired) > 0 || r.Duplicates > 0 || r.Restored > 0
}

// Clean reports whether the run found nothing to repair or defer.
func (r Report) Clean() bool { return !r.Repairs() && r.Deferred == 0 }

// Run audits once ClickHouse is ready, then every Interval, until ctx ends.
func (a *Auditor) Run(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-a.db.Ready():
	}
	t := time.NewTicker(a.opts.Interval)
	defer t.Stop()
	for {
		runCtx, cancel := context.WithTimeout(ctx, runTimeout)
		rep, err := a.RunOnce(runCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			a.log.Warn("rollup audit failed; retrying at the next run", "err", err)
		case rep.Repairs():
			a.log.Info("rollup audit repaired", "repaired_buckets", rep.Repaired, "duplicates_removed", rep.Duplicates,
				"restored", rep.Restored, "deferred_buckets", rep.Deferred, "checked", rep.Checked, "took", rep.Took)
		default: // deferred buckets are receiving inserts: not news
			a.log.Debug("rollup audit: the rollups agree", "checked", rep.Checked, "deferred_buckets", rep.Deferred, "took", rep.Took)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce compares and repairs once (see the package comment).
func (a *Auditor) RunOnce(ctx context.Context) (rep Report, err error) {
	start := a.opts.Now()
	rep.Repaired = map[string]int{}
	defer func() {
		rep.Took = time.Since(start)
		if m := a.opts.Metrics; m != nil {
			m.ObserveAudit(rep.Took, err)
			m.BucketsChecked.Add(float64(rep.Checked))
			m.DuplicatesRemoved.Add(float64(rep.Duplicates))
			for table, n := range rep.Repaired {
				m.BucketsRepaired.WithLabelValues(table).Add(float64(n))
			}
		}
	}()

	if rep.Restored, err = a.db.FinishRemoval(ctx); err != nil {
		return rep, err
	}
	pending, err := a.db.PendingMutations(ctx)
	if err != nil {
		return rep, err
	}
	if pending["events"] > 0 { // the raw table is changing: nothing to compare with
		rep.Deferred++
		return rep, nil
	}

	// 2. The first pass, over each table's window.
	now := a.opts.Now().UTC()
	windows := map[string]store.Range{}
	var rawWindow store.Range
	for _, r := range store.Rollups {
		w, ok := a.window(r, now)
		if !ok {
			continue
		}
		if pending[r.Table] > 0 {
			rep.Deferred++
			continue
		}
		windows[r.Table] = w
		if rawWindow.From.IsZero() || w.From.Before(rawWindow.From) {
			rawWindow.From = w.From
		}
		rawWindow.To = w.To
	}
	if len(windows) == 0 {
		return rep, nil
	}
	suspects := map[string][]int64{}
	for table, w := range windows {
		suspects[table] = bucketsOf(rollup(table), []store.Range{w})
		rep.Checked += len(suspects[table])
	}
	raw, got, err := a.count(ctx, suspects)
	if err != nil {
		return rep, err
	}
	differ := disagreeing(raw, got, suspects)

	// 3. Duplicates, where the buckets disagree and in this run's slice of the sweep.
	dupRanges := append(rangesOf(differ), a.sweep(rawWindow, raw))
	keys, err := a.db.DuplicateKeys(ctx, dupRanges, maxDuplicates)
	if err != nil {
		return rep, err
	}
	if len(keys) > 0 {
		if rep.Duplicates, err = a.db.RemoveDuplicates(ctx, keys); err != nil {
			return rep, err
		}
		// Every rollup still counts the removed copies: the keys' buckets join the suspects.
		for table, w := range windows {
			differ[table] = union(differ[table], keyBuckets(rollup(table), keys, w))
		}
		if raw, got, err = a.count(ctx, differ); err != nil {
			return rep, err
		}
		differ = disagreeing(raw, got, differ)
	}
	if len(differ) == 0 {
		return rep, nil
	}

	// 4. Count again after a pause; rebuild what still disagrees and did not change.
	select {
	case <-ctx.Done():
		return rep, ctx.Err()
	case <-time.After(a.opts.Settle):
	}
	raw2, got2, err := a.count(ctx, differ)
	if err != nil {
		return rep, err
	}
	still := disagreeing(raw2, got2, differ)
	// The tables are rebuilt at once: most of a rebuild is waiting for ClickHouse to run its
	// mutation, which it does in the background for every table together.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, r := range store.Rollups {
		var settled []int64
		for _, b := range still[r.Table] {
			if rawTotal(raw, r, b) == rawTotal(raw2, r, b) {
				settled = append(settled, b)
			} else {
				rep.Deferred++
			}
		}
		if len(settled) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := a.db.RebuildRollup(ctx, r, bucketRanges(r, settled))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			rep.Repaired[r.Table] = len(settled)
		}()
	}
	wg.Wait()
	return rep, errors.Join(errs...)
}

// window is the times r is audited over, or false when retention leaves none: from Window ago
// (whole hours, so that hourly buckets are whole) to the end of the next hour (events may be
// up to 5 minutes in the future), but never where the raw table or r may have dropped data.
func (a *Auditor) window(r store.Rollup, now time.Time) (store.Range, bool) {
	from := now.Add(-a.opts.Window).Truncate(time.Hour)
	to := now.Truncate(time.Hour).Add(2 * time.Hour)
	keep := min(r.Keep(a.opts.Retention), a.opts.Retention)
	if earliest := now.Add(-keep + retentionSlack); earliest.After(from) {
		from = earliest.Truncate(time.Hour).Add(time.Hour)
	}
	return store.Range{From: from, To: to}, from.Before(to)
}

// sweep is this run's slice of the raw window w to search for duplicates: whole minutes from
// where the last run stopped, until they hold SweepRows raw rows (raw counts them per minute)
// or w ends; after its end the next run starts again at its start.
func (a *Auditor) sweep(w store.Range, raw store.Counts) store.Range {
	if a.sweepNext.Before(w.From) || !a.sweepNext.Before(w.To) {
		a.sweepNext = w.From
	}
	perMinute := map[int64]uint64{}
	for k, n := range raw {
		perMinute[k.Start] += n
	}
	s := store.Range{From: a.sweepNext, To: a.sweepNext}
	for rows := uint64(0); rows < a.opts.SweepRows && s.To.Before(w.To); s.To = s.To.Add(time.Minute) {
		rows += perMinute[s.To.Unix()]
	}
	a.sweepNext = s.To
	return s
}

// count counts the raw table and each table of buckets over those buckets.
func (a *Auditor) count(ctx context.Context, buckets map[string][]int64) (raw store.Counts, got map[string]store.Counts, err error) {
	var all []store.Range
	got = map[string]store.Counts{}
	for table, bs := range buckets {
		ranges := bucketRanges(rollup(table), bs)
		if len(ranges) == 0 {
			continue
		}
		all = append(all, ranges...)
		if got[table], err = a.db.RollupCounts(ctx, rollup(table), ranges); err != nil {
			return nil, nil, err
		}
	}
	if raw, err = a.db.RawCounts(ctx, time.Minute, all); err != nil {
		return nil, nil, err
	}
	return raw, got, nil
}

// disagreeing returns, per table, the buckets among buckets where the table's counts differ
// from the raw table's (raw counts per minute, summed into the table's buckets and labels).
func disagreeing(raw store.Counts, got map[string]store.Counts, buckets map[string][]int64) map[string][]int64 {
	out := map[string][]int64{}
	for table, bs := range buckets {
		r := rollup(table)
		want := expected(raw, r)
		in := map[int64]bool{}
		for _, b := range bs {
			in[b] = true
		}
		bad := map[int64]bool{}
		for k, n := range want {
			if in[k.Start] && got[table][k] != n {
				bad[k.Start] = true
			}
		}
		for k, n := range got[table] {
			if in[k.Start] && want[k] != n {
				bad[k.Start] = true
			}
		}
		for b := range bad {
			out[table] = append(out[table], b)
		}
		sort.Slice(out[table], func(i, j int) bool { return out[table][i] < out[table][j] })
	}
	return out
}

// expected is what r should count: the raw minute counts summed into r's buckets and labels.
func expected(raw store.Counts, r store.Rollup) store.Counts {
	step := int64(r.Bucket / time.Second)
	out := store.Counts{}
	for k, n := range raw {
		k.Start -= k.Start % step
		if !r.Labels {
			k.Moment, k.Channel = "", ""
		}
		out[k] += n
	}
	return out
}

// rawTotal is the raw events of bucket b of r.
func rawTotal(raw store.Counts, r store.Rollup, b int64) uint64 {
	step := int64(r.Bucket / time.Second)
	var n uint64
	for k, c := range raw {
		if k.Start-k.Start%step == b {
			n += c
		}
	}
	return n
}

// bucketsOf is every bucket of r in ranges.
func bucketsOf(r store.Rollup, ranges []store.Range) []int64 {
	step := int64(r.Bucket / time.Second)
	var out []int64
	for _, w := range ranges {
		for b := w.From.Unix() - w.From.Unix()%step; b < w.To.Unix(); b += step {
			out = append(out, b)
		}
	}
	return out
}

// keyBuckets are the buckets of r, within w, that hold an event of keys.
func keyBuckets(r store.Rollup, keys []event.Key, w store.Range) []int64 {
	step := int64(r.Bucket / time.Second)
	var out []int64
	for _, k := range keys {
		if k.Second >= w.From.Unix() && k.Second < w.To.Unix() {
			out = append(out, k.Second-k.Second%step)
		}
	}
	return out
}

// bucketRanges are the time ranges of buckets of r.
func bucketRanges(r store.Rollup, buckets []int64) []store.Range {
	out := make([]store.Range, 0, len(buckets))
	for _, b := range buckets {
		from := time.Unix(b, 0).UTC()
		out = append(out, store.Range{From: from, To: from.Add(r.Bucket)})
	}
	return out
}

// rangesOf are the time ranges of every table's buckets.
func rangesOf(buckets map[string][]int64) []store.Range {
	var out []store.Range
	for table, bs := range buckets {
		out = append(out, bucketRanges(rollup(table), bs)...)
	}
	return out
}

// union is the sorted buckets of a and b, each once.
func union(a, b []int64) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, x := range append(append([]int64{}, a...), b...) {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// rollup is the store's description of table.
func rollup(table string) store.Rollup {
	for _, r := range store.Rollups {
		if r.Table == table {
			return r
		}
	}
	panic("audit: unknown rollup " + table)
}
