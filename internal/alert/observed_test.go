package alert

import (
	"errors"
	"testing"
	"time"
)

// An observed condition (a screen gone silent) fires at once, holds while observed, resolves
// when no longer observed; a failed read (its source left out) keeps it; a restart restores
// it; and no rule may take its name.
func TestObservedConditions(t *testing.T) {
	e, err := NewEngine(Config{Rules: DefaultRules(), Sources: []string{"ScreenOffline"}, Clock: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	wall := Condition{Labels: map[string]string{"screen": "9c34086fc745b5b7", "screen_name": "Wall 3", "severity": "warning"},
		Annotations: map[string]string{"summary": "Screen \"Wall 3\" is offline"}, Since: t0.Add(-30 * time.Second)}
	observe := func(at time.Time, conds ...Condition) Result {
		return e.Evaluate(Input{Now: at, Observed: map[string][]Condition{"ScreenOffline": conds}})
	}
	r := observe(t0, wall)
	if len(r.Transitions) != 1 || r.Transitions[0].From != Inactive || r.Transitions[0].To != Firing {
		t.Fatalf("first observation: %+v; want one inactive → firing", r.Transitions)
	}
	a := r.Active[0]
	if a.Labels["alertname"] != "ScreenOffline" || a.Labels["screen"] != "9c34086fc745b5b7" || !a.ActiveAt.Equal(wall.Since) || !a.FiredAt.Equal(t0) {
		t.Errorf("the alert: %+v; want ScreenOffline of the screen, active since it went silent, fired now", a)
	}
	if r := observe(t0.Add(10*time.Second), wall); len(r.Transitions) != 0 || len(r.Active) != 1 {
		t.Errorf("still observed: %+v, %d active; want it firing, unchanged", r.Transitions, len(r.Active))
	}
	// A failed read says nothing: the alert stays.
	if r := e.Evaluate(Input{Now: t0.Add(20 * time.Second)}); len(r.Transitions) != 0 || len(r.Active) != 1 {
		t.Errorf("source left out: %+v; want the alert kept", r.Transitions)
	}
	// A restart brings it back, and the next evaluation without it resolves it.
	e2, _ := NewEngine(Config{Rules: DefaultRules(), Sources: []string{"ScreenOffline"}})
	e2.Restore(r.Active, nil)
	if r := e2.Evaluate(Input{Now: t0.Add(25 * time.Second)}); len(r.Transitions) != 0 || len(r.Active) != 1 {
		t.Errorf("restored, source left out: %+v; want the alert kept, not resolved as an orphan", r.Transitions)
	}
	r = observe(t0.Add(30 * time.Second))
	if len(r.Transitions) != 1 || r.Transitions[0].From != Firing || r.Transitions[0].To != Resolved || len(r.Active) != 0 {
		t.Errorf("no longer observed: %+v; want firing → resolved", r.Transitions)
	}
	rule := DefaultRules()[0]
	rule.Name = "ScreenOffline"
	var re *RuleError
	if err := e.SetRules([]Rule{rule}); !errors.As(err, &re) || re.Field != "name" {
		t.Errorf("a rule named like the observed alerts: %v; want refused, naming the field", err)
	}
}
