// Package config is Truthboard's one configuration: every setting of `truthboard serve` and
// `truthboard migrate`, its default, its environment variable and its flag, in one table. A
// flag wins over its environment variable, which wins over the default. Errors name the
// variable or flag and say how to fix it.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is everything `truthboard serve` needs.
type Config struct {
	// Listen is the host:port of the HTTP server (ingest API, dashboards, WebSockets). Keep it on
	// 127.0.0.1 unless a TLS-terminating proxy stands in front.
	Listen string
	// DataDir holds what the server keeps on local disk: generated keys and tokens, and the
	// spool unless SpoolDir is set.
	DataDir string

	// ClickHouseAddr is host:port of ClickHouse: its native protocol (port 9000), or its HTTP
	// interface (port 8123) when ClickHouseProtocol is "http"; or several, comma-separated (the
	// replicas of a cluster): a connection goes to the first that answers, so a node keeps
	// working when a replica stops.
	ClickHouseAddr string
	// ClickHouseProtocol is how Truthboard speaks to ClickHouse: "native" (the default, the
	// native TCP protocol) or "http" (the HTTP interface, for ClickHouse 22.x and later only:
	// that of ClickHouse 18.16 does not work with the driver).
	ClickHouseProtocol string
	// ClickHouseCluster, when set, is the ClickHouse cluster (a name in the servers'
	// remote_servers, with a keeper and the {shard} and {replica} macros) that the schema is
	// made on: replicated tables behind Distributed ones, created from every node safely (see
	// docs/cluster.md). Empty: one server.
	ClickHouseCluster string
	// ClickHouseDatabase is created when missing.
	ClickHouseDatabase string
	ClickHouseUser     string
	ClickHousePassword string
	// ClickHouseDialTimeout bounds connecting; past it ClickHouse counts as down (503).
	ClickHouseDialTimeout time.Duration
	// QueryTimeout is ClickHouse's max_execution_time for every query.
	QueryTimeout time.Duration
	// ClickHouseMaxConns bounds the connections to ClickHouse. The live feeds use at most
	// LiveMaxQueries of them and the read API at most ReadMaxQueries; the rest is always there
	// for ingest, credential reloads, the admin API and health checks. With one more than
	// MinSpareConns left (the default), the ingest drainer prepares its next insert on a
	// connection of its own while ClickHouse takes the current one (PrepareAhead).
	ClickHouseMaxConns int

	// IngestKeys are the API keys accepted by POST /v1/events. Empty: one is generated, stored
	// in DataDir and printed at start.
	IngestKeys []string
	// AdminToken signs in to the dashboards and the admin API. Empty: generated like IngestKeys.
	// A configured one has at least MinAdminTokenLength characters.
	AdminToken string
	// IngestRate is the number of ingest requests per second one API key may make; more get 429.
	// 0 turns the limit off.
	IngestRate int

	// MaxBodyBytes bounds one ingest request body after decompression.
	MaxBodyBytes int
	// MaxEvents bounds the events of one ingest request.
	MaxEvents int
	// MaxInflightBytes bounds the bodies of the ingest requests decoded or waiting at once;
	// beyond it ingest answers 503, so memory stays bounded however many clients send.
	MaxInflightBytes int
	// MaxInflightBytesPerKey is one ingest key's share of MaxInflightBytes; beyond it that key
	// gets 429, so one key's slow or many uploads never stop the others.
	MaxInflightBytesPerKey int
	// MemoryLimit is the Go runtime's soft memory limit for the server, in bytes: near it the
	// garbage collector runs more often instead of letting the heap grow, so the server's memory
	// stays bounded however many clients send or watch at once. It must leave room for the
	// bodies in flight in their decoded form (InflightExpansion × MaxInflightBytes) and the rest
	// of the server (MemoryLimitBase). 0 turns it off. Go's own GOMEMLIMIT, when set, wins.
	MemoryLimit int
	// MinUploadRate is the slowest an ingest body may arrive, in bytes per second on average
	// after its first seconds; a slower one is cut with 408. 0 turns the check off.
	MinUploadRate int
	// AuthFailuresPerMinute is how many wrong credentials one client address may present per
	// minute (in a burst, then one every 60/N s); beyond it its requests with a credential get
	// 429 until it waits. 0 turns the throttle off.
	AuthFailuresPerMinute int
	// MaxPasswordHashes bounds the argon2id password hashes computed at once (sign-ins, new
	// passwords), each about 19 MiB for tens of milliseconds, so a flood of sign-ins costs
	// bounded memory and CPU; a sign-in that waits 5 s for a free one gets 503.
	MaxPasswordHashes int
	// TrustedProxies are the addresses (IP or CIDR) of the proxies in front of the server whose
	// X-Forwarded-For, X-Forwarded-Host and X-Forwarded-Proto are believed. Empty: none is, and
	// those headers are ignored.
	TrustedProxies []string
	// Retention is how long events are kept; older events are refused at ingest and their days
	// are dropped from ClickHouse.
	Retention time.Duration

	// FlushInterval is the longest an accepted event waits before it is written to ClickHouse.
	FlushInterval time.Duration
	// FlushRows writes as soon as this many events wait.
	FlushRows int
	// PaceBacklog is the spool backlog, in events, above which ingest requests wait for the
	// drainer (up to PaceWait each, before they are read) while ClickHouse takes inserts:
	// beyond a burst of this size, events are acknowledged about as fast as ClickHouse stores
	// them, and decoding them does not take the CPU from ClickHouse's inserts all at once.
	// While the drainer's inserts fail nothing waits: the spool takes the events up to its
	// quota. At least twice FlushRows, so the drainer can read a full batch ahead; 0: never
	// wait.
	PaceBacklog int
	// PaceWait is the longest one ingest request waits for the drainer (PaceBacklog).
	PaceWait time.Duration
	// SpoolDir is where acknowledged events wait until ClickHouse has them (a segmented log,
	// synced before every 202). Keep it on a local disk that survives restarts. Empty:
	// DataDir/spool.
	SpoolDir string
	// SpoolMaxBytes is the spool's disk quota: while ClickHouse is away the spool grows up to
	// it, then ingest answers 503 until ClickHouse takes the backlog.
	SpoolMaxBytes int
	// DeadLetterMaxBytes is the disk quota of the dead-letter (<spool>/dead-letter), where spool
	// records that cannot be decoded and events ClickHouse refuses for their values are kept
	// aside for an operator. When it is full they wait in the spool instead, and the spool
	// fills behind them: replay or remove entries (truthboard dead-letter), or raise it.
	DeadLetterMaxBytes int
	// ShutdownTimeout bounds a graceful stop (SIGTERM): in-flight requests are answered and the
	// spool is drained to ClickHouse for at most this long; what remains stays in the spool.
	ShutdownTimeout time.Duration

	// LiveTick is how often live dashboards are recomputed and pushed at least.
	LiveTick time.Duration
	// LiveMinTick is the shortest time between two recomputations of a live dashboard: when
	// this node's events land in ClickHouse, its dashboards are recomputed at once, but not
	// sooner than this after the previous time. LiveTick or more: only every LiveTick. Lower
	// shows events sooner (down to the flush interval plus the queries) at the cost of more
	// ClickHouse queries per second (docs/benchmarks.md, Live).
	LiveMinTick time.Duration
	// DisplayTokenRefresh is how often the server reloads the display tokens and the stored
	// ingest keys from ClickHouse: the longest a revoked one still works on a node that did not
	// revoke it, or a new one is refused.
	DisplayTokenRefresh time.Duration
	// AllowedOrigins are browser origins, besides the server's own, that may open live
	// connections (scheme://host:port, comma-separated; * for any).
	AllowedOrigins []string
	// LiveMaxQueries bounds the ClickHouse queries the live feeds run at once; a feed waits
	// for a free one within its tick's timeout, else its tick is degraded.
	LiveMaxQueries int
	// ReadMaxQueries bounds the queries of GET /v1/metrics and /v1/consistency at once.
	ReadMaxQueries int
	// LiveMaxFeeds bounds the distinct live feeds of the server (0: no limit); a subscribe that
	// would start one more is refused with an error message.
	LiveMaxFeeds int
	// LiveMaxFeedsPerCredential bounds the distinct feeds the screens of one credential (a
	// display token, the admin token, one sign-in) may hold (0: no limit).
	LiveMaxFeedsPerCredential int
	// LiveMaxConnsPerCredential and LiveMaxConnsPerAddress bound the open live connections of
	// one credential and of one client address (0: no limit); beyond them the upgrade gets 429.
	LiveMaxConnsPerCredential int
	LiveMaxConnsPerAddress    int
	// LiveSubscribeRate is how many messages per second a live connection may send on average
	// (after a burst of 10); a faster one is closed with 1008. 0 turns the limit off.
	LiveSubscribeRate float64

	// ScreenCodeTTL is how long a pairing code shown on a TV is valid; the TV then shows a new one.
	ScreenCodeTTL time.Duration
	// ScreenMaxPending bounds the TVs waiting for pairing on this node, and
	// ScreenMaxPendingPerAddress those of one client address: beyond, a TV is told to wait.
	ScreenMaxPending           int
	ScreenMaxPendingPerAddress int
	// ScreenWrongCodesPerMinute is how many wrong, expired or used pairing codes one client
	// address may enter per minute, in a burst; beyond, its pairing requests get 429.
	ScreenWrongCodesPerMinute int
	// ScreenOfflineAfter is how long a screen may stay silent before it is listed offline
	// (screens send a heartbeat every 5 s).
	ScreenOfflineAfter time.Duration

	// PublicURL is the address people reach this server at (scheme://host[:port], e.g.
	// https://truthboard.example.com), used in the links that alerts carry to the drill-down.
	// Empty: the listen address.
	PublicURL string
	// AlertRulesFile is a JSON file of alert rules (docs/alerts.md). Empty: the default rules,
	// which watch CSAT, NPS, CES, negative rate, abandonment and wait p90 of every moment ×
	// channel with enough data.
	AlertRulesFile string
	// AlertInterval is how often the alert rules are evaluated: one query set per evaluation,
	// whatever the number of screens. Every 10 s by default: a rule must hold for minutes
	// before it fires, and one evaluation reads about what one screen reads, so evaluating every
	// second would cost as much as a screen more for nothing people would see.
	AlertInterval time.Duration
	// AlertWebhookURLs receive every alert that fires or resolves as an Alertmanager-compatible
	// webhook (payload version 4).
	AlertWebhookURLs []string
	// AlertmanagerURLs are Prometheus Alertmanager base URLs (http://host:9093) that alerts are
	// pushed to through its API v2, for routing to Slack, Teams, PagerDuty or email.
	AlertmanagerURLs []string
	// AnnotationRate is how many annotations one credential may create, change or delete per
	// minute, in a burst (POST, PATCH and DELETE /v1/annotations); past it the API answers 429.
	// It bounds the rows a credential can add; each node counts its own requests.
	AnnotationRate int
	// AuditInterval is how often the rollup audit compares every rollup table with the raw
	// table and rebuilds the time buckets that disagree (a ClickHouse crash in mid-insert
	// leaves some rollups with an insert and others without). 0 turns the audit off: do that on
	// every node but one when several run against the same database.
	AuditInterval time.Duration
	// AuditWindow is how far back the audit looks, from now: the time buckets it compares each
	// run. It never looks where retention may have dropped a table's older days.
	AuditWindow time.Duration

	// NATSURL is the NATS server with JetStream (nats://host:4222, or several of one NATS
	// cluster, comma-separated) where the nodes of a Truthboard cluster claim each event's
	// idempotency key, so that a retry reaching another node is never stored twice (see
	// docs/cluster.md). Empty: a single node, nothing else to run. Several nodes always need it,
	// also on one ClickHouse server: a node's drainer knows only the events it stored itself.
	NATSURL string
	// ClaimWindow is how long a claim lives: a retry reaching another node later than this is
	// checked against ClickHouse instead. Keep it above the longest ClickHouse outage the spool
	// rides out. The bucket holds about 150 bytes per event of the window.
	ClaimWindow time.Duration
	// ClaimReplicas is how many NATS servers keep each claim: 1 on one NATS server, 3 on a NATS
	// cluster of three so that a claim survives the loss of one.
	ClaimReplicas int

	// DemoRate, when above 0, makes `serve` send demo traffic to itself through its own HTTP API
	// at this many events per second (see `truthboard demo`).
	DemoRate float64
}

