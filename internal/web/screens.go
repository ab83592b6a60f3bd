package web

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/quota"
	"github.com/truthboard/truthboard/internal/screen"
)

// Fleet is the screens' component: pairing, the screens' state and commands, playlists;
// *screen.Fleet in production.
type Fleet interface {
	Wait(ctx context.Context, addr string) (*screen.Waiter, error)
	Leave(w *screen.Waiter)
	Pair(ctx context.Context, code, name string, show screen.Show, place screen.Place) (screen.Screen, error)
	Connect(id string, send func([]byte) bool) *screen.Conn
	List(ctx context.Context) ([]screen.Screen, error)
	Online(s screen.Screen, now time.Time) bool
	Send(ctx context.Context, id, kind string, arg any) (screen.Command, error)
	SendAll(ctx context.Context, to screen.Targets, kind string, arg any) ([]screen.Command, []screen.Refusal, error)
	SetPlace(ctx context.Context, id string, p screen.Place) (screen.Screen, error)
	Commands(ctx context.Context, id string) ([]screen.Command, error)
	SavePlaylist(ctx context.Context, p screen.Playlist) error
	DeletePlaylist(ctx context.Context, name string) error
	Playlists(ctx context.Context) ([]screen.Playlist, error)
}

// ScreenOptions are the settings of the screens' routes.
type ScreenOptions struct {
	// Fleet manages the screens; nil leaves /v1/screens, /v1/playlists and pairing out.
	Fleet Fleet
	// WrongCodesPerMinute is how many wrong, expired or used pairing codes one client address
	// may enter per minute, in a burst (default 10); beyond, POST /v1/screens/pair answers 429.
	WrongCodesPerMinute int
}

// routeScreens adds pairing, the screens' admin API and the playlists.
func (s *Server) routeScreens() {
	f := s.opts.Screens.Fleet
	if f == nil {
		return
	}
	per := s.opts.Screens.WrongCodesPerMinute
	if per <= 0 {
		per = 10
	}
	s.wrongCodes = quota.NewBuckets(float64(per)/60, per, 100_000)
	s.app.Get("/v1/screens/pairing", s.pairingUpgrade, websocket.New(s.pairingConn, websocket.Config{HandshakeTimeout: 10 * time.Second}))
	admin := []fiber.Handler{s.adminOnly(), s.csrfProtect(true)}
	s.app.Post("/v1/screens/pair", append(admin, s.pairScreen)...)
	s.app.Get("/v1/screens", append(admin, s.listScreens)...)
	s.app.Post("/v1/screens/commands", append(admin, s.broadcastCommand)...)
	s.app.Post("/v1/screens/:id/commands", append(admin, s.screenCommand)...)
	s.app.Patch("/v1/screens/:id", append(admin, s.patchScreen)...)
	s.app.Get("/v1/screens/:id/commands", append(admin, s.screenCommands)...)
	s.app.Delete("/v1/screens/:id", append(admin, func(c *fiber.Ctx) error { return s.sendCommand(c, c.Params("id"), screen.Unpair, nil) })...)
	s.app.Get("/v1/playlists", append(admin, s.listPlaylists)...)
	s.app.Put("/v1/playlists/:name", append(admin, s.putPlaylist)...)
	s.app.Delete("/v1/playlists/:name", append(admin, s.deletePlaylist)...)
}

// ---- pairing ----

// pairingUpgrade admits a TV asking for a pairing code: no credential, the origin checked. The
// codes one address and one node may have waiting are bounded by the fleet.
func (s *Server) pairingUpgrade(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return c.Status(fiber.StatusUpgradeRequired).JSON(apiError{Error: "GET /v1/screens/pairing is a WebSocket: open /tv on the screen to pair it"})
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" && !s.originAllowed(origin, c.Hostname()) {
		return c.Status(fiber.StatusForbidden).JSON(apiError{Error: "origin " + origin + " may not pair screens; add it to the allowed origins"})
	}
	w, err := s.opts.Screens.Fleet.Wait(c.UserContext(), addressKey(s.clientAddr(c)))
	if err != nil {
		if errors.Is(err, screen.ErrTooManyPending) {
			c.Set(fiber.HeaderRetryAfter, "60")
			return c.Status(fiber.StatusTooManyRequests).JSON(apiError{Error: err.Error()})
		}
		return s.storeError(c, err)
	}
	c.Locals(waiterLocal, w)
	err = c.Next()
	if c.Response().StatusCode() != fiber.StatusSwitchingProtocols {
		s.opts.Screens.Fleet.Leave(w)
	}
	return err
}

