package screen

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
)

// Store keeps the fleet in ClickHouse; *store.Store in production.
type Store interface {
	CreatePairing(ctx context.Context, p Pairing) error
	// PrunePairings deletes the codes that expired before before, used or not.
	PrunePairings(ctx context.Context, before time.Time) (int, error)
	// ClaimPairing records an admin's claim of a code (p.ScreenID, Name, Show).
	ClaimPairing(ctx context.Context, p Pairing, at time.Time) error
	// Pairings returns the state of each code: its request and its earliest claim.
	Pairings(ctx context.Context, codes []string) ([]Pairing, error)
	SaveScreens(ctx context.Context, s []Screen, at time.Time) error
	// SavePlace records screen id's group and time zone (Screen.Place; SaveScreens leaves it).
	SavePlace(ctx context.Context, id string, p Place, at time.Time) error
	// Screens lists every screen, unpaired ones too, with its last heartbeat.
	Screens(ctx context.Context) ([]Screen, error)
	// Screen reads one; found is false when it was never paired.
	Screen(ctx context.Context, id string) (s Screen, found bool, err error)
	SaveHeartbeats(ctx context.Context, hs []Heartbeat) error
	QueueCommands(ctx context.Context, cs []Command) error
	// Commands lists the commands of the screens ids (all screens when nil) in the state given
	// (0: any), oldest first.
	Commands(ctx context.Context, ids []string, state uint8) ([]Command, error)
	SetCommandStates(ctx context.Context, cs []Command, at time.Time) error
	SavePlaylist(ctx context.Context, p Playlist, at time.Time) error
	DeletePlaylist(ctx context.Context, name string, at time.Time) error
	Playlists(ctx context.Context) ([]Playlist, error)
	CreateDisplayToken(ctx context.Context, t auth.DisplayToken) error
	RevokeDisplayToken(ctx context.Context, id string, at time.Time) (found bool, err error)
}

// Options are the settings of a Fleet.
type Options struct {
	// Node names this server in the heartbeats it records (default: the host name).
	Node string
	// Poll is how often the node looks for claimed codes and queued commands of the screens it
	// holds (default 1 s): a command reaches its screen within Poll.
	Poll time.Duration
	// Flush is how often the node records the heartbeats of its screens (default 5 s).
	Flush time.Duration
	// OfflineAfter is how long a screen may stay silent before it counts as offline (default
	// 20 s; screens send a heartbeat every 5 s).
	OfflineAfter time.Duration
	// CodeTTL is how long a pairing code is valid (default 10 min).
	CodeTTL time.Duration
	// MaxPending bounds the TVs waiting for pairing on this node, MaxPendingPerAddress those of
	// one client address (defaults 200 and 3).
	MaxPending, MaxPendingPerAddress int
	// MaxQueued bounds the commands queued for one screen (default 16): beyond, a command is
	// refused as undeliverable.
	MaxQueued int
	// PairWait is how long Pair waits for the TV to take its credential (default 10 s).
	PairWait time.Duration
	// Prune is how often the pairing codes expired for an hour are deleted (default 10 min),
	// so that the table of codes stays as small as the codes of the last hour.
	Prune time.Duration
	// CredentialsChanged is called after a display token is created or revoked, so that this
	// node's cache sees it at once (nil: nothing).
	CredentialsChanged func(ctx context.Context)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Poll, time.Second)
	def(&o.Flush, 5*time.Second)
	def(&o.OfflineAfter, 20*time.Second)
	def(&o.CodeTTL, 10*time.Minute)
	def(&o.PairWait, 10*time.Second)
	def(&o.Prune, 10*time.Minute)
	if o.MaxPending <= 0 {
		o.MaxPending = 200
	}
	if o.MaxPendingPerAddress <= 0 {
		o.MaxPendingPerAddress = 3
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CredentialsChanged == nil {
		o.CredentialsChanged = func(context.Context) {}
	}
	return o
}