// Default is the configuration with nothing set.
func Default() Config {
	return Config{
		Listen:                "127.0.0.1:8080",
		DataDir:               "var/truthboard",
		ClickHouseAddr:        "127.0.0.1:9000",
		ClickHouseProtocol:    "native",
		ClickHouseDatabase:    "truthboard",
		ClickHouseUser:        "default",
		ClickHouseDialTimeout: 2 * time.Second,
		QueryTimeout:          30 * time.Second,
		ClickHouseMaxConns:    9,
		IngestRate:            200,
		MaxBodyBytes:          8 << 20,
		MaxEvents:             10_000,
		MaxInflightBytes:      64 << 20,
		// A quarter of the in-flight budget: four keys at their share before the others wait.
		MaxInflightBytesPerKey: 16 << 20,
		MemoryLimit:            384 << 20,
		// 32 KiB/s is 256 kbit/s: any real sender, and 8 MiB within the 30 s read timeout
		// needs 280 KB/s anyway.
		MinUploadRate:              32 << 10,
		AuthFailuresPerMinute:      20,
		MaxPasswordHashes:          2,
		Retention:                  30 * 24 * time.Hour,
		FlushInterval:              100 * time.Millisecond,
		FlushRows:                  20_000,
		PaceBacklog:                60_000,
		PaceWait:                   250 * time.Millisecond,
		SpoolMaxBytes:              1 << 30,
		DeadLetterMaxBytes:         64 << 20,
		ShutdownTimeout:            15 * time.Second,
		LiveTick:                   time.Second,
		LiveMinTick:                500 * time.Millisecond,
		DisplayTokenRefresh:        5 * time.Second,
		LiveMaxQueries:             3,
		ReadMaxQueries:             3,
		LiveMaxFeeds:               64,
		LiveMaxFeedsPerCredential:  16,
		LiveMaxConnsPerCredential:  50,
		LiveMaxConnsPerAddress:     100,
		LiveSubscribeRate:          2,
		ScreenCodeTTL:              10 * time.Minute,
		ScreenMaxPending:           200,
		ScreenMaxPendingPerAddress: 3,
		ScreenWrongCodesPerMinute:  10,
		ScreenOfflineAfter:         20 * time.Second,
		AlertInterval:              10 * time.Second,
		AnnotationRate:             60,
		AuditInterval:              time.Minute,
		AuditWindow:                2 * time.Hour,
		ClaimWindow:                time.Hour,
		ClaimReplicas:              1,
	}
}

