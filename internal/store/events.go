package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/truthboard/truthboard/internal/event"
)

// eventColumns are the columns InsertEvents writes, in order. They are always named: with
// clickhouse-go and ClickHouse 18.16 a batch prepared without a column list inserts nothing.
var eventColumns = []string{
	"event_id", "occurred_at", "occurred_ms", "received_at", "moment", "channel", "touchpoint",
	"stage", "outcome", "customer_id", "journey_id", "csat", "nps", "ces", "sentiment",
	"wait_ms", "handle_ms", "negative", "positive", "region", "product", "segment", "agent_team",
	"attr_keys", "attr_values",
}

var insertEvents = "INSERT INTO events (" + strings.Join(eventColumns, ", ") + ")"

// InsertEvents writes events received at one time; see InsertReceived.
func (s *Store) InsertEvents(ctx context.Context, evs []event.Event, receivedAt time.Time) error {
	received := make([]time.Time, len(evs))
	for i := range received {
		received[i] = receivedAt
	}
	return s.InsertReceived(ctx, evs, received, "")
}

// InsertReceived writes events to the raw table in one batch, column by column; received[i]
// is when evs[i] reached Truthboard. queryID names the insert in ClickHouse (system.processes),
// so that WaitForInserts can find it while it runs, even after this process is gone; "" gives
// it a random one. The insert is one block, which ClickHouse writes
// atomically per partition (day): either every row of a day is stored or none is. A failed
// batch cannot be re-sent, so callers keep their events and call again. An error about the
// values themselves (see invalidData) has an InvalidData method returning true: sending the
// same events again fails the same way.
func (s *Store) InsertReceived(ctx context.Context, evs []event.Event, received []time.Time, queryID string) error {
	if len(evs) == 0 {
		return nil
	}
	p, err := s.PrepareInsert(ctx, evs, received, queryID)
	if err != nil {
		return err
	}
	defer p.Abort()
	return p.Send()
}

// PrepareInsert does what InsertReceived does up to sending the rows: it opens the INSERT on a
// connection of the pool, under queryID, and builds its block, which Send then sends. Until
// Send nothing is stored; Abort closes the connection, and ClickHouse stores nothing of it.
// ctx bounds the whole insert, Send included. The ingest drainer prepares the next insert
// this way while ClickHouse takes the current one.
func (s *Store) PrepareInsert(ctx context.Context, evs []event.Event, received []time.Time, queryID string) (_ interface {
	Send() error
	Abort()
}, err error) {
	defer markUnavailable(&err)
	defer markInvalidData(&err)
	n := len(evs)
	if len(received) != n {
		return nil, fmt.Errorf("insert events: %d events but %d receive times", n, len(received))
	}
	var (
		ids, moments, channels, touchpoints   = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		stages, outcomes, customers, journeys = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		regions, products, segments, teams    = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		occurred                              = make([]time.Time, n)
		millis                                = make([]uint16, n)
		csat, nps, ces                        = make([]*uint8, n), make([]*uint8, n), make([]*uint8, n)
		sentiment                             = make([]*float64, n)
		wait, handle                          = make([]*uint32, n), make([]*uint32, n)
		negative, positive                    = make([]uint8, n), make([]uint8, n)
		attrKeys, attrValues                  = make([][]string, n), make([][]string, n)
	)
	for i := range evs {
		e := &evs[i]
		ids[i], moments[i], channels[i], touchpoints[i] = e.EventID, e.Moment, e.Channel, e.Touchpoint
		stages[i], outcomes[i], customers[i], journeys[i] = e.Stage, e.Outcome, e.CustomerID, e.JourneyID
		regions[i], products[i], segments[i], teams[i] = e.Region, e.Product, e.Segment, e.AgentTeam
		occurred[i] = e.OccurredAt.Truncate(time.Second)
		millis[i] = uint16(e.OccurredAt.Nanosecond() / int(time.Millisecond))
		csat[i], nps[i], ces[i], sentiment[i], wait[i], handle[i] = e.CSAT, e.NPS, e.CES, e.Sentiment, e.WaitMS, e.HandleMS
		negative[i], positive[i] = b2u(e.Negative()), b2u(e.Positive())
		attrKeys[i], attrValues[i] = sortedAttributes(e.Attributes)
	}
	if queryID == "" {
		queryID = "truthboard-insert-" + newQuerySuffix()
	}
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithQueryID(queryID))
	batch, err := conn.PrepareBatch(ctx, insertEvents)
	if err != nil {
		return nil, fmt.Errorf("prepare insert of %d events: %w", n, err)
	}
	columns := []any{
		ids, occurred, millis, received, moments, channels, touchpoints,
		stages, outcomes, customers, journeys, csat, nps, ces, sentiment,
		wait, handle, negative, positive, regions, products, segments, teams,
		attrKeys, attrValues,
	}
	for i, col := range columns {
		if err := batch.Column(i).Append(col); err != nil {
			_ = batch.Abort()
			return nil, fmt.Errorf("insert events: column %s: %w", eventColumns[i], err)
		}
	}
	return &preparedInsert{batch: batch, n: n}, nil
}

// preparedInsert is an INSERT opened by PrepareInsert with its block built, not yet sent.
type preparedInsert struct {
	batch driver.Batch
	n     int
}

