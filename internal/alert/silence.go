package alert

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Matcher matches the alerts whose label Name equals Value.
type Matcher struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Silence mutes the alerts that match all of its matchers from StartsAt until EndsAt: they
// still change state and are recorded, but are flagged Silenced, and delivery skips them.
type Silence struct {
	ID       string    `json:"id"`
	Matchers []Matcher `json:"matchers"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
	Reason   string    `json:"reason"`
}

// Limits of a silence.
const (
	// MaxSilence is the longest a silence may last: long enough for a planned outage or a
	// holiday, short enough that a forgotten one ends.
	MaxSilence = 90 * 24 * time.Hour
	// MaxMatchers bounds the matchers of a silence.
	MaxMatchers = 20
	// MaxReasonLen bounds a silence's reason, in bytes.
	MaxReasonLen = 1000
)

// labelNames are the labels an alert may carry, in order: a matcher on any other name would
// match nothing and silence nothing, which is refused rather than accepted in silence.
var labelNames = append([]string{"alertname", "metric", "moment", "channel", "severity"}, FilterNames...)

// Active reports whether the silence is in force at now.
func (s Silence) Active(now time.Time) bool {
	return !now.Before(s.StartsAt) && now.Before(s.EndsAt)
}

// Matches reports whether every matcher of the silence matches labels.
func (s Silence) Matches(labels map[string]string) bool {
	for _, m := range s.Matchers {
		if labels[m.Name] != m.Value {
			return false
		}
	}
	return len(s.Matchers) > 0
}

// Silence mutes the alerts matching every matcher from now until until, for reason. It
// returns the silence, to be stored (store.AddAlertSilence) and restored after a restart.
func (e *Engine) Silence(matchers []Matcher, until time.Time, reason string) (Silence, error) {
	now := e.clock()
	switch {
	case len(matchers) == 0:
		return Silence{}, &InputError{Field: "matchers", Message: "silence: give at least one matcher, e.g. alertname=CSATDrop or channel=voice"}
	case len(matchers) > MaxMatchers:
		return Silence{}, &InputError{Field: "matchers", Message: fmt.Sprintf("silence: %d matchers; give at most %d", len(matchers), MaxMatchers)}
	case !until.After(now):
		return Silence{}, &InputError{Field: "ends_at", Message: fmt.Sprintf("silence: it must end in the future (until %s is not after now, %s)", until.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	case until.Sub(now) > MaxSilence:
		return Silence{}, &InputError{Field: "ends_at", Message: fmt.Sprintf("silence: it may last at most %d days", MaxSilence/(24*time.Hour))}
	case strings.TrimSpace(reason) == "" || len(reason) > MaxReasonLen:
		return Silence{}, &InputError{Field: "reason", Message: fmt.Sprintf("silence: say why, in 1 to %d bytes", MaxReasonLen)}
	}
	for i, m := range matchers {
		if !slices.Contains(labelNames, m.Name) {
			return Silence{}, &InputError{Field: fmt.Sprintf("matchers[%d].name", i),
				Message: fmt.Sprintf("silence: matcher %d: %q is not a label of an alert; use %s", i, m.Name, strings.Join(labelNames, ", "))}
		}
		if m.Value == "" || len(m.Value) > MaxByLen {
			return Silence{}, &InputError{Field: fmt.Sprintf("matchers[%d].value", i),
				Message: fmt.Sprintf("silence: matcher %d (%s): give a value of 1 to %d bytes", i, m.Name, MaxByLen)}
		}
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand panics rather than return an error)
	s := Silence{ID: hex.EncodeToString(id[:]), Matchers: slices.Clone(matchers), StartsAt: now, EndsAt: until, Reason: reason}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.silences[s.ID] = s
	return s, nil
}

// InputError refuses a silence or an acknowledgement for one of its fields, named as in the
// API's JSON (matchers[0].name, ends_at, reason, by), so that the web edge can say which field
// to fix.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return e.Message }

// ErrUnknownSilence is the error of Expire for an ID that is not a silence in force.
var ErrUnknownSilence = errors.New("no silence in force has this ID")

// Expire ends the silence id now and returns it as it ends, to be stored.
func (e *Engine) Expire(id string) (Silence, error) {
	now := e.clock()
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.silences[id]
	if !ok || !s.Active(now) {
		return Silence{}, fmt.Errorf("expire silence %s: %w", id, ErrUnknownSilence)
	}
	s.EndsAt = now
	delete(e.silences, id)
	return s, nil
}

// Silences returns the silences in force, the soonest to end first.
func (e *Engine) Silences() []Silence {
	now := e.clock()
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Silence
	for id, s := range e.silences {
		if !now.Before(s.EndsAt) {
			delete(e.silences, id) // over: forget it
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].EndsAt.Equal(out[j].EndsAt) {
			return out[i].EndsAt.Before(out[j].EndsAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// silencedBy lists the IDs of the silences in force at now that match labels, sorted.
func (e *Engine) silencedBy(labels map[string]string, now time.Time) []string {
	var ids []string
	for id, s := range e.silences {
		if s.Active(now) && s.Matches(labels) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
