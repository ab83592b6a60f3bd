package store

import (
	"context"
	"fmt"
	"time"
)

// Retention of the rollups, by what the queries need: the one-second overview answers the 1m
// window with its previous period (compare=last_week reads the 10-second overview), the
// 10-second overview the 5m window, the 30-second one the 15m window and the 2-minute one the
// 1h window, each with the same window last week;
// the minute detail windows up to an hour, with the same hour last week; the minute overview
// and the hour tables keep the trends of days and months, and the 30-day window before the
// current one after its raw events are gone.
const (
	Overview1sRetention = 2 * 24 * time.Hour
	// Overview10sRetention keeps the 10-second overview of the 5m and 15m windows long enough
	// for compare=last_week.
	Overview10sRetention = 8 * 24 * time.Hour
	// Overview30sRetention and Overview2mRetention keep the overviews of the 15m and 1h windows
	// as long, for the same reason.
	Overview30sRetention = 8 * 24 * time.Hour
	Overview2mRetention  = 8 * 24 * time.Hour
	Detail1mRetention    = 8 * 24 * time.Hour
	Detail1hRetention    = 400 * 24 * time.Hour
	// Overview1hRetention keeps the hourly overview of the 7d and 30d windows.
	Overview1hRetention = 400 * 24 * time.Hour
	// Overview30mRetention keeps the 30-minute overview of the 24h window (48 steps a day, small
	// enough to keep as long as the hourly tables).
	Overview30mRetention = 400 * 24 * time.Hour
)

// retained is every table the retention job trims, how long it keeps data (raw is the
// configured retention of events) and whether it is partitioned by month (else by day).
var retained = []struct {
	table   string
	keep    func(raw time.Duration) time.Duration
	monthly bool
}{
	{"events", func(raw time.Duration) time.Duration { return raw }, false},
	{"event_keys", func(raw time.Duration) time.Duration { return raw }, false},
	{"overview_1s", func(time.Duration) time.Duration { return Overview1sRetention }, false},
	{"overview_10s", func(time.Duration) time.Duration { return Overview10sRetention }, false},
	{"overview_30s", func(time.Duration) time.Duration { return Overview30sRetention }, false},
	{"overview_2m", func(time.Duration) time.Duration { return Overview2mRetention }, false},
	{"overview_1m", func(raw time.Duration) time.Duration { return raw }, false},
	{"overview_30m", func(time.Duration) time.Duration { return Overview30mRetention }, true},
	{"detail_1m", func(time.Duration) time.Duration { return Detail1mRetention }, false},
	{"detail_1h", func(time.Duration) time.Duration { return Detail1hRetention }, true},
	{"touchpoint_1h", func(time.Duration) time.Duration { return Detail1hRetention }, true},
	{"overview_1h", func(time.Duration) time.Duration { return Overview1hRetention }, true},
}

// DropExpired drops, from every table, the partitions whose data all ended before its
// retention: raw events and their keys after rawRetention, each rollup after its own.
// ClickHouse 18.16 has no TTL, and dropping a whole partition is instant where deleting rows
// is not. It returns the dropped partitions as "table:partition".
func (s *Store) DropExpired(ctx context.Context, now time.Time, rawRetention time.Duration) (_ []string, err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, r := range retained {
		cutoff := now.UTC().Add(-r.keep(rawRetention))
		// A partition may go once its last second is before the cutoff: a day partition up to
		// the day before the cutoff's, a month partition up to the month before the cutoff's.
		last, width := cutoff.AddDate(0, 0, -1).Format("20060102"), 8
		if r.monthly {
			last, width = cutoff.AddDate(0, -1, 0).Format("200601"), 6
		}
		parts, err := s.partitionsUpTo(ctx, r.table, last)
		if err != nil {
			return dropped, err
		}
		for _, p := range parts {
			if len(p) != width { // not ours: leave it to a person
				continue
			}
			if err := conn.Exec(ctx, "ALTER TABLE "+s.ddlTable(r.table)+" DROP PARTITION "+p); err != nil {
				return dropped, fmt.Errorf("drop partition %s of %s: %w", p, r.table, err)
			}
			dropped = append(dropped, r.table+":"+p)
		}
	}
	return dropped, nil
}

func (s *Store) partitionsUpTo(ctx context.Context, table, last string) ([]string, error) {
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, `SELECT DISTINCT partition FROM system.parts
		WHERE database = ? AND table = ? AND active AND partition <= ?
		ORDER BY partition`, s.database, s.partsTable(table), last)
	if err != nil {
		return nil, fmt.Errorf("list expired partitions of %s: %w", table, err)
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return parts, rows.Err()
}