const waiterLocal = "truthboard.screens.waiter"

// pairingMessage is what a TV waiting for pairing receives.
type pairingMessage struct {
	Type      string     `json:"type"` // "code", then "paired"
	Code      string     `json:"code,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Token     string     `json:"token,omitempty"`
	Screen    *screenRef `json:"screen,omitempty"`
}

type screenRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Close codes of the pairing socket.
const (
	closeCodeExpired = 4408 // the code expired: connect again for a new one
)

// pairingConn shows a TV its code and hands it its credential once an admin entered it.
func (s *Server) pairingConn(conn *websocket.Conn) {
	w, _ := conn.Locals(waiterLocal).(*screen.Waiter)
	if w == nil {
		return
	}
	f := s.opts.Screens.Fleet
	defer f.Leave(w)
	o := s.opts.Live
	conn.SetReadLimit(512)
	pongWait := 2 * o.PingInterval
	_ = conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	gone := make(chan struct{})
	go func() { // the TV sends nothing; reading notices it leave and answers pings
		defer close(gone)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	write := func(m pairingMessage) bool {
		b, _ := json.Marshal(m)
		_ = conn.SetWriteDeadline(time.Now().Add(o.WriteTimeout))
		return conn.WriteMessage(websocket.TextMessage, b) == nil
	}
	closeWith := func(code int, reason string) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		<-gone
	}
	exp := w.ExpiresAt.UTC()
	if !write(pairingMessage{Type: "code", Code: w.Code, ExpiresAt: &exp}) {
		_ = conn.Close()
		<-gone
		return
	}
	ping := time.NewTicker(o.PingInterval)
	defer ping.Stop()
	for {
		select {
		case p, ok := <-w.Paired():
			if !ok {
				closeWith(closeCodeExpired, "code expired")
				return
			}
			write(pairingMessage{Type: "paired", Token: p.Token, Screen: &screenRef{ID: p.Screen.ID, Name: p.Screen.Name}})
			closeWith(websocket.CloseNormalClosure, "paired")
			return
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(o.WriteTimeout)); err != nil {
				_ = conn.Close()
				<-gone
				return
			}
		case <-gone:
			return
		}
	}
}

// pairRequest is the body of POST /v1/screens/pair.
type pairRequest struct {
	Code string      `json:"code"`
	Name string      `json:"name"`
	Show screen.Show `json:"show"`
	screen.Place
}

// pairScreen pairs the TV showing a code. Wrong, expired and used codes count against the
// client address, which is refused for a while after too many.
func (s *Server) pairScreen(c *fiber.Ctx) error {
	addr := "pair " + addressKey(s.clientAddr(c))
	if wait := s.wrongCodes.Wait(addr, time.Now()); wait > 0 {
		secs := retryAfter(wait)
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
		return c.Status(fiber.StatusTooManyRequests).JSON(apiError{Error: "too many wrong pairing codes came from this address: try again in " + strconv.Itoa(secs) + " s, reading the code off the TV"})
	}
	var req pairRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: `the body must be one JSON object such as {"code": "K7P2QX", "name": "Wall 3", "show": {"view": "tv"}}: ` + err.Error()})
	}
	code, ok := screen.NormalizeCode(req.Code)
	if !ok {
		s.wrongCodes.Take(addr, time.Now())
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: "code", Error: "code: " + strconv.Quote(shortText(req.Code)) +
			" is not a pairing code: 6 characters of " + screen.CodeAlphabet + ", as the TV shows it"})
	}
	if err := screen.ValidateName("name", req.Name); err != nil {
		return fieldErr(c, err)
	}
	if req.Show.View == "" && req.Show.Playlist == "" {
		req.Show.View = "tv"
	}
	if err := req.Show.Validate("show"); err != nil {
		return fieldErr(c, err)
	}
	if err := req.Place.Validate(""); err != nil {
		return fieldErr(c, err)
	}
	sc, err := s.opts.Screens.Fleet.Pair(c.UserContext(), code, strings.TrimSpace(req.Name), req.Show, req.Place)
	switch {
	case errors.Is(err, screen.ErrNoSuchCode):
		s.wrongCodes.Take(addr, time.Now())
		return c.Status(fiber.StatusNotFound).JSON(fieldError{Field: "code", Error: "code " + code + ": " + err.Error()})
	case errors.Is(err, screen.ErrCodeUsed):
		s.wrongCodes.Take(addr, time.Now())
		return c.Status(fiber.StatusConflict).JSON(fieldError{Field: "code", Error: "code " + code + ": " + err.Error()})
	case errors.Is(err, screen.ErrCodeExpired):
		s.wrongCodes.Take(addr, time.Now())
		return c.Status(fiber.StatusGone).JSON(fieldError{Field: "code", Error: "code " + code + ": " + err.Error()})
	case errors.Is(err, screen.ErrNoSuchPlaylist):
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: "show.playlist", Error: "show.playlist: " + err.Error()})
	case errors.Is(err, screen.ErrPairTimeout):
		return c.Status(fiber.StatusGatewayTimeout).JSON(apiError{Error: err.Error()})
	case err != nil:
		return s.storeError(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(s.screenJSON(sc, time.Now(), nil, nil))
}

// ---- the screens ----

// screenJSON is a screen as GET /v1/screens shows it.
type screenJSON struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Show       screen.Show `json:"show"`
	Group      string      `json:"group,omitempty"`
	Timezone   string      `json:"timezone,omitempty"`
	PairedAt   time.Time   `json:"paired_at"`
	State      string      `json:"state"` // "online" or "offline"
	Connected  bool        `json:"connected"`
	LastSeen   *time.Time  `json:"last_seen,omitempty"`
	Node       string      `json:"node,omitempty"`
	Resolution string      `json:"resolution,omitempty"`
	Version    string      `json:"version,omitempty"`
	Errors     []string    `json:"errors,omitempty"`
	// Hours is what its playlist's schedule has it do now ("open", "blank", "dim"), when it
	// has a schedule and a time zone.
	Hours string `json:"hours,omitempty"`
	// Alert is its firing ScreenOffline alert, as GET /v1/alerts lists it.
	Alert *alert.Alert `json:"alert,omitempty"`
}

// screenJSON is sc as the API shows it; playlists and alerts (by screen id) may be nil.
func (s *Server) screenJSON(sc screen.Screen, now time.Time, playlists map[string]screen.Playlist, alerts map[string]alert.Alert) screenJSON {
	j := screenJSON{ID: sc.ID, Name: sc.Name, Show: sc.Show, Group: sc.Place.Group, Timezone: sc.Place.Timezone, PairedAt: sc.PairedAt, State: "offline",
		Connected: sc.Heartbeat.Connected, Node: sc.Heartbeat.Node, Resolution: sc.Heartbeat.Resolution,
		Version: sc.Heartbeat.Version, Errors: sc.Heartbeat.Errors}
	if s.opts.Screens.Fleet.Online(sc, now) {
		j.State = "online"
	}
	if !sc.Heartbeat.At.IsZero() {
		at := sc.Heartbeat.At
		j.LastSeen = &at
	}
	if p, ok := playlists[sc.Show.Playlist]; ok && p.Schedule != nil && sc.Place.Timezone != "" {
		if loc, err := screen.Location(sc.Place.Timezone); err == nil {
			j.Hours = cmp.Or(p.Schedule.At(now, loc), "open")
		}
	}
	if a, ok := alerts[sc.ID]; ok {
		j.Alert = &a
	}
	return j
}

// listScreens answers GET /v1/screens[?group=name].
func (s *Server) listScreens(c *fiber.Ctx) error {
	var group *string
	var problem *fieldError
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		switch key := string(k); {
		case problem != nil:
		case key == "group":
			g := string(v)
			group = &g
			if err := screen.ValidateGroup("group", g); err != nil {
				problem = &fieldError{Field: "group", Error: err.Error()}
			}
		default:
			problem = &fieldError{Field: key, Error: "unknown parameter " + strconv.Quote(shortText(key)) + ": use group"}
		}
	})
	if problem != nil {
		return c.Status(fiber.StatusBadRequest).JSON(problem)
	}
	f := s.opts.Screens.Fleet
	all, err := f.List(c.UserContext())
	if err != nil {
		return s.storeError(c, err)
	}
	lists, err := f.Playlists(c.UserContext())
	if err != nil {
		return s.storeError(c, err)
	}
	playlists := make(map[string]screen.Playlist, len(lists))
	for _, p := range lists {
		playlists[p.Name] = p
	}
	alerts := s.screenAlerts()
	now := time.Now()
	out := make([]screenJSON, 0, len(all))
	for _, sc := range all {
		if group != nil && sc.Place.Group != *group {
			continue
		}
		out = append(out, s.screenJSON(sc, now, playlists, alerts))
	}
	return c.JSON(fiber.Map{"screens": out})
}

// screenAlerts are the firing ScreenOffline alerts by screen id.
func (s *Server) screenAlerts() map[string]alert.Alert {
	out := map[string]alert.Alert{}
	if s.opts.Alerts == nil {
		return out
	}
	for _, a := range s.opts.Alerts.Active() {
		if a.Labels["alertname"] == screen.OfflineAlert && a.State == alert.Firing {
			out[a.Labels["screen"]] = a
		}
	}
	return out
}

// patchScreen answers PATCH /v1/screens/{id} {"group": …, "timezone": …}: the fields given
// change, "" clears one.
func (s *Server) patchScreen(c *fiber.Ctx) error {
	var req struct {
		Group    *string `json:"group"`
		Timezone *string `json:"timezone"`
	}
	if err := decodeStrict(c.Body(), &req); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: `the body must be one JSON object such as {"group": "floor 2", "timezone": "Europe/Paris"}: ` + err.Error()})
	}
	if req.Group == nil && req.Timezone == nil {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: `give group, timezone or both, e.g. {"group": "floor 2"}; "" clears one`})
	}
	f, id := s.opts.Screens.Fleet, c.Params("id")
	all, err := f.List(c.UserContext())
	if err != nil {
		return s.storeError(c, err)
	}
	i := slices.IndexFunc(all, func(sc screen.Screen) bool { return sc.ID == id })
	if i < 0 {
		return c.Status(fiber.StatusNotFound).JSON(apiError{Error: "no paired screen has the id " + strconv.Quote(shortText(id)) + ": see GET /v1/screens"})
	}
	p := all[i].Place
	if req.Group != nil {
		p.Group = *req.Group
	}
	if req.Timezone != nil {
		p.Timezone = *req.Timezone
	}
	if err := p.Validate(""); err != nil {
		return fieldErr(c, err)
	}
	sc, err := f.SetPlace(c.UserContext(), id, p)
	switch {
	case errors.Is(err, screen.ErrNoSuchScreen):
		return c.Status(fiber.StatusNotFound).JSON(apiError{Error: "no paired screen has the id " + strconv.Quote(shortText(id)) + ": see GET /v1/screens"})
	case err != nil:
		return s.storeError(c, err)
	}
	return c.JSON(s.screenJSON(sc, time.Now(), nil, s.screenAlerts()))
}

// commandRequest is the body of POST /v1/screens/{id}/commands.
type commandRequest struct {
	Command string       `json:"command"`
	Name    string       `json:"name,omitempty"`
	Show    *screen.Show `json:"show,omitempty"`
}

// commandKinds are the commands of one screen.
var commandKinds = []string{screen.Reload, screen.Redirect, screen.Identify, screen.Rename, screen.Unpair}

func (s *Server) screenCommand(c *fiber.Ctx) error {
	var req commandRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: `the body must be one JSON object such as {"command": "reload"}: ` + err.Error()})
	}
	arg, err := req.argument(commandKinds)
	if err != nil {
		return fieldErr(c, err)
	}
	return s.sendCommand(c, c.Params("id"), req.Command, arg)
}

// argument checks a command request and returns its argument; kinds are the commands allowed.
func (req commandRequest) argument(kinds []string) (any, error) {
	if !slices.Contains(kinds, req.Command) {
		return nil, &screen.FieldError{Field: "command", Message: strconv.Quote(shortText(req.Command)) + " is not a command here: use one of " + strings.Join(kinds, ", ")}
	}
	switch req.Command {
	case screen.Rename:
		if err := screen.ValidateName("name", req.Name); err != nil {
			return nil, err
		}
		return strings.TrimSpace(req.Name), nil
	case screen.Redirect:
		if req.Show == nil {
			return nil, &screen.FieldError{Field: "show", Message: `is required, e.g. {"view": "heatmap", "window": "1h"} or {"playlist": "Floor"}`}
		}
		if err := req.Show.Validate("show"); err != nil {
			return nil, err
		}
		return *req.Show, nil
	}
	return nil, nil
}

// broadcastRequest is the body of POST /v1/screens/commands.
type broadcastRequest struct {
	commandRequest
	// Screens are the ids of the screens, Group names a group of them; both absent: every
	// paired screen.
	Screens []string `json:"screens"`
	Group   *string  `json:"group"`
}

// broadcastKinds are the commands that may go to many screens at once.
var broadcastKinds = []string{screen.Reload, screen.Redirect, screen.Identify}

// maxBroadcastScreens bounds the ids of one POST /v1/screens/commands.
const maxBroadcastScreens = 10_000

// broadcastCommand queues one command for many screens in one request.
func (s *Server) broadcastCommand(c *fiber.Ctx) error {
	var req broadcastRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: `the body must be one JSON object such as {"command": "reload"} or {"command": "reload", "screens": ["9c34086fc745b5b7"]}: ` + err.Error()})
	}
	arg, err := req.argument(broadcastKinds)
	if err != nil {
		return fieldErr(c, err)
	}
	if len(req.Screens) > maxBroadcastScreens {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: "screens", Error: "screens: " + strconv.Itoa(len(req.Screens)) + " ids; at most " + strconv.Itoa(maxBroadcastScreens) + " (leave screens out for every screen)"})
	}
	if req.Screens != nil && len(req.Screens) == 0 {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: "screens", Error: "screens: empty; leave it out for every screen"})
	}
	to := screen.Targets{IDs: req.Screens}
	if req.Group != nil {
		if req.Screens != nil {
			return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: "group", Error: "group: give screens or group, not both"})
		}
		if err := screen.ValidateGroup("group", *req.Group); err != nil {
			return fieldErr(c, err)
		}
		to.Group = *req.Group
	}
	cmds, refused, err := s.opts.Screens.Fleet.SendAll(c.UserContext(), to, req.Command, arg)
	if errors.Is(err, screen.ErrNoSuchPlaylist) {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: "show.playlist", Error: "show.playlist: " + err.Error()})
	}
	if errors.Is(err, screen.ErrNoSuchGroup) {
		return c.Status(fiber.StatusNotFound).JSON(fieldError{Field: "group", Error: "group: " + err.Error() + ": see the groups in GET /v1/screens"})
	}
	if err != nil {
		return s.storeError(c, err)
	}
	type refusal struct {
		Screen string `json:"screen"`
		Error  string `json:"error"`
	}
	out := struct {
		Queued        int           `json:"queued"`
		Commands      []commandJSON `json:"commands"`
		Undeliverable []refusal     `json:"undeliverable"`
	}{Queued: len(cmds), Commands: []commandJSON{}, Undeliverable: []refusal{}}
	for _, cmd := range cmds {
		j := toCommandJSON(cmd)
		j.Screen = cmd.ScreenID
		out.Commands = append(out.Commands, j)
	}
	for _, r := range refused {
		out.Undeliverable = append(out.Undeliverable, refusal{r.ScreenID, r.Err.Error()})
	}
	return c.Status(fiber.StatusAccepted).JSON(out)
}

// commandJSON is a command as the API shows it.
type commandJSON struct {
	ID        string          `json:"id"`
	Screen    string          `json:"screen,omitempty"` // in an answer about many screens
	Command   string          `json:"command"`
	Arg       json.RawMessage `json:"arg,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	State     string          `json:"state"` // queued, delivered, undeliverable
}