// Fleet is the screens' component on one node: the TVs waiting for pairing and the paired
// screens connected here. Start runs its loop; Stop joins it.
type Fleet struct {
	store Store
	opts  Options
	log   *slog.Logger

	mu      sync.Mutex
	waiting map[string]*Waiter // by code
	perAddr map[string]int
	conns   map[string]*Conn // by screen id
	gone    []Heartbeat      // disconnections to record
	online  map[string]bool  // each screen's state at the last sweep, for transitions
	stats   Stats

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// Stats are the fleet's figures on this node, for the metrics.
type Stats struct {
	Waiting, Connected int
	Online, Offline    int // every node's screens, as of the last sweep
	Delivered          uint64
	WentOffline        uint64
}

// New makes a fleet on store; Start runs it.
func New(store Store, opts Options, log *slog.Logger) *Fleet {
	return &Fleet{store: store, opts: opts.withDefaults(), log: log,
		waiting: map[string]*Waiter{}, perAddr: map[string]int{}, conns: map[string]*Conn{},
		online: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Options are the fleet's settings, defaults filled in.
func (f *Fleet) Options() Options { return f.opts }

// Start runs the loop until Stop.
func (f *Fleet) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func() {
		defer close(f.done)
		f.run(ctx)
	}()
}

// Stop ends the loop and waits for it; the TVs still waiting get their channel closed.
func (f *Fleet) Stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	<-f.done
	f.mu.Lock()
	for code, w := range f.waiting {
		close(w.paired)
		delete(f.waiting, code)
	}
	f.mu.Unlock()
}

// Stats are the fleet's figures now.
func (f *Fleet) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	s.Waiting, s.Connected = len(f.waiting), len(f.conns)
	return s
}

func (f *Fleet) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *Fleet) run(ctx context.Context) {
	poll := time.NewTicker(f.opts.Poll)
	defer poll.Stop()
	flush := time.NewTicker(f.opts.Flush)
	defer flush.Stop()
	prune := time.NewTicker(f.opts.Prune)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-f.wake:
		case <-flush.C:
			f.flush(ctx)
			f.sweep(ctx)
		case <-prune.C:
			f.prune(ctx)
		}
		f.pollClaims(ctx)
		f.deliver(ctx)
	}
}

// ---- pairing ----

// PruneAfter is how long a pairing code is kept once expired: meanwhile, entering it again is
// answered "expired" or "already used" rather than "no TV shows this code".
const PruneAfter = time.Hour

// prune deletes the pairing codes expired for PruneAfter. Every node may do it: deleting twice
// is harmless.
func (f *Fleet) prune(ctx context.Context) {
	n, err := f.store.PrunePairings(ctx, f.opts.Now().Add(-PruneAfter))
	if err != nil {
		f.log.Warn("expired pairing codes not deleted; retrying later", "err", err)
		return
	}
	if n > 0 {
		f.log.Info("expired pairing codes deleted", "codes", n)
	}
}

// Waiter is a TV waiting for pairing: it shows Code until Paired yields its credential, or
// is closed (the code expired, or the server stops).
type Waiter struct {
	Code      string
	ExpiresAt time.Time
	addr      string
	paired    chan Paired
}

// Paired is what a TV receives once an admin entered its code.
type Paired struct {
	// Token is the screen's display token, for its live connection.
	Token  string
	Screen Screen
}

// Paired yields the TV's credential once, or is closed without one.
func (w *Waiter) Paired() <-chan Paired { return w.paired }

// Wait records a new pairing code for a TV at the client address addr.
func (f *Fleet) Wait(ctx context.Context, addr string) (*Waiter, error) {
	f.mu.Lock()
	if len(f.waiting) >= f.opts.MaxPending {
		f.mu.Unlock()
		return nil, fmt.Errorf("%w: %d on this server, the most allowed; try again in a few minutes", ErrTooManyPending, f.opts.MaxPending)
	}
	if f.perAddr[addr] >= f.opts.MaxPendingPerAddress {
		f.mu.Unlock()
		return nil, fmt.Errorf("%w: %d from this address, the most allowed; pair one of them first", ErrTooManyPending, f.opts.MaxPendingPerAddress)
	}
	now := f.opts.Now()
	w := &Waiter{Code: NewCode(), ExpiresAt: now.Add(f.opts.CodeTTL).Truncate(time.Second), addr: addr, paired: make(chan Paired, 1)}
	for f.waiting[w.Code] != nil {
		w.Code = NewCode()
	}
	f.waiting[w.Code] = w
	f.perAddr[addr]++
	f.mu.Unlock()
	if err := f.store.CreatePairing(ctx, Pairing{Code: w.Code, Address: addr, CreatedAt: now, ExpiresAt: w.ExpiresAt}); err != nil {
		f.Leave(w)
		return nil, err
	}
	return w, nil
}

