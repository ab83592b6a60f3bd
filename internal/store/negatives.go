package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
)

// LatestNegativesSQL is the query behind LatestNegatives and the values bound to it: the raw
// negative moments of [p.From, p.To) that pass the query's filters, newest first. Filter values
// are bound, never spliced into the text; times come from the Plan and limit is clamped with
// rollup.NegativesLimit.
//
// It reads little because every condition but the filters on free-text columns narrows by the
// table's sort key (moment, channel, occurred_at, event_id) or its day partitions: a moment or
// channel filter selects key prefixes, the time bounds select granules within each (moment,
// channel) and whole days, and PREWHERE reads the negative column alone before the others, so
// the wide columns are read only for the granules that hold negative moments. ClickHouse 18.16
// cannot read in key order for ORDER BY … LIMIT, so the window's matching rows are sorted; the
// window is the one the drill-down already shows.
func LatestNegativesSQL(q rollup.Query, p rollup.Plan, limit int) (string, []any) {
	where := []string{"occurred_at >= toDateTime(" + unix(p.From) + ")", "occurred_at < toDateTime(" + unix(p.To) + ")"}
	where, args := filterConditions(where, q.Filters)
	sql := `SELECT event_id, occurred_at, occurred_ms, moment, channel, touchpoint, outcome, csat, nps, ces,
	sentiment, wait_ms, region, product, segment, agent_team, journey_id
FROM events
PREWHERE negative = 1
WHERE ` + strings.Join(where, " AND ") + `
ORDER BY occurred_at DESC, occurred_ms DESC, event_id DESC
LIMIT ` + strconv.Itoa(rollup.NegativesLimit(limit))
	return sql, args
}

// LatestNegatives returns the latest raw negative moments of the window that pass the query's
// filters, newest first: at most limit (rollup.DefaultNegatives for 0, at most
// rollup.MaxNegatives). Each carries the rules it broke, from event.Event.NegativeReasons.
//
// The newest negatives are looked for in the window's last 10 s first, then its last 2 min,
// hour and day, then the whole window, until a slice holds limit of them: every event of a
// slice is newer than every event outside it, so the slice's newest are the window's. With
// heavy traffic the first slice suffices and the query reads seconds of events instead of the
// whole window (sorting a 15-minute window's negatives at 20,000 events/s took over 2 s on a
// loaded 2-core machine); with light traffic each slice is small anyway.
func (s *Store) LatestNegatives(ctx context.Context, q rollup.Query, p rollup.Plan, limit int) (_ []rollup.NegativeEvent, err error) {
	defer markUnavailable(&err)
	limit = rollup.NegativesLimit(limit)
	for _, last := range negativeSlices {
		slice := p
		if from := p.To.Add(-last); from.After(p.From) {
			slice.From = from
		}
		out, err := s.latestNegatives(ctx, q, slice, limit)
		if err != nil || len(out) >= limit || slice.From.Equal(p.From) {
			return out, err
		}
	}
	return s.latestNegatives(ctx, q, p, limit)
}

// negativeSlices are the ends of the window LatestNegatives looks in first, shortest first. The
// hour and the day keep a drill-down of a 7d or 30d window with a narrow filter from sorting
// weeks of raw negatives every tick when its latest ones are recent.
var negativeSlices = []time.Duration{10 * time.Second, 2 * time.Minute, time.Hour, 24 * time.Hour}

func (s *Store) latestNegatives(ctx context.Context, q rollup.Query, p rollup.Plan, limit int) ([]rollup.NegativeEvent, error) {
	sql, args := LatestNegativesSQL(q, p, limit)
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query latest negative moments: %w", err)
	}
	defer rows.Close()
	var out []rollup.NegativeEvent
	for rows.Next() {
		var (
			n  rollup.NegativeEvent
			at time.Time
			ms uint16
		)
		if err := rows.Scan(&n.EventID, &at, &ms, &n.Moment, &n.Channel, &n.Touchpoint, &n.Outcome,
			&n.CSAT, &n.NPS, &n.CES, &n.Sentiment, &n.WaitMS, &n.Region, &n.Product, &n.Segment,
			&n.AgentTeam, &n.JourneyID); err != nil {
			return nil, fmt.Errorf("read latest negative moments: %w", err)
		}
		n.OccurredAt = at.Add(time.Duration(ms) * time.Millisecond).UTC()
		e := event.Event{CSAT: n.CSAT, NPS: n.NPS, CES: n.CES, Sentiment: n.Sentiment, Outcome: n.Outcome}
		n.Reasons = e.NegativeReasons()
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read latest negative moments: %w", err)
	}
	return out, nil
}