func toCommandJSON(cmd screen.Command) commandJSON {
	j := commandJSON{ID: cmd.ID, Command: cmd.Kind, CreatedAt: cmd.CreatedAt, State: cmd.StateName()}
	if len(cmd.Arg) > 0 && string(cmd.Arg) != "null" {
		j.Arg = cmd.Arg
	}
	return j
}

func (s *Server) sendCommand(c *fiber.Ctx, id, kind string, arg any) error {
	cmd, err := s.opts.Screens.Fleet.Send(c.UserContext(), id, kind, arg)
	switch {
	case errors.Is(err, screen.ErrNoSuchScreen):
		return c.Status(fiber.StatusNotFound).JSON(apiError{Error: "no paired screen has the id " + strconv.Quote(shortText(id)) + ": see GET /v1/screens"})
	case errors.Is(err, screen.ErrQueueFull):
		return c.Status(fiber.StatusConflict).JSON(apiError{Error: err.Error()})
	case errors.Is(err, screen.ErrNoSuchPlaylist):
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: "show.playlist", Error: "show.playlist: " + err.Error()})
	case err != nil:
		return s.storeError(c, err)
	}
	return c.Status(fiber.StatusAccepted).JSON(toCommandJSON(cmd))
}

func (s *Server) screenCommands(c *fiber.Ctx) error {
	cmds, err := s.opts.Screens.Fleet.Commands(c.UserContext(), c.Params("id"))
	if err != nil {
		return s.storeError(c, err)
	}
	out := make([]commandJSON, 0, len(cmds))
	for _, cmd := range cmds {
		out = append(out, toCommandJSON(cmd))
	}
	return c.JSON(fiber.Map{"commands": out})
}