// setting binds one field to its flag and environment variable.
type setting struct {
	flag, env, help string
	value           flag.Value
}

func (c *Config) settings() []setting {
	return []setting{
		{"listen", "TRUTHBOARD_LISTEN", "host:port of the HTTP server", (*hostPort)(&c.Listen)},
		{"data-dir", "TRUTHBOARD_DATA_DIR", "folder for generated keys and tokens, and the spool", (*text)(&c.DataDir)},
		{"clickhouse-addr", "TRUTHBOARD_CLICKHOUSE_ADDR", "host:port of ClickHouse's native protocol (port 9000), or of its HTTP interface (port 8123) with -clickhouse-protocol http; several comma-separated: replicas, tried in order", (*hostPorts)(&c.ClickHouseAddr)},
		{"clickhouse-protocol", "TRUTHBOARD_CLICKHOUSE_PROTOCOL", "how to speak to ClickHouse: native (TCP) or http (its HTTP interface; ClickHouse 22.x and later)", (*protocol)(&c.ClickHouseProtocol)},
		{"clickhouse-cluster", "TRUTHBOARD_CLICKHOUSE_CLUSTER", "ClickHouse cluster (of remote_servers) to make the schema on, as replicated and Distributed tables (empty: one server)", (*text)(&c.ClickHouseCluster)},
		{"clickhouse-database", "TRUTHBOARD_CLICKHOUSE_DATABASE", "ClickHouse database, created when missing", (*text)(&c.ClickHouseDatabase)},
		{"clickhouse-user", "TRUTHBOARD_CLICKHOUSE_USER", "ClickHouse user", (*text)(&c.ClickHouseUser)},
		{"clickhouse-password", "TRUTHBOARD_CLICKHOUSE_PASSWORD", "ClickHouse password", (*text)(&c.ClickHousePassword)},
		{"clickhouse-dial-timeout", "TRUTHBOARD_CLICKHOUSE_DIAL_TIMEOUT", "how long to wait for ClickHouse to answer a connection", (*duration)(&c.ClickHouseDialTimeout)},
		{"query-timeout", "TRUTHBOARD_QUERY_TIMEOUT", "ClickHouse's max_execution_time for every query", (*duration)(&c.QueryTimeout)},
		{"clickhouse-max-conns", "TRUTHBOARD_CLICKHOUSE_MAX_CONNS", "most connections to ClickHouse; live feeds and the read API take at most their share (-live-max-queries, -read-max-queries), the rest is kept for ingest, credentials and the admin API (with 3 or more left, the ingest drainer prepares its next insert on one of its own)", (*count)(&c.ClickHouseMaxConns)},
		{"ingest-keys", "TRUTHBOARD_INGEST_KEYS", "comma-separated API keys for POST /v1/events (empty: generate one)", (*list)(&c.IngestKeys)},
		{"admin-token", "TRUTHBOARD_ADMIN_TOKEN", "token for the dashboards and admin API, at least 16 characters (empty: generate one)", (*text)(&c.AdminToken)},
		{"ingest-rate", "TRUTHBOARD_INGEST_RATE", "ingest requests per second per API key (0: no limit)", (*count)(&c.IngestRate)},
		{"max-body-bytes", "TRUTHBOARD_MAX_BODY_BYTES", "largest ingest body after decompression, in bytes", (*count)(&c.MaxBodyBytes)},
		{"max-events", "TRUTHBOARD_MAX_EVENTS", "most events in one ingest request", (*count)(&c.MaxEvents)},
		{"max-inflight-bytes", "TRUTHBOARD_MAX_INFLIGHT_BYTES", "most bytes of ingest bodies decoded or waiting at once; beyond it ingest answers 503", (*count)(&c.MaxInflightBytes)},
		{"max-inflight-bytes-per-key", "TRUTHBOARD_MAX_INFLIGHT_BYTES_PER_KEY", "one ingest key's share of -max-inflight-bytes; beyond it that key gets 429", (*count)(&c.MaxInflightBytesPerKey)},
		{"memory-limit", "TRUTHBOARD_MEMORY_LIMIT", "soft memory limit of the server in bytes: near it the garbage collector works harder instead of growing the heap (0: none; GOMEMLIMIT wins when set)", (*count)(&c.MemoryLimit)},
		{"min-upload-rate", "TRUTHBOARD_MIN_UPLOAD_RATE", "slowest average rate of an ingest body in bytes per second, after its first 5 s; slower ones are cut with 408 (0: no minimum)", (*count)(&c.MinUploadRate)},
		{"auth-failures-per-minute", "TRUTHBOARD_AUTH_FAILURES_PER_MINUTE", "wrong credentials one client address may present per minute before its requests with a credential get 429 (0: no limit)", (*count)(&c.AuthFailuresPerMinute)},
		{"max-password-hashes", "TRUTHBOARD_MAX_PASSWORD_HASHES", "password hashes (argon2id, 19 MiB each) computed at once for sign-ins and new passwords; a sign-in that waits 5 s for one gets 503", (*count)(&c.MaxPasswordHashes)},
		{"trusted-proxies", "TRUTHBOARD_TRUSTED_PROXIES", "comma-separated IP addresses or CIDR ranges of the proxies in front, whose X-Forwarded-For/-Host/-Proto are believed (empty: none)", (*list)(&c.TrustedProxies)},
		{"retention", "TRUTHBOARD_RETENTION", "how long events are kept, e.g. 720h", (*duration)(&c.Retention)},
		{"flush-interval", "TRUTHBOARD_FLUSH_INTERVAL", "longest wait of an accepted event before its insert", (*duration)(&c.FlushInterval)},
		{"flush-rows", "TRUTHBOARD_FLUSH_ROWS", "insert as soon as this many events wait", (*count)(&c.FlushRows)},
		{"pace-backlog", "TRUTHBOARD_PACE_BACKLOG", "spool backlog in events above which ingest requests wait for the drainer before they are read, up to -pace-wait, while ClickHouse takes inserts (at least twice -flush-rows; 0: never wait)", (*count)(&c.PaceBacklog)},
		{"pace-wait", "TRUTHBOARD_PACE_WAIT", "longest wait of one ingest request for the drainer (-pace-backlog)", (*duration)(&c.PaceWait)},
		{"spool-dir", "TRUTHBOARD_SPOOL_DIR", "folder of the local spool of acknowledged events (empty: <data-dir>/spool)", (*text)(&c.SpoolDir)},
		{"spool-max-bytes", "TRUTHBOARD_SPOOL_MAX_BYTES", "disk quota of the spool in bytes; beyond it ingest answers 503", (*count)(&c.SpoolMaxBytes)},
		{"dead-letter-max-bytes", "TRUTHBOARD_DEAD_LETTER_MAX_BYTES", "disk quota of the dead-letter (<spool-dir>/dead-letter) of records and events ClickHouse cannot take; when full they wait in the spool", (*count)(&c.DeadLetterMaxBytes)},
		{"shutdown-timeout", "TRUTHBOARD_SHUTDOWN_TIMEOUT", "longest graceful stop on SIGTERM; what is not in ClickHouse by then stays in the spool", (*duration)(&c.ShutdownTimeout)},
		{"live-tick", "TRUTHBOARD_LIVE_TICK", "how often live dashboards are recomputed and pushed at least", (*duration)(&c.LiveTick)},
		{"live-min-tick", "TRUTHBOARD_LIVE_MIN_TICK", "shortest time between two recomputations of a live dashboard, which run as soon as new events land in ClickHouse (-live-tick or more: only every -live-tick)", (*duration)(&c.LiveMinTick)},
		{"display-token-refresh", "TRUTHBOARD_DISPLAY_TOKEN_REFRESH", "how often display tokens, stored ingest keys and accounts are reloaded from ClickHouse (the longest a revoked one still works)", (*duration)(&c.DisplayTokenRefresh)},
		{"allowed-origins", "TRUTHBOARD_ALLOWED_ORIGINS", "other browser origins allowed to open live connections (comma-separated, * for any)", (*list)(&c.AllowedOrigins)},
		{"live-max-queries", "TRUTHBOARD_LIVE_MAX_QUERIES", "most ClickHouse queries the live feeds run at once", (*count)(&c.LiveMaxQueries)},
		{"read-max-queries", "TRUTHBOARD_READ_MAX_QUERIES", "most ClickHouse queries of GET /v1/metrics and /v1/consistency at once", (*count)(&c.ReadMaxQueries)},
		{"live-max-feeds", "TRUTHBOARD_LIVE_MAX_FEEDS", "most distinct live feeds (view, window, filters) of the server (0: no limit)", (*count)(&c.LiveMaxFeeds)},
		{"live-max-feeds-per-credential", "TRUTHBOARD_LIVE_MAX_FEEDS_PER_CREDENTIAL", "most distinct live feeds the screens of one display token, sign-in or the admin token hold (0: no limit)", (*count)(&c.LiveMaxFeedsPerCredential)},
		{"live-max-conns-per-credential", "TRUTHBOARD_LIVE_MAX_CONNS_PER_CREDENTIAL", "most open live connections of one display token, sign-in or the admin token (0: no limit)", (*count)(&c.LiveMaxConnsPerCredential)},
		{"live-max-conns-per-address", "TRUTHBOARD_LIVE_MAX_CONNS_PER_ADDRESS", "most open live connections from one client address (0: no limit)", (*count)(&c.LiveMaxConnsPerAddress)},
		{"live-subscribe-rate", "TRUTHBOARD_LIVE_SUBSCRIBE_RATE", "messages per second a live connection may send after a burst of 10; faster ones are closed with 1008 (0: no limit)", (*rate)(&c.LiveSubscribeRate)},
		{"screen-code-ttl", "TRUTHBOARD_SCREEN_CODE_TTL", "how long a pairing code shown on a TV is valid", (*duration)(&c.ScreenCodeTTL)},
		{"screen-max-pending", "TRUTHBOARD_SCREEN_MAX_PENDING", "most TVs waiting for pairing on this node", (*count)(&c.ScreenMaxPending)},
		{"screen-max-pending-per-address", "TRUTHBOARD_SCREEN_MAX_PENDING_PER_ADDRESS", "most TVs waiting for pairing from one client address", (*count)(&c.ScreenMaxPendingPerAddress)},
		{"screen-wrong-codes-per-minute", "TRUTHBOARD_SCREEN_WRONG_CODES_PER_MINUTE", "wrong pairing codes one client address may enter per minute before its requests get 429", (*count)(&c.ScreenWrongCodesPerMinute)},
		{"screen-offline-after", "TRUTHBOARD_SCREEN_OFFLINE_AFTER", "how long a screen may stay silent before it is listed offline (screens send a heartbeat every 5 s)", (*duration)(&c.ScreenOfflineAfter)},
		{"public-url", "TRUTHBOARD_PUBLIC_URL", "address people reach this server at, for links in alerts (empty: the listen address)", (*webURL)(&c.PublicURL)},
		{"alert-rules", "TRUTHBOARD_ALERT_RULES", "JSON file of alert rules (empty: the default rules)", (*text)(&c.AlertRulesFile)},
		{"alert-interval", "TRUTHBOARD_ALERT_INTERVAL", "how often alert rules are evaluated", (*duration)(&c.AlertInterval)},
		{"alert-webhook-url", "TRUTHBOARD_ALERT_WEBHOOK_URL", "comma-separated URLs that receive alerts as Alertmanager-compatible webhooks", (*webURLs)(&c.AlertWebhookURLs)},
		{"alertmanager-url", "TRUTHBOARD_ALERTMANAGER_URL", "comma-separated Prometheus Alertmanager base URLs that alerts are pushed to", (*webURLs)(&c.AlertmanagerURLs)},
		{"annotation-rate", "TRUTHBOARD_ANNOTATION_RATE", "annotations one credential may create, change or delete per minute", (*count)(&c.AnnotationRate)},
		{"audit-interval", "TRUTHBOARD_AUDIT_INTERVAL", "how often the rollups are compared with the raw events and repaired (0: never; keep it on one node only)", (*duration)(&c.AuditInterval)},
		{"audit-window", "TRUTHBOARD_AUDIT_WINDOW", "how far back the rollup audit looks each time", (*duration)(&c.AuditWindow)},
		{"nats-url", "TRUTHBOARD_NATS_URL", "NATS server(s) with JetStream where the nodes of a cluster claim events, so that a retry reaching another node is not stored twice, e.g. nats://127.0.0.1:4222 (empty: a single node)", (*natsURLs)(&c.NATSURL)},
		{"claim-window", "TRUTHBOARD_CLAIM_WINDOW", "how long a node's claim on an event lasts (with -nats-url); keep it above the longest ClickHouse outage", (*duration)(&c.ClaimWindow)},
		{"claim-replicas", "TRUTHBOARD_CLAIM_REPLICAS", "how many NATS servers keep each claim (with -nats-url): 1, or 3 on a NATS cluster", (*count)(&c.ClaimReplicas)},
		{"demo-rate", "TRUTHBOARD_DEMO_RATE", "send this many demo events per second to the server itself (0: off)", (*rate)(&c.DemoRate)},
	}
}

