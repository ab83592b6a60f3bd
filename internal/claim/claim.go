// Package claim decides which node stores an event when a client's retries reach several
// Truthboard nodes: the first node to claim an event's idempotency key in a NATS JetStream
// key-value bucket stores it; every other node answers it as a duplicate and leaves it out of
// its inserts.
//
// A claim is one key of the bucket: a hash of the event's key (event_id and its second), whose
// value is the claiming node's id. It is created only if absent, which JetStream decides on the
// bucket's stream leader, so of two nodes claiming at once exactly one wins, and a claim made
// on one node is seen by every other at once. Claims expire after the bucket's window
// (Options.Window): a retry older than that is caught by ClickHouse's own lookup of stored keys,
// as on one node. The bucket is replicated on Options.Replicas NATS servers, so a claim
// survives the loss of all but one of them.
//
// The same connection holds leases (Lease): a key of another bucket that one node at a time
// holds, so that what must happen once per cluster (delivering the alerts) runs on one node.
//
// A single node needs none of this: without a NATS URL the server runs no claims and ingest's
// ClickHouse lookup remains the only duplicate check.
package claim

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/truthboard/truthboard/internal/event"
)

// Options configure the claims.
type Options struct {
	// URL is the NATS server (or comma-separated servers of one cluster) with JetStream enabled.
	URL string
	// Bucket is the key-value bucket's name (default DefaultBucket).
	Bucket string
	// Window is how long a claim lives (default DefaultWindow): the longest delay after which a
	// retry reaching another node is still answered as a duplicate before ClickHouse has it.
	Window time.Duration
	// Replicas is how many NATS servers keep each claim (default 1; 3 on a NATS cluster).
	Replicas int
	// Timeout bounds connecting and each claim request (default DefaultTimeout).
	Timeout time.Duration
}

// Defaults for Options.
const (
	DefaultBucket  = "truthboard_claims"
	DefaultWindow  = time.Hour
	DefaultTimeout = 5 * time.Second
	// chunk is how many claims are in flight at once: JetStream answers them in order, and a
	// bounded window keeps the client's memory bounded whatever the batch.
	chunk = 4096
)

func (o Options) withDefaults() Options {
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// Claims is a connection to the claim bucket. Open it, close it with Close.
type Claims struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	opts    Options
	subject string // the bucket's subject prefix, "$KV.<bucket>."
}

// Open connects to NATS and creates the bucket, or takes the existing one (several nodes may
// open it at once: creating an identical bucket twice is a no-op).
func Open(ctx context.Context, opts Options, log *slog.Logger) (*Claims, error) {
	opts = opts.withDefaults()
	nc, err := nats.Connect(opts.URL,
		nats.Name("truthboard"),
		nats.Timeout(opts.Timeout),
		// Reconnect for ever: while NATS is away, accepted events wait in the spool and
		// their claims are made before they are inserted.
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("NATS connection lost; claims wait until it is back", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS connection back", "server", c.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s (-nats-url, TRUTHBOARD_NATS_URL): %w", opts.URL, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(chunk), jetstream.WithPublishAsyncTimeout(opts.Timeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("NATS JetStream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	// Every node must agree on how long a claim lasts: a node that believes claims last
	// longer than the bucket keeps them would take a retry of an expired claim for new and
	// store it twice (its drainer looks up only the events older than its window).
	if existing, err := js.KeyValue(ctx, opts.Bucket); err == nil {
		st, err := existing.Status(ctx)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("NATS key-value bucket %s: read its settings: %w", opts.Bucket, err)
		}
		if st.TTL() != opts.Window {
			nc.Close()
			return nil, fmt.Errorf("-claim-window (TRUTHBOARD_CLAIM_WINDOW) is %s, but the NATS bucket %s keeps claims for %s, as other nodes asked: give every node the same window (to change it, stop every node, then delete the bucket, e.g. `nats kv del %s`)",
				opts.Window, opts.Bucket, st.TTL(), opts.Bucket)
		}
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      opts.Bucket,
		Description: "Truthboard: which node stores each event (idempotency key claims)",
		History:     1,
		TTL:         opts.Window,
		Replicas:    opts.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("NATS key-value bucket %s (is JetStream enabled on %s, with at least %d servers for -claim-replicas?): %w", opts.Bucket, opts.URL, opts.Replicas, err)
	}
	return &Claims{nc: nc, js: js, kv: kv, opts: opts, subject: "$KV." + opts.Bucket + "."}, nil
}

// Close closes the connection.
func (c *Claims) Close() { c.nc.Close() }

// Claim claims keys for owner and reports, for each, whether owner holds its claim: made now,
// or made before by the same owner (a node retrying its own events). A key claimed by another
// owner is false: that node stores the event. An error means the claims could not all be
// decided (NATS away or too slow); claims made before it stand, and calling again with the
// same owner gives the same answers.
func (c *Claims) Claim(ctx context.Context, owner string, keys []event.Key) ([]bool, error) {
	held := make([]bool, len(keys))
	for start := 0; start < len(keys); start += chunk {
		end := min(start+chunk, len(keys))
		if err := c.claimChunk(ctx, owner, keys[start:end], held[start:end]); err != nil {
			return nil, err
		}
	}
	return held, nil
}

func (c *Claims) claimChunk(ctx context.Context, owner string, keys []event.Key, held []bool) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, len(keys))
	for i, k := range keys {
		msg := nats.NewMsg(c.subject + Name(k))
		msg.Data = []byte(owner)
		// Create only if absent: the stream refuses the message when the subject has one.
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		f, err := c.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("claim events: %w", err)
		}
		futures[i] = f
	}
	var taken []int
	for i, f := range futures {
		select {
		case <-f.Ok():
			held[i] = true
		case err := <-f.Err():
			if !exists(err) {
				return fmt.Errorf("claim events: %w", err)
			}
			taken = append(taken, i)
		case <-ctx.Done():
			return fmt.Errorf("claim events: NATS did not answer: %w", ctx.Err())
		}
	}
	// Rare (a retry, or a claim made before a crash): whose is it?
	for _, i := range taken {
		e, err := c.kv.Get(ctx, Name(keys[i]))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			// Expired between the two requests: claim it again.
			_, err = c.kv.Create(ctx, Name(keys[i]), []byte(owner))
			if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
				return fmt.Errorf("claim events: %w", err)
			}
			held[i] = err == nil
		case err != nil:
			return fmt.Errorf("claim events: who holds a claim: %w", err)
		default:
			held[i] = string(e.Value()) == owner
		}
	}
	return nil
}

// Owner returns the owner of key's claim, "" when it has none.
func (c *Claims) Owner(ctx context.Context, key event.Key) (string, error) {
	e, err := c.kv.Get(ctx, Name(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(e.Value()), nil
}

// Name is the bucket key of an event key: a hash, as event ids may hold any character and NATS
// keys only letters, digits and -_=/.
func Name(k event.Key) string {
	h := sha256.New()
	var sec [8]byte
	binary.BigEndian.PutUint64(sec[:], uint64(k.Second))
	h.Write(sec[:])
	h.Write([]byte(k.EventID))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// exists reports whether err is the stream's refusal of a create on a key that has a value.
func exists(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
