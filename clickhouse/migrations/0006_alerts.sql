-- Alerts: the history of every alert's state, and the silences, so that the history can be listed
-- and a restarted server knows which alerts are pending or firing (and does not announce them
-- again as new).
--
-- alert_transitions is an append-only log, one row per change of an alert (internal/alert):
-- inactive → pending → firing → resolved, or pending → inactive, and one row per acknowledgement
-- (from_state = to_state). Each row holds the whole alert as it was then, so the latest row of a
-- fingerprint (by at_ns, the time in nanoseconds: several changes can fall in one second) is the
-- alert's current state, whatever the merges. Labels are two parallel arrays, since Map is
-- missing on ClickHouse 18.16. Nanoseconds are an Int64, not DateTime64 (also missing there).
-- Alerts change a few times an hour at most, so the table stays small; ordered by time, for the
-- history's time ranges.
CREATE TABLE IF NOT EXISTS alert_transitions (
    at              DateTime,
    at_ns           Int64,
    fingerprint     String,
    alertname       String,
    from_state      Enum8('inactive' = 1, 'pending' = 2, 'firing' = 3, 'resolved' = 4),
    to_state        Enum8('inactive' = 1, 'pending' = 2, 'firing' = 3, 'resolved' = 4),
    label_names     Array(String),
    label_values    Array(String),
    summary         String,
    description     String,
    active_at_ns    Int64,
    fired_at_ns     Int64,
    resolved_at_ns  Int64,
    value           Float64,
    n               UInt64,
    low             Float64,
    high            Float64,
    target          Float64,
    baseline        Float64,
    baseline_n      UInt64,
    z               Float64,
    p               Float64,
    change          Float64,
    silenced_by     Array(String),
    acknowledged_by String,
    acknowledged_at_ns Int64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (at, fingerprint);

-- Silences mute matching alerts until they end (internal/alert). An append-only log like
-- display_tokens: a row when a silence is created, a copy with an earlier ends_at when it is
-- expired early. Expiry only ever moves the end earlier, so a silence's end is min(ends_at) of its
-- rows, whatever the order of rows and merges.
CREATE TABLE IF NOT EXISTS alert_silences (
    id             String,
    matcher_names  Array(String),
    matcher_values Array(String),
    starts_at_ns   Int64,
    ends_at_ns     Int64,
    reason         String,
    changed_at     DateTime
) ENGINE = MergeTree
ORDER BY (id, changed_at);
