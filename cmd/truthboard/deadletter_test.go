package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/deadletter"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// `truthboard dead-letter list` shows what was kept aside and why; `replay` stores it once
// ClickHouse takes it, and leaves an entry it still refuses, saying why.
func TestDeadLetterCommand(t *testing.T) {
	db := storetest.Open(t)
	dataDir := t.TempDir()
	settings := []string{"-data-dir", dataDir, "-clickhouse-addr", storetest.Addr(), "-clickhouse-database", db.Database()}
	run := func(args ...string) (string, error) {
		var out strings.Builder
		err := runDeadLetter(context.Background(), append(args, settings...), &out)
		return out.String(), err
	}

	if out, err := run("list"); err != nil || !strings.Contains(out, "nothing was ever kept aside") {
		t.Fatalf("list without a dead-letter: %q, %v", out, err)
	}

	dead, err := deadletter.Open(deadletter.Options{Dir: ingest.DeadLetterDir(dataDir + "/spool")})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	good := event.Event{EventID: "fixed-later", OccurredAt: at, Moment: "smot", Channel: "app", Touchpoint: "setup"}
	bad := good
	bad.EventID, bad.Channel = "still-refused", "hologram"
	for _, e := range []event.Event{good, bad} {
		if err := dead.AddEvent(e, at, errors.New("code: 469, constraint violated")); err != nil {
			t.Fatal(err)
		}
	}

	out, err := run("list")
	if err != nil || strings.Count(out, deadletter.KindEvent) != 2 || !strings.Contains(out, "code: 469, constraint violated") ||
		!strings.Contains(out, "2 entries, 2 events") {
		t.Fatalf("list: %v\n%s\nwant both entries with their reason", err, out)
	}

	out, err = run("replay")
	if err == nil || !strings.Contains(err.Error(), "1 entries could not be replayed") {
		t.Fatalf("replay: %v, want an error saying one entry stays\n%s", err, out)
	}
	if !strings.Contains(out, "replayed event-") || !strings.Contains(out, `kept     event-`) || !strings.Contains(out, `unknown element "hologram"`) {
		t.Fatalf("replay said:\n%s\nwant one replayed and one kept, with ClickHouse's reason", out)
	}
	storetest.AssertStoredOnce(t, db, []string{"fixed-later"})
	if st := dead.Stats(); st.Records != 1 || !strings.Contains(st.LastReason, "hologram") {
		t.Fatalf("dead-letter after the replay: %+v, want the refused entry alone, with the new reason", st)
	}
}
