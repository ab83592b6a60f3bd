-- A 10-second overview rollup for the 5m and 15m windows (and their comparison periods, with
-- compare=last_week too): the 1m window keeps overview_1s, the 1h window overview_1m.
--
-- Measured (docs/benchmarks.md, Metrics): a 5-minute window and the one before it read
-- about 14,000 rows of overview_1s, and merging their wait histograms was three quarters of
-- each query; at 10 seconds the same window reads a tenth of the rows. The trends of these
-- windows already step by 10 s (5m) and 30 s (15m), so they do not change; a window now ends
-- at the end of the current 10-second step instead of the current second.
--
-- Same columns, sums and wait histogram as the rollups of 0002_rollups.sql, fed by its own
-- materialized view straight from events (a view reading another view's table never fires on
-- ClickHouse 18.16). Steps are cut from the Unix epoch. Granules of 1,024 rows, as the other
-- overview tables: a step is at most 55 rows. Daily partitions, kept 8 days (the retention
-- job) so that a 15-minute window can be compared with the same one last week. Events stored
-- before this migration reach it through the rollup audit, which rebuilds the recent buckets
-- that disagree with the raw table (TRUTHBOARD_AUDIT_WINDOW, 2 hours by default).

-- Per 10 seconds.
CREATE TABLE IF NOT EXISTS overview_10s (
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

CREATE MATERIALIZED VIEW IF NOT EXISTS overview_10s_mv TO overview_10s AS
SELECT
    toDateTime(intDiv(toUInt32(occurred_at), 10) * 10) AS t,
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