// EnvNames are the environment variables of every setting, in the order of the help.
func EnvNames() []string {
	var c Config
	var names []string
	for _, s := range c.settings() {
		names = append(names, s.env)
	}
	return names
}

// Load reads the environment (through getenv), then the flags in args, over the defaults.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("truthboard serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { PrintHelp(stderr) }
	for _, s := range c.settings() {
		if v := getenv(s.env); v != "" {
			if err := s.value.Set(v); err != nil {
				return c, fmt.Errorf("environment variable %s=%q: %w", s.env, v, err)
			}
		}
		fs.Var(s.value, s.flag, s.help)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: settings are flags such as -listen 127.0.0.1:8080", fs.Arg(0))
	}
	return c, c.Validate()
}

// InflightExpansion is how much memory an ingest body takes while it is in flight, as a multiple
// of its size: the body, its decoded events and its spool record (measured about 3.6 under
// overload; docs/benchmarks.md, "Overload").
const InflightExpansion = 4

// MemoryLimitBase is the memory the server needs beside ingest bodies in flight: the drainer's
// batch, live feeds, caches and the runtime.
const MemoryLimitBase = 64 << 20

// MinAdminTokenLength is the shortest admin token accepted in the configuration: a guessable
// one would let anyone in, throttling or not.
const MinAdminTokenLength = 16

