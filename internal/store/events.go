package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"

	"strings"
	"sync"
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
	cols := columnsPool.Get().(*insertColumns)
	defer columnsPool.Put(cols)
	defer cols.clear()
	if err := cols.fill(evs, received); err != nil {
		return nil, fmt.Errorf("insert %d events: %w", n, err)
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
	for i, col := range cols.all() {
		if err := appendColumn(batch.Column(i), col); err != nil {
			_ = batch.Abort()
			return nil, fmt.Errorf("insert events: column %s: %w", eventColumns[i], err)
		}
	}
	return &preparedInsert{batch: batch, n: n}, nil
}

// insertColumns are the values of an insert, column by column, in slices kept from one insert
// to the next (columnsPool): the driver copies each column into its block as it is appended, so
// a full batch of ingest allocates its block and little else.
type insertColumns struct {
	ids, touchpoints, customers, journeys []string
	regions, products, segments, teams    []string
	// moments, channels, stages and outcomes are Enum8 columns, given as the enums' numbers.
	moments, channels, stages, outcomes []int8
	occurred                            []time.Time
	received                            []time.Time
	millis                              []uint16
	csat, nps, ces                      []*uint8
	sentiment                           []*float64
	wait, handle                        []*uint32
	negative, positive                  []uint8
	// attrKeys[i] and attrValues[i] are event i's attributes sorted by key, parts of attrs.
	attrKeys, attrValues [][]string
	attrs                []string
}

var columnsPool = sync.Pool{New: func() any { return new(insertColumns) }}

// fill sets the columns to the values of evs. An event whose enum values the table does not
// take is an error that InvalidData reports.
func (c *insertColumns) fill(evs []event.Event, received []time.Time) error {
	n, nAttrs := len(evs), 0
	for i := range evs {
		nAttrs += len(evs[i].Attributes)
	}
	for _, col := range c.texts() {
		*col = sized(*col, n)
	}
	c.occurred, c.millis = sized(c.occurred, n), sized(c.millis, n)
	c.csat, c.nps, c.ces, c.sentiment = sized(c.csat, n), sized(c.nps, n), sized(c.ces, n), sized(c.sentiment, n)
	c.wait, c.handle = sized(c.wait, n), sized(c.handle, n)
	c.negative, c.positive = sized(c.negative, n), sized(c.positive, n)
	c.moments, c.channels, c.stages, c.outcomes = sized(c.moments, n), sized(c.channels, n), sized(c.stages, n), sized(c.outcomes, n)
	c.attrKeys, c.attrValues, c.attrs = sized(c.attrKeys, n), sized(c.attrValues, n), sized(c.attrs, 2*nAttrs)
	c.received = received
	at := 0
	for i := range evs {
		e := &evs[i]
		c.ids[i], c.touchpoints[i], c.customers[i], c.journeys[i] = e.EventID, e.Touchpoint, e.CustomerID, e.JourneyID
		var errs [4]error
		c.moments[i], errs[0] = enumValue("moment", event.Moments, e.Moment, false)
		c.channels[i], errs[1] = enumValue("channel", event.Channels, e.Channel, false)
		c.stages[i], errs[2] = enumValue("stage", event.Stages, e.Stage, true)
		c.outcomes[i], errs[3] = enumValue("outcome", event.Outcomes, e.Outcome, true)
		if err := cmp.Or(errs[:]...); err != nil {
			return fmt.Errorf("event %s: %w", e.EventID, err)
		}
		c.regions[i], c.products[i], c.segments[i], c.teams[i] = e.Region, e.Product, e.Segment, e.AgentTeam
		c.occurred[i] = e.OccurredAt.Truncate(time.Second)
		c.millis[i] = uint16(e.OccurredAt.Nanosecond() / int(time.Millisecond))
		c.csat[i], c.nps[i], c.ces[i], c.sentiment[i], c.wait[i], c.handle[i] = e.CSAT, e.NPS, e.CES, e.Sentiment, e.WaitMS, e.HandleMS
		c.negative[i], c.positive[i] = b2u(e.Negative()), b2u(e.Positive())
		m := len(e.Attributes)
		keys, values := c.attrs[at:at+m:at+m], c.attrs[at+m:at+2*m:at+2*m]
		at += 2 * m
		keys = keys[:0]
		for k := range e.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for j, k := range keys {
			values[j] = e.Attributes[k]
		}
		if m == 0 {
			keys, values = nil, nil // an empty row costs the driver nothing to take
		}
		c.attrKeys[i], c.attrValues[i] = keys, values
	}
	return nil
}

// enumValue is s's number in the Enum8 column of the values list: numbered from 1 in list
// order, and "" is 0 in an optional column (stage, outcome), as TestVocabularyMatchesSchema
// keeps the schema. The driver would look each value up in a map by name. A value not in the
// list is an error that InvalidData reports, worded as the driver words it.
func enumValue(column string, list []string, s string, optional bool) (int8, error) {
	if s == "" && optional {
		return 0, nil
	}
	for i, name := range list {
		if name == s {
			return int8(i + 1), nil
		}
	}
	return 0, &invalidDataError{fmt.Errorf("column %s: unknown element %q (not a value of its Enum8)", column, s)}
}

// texts is the string columns.
func (c *insertColumns) texts() []*[]string {
	return []*[]string{&c.ids, &c.touchpoints, &c.customers, &c.journeys, &c.regions, &c.products, &c.segments, &c.teams}
}

// all is the columns in the order of eventColumns.
func (c *insertColumns) all() []any {
	return []any{
		c.ids, c.occurred, c.millis, c.received, c.moments, c.channels, c.touchpoints,
		c.stages, c.outcomes, c.customers, c.journeys, c.csat, c.nps, c.ces, c.sentiment,
		c.wait, c.handle, c.negative, c.positive, c.regions, c.products, c.segments, c.teams,
		c.attrKeys, c.attrValues,
	}
}

// clear drops the columns' references to the events, so that a pooled insertColumns keeps no
// event's memory alive.
func (c *insertColumns) clear() {
	for _, col := range c.texts() {
		clear(*col)
	}
	clear(c.attrs)
	clear(c.csat)
	clear(c.nps)
	clear(c.ces)
	clear(c.sentiment)
	clear(c.wait)
	clear(c.handle)
	clear(c.attrKeys)
	clear(c.attrValues)
	c.received = nil
}

// appendColumn appends a column's values to the batch. An array column goes row by row: the
// driver takes a row of []string without reflection, and the whole column only with it.
func appendColumn(c driver.BatchColumn, values any) error {
	rows, ok := values.([][]string)
	if !ok {
		return c.Append(values)
	}
	for _, row := range rows {
		if err := c.AppendRow(row); err != nil {
			return err
		}
	}
	return nil
}

// sized returns s with length n, reusing its memory when it is large enough.
func sized[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
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

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
