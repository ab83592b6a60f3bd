#!/usr/bin/env bash
# scripts/up.sh: set up everything and run Truthboard with live demo traffic.
#
# Usage: scripts/up.sh [flags of `truthboard serve`...]
#
# 1. Finds ClickHouse with scripts/clickhouse.sh: the server at TRUTHBOARD_CLICKHOUSE_ADDR if set,
#    else one on 127.0.0.1:9000, else a project-local server in var/clickhouse/ (installing
#    Debian's clickhouse-server with apt-get first if needed).
# 2. Builds bin/truthboard, with the dashboards' ECharts from npm (`npm ci` in static/ when
#    static/node_modules is missing or older than static/package-lock.json).
# 3. Runs `bin/truthboard serve` in the foreground, sending itself TRUTHBOARD_DEMO_RATE demo events
#    per second (40 unless set; 0 turns the demo traffic off). Ctrl-C stops it cleanly.
#
# Every setting is an environment variable or a flag: `bin/truthboard help` lists them all.
# The project-local ClickHouse keeps running after Truthboard stops; `scripts/clickhouse.sh stop`
# stops it.
set -euo pipefail

ROOT=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

say() { printf 'up.sh: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

# Go: on PATH, or where the official tarball puts it.
if ! command -v go >/dev/null 2>&1; then
	if [[ -x /usr/local/go/bin/go ]]; then
		export PATH="$PATH:/usr/local/go/bin"
	else
		die "Go is not installed (or not on PATH). Install Go $(sed -n 's/^go //p' go.mod) or newer" \
			"from https://go.dev/dl/ and run this script again."
	fi
fi

# ClickHouse. The assignment, not eval "$(...)", so that a failure stops the script.
clickhouse_env=$(scripts/clickhouse.sh env) || die "no ClickHouse (see the messages above)"
eval "$clickhouse_env"
say "ClickHouse: $TRUTHBOARD_CLICKHOUSE_ADDR"

# ECharts for the dashboards: npm ci in static/, then copied where static/embed.go embeds it.
if [[ ! -f static/node_modules/echarts/package.json || static/package-lock.json -nt static/node_modules/.package-lock.json ]]; then
	command -v npm >/dev/null 2>&1 || apt_install nodejs npm
	say "npm ci in static/ (ECharts)"
	npm_ci static
fi
cp static/node_modules/echarts/dist/echarts.min.js static/vendor/echarts.min.js

say "building bin/truthboard"
go build -o bin/truthboard ./cmd/truthboard

export TRUTHBOARD_DEMO_RATE=${TRUTHBOARD_DEMO_RATE:-40}
say "starting Truthboard (demo traffic: $TRUTHBOARD_DEMO_RATE events/s; Ctrl-C stops)"
say "dashboards: /executive, /drilldown and /tv on the listen address (add ?token=<admin token>)"
exec bin/truthboard serve "$@"
