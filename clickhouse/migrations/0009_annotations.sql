-- Annotations: marks and regions on the trend charts (an outage, a campaign, a release), with
-- the fields of Grafana's annotations (time and time_end in epoch milliseconds, tags, text) and
-- an optional moment/channel scope.
--
-- Each write (create, change, delete) appends the whole annotation with a larger version (the
-- write's time in nanoseconds); a delete appends it with deleted = 1. An annotation's state is
-- its row of largest version: the readers take argMax(…, version) per id, so the result does
-- not depend on merges, and it reads the same through a Distributed table. ReplacingMergeTree
-- only lets merges drop the superseded rows, which keeps the table small.
CREATE TABLE IF NOT EXISTS annotations (
    id          String,
    time_ms     Int64,
    time_end_ms Int64,
    tags        Array(String),
    text        String,
    moment      String,
    channel     String,
    created_ms  Int64,
    version     Int64,
    deleted     UInt8
) ENGINE = ReplacingMergeTree(version)
ORDER BY id;
