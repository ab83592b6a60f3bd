package rollup_test

import (
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/rollup"
)

// demoSlot is the resolution at which TestJudgementOnDemoTraffic sums the simulated events.
const demoSlot = 10 * time.Second

type demoCell struct{ moment, channel string }

// TestJudgementOnDemoTraffic runs the demo's simulated journeys (40 events/s, flat rate) for an
// hour with a voice outage from minute 40 to 55, and judges every moment × channel cell's 5-minute
// window against the 5 minutes before, as the executive view does: in steady traffic almost no
// figure may be coloured, and five minutes into the outage the voice contacts must be judged
// worse on abandonment, wait p90 and CSAT.
func TestJudgementOnDemoTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates an hour of demo traffic")
	}
	start := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	cfg := demo.DefaultConfig()
	cfg.Rate, cfg.Diurnal, cfg.DuplicateShare, cfg.LateShare, cfg.Seed = 40, false, 0, 0, 7
	cfg.Incidents = demo.Incidents{{Channel: "voice", Kind: demo.Outage, Start: 40 * time.Minute, Duration: 15 * time.Minute}}
	gen, err := demo.NewGenerator(cfg, start)
	if err != nil {
		t.Fatal(err)
	}
	const slots = 60 * int(time.Minute/demoSlot)
	cells := map[demoCell]*[slots]rollup.Counts{}
	for {
		e := gen.Next()
		i := int(e.OccurredAt.Sub(start) / demoSlot)
		if i >= slots {
			break
		}
		k := demoCell{e.Moment, e.Channel}
		if cells[k] == nil {
			cells[k] = new([slots]rollup.Counts)
		}
		cells[k][i].AddEvent(&e)
	}
	window := func(c *[slots]rollup.Counts, end time.Duration) (sum rollup.Counts) {
		for i := int((end - 5*time.Minute) / demoSlot); i < int(end/demoSlot); i++ {
			sum.Add(&c[i])
		}
		return sum
	}
	judgeAt := func(c *[slots]rollup.Counts, end time.Duration) *rollup.Judgements {
		return judged(window(c, end), window(c, end-5*time.Minute))
	}
	// The figures a screen colours (volume never is).
	coloured := func(js *rollup.Judgements, fn func(name string, j rollup.Judgement)) {
		js.Each(func(name string, j rollup.Judgement) {
			if name != "events" {
				fn(name, j)
			}
		})
	}

	// Steady traffic: every 30 s from minute 10 (a full previous period) to minute 40.
	var tested, colouredN, instants int
	for end := 10 * time.Minute; end <= 40*time.Minute; end += 30 * time.Second {
		instants++
		for k, c := range cells {
			coloured(judgeAt(c, end), func(name string, j rollup.Judgement) {
				if j.Tested {
					tested++
				}
				if j.Verdict != rollup.Neutral {
					colouredN++
					t.Logf("steady traffic, minute %v: %s/%s %s %s (p = %.2g, n = %d / %d)",
						end.Minutes(), k.moment, k.channel, name, j.Verdict, j.P, j.N, j.NPrevious)
				}
			})
		}
	}
	t.Logf("steady traffic: %d instants, %d cells, %d figures tested, %d coloured (%.3f%%)",
		instants, len(cells), tested, colouredN, 100*float64(colouredN)/float64(max(1, tested)))
	if tested < 1000 {
		t.Errorf("only %d figures had enough data to be tested: the simulation is too thin to say anything", tested)
	}
	// At JudgeAlpha = 0.1% two-sided, chance alone colours about 0.1% of the tested figures
	// (the events of one journey are not independent, which adds a little). At 1% this seed
	// coloured 0.56%: a coloured cell on the screen almost half of the time.
	if colouredN*1000 > 3*tested {
		t.Errorf("steady traffic coloured %d of %d tested figures, want under 0.3%%", colouredN, tested)
	}

	// Five minutes into the outage: the window is all outage, the previous period all steady.
	voice := cells[demoCell{"service", "voice"}]
	if voice == nil {
		t.Fatal("no service/voice events")
	}
	js := judgeAt(voice, 45*time.Minute)
	for _, f := range []struct {
		name string
		j    rollup.Judgement
	}{{"abandonment", js.Abandonment}, {"wait_p90_ms", js.WaitP90MS}, {"csat", js.CSAT}} {
		if f.j.Verdict != rollup.Worse {
			t.Errorf("service/voice %s five minutes into the outage: %s (%s, p = %.2g, n = %d / %d), want worse",
				f.name, f.j.Verdict, f.j.Reason, f.j.P, f.j.N, f.j.NPrevious)
		}
	}
	// How soon after the outage starts each figure turns worse, at 10-second ticks.
	for _, name := range []string{"abandonment", "wait_p90_ms", "csat", "negative_rate"} {
		first := time.Duration(-1)
		for end := 40 * time.Minute; end <= 45*time.Minute && first < 0; end += demoSlot {
			if j, _ := judgeAt(voice, end).Get(name); j.Verdict == rollup.Worse {
				first = end - 40*time.Minute
			}
		}
		t.Logf("service/voice %s judged worse %v after the outage started", name, first)
	}
	var others []string
	for k, c := range cells {
		coloured(judgeAt(c, 45*time.Minute), func(name string, j rollup.Judgement) {
			if k.channel != "voice" && j.Verdict != rollup.Neutral {
				others = append(others, k.moment+"/"+k.channel+" "+name+" "+string(j.Verdict))
			}
		})
	}
	t.Logf("five minutes into the voice outage, other cells coloured: %v", others)
}