// MinSpareConns is how many ClickHouse connections stay out of the live feeds' and the read
// API's reach: one for the spool's drainer, one for credential reloads and the admin API.
const MinSpareConns = 2

// PrepareAhead reports whether the connections leave the ingest drainer a second one, on which
// it prepares the next insert while ClickHouse takes the current one (ingest.Options).
func (c Config) PrepareAhead() bool {
	return c.ClickHouseMaxConns-c.LiveMaxQueries-c.ReadMaxQueries > MinSpareConns
}

// ParseProxy reads one entry of TrustedProxies: an IP address or a CIDR range.
func ParseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR range such as 10.0.0.0/8", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address such as 10.0.0.5 or a CIDR range such as 10.0.0.0/8", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Validate checks settings that are wrong together or out of range.
func (c Config) Validate() error {
	var errs []error
	positive := func(v int, flagName, env string) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("-%s (%s) must be above 0", flagName, env))
		}
	}
	positive(c.MaxBodyBytes, "max-body-bytes", "TRUTHBOARD_MAX_BODY_BYTES")
	positive(c.MaxEvents, "max-events", "TRUTHBOARD_MAX_EVENTS")
	positive(c.MaxInflightBytes, "max-inflight-bytes", "TRUTHBOARD_MAX_INFLIGHT_BYTES")
	if c.MaxInflightBytes < c.MaxBodyBytes {
		errs = append(errs, fmt.Errorf("-max-inflight-bytes (TRUTHBOARD_MAX_INFLIGHT_BYTES) is %d, below -max-body-bytes (%d): the largest request could never be taken; raise it", c.MaxInflightBytes, c.MaxBodyBytes))
	}
	positive(c.FlushRows, "flush-rows", "TRUTHBOARD_FLUSH_ROWS")
	if c.PaceBacklog != 0 && c.PaceBacklog < 2*c.FlushRows {
		errs = append(errs, fmt.Errorf("-pace-backlog (TRUTHBOARD_PACE_BACKLOG) is %d, below twice -flush-rows (%d): requests would wait while the drainer cannot yet read a full batch ahead; raise it to %d or more, or set it to 0 for no waiting", c.PaceBacklog, c.FlushRows, 2*c.FlushRows))
	}
	if c.PaceBacklog != 0 && (c.PaceWait < time.Millisecond || c.PaceWait > 10*time.Second) {
		errs = append(errs, fmt.Errorf("-pace-wait (TRUTHBOARD_PACE_WAIT) is %s: set it between 1ms and 10s, e.g. 250ms (a client waits up to this long more for its 202 while the drainer is behind)", c.PaceWait))
	}
	if c.MaxInflightBytesPerKey < c.MaxBodyBytes || c.MaxInflightBytesPerKey > c.MaxInflightBytes {
		errs = append(errs, fmt.Errorf("-max-inflight-bytes-per-key (TRUTHBOARD_MAX_INFLIGHT_BYTES_PER_KEY) is %d: set it between -max-body-bytes (%d), so a key can send its largest request, and -max-inflight-bytes (%d), of which it is a share", c.MaxInflightBytesPerKey, c.MaxBodyBytes, c.MaxInflightBytes))
	}
	if need := InflightExpansion*c.MaxInflightBytes + MemoryLimitBase; c.MemoryLimit != 0 && c.MemoryLimit < need {
		errs = append(errs, fmt.Errorf("-memory-limit (TRUTHBOARD_MEMORY_LIMIT) is %d MiB, below the %d MiB that %d MiB of ingest bodies in flight (-max-inflight-bytes) need once decoded, with the rest of the server: the garbage collector would run without pause; raise it, lower -max-inflight-bytes, or set it to 0 for no limit", c.MemoryLimit>>20, need>>20, c.MaxInflightBytes>>20))
	}
	positive(c.LiveMaxQueries, "live-max-queries", "TRUTHBOARD_LIVE_MAX_QUERIES")
	positive(c.ReadMaxQueries, "read-max-queries", "TRUTHBOARD_READ_MAX_QUERIES")
	positive(c.MaxPasswordHashes, "max-password-hashes", "TRUTHBOARD_MAX_PASSWORD_HASHES")
	if spare := c.ClickHouseMaxConns - c.LiveMaxQueries - c.ReadMaxQueries; spare < MinSpareConns {
		errs = append(errs, fmt.Errorf("-clickhouse-max-conns (TRUTHBOARD_CLICKHOUSE_MAX_CONNS) is %d, which leaves %d beside -live-max-queries (%d) and -read-max-queries (%d): ingest, credential reloads and the admin API need at least %d of their own; raise it or lower the other two", c.ClickHouseMaxConns, max(spare, 0), c.LiveMaxQueries, c.ReadMaxQueries, MinSpareConns))
	}
	if c.AdminToken != "" && len(c.AdminToken) < MinAdminTokenLength {
		errs = append(errs, fmt.Errorf("-admin-token (TRUTHBOARD_ADMIN_TOKEN) has %d characters: use at least %d random ones, e.g. the output of `openssl rand -base64 24`, or leave it unset to have one generated", len(c.AdminToken), MinAdminTokenLength))
	}
	for _, p := range c.TrustedProxies {
		if _, err := ParseProxy(p); err != nil {
			errs = append(errs, fmt.Errorf("-trusted-proxies (TRUTHBOARD_TRUSTED_PROXIES): %w", err))
		}
	}
	if c.SpoolMaxBytes < 2*c.MaxBodyBytes {
		errs = append(errs, fmt.Errorf("-spool-max-bytes (TRUTHBOARD_SPOOL_MAX_BYTES) is %d, below twice -max-body-bytes (%d): the spool could not hold two full requests; raise it", c.SpoolMaxBytes, c.MaxBodyBytes))
	}
	if c.DeadLetterMaxBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("-dead-letter-max-bytes (TRUTHBOARD_DEAD_LETTER_MAX_BYTES) is %d: use at least 65536, e.g. 67108864 (64 MiB), so it can hold a few entries", c.DeadLetterMaxBytes))
	}
	if c.ShutdownTimeout < time.Second {
		errs = append(errs, fmt.Errorf("-shutdown-timeout (TRUTHBOARD_SHUTDOWN_TIMEOUT) is %s: use at least 1s, e.g. 15s", c.ShutdownTimeout))
	}
	if c.Retention < time.Hour {
		errs = append(errs, fmt.Errorf("-retention (TRUTHBOARD_RETENTION) is %s: keep at least 1h so the dashboards' windows have data", c.Retention))
	}
	if c.FlushInterval < time.Millisecond {
		errs = append(errs, errors.New("-flush-interval (TRUTHBOARD_FLUSH_INTERVAL) must be at least 1ms, e.g. 100ms"))
	}
	if c.LiveTick < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("-live-tick (TRUTHBOARD_LIVE_TICK) is %s: use at least 100ms, e.g. 1s", c.LiveTick))
	}
	if c.LiveMinTick < 50*time.Millisecond {
		errs = append(errs, fmt.Errorf("-live-min-tick (TRUTHBOARD_LIVE_MIN_TICK) is %s: use at least 50ms, e.g. 500ms (a value of -live-tick or more turns the early recomputations off)", c.LiveMinTick))
	}
	if c.DisplayTokenRefresh < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("-display-token-refresh (TRUTHBOARD_DISPLAY_TOKEN_REFRESH) is %s: use at least 100ms, e.g. 5s", c.DisplayTokenRefresh))
	}
	if c.ScreenCodeTTL < time.Minute || c.ScreenCodeTTL > time.Hour {
		errs = append(errs, fmt.Errorf("-screen-code-ttl (TRUTHBOARD_SCREEN_CODE_TTL) is %s: use 1m to 1h, e.g. 10m (long enough to walk to a computer, short enough that a code seen once is soon useless)", c.ScreenCodeTTL))
	}
	if c.ScreenMaxPending < 1 || c.ScreenMaxPendingPerAddress < 1 || c.ScreenWrongCodesPerMinute < 1 {
		errs = append(errs, errors.New("-screen-max-pending, -screen-max-pending-per-address and -screen-wrong-codes-per-minute (TRUTHBOARD_SCREEN_…) must be at least 1, e.g. 200, 3 and 10"))
	}
	if c.ScreenOfflineAfter < 10*time.Second {
		errs = append(errs, fmt.Errorf("-screen-offline-after (TRUTHBOARD_SCREEN_OFFLINE_AFTER) is %s: use at least 10s (screens send a heartbeat every 5 s), e.g. 20s", c.ScreenOfflineAfter))
	}
	if c.AuditInterval != 0 && c.AuditInterval < time.Second {
		errs = append(errs, fmt.Errorf("-audit-interval (TRUTHBOARD_AUDIT_INTERVAL) is %s: use 0 (off) or at least 1s, e.g. 1m", c.AuditInterval))
	}
	if c.AuditInterval != 0 && c.AuditWindow < time.Hour {
		errs = append(errs, fmt.Errorf("-audit-window (TRUTHBOARD_AUDIT_WINDOW) is %s: use at least 1h, e.g. 2h", c.AuditWindow))
	}
	if c.NATSURL != "" && c.ClaimWindow < time.Minute {
		errs = append(errs, fmt.Errorf("-claim-window (TRUTHBOARD_CLAIM_WINDOW) is %s: use at least 1m, e.g. 1h, longer than the ClickHouse outages to ride out", c.ClaimWindow))
	}
	if c.NATSURL != "" && (c.ClaimReplicas < 1 || c.ClaimReplicas > 5) {
		errs = append(errs, fmt.Errorf("-claim-replicas (TRUTHBOARD_CLAIM_REPLICAS) is %d: use 1 to 5 (JetStream's limit), and no more than the NATS servers of the cluster", c.ClaimReplicas))
	}
	if c.ClickHouseDatabase == "" {
		errs = append(errs, errors.New("-clickhouse-database (TRUTHBOARD_CLICKHOUSE_DATABASE) must not be empty"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("-data-dir (TRUTHBOARD_DATA_DIR) must not be empty"))
	}
	if c.AlertInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("-alert-interval (TRUTHBOARD_ALERT_INTERVAL) is %s: use at least 100ms, e.g. 1s", c.AlertInterval))
	}
	if c.AnnotationRate < 1 {
		errs = append(errs, fmt.Errorf("-annotation-rate (TRUTHBOARD_ANNOTATION_RATE) is %d: use at least 1 annotation change per minute, e.g. 60", c.AnnotationRate))
	}
	if c.IngestRate < 0 || c.DemoRate < 0 {
		errs = append(errs, errors.New("-ingest-rate and -demo-rate must not be negative"))
	}
	return errors.Join(errs...)
}

