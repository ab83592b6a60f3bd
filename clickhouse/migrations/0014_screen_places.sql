-- Where each screen stands: its group of screens ("floor 2", for commands and playlists sent
-- to a group) and the IANA time zone its playlist's opening hours are read in ("" for either:
-- no group; the TV's own clock). A row per change, the latest (by changed_ns) is the state; a
-- table of its own, since pairing records it before the screen's own row exists.
CREATE TABLE IF NOT EXISTS screen_places (
    id            String,
    screen_group  String,
    timezone      String,
    changed_ns    UInt64
) ENGINE = ReplacingMergeTree(changed_ns)
ORDER BY id;
