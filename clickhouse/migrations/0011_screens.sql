-- Screens: TV walls paired by a short code, their state, the commands sent to them, and the
-- playlists they rotate. Every node reads and writes these tables, so a code shown by a TV
-- connected to one node can be entered on another, and a command issued on any node reaches
-- the screen wherever it is connected (the node that holds it polls every second).
--
-- Every table is an append-only log whose latest row (by a nanosecond version, since several
-- changes may fall in one second) is the state, read with argMax: the result does not depend on
-- merges. The logs that grow with time (heartbeats, commands, playlists) are
-- ReplacingMergeTree, so merges keep one row per key.

-- A pairing code: one row when a TV asks for a code (claimed = 0), one per admin who enters it
-- (claimed = 1, with the screen id, name and what to show). The earliest claim wins; the node
-- holding the TV's connection sees it and hands the TV its credential.
CREATE TABLE IF NOT EXISTS screen_pairings (
    code        String,
    address     String,
    created_at  DateTime,
    expires_at  DateTime,
    claimed     UInt8,
    screen_id   String,
    name        String,
    shows       String,
    changed_ns  UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY (code, changed_ns);

-- A screen: created at pairing, a row per rename or redirect, one with unpaired = 1 at the end.
-- Its id is the id of its display token.
CREATE TABLE IF NOT EXISTS screens (
    id          String,
    name        String,
    shows       String,
    paired_at   DateTime,
    unpaired    UInt8,
    changed_ns  UInt64
) ENGINE = ReplacingMergeTree(changed_ns)
ORDER BY id;

-- The last heartbeat of each screen, written by the node it is connected to every few seconds,
-- and once with connected = 0 when its connection ends.
CREATE TABLE IF NOT EXISTS screen_heartbeats (
    id          String,
    node        String,
    at_ns       UInt64,
    connected   UInt8,
    resolution  String,
    version     String,
    errors      String
) ENGINE = ReplacingMergeTree(at_ns)
ORDER BY id;

-- Commands to screens: a row when queued, one when delivered or given up as undeliverable.
-- state only moves forward (queued → delivered | undeliverable).
CREATE TABLE IF NOT EXISTS screen_commands (
    id          String,
    screen_id   String,
    created_ns  UInt64,
    kind        String,
    arg         String,
    state       UInt8,
    changed_ns  UInt64
) ENGINE = ReplacingMergeTree(changed_ns)
ORDER BY (screen_id, id);

-- Playlists: the whole playlist as JSON per change; deleted = 1 removes it.
CREATE TABLE IF NOT EXISTS playlists (
    name        String,
    body        String,
    deleted     UInt8,
    changed_ns  UInt64
) ENGINE = ReplacingMergeTree(changed_ns)
ORDER BY name;
