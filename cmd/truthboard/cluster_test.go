package main

// Cluster tests: two `truthboard serve` nodes on one ClickHouse database, claiming events in a
// real NATS JetStream server, and clients that resend a batch to the other node the way a load
// balancer does: to both at once, right after the first 202, a second later, during a
// ClickHouse outage, and after a node's kill -9. Each ends with the exact check that every
// event_id answered 202 is stored once in the raw table and counted once in every rollup.
//
// The rollup audit is off on both nodes: it removes events stored twice, which would hide the
// very failure these tests look for.

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/claim/claimtest"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// ingestAnswer is the body of a 202.
type ingestAnswer struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// batchBody is n new events named prefix-0 … prefix-(n-1), as NDJSON.
func batchBody(prefix string, n int) (ids []string, body string) {
	var b strings.Builder
	at := time.Now().UTC().Add(-time.Second)
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		ids = append(ids, id)
		fmt.Fprintf(&b, `{"event_id":%q,"occurred_at":%q,"moment":%q,"channel":%q,"touchpoint":"tp%d","csat":%d,"wait_ms":%d}`+"\n",
			id, at.Format(time.RFC3339Nano), event.Moments[i%len(event.Moments)], event.Channels[i%len(event.Channels)], i%3, 1+i%5, 100*i)
	}
	return ids, b.String()
}

// send posts body to a node and returns its status and, for a 202, its counts; status 0 is
// no answer.
func (c *cluster) send(url, body string) (int, ingestAnswer) {
	l := &loadGen{t: c.t}
	return l.post(&http.Client{Timeout: 10 * time.Second}, url, body)
}

// cluster is two nodes sharing a ClickHouse database and a NATS server.
type cluster struct {
	t     *testing.T
	nodes [2]*serverProc
	cfgs  [2]serverConfig
	acked []string
}

// startCluster starts two nodes on ch. On a ClickHouse cluster (ch.Cluster, ch.Addr listing
// its replicas), node i connects to replica i first and fails over to the other.
func startCluster(t *testing.T, ch store.Options, natsURL string) *cluster {
	c := &cluster{t: t}
	for i := range c.nodes {
		opts, extra := ch, []string{"-nats-url", natsURL, "-audit-interval", "0"}
		if ch.Cluster != "" {
			addrs := strings.Split(ch.Addr, ",")
			opts.Addr = addrs[i] + "," + addrs[1-i]
			extra = append(extra, "-clickhouse-cluster", ch.Cluster)
		}
		c.cfgs[i] = serverConfig{addr: freeAddr(t), dataDir: t.TempDir(), ch: opts, extra: extra}
		c.nodes[i] = startServer(t, c.cfgs[i])
	}
	return c
}

// ---- a ClickHouse cluster: two replicas of one shard and ZooKeeper ----

// clickHouseCluster is two ClickHouse servers, the replicas of the one shard of the cluster
// "truthboard", replicating through a ZooKeeper server of the test's own.
type clickHouseCluster struct {
	t        *testing.T
	local    *benchkit.LocalCluster
	replicas [2]*privateClickHouse
	opts     store.Options // both replicas' addresses, the cluster, the database
}

func startClickHouseCluster(t *testing.T) *clickHouseCluster {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	local, err := benchkit.StartLocalCluster(root, t.TempDir())
	if err != nil {
		t.Fatalf("the cluster tests need two ClickHouse replicas and ZooKeeper: %v", err)
	}
	t.Cleanup(local.Stop)
	for _, why := range local.Restarts {
		t.Log(why)
	}
	// Cleanups run last first: on a failure, the replicas' error logs are shown before they stop.
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range local.Replicas {
				t.Logf("ClickHouse replica %s, the end of its error log:\n%s", r.Addr, r.ErrorLogTail(4000))
			}
		}
	})
	c := &clickHouseCluster{t: t, local: local}
	for i, r := range local.Replicas {
		c.replicas[i] = &privateClickHouse{t: t, LocalClickHouse: r, opts: store.Options{Addr: r.Addr, DialTimeout: 2 * time.Second}}
	}
	c.opts = store.Options{Addr: local.Addrs(0), Cluster: benchkit.ClusterName, Database: "truthboard_cluster", DialTimeout: 2 * time.Second}
	return c
}