// PrintHelp documents every setting with its flag, variable and default.
func PrintHelp(w io.Writer) {
	d := Default()
	fmt.Fprintln(w, "Settings of `truthboard serve` and `truthboard migrate` (a flag wins over its environment variable):")
	fmt.Fprintln(w)
	for _, s := range d.settings() {
		def := s.value.String()
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(w, "  -%s, %s\n      %s (default %s)\n", s.flag, s.env, s.help, def)
	}
}

// The flag.Value types below parse one kind of setting each, with messages that say what a
// valid value looks like.

type text string

func (t *text) String() string     { return string(*t) }
func (t *text) Set(v string) error { *t = text(v); return nil }

type hostPort string

func (h *hostPort) String() string { return string(*h) }
func (h *hostPort) Set(v string) error {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return fmt.Errorf("want host:port such as 127.0.0.1:8080, got %q", v)
	}
	*h = hostPort(v)
	return nil
}

type protocol string

func (p *protocol) String() string { return string(*p) }
func (p *protocol) Set(v string) error {
	if v != "native" && v != "http" {
		return fmt.Errorf("want native or http, got %q", v)
	}
	*p = protocol(v)
	return nil
}

// hostPorts is one host:port or several, comma-separated.
type hostPorts string

func (h *hostPorts) String() string { return string(*h) }
func (h *hostPorts) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if _, port, err := net.SplitHostPort(part); err != nil || port == "" {
			return fmt.Errorf("want host:port such as 127.0.0.1:9000, or several comma-separated, got %q", part)
		}
	}
	*h = hostPorts(v)
	return nil
}

