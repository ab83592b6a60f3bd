package live

import (
	"fmt"
	"testing"
)

// testFrame is frame seq of feed f: with charts (full) or not.
func testFrame(f *feed, seq uint64, full bool) *frame {
	fr := &frame{feed: f, seq: seq, full: full, update: fmt.Appendf(nil, "update %d", seq)}
	fr.snapshot = fr.update
	if full {
		fr.snapshot = fmt.Appendf(nil, "snapshot %d", seq)
	}
	return fr
}

// subscribedClient is a client subscribed to f, as Hub.Subscribe leaves it.
func subscribedClient(f *feed) *Client {
	c := NewClient()
	c.resubscribed(f)
	return c
}

// drain returns every message the client has to send now.
func drain(c *Client) []string {
	var out []string
	for {
		msg, ok := c.TryNext()
		if !ok {
			return out
		}
		out = append(out, string(msg))
	}
}

func expect(t *testing.T, c *Client, want ...string) {
	t.Helper()
	got := drain(c)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages %q, want %q", got, want)
	}
}

func TestClientLatestWins(t *testing.T) {
	f := &feed{}
	c := subscribedClient(f)
	expect(t, c) // nothing yet
	for seq := uint64(1); seq <= 3; seq++ {
		if !c.offer(testFrame(f, seq, true), 5) {
			t.Fatalf("offer %d reported a slow consumer", seq)
		}
	}
	select {
	case <-c.Wake():
	default:
		t.Fatal("offer did not wake the writer")
	}
	expect(t, c, "snapshot 3") // the first message is a snapshot, of the newest frame only
	c.offer(testFrame(f, 4, true), 5)
	c.offer(testFrame(f, 5, true), 5)
	expect(t, c, "update 5") // afterwards updates, still the newest only
}

func TestClientWaitsForSnapshotWithCharts(t *testing.T) {
	f := &feed{}
	c := subscribedClient(f)
	// A feed that has never had data (degraded from its first tick) sends frames without
	// charts: the client shows them, and still expects a snapshot.
	c.offer(testFrame(f, 1, false), 5)
	expect(t, c, "update 1")
	c.offer(testFrame(f, 2, false), 5)
	expect(t, c, "update 2")
	c.offer(testFrame(f, 3, true), 5)
	expect(t, c, "snapshot 3")
	c.offer(testFrame(f, 4, true), 5)
	expect(t, c, "update 4")
}

func TestClientResubscribedGetsSnapshotAndIgnoresStaleFrames(t *testing.T) {
	a, b := &feed{}, &feed{}
	c := subscribedClient(a)
	c.offer(testFrame(a, 7, true), 5)
	c.offer(testFrame(a, 6, true), 5) // older than what it has: ignored
	expect(t, c, "snapshot 7")
	c.offer(testFrame(a, 7, true), 5) // already sent
	expect(t, c)

	c.offer(testFrame(a, 8, true), 5)
	c.resubscribed(b) // a new feed: what was pending is dropped
	c.offer(testFrame(a, 9, true), 5)
	expect(t, c) // a tick of the old feed that still had the client in its list
	c.offer(testFrame(b, 2, true), 5)
	expect(t, c, "snapshot 2")

	// Subscribing again to the same feed makes its last frame a snapshot again.
	c.resubscribed(b)
	c.offer(testFrame(b, 2, true), 5)
	expect(t, c, "snapshot 2")
}

func TestClientRepliesFirstAndBounded(t *testing.T) {
	f := &feed{}
	c := subscribedClient(f)
	c.offer(testFrame(f, 1, true), 5)
	for i := range maxReplies + 2 {
		c.Reply(fmt.Appendf(nil, "error %d", i))
	}
	expect(t, c, "error 0", "error 1", "error 2", "error 3", "snapshot 1")
	c.Reply([]byte("error 9"))
	expect(t, c, "error 9")
}

func TestClientSlowConsumer(t *testing.T) {
	f := &feed{}
	c := subscribedClient(f)
	const maxMissed = 3
	// The first offer fills the slot; each further one replaces a frame the writer never took.
	for seq := uint64(1); seq <= maxMissed; seq++ {
		if !c.offer(testFrame(f, seq, true), maxMissed) {
			t.Fatalf("offer %d: slow after %d missed frames, want %d", seq, seq-1, maxMissed)
		}
	}
	if c.offer(testFrame(f, maxMissed+1, true), maxMissed) {
		t.Fatalf("offer %d: not slow after %d missed frames", maxMissed+1, maxMissed)
	}

	// A writer that takes its frames is never slow.
	c = subscribedClient(f)
	for seq := uint64(1); seq <= 20; seq++ {
		if !c.offer(testFrame(f, seq, true), maxMissed) {
			t.Fatalf("offer %d: slow although every frame was taken", seq)
		}
		if seq%maxMissed == 0 {
			drain(c)
		}
	}
	// Without a limit (Subscribe's own offer), never slow.
	c = subscribedClient(f)
	for seq := uint64(1); seq <= 20; seq++ {
		if !c.offer(testFrame(f, seq, true), 0) {
			t.Fatalf("offer %d without a limit reported slow", seq)
		}
	}
}

func TestClientClose(t *testing.T) {
	f := &feed{}
	c := subscribedClient(f)
	c.offer(testFrame(f, 1, true), 5)
	c.Reply([]byte("error"))
	c.Close(SlowConsumer)
	c.Close(GoingAway) // the first reason wins
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed")
	}
	if c.Reason() != SlowConsumer {
		t.Errorf("reason %v, want slow consumer", c.Reason())
	}
	expect(t, c) // nothing more to send
	c.Reply([]byte("late"))
	if !c.offer(testFrame(f, 2, true), 1) || !c.offer(testFrame(f, 3, true), 1) {
		t.Error("a closed client reported slow")
	}
	expect(t, c)
}

func TestCloseReasonCodes(t *testing.T) {
	for _, tc := range []struct {
		r    CloseReason
		code int
		name string
	}{
		{ClientGone, 1000, "client gone"},
		{GoingAway, 1001, "going away"},
		{SlowConsumer, 1008, "slow consumer"},
		{MessageTooBig, 1009, "message too big"},
	} {
		if tc.r.Code() != tc.code || tc.r.String() != tc.name {
			t.Errorf("reason %d: code %d %q, want %d %q", tc.r, tc.r.Code(), tc.r, tc.code, tc.name)
		}
	}
}