// Leave forgets a waiting TV (its connection ended).
func (f *Fleet) Leave(w *Waiter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiting[w.Code] == w {
		delete(f.waiting, w.Code)
		if f.perAddr[w.addr]--; f.perAddr[w.addr] <= 0 {
			delete(f.perAddr, w.addr)
		}
	}
}

// Pair claims the TV showing code: it becomes screen name, showing show, standing at place. It
// returns once the TV has its credential (the node holding the TV, maybe another, hands it
// over).
func (f *Fleet) Pair(ctx context.Context, code, name string, show Show, place Place) (Screen, error) {
	ps, err := f.store.Pairings(ctx, []string{code})
	if err != nil {
		return Screen{}, err
	}
	if len(ps) == 0 {
		return Screen{}, ErrNoSuchCode
	}
	p := ps[0]
	switch {
	case p.Claimed:
		return Screen{}, ErrCodeUsed
	case !f.opts.Now().Before(p.ExpiresAt):
		return Screen{}, ErrCodeExpired
	}
	if show.Playlist != "" {
		if _, err := f.playlist(ctx, show.Playlist); err != nil {
			return Screen{}, err
		}
	}
	p.ScreenID, p.Name, p.Show = newID(), name, show
	if place != (Place{}) {
		// Recorded under the new screen's id before the claim, so the screen has it from the
		// start; a claim that loses to another admin's leaves a place no screen reads.
		if err := f.store.SavePlace(ctx, p.ScreenID, place, f.opts.Now()); err != nil {
			return Screen{}, err
		}
	}
	if err := f.store.ClaimPairing(ctx, p, f.opts.Now()); err != nil {
		return Screen{}, err
	}
	f.poke()
	wait := time.NewTimer(f.opts.PairWait)
	defer wait.Stop()
	tick := time.NewTicker(f.opts.Poll / 2)
	defer tick.Stop()
	for {
		// The screen is recorded by the node holding the TV once it takes the claim; the
		// earliest claim wins, so another admin's claim shows as a screen of another id.
		if s, ok, err := f.screen(ctx, p.ScreenID); err != nil {
			return Screen{}, err
		} else if ok {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return Screen{}, ctx.Err()
		case <-wait.C:
			if ps, err := f.store.Pairings(ctx, []string{code}); err == nil && len(ps) == 1 && ps[0].ScreenID != p.ScreenID {
				return Screen{}, ErrCodeUsed // another admin entered it first
			}
			return Screen{}, ErrPairTimeout
		case <-tick.C:
		}
	}
}

// pollClaims hands their credential to the TVs waiting here whose code was claimed, and ends
// the waits of expired codes.
func (f *Fleet) pollClaims(ctx context.Context) {
	f.mu.Lock()
	codes := make([]string, 0, len(f.waiting))
	now := f.opts.Now()
	for code, w := range f.waiting {
		if !now.Before(w.ExpiresAt) {
			close(w.paired)
			delete(f.waiting, code)
			if f.perAddr[w.addr]--; f.perAddr[w.addr] <= 0 {
				delete(f.perAddr, w.addr)
			}
			continue
		}
		codes = append(codes, code)
	}
	f.mu.Unlock()
	if len(codes) == 0 {
		return
	}
	ps, err := f.store.Pairings(ctx, codes)
	if err != nil {
		f.log.Warn("pairing codes not read", "err", err)
		return
	}
	var claimed []Pairing
	for _, p := range ps {
		f.mu.Lock()
		w := f.waiting[p.Code]
		f.mu.Unlock()
		if p.Claimed && w != nil {
			claimed = append(claimed, p)
		}
	}
	if len(claimed) > 0 {
		f.handOver(ctx, claimed)
	}
}

