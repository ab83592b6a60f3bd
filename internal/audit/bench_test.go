package audit_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/audit"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

var benchRate = flag.Int("audit-bench-rate", 600_000, "events per hour over the 2-hour window of BenchmarkAudit")

// fill inserts perHour events per hour over the hours before now, through the views, with the
// fields the rollups count.
func fill(b *testing.B, db *store.Store, now time.Time, hours, perHour int) {
	b.Helper()
	for h := range hours { // an insert per hour: each stays within the query timeout
		from := now.Add(-time.Duration(hours-h) * time.Hour).Unix()
		sql := fmt.Sprintf(`INSERT INTO events (event_id, occurred_at, received_at, moment, channel, touchpoint,
			csat, wait_ms, negative, positive, region)
		SELECT concat('bench-%d-', toString(number)), toDateTime(%d + intDiv(number * 3600, %d)), now(),
			['zmot', 'fmot', 'smot', 'tmot', 'service'][1 + number %% 5],
			['web', 'app', 'store', 'voice', 'ivr', 'chat', 'messaging', 'email', 'social', 'review_site', 'field_service'][1 + number %% 11],
			concat('tp', toString(number %% 7)), toUInt8(1 + number %% 5), toUInt32(number %% 5000),
			toUInt8(number %% 9 = 0), toUInt8(number %% 9 = 1), ['eu', 'us', 'apac'][1 + number %% 3]
		FROM numbers(%d)`, h, from, perHour, perHour)
		if err := db.Conn().Exec(context.Background(), sql); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAudit measures one run of the audit over its default window (2 hours) of
// -audit-bench-rate events per hour (1.2M rows by default): "clean" finds everything in agreement (the cost of every
// minute's run), "repair" first takes one minute out of overview_1m, so the run finds it,
// counts it again after its pause (Settle, 1 s) and rebuilds it. Baselines give the cost of the
// parts of a run.
//
//	go test -run '^$' -bench BenchmarkAudit -benchtime 5x ./internal/audit/
func BenchmarkAudit(b *testing.B) {
	db := storetest.Open(b)
	ctx := context.Background()
	now := time.Now().UTC()
	start := time.Now()
	fill(b, db, now, 2, *benchRate)
	b.Logf("%d events over 2 h inserted in %v", 2**benchRate, time.Since(start).Round(time.Millisecond))
	a := audit.New(db, audit.Options{}, slog.New(slog.DiscardHandler))
	if rep, err := a.RunOnce(ctx); err != nil || !rep.Clean() {
		b.Fatalf("first run: %+v, %v; want clean", rep, err)
	}

	// Baselines in the same run: the first pass's counts of the raw table and of the five
	// rollups, and the duplicate search over the whole window (a run searches a slice of it).
	window := []store.Range{{From: now.Add(-audit.DefaultWindow).Truncate(time.Hour), To: now.Truncate(time.Hour).Add(2 * time.Hour)}}
	b.Run("baseline-raw-counts", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.RawCounts(ctx, time.Minute, window); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-rollup-counts", func(b *testing.B) {
		for b.Loop() {
			for _, r := range store.Rollups {
				if _, err := db.RollupCounts(ctx, r, window); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("baseline-duplicates-whole-window", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.DuplicateKeys(ctx, window, 1000); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("clean", func(b *testing.B) {
		var checked int
		for b.Loop() {
			rep, err := a.RunOnce(ctx)
			if err != nil || !rep.Clean() {
				b.Fatalf("%+v, %v", rep, err)
			}
			checked = rep.Checked
		}
		b.ReportMetric(float64(checked), "buckets/op")
	})
	b.Run("repair", func(b *testing.B) {
		minute := now.Add(-30 * time.Minute).Truncate(time.Minute).Unix()
		for b.Loop() {
			b.StopTimer()
			if err := db.Conn().Exec(ctx, fmt.Sprintf("ALTER TABLE overview_1m DELETE WHERE t = toDateTime(%d)", minute)); err != nil {
				b.Fatal(err)
			}
			for {
				pending, err := db.PendingMutations(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(pending) == 0 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			b.StartTimer()
			rep, err := a.RunOnce(ctx)
			if err != nil || rep.Repaired["overview_1m"] != 1 {
				b.Fatalf("%+v, %v; want one bucket of overview_1m repaired", rep, err)
			}
		}
	})
}
