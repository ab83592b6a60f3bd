package metricsbench

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/store"
)

// touchpoint is one kind of event the generator writes: where it happens, and its share of all
// events in percent. The shares follow the demo simulator's model (internal/demo): about 35%
// zmot research, 10% fmot checkouts, 12% smot deliveries, 28% service contacts, 15% tmot
// follow-ups; channels per moment as in the demo's mixes.
type touchpoint struct {
	moment, channel, name, team string
	share                       float64
	// waitS and handleS are the medians of wait_ms and handle_ms in seconds (0: no value), drawn
	// log-normal with sigma.
	waitS, handleS, sigma float64
}

var touchpoints = []touchpoint{
	{moment: "zmot", channel: "web", name: "search", share: 6},
	{moment: "zmot", channel: "web", name: "product_page", share: 6},
	{moment: "zmot", channel: "web", name: "plan_comparison", share: 3},
	{moment: "zmot", channel: "web", name: "coverage_check", share: 2.5},
	{moment: "zmot", channel: "social", name: "social_ad", share: 3.9},
	{moment: "zmot", channel: "social", name: "social_post", share: 3.1},
	{moment: "zmot", channel: "review_site", name: "review_read", share: 6.3},
	{moment: "zmot", channel: "app", name: "app_browse", share: 2.5},
	{moment: "zmot", channel: "app", name: "product_page", share: 1.7},
	{moment: "fmot", channel: "web", name: "checkout", share: 4.5},
	{moment: "fmot", channel: "app", name: "in_app_checkout", share: 2.5},
	{moment: "fmot", channel: "store", name: "store_checkout", share: 3},
	{moment: "smot", channel: "email", name: "delivery_notification", share: 4},
	{moment: "smot", channel: "app", name: "order_tracking", share: 3},
	{moment: "smot", channel: "voice", name: "delivery_call", share: 2, handleS: 120, sigma: 0.4},
	{moment: "smot", channel: "field_service", name: "install_visit", share: 2, handleS: 5400, sigma: 0.4},
	{moment: "smot", channel: "field_service", name: "delivery", share: 1, handleS: 300, sigma: 0.5},
	{moment: "service", channel: "ivr", name: "ivr_menu", share: 5.6, waitS: 3, handleS: 80, sigma: 0.5},
	{moment: "service", channel: "voice", name: "billing_call", team: "billing", share: 4.4, waitS: 60, handleS: 390, sigma: 0.9},
	{moment: "service", channel: "voice", name: "tech_support_call", team: "technical", share: 2.9, waitS: 60, handleS: 390, sigma: 0.9},
	{moment: "service", channel: "voice", name: "account_call", team: "customer_care", share: 1.5, waitS: 60, handleS: 390, sigma: 0.9},
	{moment: "service", channel: "voice", name: "cancellation_call", team: "retention", share: 1, waitS: 60, handleS: 390, sigma: 0.9},
	{moment: "service", channel: "chat", name: "billing_chat", team: "billing", share: 2.8, waitS: 20, handleS: 600, sigma: 0.9},
	{moment: "service", channel: "chat", name: "tech_support_chat", team: "technical", share: 1.8, waitS: 20, handleS: 600, sigma: 0.9},
	{moment: "service", channel: "chat", name: "account_chat", team: "customer_care", share: 0.6, waitS: 20, handleS: 600, sigma: 0.9},
	{moment: "service", channel: "chat", name: "cancellation_chat", team: "retention", share: 0.96, waitS: 20, handleS: 600, sigma: 0.9},
	{moment: "service", channel: "messaging", name: "billing_message", team: "billing", share: 1.3, waitS: 240, handleS: 900, sigma: 1.1},
	{moment: "service", channel: "messaging", name: "tech_support_message", team: "technical", share: 1.5, waitS: 240, handleS: 900, sigma: 1.1},
	{moment: "service", channel: "email", name: "billing_email", team: "billing", share: 1.8, waitS: 10800, handleS: 480, sigma: 0.8},
	{moment: "service", channel: "email", name: "account_email", team: "customer_care", share: 1.2, waitS: 10800, handleS: 480, sigma: 0.8},
	{moment: "service", channel: "email", name: "escalation_email", team: "escalations", share: 0.64, waitS: 10800, handleS: 480, sigma: 0.8},
	{moment: "tmot", channel: "email", name: "nps_survey", share: 4.5},
	{moment: "tmot", channel: "email", name: "csat_survey", share: 2.25},
	{moment: "tmot", channel: "app", name: "in_app_survey", share: 3},
	{moment: "tmot", channel: "messaging", name: "sms_survey", share: 1.5},
	{moment: "tmot", channel: "review_site", name: "product_review", share: 1.5},
	{moment: "tmot", channel: "app", name: "app_review", share: 0.75},
	{moment: "tmot", channel: "social", name: "social_mention", share: 0.75},
	{moment: "tmot", channel: "web", name: "repeat_purchase", share: 0.75},
}