// handOver records the screens of the claimed codes (one insert), creates their display tokens,
// refreshes this node's credentials once, and gives each TV its token. A screen whose token
// could not be created is handed over at a later poll: its TV keeps waiting.
func (f *Fleet) handOver(ctx context.Context, claimed []Pairing) {
	now := f.opts.Now().UTC()
	screens := make([]Screen, len(claimed))
	for i, p := range claimed {
		screens[i] = Screen{ID: p.ScreenID, Name: p.Name, Show: p.Show, PairedAt: now.Truncate(time.Second)}
	}
	if err := f.store.SaveScreens(ctx, screens, now); err != nil {
		f.log.Warn("paired screens not recorded; retrying at the next poll", "err", err)
		return
	}
	tokens := make([]string, len(claimed))
	for i, p := range claimed {
		secret := auth.NewSecret("")
		cred := auth.DisplayToken{ID: p.ScreenID, Name: p.Name, SecretSHA256: sha256.Sum256([]byte(secret)), CreatedAt: now.Truncate(time.Second)}
		if err := f.store.CreateDisplayToken(ctx, cred); err != nil {
			f.log.Warn("display token of a paired screen not created; retrying at the next poll", "code", p.Code, "err", err)
			continue
		}
		tokens[i] = auth.DisplayTokenPrefix + cred.ID + "_" + secret
	}
	f.opts.CredentialsChanged(ctx)
	for i, p := range claimed {
		if tokens[i] == "" {
			continue
		}
		f.mu.Lock()
		w := f.waiting[p.Code]
		f.mu.Unlock()
		if w != nil {
			w.paired <- Paired{Token: tokens[i], Screen: screens[i]}
			f.Leave(w)
		}
	}
}

// newID is a screen's (and its display token's) id, or a command's: 16 hex digits.
func newID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// ---- connected screens ----

// Conn is a paired screen's live connection on this node.
type Conn struct {
	f    *Fleet
	id   string
	send func(msg []byte) bool
	// guarded by f.mu
	hb       Heartbeat
	needShow bool
}

// Connect registers the live connection of screen id (its display token's id); send queues a
// message on it and reports whether it was taken. The screen is sent what it shows at once.
func (f *Fleet) Connect(id string, send func([]byte) bool) *Conn {
	c := &Conn{f: f, id: id, send: send, needShow: true,
		hb: Heartbeat{ID: id, Node: f.opts.Node, At: f.opts.Now(), Connected: true}}
	f.mu.Lock()
	f.conns[id] = c
	f.mu.Unlock()
	f.poke()
	return c
}

// Heartbeat records what the screen reported.
func (c *Conn) Heartbeat(h Heartbeat) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	h.ID, h.Node, h.At, h.Connected = c.id, c.f.opts.Node, c.f.opts.Now(), true
	c.hb = h
}

// Close records that the connection ended.
func (c *Conn) Close() {
	f := c.f
	f.mu.Lock()
	if f.conns[c.id] == c {
		delete(f.conns, c.id)
		h := c.hb
		h.Connected, h.At = false, f.opts.Now()
		f.gone = append(f.gone, h)
	}
	f.mu.Unlock()
	f.poke()
}

// message is what a screen receives over its live connection: a command.
type message struct {
	Type     string    `json:"type"` // "command"
	Command  string    `json:"command"`
	ID       string    `json:"id,omitempty"`
	Name     string    `json:"name,omitempty"`
	Show     *Show     `json:"show,omitempty"`
	Playlist *Playlist `json:"playlist,omitempty"`
	// Timezone is the zone the playlist's opening hours are read in ("": the TV's clock).
	Timezone string `json:"timezone,omitempty"`
}

// deliver sends the queued commands of the screens connected here, and what they show to the
// screens that just connected.
func (f *Fleet) deliver(ctx context.Context) {
	f.mu.Lock()
	ids := make([]string, 0, len(f.conns))
	var fresh []*Conn
	for id, c := range f.conns {
		ids = append(ids, id)
		if c.needShow {
			fresh = append(fresh, c)
		}
	}
	gone := f.gone
	f.gone = nil
	f.mu.Unlock()
	if len(gone) > 0 {
		if err := f.store.SaveHeartbeats(ctx, gone); err != nil {
			f.log.Warn("disconnected screens not recorded", "err", err)
		}
	}
	if len(ids) == 0 {
		return
	}
	if len(fresh) > 0 {
		f.sendShows(ctx, fresh)
	}
	cmds, err := f.store.Commands(ctx, ids, Queued)
	if err != nil {
		f.log.Warn("screen commands not read", "err", err)
		return
	}
	var done []Command
	var zones map[string]string // each screen's time zone, read for the first "show"
	for _, cmd := range cmds {
		f.mu.Lock()
		c := f.conns[cmd.ScreenID]
		f.mu.Unlock()
		if c == nil {
			continue
		}
		if cmd.Kind == Redirect && zones == nil {
			all, err := f.store.Screens(ctx)
			if err != nil {
				f.log.Warn("screens not read", "err", err)
				return
			}
			zones = map[string]string{}
			for _, s := range all {
				zones[s.ID] = s.Place.Timezone
			}
		}
		msg, err := f.render(ctx, cmd, zones[cmd.ScreenID])
		if err != nil {
			f.log.Warn("screen command not rendered", "screen", cmd.ScreenID, "err", err)
			continue
		}
		if c.send(msg) {
			cmd.State = Delivered
			done = append(done, cmd)
		}
	}
	if len(done) == 0 {
		return
	}
	if err := f.store.SetCommandStates(ctx, done, f.opts.Now()); err != nil {
		f.log.Warn("delivered commands not recorded; they will be sent again", "err", err)
		return
	}
	f.mu.Lock()
	f.stats.Delivered += uint64(len(done))
	f.mu.Unlock()
}

