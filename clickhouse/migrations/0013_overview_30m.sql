-- A 30-minute overview rollup for the 24h window (and its comparison periods): the step of
-- its trend, so a day is 48 steps of the 22 moment × channel cells (about 1,056 rows) instead
-- of 1,440 minutes of overview_1m (31,680 rows) whose wait histograms a tick had to merge.
-- Measured in docs/benchmarks.md, Metrics. A 24h window now ends at the end of the current
-- 30-minute step.
--
-- Same columns, sums and wait histogram as the rollups of 0002_rollups.sql, fed by its own
-- materialized view straight from events (a view reading another view's table never fires on
-- ClickHouse 18.16). Steps are cut from the Unix epoch, so they are UTC whatever the server's
-- time zone. Monthly partitions, kept 400 days like overview_1h. Events stored before this
-- migration reach it through the rollup audit for its window (TRUTHBOARD_AUDIT_WINDOW, 2 hours
-- by default); docs/api.md says how to fill an older day by hand.

-- Per 30 minutes.
CREATE TABLE IF NOT EXISTS overview_30m (
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
PARTITION BY toYYYYMM(t)
ORDER BY (t, moment, channel)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS overview_30m_mv TO overview_30m AS
SELECT
    toDateTime(intDiv(toUInt32(occurred_at), 1800) * 1800) AS t,
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
