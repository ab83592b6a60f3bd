package ingestbench

// The cluster suite: ingest on a ClickHouse cluster (two ClickHouse 18.16 replicas of one
// shard with ZooKeeper, and a NATS server for the nodes' claims, all started by the bench on
// loopback ports), through one Truthboard node and through two, against the bare driver's
// batch insert into the same cluster in the same run; then freshness on a screen connected
// to the node that did not take the events.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/store"
)

type clusterOptions struct {
	events        int
	requestEvents int
	clients       int
	freshness     time.Duration
	markerEvery   time.Duration
	serverBin     string
	seed          int64
}

func clusterSuite() *suite {
	o := &clusterOptions{}
	return &suite{
		Title: "Cluster",
		Help:  "ingest through one and two nodes on a ClickHouse cluster with NATS claims vs. the bare driver; freshness on the other node",
		AddFlags: func(fs *flag.FlagSet) {
			fs.IntVar(&o.events, "cluster-events", 200_000, "cluster: `events` stored by each pass")
			fs.IntVar(&o.requestEvents, "cluster-request-events", 1000, "cluster: `events` per HTTP request")
			fs.IntVar(&o.clients, "cluster-clients", 16, "cluster: concurrent HTTP `clients`, spread over the nodes")
			fs.DurationVar(&o.freshness, "cluster-freshness", 30*time.Second, "cluster: `length` of the freshness pass")
			fs.DurationVar(&o.markerEvery, "cluster-marker-interval", 500*time.Millisecond, "cluster: `gap` between two marker events of the freshness pass")
			fs.StringVar(&o.serverBin, "cluster-server-bin", "", "cluster: truthboard `binary` (default: go build ./cmd/truthboard)")
			fs.Int64Var(&o.seed, "cluster-seed", 1, "cluster: `seed` of the simulated events")
		},
		Run: func(ctx context.Context, env *benchEnv) (string, error) { return runCluster(ctx, env, o) },
	}
}

func (o *clusterOptions) validate() error {
	var errs []error
	for _, v := range []struct {
		n    int
		name string
	}{{o.events, "cluster-events"}, {o.requestEvents, "cluster-request-events"}, {o.clients, "cluster-clients"}} {
		if v.n <= 0 {
			errs = append(errs, fmt.Errorf("-%s must be above 0", v.name))
		}
	}
	if o.requestEvents > event.DefaultMaxEvents {
		errs = append(errs, fmt.Errorf("-cluster-request-events must be at most %d (the server's -max-events)", event.DefaultMaxEvents))
	}
	if o.freshness < 5*o.markerEvery || o.markerEvery <= 0 {
		errs = append(errs, errors.New("-cluster-freshness must hold at least 5 markers of -cluster-marker-interval (above 0)"))
	}
	return errors.Join(errs...)
}

// clusterPass is one measured pass.
type clusterPass struct {
	Name    string
	Nodes   int // 0: the bare driver
	Events  int
	Elapsed time.Duration // until ClickHouse holds every event
	Ack     percentiles   // per request, send → 202
	Rows    uint64        // raw rows stored
	Dups    int64         // answered as duplicates (none are sent)
}

func (p clusterPass) rate() float64 { return float64(p.Events) / p.Elapsed.Seconds() }

type clusterBench struct {
	o       *clusterOptions
	env     *benchEnv
	cluster *benchkit.LocalCluster
	nats    *benchkit.LocalNATS
	bin     string
	dir     string
	key     string
	bodies  [][]byte
	pool    []event.Event
}

