// Package screen manages the TV walls as a fleet: pairing by a short code shown on the wall,
// the state each screen reports by heartbeat, the commands sent to them (reload, show,
// identify, rename, unpair), and the playlists they rotate. The state lives in ClickHouse
// through a Store, so every node sees every screen; the node that holds a screen's connection
// delivers its commands. It knows nothing of WebSockets: internal/web moves its messages.
package screen

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/truthboard/truthboard/internal/live"
)

// CodeAlphabet are the characters of a pairing code: capitals and digits without the ones read
// alike on a screen (0/O, 1/I/L).
const CodeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// CodeLength is the number of characters of a pairing code: 31^6 ≈ 887 million codes.
const CodeLength = 6

// NewCode returns a random pairing code.
func NewCode() string {
	b := make([]byte, CodeLength)
	n := big.NewInt(int64(len(CodeAlphabet)))
	for i := range b {
		k, err := rand.Int(rand.Reader, n)
		if err != nil {
			panic(fmt.Sprintf("crypto/rand failed: %v", err))
		}
		b[i] = CodeAlphabet[k.Int64()]
	}
	return string(b)
}

// NormalizeCode reads a code as typed: spaces and dashes dropped, lower case accepted. ok is
// false when it cannot be a code.
func NormalizeCode(s string) (code string, ok bool) {
	s = strings.ToUpper(strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(s)))
	if len(s) != CodeLength {
		return "", false
	}
	for _, r := range s {
		if !strings.ContainsRune(CodeAlphabet, r) {
			return "", false
		}
	}
	return s, true
}

// Panels are the views a screen can show: "tv" rotates the wall's panels, the others hold one.
var Panels = []string{"tv", "overview", "heatmap", "trends", "journey"}

// Show is what a screen shows: a view of the wall with its window and filters, or a playlist.
type Show struct {
	View     string              `json:"view,omitempty"`
	Window   string              `json:"window,omitempty"`
	Filters  map[string][]string `json:"filters,omitempty"`
	Playlist string              `json:"playlist,omitempty"`
}

// FieldError is bad input about one field, named as the API's JSON names it.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Validate checks s; field prefixes the names in errors (e.g. "show"). A playlist is checked
// to exist by the caller, which knows them.
func (s *Show) Validate(field string) error {
	if s.Playlist != "" {
		if s.View != "" || s.Window != "" || len(s.Filters) > 0 {
			return &FieldError{field + ".playlist", "a screen shows a playlist or a view, not both: leave view, window and filters out"}
		}
		return ValidateName(field+".playlist", s.Playlist)
	}
	return validateView(field, s.View, s.Window, s.Filters)
}

// validateView checks a view with its window and filters, as the live protocol reads them.
func validateView(field, view, window string, filters map[string][]string) error {
	if view == "" {
		return &FieldError{field + ".view", "is required: one of " + strings.Join(Panels, ", ")}
	}
	if !slices.Contains(Panels, view) {
		return &FieldError{field + ".view", fmt.Sprintf("%q is not a view of the wall: use one of %s", view, strings.Join(Panels, ", "))}
	}
	msg, _ := json.Marshal(live.ClientMessage{Type: "subscribe", View: "tv", Window: window, Filters: filters})
	if _, err := live.ParseClientMessage(msg); err != nil {
		return &FieldError{field + "." + strings.SplitN(err.Error(), ":", 2)[0], strings.TrimSpace(strings.SplitN(err.Error(), ":", 2)[1])}
	}
	return nil
}

// MaxName is the longest name of a screen or playlist, in characters.
const MaxName = 64

// ValidateName checks the name of a screen or playlist.
func ValidateName(field, name string) error {
	n := utf8.RuneCountInString(strings.TrimSpace(name))
	switch {
	case !utf8.ValidString(name):
		return &FieldError{field, "must be UTF-8 text"}
	case n == 0:
		return &FieldError{field, `is required, e.g. "Wall 3"`}
	case utf8.RuneCountInString(name) > MaxName:
		return &FieldError{field, fmt.Sprintf("must be at most %d characters (got %d)", MaxName, utf8.RuneCountInString(name))}
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return &FieldError{field, "must not contain control characters"}
		}
	}
	return nil
}

// Place is where a screen stands: its group of screens (e.g. "floor 2") and the time zone its
// playlist's opening hours are read in. Both may be empty: no group; the TV's own clock.
type Place struct {
	Group    string `json:"group,omitempty"`
	Timezone string `json:"timezone,omitempty"`
}

// Validate checks p; field prefixes the names in errors ("" at the top of a request).
func (p Place) Validate(field string) error {
	if p.Group != "" {
		if err := ValidateGroup(field+"group", p.Group); err != nil {
			return err
		}
	}
	if p.Timezone != "" {
		if _, err := Location(p.Timezone); err != nil {
			return &FieldError{field + "timezone", err.Error()}
		}
	}
	return nil
}

