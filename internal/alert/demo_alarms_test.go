package alert_test

import (
	"flag"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/demo"
)

// The size of TestDemoFalseAlarms; the defaults keep it short, the flags measure at length:
// go test -run TestDemoFalseAlarms -v ./internal/alert -args -steady-seeds 35 -steady-hours 20
var (
	steadySeeds = flag.Int("steady-seeds", 1, "days of demo traffic TestDemoFalseAlarms simulates, each from another seed and 5 hours later in the day")
	steadyHours = flag.Int("steady-hours", 2, "hours of steady traffic TestDemoFalseAlarms judges per seed, after 3 h 15 min of history")
)

// formerAlpha is the default level before 0.00001, judged beside it on the same sums.
const formerAlpha = 1e-4

// TestDemoFalseAlarms runs the default rules on steady demo traffic (40 events per second, the
// rate of scripts/up.sh, with its daily rhythm, no incident), evaluated every 10 seconds as the
// server does, and fails on any alert: in steady traffic every alert is a false alarm. Beside
// them, the same rules at the former level 0.0001 run on the same sums, and what they raise is
// logged. Measured with -steady-seeds 35 -steady-hours 20 (700 hours at every time of day, about
// 20 minutes): none at 0.00001; 5 at 0.0001 (one every six days), all in thin cells (200 to
// 660 answers) where the minimum change does not protect. The rollups are summed in memory from the generator's events, as
// the overview tables sum them; the volume rule has no week of history here and stays silent.
func TestDemoFalseAlarms(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates hours of demo traffic")
	}
	levels := []float64{alert.DefaultAlpha, formerAlpha}
	alarms := map[float64][]string{}
	for s := 1; s <= *steadySeeds; s++ {
		origin := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).Add(time.Duration(s) * 5 * time.Hour)
		steady := origin.Add(3*time.Hour + 15*time.Minute)
		end := steady.Add(time.Duration(*steadyHours) * time.Hour)
		cfg := demo.DefaultConfig()
		cfg.Rate, cfg.Seed = 40, int64(s)*7
		// Duplicates are removed at ingest and late events reach the rollups late: neither is
		// part of what the rules judge at the time, and late ones would break the running totals.
		cfg.DuplicateShare, cfg.LateShare = 0, 0
		gen, err := demo.NewGenerator(cfg, origin)
		if err != nil {
			t.Fatal(err)
		}
		engines := make([]*alert.Engine, len(levels))
		for i, level := range levels {
			rules := alert.DefaultRules()
			for j := range rules {
				rules[j].Alpha = level
			}
			if engines[i], err = alert.NewEngine(alert.Config{Rules: rules}); err != nil {
				t.Fatal(err)
			}
		}
		sums := newRollups(origin)
		for tick := steady; tick.Before(end); tick = tick.Add(simStep) {
			// Half a second before the tick, so that every span ends on a step boundary.
			now := tick.Add(-500 * time.Millisecond)
			for _, e := range gen.Due(now, 1<<30) {
				sums.add(&e)
			}
			sums.advance(tick)
			for i, engine := range engines {
				for _, tr := range engine.Evaluate(sums.input(engine, now)).Transitions {
					if tr.To == alert.Firing && tr.From != alert.Firing {
						alarms[levels[i]] = append(alarms[levels[i]], fmt.Sprintf("seed %d, %s: %s",
							s, now.Format("Jan 2 15:04:05"), tr.Alert.Annotations["summary"]))
					}
				}
			}
		}
	}
	hours := float64(*steadySeeds * *steadyHours)
	for _, level := range levels {
		t.Logf("p < %s: %d false alarms in %.0f hours of steady traffic (%.4f per hour)",
			strconv.FormatFloat(level, 'f', -1, 64), len(alarms[level]), hours, float64(len(alarms[level]))/hours)
		for _, a := range alarms[level] {
			t.Log("  ", a)
		}
	}
	if n := len(alarms[alert.DefaultAlpha]); n > 0 {
		t.Errorf("the default rules raised %d false alarms in %.0f hours of steady demo traffic", n, hours)
	}
}