func runCluster(ctx context.Context, env *benchEnv, o *clusterOptions) (string, error) {
	if err := o.validate(); err != nil {
		return "", err
	}
	log := env.log
	m := benchkit.DescribeMachine()
	dir, err := os.MkdirTemp("", "truthboard-cluster-bench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	root, err := os.Getwd()
	if err != nil {
		return "", err
	}
	b := &clusterBench{o: o, env: env, dir: dir, key: auth.NewSecret("tbi_bench"), bin: o.serverBin}
	if b.bin == "" {
		log.Info("building cmd/truthboard")
		if b.bin, err = benchkit.BuildServer(ctx, dir); err != nil {
			return "", err
		}
	}
	log.Info("starting ZooKeeper and two ClickHouse replicas")
	if b.cluster, err = benchkit.StartLocalCluster(root, filepath.Join(dir, "clickhouse")); err != nil {
		return "", fmt.Errorf("%w (run from the module root)", err)
	}
	defer b.cluster.Stop()
	if err := os.MkdirAll(filepath.Join(dir, "nats"), 0o755); err != nil {
		return "", err
	}
	if b.nats, err = benchkit.StartNATS(filepath.Join(dir, "nats")); err != nil {
		return "", err
	}
	defer b.nats.Stop()

	if b.pool, err = eventPool(o.events, o.seed); err != nil {
		return "", err
	}
	base := make([]string, len(b.pool))
	for j := range b.pool {
		base[j] = b.pool[j].EventID
	}
	load := benchkit.LoadAverage()
	var passes []clusterPass
	version := ""
	for i, pass := range []struct {
		name  string
		nodes int
	}{{"bare driver", 0}, {"1 node", 1}, {"2 nodes", 2}, {"bare driver", 0}} {
		// New event ids each pass: the claims of a pass's events outlive it (1 h), and would
		// answer the next pass's as duplicates of a node that is gone.
		for j := range b.pool {
			b.pool[j].EventID = base[j] + "-pass" + strconv.Itoa(i)
		}
		if b.bodies, err = ndjsonBodies(b.pool, o.requestEvents); err != nil {
			return "", err
		}
		p, v, err := b.pass(ctx, pass.name, pass.nodes)
		if err != nil {
			return "", fmt.Errorf("pass %s: %w", pass.name, err)
		}
		version = v
		log.Info("cluster pass", "pass", p.Name, "events_per_s", int(p.rate()), "ack_p99", p.Ack.P99)
		passes = append(passes, p)
	}
	fresh, err := b.freshness(ctx)
	if err != nil {
		return "", fmt.Errorf("freshness: %w", err)
	}
	log.Info("freshness on the other node", "p50", fresh.P50, "p99", fresh.P99)
	return renderCluster(env, o, m, version, load, passes, fresh), nil
}

// database creates a fresh database on the cluster and migrates it.
func (b *clusterBench) database(ctx context.Context) (*store.Store, store.Options, error) {
	var r [6]byte
	_, _ = rand.Read(r[:])
	opts := store.Options{Addr: b.cluster.Addrs(0), Cluster: benchkit.ClusterName, Database: "truthboard_bench_" + hex.EncodeToString(r[:]),
		DialTimeout: 5 * time.Second, MaxExecutionTime: time.Minute}
	db, err := store.Open(ctx, opts)
	if err != nil {
		return nil, opts, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, opts, err
	}
	return db, opts, nil
}

// startNodes starts n `truthboard serve` nodes on the database, node i on replica i%2 first.
func (b *clusterBench) startNodes(ctx context.Context, opts store.Options, n int) ([]*benchkit.Serve, error) {
	var nodes []*benchkit.Serve
	for i := range n {
		proc, err := benchkit.StartServe(ctx, benchkit.ServeOptions{
			Bin:        b.bin,
			DataDir:    filepath.Join(b.dir, fmt.Sprintf("node-%s-%d", opts.Database, i)),
			ClickHouse: benchkit.ClickHouse{Addr: b.cluster.Addrs(i % 2)},
			Database:   opts.Database,
			IngestKeys: []string{b.key},
			AdminToken: "bench-admin-" + b.key,
			Flags: []string{"-ingest-rate", "0", "-demo-rate", "0", "-clickhouse-cluster", opts.Cluster,
				"-nats-url", b.nats.URL(), "-audit-interval", "0",
				"-max-inflight-bytes-per-key", strconv.Itoa(config.Default().MaxInflightBytes)},
		})
		if err != nil {
			stopAll(nodes)
			return nil, err
		}
		nodes = append(nodes, proc)
	}
	return nodes, nil
}

func stopAll(nodes []*benchkit.Serve) {
	for _, n := range nodes {
		_ = n.Stop(2 * time.Minute)
	}
}

// pass stores every event once: with the bare driver (an insert per batch of the server's
// -flush-rows, from one goroutine, as the drainer inserts new events without a lookup) or through nodes Truthboard nodes,
// clients spread over them, and returns once ClickHouse holds them all.
func (b *clusterBench) pass(ctx context.Context, name string, nodes int) (clusterPass, string, error) {
	p := clusterPass{Name: name, Nodes: nodes, Events: len(b.pool)}
	db, opts, err := b.database(ctx)
	if err != nil {
		return p, "", err
	}
	defer db.Close()
	version := db.ServerVersion()
	if nodes == 0 {
		batch := config.Default().FlushRows
		start := time.Now()
		for i := 0; i < len(b.pool); i += batch {
			part := b.pool[i:min(i+batch, len(b.pool))]
			if err := db.InsertEvents(ctx, part, time.Now().UTC()); err != nil {
				return p, version, err
			}
		}
		p.Elapsed = time.Since(start)
		p.Rows, err = db.CountEvents(ctx)
		return p, version, err
	}
	procs, err := b.startNodes(ctx, opts, nodes)
	if err != nil {
		return p, version, err
	}
	defer stopAll(procs)
	clients := make([]*ingestClient, nodes)
	for i, proc := range procs {
		clients[i] = newIngestClient(proc.URL, b.key, b.o.clients)
		defer clients[i].close()
	}
	var (
		next, dups atomic.Int64
		ack        latencies
		wg         sync.WaitGroup
		firstErr   error
		errOnce    sync.Once
	)
	start := time.Now()
	for c := range b.o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := clients[c%nodes]
			for {
				i := int(next.Add(1) - 1)
				if i >= len(b.bodies) {
					return
				}
				for {
					t0 := time.Now()
					a, err := client.post(ctx, b.bodies[i])
					if err == nil && a.Status == http.StatusAccepted {
						ack.add(time.Since(t0))
						dups.Add(int64(a.Duplicates))
						break
					}
					if err == nil && a.Status == http.StatusServiceUnavailable {
						time.Sleep(100 * time.Millisecond)
						continue
					}
					errOnce.Do(func() { firstErr = fmt.Errorf("post: %v (status %d %s)", err, a.Status, shorten(a.Error, 200)) })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return p, version, firstErr
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if p.Rows, err = db.CountEvents(ctx); err != nil {
			return p, version, err
		}
		if p.Rows >= uint64(p.Events) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Elapsed = time.Since(start)
	p.Ack, p.Dups = ack.percentiles(), dups.Load()
	if p.Rows != uint64(p.Events) {
		return p, version, fmt.Errorf("%d rows stored, want %d", p.Rows, p.Events)
	}
	return p, version, nil
}

// freshness runs two nodes, a screen on node 2 (the executive view over 1 h, filtered to a
// region of the markers' own) and posts a marker event to node 1 every markerEvery, one at a
// time with occurred_at = its send time: marker k is on the screen in the first message whose
// event count reaches k. Freshness = that message's arrival − marker k's send.
func (b *clusterBench) freshness(ctx context.Context) (percentiles, error) {
	db, opts, err := b.database(ctx)
	if err != nil {
		return percentiles{}, err
	}
	defer db.Close()
	procs, err := b.startNodes(ctx, opts, 2)
	if err != nil {
		return percentiles{}, err
	}
	defer stopAll(procs)
	var r [4]byte
	_, _ = rand.Read(r[:])
	region := "cbench-" + hex.EncodeToString(r[:])
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "view": "executive", "window": "1h",
		"filters": map[string][]string{"region": {region}}})
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, strings.Replace(procs[1].URL, "http://", "ws://", 1)+"/v1/live?token=bench-admin-"+b.key, nil)
	if err != nil {
		return percentiles{}, fmt.Errorf("screen on node 2: %w", err)
	}
	defer conn.Close()
	if err := conn.WriteMessage(websocket.TextMessage, sub); err != nil {
		return percentiles{}, err
	}
	type seen struct {
		at     time.Time
		events uint64
	}
	var (
		mu   sync.Mutex
		msgs []seen
	)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			_, raw, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var m struct {
				Data struct {
					KPIs struct {
						Events uint64 `json:"events"`
					} `json:"kpis"`
				} `json:"data"`
			}
			if json.Unmarshal(raw, &m) == nil {
				mu.Lock()
				msgs = append(msgs, seen{time.Now(), m.Data.KPIs.Events})
				mu.Unlock()
			}
		}
	}()
	client := newIngestClient(procs[0].URL, b.key, 1)
	defer client.close()
	var sent []time.Time
	end := time.Now().Add(b.o.freshness)
	for k := 0; time.Now().Before(end); k++ {
		at := time.Now().UTC()
		body := fmt.Sprintf(`{"event_id":"marker-%s-%d","occurred_at":%q,"moment":"service","channel":"voice","touchpoint":"marker","region":%q,"csat":5}`,
			region, k, at.Format(time.RFC3339Nano), region)
		a, err := client.post(ctx, []byte(body))
		if err != nil || a.Status != http.StatusAccepted {
			return percentiles{}, fmt.Errorf("marker %d: %v %d %s", k, err, a.Status, a.Error)
		}
		sent = append(sent, at)
		time.Sleep(time.Until(at.Add(b.o.markerEvery)))
	}
	// The last marker needs a tick or two to show.
	time.Sleep(3 * time.Second)
	conn.Close()
	<-readDone
	mu.Lock()
	defer mu.Unlock()
	var fresh []time.Duration
	for k, at := range sent {
		for _, m := range msgs {
			if m.events >= uint64(k+1) && m.at.After(at) {
				fresh = append(fresh, m.at.Sub(at))
				break
			}
		}
	}
	if len(fresh) < len(sent) {
		return percentiles{}, fmt.Errorf("%d of %d markers never reached the screen on node 2", len(sent)-len(fresh), len(sent))
	}
	return benchkit.Summarize(fresh), nil
}

