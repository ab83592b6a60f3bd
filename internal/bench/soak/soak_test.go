package soak

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

func TestPromGauge(t *testing.T) {
	tests := []struct {
		name, text string
		want       int
		wantErr    bool
	}{
		{"found", "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 1234\ngo_threads 9\n", 1234, false},
		{"a longer name is another metric", "go_goroutines_total 5\ngo_goroutines 7\n", 7, false},
		{"exponent notation", "go_goroutines 1.5e+03\n", 1500, false},
		{"missing", "go_threads 9\n", 0, true},
		{"not a number", "go_goroutines many\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := promGauge(strings.NewReader(tt.text), "go_goroutines")
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("promGauge = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// samplesOf makes one sample per value of RSS (MiB), every 30 s from the start of the load.
func samplesOf(mib ...int64) []sample {
	var out []sample
	for i, v := range mib {
		out = append(out, sample{At: time.Duration(i) * 30 * time.Second, RSS: v << 20, Threads: 10, OpenFiles: 500, Goroutines: -1})
	}
	return out
}

func TestJudge(t *testing.T) {
	rss := figures[0]
	tests := []struct {
		name              string
		mib               []int64
		wantBase, wantEnd int64
		wantFlat          bool
	}{
		// Warm-up 1m: the samples from index 2 on count; three at each end.
		{"flat", []int64{10, 40, 50, 52, 51, 50, 53, 52, 51}, 51, 52, true},
		{"one high sample at the end is a collection, not a leak", []int64{10, 40, 50, 50, 50, 50, 50, 80, 50}, 50, 50, true},
		{"a steady climb is not flat", []int64{10, 40, 50, 52, 54, 56, 58, 60, 62}, 52, 60, false},
		{"too few samples: one each", []int64{10, 40, 50, 56}, 50, 56, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &report{o: &options{warmup: time.Minute, margin: 0.10}, samples: samplesOf(tt.mib...)}
			j := r.judge(rss)
			if j.base>>20 != tt.wantBase || j.end>>20 != tt.wantEnd || j.flat != tt.wantFlat {
				t.Errorf("judge: base %d MiB, end %d MiB, flat %v; want %d, %d, %v", j.base>>20, j.end>>20, j.flat, tt.wantBase, tt.wantEnd, tt.wantFlat)
			}
		})
	}
	t.Run("goroutines unknown are reported, not failed", func(t *testing.T) {
		r := &report{o: &options{warmup: time.Minute, margin: 0.10}, samples: samplesOf(10, 40, 50, 50, 50)}
		if j := r.judge(figures[1]); j.known {
			t.Errorf("goroutines known without a value: %+v", j)
		}
		if p := r.problems(); len(p) != 0 {
			t.Errorf("problems: %q", p)
		}
	})
	t.Run("threads have two of slack", func(t *testing.T) {
		r := &report{o: &options{warmup: 0, margin: 0.10}, samples: samplesOf(50, 50)}
		r.samples[1].Threads = 13 // 10 + 10% + 2 = 13
		if j := r.judge(figures[3]); !j.flat {
			t.Errorf("threads 10 → 13 not flat: %+v", j)
		}
	})
}

func TestProblemsStoredAcknowledged(t *testing.T) {
	r := &report{o: &options{margin: 0.10}, samples: samplesOf(50, 50), stored: 999, load: loadTotals{Accepted: 1000}}
	p := r.problems()
	if len(p) != 1 || !strings.Contains(p[0], "999 rows stored for 1,000 events acknowledged") {
		t.Errorf("problems = %q", p)
	}
}

func TestCloseReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"slow consumer", &websocket.CloseError{Code: websocket.ClosePolicyViolation}, "1008 policy violation: slow consumer"},
		{"going away", &websocket.CloseError{Code: websocket.CloseGoingAway}, "1001 going away"},
		{"unnamed code", &websocket.CloseError{Code: 4000}, "4000"},
		{"reset", io.ErrUnexpectedEOF, "1006 no close frame"},
		{"wrapped", errors.Join(errors.New("read"), &websocket.CloseError{Code: websocket.CloseGoingAway}), "1001 going away"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := closeReason(tt.err); got != tt.want {
				t.Errorf("closeReason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestThin(t *testing.T) {
	s := samplesOf(make([]int64, 61)...) // 30 minutes every 30 s, and the start
	got := thin(s)
	if len(got) != 13 || got[0].At != 0 || got[12].At != 30*time.Minute || got[1].At != 150*time.Second {
		t.Errorf("thin: %d samples, first %s, second %s, last %s", len(got), got[0].At, got[1].At, got[len(got)-1].At)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"defaults", nil, ""},
		{"short run", []string{"-duration", "90s", "-warmup", "30s"}, ""},
		{"warm-up as long as the run", []string{"-duration", "2m"}, "-duration 2m0s: at least -warmup"},
		{"argument", []string{"now"}, "unexpected argument"},
		{"batch over the server's limit", []string{"-batch", "20000"}, "-batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("parseFlags(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestGoroutines(t *testing.T) {
	const admin = "tba_test"
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+admin {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "# TYPE go_goroutines gauge\ngo_goroutines 321\n")
	})
	t.Run("from /metrics with the admin token", func(t *testing.T) {
		ts := httptest.NewServer(metrics)
		defer ts.Close()
		n, err := (&server{url: ts.URL, admin: admin}).goroutines(t.Context())
		if err != nil || n != 321 {
			t.Errorf("goroutines = %d, %v; want 321", n, err)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		ts := httptest.NewServer(metrics)
		defer ts.Close()
		if _, err := (&server{url: ts.URL, admin: "other"}).goroutines(t.Context()); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("err = %v, want the 401", err)
		}
	})
	t.Run("no /metrics yet", func(t *testing.T) {
		ts := httptest.NewServer(http.NotFoundHandler())
		defer ts.Close()
		if _, err := (&server{url: ts.URL, admin: admin}).goroutines(t.Context()); !errors.Is(err, errNoMetrics) {
			t.Errorf("err = %v, want errNoMetrics", err)
		}
	})
}

// TestScreensReconnect runs one screen against a server that sends two messages and then
// closes with 1008: the screen reads both, counts the close and dials again.
func TestScreensReconnect(t *testing.T) {
	upgrader := websocket.Upgrader{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tba_test" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		if _, sub, err := conn.ReadMessage(); err != nil || !strings.Contains(string(sub), `"type":"subscribe"`) {
			return
		}
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"snapshot","seq":1,"degraded":false}`))
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"update","seq":2,"degraded":true}`))
		_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "slow consumer"))
		_, _, _ = conn.ReadMessage() // until the screen closes its side
	}))
	defer ts.Close()

	scr := startScreens(t.Context(), &server{url: ts.URL, admin: "tba_test"}, 1)
	deadline := time.Now().Add(10 * time.Second)
	for scr.dials.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	scr.stop()
	got := scr.totals()
	if got.Dials < 2 || got.DialFailures != 0 || got.Messages < 2 || got.Snapshots < 1 || got.Degraded < 1 ||
		!strings.HasPrefix(got.Closes, "1008 policy violation: slow consumer: ") {
		t.Errorf("totals = %+v; want 2 dials or more, messages and a 1008 close", got)
	}
}
