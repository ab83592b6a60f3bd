package live

import (
	"sync"
)

// CloseReason says why the server closed a screen's connection. Each maps to a WebSocket close
// code and is counted.
type CloseReason int

const (
	// ClientGone: the screen closed or the connection broke.
	ClientGone CloseReason = iota
	// GoingAway: the server is shutting down (1001).
	GoingAway
	// SlowConsumer: the screen did not take its messages or answer pings in time (1008).
	SlowConsumer
	// MessageTooBig: the screen sent a message over the read limit (1009).
	MessageTooBig
	// Revoked: the screen's credential was revoked or expired while it was connected (4401).
	Revoked
	// TooFast: the screen sent messages faster than its subscribe rate allows (1008).
	TooFast
	numCloseReasons
)

// Code is the WebSocket close code of the reason.
func (r CloseReason) Code() int {
	switch r {
	case GoingAway:
		return 1001
	case SlowConsumer, TooFast:
		return 1008
	case MessageTooBig:
		return 1009
	case Revoked:
		return 4401
	}
	return 1000
}

func (r CloseReason) String() string {
	return [...]string{"client gone", "going away", "slow consumer", "message too big", "credential revoked", "subscribing too fast"}[r]
}

// Label is the reason as the value of the label reason of truthboard_live_closes_total.
func (r CloseReason) Label() string {
	return [...]string{"client_gone", "going_away", "slow_consumer", "message_too_big", "revoked", "subscribing_too_fast"}[r]
}

// frame is one tick of a feed, encoded once and shared by every subscriber.
type frame struct {
	feed     *feed // the feed that made it
	seq      uint64
	snapshot []byte // full chart options, for a screen that has none yet
	update   []byte // series data only
	full     bool   // the snapshot holds charts; false while a feed has never had data
}

// Client is one screen's queue: a single latest-wins slot for feed frames (a frame not yet sent
// is replaced by a newer one) and a small bounded queue for answers to the client's own
// messages. The connection's one writer goroutine drains it with Next.
type Client struct {
	mu           sync.Mutex
	pending      *frame
	source       *feed  // the feed whose frames it takes; others are stale
	seq          uint64 // seq of the newest frame taken from source
	needSnapshot bool
	replies      [][]byte // bounded by maxReplies; further replies are dropped
	missed       int      // consecutive frames replaced before the writer took them
	closed       bool
	reason       CloseReason
	wake         chan struct{} // capacity 1: "something to do"
	done         chan struct{} // closed by Close

	feed *feed // the feed it is subscribed to, guarded by the Hub's lock
	// credential names who connected (a display token, a sign-in, the admin token), for the
	// Hub's bound on the feeds one credential holds; "" is not bounded.
	credential string
}

const maxReplies = 4

// NewClient returns a client with nothing to send, whose feeds count against no credential.
func NewClient() *Client { return NewClientOf("") }

// NewClientOf returns a client with nothing to send, connected with credential (any name that
// tells one credential from another): the Hub bounds the distinct feeds of each credential.
func NewClientOf(credential string) *Client {
	return &Client{wake: make(chan struct{}, 1), done: make(chan struct{}), needSnapshot: true, credential: credential}
}

func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// offer puts a feed frame in the slot. It reports false when the client has missed maxMissed
// frames in a row: its writer is stuck, and the caller closes it as a slow consumer.
func (c *Client) offer(f *frame, maxMissed int) bool {
	c.mu.Lock()
	// A frame of the feed the client just left (its tick copied the subscribers before the
	// move), or older than one it already has (Subscribe offering the feed's last frame while a
	// tick offers a newer one), is stale: a screen never goes back in time or to another view.
	if c.closed || f.feed != c.source || f.seq <= c.seq {
		c.mu.Unlock()
		return true
	}
	c.seq = f.seq
	if c.pending != nil {
		c.missed++
	} else {
		c.missed = 0
	}
	c.pending = f
	slow := maxMissed > 0 && c.missed >= maxMissed
	c.mu.Unlock()
	c.signal()
	return !slow
}

// resubscribed makes the next frame of f a snapshot (a new feed's charts differ) and frames of
// any other feed stale.
func (c *Client) resubscribed(f *feed) {
	c.mu.Lock()
	c.source, c.seq = f, 0
	c.needSnapshot, c.pending, c.missed = true, nil, 0
	c.mu.Unlock()
}

// Reply queues an answer to the client's own message (an error frame). When the queue is full
// the reply is dropped: a client flooding bad messages gets a few answers, not a backlog.
func (c *Client) Reply(msg []byte) {
	c.mu.Lock()
	if !c.closed && len(c.replies) < maxReplies {
		c.replies = append(c.replies, msg)
	}
	c.mu.Unlock()
	c.signal()
}

// Send queues a message that must not be lost (a command to a screen) and reports whether it
// was taken: it is not when the queue of replies is full or the client closed, and the caller
// keeps it to send again.
func (c *Client) Send(msg []byte) bool {
	c.mu.Lock()
	ok := !c.closed && len(c.replies) < maxReplies
	if ok {
		c.replies = append(c.replies, msg)
	}
	c.mu.Unlock()
	if ok {
		c.signal()
	}
	return ok
}

// Wake is signalled when there may be something to send: call TryNext until it reports none.
func (c *Client) Wake() <-chan struct{} { return c.wake }

// TryNext returns the next message to write, if any: replies first, then the newest frame (as
// a snapshot when the client has not had one).
func (c *Client) TryNext() (msg []byte, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, false
	case len(c.replies) > 0:
		msg = c.replies[0]
		c.replies = c.replies[1:]
		return msg, true
	case c.pending != nil:
		f := c.pending
		c.pending, c.missed = nil, 0
		if c.needSnapshot {
			// Until a frame with charts arrives, the client keeps waiting for a snapshot.
			c.needSnapshot = !f.full
			return f.snapshot, true
		}
		return f.update, true
	}
	return nil, false
}

// Close closes the client for reason; the first reason wins. Done is closed.
func (c *Client) Close(reason CloseReason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed, c.reason, c.pending, c.replies = true, reason, nil, nil
	close(c.done)
}

// Done is closed when the client is closed.
func (c *Client) Done() <-chan struct{} { return c.done }

// Reason is why the client was closed.
func (c *Client) Reason() CloseReason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}
