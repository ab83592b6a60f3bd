package livebench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"

	"github.com/truthboard/truthboard/internal/live"
)

// The fan-out screens parse only the first headBytes of a message: the fields they need must
// come first in live.Message, even for the longest feed key the bench subscribes to.
func TestParseHeadOfRealMessage(t *testing.T) {
	longest := ""
	for _, s := range spreadFilters() {
		sub, err := live.ParseClientMessage(s.message())
		if err != nil {
			t.Fatalf("the bench's subscription %s is refused: %v", s.message(), err)
		}
		if len(sub.Key) > len(longest) {
			longest = sub.Key
		}
	}
	tick := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC)
	for _, tc := range []struct {
		typ      string
		degraded bool
	}{{"snapshot", false}, {"update", true}} {
		b, err := json.Marshal(live.Message{
			Type: tc.typ, Seq: 4242, Feed: longest, View: "executive", Tick: &tick, NewestEvent: &tick,
			Degraded: tc.degraded, Problem: "the database did not answer; showing the last figures",
			Data: map[string]string{"big": strings.Repeat("x", 5000)},
		})
		if err != nil {
			t.Fatal(err)
		}
		h, ok := parseHead(b[:min(len(b), headBytes)])
		if !ok || h.typ != tc.typ || h.seq != 4242 || h.tick != tick.UnixNano() || h.degraded != tc.degraded {
			t.Fatalf("parseHead(%.300s...) = %+v, %v", b, h, ok)
		}
	}
	if h, ok := parseHead(live.ErrorMessage(os.ErrInvalid)); !ok || h.typ != "error" {
		t.Fatalf("error message: %+v, %v", h, ok)
	}
	if _, ok := parseHead([]byte(`{"type":"update","seq":`)); ok {
		t.Fatal("a truncated head parsed")
	}
}

func TestSummarize(t *testing.T) {
	var xs []int64
	for i := 100; i >= 1; i-- {
		xs = append(xs, int64(i)*int64(time.Millisecond))
	}
	d := summarize(xs)
	if d.N != 100 || d.P50 != 50 || d.P90 != 90 || d.P99 != 99 || d.Max != 100 {
		t.Fatalf("summarize(1..100 ms) = %+v", d)
	}
	if d := summarize(nil); d.N != 0 {
		t.Fatalf("summarize(nil) = %+v", d)
	}
}

func TestMatchMarkers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	markers := []marker{
		{sent: at(100), acked: at(200), occurred: at(100), ok: true},
		{sent: at(350), acked: at(450), occurred: at(350), ok: false},
		{sent: at(600), acked: at(700), occurred: at(600), ok: true},
	}
	msg := func(recv, tick int, events uint64, newest int) fullMsg {
		m := fullMsg{recv: at(recv)}
		tk, nw := at(tick), at(newest)
		m.Tick, m.NewestEvent = &tk, &nw
		m.Data.KPIs.Events = events
		return m
	}
	// 7 markers of an earlier run in the window; marker 1 shows at 1050 ms, marker 3 (the
	// second acknowledged) at 2050 ms.
	mk := []fullMsg{msg(50, 0, 7, 0), msg(1050, 1000, 8, 0), msg(2050, 2000, 9, 0)}
	wall := []fullMsg{msg(60, 0, 0, -1000), msg(1060, 1000, 0, 0), msg(2060, 2000, 0, 1000)}
	var res freshResult
	matchMarkers(&res, markers, mk, wall)
	if res.Markers != 2 || res.Failed != 1 || res.NotSeen != 0 {
		t.Fatalf("counts = %+v", res)
	}
	if res.Fresh.P50 != 950 || res.Fresh.Max != 1450 {
		t.Fatalf("freshness = %+v, want 950 and 1450 ms", res.Fresh)
	}
	if res.AckToTick.P50 != 800 || res.TickToRecv.Max != 50 {
		t.Fatalf("parts = %+v %+v", res.AckToTick, res.TickToRecv)
	}
	// Marker 1's second (0 s) is covered at 1060 ms; marker 3's (0 s as well) at 1060 ms.
	if res.Second.P50 != 460 || res.Second.Max != 960 {
		t.Fatalf("second covered = %+v", res.Second)
	}
}

func TestWriteSectionKeepsTheOthers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := writeSection(file, "Live", "first\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != benchkit.Intro+"\n## Live\n\nfirst\n" {
		t.Fatalf("new file:\n%s", b)
	}
	others := "# Benchmarks\n\nIntro.\n\n## Ingest\n\ningest text\n### Sub\n\n## Live\n\nold live\n### Old sub\n\n## Metrics\n\nmetrics text\n"
	if err := os.WriteFile(file, []byte(others), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(file, "Live", "new live\n"); err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\nIntro.\n\n## Ingest\n\ningest text\n### Sub\n\n## Live\n\nnew live\n\n## Metrics\n\nmetrics text\n"
	if b, _ := os.ReadFile(file); string(b) != want {
		t.Fatalf("replaced:\n%s\nwant:\n%s", b, want)
	}
	if err := os.WriteFile(file, []byte("# Benchmarks\n\n## Ingest\n\ningest text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(file, "Live", "appended\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "# Benchmarks\n\n## Ingest\n\ningest text\n\n## Live\n\nappended\n" {
		t.Fatalf("appended:\n%s", b)
	}
}

func TestWriteLiveSectionKeepsTheProfile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "benchmarks.md")
	start := "# Benchmarks\n\n## Ingest\n\ningest\n\n## Live\n\nold body\n### Reading\n\nold reading\n\n## Metrics\n\nmetrics\n"
	if err := os.WriteFile(file, []byte(start), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeLiveSection(file, "", profileHeading+"\n\nprofile one\n"); err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\n## Ingest\n\ningest\n\n## Live\n\nold body\n### Reading\n\nold reading\n\n" + profileHeading + "\n\nprofile one\n\n## Metrics\n\nmetrics\n"
	if b, _ := os.ReadFile(file); string(b) != want {
		t.Fatalf("after the profile:\n%s\nwant:\n%s", b, want)
	}
	if err := writeLiveSection(file, "new body\n", ""); err != nil {
		t.Fatal(err)
	}
	want = "# Benchmarks\n\n## Ingest\n\ningest\n\n## Live\n\nnew body\n\n" + profileHeading + "\n\nprofile one\n\n## Metrics\n\nmetrics\n"
	if b, _ := os.ReadFile(file); string(b) != want {
		t.Fatalf("after a run:\n%s\nwant:\n%s", b, want)
	}
	if err := writeLiveSection(file, "", profileHeading+"\n\nprofile two\n"); err != nil {
		t.Fatal(err)
	}
	want = "# Benchmarks\n\n## Ingest\n\ningest\n\n## Live\n\nnew body\n\n" + profileHeading + "\n\nprofile two\n\n## Metrics\n\nmetrics\n"
	if b, _ := os.ReadFile(file); string(b) != want {
		t.Fatalf("after a second profile:\n%s\nwant:\n%s", b, want)
	}
}
