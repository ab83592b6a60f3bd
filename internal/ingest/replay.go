package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/truthboard/truthboard/internal/deadletter"
)

// Replayed is what Replay did with one dead-letter entry.
type Replayed struct {
	Entry deadletter.Entry
	// Inserted is the events stored; the others of the entry were in ClickHouse already.
	Inserted int
	// Err is why the entry stays: it still cannot be decoded, or ClickHouse still refuses it.
	Err error
}

// Replay sends the dead-letter's entries named in names (every entry when names is empty) to
// ClickHouse, exactly once like the drainer (each entry's events are looked up first, after
// any replay insert still running has ended), and removes each entry ClickHouse took. An
// entry that still cannot be decoded, or that ClickHouse still refuses for its values, stays,
// with the new reason. It stops at the first other error, such as ClickHouse being away, and
// can be run again. report is told of each entry.
func Replay(ctx context.Context, sink Sink, dead *deadletter.DeadLetter, names []string, report func(Replayed)) error {
	var entries []deadletter.Entry
	if len(names) == 0 {
		all, err := dead.List()
		if err != nil {
			return err
		}
		entries = all
	}
	for _, name := range names {
		e, err := dead.Get(name)
		if err != nil {
			return err
		}
		entries = append(entries, e)
	}
	const prefix = "truthboard-replay-"
	if err := sink.WaitForInserts(ctx, prefix); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	run := prefix + hex.EncodeToString(b[:]) + "-"
	for i, e := range entries {
		evs, err := e.Events()
		if err != nil {
			report(Replayed{Entry: e, Err: err})
			continue
		}
		received := make([]time.Time, len(evs))
		for i := range received {
			received[i] = e.Received
		}
		inserted, err := insertNew(ctx, sink, newPending(newHasher(), evs, received), evs, run+strconv.Itoa(i), nil)
		if invalidData(err) {
			if rerr := dead.Replace(e, err.Error()); rerr != nil {
				return rerr
			}
			report(Replayed{Entry: e, Err: err})
			continue
		}
		if err != nil {
			return fmt.Errorf("replay %s: %w", e.Name, err)
		}
		if err := dead.Remove(e.Name); err != nil {
			return err
		}
		report(Replayed{Entry: e, Inserted: inserted})
	}
	return nil
}