// Send sends the rows and waits for ClickHouse to store them; errors are marked as
// InsertReceived's.
func (p *preparedInsert) Send() (err error) {
	defer markUnavailable(&err)
	defer markInvalidData(&err)
	if err := p.batch.Send(); err != nil {
		return fmt.Errorf("insert %d events: %w", p.n, err)
	}
	return nil
}

// Abort drops the insert if it was not sent: its connection is closed, nothing is stored.
func (p *preparedInsert) Abort() { _ = p.batch.Abort() }

func newQuerySuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// abandonedInsertGrace is how long WaitForInserts lets a running insert finish before it
// kills it.
const abandonedInsertGrace = 2 * time.Second

// WaitForInserts returns once ClickHouse runs no insert whose query id starts with prefix, but
// the query ids of except: the inserts of one writer (this process, or the one before it on
// the same spool). An insert whose client died or gave up after sending its data still lands,
// so a lookup of its events must wait for it. One whose client went away before sending all
// its data would wait for that data up to ClickHouse's receive_timeout (300 s) and then fail;
// after a grace period it is killed (KILL QUERY … SYNC), which ends it either way before the
// lookup. except names this process's inserts that are open with no data sent yet (prepared
// ahead, PrepareInsert): they can store nothing until sent, so they are neither waited for nor
// killed. Call it only when the writer itself has no insert sending.
func (s *Store) WaitForInserts(ctx context.Context, prefix string, except ...string) (err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return err
	}
	where := "query_id LIKE ?"
	args := []any{strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(prefix) + "%"}
	for _, id := range except {
		where += " AND query_id != ?"
		args = append(args, id)
	}
	start := time.Now()
	for {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM system.processes WHERE "+where, args...).Scan(&n)
		if err != nil {
			return fmt.Errorf("look for inserts still running: %w", err)
		}
		if n == 0 {
			return nil
		}
		if time.Since(start) > abandonedInsertGrace {
			if err := conn.Exec(ctx, "KILL QUERY WHERE "+where+" SYNC", args...); err != nil {
				return fmt.Errorf("end %d abandoned inserts: %w", n, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d inserts of events still running in ClickHouse: %w", n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ExistingKeys returns which of the given events are already stored. The batch's keys travel
// as an external table of the native protocol rather than as IN lists in the query text: with
// 20,000 keys, parsing the text cost ClickHouse 18.16 four times more than the lookup itself.
// event_keys is sorted by (occurred_at, event_id), so the batch's seconds select a few granules
// and the cost follows the batch, not the table.
func (s *Store) ExistingKeys(ctx context.Context, evs []event.Event) (_ map[event.Key]bool, err error) {
	defer markUnavailable(&err)
	found := map[event.Key]bool{}
	if len(evs) == 0 {
		return found, nil
	}
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	keys, err := ext.NewTable("batch_keys", ext.Column("at", "DateTime"), ext.Column("id", "String"))
	if err != nil {
		return nil, fmt.Errorf("look up event ids: %w", err)
	}
	seen := make(map[event.Key]bool, len(evs))
	for i := range evs {
		k := evs[i].Key()
		if seen[k] {
			continue
		}
		seen[k] = true
		if err := keys.Append(time.Unix(k.Second, 0).UTC(), k.EventID); err != nil {
			return nil, fmt.Errorf("look up event ids: %w", err)
		}
	}
	const query = `SELECT event_id, occurred_at FROM event_keys
		WHERE occurred_at IN (SELECT at FROM batch_keys) AND event_id IN (SELECT id FROM batch_keys)`
	rows, err := conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(keys)), query)
	if err != nil {
		return nil, fmt.Errorf("look up %d event ids: %w", len(seen), err)
	}
	defer rows.Close()
	for rows.Next() {
		var k event.Key
		var at time.Time
		if err := rows.Scan(&k.EventID, &at); err != nil {
			return nil, fmt.Errorf("look up event ids: %w", err)
		}
		k.Second = at.Unix()
		if seen[k] { // the IN conditions are separate: keep only the batch's own pairs
			found[k] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up event ids: %w", err)
	}
	return found, nil
}

// NewestStored returns the Unix second of the newest occurred_at stored, 0 when nothing is.
// It reads event_keys over the last hour, then the last two days, and only when both are
// empty the whole table: the ranges select granules by the primary key, so the usual answer
// costs a few granules, not a scan of 30 days.
func (s *Store) NewestStored(ctx context.Context) (_ int64, err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return 0, err
	}
	now := time.Now()
	for _, since := range []time.Time{now.Add(-time.Hour), now.Add(-48 * time.Hour), {}} {
		var (
			n      uint64
			newest time.Time
		)
		err := conn.QueryRow(ctx, "SELECT count(), max(occurred_at) FROM event_keys WHERE occurred_at >= toDateTime(?)",
			max(0, since.Unix())).Scan(&n, &newest)
		if err != nil {
			return 0, fmt.Errorf("read the newest stored event: %w", err)
		}
		if n > 0 {
			return newest.Unix(), nil
		}
	}
	return 0, nil
}

// CountEvents counts the raw rows, for health output and tests.
func (s *Store) CountEvents(ctx context.Context) (_ uint64, err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return 0, err
	}
	var n uint64
	err = conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&n)
	return n, err
}

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

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
