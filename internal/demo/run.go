package demo

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/event"
)

const (
	summaryInterval = 10 * time.Second
	requestTimeout  = 30 * time.Second
	// Without a Retry-After, retries back off exponentially between these.
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
	// maxRetryAfter caps a server's Retry-After, so that a wrong header cannot stall the demo.
	maxRetryAfter   = 10 * time.Minute
	maxLoggedErrors = 5
)

// Run sends simulated traffic to cfg.URL until ctx is cancelled or cfg.Duration has passed,
// and returns nil then. It returns an error for an invalid cfg and when the server refuses the
// key (401, 403) or has no /v1/events (404): retrying would not help. Other failures are
// logged and retried (429, 503 and 5xx, network errors: the same batch, so the server
// deduplicates it) or dropped (other 4xx). It logs a summary line every 10 seconds.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	start := clock()
	gen, err := NewGenerator(cfg, start)
	if err != nil {
		return err
	}
	s := &sender{
		cfg:      cfg,
		log:      log,
		client:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		endpoint: strings.TrimSuffix(cfg.URL, "/") + "/v1/events",
		last:     start,
	}
	defer s.client.CloseIdleConnections()
	log.Info("demo started", "url", s.endpoint, "rate", cfg.Rate, "diurnal", cfg.Diurnal,
		"incidents", cfg.Incidents.String(), "seed", cfg.Seed, "duration", cfg.Duration)

	tick := time.NewTicker(cfg.BatchInterval)
	defer tick.Stop()
	summary := time.NewTicker(summaryInterval)
	defer summary.Stop()
	var end <-chan time.Time
	stopAt := start.Add(cfg.Duration)
	if cfg.Duration > 0 {
		t := time.NewTimer(stopAt.Sub(clock())) // NewGenerator took some of the time
		defer t.Stop()
		end = t.C
	}
	announced := make([]int, len(cfg.Incidents))
	for {
		select {
		case <-ctx.Done():
			s.summary(clock(), "demo stopped")
			return nil
		case <-end:
			err := s.flush(ctx, gen, stopAt)
			s.summary(clock(), "demo finished")
			if err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		case <-summary.C:
			s.summary(clock(), "demo")
		case <-tick.C:
			now := clock()
			if cfg.Duration > 0 && now.After(stopAt) {
				now = stopAt
			}
			for _, inc := range announce(log, cfg.Incidents, announced, now.Sub(start)) {
				s.annotate(ctx, inc, start)
			}
			if err := s.flush(ctx, gen, now); err != nil {
				if ctx.Err() != nil {
					s.summary(clock(), "demo stopped")
					return nil
				}
				return err
			}
		}
	}
}

// announce logs the incidents that started or ended by the offset at, and returns those that
// started. state[i] is 0 before incident i, 1 during it, 2 after it.
func announce(log *slog.Logger, incidents Incidents, state []int, at time.Duration) (started []Incident) {
	for i, inc := range incidents {
		if state[i] == 0 && at >= inc.Start {
			state[i] = 1
			log.Info("incident started", "incident", inc.String())
			started = append(started, inc)
		}
		if state[i] == 1 && at >= inc.Start+inc.Duration {
			state[i] = 2
			log.Info("incident ended", "incident", inc.String())
		}
	}
	return started
}

// sender posts batches and keeps the counts of the summary.
type sender struct {
	cfg      Config
	log      *slog.Logger
	client   *http.Client
	endpoint string
	body     bytes.Buffer
	gz       *gzip.Writer

	sent, accepted, duplicates, rejected, retries int64
	last                                          time.Time // of the last summary
	lastSent                                      int64
}

// flush posts every event due at now, in batches of at most BatchSize.
func (s *sender) flush(ctx context.Context, gen *Generator, now time.Time) error {
	for {
		batch := gen.Due(now, s.cfg.BatchSize)
		if len(batch) == 0 {
			return nil
		}
		if err := s.send(ctx, batch); err != nil {
			return err
		}
	}
}

