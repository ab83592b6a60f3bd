package audit_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/truthboard/truthboard/internal/audit"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/telemetry"
)

// events are n events spread over the last two hours, one every few seconds, with every
// figure the rollups count.
func events(n int, now time.Time) []event.Event {
	moments, channels := event.Moments, event.Channels
	out := make([]event.Event, n)
	for i := range out {
		csat, wait := uint8(1+i%5), uint32(100*i)
		out[i] = event.Event{
			EventID:    fmt.Sprintf("audit-%d", i),
			OccurredAt: now.Add(-time.Duration(i) * 2 * time.Hour / time.Duration(n)),
			Moment:     moments[i%len(moments)], Channel: channels[i%len(channels)], Touchpoint: "tp",
			CSAT: &csat, WaitMS: &wait, Region: []string{"eu", "us"}[i%2],
		}
	}
	return out
}

// TestAuditRepairsACrashsDamage damages a database as a ClickHouse crash in mid-insert does,
// and more: raw rows stored twice (in some rollups, or in all), a minute of one rollup gone, an
// hour of another counted twice. One run repairs all of it; the next finds nothing.
func TestAuditRepairsACrashsDamage(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := db.InsertEvents(ctx, events(2000, now), now); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string) {
		t.Helper()
		if err := db.Conn().Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// The crash: 50 events inserted again, reaching the raw table and the detail rollups but
	// not the overviews and event_keys (their views detached for the insert).
	for _, v := range []string{"event_keys_mv", "overview_1s_mv", "overview_1m_mv"} {
		exec("DETACH TABLE " + v)
	}
	exec("INSERT INTO events SELECT * FROM events WHERE toUInt32(substring(event_id, 7)) % 40 = 7")
	for _, v := range []string{"event_keys_mv", "overview_1s_mv", "overview_1m_mv"} {
		exec("ATTACH TABLE " + v)
	}
	// And 5 events stored twice everywhere, as two servers storing the same new event in the
	// same instant do: the counts agree, only the sweep for duplicates finds them.
	exec("INSERT INTO events SELECT * FROM events WHERE event_id IN ('audit-1', 'audit-2', 'audit-3', 'audit-4', 'audit-5')")
	minute := now.Add(-30 * time.Minute).Truncate(time.Minute).Unix()
	exec(fmt.Sprintf("ALTER TABLE overview_1m DELETE WHERE t = toDateTime(%d)", minute))
	exec(fmt.Sprintf("INSERT INTO detail_1h SELECT * FROM detail_1h WHERE t = toDateTime(%d)", now.Add(-time.Hour).Truncate(time.Hour).Unix()))
	for {
		pending, err := db.PendingMutations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	m := telemetry.New()
	// A sweep of more rows than the window holds searches all of it in one run.
	a := audit.New(db, audit.Options{Settle: 50 * time.Millisecond, SweepRows: 1 << 30, Metrics: &m.Audit}, slog.New(slog.DiscardHandler))
	rep, err := a.RunOnce(ctx)
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	t.Logf("first run: %+v", rep)
	if rep.Duplicates != 55 {
		t.Errorf("the audit removed %d duplicate rows, want 55", rep.Duplicates)
	}
	for _, table := range []string{"event_keys", "overview_1s", "overview_1m", "detail_1m", "detail_1h"} {
		if rep.Repaired[table] == 0 {
			t.Errorf("no bucket of %s repaired; every rollup counted the duplicates", table)
		}
	}
	ids := storetest.StoredIDs(t, db)
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s stored %d times after the audit", id, n)
		}
	}
	if len(ids) != 2000 {
		t.Errorf("%d events stored after the audit, want 2000", len(ids))
	}
	storetest.AssertRollupsAgree(t, db)

	again, err := a.RunOnce(ctx)
	if err != nil || !again.Clean() || again.Checked == 0 {
		t.Errorf("second run: %+v, %v; want a clean run that checked buckets", again, err)
	}
	if got := testutil.ToFloat64(m.Audit.DuplicatesRemoved); got != 55 {
		t.Errorf("truthboard_audit_duplicates_removed_total = %v, want 55", got)
	}
	if got := testutil.ToFloat64(m.Audit.BucketsRepaired.WithLabelValues("detail_1h")); got < 1 {
		t.Errorf("truthboard_audit_buckets_repaired_total{table=detail_1h} = %v, want at least 1", got)
	}
	if got := testutil.ToFloat64(m.Audit.BucketsChecked); got != float64(rep.Checked+again.Checked) {
		t.Errorf("truthboard_audit_buckets_checked_total = %v, want %d", got, rep.Checked+again.Checked)
	}
	if got := testutil.ToFloat64(m.Audit.Runs.WithLabelValues(telemetry.ResultOK)); got != 2 {
		t.Errorf("truthboard_audit_runs_total{result=ok} = %v, want 2", got)
	}
}

// TestAuditKeepsOutOfRetention checks that the audit never touches times where retention may
// have dropped the raw rows but not a rollup's: with a retention of 1 h, the hourly rollup keeps
// its hours while the raw table's are gone, and the audit leaves it alone.
func TestAuditKeepsOutOfRetention(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := db.InsertEvents(ctx, events(100, now), now); err != nil {
		t.Fatal(err)
	}
	if err := db.Conn().Exec(ctx, "TRUNCATE TABLE events"); err != nil { // as retention would
		t.Fatal(err)
	}
	a := audit.New(db, audit.Options{Retention: time.Hour, Settle: 50 * time.Millisecond}, slog.New(slog.DiscardHandler))
	rep, err := a.RunOnce(ctx)
	if err != nil || !rep.Clean() || rep.Checked != 0 {
		t.Errorf("audit within a retention of 1 h: %+v, %v; want nothing checked or repaired", rep, err)
	}
	got, err := db.RollupCounts(ctx, store.Rollups[len(store.Rollups)-1], []store.Range{{From: now.Add(-3 * time.Hour), To: now.Add(time.Hour)}})
	if err != nil || len(got) == 0 {
		t.Errorf("detail_1h after the audit: %v, %v; want its rows kept", got, err)
	}
}

// TestAuditSweepsTheWholeWindow stores three events twice in every table (the counts agree,
// as when two servers store the same new event in the same instant): only the sweep finds them,
// a few hundred rows per run, and within as many runs as the window needs it finds all three.
func TestAuditSweepsTheWholeWindow(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := db.InsertEvents(ctx, events(2000, now), now); err != nil {
		t.Fatal(err)
	}
	if err := db.Conn().Exec(ctx, "INSERT INTO events SELECT * FROM events WHERE event_id IN ('audit-10', 'audit-1000', 'audit-1990')"); err != nil {
		t.Fatal(err)
	}
	a := audit.New(db, audit.Options{Settle: 50 * time.Millisecond, SweepRows: 400}, slog.New(slog.DiscardHandler))
	var removed uint64
	runs := 0
	for removed < 3 && runs < 20 {
		rep, err := a.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		removed += rep.Duplicates
		runs++
	}
	if removed != 3 || runs < 3 {
		t.Errorf("%d duplicates removed in %d runs, want 3 in several runs (400 of 2000 rows per run)", removed, runs)
	}
	storetest.AssertStoredOnce(t, db, func() (ids []string) {
		for i := range 2000 {
			ids = append(ids, fmt.Sprintf("audit-%d", i))
		}
		return ids
	}())
	storetest.AssertRollupsAgree(t, db)
}
