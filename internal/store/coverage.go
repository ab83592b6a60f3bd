package store

// Which rollup table may answer a plan, given since when each table holds every event.

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
)

// laterRollups are the rollup tables that migrations added after the first schema, with the
// migration that made each and the finer table that answers the same question in its place
// (its step divides theirs, so an aligned window reads the same sums). On a database that
// already held events when the migration ran, such a table is filled from then on by its
// materialized view (and over the audit's window by the audit): a window reaching further
// back would miss the events stored before, so it reads the finer table instead, which is
// slower but complete.
var laterRollups = map[string]struct {
	migration uint32
	instead   string
}{
	"overview_1h":   {8, "detail_1h"},
	"overview_10s":  {12, "overview_1s"},
	"overview_30m":  {13, "overview_1m"},
	"touchpoint_1h": {15, "detail_1h"},
	"overview_30s":  {16, "overview_10s"},
	"overview_2m":   {16, "overview_1m"},
}

// coverage is since when each table of laterRollups holds every event; a table that is not
// listed holds every event.
type coverage map[string]time.Time

// sameInstallation is how close to the first migration a later one must have been applied for
// its table to count as made with the database: a new installation applies every migration
// within seconds; one that took events for longer before an upgrade has them in its older
// tables only.
const sameInstallation = 10 * time.Minute

// maxTime is a time no window starts after.
var maxTime = time.Unix(1<<62, 0)

// readCoverage reads when each later rollup's migration was applied (the earliest record of
// it: an operator who filled the table by hand records that, see docs/api.md). A migration
// applied within sameInstallation of the first one made its table along with the others (a
// new installation applies them all at once): that table holds every event. When
// schema_migrations cannot be read (a database never migrated, or an error), nothing is known:
// every later table counts as holding nothing, so queries read the finer tables, slower but
// whole, until the next read (each Migrate, and each connection).
func readCoverage(ctx context.Context, conn driver.Conn) *coverage {
	unknown := coverage{}
	for table := range laterRollups {
		unknown[table] = maxTime
	}
	rows, err := conn.Query(ctx, "SELECT version, min(applied_at) FROM schema_migrations GROUP BY version")
	if err != nil {
		return &unknown
	}
	defer rows.Close()
	applied := map[uint32]time.Time{}
	var first time.Time
	for rows.Next() {
		var v uint32
		var at time.Time
		if rows.Scan(&v, &at) != nil {
			return &unknown
		}
		applied[v] = at
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if rows.Err() != nil {
		return &unknown
	}
	c := coverage{}
	for table, later := range laterRollups {
		at, ok := applied[later.migration]
		if !ok {
			c[table] = maxTime // not applied yet: nothing to read
			continue
		}
		if at.Sub(first) < sameInstallation {
			continue
		}
		// An event may lie MaxFutureSkew ahead of the clock: one stored just before the
		// migration can have a later time than its record.
		c[table] = at.Add(event.MaxFutureSkew)
	}
	return &c
}

// answering returns the plan of q with the table that holds every event it reads (from the
// comparison period on, when q compares): its own, or the finer one of laterRollups that
// answers in its place.
func (c coverage) answering(q rollup.Query, p rollup.Plan) rollup.Plan {
	earliest := p.From
	if q.Compare && !p.PrevFrom.IsZero() && p.PrevFrom.Before(earliest) {
		earliest = p.PrevFrom
	}
	for {
		since, later := c[p.Table]
		if !later || !earliest.Before(since) {
			return p
		}
		p.Table = laterRollups[p.Table].instead
	}
}
