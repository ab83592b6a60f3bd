package annotation

import (
	"time"

	"github.com/truthboard/truthboard/internal/metric"
	"github.com/truthboard/truthboard/internal/rollup"
)

// Impact answers "did it change anything?": the figures of an annotation's scope in the
// window just before it against the same length of time during it (a region) and after it,
// each change with the test that judges it (rollup.Judge, as the screens judge their deltas).
type Impact struct {
	ID string `json:"id"`
	// Before is the window the others are compared with.
	Before Span `json:"before"`
	// Comparisons are "during" (a region only) and "after", in that order.
	Comparisons []Comparison `json:"comparisons"`
}

// Span is a window of time and the figures of the annotation's scope in it.
type Span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Complete is false while the window has not ended yet (then To is now).
	Complete bool           `json:"complete"`
	Figures  rollup.Metrics `json:"figures"`
}

// Comparison is one window against Before: each figure's change and its judgement (verdict,
// test, p-value and the n of both windows).
type Comparison struct {
	Period  string   `json:"period"`
	Span    Span     `json:"span"`
	Changes []Change `json:"changes"`
}

// Change is one figure's move from the window before to this one.
type Change struct {
	Figure    string           `json:"figure"`
	Before    metric.Figure    `json:"before"`
	After     metric.Figure    `json:"after"`
	Delta     metric.Change    `json:"delta"`
	Judgement rollup.Judgement `json:"judgement"`
}

// ImpactFigures are the figures an impact compares, by their JSON names; "events" is the
// volume in events per second.
var ImpactFigures = []string{"csat", "nps", "ces", "negative_rate", "abandonment", "events"}

// Window is one period of an impact, as Periods plans them.
type Window struct {
	Name     string // before, during, after
	From, To time.Time
	Complete bool
}

// MinImpactWindow is the shortest window compared: the resolution of the rollup that answers.
const MinImpactWindow = time.Minute

// Periods plans the windows of a's impact at now: before, then during (a region) and after,
// each as long as the region, or as length for a mark, on whole steps of step (the rollup
// table's resolution). A window that has not ended is cut at now.
func Periods(a *Annotation, length, step time.Duration, now time.Time) []Window {
	start, end := a.Start().Truncate(step), a.End().Truncate(step)
	if a.Region() {
		length = end.Sub(start)
	}
	length = max(length.Truncate(step), MinImpactWindow, step)
	if end.Equal(start) && a.Region() {
		end = start.Add(length)
	}
	ws := []Window{{Name: "before", From: start.Add(-length), To: start, Complete: true}}
	if a.Region() {
		ws = append(ws, Window{Name: "during", From: start, To: end})
	} else {
		end = start
	}
	ws = append(ws, Window{Name: "after", From: end, To: end.Add(length)})
	for i := range ws {
		w := &ws[i]
		w.Complete = !w.To.After(now)
		if !w.Complete {
			w.To = now.UTC()
			if w.To.Before(w.From) {
				w.To = w.From
			}
		}
	}
	return ws
}

// BuildImpact compares the counts of each window of ws (from Periods) with the first one.
func BuildImpact(a *Annotation, ws []Window, counts []rollup.Counts, r metric.Rules) Impact {
	span := func(i int) Span {
		length := max(ws[i].To.Sub(ws[i].From), time.Second)
		return Span{From: ws[i].From, To: ws[i].To, Complete: ws[i].Complete, Figures: rollup.MetricsOf(&counts[i], length, r)}
	}
	before := span(0)
	imp := Impact{ID: a.ID, Before: before, Comparisons: []Comparison{}}
	for i := 1; i < len(ws); i++ {
		cur := span(i)
		js := rollup.Judge(&counts[i], &counts[0], &cur.Figures, &before.Figures,
			max(ws[i].To.Sub(ws[i].From), time.Second), ws[0].To.Sub(ws[0].From))
		c := Comparison{Period: ws[i].Name, Span: cur}
		for _, name := range ImpactFigures {
			b, _ := before.Figures.Figure(name)
			f, _ := cur.Figures.Figure(name)
			if name == "events" {
				// Volume as a rate: the windows can differ in length (one not ended yet).
				b = metric.Figure{Value: before.Figures.RatePerSecond, OK: true, N: int64(before.Figures.Events)}
				f = metric.Figure{Value: cur.Figures.RatePerSecond, OK: true, N: int64(cur.Figures.Events)}
			}
			j, _ := js.Get(name)
			c.Changes = append(c.Changes, Change{Figure: name, Before: b, After: f, Delta: metric.Delta(f, b), Judgement: j})
		}
		imp.Comparisons = append(imp.Comparisons, c)
	}
	return imp
}
