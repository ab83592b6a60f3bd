package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// invalidData is the check the drainer makes: by behaviour, without knowing the store's types.
func invalidData(err error) bool {
	var v interface{ InvalidData() bool }
	return errors.As(err, &v) && v.InvalidData()
}

func TestInvalidData(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no error", nil, false},
		{"a constraint", &clickhouse.Exception{Code: 469, Message: "Constraint `csat_range` is violated"}, true},
		{"throwIf in a materialized column", fmt.Errorf("insert 2 events: %w", &clickhouse.Exception{Code: 395}), true},
		{"an enum element the table lacks", fmt.Errorf("column moment: %w", &column.Error{ColumnType: "Enum8", Err: errors.New(`unknown element "x"`)}), true},
		{"a missing table", &clickhouse.Exception{Code: 60, Message: "Table doesn't exist"}, false},
		{"too many parts", &clickhouse.Exception{Code: 252}, false},
		{"memory", &clickhouse.Exception{Code: 241}, false},
		{"a Go type that does not fit the column", &column.ColumnConverterError{Op: "Append", From: "[]string", To: "UInt8"}, false},
		{"the connection", fmt.Errorf("read: %w", context.DeadlineExceeded), false},
	} {
		t.Run(tc.name, func(t *testing.T) { checkMark(t, store.MarkInvalidData, invalidData, tc.err, tc.want) })
	}
}

// TestInsertRefusedForItsData: a real ClickHouse refusing rows, by the driver for a column's
// type and by the server (a materialized column calling throwIf), is marked invalid data, while
// a missing table is not: the drainer keeps aside only what cannot ever be stored.
func TestInsertRefusedForItsData(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Minute)
	insert := func(evs ...event.Event) error {
		received := make([]time.Time, len(evs))
		for i := range received {
			received[i] = at
		}
		return db.InsertReceived(ctx, evs, received, "")
	}
	good := event.Event{EventID: "good", OccurredAt: at, Moment: "fmot", Channel: "web", Touchpoint: "checkout"}
	unknownMoment := good
	unknownMoment.EventID, unknownMoment.Moment = "unknown-moment", "moment-of-a-newer-version"
	if err := insert(good, unknownMoment); !invalidData(err) {
		t.Errorf("a moment the Enum8 lacks: %v, want an invalid-data error", err)
	}

	if err := db.Conn().Exec(ctx, "ALTER TABLE events ADD COLUMN refuse UInt8 MATERIALIZED throwIf(event_id = 'refused')"); err != nil {
		t.Fatal(err)
	}
	refused := good
	refused.EventID = "refused"
	err := insert(good, refused)
	var exc *clickhouse.Exception
	if !errors.As(err, &exc) || exc.Code != 395 || !invalidData(err) {
		t.Errorf("a row throwIf refuses: %v, want ClickHouse's exception 395 marked invalid data", err)
	}
	if n, err := db.CountEvents(ctx); err != nil || n != 0 {
		t.Fatalf("%d rows stored after refused inserts (%v), want none", n, err)
	}

	if err := db.Conn().Exec(ctx, "RENAME TABLE events TO events_gone"); err != nil {
		t.Fatal(err)
	}
	if err := insert(good); err == nil || invalidData(err) {
		t.Errorf("an insert into a missing table: %v, want an error not marked invalid data", err)
	}
}
