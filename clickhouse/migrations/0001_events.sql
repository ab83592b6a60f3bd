-- The raw touchpoint events, one row per accepted event.
--
-- Sorted by (moment, channel, occurred_at) because every dashboard query and the ingest
-- duplicate check narrow by moment and channel first, then by time. Partitioned by day so that
-- retention is a cheap DROP PARTITION (ClickHouse 18.16 has no TTL).
-- negative and positive are computed once at ingest from the rule in internal/event, so the
-- rollups and the recovery query share one definition.
CREATE TABLE IF NOT EXISTS events (
    event_id     String,
    occurred_at  DateTime,
    occurred_ms  UInt16,
    received_at  DateTime,
    moment       Enum8('zmot' = 1, 'fmot' = 2, 'smot' = 3, 'tmot' = 4, 'service' = 5),
    channel      Enum8('web' = 1, 'app' = 2, 'store' = 3, 'voice' = 4, 'ivr' = 5, 'chat' = 6,
                       'messaging' = 7, 'email' = 8, 'social' = 9, 'review_site' = 10,
                       'field_service' = 11),
    touchpoint   String,
    stage        Enum8('' = 0, 'initial_contact' = 1, 'purchase' = 2, 'delivery_installation' = 3,
                       'service_interaction' = 4, 'post_purchase_follow_up' = 5),
    outcome      Enum8('' = 0, 'resolved' = 1, 'unresolved' = 2, 'abandoned' = 3,
                       'transferred' = 4, 'escalated' = 5, 'completed' = 6, 'failed' = 7),
    customer_id  String,
    journey_id   String,
    csat         Nullable(UInt8),
    nps          Nullable(UInt8),
    ces          Nullable(UInt8),
    sentiment    Nullable(Float64),
    wait_ms      Nullable(UInt32),
    handle_ms    Nullable(UInt32),
    negative     UInt8,
    positive     UInt8,
    region       String,
    product      String,
    segment      String,
    agent_team   String,
    attr_keys    Array(String),
    attr_values  Array(String)
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(occurred_at)
ORDER BY (moment, channel, occurred_at, event_id)
