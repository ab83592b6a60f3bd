package alertbench

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// TestTinyRun runs a small measurement on the test ClickHouse: 20 events/s, 40 minutes of
// history, 5 minutes of steady traffic, one voice outage, a week earlier filled. The outage must
// fire an alert on voice, every evaluation must run the default rules' four queries (the volume
// rule's included), the live feed must be measured beside them, and the report must say so.
func TestTinyRun(t *testing.T) {
	o := DefaultOptions()
	o.ClickHouse.Addr = storetest.Addr()
	o.Rate, o.Seeds, o.IncidentSeeds = 20, []int64{7}, 1
	o.Baseline, o.Steady = 40*time.Minute, 5*time.Minute
	o.Incidents = []Incident{{Channel: "voice", Kind: demo.Outage}}
	o.IncidentLength, o.Slot, o.Step, o.LiveEvery = 10*time.Minute, 25*time.Minute, 30*time.Second, 10
	o.Log = slog.New(slog.DiscardHandler)
	rep, err := Measure(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(rep.Runs))
	}
	run := rep.Runs[0]
	if want := int((o.Steady + o.Slot) / o.Step); run.Evaluations != want || len(run.EvalMS) != want {
		t.Errorf("%d evaluations (%d timed), want %d", run.Evaluations, len(run.EvalMS), want)
	}
	// Two reads (15 minutes against 3 hours, an hour against last week): their current windows at
	// every evaluation; a baseline only when it moved, as it is cut at whole minutes from the
	// start of its window: the 15-minute window starts on 30 s steps (overview_30s), so its
	// baseline moves every minute (every second evaluation here), and the hour starts on 2-minute
	// steps (overview_2m), so its baseline moves every 2 minutes (every fourth evaluation).
	baselines := 0
	for i, q := range run.EvalQueries {
		if q < 2 || q > 4 || i == 0 && q != 4 {
			t.Fatalf("evaluation %d ran %d queries, want the 2 current windows and 0 to 2 baselines, both at the first (%v)", i, q, run.EvalQueries[:i+1])
		}
		baselines += q - 2
	}
	if n := len(run.EvalQueries); baselines < n/2+n/4-2 || baselines > n/2+n/4+2 {
		t.Errorf("%d baseline reads over %d evaluations, want about %d (one a minute and one every 2 minutes): %v", baselines, n, n/2+n/4, run.EvalQueries)
	}
	if len(run.LiveMS) != 6 || run.LiveQueries[0] < 1 {
		t.Errorf("live ticks %v with %v queries, want 6 measured (one every 10 evaluations), each with its queries", run.LiveMS, run.LiveQueries)
	}
	if run.Events < 50_000 || run.LastWeekEvents < 20_000 {
		t.Errorf("%d events stored and %d a week earlier: want about 54,000 and 36,000", run.Events, run.LastWeekEvents)
	}
	inc := run.Incidents[0]
	if len(inc.OnChannel) == 0 {
		t.Fatalf("the voice outage fired nothing on voice; elsewhere: %+v", inc.Elsewhere)
	}
	if first := inc.OnChannel[0]; first.Channel != "voice" || first.After < 2*time.Minute || first.After > o.IncidentLength {
		t.Errorf("first alert of the voice outage %+v, want one on voice within the outage, after the 2 minutes pending", first)
	}
	if run.Compare == nil || len(run.Compare.Incidents) != 1 || len(run.Compare.Incidents[0].OnChannel) == 0 {
		t.Errorf("the rules at -compare-alpha %v: %+v, want the voice outage to fire there too", o.CompareAlpha, run.Compare)
	}
	t.Logf("false alarms %v; voice outage: %+v", run.FalseAlarms, inc.OnChannel)

	md := rep.Markdown("go run ./cmd/truthboard-tools alert-bench -seeds 7", benchkit.DescribeMachine(), time.Now())
	for _, want := range []string{"## " + Title, "alert-bench -seeds 7", "| `voice:outage` |", "| alert evaluation, default rules | 60 |", "| live executive feed, 5m | 6 |", "at p < 0.0001 instead"} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
}

// TestFlags: the flags reach the options, and a wrong one is refused as a usage error.
func TestFlags(t *testing.T) {
	o, out, err := parseFlags([]string{"-seeds", "4,5", "-incidents", "chat:spike,web:outage", "-step", "10s", "-out", "x.md"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Seeds) != 2 || o.Seeds[1] != 5 || len(o.Incidents) != 2 || o.Incidents[1] != (Incident{"web", demo.Outage}) || o.Step != 10*time.Second || out != "x.md" {
		t.Errorf("parsed %+v, out %q", o, out)
	}
	if o, _, _ := parseFlags([]string{"-incidents", "none"}); len(o.Incidents) != 0 {
		t.Errorf("-incidents none gave %v", o.Incidents)
	}
	o, _, _ = parseFlags([]string{"-incidents", "tv:outage"})
	if err := o.validate(); err == nil || !strings.Contains(err.Error(), `unknown channel "tv"`) {
		t.Errorf("an unknown channel: %v", err)
	}
	if _, _, err := parseFlags([]string{"-seeds", "one"}); err == nil || !strings.Contains(err.Error(), "-seeds") {
		t.Errorf("a bad seed: %v", err)
	}
}
