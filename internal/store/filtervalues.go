package store

import (
	"context"
	"fmt"
	"time"

	"github.com/truthboard/truthboard/internal/rollup"
)

// FilterValues lists, for each of rollup.FilterDimensions, the values that have events in
// [from, to), most events first, at most limit of each (limit+1 are read, so the caller can
// tell that a list was cut). It reads the minute rollup for windows up to an hour and the
// hourly one beyond: one small query per dimension.
func (s *Store) FilterValues(ctx context.Context, from, to time.Time, limit int) (_ map[string][]rollup.FilterValue, err error) {
	defer markUnavailable(&err)
	table := "detail_1m"
	if to.Sub(from) > time.Hour {
		table = "detail_1h"
	}
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]rollup.FilterValue, len(rollup.FilterDimensions))
	for _, dim := range rollup.FilterDimensions {
		rows, err := conn.Query(ctx, `SELECT `+dim+` AS v, sumMerge(events) AS n FROM `+table+`
			WHERE t >= toDateTime(?) AND t < toDateTime(?) AND `+dim+` != ''
			GROUP BY v ORDER BY n DESC, v LIMIT ?`, from.Unix(), to.Unix(), limit+1)
		if err != nil {
			return nil, fmt.Errorf("read the values of %s: %w", dim, err)
		}
		vals := []rollup.FilterValue{}
		for rows.Next() {
			var v rollup.FilterValue
			if err := rows.Scan(&v.Value, &v.Events); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read the values of %s: %w", dim, err)
			}
			vals = append(vals, v)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read the values of %s: %w", dim, err)
		}
		out[dim] = vals
	}
	return out, nil
}