// send posts one batch until the server takes it, retrying the same bytes when asked to.
func (s *sender) send(ctx context.Context, batch []event.Event) error {
	body, err := s.encode(batch)
	if err != nil {
		return err
	}
	backoff := minBackoff
	nextBackoff := func() time.Duration {
		d := backoff + time.Duration(rand.Int64N(int64(backoff)/4+1)) // jitter spreads many demos
		backoff = min(2*backoff, maxBackoff)
		return d
	}
	for {
		resp, err := s.post(ctx, body)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var wait time.Duration
		switch {
		case err != nil:
			wait = nextBackoff()
			s.log.Warn("post events failed; retrying the same batch", "err", err, "events", len(batch), "retry_in", wait)
		case resp.status == http.StatusAccepted || resp.status == http.StatusOK:
			s.sent += int64(len(batch))
			s.accepted += resp.Accepted
			s.duplicates += resp.Duplicates
			s.rejected += resp.Rejected
			if len(resp.Errors) > 0 {
				s.log.Warn("server rejected events", "rejected", resp.Rejected, "errors", resp.errorText(batch))
			}
			return nil
		case resp.status == http.StatusTooManyRequests || resp.status == http.StatusServiceUnavailable:
			if d, ok := retryAfter(resp.retryAfter, time.Now()); ok {
				wait = min(d, maxRetryAfter)
			} else {
				wait = nextBackoff()
			}
			s.log.Warn("server busy; retrying the same batch", "status", resp.status, "retry_after", resp.retryAfter, "events", len(batch), "retry_in", wait)
		case resp.status == http.StatusRequestEntityTooLarge && len(batch) > 1:
			s.log.Warn("batch too large for the server; splitting it (lower --batch-size)", "events", len(batch))
			half := len(batch) / 2
			if err := s.send(ctx, batch[:half]); err != nil {
				return err
			}
			return s.send(ctx, batch[half:])
		case resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden:
			return fmt.Errorf("post events to %s: %s: the server refused the key: check --key", s.endpoint, http.StatusText(resp.status))
		case resp.status == http.StatusNotFound:
			return fmt.Errorf("post events to %s: 404 Not Found: check that --url is a Truthboard server", s.endpoint)
		case resp.status >= 500:
			wait = nextBackoff()
			s.log.Warn("server error; retrying the same batch", "status", resp.status, "error", resp.errorText(batch), "retry_in", wait)
		default: // 400 and other client errors: sending the same bytes again would fail again
			s.rejected += int64(len(batch))
			s.log.Error("server rejected the batch", "status", resp.status, "events", len(batch), "error", resp.errorText(batch))
			return nil
		}
		s.retries++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// encode writes the batch as NDJSON, gzipped if configured. The result is valid until the
// next call.
func (s *sender) encode(batch []event.Event) ([]byte, error) {
	s.body.Reset()
	var w io.Writer = &s.body
	if s.cfg.Gzip {
		if s.gz == nil {
			s.gz = gzip.NewWriter(&s.body)
		} else {
			s.gz.Reset(&s.body)
		}
		w = s.gz
	}
	enc := json.NewEncoder(w) // Encode ends each event with a newline: NDJSON
	enc.SetEscapeHTML(false)
	for i := range batch {
		if err := enc.Encode(&batch[i]); err != nil {
			return nil, fmt.Errorf("encode event %s: %w", batch[i].EventID, err)
		}
	}
	if s.gz != nil && s.cfg.Gzip {
		if err := s.gz.Close(); err != nil {
			return nil, fmt.Errorf("gzip batch: %w", err)
		}
	}
	return s.body.Bytes(), nil
}

// response is the server's answer to one post.
type response struct {
	status     int
	retryAfter string
	raw        string
	Accepted   int64 `json:"accepted"`
	Duplicates int64 `json:"duplicates"`
	Rejected   int64 `json:"rejected"`
	Errors     []struct {
		Index   int    `json:"index"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

func (s *sender) post(ctx context.Context, body []byte) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.Key)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("User-Agent", "truthboard-demo")
	if s.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	res, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	r := &response{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), raw: string(raw)}
	if err := json.Unmarshal(raw, r); err != nil && (r.status == http.StatusAccepted || r.status == http.StatusOK) {
		// Acknowledged but unreadable: the events are durable, only the counts are lost.
		s.log.Warn("unreadable response to an acknowledged batch", "status", r.status, "err", err)
		r.Accepted = 0
	}
	return r, nil
}

// errorText says in one line what the server reported, naming the events it rejected.
func (r *response) errorText(batch []event.Event) string {
	switch {
	case len(r.Errors) > 0:
		var b strings.Builder
		for i, e := range r.Errors {
			if i == maxLoggedErrors {
				fmt.Fprintf(&b, "; and %d more", len(r.Errors)-i)
				break
			}
			if i > 0 {
				b.WriteString("; ")
			}
			id := ""
			if e.Index >= 0 && e.Index < len(batch) {
				id = " (" + batch[e.Index].EventID + ")"
			}
			fmt.Fprintf(&b, "event %d%s: %s: %s", e.Index, id, e.Field, e.Message)
		}
		return b.String()
	case r.Error != "":
		return r.Error
	case r.Message != "":
		return r.Message
	}
	return shorten(strings.TrimSpace(r.raw), 500)
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// summary logs the counts so far and the rate since the previous summary.
func (s *sender) summary(now time.Time, msg string) {
	rate := 0.0
	if d := now.Sub(s.last).Seconds(); d > 0 {
		rate = float64(s.sent-s.lastSent) / d
	}
	s.last, s.lastSent = now, s.sent
	s.log.Info(msg, "sent", s.sent, "accepted", s.accepted, "duplicates", s.duplicates,
		"rejected", s.rejected, "retries", s.retries, "rate", strconv.FormatFloat(rate, 'f', 1, 64))
}

// annotate marks inc, of the run that started at start, on the server's trend charts: a region
// on its channel tagged "demo" (when AdminToken is set). A failure is logged: the traffic goes
// on.
func (s *sender) annotate(ctx context.Context, inc Incident, start time.Time) {
	if s.cfg.AdminToken == "" {
		return
	}
	from := start.Add(inc.Start)
	body, _ := json.Marshal(map[string]any{
		"time": from.UnixMilli(), "timeEnd": from.Add(inc.Duration).UnixMilli(), "channel": inc.Channel,
		"tags": []string{"demo", string(inc.Kind)},
		"text": fmt.Sprintf("Demo incident: %s %s for %s", inc.Channel, inc.Kind, inc.Duration),
	})
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(s.cfg.URL, "/")+"/v1/annotations", bytes.NewReader(body))
	if err != nil {
		s.log.Warn("incident not annotated", "incident", inc.String(), "err", err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		s.log.Warn("incident not annotated", "incident", inc.String(), "err", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		s.log.Warn("incident not annotated", "incident", inc.String(), "status", resp.StatusCode, "answer", strings.TrimSpace(string(msg)))
	}
}
