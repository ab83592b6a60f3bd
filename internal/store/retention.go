package store

import (
	"context"
	"fmt"
	"time"
)

// DropExpired drops the days of raw events that ended before cutoff. ClickHouse 18.16 has no
// TTL, and dropping a whole partition is instant where deleting rows is not. It returns the
// partitions dropped, e.g. "20261022".
func (s *Store) DropExpired(ctx context.Context, cutoff time.Time) ([]string, error) {
	// A day partition may be dropped once its last second is before the cutoff.
	last := cutoff.UTC().AddDate(0, 0, -1).Format("20060102")
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT partition FROM system.parts
		WHERE database = ? AND table = 'events' AND active AND partition <= ?
		ORDER BY partition`, s.database, last)
	if err != nil {
		return nil, fmt.Errorf("list expired partitions: %w", err)
	}
	var parts []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, err
		}
		parts = append(parts, p)
	}
	rows.Close()
	for i, p := range parts {
		if len(p) != 8 { // not a toYYYYMMDD partition: leave it to a person
			continue
		}
		if err := s.conn.Exec(ctx, "ALTER TABLE events DROP PARTITION "+p); err != nil {
			return parts[:i], fmt.Errorf("drop partition %s of events: %w", p, err)
		}
	}
	return parts, nil
}
