-- Rollups of the raw events, the only tables the dashboards read per tick.
--
-- Two families, each fed by its own materialized view straight from events (a view reading
-- another view's table never fires on ClickHouse 18.16):
--   overview_*  keyed by (t, moment, channel): small enough to answer unfiltered views at
--               one-second resolution;
--   detail_*    keyed also by touchpoint, region, product, segment and agent_team: for
--               filtered views and drill-down, at minute and hour resolution.
-- Every measure is a sum (AggregateFunction(sum, UInt64)), so rows of any resolution add up;
-- wait_hist counts wait_ms per log-scale bucket (internal/metric: bucket = 0 for 0 ms, else
-- min(192, 1 + floor(ln(ms) / ln(1.1)))), so percentiles merge by adding counts, with at most
-- 4.9% relative error. Partitions are dropped by the server's retention job.
-- Granules of 1024 rows (not 8192) let a query of a short window skip most of a small table: an
-- overview table holds at most 55 rows per step, so 8192-row granules would make every query read
-- minutes to hours more than its window.

-- Per second.
CREATE TABLE IF NOT EXISTS overview_1s (
    t              DateTime,
    moment         Enum8('zmot' = 1, 'fmot' = 2, 'smot' = 3, 'tmot' = 4, 'service' = 5),
    channel        Enum8('web' = 1, 'app' = 2, 'store' = 3, 'voice' = 4, 'ivr' = 5, 'chat' = 6,
                       'messaging' = 7, 'email' = 8, 'social' = 9, 'review_site' = 10,
                       'field_service' = 11),
    events         AggregateFunction(sum, UInt64),
    csat_n         AggregateFunction(sum, UInt64),
    csat_top2      AggregateFunction(sum, UInt64),
    nps_n          AggregateFunction(sum, UInt64),
    nps_promoters  AggregateFunction(sum, UInt64),
    nps_detractors AggregateFunction(sum, UInt64),
    ces_n          AggregateFunction(sum, UInt64),
    ces_sum        AggregateFunction(sum, UInt64),
    negative       AggregateFunction(sum, UInt64),
    with_outcome   AggregateFunction(sum, UInt64),
    abandoned      AggregateFunction(sum, UInt64),
    wait_n         AggregateFunction(sum, UInt64),
    wait_hist      AggregateFunction(sumMap, Array(UInt8), Array(UInt64))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(t)
ORDER BY (t, moment, channel)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS overview_1s_mv TO overview_1s AS
SELECT
    toDateTime(occurred_at) AS t,
    moment,
    channel,
    sumState(toUInt64(1)) AS events,
    sumState(toUInt64(isNotNull(csat))) AS csat_n,
    sumState(toUInt64(ifNull(csat, 0) >= 4)) AS csat_top2,
    sumState(toUInt64(isNotNull(nps))) AS nps_n,
    sumState(toUInt64(isNotNull(nps) AND ifNull(nps, 0) >= 9)) AS nps_promoters,
    sumState(toUInt64(isNotNull(nps) AND ifNull(nps, 0) <= 6)) AS nps_detractors,
    sumState(toUInt64(isNotNull(ces))) AS ces_n,
    sumState(toUInt64(ifNull(ces, 0))) AS ces_sum,
    sumState(toUInt64(negative)) AS negative,
    sumState(toUInt64(outcome != '')) AS with_outcome,
    sumState(toUInt64(outcome = 'abandoned')) AS abandoned,
    sumState(toUInt64(isNotNull(wait_ms))) AS wait_n,
    sumMapStateIf([toUInt8(if(assumeNotNull(wait_ms) = 0, 0, least(192, 1 + floor(log(assumeNotNull(wait_ms)) / log(1.1)))))], [toUInt64(1)], isNotNull(wait_ms)) AS wait_hist
FROM events
GROUP BY t, moment, channel;

-- Per minute.
CREATE TABLE IF NOT EXISTS overview_1m (
    t              DateTime,
    moment         Enum8('zmot' = 1, 'fmot' = 2, 'smot' = 3, 'tmot' = 4, 'service' = 5),
    channel        Enum8('web' = 1, 'app' = 2, 'store' = 3, 'voice' = 4, 'ivr' = 5, 'chat' = 6,
                       'messaging' = 7, 'email' = 8, 'social' = 9, 'review_site' = 10,
                       'field_service' = 11),
    events         AggregateFunction(sum, UInt64),
    csat_n         AggregateFunction(sum, UInt64),
    csat_top2      AggregateFunction(sum, UInt64),
    nps_n          AggregateFunction(sum, UInt64),
    nps_promoters  AggregateFunction(sum, UInt64),
    nps_detractors AggregateFunction(sum, UInt64),
    ces_n          AggregateFunction(sum, UInt64),
    ces_sum        AggregateFunction(sum, UInt64),
    negative       AggregateFunction(sum, UInt64),
    with_outcome   AggregateFunction(sum, UInt64),
    abandoned      AggregateFunction(sum, UInt64),
    wait_n         AggregateFunction(sum, UInt64),
    wait_hist      AggregateFunction(sumMap, Array(UInt8), Array(UInt64))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(t)
ORDER BY (t, moment, channel)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS overview_1m_mv TO overview_1m AS
SELECT
    toStartOfMinute(occurred_at) AS t,
    moment,
    channel,
    sumState(toUInt64(1)) AS events,
    sumState(toUInt64(isNotNull(csat))) AS csat_n,
    sumState(toUInt64(ifNull(csat, 0) >= 4)) AS csat_top2,
    sumState(toUInt64(isNotNull(nps))) AS nps_n,
    sumState(toUInt64(isNotNull(nps) AND ifNull(nps, 0) >= 9)) AS nps_promoters,
    sumState(toUInt64(isNotNull(nps) AND ifNull(nps, 0) <= 6)) AS nps_detractors,
    sumState(toUInt64(isNotNull(ces))) AS ces_n,
    sumState(toUInt64(ifNull(ces, 0))) AS ces_sum,
    sumState(toUInt64(negative)) AS negative,
    sumState(toUInt64(outcome != '')) AS with_outcome,
    sumState(toUInt64(outcome = 'abandoned')) AS abandoned,
    sumState(toUInt64(isNotNull(wait_ms))) AS wait_n,
    sumMapStateIf([toUInt8(if(assumeNotNull(wait_ms) = 0, 0, least(192, 1 + floor(log(assumeNotNull(wait_ms)) / log(1.1)))))], [toUInt64(1)], isNotNull(wait_ms)) AS wait_hist
FROM events
GROUP BY t, moment, channel;

-- Per minute.
CREATE TABLE IF NOT EXISTS detail_1m (
    t              DateTime,
    moment         Enum8('zmot' = 1, 'fmot' = 2, 'smot' = 3, 'tmot' = 4, 'service' = 5),
    channel        Enum8('web' = 1, 'app' = 2, 'store' = 3, 'voice' = 4, 'ivr' = 5, 'chat' = 6,
                       'messaging' = 7, 'email' = 8, 'social' = 9, 'review_site' = 10,
                       'field_service' = 11),
    touchpoint     String,
    region         String,
    product        String,
    segment        String,
    agent_team     String,
    events         AggregateFunction(sum, UInt64),
    csat_n         AggregateFunction(sum, UInt64),
    csat_top2      AggregateFunction(sum, UInt64),
    nps_n          AggregateFunction(sum, UInt64),
    nps_promoters  AggregateFunction(sum, UInt64),
    nps_detractors AggregateFunction(sum, UInt64),
    ces_n          AggregateFunction(sum, UInt64),
    ces_sum        AggregateFunction(sum, UInt64),
    negative       AggregateFunction(sum, UInt64),
    with_outcome   AggregateFunction(sum, UInt64),
    abandoned      AggregateFunction(sum, UInt64),
    wait_n         AggregateFunction(sum, UInt64),
    wait_hist      AggregateFunction(sumMap, Array(UInt8), Array(UInt64))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(t)
ORDER BY (t, moment, channel, touchpoint, region, product, segment, agent_team)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS detail_1m_mv TO detail_1m AS
SELECT
    toStartOfMinute(occurred_at) AS t,
    moment,
    channel,
    touchpoint,
    region,
    product,
    segment,
    agent_team,
    sumState(toUInt64(1)) AS events,
    sumState(toUInt64(isNotNull(csat))) AS csat_n,
    sumState(toUInt64(ifNull(csat, 0) >= 4)) AS csat_top2,
    sumState(toUInt64(isNotNull(nps))) AS nps_n,
    sumState(toUInt64(isNotNull(nps) AND ifNull(nps, 0) >= 9)) AS nps_promoters,
    sumState(toUInt64(isNotNull(nps) AND ifNull(nps, 0) <= 6)) AS nps_detractors,
    sumState(toUInt64(isNotNull(ces))) AS ces_n,
    sumState(toUInt64(ifNull(ces, 0))) AS ces_sum,
    sumState(toUInt64(negative)) AS negative,
    sumState(toUInt64(outcome != '')) AS with_outcome,
    sumState(toUInt64(outcome = 'abandoned')) AS abandoned,
    sumState(toUInt64(isNotNull(wait_ms))) AS wait_n,
    sumMapStateIf([toUInt8(if(assumeNotNull(wait_ms) = 0, 0, least(192, 1 + floor(log(assumeNotNull(wait_ms)) / log(1.1)))))], [toUInt64(1)], isNotNull(wait_ms)) AS wait_hist
FROM events
GROUP BY t, moment, channel, touchpoint, region, product, segment, agent_team;

-- Per hour. Hours are cut from the Unix epoch, not by toStartOfHour, which follows the server's
-- time zone (a zone such as +05:30 would misalign them with the API's UTC windows).
CREATE TABLE IF NOT EXISTS detail_1h (
    t              DateTime,
    moment         Enum8('zmot' = 1, 'fmot' = 2, 'smot' = 3, 'tmot' = 4, 'service' = 5),
    channel        Enum8('web' = 1, 'app' = 2, 'store' = 3, 'voice' = 4, 'ivr' = 5, 'chat' = 6,
                       'messaging' = 7, 'email' = 8, 'social' = 9, 'review_site' = 10,
                       'field_service' = 11),
    touchpoint     String,
    region         String,
    product        String,
    segment        String,
    agent_team     String,
    events         AggregateFunction(sum, UInt64),
    csat_n         AggregateFunction(sum, UInt64),
    csat_top2      AggregateFunction(sum, UInt64),
    nps_n          AggregateFunction(sum, UInt64),
    nps_promoters  AggregateFunction(sum, UInt64),
    nps_detractors AggregateFunction(sum, UInt64),
    ces_n          AggregateFunction(sum, UInt64),
    ces_sum        AggregateFunction(sum, UInt64),
    negative       AggregateFunction(sum, UInt64),
    with_outcome   AggregateFunction(sum, UInt64),
    abandoned      AggregateFunction(sum, UInt64),
    wait_n         AggregateFunction(sum, UInt64),
    wait_hist      AggregateFunction(sumMap, Array(UInt8), Array(UInt64))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(t)
ORDER BY (t, moment, channel, touchpoint, region, product, segment, agent_team)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS detail_1h_mv TO detail_1h AS
SELECT
    toDateTime(intDiv(toUInt32(occurred_at), 3600) * 3600) AS t,
    moment,
    channel,
    touchpoint,
    region,
    product,
    segment,
    agent_team,
    sumState(toUInt64(1)) AS events,
    sumState(toUInt64(isNotNull(csat))) AS csat_n,
    sumState(toUInt64(ifNull(csat, 0) >= 4)) AS csat_top2,
    sumState(toUInt64(isNotNull(nps))) AS nps_n,
    sumState(toUInt64(isNotNull(nps) AND ifNull(nps, 0) >= 9)) AS nps_promoters,
    sumState(toUInt64(isNotNull(nps) AND ifNull(nps, 0) <= 6)) AS nps_detractors,
    sumState(toUInt64(isNotNull(ces))) AS ces_n,
    sumState(toUInt64(ifNull(ces, 0))) AS ces_sum,
    sumState(toUInt64(negative)) AS negative,
    sumState(toUInt64(outcome != '')) AS with_outcome,
    sumState(toUInt64(outcome = 'abandoned')) AS abandoned,
    sumState(toUInt64(isNotNull(wait_ms))) AS wait_n,
    sumMapStateIf([toUInt8(if(assumeNotNull(wait_ms) = 0, 0, least(192, 1 + floor(log(assumeNotNull(wait_ms)) / log(1.1)))))], [toUInt64(1)], isNotNull(wait_ms)) AS wait_hist
FROM events
GROUP BY t, moment, channel, touchpoint, region, product, segment, agent_team;