// ValidateGroup checks the name of a group of screens: as a screen's name, and without spaces
// around it (a group is matched exactly).
func ValidateGroup(field, group string) error {
	if strings.TrimSpace(group) == "" {
		return &FieldError{field, `is required, e.g. "floor 2"`}
	}
	if err := ValidateName(field, group); err != nil {
		return err
	}
	if strings.TrimSpace(group) != group {
		return &FieldError{field, "must not begin or end with spaces"}
	}
	return nil
}

// Location loads an IANA time zone ("Asia/Tokyo"); the binary embeds the zone database
// (time/tzdata), so containers without one work too.
func Location(name string) (*time.Location, error) {
	// "Local" is the server's zone, not the wall's; LoadLocation also takes "" as UTC.
	if name == "" || name == "Local" || len(name) > MaxName {
		return nil, fmt.Errorf("%q is not an IANA time zone: give one such as \"Europe/Paris\" or \"Asia/Tokyo\"", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone: give one such as \"Europe/Paris\" or \"Asia/Tokyo\" (leave it out for the TV's own clock)", name)
	}
	return loc, nil
}

// Pairing is a pairing code and, once an admin entered it, its claim.
type Pairing struct {
	Code      string
	Address   string // the client address of the TV that asked for it
	CreatedAt time.Time
	ExpiresAt time.Time
	// Claimed is set once an admin entered the code: the screen's id, name and what it shows.
	Claimed  bool
	ScreenID string
	Name     string
	Show     Show
}

// Screen is a paired screen as stored.
type Screen struct {
	ID       string
	Name     string
	Show     Show
	Place    Place
	PairedAt time.Time
	Unpaired bool
	// Heartbeat is the last one any node recorded (zero At: never).
	Heartbeat Heartbeat
}

// Heartbeat is what a screen reports of itself over its live connection.
type Heartbeat struct {
	ID         string
	Node       string
	At         time.Time
	Connected  bool
	Resolution string
	Version    string
	Errors     []string
}

// Command kinds.
const (
	Reload   = "reload"   // reload the page (after a deploy, or a stuck browser)
	Redirect = "show"     // show another view, window, filters or playlist
	Identify = "identify" // show the screen's name big for a few seconds
	Rename   = "rename"   // the screen's name changed
	Unpair   = "unpair"   // the screen's credential is revoked: back to the pairing code
)

// Command states.
const (
	Queued        uint8 = 1
	Delivered     uint8 = 2
	Undeliverable uint8 = 3
)

// Command is a message for one screen, queued until the node holding it delivers it.
type Command struct {
	ID        string
	ScreenID  string
	CreatedAt time.Time
	Kind      string
	// Arg is the command's JSON argument (a Show for "show", the name for "rename").
	Arg   json.RawMessage
	State uint8
}

// StateName is the command's state in words.
func (c Command) StateName() string {
	switch c.State {
	case Delivered:
		return "delivered"
	case Undeliverable:
		return "undeliverable"
	}
	return "queued"
}

// Errors of pairing, for the API to tell apart.
var (
	ErrNoSuchCode     = errors.New("no TV shows this code: check the code on the screen (it changes every 10 minutes)")
	ErrCodeUsed       = errors.New("this code was already used: the TV shows a new one once paired or after it reloads")
	ErrCodeExpired    = errors.New("this code has expired: the TV shows a new one, enter that")
	ErrTooManyPending = errors.New("too many TVs are waiting for pairing")
	ErrNoSuchScreen   = errors.New("no such screen")
	ErrPairTimeout    = errors.New("the TV did not take its credential in time: it may have lost its connection, or the servers are busy; reload it and enter its new code")
	ErrQueueFull      = errors.New("the screen's command queue is full")
	ErrNoSuchPlaylist = errors.New("no such playlist")
	ErrNoSuchGroup    = errors.New("no paired screen is in the group")
)

// Bounds of a heartbeat's fields.
const (
	maxResolution = 32
	maxVersion    = 64
	maxErrors     = 5
	maxErrorText  = 200
)

// ParseHeartbeat reads a screen's message {"type":"heartbeat", "resolution", "version",
// "errors"}. ok is false when the message is of another type (a subscription); err names the
// field that is wrong. Long texts are cut rather than refused: a screen's errors are reported
// as they come.
func ParseHeartbeat(b []byte) (h Heartbeat, ok bool, err error) {
	var peek struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(b, &peek) != nil || peek.Type != "heartbeat" {
		return Heartbeat{}, false, nil
	}
	var m struct {
		Type       string   `json:"type"`
		Resolution string   `json:"resolution"`
		Version    string   `json:"version"`
		Errors     []string `json:"errors"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Heartbeat{}, true, fmt.Errorf("heartbeat: %v; send {\"type\":\"heartbeat\",\"resolution\":\"1920x1080\",\"version\":\"…\",\"errors\":[]}", err)
	}
	cut := func(s string, n int) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n])
		}
		return s
	}
	h = Heartbeat{Resolution: cut(m.Resolution, maxResolution), Version: cut(m.Version, maxVersion)}
	for i, e := range m.Errors {
		if i == maxErrors {
			break
		}
		h.Errors = append(h.Errors, cut(e, maxErrorText))
	}
	return h, true, nil
}
