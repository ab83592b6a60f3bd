package screen

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Playlist is a named rotation of views, each with its window, filters and dwell time, with an
// optional schedule of opening hours and a slow pixel shift against burn-in.
type Playlist struct {
	Name  string `json:"name"`
	Items []Item `json:"items"`
	// Schedule blanks or dims the walls outside opening hours (nil: always on).
	Schedule *Schedule `json:"schedule,omitempty"`
	// PixelShift moves the whole wall by a few pixels every few minutes (default true).
	PixelShift *bool `json:"pixel_shift,omitempty"`
}

// Item is one panel of a playlist.
type Item struct {
	View    string              `json:"view"`
	Window  string              `json:"window,omitempty"`
	Filters map[string][]string `json:"filters,omitempty"`
	// Dwell is how long the panel stays, e.g. "30s", "2m" (5 s to 1 h).
	Dwell string `json:"dwell"`
}

// Schedule is a wall's opening hours, in the screen's local time.
type Schedule struct {
	// Open and Close are "HH:MM" (24 h); Close before Open spans midnight.
	Open  string `json:"open"`
	Close string `json:"close"`
	// Days are the open days, "mon" … "sun" (empty: every day).
	Days []string `json:"days,omitempty"`
	// Outside is "blank" or "dim": what the wall does outside opening hours (default "dim").
	Outside string `json:"outside,omitempty"`
}

// Bounds of a playlist.
const (
	MaxItems     = 32
	MinDwell     = 5 * time.Second
	MaxDwell     = time.Hour
	MaxPlaylists = 100
)

var (
	clock = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	days  = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
)

// Validate checks a playlist, naming the field of the first problem (e.g. "items[2].view").
func (p *Playlist) Validate() error {
	if err := ValidateName("name", p.Name); err != nil {
		return err
	}
	if len(p.Items) == 0 {
		return &FieldError{"items", `needs at least one panel, e.g. [{"view": "overview", "dwell": "30s"}]`}
	}
	if len(p.Items) > MaxItems {
		return &FieldError{"items", fmt.Sprintf("has %d panels; at most %d", len(p.Items), MaxItems)}
	}
	for i, it := range p.Items {
		field := fmt.Sprintf("items[%d]", i)
		if err := validateView(field, it.View, it.Window, it.Filters); err != nil {
			return err
		}
		d, err := time.ParseDuration(it.Dwell)
		if err != nil || d < MinDwell || d > MaxDwell {
			return &FieldError{field + ".dwell", fmt.Sprintf("%q: give a duration from %s to %s, e.g. \"30s\"", it.Dwell, MinDwell, MaxDwell)}
		}
	}
	if s := p.Schedule; s != nil {
		if !clock.MatchString(s.Open) {
			return &FieldError{"schedule.open", fmt.Sprintf("%q: give the opening time as HH:MM, e.g. \"08:00\"", s.Open)}
		}
		if !clock.MatchString(s.Close) {
			return &FieldError{"schedule.close", fmt.Sprintf("%q: give the closing time as HH:MM, e.g. \"20:00\"", s.Close)}
		}
		if s.Open == s.Close {
			return &FieldError{"schedule.close", "equals the opening time: leave the schedule out for a wall that is always on"}
		}
		for i, d := range s.Days {
			if !containsFold(days, d) {
				return &FieldError{fmt.Sprintf("schedule.days[%d]", i), fmt.Sprintf("%q: use %s", d, strings.Join(days, ", "))}
			}
		}
		if s.Outside != "" && s.Outside != "blank" && s.Outside != "dim" {
			return &FieldError{"schedule.outside", fmt.Sprintf("%q: use \"blank\" or \"dim\"", s.Outside)}
		}
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// SavePlaylist validates and stores p, creating or replacing it; the screens showing it get
// it again, and follow it from their next panel.
func (f *Fleet) SavePlaylist(ctx context.Context, p Playlist) error {
	if err := p.Validate(); err != nil {
		return err
	}
	all, err := f.store.Playlists(ctx)
	if err != nil {
		return err
	}
	exists := false
	for _, q := range all {
		exists = exists || q.Name == p.Name
	}
	if !exists && len(all) >= MaxPlaylists {
		return &FieldError{"name", fmt.Sprintf("there are already %d playlists, the most allowed: delete one first", MaxPlaylists)}
	}
	if err := f.store.SavePlaylist(ctx, p, f.opts.Now()); err != nil {
		return err
	}
	screens, err := f.List(ctx)
	if err != nil {
		return err
	}
	for _, s := range screens {
		if s.Show.Playlist == p.Name {
			if _, err := f.Send(ctx, s.ID, Redirect, s.Show); err != nil {
				f.log.Warn("playlist not sent to a screen", "screen", s.ID, "err", err)
			}
		}
	}
	return nil
}

// DeletePlaylist removes a playlist that no screen shows.
func (f *Fleet) DeletePlaylist(ctx context.Context, name string) error {
	if _, err := f.playlist(ctx, name); err != nil {
		return err
	}
	screens, err := f.List(ctx)
	if err != nil {
		return err
	}
	for _, s := range screens {
		if s.Show.Playlist == name {
			return fmt.Errorf("screen %q (%s) shows this playlist: redirect it first", s.Name, s.ID)
		}
	}
	return f.store.DeletePlaylist(ctx, name, f.opts.Now())
}

// Playlists lists the playlists by name.
func (f *Fleet) Playlists(ctx context.Context) ([]Playlist, error) { return f.store.Playlists(ctx) }

func (f *Fleet) playlist(ctx context.Context, name string) (Playlist, error) {
	all, err := f.store.Playlists(ctx)
	if err != nil {
		return Playlist{}, err
	}
	for _, p := range all {
		if p.Name == name {
			return p, nil
		}
	}
	return Playlist{}, fmt.Errorf("%w %q: create it first (PUT /v1/playlists/{name})", ErrNoSuchPlaylist, name)
}

// At is what a wall following s does at the instant at, its opening hours read in the zone
// loc: "" within them, else "blank" or "dim". The wall itself (static/js/tv.js) reads
// them the same way, in the same zone.
func (s *Schedule) At(at time.Time, loc *time.Location) string {
	t := at.In(loc)
	hm := t.Format("15:04")
	open := hm >= s.Open && hm < s.Close
	if s.Close < s.Open { // spans midnight
		open = hm >= s.Open || hm < s.Close
	}
	day := len(s.Days) == 0 || containsFold(s.Days, days[(int(t.Weekday())+6)%7])
	switch {
	case open && day:
		return ""
	case s.Outside == "blank":
		return "blank"
	}
	return "dim"
}
