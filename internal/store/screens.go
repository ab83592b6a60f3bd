package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/truthboard/truthboard/internal/screen"
)

// The screens' tables (clickhouse/migrations/0011_screens.sql) are append-only logs; each
// reading query takes the latest row of a key with argMax on its nanosecond version.

// insertRows inserts rows into table's columns in one batch.
func (s *Store) insertRows(ctx context.Context, table string, columns []string, rows [][]any) (err error) {
	defer markUnavailable(&err)
	if len(rows) == 0 {
		return nil
	}
	conn, err := s.connection()
	if err != nil {
		return err
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+strings.Join(columns, ", ")+")")
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", table, err)
	}
	defer batch.Abort()
	for _, r := range rows {
		if err := batch.Append(r...); err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", len(rows), table, err)
	}
	return nil
}

// query runs q and calls scan for each row.
func (s *Store) query(ctx context.Context, what, q string, args []any, scan func(rowScanner) error) (err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return err
	}
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}

type rowScanner interface{ Scan(dest ...any) error }

func unixNano(t time.Time) uint64 { return uint64(max(t.UnixNano(), 0)) }

var pairingColumns = []string{"code", "address", "created_at", "expires_at", "claimed", "screen_id", "name", "shows", "changed_ns"}

func pairingRow(p screen.Pairing, claimed uint8, at time.Time) []any {
	show := ""
	if claimed == 1 {
		b, _ := json.Marshal(p.Show)
		show = string(b)
	}
	return []any{p.Code, p.Address, p.CreatedAt.UTC().Truncate(time.Second), p.ExpiresAt.UTC().Truncate(time.Second),
		claimed, p.ScreenID, p.Name, show, unixNano(at)}
}

// CreatePairing records a TV's request for a pairing code.
func (s *Store) CreatePairing(ctx context.Context, p screen.Pairing) error {
	return s.insertRows(ctx, "screen_pairings", pairingColumns, [][]any{pairingRow(p, 0, p.CreatedAt)})
}

// ClaimPairing records an admin's claim of p.Code for the screen p.ScreenID.
func (s *Store) ClaimPairing(ctx context.Context, p screen.Pairing, at time.Time) error {
	return s.insertRows(ctx, "screen_pairings", pairingColumns, [][]any{pairingRow(p, 1, at)})
}

// PairingsSQL reads each code's request and its earliest claim.
const PairingsSQL = `SELECT code, anyIf(address, claimed = 0), toUInt32(minIf(created_at, claimed = 0)),
	toUInt32(minIf(expires_at, claimed = 0)), max(claimed),
	argMinIf(screen_id, changed_ns, claimed = 1), argMinIf(name, changed_ns, claimed = 1), argMinIf(shows, changed_ns, claimed = 1)
FROM screen_pairings WHERE code IN ? GROUP BY code HAVING countIf(claimed = 0) > 0 ORDER BY code`

