package claim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeaseOptions configure a Lease.
type LeaseOptions struct {
	// Bucket is the key-value bucket of the leases (default DefaultLeaseBucket). Its entries
	// live TTL: every lease of one bucket must have the same TTL.
	Bucket string
	// Key names what the lease is for (for example "alert-evaluator").
	Key string
	// Owner is this node's id, unique among the nodes.
	Owner string
	// Renew is how often the holder renews the lease, and others try to take it.
	Renew time.Duration
	// TTL is how long a lease lives without renewal (default three Renew): a holder that
	// could not renew for that long has lost it, and another node takes it.
	TTL time.Duration
}

// DefaultLeaseBucket is the bucket of the leases.
const DefaultLeaseBucket = "truthboard_leases"

// Lease is one key of a leases bucket that at most one node holds at a time: the node that
// creates the key holds it, renews it at every Renew by updating it at the revision it last
// wrote (so a renewal after another node took it fails), and deletes it at Stop so another
// node takes over at once. A holder that cannot renew (NATS away, or too slow) stops holding
// it TTL after its last renewal began, when the bucket drops the key and another node can
// create it: two nodes never hold it at once, as long as their clocks run at the same speed.
type Lease struct {
	claims *Claims
	kv     jetstream.KeyValue
	opts   LeaseOptions
	log    *slog.Logger

	// until is when the holding ends (Unix nanoseconds), 0 when not held.
	until    atomic.Int64
	revision uint64 // of the holder's last write; only the loop touches it

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Lease opens the lease of opts.Key (creating the bucket, or taking the existing one). Start
// tries to take it and keeps it; Stop lets it go.
func (c *Claims) Lease(ctx context.Context, opts LeaseOptions, log *slog.Logger) (*Lease, error) {
	if opts.Bucket == "" {
		opts.Bucket = DefaultLeaseBucket
	}
	if opts.Renew <= 0 {
		return nil, errors.New("lease: the renewal interval must be positive")
	}
	if opts.TTL <= 0 {
		opts.TTL = 3 * opts.Renew
	}
	if opts.TTL <= opts.Renew {
		return nil, fmt.Errorf("lease: the TTL (%s) must be longer than the renewal interval (%s)", opts.TTL, opts.Renew)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	kv, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      opts.Bucket,
		Description: "Truthboard: which node does what only one node may do (leases)",
		History:     1,
		TTL:         opts.TTL,
		Replicas:    c.opts.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("NATS key-value bucket %s: %w", opts.Bucket, err)
	}
	return &Lease{claims: c, kv: kv, opts: opts, log: log}, nil
}

// Held reports whether this node holds the lease now.
func (l *Lease) Held() bool { return time.Now().UnixNano() < l.until.Load() }

// Start tries to take the lease now, then keeps trying (or renewing) every Renew until Stop.
func (l *Lease) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan struct{})
	l.renew(ctx)
	go l.run(ctx)
}

// Stop ends the loop and, if this node holds the lease, deletes it so another takes it at its
// next try.
func (l *Lease) Stop() {
	l.once.Do(func() {
		if l.cancel == nil {
			return
		}
		l.cancel()
		<-l.done
		if l.Held() {
			l.until.Store(0)
			ctx, cancel := context.WithTimeout(context.Background(), l.claims.opts.Timeout)
			defer cancel()
			if err := l.kv.Delete(ctx, l.opts.Key, jetstream.LastRevision(l.revision)); err != nil {
				l.log.Warn("lease not let go; another node takes it when it expires", "lease", l.opts.Key, "ttl", l.opts.TTL, "err", err)
			}
		}
	})
}

func (l *Lease) run(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.opts.Renew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.renew(ctx)
	}
}

// renew renews the lease if held, else tries to take it.
func (l *Lease) renew(ctx context.Context) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, min(l.claims.opts.Timeout, l.opts.Renew))
	defer cancel()
	held := l.Held()
	var rev uint64
	var err error
	if held {
		rev, err = l.kv.Update(ctx, l.opts.Key, []byte(l.opts.Owner), l.revision)
	} else {
		rev, err = l.kv.Create(ctx, l.opts.Key, []byte(l.opts.Owner))
	}
	switch {
	case err == nil:
		l.revision = rev
		// The bucket keeps the key TTL after it was written, which is after began.
		l.until.Store(began.Add(l.opts.TTL).UnixNano())
		if !held {
			l.log.Info("lease taken", "lease", l.opts.Key, "owner", l.opts.Owner)
		}
	case held:
		// Another node took it, or NATS did not answer: keep holding only while the last
		// write may still stand, and try again at the next interval.
		if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			l.until.Store(0)
			l.log.Warn("lease lost", "lease", l.opts.Key, "err", err)
		} else {
			l.log.Warn("lease not renewed", "lease", l.opts.Key, "err", err)
		}
	case !errors.Is(err, jetstream.ErrKeyExists):
		l.log.Debug("lease not taken", "lease", l.opts.Key, "err", err)
	}
}
