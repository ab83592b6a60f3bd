package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

var crashes = flag.Int("crashes", 3, "how many times TestFaultClickHouseKilledDuringInserts kills ClickHouse")

// kill -9 of ClickHouse, again and again, while a server inserts under load. A crash between an
// insert's raw block and its materialized views' blocks leaves the rollups disagreeing with the
// raw table (and the writer's retry may store raw rows twice); the server's audit repairs both.
// In the end the acknowledged events, the raw table and every rollup agree exactly.
//
// The kill lands while ClickHouse writes an insert, yet in runs here it never split one by
// chance; so every other round the views that a crash would skip are detached until an insert
// has landed without them, then ClickHouse is killed: this leaves the damage seen after a real
// crash, raw and detail rows that the overviews and event_keys lack (and, when the interrupted
// insert had reached the raw table, the writer's retry storing its rows a second time).
func TestFaultClickHouseKilledDuringInserts(t *testing.T) {
	ch := startPrivateClickHouse(t)
	db, err := store.Open(context.Background(), ch.opts) // creates the database for the server
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	srv := startServer(t, serverConfig{addr: freeAddr(t), dataDir: t.TempDir(), ch: ch.opts,
		// Inserts of a few thousand rows each, as under real load: a crash lands inside one more often.
		extra: []string{"-audit-interval", "2s", "-audit-window", "2h", "-flush-interval", "3s"}})
	load := startLoad(t, srv.url, 4)
	for round := range *crashes {
		load.waitAcked(300, 60*time.Second)
		if round%2 == 1 {
			// The split a crash makes by chance, made every other round: the views of
			// event_keys and the overviews miss at least one insert before the crash, and
			// the insert it interrupts. The restart attaches them again: DETACH lasts until
			// the server stops.
			ch.exec("DETACH TABLE event_keys_mv", "DETACH TABLE overview_1s_mv", "DETACH TABLE overview_1m_mv")
			ch.waitSplit()
		}
		during := ch.kill9DuringInsert()
		t.Logf("round %d: ClickHouse killed (during an insert: %v) with %d events acknowledged", round, during, load.ackedCount())
		ch.start()
	}
	load.waitAcked(400, 60*time.Second)
	acked, maybe := load.finish()
	db, err = store.Open(context.Background(), ch.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	drainDeadline := time.Now().Add(2 * time.Minute)
	for {
		_, r, err := srv.readyz()
		if err == nil && r.Spool.Events == 0 {
			break
		}
		if time.Now().After(drainDeadline) {
			t.Fatalf("the spool did not drain within 2 minutes (/readyz %+v, %v); ClickHouse runs:\n%s", r, err, running(db))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The audit runs every 2 s: wait until raw and rollups agree and every event is stored once.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		problem := healed(db, acked, maybe)
		if problem == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healed within 3 minutes of the last crash: %s", problem)
		}
		time.Sleep(500 * time.Millisecond)
	}
	storetest.AssertStoredOnceWithin(t, db, acked, maybe)
	storetest.AssertRollupsAgree(t, db)
	logs, _ := os.ReadFile(srv.proc.LogFile)
	repairs := linesWith(string(logs), "rollup audit repaired")
	t.Logf("%d crashes; %d runs of the audit repaired something:\n%s", *crashes, len(repairs), strings.Join(repairs, "\n"))
	if *crashes >= 2 && len(repairs) == 0 {
		t.Error("the rounds with views detached left rollups to repair, yet the audit logged no repair")
	}
}

// healed is "" when db holds every acked event once, nothing else but maybe, and its rollups
// agree with its raw table; else what is still wrong.
func healed(db *store.Store, acked []string, maybe map[string]bool) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.Conn().Query(ctx, "SELECT event_id, count() FROM events GROUP BY event_id")
	if err != nil {
		return err.Error()
	}
	stored := map[string]uint64{}
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return err.Error()
		}
		stored[id] = n
	}
	rows.Close()
	var missing, twice, extra int
	ackedSet := make(map[string]bool, len(acked))
	for _, id := range acked {
		ackedSet[id] = true
		if stored[id] == 0 {
			missing++
		}
	}
	for id, n := range stored {
		if n > 1 {
			twice++
		}
		if !ackedSet[id] && !maybe[id] {
			extra++
		}
	}
	if missing+twice+extra > 0 {
		return fmt.Sprintf("%d acknowledged events missing, %d stored more than once, %d never sent", missing, twice, extra)
	}
	diffs, err := storetest.RollupDifferences(ctx, db)
	if err != nil {
		return err.Error()
	}
	return strings.Join(diffs, "; ")
}