// sendShows sends each newly connected screen its name and what it shows.
func (f *Fleet) sendShows(ctx context.Context, conns []*Conn) {
	all, err := f.store.Screens(ctx)
	if err != nil {
		f.log.Warn("screens not read", "err", err)
		return
	}
	for _, c := range conns {
		i := slices.IndexFunc(all, func(s Screen) bool { return s.ID == c.id })
		if i < 0 || all[i].Unpaired {
			// A display token made by hand, not by pairing (or a screen unpaired meanwhile): no
			// screen to report on or to command.
			f.mu.Lock()
			if f.conns[c.id] == c {
				delete(f.conns, c.id)
			}
			f.mu.Unlock()
			continue
		}
		show := all[i].Show
		arg, _ := json.Marshal(show)
		msg, err := f.render(ctx, Command{Kind: Redirect, Arg: arg, ScreenID: c.id}, all[i].Place.Timezone)
		if err != nil {
			continue
		}
		nm, _ := json.Marshal(message{Type: "command", Command: Rename, Name: all[i].Name})
		if c.send(nm) && c.send(msg) {
			c.f.mu.Lock()
			c.needShow = false
			c.f.mu.Unlock()
		}
	}
}

// render makes the message of a command; a playlist is sent whole, with the zone tz of the
// screen's opening hours.
func (f *Fleet) render(ctx context.Context, cmd Command, tz string) ([]byte, error) {
	m := message{Type: "command", Command: cmd.Kind, ID: cmd.ID}
	switch cmd.Kind {
	case Redirect:
		var s Show
		if err := json.Unmarshal(cmd.Arg, &s); err != nil {
			return nil, err
		}
		m.Show, m.Timezone = &s, tz
		if s.Playlist != "" {
			p, err := f.playlist(ctx, s.Playlist)
			if err != nil {
				return nil, err
			}
			m.Playlist = &p
		}
	case Rename, Identify:
		_ = json.Unmarshal(cmd.Arg, &m.Name)
	}
	return json.Marshal(m)
}

// flush records the heartbeats of the screens connected here.
func (f *Fleet) flush(ctx context.Context) {
	f.mu.Lock()
	hs := make([]Heartbeat, 0, len(f.conns))
	for _, c := range f.conns {
		hs = append(hs, c.hb)
	}
	f.mu.Unlock()
	if len(hs) == 0 {
		return
	}
	if err := f.store.SaveHeartbeats(ctx, hs); err != nil {
		f.log.Warn("screen heartbeats not recorded", "err", err)
	}
}

// Online reports whether s counts as online at now.
func (f *Fleet) Online(s Screen, now time.Time) bool {
	return !s.Unpaired && s.Heartbeat.Connected && now.Sub(s.Heartbeat.At) < f.opts.OfflineAfter
}

// Silent reports whether paired screen s has sent nothing for after at now: its last
// heartbeat, or its pairing when it never sent one, is that old. A wall that reloads is
// offline for a moment but not silent, so a reload of every wall raises no alert.
func Silent(s Screen, now time.Time, after time.Duration) bool {
	return !s.Unpaired && now.Sub(LastSeen(s)) >= after
}

// LastSeen is when s was last heard of: its last heartbeat (its disconnection is one), else
// its pairing.
func LastSeen(s Screen) time.Time {
	if s.Heartbeat.At.IsZero() {
		return s.PairedAt
	}
	return s.Heartbeat.At
}