type duration time.Duration

func (d *duration) String() string { return time.Duration(*d).String() }
func (d *duration) Set(v string) error {
	x, err := time.ParseDuration(v)
	if err != nil || x < 0 {
		return fmt.Errorf("want a duration such as 500ms, 2s or 720h, got %q", v)
	}
	*d = duration(x)
	return nil
}

type count int

func (c *count) String() string { return strconv.Itoa(int(*c)) }
func (c *count) Set(v string) error {
	x, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || x < 0 {
		return fmt.Errorf("want a whole number of 0 or more, got %q", v)
	}
	*c = count(x)
	return nil
}

type rate float64

func (r *rate) String() string { return strconv.FormatFloat(float64(*r), 'g', -1, 64) }
func (r *rate) Set(v string) error {
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || x < 0 || x != x {
		return fmt.Errorf("want a number of 0 or more, got %q", v)
	}
	*r = rate(x)
	return nil
}

type list []string

func (l *list) String() string { return strings.Join(*l, ",") }
func (l *list) Set(v string) error {
	*l = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// webURL is an absolute http or https URL without a query (a base for links), or empty.
type webURL string

func (u *webURL) String() string { return string(*u) }
func (u *webURL) Set(v string) error {
	v, err := checkWebURL(v, false)
	*u = webURL(v)
	return err
}

// webURLs is a comma-separated list of absolute http or https URLs; a URL may have a query
// (webhook receivers often take their secret there).
// natsURLs is a comma-separated list of nats:// (or tls://) URLs with a host and port.
type natsURLs string

func (n *natsURLs) String() string { return string(*n) }
func (n *natsURLs) Set(v string) error {
	if v == "" {
		*n = ""
		return nil
	}
	for _, part := range strings.Split(v, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Port() == "" {
			return fmt.Errorf("%q is not a NATS URL such as nats://127.0.0.1:4222", strings.TrimSpace(part))
		}
	}
	*n = natsURLs(v)
	return nil
}

type webURLs []string

func (l *webURLs) String() string { return strings.Join(*l, ",") }
func (l *webURLs) Set(v string) error {
	var out []string
	for i, s := range strings.Split(v, ",") {
		u, err := checkWebURL(s, true)
		if err != nil {
			return fmt.Errorf("URL %d of the list: %w", i+1, err)
		}
		if u != "" {
			out = append(out, u)
		}
	}
	*l = out
	return nil
}

// checkWebURL trims v and checks that it is empty or an absolute http(s) URL.
func checkWebURL(v string, query bool) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	p, err := url.Parse(v)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Fragment != "" || (!query && p.RawQuery != "") {
		return "", fmt.Errorf("want an absolute http:// or https:// URL such as https://host:8080, got %q", v)
	}
	if !query {
		v = strings.TrimRight(v, "/")
	}
	return v, nil
}

// SpoolFolder is SpoolDir, or DataDir/spool when it is not set.
func (c Config) SpoolFolder() string {
	if c.SpoolDir != "" {
		return c.SpoolDir
	}
	return filepath.Join(c.DataDir, "spool")
}