// running lists what ClickHouse is doing: its queries and unfinished mutations.
func running(db *store.Store) string {
	var out []string
	for _, q := range []string{
		"SELECT concat(query_id, ' ', toString(elapsed), 's: ', substring(query, 1, 200)) FROM system.processes",
		"SELECT concat(table, ' ', mutation_id, ': ', command) FROM system.mutations WHERE is_done = 0",
	} {
		rows, err := db.Conn().Query(context.Background(), q)
		if err != nil {
			out = append(out, err.Error())
			continue
		}
		for rows.Next() {
			var line string
			_ = rows.Scan(&line)
			out = append(out, line)
		}
		rows.Close()
	}
	return strings.Join(out, "\n")
}

// linesWith are the lines of text that contain s.
func linesWith(text, s string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// open connects to the test's ClickHouse, in its database.
func (c *privateClickHouse) open() *store.Store {
	c.t.Helper()
	db, err := store.Open(context.Background(), c.opts)
	if err != nil {
		c.t.Fatal(err)
	}
	return db
}

// exec runs statements on the test's ClickHouse, in its database.
func (c *privateClickHouse) exec(statements ...string) {
	c.t.Helper()
	db := c.open()
	defer db.Close()
	for _, s := range statements {
		if err := db.Conn().Exec(context.Background(), s); err != nil {
			c.t.Fatalf("%s: %v", s, err)
		}
	}
}

// waitSplit waits until an insert has landed in the raw table but not in event_keys.
func (c *privateClickHouse) waitSplit() {
	c.t.Helper()
	db := c.open()
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var raw, keys uint64
		err := db.Conn().QueryRow(context.Background(), "SELECT (SELECT count() FROM events), (SELECT count() FROM event_keys)").Scan(&raw, &keys)
		if err != nil {
			c.t.Fatal(err)
		}
		if raw > keys {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no insert landed within 30 s with the views detached (%d raw rows, %d keys)", raw, keys)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill9DuringInsert kills ClickHouse with kill -9 while it writes an insert of events (it has
// written rows, so the raw table's block at least), if one does within 10 s (else at the end
// of them), and reports whether it did: the crash then lands between the raw table's block
// and its views' blocks far more often than at a random time.
func (c *privateClickHouse) kill9DuringInsert() bool {
	c.t.Helper()
	db := c.open()
	defer db.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n uint64
		err := db.Conn().QueryRow(context.Background(),
			"SELECT count() FROM system.processes WHERE query LIKE 'INSERT INTO events %' AND written_rows > 0").Scan(&n)
		if err != nil {
			c.t.Fatal(err)
		}
		if n > 0 {
			c.kill9()
			return true
		}
	}
	c.kill9()
	return false
}

// kill9 kills the test's ClickHouse server at once, as a crash or an OOM kill would, and waits
// until it is gone. The pid is the one scripts/clickhouse.sh keeps in its state folder.
func (c *privateClickHouse) kill9() {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, "clickhouse-server.pid"))
	if err != nil {
		c.t.Fatalf("the test's ClickHouse has no pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		c.t.Fatalf("pid file: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill -9 ClickHouse (pid %d): %v", pid, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Gone, or a zombie that nothing reaps yet: either way it holds no port or file.
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if errors.Is(err, os.ErrNotExist) || strings.Contains(string(status), "State:\tZ") {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("ClickHouse (pid %d) still runs 30 s after kill -9", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
