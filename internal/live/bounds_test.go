package live

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/telemetry"
)

// gatedSource answers like fixedSource, counts the queries of each region filter, and holds
// the queries of the region "held" until release is closed.
type gatedSource struct {
	*fixedSource
	release chan struct{}
	started chan struct{} // gets a value when a held query starts

	mu       sync.Mutex
	byRegion map[string]int
}

func newGatedSource() *gatedSource {
	return &gatedSource{fixedSource: newFixedSource(100), release: make(chan struct{}),
		started: make(chan struct{}, 16), byRegion: map[string]int{}}
}

func (s *gatedSource) Rollup(ctx context.Context, q rollup.Query, p rollup.Plan) ([]rollup.Group, error) {
	region := ""
	if r := *q.Filters.Field("region"); len(r) > 0 {
		region = r[0]
	}
	s.mu.Lock()
	s.byRegion[region]++
	s.mu.Unlock()
	if region == "held" {
		s.started <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.fixedSource.Rollup(ctx, q, p)
}

func (s *gatedSource) queriesOf(region string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byRegion[region]
}

// A screen that subscribes and moves on before its feed's first query leaves a feed that
// never queries: a flood of subscriptions costs the database nothing for the feeds it drops.
// The only live query slot is held, so the abandoned feed's first tick is still waiting for it
// when the screen moves on.
func TestHubAbandonedFeedNeverQueries(t *testing.T) {
	src := newGatedSource()
	h := newTestHub(t, src, Options{MaxQueries: 1})
	holder := NewClient()
	if err := h.Subscribe(holder, subscription(t, `{"type":"subscribe","view":"executive","filters":{"region":["held"]}}`)); err != nil {
		t.Fatal(err)
	}
	<-src.started // the holder's feed has the only slot

	c := NewClient()
	for _, region := range []string{"abandoned-1", "abandoned-2", "kept"} {
		if err := h.Subscribe(c, subscription(t, `{"type":"subscribe","view":"executive","filters":{"region":["`+region+`"]}}`)); err != nil {
			t.Fatal(err)
		}
	}
	close(src.release)
	m := nextWhere(t, c, "of the kept feed", func(m received) bool { return m.Type == "snapshot" })
	if m.Feed != "executive?region=kept&window=5m" {
		t.Fatalf("snapshot of %q, want the kept feed", m.Feed)
	}
	for _, region := range []string{"abandoned-1", "abandoned-2"} {
		if n := src.queriesOf(region); n != 0 {
			t.Errorf("the feed of region %s, abandoned before its first tick, ran %d queries; want none", region, n)
		}
	}
	if st := h.Stats(); st.Feeds != 2 {
		t.Errorf("%d feeds, want 2 (the holder's and the kept one)", st.Feeds)
	}
}

// The bounds on distinct feeds: per credential, then per server. A refused subscribe leaves
// the screen on the feed it had, says why, and is counted.
func TestHubBoundsFeeds(t *testing.T) {
	m := telemetry.New()
	h := newTestHub(t, newFixedSource(100), Options{MaxFeeds: 3, MaxFeedsPerCredential: 2, Telemetry: m})
	sub := func(region string) Subscription {
		return subscription(t, `{"type":"subscribe","view":"executive","filters":{"region":["`+region+`"]}}`)
	}
	refused := func(err error, reason string) {
		t.Helper()
		var re *RefusedError
		if !errors.As(err, &re) || re.Reason != reason || re.Message == "" {
			t.Fatalf("subscribe: %v, want a refusal for %s", err, reason)
		}
	}
	wall1, wall2, wall3 := NewClientOf("display token a"), NewClientOf("display token a"), NewClientOf("display token a")
	for _, step := range []struct {
		c      *Client
		region string
	}{{wall1, "a"}, {wall2, "b"}, {wall3, "a"}} {
		if err := h.Subscribe(step.c, sub(step.region)); err != nil {
			t.Fatalf("region %s: %v", step.region, err)
		}
	}
	// A third distinct feed of the same token is refused; a feed it already holds is not.
	refused(h.Subscribe(wall3, sub("c")), telemetry.LiveRefusedFeedsPerCredential)
	if wall3.feed == nil || wall3.feed.sub.Key != sub("a").Key {
		t.Fatalf("the refused screen left its feed")
	}
	// wall2 is alone on b for its token: moving frees b, so it may.
	if err := h.Subscribe(wall2, sub("c")); err != nil {
		t.Fatalf("moving the token's only screen of a feed: %v", err)
	}

	// Another credential takes the server's third feed; then the server is full.
	other := NewClientOf("session x")
	if err := h.Subscribe(other, sub("d")); err != nil {
		t.Fatal(err)
	}
	refused(h.Subscribe(NewClientOf("session y"), sub("e")), telemetry.LiveRefusedFeedsPerServer)
	if err := h.Subscribe(NewClientOf("session y"), sub("d")); err != nil {
		t.Errorf("a running feed must stay open to others: %v", err)
	}
	// A client without a credential name is bounded by the server only.
	if err := h.Subscribe(NewClient(), sub("a")); err != nil {
		t.Error(err)
	}

	// Leaving gives the places back.
	h.Leave(other, ClientGone)
	if st := h.Stats(); st.Feeds != 3 {
		t.Fatalf("%d feeds after a screen of d left with another still on it, want 3", st.Feeds)
	}
	h.Leave(wall2, ClientGone)
	if err := h.Subscribe(NewClientOf("session z"), sub("f")); err != nil {
		t.Errorf("after c stopped, a new feed: %v", err)
	}
	for reason, want := range map[string]float64{telemetry.LiveRefusedFeedsPerCredential: 1, telemetry.LiveRefusedFeedsPerServer: 1} {
		if got := testutil.ToFloat64(m.LiveRefused.WithLabelValues(reason)); got != want {
			t.Errorf("truthboard_live_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}
