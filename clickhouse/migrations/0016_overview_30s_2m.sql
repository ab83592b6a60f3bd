-- A 30-second overview rollup for the 15m window and a 2-minute one for the 1h window (and
-- their comparison periods, with compare=last_week too), each the step of its window's trend:
--
--   15m: the window and the one before it are 60 steps of the 22 moment × channel cells
--        (about 1,320 rows) instead of 180 steps of overview_10s (3,960 rows); its trend keeps
--        its 30 s step. The window now ends at the end of the current 30-second step.
--   1h:  60 steps of 2 minutes (1,320 rows) instead of 120 minutes of overview_1m (2,640 rows);
--        its trend steps by 2 minutes (30 points) instead of 1. The window now ends at the end
--        of the current 2-minute step.
--
-- Merging the wait histograms of those rows was most of a tick's cost, and the rows grew with
-- the history until the previous period was full: measured in docs/benchmarks.md, Metrics
-- ("Where the time goes"). Granules of 256 rows: a window reads a few hundred rows per period,
-- and 1,024-row granules read up to twice the rows it needs at the edges of each part.
--
-- Same columns, sums and wait histogram as the rollups of 0002_rollups.sql, each fed by its
-- own materialized view straight from events (a view reading another view's table never fires
-- on ClickHouse 18.16). Steps are cut from the Unix epoch. Daily partitions, kept 8 days (the
-- retention job) so that a window can be compared with the same one last week. Events stored
-- before this migration reach them through the rollup audit, which rebuilds the recent buckets
-- that disagree with the raw table (TRUTHBOARD_AUDIT_WINDOW, 2 hours by default).

-- Per 30 seconds.
CREATE TABLE IF NOT EXISTS overview_30s (
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
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS overview_30s_mv TO overview_30s AS
SELECT
    toDateTime(intDiv(toUInt32(occurred_at), 30) * 30) AS t,
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

-- Per 2 minutes: the same columns, engine, partitions and granules.
CREATE TABLE IF NOT EXISTS overview_2m AS overview_30s;

CREATE MATERIALIZED VIEW IF NOT EXISTS overview_2m_mv TO overview_2m AS
SELECT
    toDateTime(intDiv(toUInt32(occurred_at), 120) * 120) AS t,
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