func renderCluster(env *benchEnv, o *clusterOptions, m benchkit.Machine, version, load string, passes []clusterPass, fresh percentiles) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64)
	}
	p("Ingest on a ClickHouse cluster — two ClickHouse %s replicas of one shard replicating through ZooKeeper, the\n", version)
	p("cluster schema (`TRUTHBOARD_CLICKHOUSE_CLUSTER`: replicated tables behind Distributed ones) and a NATS server for\n")
	p("the nodes' claims, all on this machine — of the same %s events into an empty database each pass: the bare\n", benchkit.Thousands(o.events))
	p("clickhouse-go driver (an insert per batch of %s rows, one goroutine, through the\n", benchkit.Thousands(config.Default().FlushRows))
	p("Distributed table) before and after, and `POST /v1/events` through one and through two `truthboard serve` nodes\n")
	p("(%d clients in all, spread over the nodes, %s events per request, closed loop). A pass ends when ClickHouse holds\n", o.clients, benchkit.Thousands(o.requestEvents))
	p("every event. Ack = one request's send → `202` (durable in the node's spool and claimed in NATS).\n\n")
	bare := (passes[0].rate() + passes[len(passes)-1].rate()) / 2
	p("| pass | events/s | × bare driver (mean of both) | ack p50 / p99 ms | rows stored | answered duplicate |\n|---|---|---|---|---|---|\n")
	for _, ps := range passes {
		ack := "–"
		if ps.Nodes > 0 {
			ack = ms(ps.Ack.P50) + " / " + ms(ps.Ack.P99)
		}
		p("| %s | %s | %.2f | %s | %s | %d |\n", ps.Name, benchkit.Thousands(int(ps.rate())), ps.rate()/bare, ack, benchkit.Thousands(int(ps.Rows)), ps.Dups)
	}
	p("\nFreshness on a screen connected to the node that did not take the events: a marker event every %s through\n", o.markerEvery)
	p("node 1 for %s, the executive view over 1 h filtered to the markers' region on node 2; send → the first update on\n", o.freshness)
	p("node 2 that counts it: **p50 %s ms, p99 %s ms, max %s ms** over %d markers (tick 1 s).\n\n", ms(fresh.P50), ms(fresh.P99), ms(fresh.Max), fresh.N)
	p("Reading: both nodes, both replicas, ZooKeeper, NATS, ClickHouse's replication and the load generator share this\n")
	p("machine's %d CPUs, so two nodes here measure the cost of coordination, not the capacity two machines would add.\n", m.CPUs)
	p("Load average before the run: %s.\n\n", load)
	p("Machine: %d CPUs (%s), %s RAM; ClickHouse %s; %s; commit %s; %s.\n\n",
		m.CPUs, m.CPUModel, m.RAM, version, m.Go, m.Commit, m.Date.Format("2006-01-02 15:04 UTC"))
	p("Command (from the module root; it starts its own ClickHouse servers, ZooKeeper and NATS):\n\n```sh\n%s\n```\n", env.command)
	return b.String()
}
