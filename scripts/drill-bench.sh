#!/usr/bin/env bash
# scripts/drill-bench.sh: what the drill-down's level below a touchpoint costs ClickHouse: the
# query of GET /v1/metrics?window=30d&by=region (or by=agent_team) with the drill path's
# moment, channel and touchpoint and compare=previous, against the same figures from the raw
# table and from touchpoint_1h (migration 0015), on a history that metrics-bench loaded.
#
# Usage: scripts/drill-bench.sh [database] [runs]
#
#   database  a metrics-bench history kept with -reuse (default truthboard_mbench_3600k):
#               go run ./cmd/truthboard-tools metrics-bench -sizes 3600k -rate 5k -chunk 150k \
#                 -windows 30d -ticks 3 -warmup 1 -raw-ticks 1 -diagnose 0 -reuse
#   runs      times each query runs after one unmeasured run (default 20)
#
# Prints, per query, the p50 and p90 of the server's own time (clickhouse-client --time) and the
# rows it read. The copy of touchpoint_1h it builds (probe_touchpoint_1h) is dropped at the end.
set -euo pipefail

db=${1:-truthboard_mbench_3600k}
runs=${2:-20}
addr=${TRUTHBOARD_CLICKHOUSE_ADDR:-127.0.0.1:9000}
ch() { clickhouse-client --host "${addr%:*}" --port "${addr##*:}" --database "$db" "$@"; }

# The window: the last 30 days of the history, cut at hours as rollup.Plan cuts them, and the
# 30 days before it (the comparison).
end=$(ch -q "SELECT toUInt32(max(occurred_at)) FROM events")
to=$(( (end / 3600 + 1) * 3600 ))
from=$(( to - 30 * 86400 ))
prev=$(( from - 30 * 86400 ))
path="moment IN ('service') AND channel IN ('voice') AND touchpoint IN ('billing_call')"

measures='sumMerge(events), sumMerge(csat_n), sumMerge(csat_top2), sumMerge(nps_n), sumMerge(nps_promoters),
  sumMerge(nps_detractors), sumMerge(ces_n), sumMerge(ces_sum), sumMerge(negative), sumMerge(with_outcome),
  sumMerge(abandoned), sumMerge(wait_n), tupleElement(sumMapMerge(wait_hist), 1), tupleElement(sumMapMerge(wait_hist), 2)'
rollup_sql() { # table, dimension
	echo "SELECT $2, t < toDateTime($from) AS previous, max(t), $measures FROM $1
WHERE t >= toDateTime($prev) AND t < toDateTime($to) AND $path GROUP BY $2, previous"
}
raw_sql() { # dimension: the same figures from events, exact wait percentiles
	echo "SELECT $1, occurred_at < toDateTime($from) AS previous, max(occurred_at), count(),
  countIf(isNotNull(csat)), countIf(csat >= 4), countIf(isNotNull(nps)), countIf(nps >= 9), countIf(nps <= 6),
  countIf(isNotNull(ces)), sum(ifNull(ces, 0)), sum(negative), countIf(outcome != ''), countIf(outcome = 'abandoned'),
  countIf(isNotNull(wait_ms)), quantilesExactIf(0.5, 0.9)(assumeNotNull(wait_ms), isNotNull(wait_ms))
FROM events WHERE occurred_at >= toDateTime($prev) AND occurred_at < toDateTime($to) AND $path GROUP BY $1, previous"
}

# touchpoint_1h as migration 0015 defines it (sorted by touchpoint first, without product and
# segment), built from the history's detail_1h: its rows, merged by the new key.
ch -q "DROP TABLE IF EXISTS probe_touchpoint_1h"
ch -q "CREATE TABLE probe_touchpoint_1h ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(t)
ORDER BY (touchpoint, t, moment, channel, region, agent_team) SETTINGS index_granularity = 1024 AS
SELECT t, moment, channel, touchpoint, region, agent_team, events, csat_n, csat_top2, nps_n, nps_promoters,
  nps_detractors, ces_n, ces_sum, negative, with_outcome, abandoned, wait_n, wait_hist FROM detail_1h"
trap 'ch -q "DROP TABLE IF EXISTS probe_touchpoint_1h"' EXIT

# measure name sql: p50 and p90 of the server's time in ms over $runs runs, and the rows read
# (from the query log, by the query's id).
n=0
measure() {
	local name=$1 sql=$2 times=() id read
	n=$((n + 1))
	id="drill-bench-$$-$n"
	ch -q "$sql" >/dev/null
	for _ in $(seq "$runs"); do
		times+=("$( { ch --time -q "$sql" >/dev/null; } 2>&1 )")
	done
	ch --log_queries=1 --query_id "$id" -q "$sql" >/dev/null
	ch -q "SYSTEM FLUSH LOGS"
	read=$(ch -q "SELECT read_rows FROM system.query_log WHERE type = 2 AND query_id = '$id' LIMIT 1")
	printf '%s\n' "${times[@]}" | sort -n | awk -v name="$name" -v read="${read:-?}" \
		'{ t[NR] = $1 * 1000 } END { printf "| %s | %.1f | %.1f | %s |\n", name, t[int((NR + 1) / 2)], t[int(NR * 0.9 + 0.5)], read }'
}

echo "history: $(ch -q "SELECT count() FROM events") events; window [$from, $to), compared with [$prev, $from); $runs runs each; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "detail_1h rows: $(ch -q "SELECT count() FROM detail_1h"); touchpoint_1h rows: $(ch -q "SELECT count() FROM probe_touchpoint_1h") as inserted, $(ch -q "SELECT count() FROM probe_touchpoint_1h FINAL") merged"
echo "| query (30d, service · voice · billing_call, compare=previous) | p50 ms | p90 ms | rows read |"
echo "|---|---|---|---|"
for dim in region agent_team; do
	measure "by=$dim from touchpoint_1h as inserted (what the API reads)" "$(rollup_sql probe_touchpoint_1h "$dim")"
	measure "by=$dim from detail_1h (what it read before migration 0015)" "$(rollup_sql detail_1h "$dim")"
	measure "by=$dim from events (raw, exact wait percentiles)" "$(raw_sql "$dim")"
done
# Background merges make the rollup smaller over time: the same queries once it is merged.
ch -q "OPTIMIZE TABLE probe_touchpoint_1h FINAL"
for dim in region agent_team; do
	measure "by=$dim from touchpoint_1h merged" "$(rollup_sql probe_touchpoint_1h "$dim")"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
