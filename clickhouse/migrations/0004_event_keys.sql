-- The keys of stored events, for the ingest duplicate check only.
--
-- The check asks "which of these (event_id, second) pairs are stored?". In the raw table, sorted
-- by (moment, channel, occurred_at), the seconds of one batch are spread over every moment ×
-- channel prefix; here, sorted by time first with small granules, they are a few contiguous
-- granules, so the check reads little whatever the table's size. Fed from events by its own
-- view; rows repeated by the backfill below are harmless (it is a set), so the migration may run
-- twice. Partitioned by day like events, and dropped with it by the retention job.
CREATE TABLE IF NOT EXISTS event_keys (
    occurred_at DateTime,
    event_id    String
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(occurred_at)
ORDER BY (occurred_at, event_id)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_keys_mv TO event_keys AS
SELECT occurred_at, event_id FROM events;

INSERT INTO event_keys (occurred_at, event_id) SELECT occurred_at, event_id FROM events;