func (c *clickHouseCluster) stop() {
	for _, r := range c.replicas {
		r.stop()
	}
}

func (c *clickHouseCluster) start() {
	for _, r := range c.replicas {
		r.start()
	}
}

// replicaCount counts the raw rows on replica i alone (its events_local).
func (c *clickHouseCluster) replicaCount(i int) (uint64, error) {
	o := c.replicas[i].opts
	o.Database = c.opts.Database
	db, err := store.Open(context.Background(), o)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n uint64
	err = db.Conn().QueryRow(context.Background(), "SELECT count() FROM events_local").Scan(&n)
	return n, err
}

// syncReplicas waits until each replica has fetched every part the other has of every local
// table (SYSTEM SYNC REPLICA): after a replica was stopped, a query may otherwise read one
// that has not caught up yet.
func (c *clickHouseCluster) syncReplicas() {
	c.t.Helper()
	ctx := context.Background()
	for i, r := range c.replicas {
		o := r.opts
		o.Database = c.opts.Database
		db, err := store.Open(ctx, o)
		if err != nil {
			c.t.Fatal(err)
		}
		rows, err := db.Conn().Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND engine LIKE 'Replicated%'", o.Database)
		if err != nil {
			c.t.Fatal(err)
		}
		var tables []string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				c.t.Fatal(err)
			}
			tables = append(tables, name)
		}
		rows.Close()
		for _, table := range tables {
			if err := db.Conn().Exec(ctx, "SYSTEM SYNC REPLICA "+table); err != nil {
				c.t.Fatalf("replica %d: sync %s: %v", i, table, err)
			}
		}
		db.Close()
	}
}

