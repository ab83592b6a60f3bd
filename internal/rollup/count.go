package rollup

import (
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/metric"
)

// AddEvent adds what the rollup views of clickhouse/migrations measure of e to c. The views do
// it in SQL; this is the same in Go, for simulations and for tests that check the rollups
// against the events they were made from.
func (c *Counts) AddEvent(e *event.Event) {
	c.Events++
	if e.CSAT != nil {
		c.CSATN++
		if *e.CSAT >= 4 {
			c.CSATTop2++
		}
	}
	if e.NPS != nil {
		c.NPSN++
		switch {
		case *e.NPS >= 9:
			c.NPSPromoters++
		case *e.NPS <= 6:
			c.NPSDetractors++
		}
	}
	if e.CES != nil {
		c.CESN++
		c.CESSum += uint64(*e.CES)
	}
	if e.Negative() {
		c.Negative++
	}
	if e.Outcome != "" {
		c.WithOutcome++
		if e.Outcome == "abandoned" {
			c.Abandoned++
		}
	}
	if e.WaitMS != nil {
		c.WaitN++
		c.Wait[metric.BucketOf(*e.WaitMS)]++
	}
}