// sweep counts the screens online and offline, and logs those that went offline.
func (f *Fleet) sweep(ctx context.Context) {
	all, err := f.store.Screens(ctx)
	if err != nil {
		f.log.Warn("screens not read", "err", err)
		return
	}
	now := f.opts.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Online, f.stats.Offline = 0, 0
	for _, s := range all {
		if s.Unpaired {
			delete(f.online, s.ID)
			continue
		}
		on := f.Online(s, now)
		if on {
			f.stats.Online++
		} else {
			f.stats.Offline++
		}
		if was, known := f.online[s.ID]; known && was && !on {
			f.stats.WentOffline++
			f.log.Warn("screen offline", "screen", s.ID, "name", s.Name, "last_seen", s.Heartbeat.At)
		}
		f.online[s.ID] = on
	}
}

// ---- the admin's side ----

// List returns every paired screen.
func (f *Fleet) List(ctx context.Context) ([]Screen, error) {
	all, err := f.store.Screens(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(s Screen) bool { return s.Unpaired }), nil
}

func (f *Fleet) screen(ctx context.Context, id string) (Screen, bool, error) {
	s, ok, err := f.store.Screen(ctx, id)
	return s, ok && !s.Unpaired, err
}

// Send queues a command for screen id: kind with its argument. Rename and redirect change
// the screen's record first; unpair revokes its credential.
func (f *Fleet) Send(ctx context.Context, id, kind string, arg any) (Command, error) {
	s, ok, err := f.screen(ctx, id)
	if err != nil {
		return Command{}, err
	}
	if !ok {
		return Command{}, ErrNoSuchScreen
	}
	now := f.opts.Now()
	switch kind {
	case Rename:
		s.Name = arg.(string)
		if err := f.store.SaveScreens(ctx, []Screen{s}, now); err != nil {
			return Command{}, err
		}
	case Redirect:
		show := arg.(Show)
		if show.Playlist != "" {
			if _, err := f.playlist(ctx, show.Playlist); err != nil {
				return Command{}, err
			}
		}
		s.Show = show
		if err := f.store.SaveScreens(ctx, []Screen{s}, now); err != nil {
			return Command{}, err
		}
	case Identify:
		arg = s.Name
	case Unpair:
		return f.unpair(ctx, s, now)
	}
	queued, err := f.store.Commands(ctx, []string{id}, Queued)
	if err != nil {
		return Command{}, err
	}
	if len(queued) >= f.opts.MaxQueued {
		return Command{}, fmt.Errorf("%w: %d commands wait for this screen, the most allowed; it was last heard of at %s, so this one is undeliverable",
			ErrQueueFull, len(queued), LastSeen(s).UTC().Format(time.RFC3339))
	}
	b, _ := json.Marshal(arg)
	cmd := Command{ID: newID(), ScreenID: id, CreatedAt: now, Kind: kind, Arg: b, State: Queued}
	if err := f.store.QueueCommands(ctx, []Command{cmd}); err != nil {
		return Command{}, err
	}
	f.poke()
	return cmd, nil
}

// SetPlace records screen id's group and time zone. A new time zone is sent to the screen
// with what it shows (a "show" command), since the wall reads its opening hours in it.
func (f *Fleet) SetPlace(ctx context.Context, id string, p Place) (Screen, error) {
	s, ok, err := f.screen(ctx, id)
	if err != nil {
		return Screen{}, err
	}
	if !ok {
		return Screen{}, ErrNoSuchScreen
	}
	if err := f.store.SavePlace(ctx, id, p, f.opts.Now()); err != nil {
		return Screen{}, err
	}
	zoneChanged := s.Place.Timezone != p.Timezone
	s.Place = p
	if zoneChanged {
		// A screen whose queue is full is offline: it gets its zone with what it shows when it
		// connects again.
		if _, err := f.Send(ctx, id, Redirect, s.Show); err != nil && !errors.Is(err, ErrQueueFull) {
			return s, err
		}
	}
	return s, nil
}