// waitReplicasHave waits until each replica holds n raw rows of its own: replication has
// brought every row to both.
func (c *clickHouseCluster) waitReplicasHave(n uint64) {
	c.t.Helper()
	for i := range c.replicas {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			got, err := c.replicaCount(i)
			if err == nil && got == n {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("replica %d holds %d raw rows (%v), want %d like the cluster", i, got, err, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// resend sends one new batch to node first, then the same batch to the other node after
// between runs, and checks the answers: the first takes every event, the second none.
func (c *cluster) resend(name string, n, first int, between func()) {
	c.t.Helper()
	ids, body := batchBody(name, n)
	status, a := c.send(c.nodes[first].url, body)
	if status != http.StatusAccepted || a.Accepted != n {
		c.t.Fatalf("%s: first node answered %d %+v, want 202 with %d accepted", name, status, a, n)
	}
	c.acked = append(c.acked, ids...)
	between()
	status, a = c.send(c.nodes[1-first].url, body)
	if status != http.StatusAccepted || a.Accepted != 0 || a.Duplicates != n {
		c.t.Errorf("%s: the resend to the other node answered %d %+v, want 202 with 0 accepted and %d duplicates", name, status, a, n)
	}
}

// atOnce sends one new batch to both nodes at the same moment: together they take each event
// once.
func (c *cluster) atOnce(name string, n int) {
	c.t.Helper()
	ids, body := batchBody(name, n)
	var answers [2]ingestAnswer
	var statuses [2]int
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); statuses[i], answers[i] = c.send(c.nodes[i].url, body) }()
	}
	wg.Wait()
	if statuses != [2]int{http.StatusAccepted, http.StatusAccepted} {
		c.t.Fatalf("%s: answers %v, want 202 from both nodes", name, statuses)
	}
	c.acked = append(c.acked, ids...)
	if got := answers[0].Accepted + answers[1].Accepted; got != n || answers[0].Duplicates+answers[1].Duplicates != n {
		c.t.Errorf("%s: the nodes accepted %d+%d and counted %d+%d duplicates of %d events; want every event accepted by one node and a duplicate on the other",
			name, answers[0].Accepted, answers[1].Accepted, answers[0].Duplicates, answers[1].Duplicates, n)
	}
}

func (c *cluster) drained() {
	for _, n := range c.nodes {
		n.drained()
	}
}

// The resend scenarios of a load balancer on a ClickHouse cluster (two replicas and
// ZooKeeper), and an outage of the whole cluster in the middle of them.
func TestClusterResendsAreStoredOnce(t *testing.T) {
	ch := startClickHouseCluster(t)
	nats := claimtest.Start(t)
	c := startCluster(t, ch.opts, nats.URL())
	db, err := store.Open(context.Background(), ch.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	for round := range 5 {
		c.atOnce(fmt.Sprintf("both-%d", round), 200)
		c.resend(fmt.Sprintf("after-ack-%d", round), 200, round%2, func() {})
	}
	c.resend("after-1s", 200, 0, func() { time.Sleep(time.Second) })

	// ClickHouse stopped: the nodes answer from their spools, and resends are still answered
	// as duplicates, at once and later.
	ch.stop()
	stoppedAt := time.Now()
	for round := 0; time.Since(stoppedAt) < *outage || round < 4; round++ {
		c.atOnce(fmt.Sprintf("outage-both-%d", round), 200)
		c.resend(fmt.Sprintf("outage-after-ack-%d", round), 200, round%2, func() {})
		c.resend(fmt.Sprintf("outage-after-1s-%d", round), 100, 1-round%2, func() { time.Sleep(time.Second) })
	}
	t.Logf("ClickHouse stopped for %v", time.Since(stoppedAt).Round(time.Millisecond))
	ch.start()
	c.drained()
	ch.syncReplicas()
	storetest.AssertStoredOnceWithin(t, db, c.acked, nil)
	storetest.AssertRollupsAgree(t, db)
	ch.waitReplicasHave(uint64(len(c.acked)))
	t.Logf("%d events acknowledged, each stored once, on both replicas", len(c.acked))
}

// A node killed with kill -9 under load, then a ClickHouse replica stopped, on a ClickHouse
// cluster: clients resend to the other node, which answers the events the killed node had
// acknowledged as duplicates, and the killed node, restarted on its spool, stores them; with a
// replica stopped, both nodes go on through the other one, and the stopped replica catches up
// when it is back. Nothing is stored twice, nothing acknowledged is lost, on either replica.
func TestClusterNodeKill9AndReplicaStop(t *testing.T) {
	ch := startClickHouseCluster(t)
	nats := claimtest.Start(t)
	c := startCluster(t, ch.opts, nats.URL())
	db, err := store.Open(context.Background(), ch.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	load := startLoadOn(t, []string{c.nodes[0].url, c.nodes[1].url}, 4, 3)
	load.waitAcked(1000, 60*time.Second)
	time.Sleep(*loadTime)
	c.nodes[0].kill9()
	t.Logf("node 0 killed with %d events acknowledged", load.ackedCount())
	load.waitAcked(1000, 60*time.Second) // the other node takes the load
	c.nodes[0] = startServer(t, c.cfgs[0])
	load.waitAcked(1000, 60*time.Second)

	ch.replicas[0].stop()
	t.Logf("replica 0 stopped with %d events acknowledged", load.ackedCount())
	load.waitAcked(1000, 60*time.Second)
	time.Sleep(*loadTime)
	ch.replicas[0].start()
	load.waitAcked(1000, 60*time.Second)

	acked, maybe := load.finish()
	c.drained()
	ch.syncReplicas()
	storetest.AssertStoredOnceWithin(t, db, acked, maybe)
	storetest.AssertRollupsAgree(t, db)
	var stored uint64
	if err := db.Conn().QueryRow(context.Background(), "SELECT count() FROM events").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	ch.waitReplicasHave(stored)
}
