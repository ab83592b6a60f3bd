-- The rollup of a touchpoint's regions and teams: the drill-down's level below a touchpoint
-- (GET /v1/metrics?by=region or by=agent_team with a touchpoint filter) over 24h, 7d and 30d.
--
-- detail_1h holds the same sums but is sorted by time first and keyed also by product and
-- segment: a month of one touchpoint read every row of the month (1.05M rows, 200–400 ms on a
-- shared machine), where this table, sorted by touchpoint first and without product and
-- segment, reads that touchpoint's granules only (38k rows as inserted, 5k once merged,
-- 25–72 ms): docs/benchmarks.md, "Drill-down below a touchpoint". Queries filtered by touchpoint and
-- otherwise by moment, channel, region or agent_team only read it; any other filter reads
-- detail_1h.
--
-- Same columns, sums and wait histogram as the rollups of 0002_rollups.sql, fed by its own
-- materialized view straight from events (a view reading another view's table never fires on
-- ClickHouse 18.16). Hours are cut from the Unix epoch, so they are UTC whatever the server's
-- time zone. Monthly partitions, kept 400 days like detail_1h. Events stored before this
-- migration reach it through the rollup audit for its window (TRUTHBOARD_AUDIT_WINDOW, 2 hours
-- by default); docs/api.md says how to fill the older hours from detail_1h by hand.

-- Per hour, by touchpoint first.
CREATE TABLE IF NOT EXISTS touchpoint_1h (
    t              DateTime,
    moment         Enum8('zmot' = 1, 'fmot' = 2, 'smot' = 3, 'tmot' = 4, 'service' = 5),
    channel        Enum8('web' = 1, 'app' = 2, 'store' = 3, 'voice' = 4, 'ivr' = 5, 'chat' = 6,
                       'messaging' = 7, 'email' = 8, 'social' = 9, 'review_site' = 10,
                       'field_service' = 11),
    touchpoint     String,
    region         String,
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
ORDER BY (touchpoint, t, moment, channel, region, agent_team)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS touchpoint_1h_mv TO touchpoint_1h AS
SELECT
    toDateTime(intDiv(toUInt32(occurred_at), 3600) * 3600) AS t,
    moment,
    channel,
    touchpoint,
    region,
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
GROUP BY t, moment, channel, touchpoint, region, agent_team;