// channelOffset shifts the scores of a channel a little (as internal/demo does), so that the
// channels of a moment differ and the consistency index is not trivially 1.
var channelOffset = map[string]float64{
	"web": 0.02, "app": 0.04, "store": 0.03, "voice": -0.03, "ivr": -0.08, "chat": 0.01,
	"messaging": 0, "email": -0.04, "social": -0.05, "review_site": -0.02, "field_service": -0.01,
}

var stageOf = map[string]string{
	"zmot": "initial_contact", "fmot": "purchase", "smot": "delivery_installation",
	"service": "service_interaction", "tmot": "post_purchase_follow_up",
}

// Customer dimensions with the demo's weights.
var (
	regionNames, regionShares   = []string{"north", "south", "east", "west", "central"}, []float64{22, 26, 18, 20, 14}
	productNames, productShares = []string{"broadband", "mobile", "tv", "smart_home"}, []float64{35, 35, 18, 12}
	segmentNames, segmentShares = []string{"consumer", "small_business", "enterprise"}, []float64{72, 20, 8}
)

// generateSQL is one INSERT … SELECT that writes count events numbered from offset out of total,
// spread evenly over [from, from+span) in the order of their number, so that consecutive chunks
// arrive in time order as a live stream would. Every value but event_id (a random UUID) is a
// hash of the event's number and seed, so a run is reproducible.
//
// Shares: csat in 30% of the events, nps and ces in 15% each, sentiment on social and review
// sites, wait_ms on service contacts (log-normal per channel: IVR 3 s, chat 20 s, voice 1 min,
// messaging 4 min, email 3 h), handle_ms on service contacts and field visits, outcomes on
// checkouts, field visits and service contacts. negative and positive follow the rule of
// internal/event (Event.Negative, Event.Positive).
func generateSQL(offset, count, total uint64, from time.Time, span time.Duration, seed uint64) string {
	var (
		cum                                     []string
		moments, channels, names, stages, teams []string
		offsets, waits, handles, sigmas         []string
		sum                                     float64
		totalShare                              float64
	)
	for _, t := range touchpoints {
		totalShare += t.share
	}
	for i, t := range touchpoints {
		sum += t.share
		c := sum / totalShare
		if i == len(touchpoints)-1 {
			c = 2 // above any u in [0, 1)
		}
		cum = append(cum, ftoa(c))
		moments, channels, names = append(moments, quote(t.moment)), append(channels, quote(t.channel)), append(names, quote(t.name))
		stages, teams = append(stages, quote(stageOf[t.moment])), append(teams, quote(t.team))
		offsets = append(offsets, ftoa(channelOffset[t.channel]))
		waits, handles, sigmas = append(waits, ftoa(t.waitS*1000)), append(handles, ftoa(t.handleS*1000)), append(sigmas, ftoa(t.sigma))
	}
	arr := func(xs []string) string { return "[" + strings.Join(xs, ", ") + "]" }
	pick := func(names []string, shares []float64, u string) string {
		var qs, cs []string
		var s, tot float64
		for _, w := range shares {
			tot += w
		}
		for i, n := range names {
			s += shares[i]
			c := s / tot
			if i == len(names)-1 {
				c = 2
			}
			qs, cs = append(qs, quote(n)), append(cs, ftoa(c))
		}
		return fmt.Sprintf("%s[arrayFirstIndex(c -> c > %s, %s)]", arr(qs), u, arr(cs))
	}
	// u(n) is the n-th uniform number in (0, 1) of an event; uc(n) of its customer.
	u := func(n int) string {
		return fmt.Sprintf("((toFloat64(cityHash64(i, %d, %d)) + 1) / 18446744073709551617.)", seed, n)
	}
	uc := func(n int) string {
		return fmt.Sprintf("((toFloat64(cityHash64(cust, %d, %d)) + 1) / 18446744073709551617.)", seed, n)
	}
	// z(a, b) is a standard normal number (Box-Muller).
	z := func(a, b int) string { return fmt.Sprintf("(sqrt(-2 * log(%s)) * cos(2 * pi() * %s))", u(a), u(b)) }

	var b strings.Builder
	fmt.Fprintf(&b, `INSERT INTO events (event_id, occurred_at, occurred_ms, received_at, moment, channel,
	touchpoint, stage, outcome, customer_id, journey_id, csat, nps, ces, sentiment, wait_ms, handle_ms,
	negative, positive, region, product, segment, agent_team, attr_keys, attr_values)
SELECT
	toString(generateUUIDv4()) AS event_id,
	toDateTime(%d + intDiv(i * %d, %d)) AS occurred_at,
	toUInt16(cityHash64(i, %d, 0) %% 1000) AS occurred_ms,
	occurred_at + toUInt32(cityHash64(i, %d, 0) %% 3) AS received_at,
	%s[k] AS moment,
	%s[k] AS channel,
	%s[k] AS touchpoint,
	%s[k] AS stage,
	multiIf(moment = 'fmot' OR channel = 'field_service', if(%s < 0.9, 'completed', 'failed'),
		moment = 'service', multiIf(%s < 0.68, 'resolved', %s < 0.77, 'unresolved',
			%s < 0.84, if(channel = 'email', 'unresolved', 'abandoned'), %s < 0.93, 'transferred', 'escalated'),
		'') AS outcome,
	concat('c-', toString(cust)) AS customer_id,
	concat('j-', toString(cityHash64(i, %d, 20) %% 3000000)) AS journey_id,
	if(%s < 0.30, toNullable(toUInt8(1 + least(4, floor(5 * pow(%s, 0.39 - off))))), NULL) AS csat,
	if(%s < 0.15, toNullable(toUInt8(least(10, floor(11 * pow(%s, 0.40 - off))))), NULL) AS nps,
	if(%s < 0.15, toNullable(toUInt8(1 + least(6, floor(7 * pow(%s, 0.50 - off))))), NULL) AS ces,
	if(channel IN ('social', 'review_site'), toNullable(round(2 * pow(%s, 0.7 - off) - 1, 2)), NULL) AS sentiment,
	if(%s[k] > 0, toNullable(toUInt32(least(86400000, %s[k] * exp(%s[k] * %s)))), NULL) AS wait_ms,
	if(%s[k] > 0, toNullable(toUInt32(least(86400000, %s[k] * exp(0.5 * %s)))), NULL) AS handle_ms,
	toUInt8(ifNull(csat, 9) <= 2 OR ifNull(nps, 10) <= 6 OR ifNull(ces, 9) <= 3 OR ifNull(sentiment, 1) <= -0.25
		OR outcome IN ('abandoned', 'failed', 'unresolved')) AS negative,
	toUInt8(ifNull(csat, 0) >= 4 OR ifNull(nps, 0) >= 7 OR ifNull(ces, 0) >= 5 OR outcome = 'resolved') AS positive,
	%s AS region,
	%s AS product,
	%s AS segment,
	%s[k] AS agent_team,
	if(channel IN ('web', 'app'), ['device'], emptyArrayString()) AS attr_keys,
	if(channel = 'web', [%s], if(channel = 'app', [%s], emptyArrayString())) AS attr_values
FROM (
	SELECT number AS i, cityHash64(i, %d, 21) %% 1000000 AS cust,
		arrayFirstIndex(c -> c > %s, %s) AS k, %s[k] AS off
	FROM numbers(%d, %d)
)`,
		from.Unix(), int64(span/time.Second), total,
		seed, seed,
		arr(moments), arr(channels), arr(names), arr(stages),
		u(1), u(1), u(1), u(1), u(1),
		seed,
		u(2), u(3), u(4), u(5), u(6), u(7), u(8),
		arr(waits), arr(waits), arr(sigmas), z(9, 10),
		arr(handles), arr(handles), z(11, 12),
		pick(regionNames, regionShares, uc(1)), pick(productNames, productShares, uc(2)), pick(segmentNames, segmentShares, uc(3)),
		arr(teams),
		pick([]string{"desktop", "mobile", "tablet"}, []float64{48, 45, 7}, u(13)),
		pick([]string{"ios", "android"}, []float64{45, 55}, u(13)),
		seed, u(0), arr(cum), arr(offsets),
		offset, count,
	)
	return b.String()
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// loadStats says how the history was written.
type loadStats struct {
	Rows     uint64
	Insert   time.Duration // the INSERT … SELECT statements, views included
	Settle   time.Duration // waiting for background merges afterwards
	Settled  bool          // no merge was running when measuring began
	Parts    map[string]uint64
	DiskMiB  map[string]float64
	TblRows  map[string]uint64
	From, To time.Time
}

// load writes total events spread over [to-span, to) in chunks, through the materialized views
// like any insert, then waits up to settle for the background merges to finish.
func load(ctx context.Context, db *store.Store, total, chunk uint64, to time.Time, span time.Duration, seed uint64, settle time.Duration, progress func(done uint64)) (loadStats, error) {
	st := loadStats{Rows: total, From: to.Add(-span), To: to}
	start := time.Now()
	for off := uint64(0); off < total; off += chunk {
		n := min(chunk, total-off)
		if err := db.Conn().Exec(ctx, generateSQL(off, n, total, st.From, span, seed)); err != nil {
			return st, fmt.Errorf("insert events %d–%d: %w", off, off+n, err)
		}
		progress(off + n)
	}
	st.Insert = time.Since(start)
	start = time.Now()
	settled, err := waitMerges(ctx, db, settle)
	if err != nil {
		return st, err
	}
	st.Settle, st.Settled = time.Since(start), settled
	st.Parts, st.DiskMiB, st.TblRows, err = partsOf(ctx, db)
	return st, err
}

// waitMerges waits until no merge runs in the database, at most timeout; it reports whether
// the merges finished.
func waitMerges(ctx context.Context, db *store.Store, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		var n uint64
		if err := db.Conn().QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = ?", db.Database()).Scan(&n); err != nil {
			return false, fmt.Errorf("count merges: %w", err)
		}
		if n == 0 {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// partsOf counts the active parts, the rows and the disk size of every table of the database.
func partsOf(ctx context.Context, db *store.Store) (parts map[string]uint64, mib map[string]float64, rows map[string]uint64, err error) {
	r, err := db.Conn().Query(ctx, `SELECT table, count(), sum(bytes_on_disk), sum(rows) FROM system.parts
		WHERE database = ? AND active GROUP BY table`, db.Database())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("count parts: %w", err)
	}
	defer r.Close()
	parts, mib, rows = map[string]uint64{}, map[string]float64{}, map[string]uint64{}
	for r.Next() {
		var (
			t        string
			n, b, rs uint64
		)
		if err := r.Scan(&t, &n, &b, &rs); err != nil {
			return nil, nil, nil, fmt.Errorf("count parts: %w", err)
		}
		parts[t], mib[t], rows[t] = n, float64(b)/(1<<20), rs
	}
	return parts, mib, rows, r.Err()
}

// reuseHistory opens h's database as a previous run with -reuse left it, migrates it and
// rebuilds every rollup table that is empty (added by a newer migration) from the events. It
// reports false, with the database left to be loaded afresh, when the database does not hold
// exactly h's size of events.
func reuseHistory(ctx context.Context, cfg config, h *history, log *slog.Logger) (bool, error) {
	db, err := store.Open(ctx, cfg.storeOptions(h.name))
	if err != nil {
		return false, nil // no such database yet
	}
	var n uint64
	var first, last time.Time
	if err := db.Conn().QueryRow(ctx, "SELECT count(), min(occurred_at), max(occurred_at) FROM events").Scan(&n, &first, &last); err != nil || n != h.res.Size {
		db.Close()
		log.Info("not reusable, loading", "db", h.name, "events", n, "err", err)
		return false, nil
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return false, fmt.Errorf("migrate %s: %w", h.name, err)
	}
	h.db, h.end = db, last.Add(time.Second).UTC()
	all := []store.Range{{From: first.Truncate(time.Hour), To: h.end.Add(time.Hour)}}
	for _, r := range store.Rollups {
		var rows uint64
		if err := db.Conn().QueryRow(ctx, "SELECT count() FROM "+r.Table).Scan(&rows); err != nil {
			return true, fmt.Errorf("%s: %w", r.Table, err)
		}
		if rows > 0 {
			continue
		}
		log.Info("rebuilding a new rollup from the events", "db", h.name, "table", r.Table)
		if err := db.RebuildRollup(ctx, r, all); err != nil {
			return true, err
		}
	}
	// Every rollup now holds the whole history: record it as an operator who filled the
	// tables by hand does (docs/api.md, "After an upgrade"), or the store would answer the
	// windows of the tables migrations added later from the finer ones; Migrate, with nothing
	// left to apply, reads it again.
	if err := db.Conn().Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at)
		SELECT version, 'rebuilt from the events by metrics-bench', toDateTime(0) FROM schema_migrations GROUP BY version`); err != nil {
		return true, fmt.Errorf("record the rollups of %s as whole: %w", h.name, err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		return true, fmt.Errorf("migrate %s: %w", h.name, err)
	}
	log.Info("reused", "db", h.name, "events", n, "end", h.end)
	return true, nil
}