// Pairings returns the state of the codes that exist among codes.
func (s *Store) Pairings(ctx context.Context, codes []string) ([]screen.Pairing, error) {
	if len(codes) == 0 {
		return nil, nil
	}
	var out []screen.Pairing
	err := s.query(ctx, "pairing codes", PairingsSQL, []any{clickhouse.GroupSet{Value: toAny(codes)}}, func(r rowScanner) error {
		var (
			p                screen.Pairing
			created, expires uint32
			claimed          uint8
			show             string
		)
		if err := r.Scan(&p.Code, &p.Address, &created, &expires, &claimed, &p.ScreenID, &p.Name, &show); err != nil {
			return err
		}
		p.CreatedAt, p.ExpiresAt, p.Claimed = time.Unix(int64(created), 0).UTC(), time.Unix(int64(expires), 0).UTC(), claimed == 1
		if p.Claimed && show != "" {
			if err := json.Unmarshal([]byte(show), &p.Show); err != nil {
				return fmt.Errorf("code %s: malformed shows: %w", p.Code, err)
			}
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// PrunePairings deletes the pairing codes that expired before before, their claims with them,
// in one mutation, and returns how many codes it deletes; it sends none when there is nothing
// to delete. It does not wait for the mutation, which ClickHouse runs part by part: the fleet's
// loop, which delivers the screens' commands, is not held meanwhile.
func (s *Store) PrunePairings(ctx context.Context, before time.Time) (n int, err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return 0, err
	}
	cut := before.UTC().Truncate(time.Second)
	var codes uint64
	if err := conn.QueryRow(ctx, "SELECT uniqExact(code) FROM screen_pairings WHERE expires_at < ?", cut).Scan(&codes); err != nil {
		return 0, fmt.Errorf("count expired pairing codes: %w", err)
	}
	if codes == 0 {
		return 0, nil
	}
	if err := conn.Exec(ctx, "ALTER TABLE "+s.ddlTable("screen_pairings")+" DELETE WHERE expires_at < ?", cut); err != nil {
		return 0, fmt.Errorf("delete expired pairing codes: %w", err)
	}
	return int(codes), nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

var screenColumns = []string{"id", "name", "shows", "paired_at", "unpaired", "changed_ns"}

// SaveScreens records the state of screens, in one insert: their pairing, a rename or redirect,
// their unpairing.
func (s *Store) SaveScreens(ctx context.Context, scs []screen.Screen, at time.Time) error {
	rows := make([][]any, 0, len(scs))
	for _, sc := range scs {
		show, _ := json.Marshal(sc.Show)
		var unpaired uint8
		if sc.Unpaired {
			unpaired = 1
		}
		rows = append(rows, []any{sc.ID, sc.Name, string(show), sc.PairedAt.UTC().Truncate(time.Second), unpaired, unixNano(at)})
	}
	return s.insertRows(ctx, "screens", screenColumns, rows)
}

// ScreensSQL reads each screen's latest state and its latest heartbeat; screensWhere narrows
// both to one screen.
const ScreensSQL = `SELECT s.id, s.s_name, s.s_shows, s.s_paired, s.s_unpaired,
	h.h_at, h.h_node, h.h_connected, h.h_resolution, h.h_version, h.h_errors
FROM (
	SELECT id, argMax(name, changed_ns) AS s_name, argMax(shows, changed_ns) AS s_shows,
		toUInt32(min(paired_at)) AS s_paired, max(unpaired) AS s_unpaired
	FROM screens /*where*/ GROUP BY id
) AS s
LEFT JOIN (
	SELECT id, max(at_ns) AS h_at, argMax(node, at_ns) AS h_node, argMax(connected, at_ns) AS h_connected,
		argMax(resolution, at_ns) AS h_resolution, argMax(version, at_ns) AS h_version, argMax(errors, at_ns) AS h_errors
	FROM screen_heartbeats /*where*/ GROUP BY id
) AS h USING id
ORDER BY s.s_paired, s.id`

// PlacesSQL reads each screen's latest group and time zone; the where narrows it to one.
const PlacesSQL = `SELECT id, argMax(screen_group, changed_ns), argMax(timezone, changed_ns) FROM screen_places /*where*/ GROUP BY id`

// Screens lists every screen with its last heartbeat and its place, unpaired ones too.
func (s *Store) Screens(ctx context.Context) ([]screen.Screen, error) {
	all, err := s.screens(ctx, strings.ReplaceAll(ScreensSQL, "/*where*/", ""), nil)
	if err != nil {
		return nil, err
	}
	return all, s.places(ctx, all, strings.ReplaceAll(PlacesSQL, "/*where*/", ""), nil)
}

// Screen reads one screen with its last heartbeat and its place; found is false when it was
// never paired.
func (s *Store) Screen(ctx context.Context, id string) (sc screen.Screen, found bool, err error) {
	all, err := s.screens(ctx, strings.ReplaceAll(ScreensSQL, "/*where*/", "WHERE id = ?"), []any{id, id})
	if err != nil || len(all) == 0 {
		return screen.Screen{}, false, err
	}
	if err := s.places(ctx, all, strings.ReplaceAll(PlacesSQL, "/*where*/", "WHERE id = ?"), []any{id}); err != nil {
		return screen.Screen{}, false, err
	}
	return all[0], true, nil
}

// places fills in the place of each of scs from q's answer (a second query rather than a
// second JOIN, which ClickHouse 18.16 does not take in one SELECT).
func (s *Store) places(ctx context.Context, scs []screen.Screen, q string, args []any) error {
	byID := make(map[string]*screen.Screen, len(scs))
	for i := range scs {
		byID[scs[i].ID] = &scs[i]
	}
	return s.query(ctx, "screen places", q, args, func(r rowScanner) error {
		var id string
		var p screen.Place
		if err := r.Scan(&id, &p.Group, &p.Timezone); err != nil {
			return err
		}
		if sc := byID[id]; sc != nil {
			sc.Place = p
		}
		return nil
	})
}

// SavePlace records screen id's group and time zone.
func (s *Store) SavePlace(ctx context.Context, id string, p screen.Place, at time.Time) error {
	return s.insertRows(ctx, "screen_places", []string{"id", "screen_group", "timezone", "changed_ns"},
		[][]any{{id, p.Group, p.Timezone, unixNano(at)}})
}

func (s *Store) screens(ctx context.Context, q string, args []any) ([]screen.Screen, error) {
	var out []screen.Screen
	err := s.query(ctx, "screens", q, args, func(r rowScanner) error {
		var (
			sc                  screen.Screen
			show, errs          string
			paired              uint32
			unpaired, connected uint8
			atNs                uint64
		)
		if err := r.Scan(&sc.ID, &sc.Name, &show, &paired, &unpaired, &atNs, &sc.Heartbeat.Node, &connected,
			&sc.Heartbeat.Resolution, &sc.Heartbeat.Version, &errs); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(show), &sc.Show); err != nil {
			return fmt.Errorf("screen %s: malformed shows: %w", sc.ID, err)
		}
		sc.PairedAt, sc.Unpaired = time.Unix(int64(paired), 0).UTC(), unpaired == 1
		sc.Heartbeat.ID, sc.Heartbeat.Connected = sc.ID, connected == 1
		if atNs > 0 {
			sc.Heartbeat.At = time.Unix(0, int64(atNs)).UTC()
		}
		if errs != "" {
			_ = json.Unmarshal([]byte(errs), &sc.Heartbeat.Errors)
		}
		out = append(out, sc)
		return nil
	})
	return out, err
}

var heartbeatColumns = []string{"id", "node", "at_ns", "connected", "resolution", "version", "errors"}

// SaveHeartbeats records the last heartbeat of screens, in one insert.
func (s *Store) SaveHeartbeats(ctx context.Context, hs []screen.Heartbeat) error {
	rows := make([][]any, 0, len(hs))
	for _, h := range hs {
		var connected uint8
		if h.Connected {
			connected = 1
		}
		errs := ""
		if len(h.Errors) > 0 {
			b, _ := json.Marshal(h.Errors)
			errs = string(b)
		}
		rows = append(rows, []any{h.ID, h.Node, unixNano(h.At), connected, h.Resolution, h.Version, errs})
	}
	return s.insertRows(ctx, "screen_heartbeats", heartbeatColumns, rows)
}

var commandColumns = []string{"id", "screen_id", "created_ns", "kind", "arg", "state", "changed_ns"}

func commandRow(c screen.Command, at time.Time) []any {
	return []any{c.ID, c.ScreenID, unixNano(c.CreatedAt), c.Kind, string(c.Arg), c.State, unixNano(at)}
}

// QueueCommands records commands for screens, in one insert.
func (s *Store) QueueCommands(ctx context.Context, cs []screen.Command) error {
	rows := make([][]any, 0, len(cs))
	for _, c := range cs {
		rows = append(rows, commandRow(c, c.CreatedAt))
	}
	return s.insertRows(ctx, "screen_commands", commandColumns, rows)
}

// SetCommandStates records the new state of commands, in one insert.
func (s *Store) SetCommandStates(ctx context.Context, cs []screen.Command, at time.Time) error {
	rows := make([][]any, 0, len(cs))
	for _, c := range cs {
		rows = append(rows, commandRow(c, at))
	}
	return s.insertRows(ctx, "screen_commands", commandColumns, rows)
}

// MaxCommands bounds the rows of one Commands answer.
const MaxCommands = 10_000

// CommandsSQL reads the commands' latest states; the WHERE goes before the GROUP BY.
const CommandsSQL = `SELECT id, any(screen_id), min(created_ns), any(kind), any(arg), max(state) AS st FROM screen_commands`

// Commands lists the commands of the screens ids (every screen when ids is nil) whose state is
// state (0: any), oldest first.
func (s *Store) Commands(ctx context.Context, ids []string, state uint8) ([]screen.Command, error) {
	q, args := CommandsSQL, []any{}
	if ids != nil {
		if len(ids) == 0 {
			return nil, nil
		}
		q += " WHERE screen_id IN ?"
		args = append(args, clickhouse.GroupSet{Value: toAny(ids)})
	}
	q += " GROUP BY id"
	if state != 0 {
		q += " HAVING st = ?"
		args = append(args, state)
	}
	q += " ORDER BY min(created_ns), id LIMIT " + fmt.Sprint(MaxCommands)
	var out []screen.Command
	err := s.query(ctx, "screen commands", q, args, func(r rowScanner) error {
		var (
			c       screen.Command
			created uint64
			arg     string
		)
		if err := r.Scan(&c.ID, &c.ScreenID, &created, &c.Kind, &arg, &c.State); err != nil {
			return err
		}
		c.CreatedAt = time.Unix(0, int64(created)).UTC()
		if arg != "" {
			c.Arg = json.RawMessage(arg)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

var playlistColumns = []string{"name", "body", "deleted", "changed_ns"}

// SavePlaylist records a playlist, replacing one of the same name.
func (s *Store) SavePlaylist(ctx context.Context, p screen.Playlist, at time.Time) error {
	b, _ := json.Marshal(p)
	return s.insertRows(ctx, "playlists", playlistColumns, [][]any{{p.Name, string(b), uint8(0), unixNano(at)}})
}

// DeletePlaylist removes the playlist name.
func (s *Store) DeletePlaylist(ctx context.Context, name string, at time.Time) error {
	return s.insertRows(ctx, "playlists", playlistColumns, [][]any{{name, "", uint8(1), unixNano(at)}})
}

// PlaylistsSQL reads each playlist's latest version.
const PlaylistsSQL = `SELECT name, argMax(body, changed_ns), argMax(deleted, changed_ns) AS gone
FROM playlists GROUP BY name HAVING gone = 0 ORDER BY name`

// Playlists lists the playlists by name.
func (s *Store) Playlists(ctx context.Context) ([]screen.Playlist, error) {
	var out []screen.Playlist
	err := s.query(ctx, "playlists", PlaylistsSQL, nil, func(r rowScanner) error {
		var (
			name, body string
			gone       uint8
			p          screen.Playlist
		)
		if err := r.Scan(&name, &body, &gone); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			return fmt.Errorf("playlist %q: malformed body: %w", name, err)
		}
		out = append(out, p)
		return nil
	})
	return out, err
}