// ---- playlists ----

func (s *Server) listPlaylists(c *fiber.Ctx) error {
	all, err := s.opts.Screens.Fleet.Playlists(c.UserContext())
	if err != nil {
		return s.storeError(c, err)
	}
	if all == nil {
		all = []screen.Playlist{}
	}
	return c.JSON(fiber.Map{"playlists": all})
}

func (s *Server) putPlaylist(c *fiber.Ctx) error {
	var p screen.Playlist
	if err := decodeStrict(c.Body(), &p); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: `the body must be one JSON object such as {"items": [{"view": "overview", "dwell": "30s"}]}: ` + err.Error()})
	}
	name := c.Params("name")
	if p.Name == "" {
		p.Name = name
	}
	if p.Name != name {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: "name", Error: "name: " + strconv.Quote(shortText(p.Name)) + " differs from the playlist's name in the path, " + strconv.Quote(shortText(name)) + ": leave it out"})
	}
	if err := s.opts.Screens.Fleet.SavePlaylist(c.UserContext(), p); err != nil {
		var fe *screen.FieldError
		if errors.As(err, &fe) {
			return fieldErr(c, err)
		}
		return s.storeError(c, err)
	}
	return c.JSON(p)
}

func (s *Server) deletePlaylist(c *fiber.Ctx) error {
	err := s.opts.Screens.Fleet.DeletePlaylist(c.UserContext(), c.Params("name"))
	switch {
	case errors.Is(err, screen.ErrNoSuchPlaylist):
		return c.Status(fiber.StatusNotFound).JSON(apiError{Error: err.Error()})
	case err != nil && !unavailable(err) && strings.Contains(err.Error(), "shows this playlist"):
		return c.Status(fiber.StatusConflict).JSON(apiError{Error: err.Error()})
	case err != nil:
		return s.storeError(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// ---- helpers ----

// decodeStrict reads one JSON object into v, refusing unknown fields.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("send one object")
	}
	return nil
}

func fieldErr(c *fiber.Ctx, err error) error {
	var fe *screen.FieldError
	if errors.As(err, &fe) {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: fe.Field, Error: fe.Error()})
	}
	return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: err.Error()})
}

// shortText cuts what a client sent to 40 characters for an error message.
func shortText(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}