// unpair revokes the screen's credential and tells it, if connected, to show a pairing code;
// its queued commands become undeliverable.
func (f *Fleet) unpair(ctx context.Context, s Screen, now time.Time) (Command, error) {
	cmd := Command{ID: newID(), ScreenID: s.ID, CreatedAt: now, Kind: Unpair, State: Delivered}
	f.mu.Lock()
	c := f.conns[s.ID]
	f.mu.Unlock()
	if c != nil {
		msg, _ := json.Marshal(message{Type: "command", Command: Unpair, ID: cmd.ID})
		if !c.send(msg) {
			cmd.State = Undeliverable
		}
	} else {
		// Not connected here: the revoked credential sends it back to pairing wherever it is
		// (its node checks the credential at every ping).
		cmd.State = Undeliverable
	}
	s.Unpaired = true
	if err := f.store.SaveScreens(ctx, []Screen{s}, now); err != nil {
		return Command{}, err
	}
	if _, err := f.store.RevokeDisplayToken(ctx, s.ID, now); err != nil {
		return Command{}, err
	}
	f.opts.CredentialsChanged(ctx)
	queued, err := f.store.Commands(ctx, []string{s.ID}, Queued)
	if err != nil {
		return Command{}, err
	}
	for i := range queued {
		queued[i].State = Undeliverable
	}
	if err := f.store.SetCommandStates(ctx, append(queued, cmd), now); err != nil {
		return Command{}, err
	}
	return cmd, nil
}

// Commands lists the commands of screen id, oldest first.
func (f *Fleet) Commands(ctx context.Context, id string) ([]Command, error) {
	return f.store.Commands(ctx, []string{id}, 0)
}

// Refusal is a screen a command for many could not be queued for, and why.
type Refusal struct {
	ScreenID string
	Err      error
}

// Targets are the screens of a command for many: those of IDs, or those of Group, or every
// paired screen when both are empty.
type Targets struct {
	IDs   []string
	Group string
}

// SendAll queues one command (reload, show or identify) for each screen of to, in one insert:
// the broadcast of "reload every wall after a deploy", or "floor 2 shows the Floor playlist".
// The screens it cannot queue for (unknown, or their queue full) are refused one by one; a
// group without screens is refused whole (ErrNoSuchGroup).
func (f *Fleet) SendAll(ctx context.Context, to Targets, kind string, arg any) ([]Command, []Refusal, error) {
	all, err := f.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[string]Screen, len(all))
	for _, s := range all {
		byID[s.ID] = s
	}
	var targets []Screen
	var refused []Refusal
	switch {
	case to.Group != "":
		for _, s := range all {
			if s.Place.Group == to.Group {
				targets = append(targets, s)
			}
		}
		if len(targets) == 0 {
			return nil, nil, fmt.Errorf("%w %q", ErrNoSuchGroup, to.Group)
		}
	case to.IDs == nil:
		targets = all
	}
	for _, id := range to.IDs {
		if s, ok := byID[id]; ok {
			targets = append(targets, s)
		} else {
			refused = append(refused, Refusal{id, ErrNoSuchScreen})
		}
	}
	if kind == Redirect {
		if show := arg.(Show); show.Playlist != "" {
			if _, err := f.playlist(ctx, show.Playlist); err != nil {
				return nil, nil, err
			}
		}
	}
	targetIDs := make([]string, len(targets))
	for i, s := range targets {
		targetIDs[i] = s.ID
	}
	waiting, err := f.store.Commands(ctx, targetIDs, Queued)
	if err != nil {
		return nil, nil, err
	}
	perScreen := map[string]int{}
	for _, c := range waiting {
		perScreen[c.ScreenID]++
	}
	now := f.opts.Now()
	var cmds []Command
	var changed []Screen
	for _, s := range targets {
		if perScreen[s.ID] >= f.opts.MaxQueued {
			refused = append(refused, Refusal{s.ID, fmt.Errorf("%w: %d commands wait for this screen; this one is undeliverable", ErrQueueFull, perScreen[s.ID])})
			continue
		}
		a := arg
		switch kind {
		case Identify:
			a = s.Name
		case Redirect:
			s.Show = arg.(Show)
			changed = append(changed, s)
		}
		b, _ := json.Marshal(a)
		cmds = append(cmds, Command{ID: newID(), ScreenID: s.ID, CreatedAt: now, Kind: kind, Arg: b, State: Queued})
	}
	if len(changed) > 0 {
		if err := f.store.SaveScreens(ctx, changed, now); err != nil {
			return nil, nil, err
		}
	}
	if len(cmds) > 0 {
		if err := f.store.QueueCommands(ctx, cmds); err != nil {
			return nil, nil, err
		}
		f.poke()
	}
	return cmds, refused, nil
}
