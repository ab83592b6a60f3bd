package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/event"
)

// eventSource is the simulated traffic: demo generators (one per demo.MaxRate events/s, each
// with its own seed, so event_ids never repeat), steady (no diurnal curve), no resent
// duplicates: every event offered is new, so rows stored must equal events acknowledged.
type eventSource struct {
	gens    []*demo.Generator
	created time.Time // the generators' start: their simulated clock begins here
}

func newEventSource(rate float64) (*eventSource, error) {
	n := int(math.Ceil(rate / demo.MaxRate))
	src := &eventSource{gens: make([]*demo.Generator, n), created: time.Now()}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cfg := demo.DefaultConfig()
			cfg.Rate = rate / float64(n)
			cfg.Diurnal = false
			cfg.DuplicateShare = 0
			cfg.Seed = int64(1000 + i)
			src.gens[i], errs[i] = demo.NewGenerator(cfg, src.created)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("event generator: %w", err)
		}
	}
	return src, nil
}

// load offers the source's events to the server: a pacer per generator cuts the events due
// into bodies of -batch events and queues them; -conns clients post them. The queue holds about
// one second of bodies; when it is full (every client is waiting for an answer) a body is not
// sent and its events count as unsent, so that the offered rate never bends to the server.
type load struct {
	bodies chan body
	cancel context.CancelFunc
	pacers sync.WaitGroup
	posts  sync.WaitGroup
	once   sync.Once

	offered, unsent, sent                   atomic.Int64 // events
	accepted, duplicates, rejected, refused atomic.Int64 // events, from the answers
	requests                                atomic.Int64
	mu                                      sync.Mutex
	statuses                                map[int]int    // answers by HTTP status; 0: no answer
	why                                     map[int]string // the first answer of each status but 202
}

type body struct {
	ndjson []byte
	events int
}

func startLoad(ctx context.Context, srv *server, src *eventSource, o *options) *load {
	ctx, cancel := context.WithCancel(ctx)
	queue := max(4, int(o.rate/float64(o.batch)))
	l := &load{bodies: make(chan body, queue), cancel: cancel, statuses: map[int]int{}, why: map[int]string{}}
	// Events are sent when due on the generators' clock shifted to now, and their occurred_at
	// moves by the same amount: they happened just before they are sent.
	shift := time.Since(src.created)
	for _, g := range src.gens {
		l.pacers.Go(func() { l.pace(ctx, g, shift, o.batch) })
	}
	client := &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			Proxy:               nil, // loopback only, whatever the environment says
			MaxIdleConnsPerHost: o.conns,
			DisableCompression:  true,
		},
	}
	for _, key := range srv.keys {
		l.posts.Go(func() {
			for b := range l.bodies {
				l.post(client, srv.url+"/v1/events", key, b)
			}
		})
	}
	return l
}

// pacerTick is how often a pacer takes the events due: 100 batches per second at 20,000
// events/s and 200 events per batch, so batches leave at about the rate they fill.
const pacerTick = 10 * time.Millisecond

func (l *load) pace(ctx context.Context, g *demo.Generator, shift time.Duration, batch int) {
	t := time.NewTicker(pacerTick)
	defer t.Stop()
	var due []event.Event
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due = append(due, g.Due(now.Add(-shift), math.MaxInt)...)
		}
		var full int
		for full = 0; len(due)-full >= batch; full += batch {
			l.offer(due[full:full+batch], shift)
		}
		due = append(due[:0], due[full:]...)
	}
}

func (l *load) offer(evs []event.Event, shift time.Duration) {
	var buf bytes.Buffer
	for i := range evs {
		evs[i].OccurredAt = evs[i].OccurredAt.Add(shift)
		line, err := json.Marshal(&evs[i])
		if err != nil {
			panic(fmt.Sprintf("encode a generated event: %v", err)) // a bug: events are plain data
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	l.offered.Add(int64(len(evs)))
	select {
	case l.bodies <- body{ndjson: buf.Bytes(), events: len(evs)}:
	default:
		l.unsent.Add(int64(len(evs)))
	}
}

// ingestAnswer is the body of a 202.
type ingestAnswer struct {
	Accepted   int64 `json:"accepted"`
	Duplicates int64 `json:"duplicates"`
	Rejected   int64 `json:"rejected"`
}

func (l *load) post(client *http.Client, url, key string, b body) {
	l.sent.Add(int64(b.events))
	l.requests.Add(1)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b.ndjson))
	if err != nil {
		panic(err) // a bug: the URL is ours
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := client.Do(req)
	if err != nil {
		l.count(0, err.Error(), b.events)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	var a ingestAnswer
	switch {
	case err != nil:
		l.count(0, "read the answer: "+err.Error(), b.events)
	case resp.StatusCode != http.StatusAccepted:
		l.count(resp.StatusCode, string(raw), b.events)
	case json.Unmarshal(raw, &a) != nil:
		l.count(0, "202 with an unreadable body: "+string(raw), b.events)
	default:
		l.count(http.StatusAccepted, "", 0)
		l.accepted.Add(a.Accepted)
		l.duplicates.Add(a.Duplicates)
		l.rejected.Add(a.Rejected)
	}
}

// count records an answer; refused are the events of a request that got no 202.
func (l *load) count(status int, why string, refused int) {
	l.refused.Add(int64(refused))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[status]++
	if _, seen := l.why[status]; !seen && status != http.StatusAccepted {
		l.why[status] = oneLine(why, 160)
	}
}

// stop ends the offering, lets the clients post what is queued and waits for their answers.
func (l *load) stop() {
	l.once.Do(func() {
		l.cancel()
		l.pacers.Wait()
		close(l.bodies)
		l.posts.Wait()
	})
}

// loadTotals is what the load did, for the report.
type loadTotals struct {
	Offered, Unsent, Sent                   int64
	Accepted, Duplicates, Rejected, Refused int64
	Requests                                int64
	Answers                                 string // by status
	Why                                     string // the first answer of each status but 202
}

func (l *load) totals() loadTotals {
	t := loadTotals{
		Offered: l.offered.Load(), Unsent: l.unsent.Load(), Sent: l.sent.Load(),
		Accepted: l.accepted.Load(), Duplicates: l.duplicates.Load(), Rejected: l.rejected.Load(),
		Refused: l.refused.Load(), Requests: l.requests.Load(),
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var answers, why []string
	for _, st := range slices.Sorted(maps.Keys(l.statuses)) {
		name := fmt.Sprint(st)
		if st == 0 {
			name = "no answer"
		}
		answers = append(answers, name+": "+thousands(int64(l.statuses[st])))
		if w := l.why[st]; w != "" {
			why = append(why, name+": "+w)
		}
	}
	t.Answers, t.Why = strings.Join(answers, ", "), strings.Join(why, "; ")
	return t
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
