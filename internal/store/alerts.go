package store

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/rollup"
)

// The alert engine's reads and its history (clickhouse/migrations/0006_alerts.sql).

// AlertData reads what the alert engine needs for one evaluation: for each query of
// alert.Engine.Queries, the rollup counts per moment × channel of its current window, and of
// its baseline both in all and cut into the query's parts (unless the engine still has it:
// Query.BaselineKnown). Each query is one read per period, so the evaluation costs a fixed set
// of queries, whatever the number of screens. Reads go
// through Rollup, the query the screens use, so an alert's figures are those a screen of the
// same window shows.
func (s *Store) AlertData(ctx context.Context, qs []alert.Query) (_ []alert.Data, err error) {
	defer markUnavailable(&err)
	out := make([]alert.Data, 0, len(qs))
	for _, q := range qs {
		d := alert.Data{Query: q}
		groups, err := s.Rollup(ctx, rollup.Query{By: []string{"moment", "channel"}, Filters: q.Filters},
			rollup.Plan{Table: q.Current.Table, From: q.Current.From, To: q.Current.To})
		if err != nil {
			return nil, fmt.Errorf("alert query %s, current window: %w", q.ID, err)
		}
		d.Current = map[alert.Key]rollup.Counts{}
		for i := range groups {
			addCell(d.Current, &groups[i])
		}
		if q.Baseline.Table != "" && !q.BaselineKnown {
			if d.Baseline, d.BaselineParts, err = s.alertBaseline(ctx, q); err != nil {
				return nil, fmt.Errorf("alert query %s, baseline: %w", q.ID, err)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// alertBaseline reads the baseline of q per moment × channel and part (a trend series whose
// step is the part), and adds the parts up.
func (s *Store) alertBaseline(ctx context.Context, q alert.Query) (map[alert.Key]rollup.Counts, map[alert.Key][]rollup.Counts, error) {
	groups, err := s.Rollup(ctx, rollup.Query{By: []string{"moment", "channel"}, Filters: q.Filters, Step: q.Part},
		rollup.Plan{Table: q.Baseline.Table, From: q.Baseline.From, To: q.Baseline.To})
	if err != nil {
		return nil, nil, err
	}
	total, parts := map[alert.Key]rollup.Counts{}, map[alert.Key][]rollup.Counts{}
	start := q.PartStart()
	for i := range groups {
		g := &groups[i]
		k := addCell(total, g)
		p := int(g.Bucket.Sub(start) / q.Part)
		if p < 0 || g.Bucket.Sub(start)%q.Part != 0 {
			return nil, nil, fmt.Errorf("a part starts at %s, not on a part boundary after %s", g.Bucket, start)
		}
		ps := parts[k]
		for len(ps) <= p {
			ps = append(ps, rollup.Counts{})
		}
		ps[p].Add(&g.Counts)
		parts[k] = ps
	}
	return total, parts, nil
}

// addCell adds g's counts to its moment × channel in cells and returns that cell.
func addCell(cells map[alert.Key]rollup.Counts, g *rollup.Group) alert.Key {
	k := alert.Key{Moment: g.Moment, Channel: g.Channel}
	c := cells[k]
	c.Add(&g.Counts)
	cells[k] = c
	return k
}

// alertTransitionColumns are the columns AppendAlertTransitions writes, in order (always named:
// see eventColumns).
var alertTransitionColumns = []string{
	"at", "at_ns", "fingerprint", "alertname", "from_state", "to_state", "label_names", "label_values",
	"summary", "description", "active_at_ns", "fired_at_ns", "resolved_at_ns",
	"value", "n", "low", "high", "target", "baseline", "baseline_n", "z", "p", "change",
	"silenced_by", "acknowledged_by", "acknowledged_at_ns",
}

// AppendAlertTransitions records transitions (and acknowledgements) of alerts in the history,
// in one insert. The observation's Dispersion is not kept (its Z and P are the widened ones):
// the history table has no column for it, and ClickHouse 18.16 cannot add one idempotently.
func (s *Store) AppendAlertTransitions(ctx context.Context, ts []alert.Transition) (err error) {
	defer markUnavailable(&err)
	if len(ts) == 0 {
		return nil
	}
	conn, err := s.connection()
	if err != nil {
		return err
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO alert_transitions ("+strings.Join(alertTransitionColumns, ", ")+")")
	if err != nil {
		return fmt.Errorf("prepare insert of %d alert transitions: %w", len(ts), err)
	}
	defer batch.Abort()
	for _, t := range ts {
		a := &t.Alert
		names, values := sortedAttributes(a.Labels)
		o := &a.Observation
		err := batch.Append(t.At.Truncate(time.Second), t.At.UnixNano(), a.Fingerprint, a.Labels["alertname"],
			string(t.From), string(t.To), names, values, a.Annotations["summary"], a.Annotations["description"],
			nanos(a.ActiveAt), nanos(a.FiredAt), nanos(a.ResolvedAt),
			finite(o.Value), o.N, finite(o.Low), finite(o.High), finite(o.Target), finite(o.Baseline), o.BaselineN,
			finite(o.Z), finite(o.P), finite(o.Change),
			nonNil(a.SilencedBy), a.AcknowledgedBy, nanos(a.AcknowledgedAt))
		if err != nil {
			return fmt.Errorf("insert alert transition of %s: %w", a.Fingerprint, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d alert transitions: %w", len(ts), err)
	}
	return nil
}

// MaxAlertHistory bounds the rows of one AlertHistory answer.
const MaxAlertHistory = 10_000

// alertTransitionSelect reads the columns of AppendAlertTransitions back, in scanTransition's
// order.
const alertTransitionSelect = `SELECT at_ns, fingerprint, from_state, to_state,
	label_names, label_values, summary, description, active_at_ns, fired_at_ns, resolved_at_ns,
	value, n, low, high, target, baseline, baseline_n, z, p, change,
	silenced_by, acknowledged_by, acknowledged_at_ns
FROM alert_transitions`

// alertHistorySQL is the query of AlertHistory and its arguments.
func alertHistorySQL(from, to time.Time, fingerprint string, limit int) (string, []any) {
	// at narrows to the partitions and granules of the range; at_ns decides.
	where := []string{"at >= toDateTime(?)", "at <= toDateTime(?)", "at_ns >= ?", "at_ns < ?"}
	args := []any{from.Unix(), to.Unix(), from.UnixNano(), to.UnixNano()}
	if fingerprint != "" {
		where, args = append(where, "fingerprint = ?"), append(args, fingerprint)
	}
	return alertTransitionSelect + "\nWHERE " + strings.Join(where, " AND ") +
		"\nORDER BY at_ns DESC, fingerprint LIMIT " + strconv.Itoa(limit), args
}

// AlertHistory lists the transitions with from <= At < to, newest first, at most limit of them
// (1 to MaxAlertHistory); fingerprint, when not empty, keeps one alert's.
func (s *Store) AlertHistory(ctx context.Context, from, to time.Time, fingerprint string, limit int) (_ []alert.Transition, err error) {
	defer markUnavailable(&err)
	if limit < 1 || limit > MaxAlertHistory {
		return nil, fmt.Errorf("alert history: limit %d is out of range; ask for 1 to %d rows", limit, MaxAlertHistory)
	}
	sql, args := alertHistorySQL(from, to, fingerprint, limit)
	return s.readTransitions(ctx, "read alert history", sql, args...)
}

// LatestAlerts returns the alerts that were pending or firing at their latest transition: the
// state to give alert.Engine.Restore after a restart. Each alert is as its latest row holds it.
func (s *Store) LatestAlerts(ctx context.Context) (_ []alert.Alert, err error) {
	defer markUnavailable(&err)
	// LIMIT BY keeps each fingerprint's latest row; the outer query keeps the active ones. at_ns
	// orders the rows of one fingerprint (the engine writes at most one per evaluation, and an
	// acknowledgement at its own time).
	ts, err := s.readTransitions(ctx, "read the latest alert states", latestAlertsSQL)
	if err != nil {
		return nil, err
	}
	out := make([]alert.Alert, len(ts))
	for i := range ts {
		out[i] = ts[i].Alert
	}
	return out, nil
}

// readTransitions runs a query of alertTransitionSelect's columns; what names it in errors.
func (s *Store) readTransitions(ctx context.Context, what, sql string, args ...any) ([]alert.Transition, error) {
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []alert.Transition
	for rows.Next() {
		t, err := scanTransition(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// latestAlertsSQL is the query of LatestAlerts.
const latestAlertsSQL = `SELECT * FROM (` + alertTransitionSelect + `
	ORDER BY fingerprint, at_ns DESC LIMIT 1 BY fingerprint
) WHERE to_state IN ('pending', 'firing')`

// scanner is the Scan of a driver's rows.
type scanner interface{ Scan(dest ...any) error }

func scanTransition(rows scanner) (alert.Transition, error) {
	var (
		t                                 alert.Transition
		at, activeAt, firedAt, resolvedAt int64
		ackAt                             int64
		from, to, summary, description    string
		names, values                     []string
	)
	a := &t.Alert
	o := &a.Observation
	err := rows.Scan(&at, &a.Fingerprint, &from, &to, &names, &values, &summary, &description,
		&activeAt, &firedAt, &resolvedAt, &o.Value, &o.N, &o.Low, &o.High, &o.Target, &o.Baseline, &o.BaselineN,
		&o.Z, &o.P, &o.Change, &a.SilencedBy, &a.AcknowledgedBy, &ackAt)
	if err != nil {
		return t, err
	}
	if len(names) != len(values) {
		return t, fmt.Errorf("alert %s: %d label names but %d values", a.Fingerprint, len(names), len(values))
	}
	a.Labels = make(map[string]string, len(names))
	for i, n := range names {
		a.Labels[n] = values[i]
	}
	a.Annotations = map[string]string{"summary": summary, "description": description}
	t.At, t.From, t.To, a.State = fromNanos(at), alert.State(from), alert.State(to), alert.State(to)
	a.ActiveAt, a.FiredAt, a.ResolvedAt, a.AcknowledgedAt = fromNanos(activeAt), fromNanos(firedAt), fromNanos(resolvedAt), fromNanos(ackAt)
	a.Silenced = len(a.SilencedBy) > 0
	if len(a.SilencedBy) == 0 {
		a.SilencedBy = nil
	}
	return t, nil
}

// AddAlertSilence records a silence, or its early end (the silence as alert.Engine.Expire
// returns it, with an earlier EndsAt).
func (s *Store) AddAlertSilence(ctx context.Context, sl alert.Silence) (err error) {
	defer markUnavailable(&err)
	names, values := make([]string, len(sl.Matchers)), make([]string, len(sl.Matchers))
	for i, m := range sl.Matchers {
		names[i], values[i] = m.Name, m.Value
	}
	conn, err := s.connection()
	if err != nil {
		return err
	}
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO alert_silences
		(id, matcher_names, matcher_values, starts_at_ns, ends_at_ns, reason, changed_at)`)
	if err != nil {
		return fmt.Errorf("prepare insert of silence %s: %w", sl.ID, err)
	}
	defer batch.Abort()
	if err := batch.Append(sl.ID, names, values, nanos(sl.StartsAt), nanos(sl.EndsAt), sl.Reason, time.Now().Truncate(time.Second)); err != nil {
		return fmt.Errorf("insert silence %s: %w", sl.ID, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert silence %s: %w", sl.ID, err)
	}
	return nil
}

// alertSilencesSQL is the query of AlertSilences; its parameter is the time in nanoseconds.
const alertSilencesSQL = `SELECT id, any(matcher_names), any(matcher_values), min(starts_at_ns), min(ends_at_ns), any(reason)
FROM alert_silences GROUP BY id HAVING min(ends_at_ns) > ? ORDER BY min(ends_at_ns), id`

// AlertSilences returns the silences in force at now, for alert.Engine.Restore.
func (s *Store) AlertSilences(ctx context.Context, now time.Time) (_ []alert.Silence, err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, alertSilencesSQL, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("read silences: %w", err)
	}
	defer rows.Close()
	var out []alert.Silence
	for rows.Next() {
		var (
			sl            alert.Silence
			names, values []string
			start, end    int64
		)
		if err := rows.Scan(&sl.ID, &names, &values, &start, &end, &sl.Reason); err != nil {
			return nil, fmt.Errorf("read silences: %w", err)
		}
		if len(names) != len(values) {
			return nil, fmt.Errorf("read silences: silence %s has %d matcher names but %d values", sl.ID, len(names), len(values))
		}
		for i := range names {
			sl.Matchers = append(sl.Matchers, alert.Matcher{Name: names[i], Value: values[i]})
		}
		sl.StartsAt, sl.EndsAt = fromNanos(start), fromNanos(end)
		out = append(out, sl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read silences: %w", err)
	}
	return out, nil
}

// nanos is t in Unix nanoseconds, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos reads what nanos writes, in UTC.
func fromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// finite stores a figure that is not a number as 0: the history is for people, who read an
// absent figure as such beside its n.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// sortedAttributes returns the keys of m in order and their values.
func sortedAttributes(m map[string]string) (keys, values []string) {
	keys = make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values = make([]string, len(keys))
	for i, k := range keys {
		values[i] = m[k]
	}
	return keys, values
}
