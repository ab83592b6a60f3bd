package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/deadletter"
	"github.com/truthboard/truthboard/internal/ingest"
)

const deadLetterUsage = "usage: truthboard dead-letter list | dead-letter replay [NAME ...] " +
	"(plus the settings of serve: -data-dir or -spool-dir, and the ClickHouse flags for replay)"

// runDeadLetter is `truthboard dead-letter list|replay`: what the drainer kept aside because
// ClickHouse can never take it, in <spool-dir>/dead-letter. list reads the folder only; replay
// sends the entries named (all without names) to ClickHouse once the cause is fixed, exactly
// once, and removes those it took. It may run beside a server on the same folder.
func runDeadLetter(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(deadLetterUsage)
	}
	sub, rest := args[0], args[1:]
	if sub != "list" && sub != "replay" {
		return fmt.Errorf("unknown dead-letter command %q; %s", sub, deadLetterUsage)
	}
	// Entry names are ours; the other arguments are the settings of `truthboard serve`.
	var names, settings []string
	for _, a := range rest {
		if sub == "replay" && (strings.HasPrefix(a, "record-") || strings.HasPrefix(a, "event-")) {
			names = append(names, a)
		} else {
			settings = append(settings, a)
		}
	}
	cfg, err := config.Load(settings, os.Getenv, os.Stderr)
	if err != nil {
		return err
	}
	dir := ingest.DeadLetterDir(cfg.SpoolFolder())
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "No dead-letter in %s: nothing was ever kept aside.\n", dir)
		return nil
	}
	dead, err := deadletter.Open(deadletter.Options{Dir: dir, MaxBytes: int64(cfg.DeadLetterMaxBytes)})
	if err != nil {
		return err
	}
	if sub == "list" {
		return listDeadLetter(dead, out)
	}

	_, db, _, err := openMigrated(ctx, settings)
	if err != nil {
		return err
	}
	defer db.Close()
	var kept int
	err = ingest.Replay(ctx, db, dead, names, func(r ingest.Replayed) {
		if r.Err != nil {
			kept++
			fmt.Fprintf(out, "kept     %s: %v\n", r.Entry.Name, r.Err)
			return
		}
		fmt.Fprintf(out, "replayed %s: %d of %d events stored (the others were already)\n", r.Entry.Name, r.Inserted, r.Entry.Count)
	})
	if err != nil {
		return err
	}
	if kept > 0 {
		return fmt.Errorf("%d entries could not be replayed and stay in %s", kept, dir)
	}
	return nil
}

func listDeadLetter(dead *deadletter.DeadLetter, out io.Writer) error {
	entries, err := dead.List()
	if err != nil {
		return err
	}
	st := dead.Stats()
	fmt.Fprintf(out, "%s: %d entries, %d events, %d of %d bytes\n", dead.Dir(), st.Records, st.Events, st.Bytes, st.MaxBytes)
	if len(entries) == 0 {
		return nil
	}
	fmt.Fprintf(out, "%-20s  %-18s  %6s  %s\n", "KEPT AT", "KIND", "EVENTS", "NAME / REASON")
	for _, e := range entries {
		fmt.Fprintf(out, "%-20s  %-18s  %6d  %s\n%50s%s\n", e.At.Format(time.RFC3339), e.Kind, e.Count, e.Name, "", e.Reason)
	}
	return nil
}
