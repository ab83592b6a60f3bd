package ingestbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/event"
)

// eventPool generates n realistic, valid events with unique event_ids from the demo
// simulator: steady (no diurnal curve), no duplicates, 1% late, every occurred_at in the past.
func eventPool(n int, seed int64) ([]event.Event, error) {
	cfg := demo.DefaultConfig()
	cfg.Rate = demo.MaxRate
	cfg.Diurnal = false
	cfg.DuplicateShare = 0 // the benchmark counts rows: every event must be new
	cfg.LateShare = 0.01
	cfg.Seed = seed
	// The simulated clock advances about n / Rate seconds; start early enough that every event
	// lies in the past when it is sent.
	span := time.Duration(float64(n) / cfg.Rate * float64(time.Second))
	gen, err := demo.NewGenerator(cfg, time.Now().Add(-2*span-10*time.Minute))
	if err != nil {
		return nil, err
	}
	evs := gen.Generate(n)
	now := time.Now()
	ids := make(map[string]struct{}, n)
	for i := range evs {
		if errs := event.Validate(&evs[i], now, event.DefaultRetention); len(errs) > 0 {
			return nil, fmt.Errorf("generated event %d is invalid: %v", i, errs[0])
		}
		if _, dup := ids[evs[i].EventID]; dup {
			return nil, fmt.Errorf("generated event %d repeats event_id %s", i, evs[i].EventID)
		}
		ids[evs[i].EventID] = struct{}{}
	}
	return evs, nil
}

// ndjsonBodies encodes evs as NDJSON request bodies of per events each, as a source would
// send them (encoding/json, like the demo sender). Encoding happens before any timing.
func ndjsonBodies(evs []event.Event, per int) ([][]byte, error) {
	var bodies [][]byte
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := 0; i < len(evs); i += per {
		buf.Reset()
		for j := i; j < min(i+per, len(evs)); j++ {
			if err := enc.Encode(&evs[j]); err != nil {
				return nil, fmt.Errorf("encode event %s: %w", evs[j].EventID, err)
			}
		}
		bodies = append(bodies, bytes.Clone(buf.Bytes()))
	}
	return bodies, nil
}

// ingestClient posts NDJSON bodies to POST /v1/events.
type ingestClient struct {
	http     *http.Client
	endpoint string
	key      string
}

func newIngestClient(baseURL, key string, conns int) *ingestClient {
	return &ingestClient{
		http: &http.Client{
			Timeout: 60 * time.Second,
			Transport: &http.Transport{
				MaxIdleConns:        0, // no limit: MaxIdleConnsPerHost bounds it
				MaxIdleConnsPerHost: conns,
				IdleConnTimeout:     90 * time.Second,
				DisableCompression:  true,
			},
		},
		endpoint: baseURL + "/v1/events",
		key:      key,
	}
}

func (c *ingestClient) close() { c.http.CloseIdleConnections() }

// answer is what one POST got back.
type answer struct {
	Status     int
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
	Error      string
}

func (c *ingestClient) post(ctx context.Context, body []byte) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return answer{}, fmt.Errorf("read answer: %w", err)
	}
	a := answer{Status: res.StatusCode}
	if res.StatusCode == http.StatusAccepted {
		if err := json.Unmarshal(raw, &a); err != nil {
			return a, fmt.Errorf("202 with an unreadable body %q: %w", raw, err)
		}
	} else {
		a.Error = string(raw)
	}
	return a, nil
}

// statusCounts counts answers by HTTP status (0: transport error).
type statusCounts struct {
	mu    sync.Mutex
	n     map[int]int
	first map[int]string // the first answer body of each status but 202, to say why
}

func (s *statusCounts) add(status int) { s.addWhy(status, "") }

// addWhy counts an answer and keeps the first explanation of its status.
func (s *statusCounts) addWhy(status int, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n, s.first = map[int]int{}, map[int]string{}
	}
	s.n[status]++
	if _, ok := s.first[status]; !ok && why != "" {
		s.first[status] = shorten(why, 200)
	}
}

// why is the first explanation of each status but 202, or "".
func (s *statusCounts) why() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for st, w := range s.first {
		name := fmt.Sprint(st)
		if st == 0 {
			name = "transport error"
		}
		parts = append(parts, name+": "+w)
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (s *statusCounts) get(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[status]
}

// other is the count of answers that are none of the given statuses.
func (s *statusCounts) other(known ...int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for st, c := range s.n {
		if !slices.Contains(known, st) {
			n += c
		}
	}
	return n
}

func (s *statusCounts) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]int, 0, len(s.n))
	for k := range s.n {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		name := fmt.Sprint(k)
		if k == 0 {
			name = "transport error"
		}
		out += fmt.Sprintf("%s: %d", name, s.n[k])
	}
	return out
}

// latencies collects durations; percentiles are nearest-rank.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

type percentiles = benchkit.Summary[time.Duration]

func (l *latencies) percentiles() percentiles {
	l.mu.Lock()
	defer l.mu.Unlock()
	return benchkit.Summarize(l.d)
}
