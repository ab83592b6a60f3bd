#!/usr/bin/env bash
# scripts/test.sh: install what the tests need, then run every test, as CI does.
#
# Usage: scripts/test.sh [go test flags...] [packages...]
#
#   scripts/test.sh                                  static checks and go test -race -count=1, every package
#   scripts/test.sh -run TestMigrate ./internal/store/
#   scripts/test.sh -v -short ./internal/event/ ./internal/metric/
#
# Arguments go to `go test` after -race -count=1. An argument is a package when it starts with
# ./ or ../ (relative to the repository root, wherever the script is run from), is . or names
# the module (github.com/truthboard/truthboard/...); without packages,
# every package of the module is tested (./... without var/ and bin/). `go vet` and
# staticcheck check the same packages. Write a flag's value in the same argument when it could
# look like a package: -run=./x, not -run ./x.
#
# Steps:
#   1. Go (and the C compiler that -race needs), Node.js, Chromium, Prometheus Alertmanager:
#      installed with apt-get when missing (with sudo when not root).
#   2. ClickHouse: scripts/clickhouse.sh picks the server at TRUTHBOARD_CLICKHOUSE_ADDR, or one on
#      127.0.0.1:9000, or starts (installing it first if needed) a project-local server in
#      var/clickhouse/. Tests create a database each and drop it when they end.
#   3. clickhouse/compat/node_modules (chdb, a modern ClickHouse embedded in Node.js, ~540 MB):
#      `npm ci` when it is missing or older than package-lock.json. Never through a node_modules
#      that is a symbolic link (npm ci would wipe what it points to): the script stops instead.
#   4. static/node_modules (ECharts for the dashboards): `npm ci` when it is missing or older than
#      static/package-lock.json, then static/vendor/echarts.min.js is copied from it (go:embed).
#   5. go vet; go mod tidy -diff (go.mod and go.sum must be what go mod tidy makes them);
#      staticcheck on the same packages; deadcode -test on the whole module (only when no
#      packages are given, as in CI: it needs every main package and test to know what is
#      reached; a function that only tests use counts as used); then go test -race -count=1.
#      Every check runs even when an earlier one failed.
#   6. The store and rollup tests (./internal/store/..., ./internal/audit/, or those of the given
#      packages) again on ClickHouse 26.x: clickhouse/compat/server.js serves chdb over
#      ClickHouse's HTTP interface on a free loopback port, and the tests speak to it through
#      clickhouse-go's HTTP protocol (TRUTHBOARD_CLICKHOUSE_PROTOCOL=http). Before them, server.js's
#      own tests (node --test clickhouse/compat/). staticcheck and deadcode are installed
#      at the versions pinned below with `go install` from the Go module proxy into var/gobin/,
#      and again only when the pinned version or the Go version changes.
# Exit status: 0 when every step passed. The project-local ClickHouse keeps running afterwards
# (the next run starts faster); `scripts/clickhouse.sh stop` stops it.
set -euo pipefail

ROOT=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MODULE=github.com/truthboard/truthboard
# Static checkers, pinned; both support Go 1.26. Changing a version here reinstalls it.
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2 # staticcheck 2026.2.2
DEADCODE=golang.org/x/tools/cmd/deadcode@v0.53.0
TOOLS_BIN=$ROOT/var/gobin
COMPAT_DIR=clickhouse/compat
CHROMIUM=/usr/bin/chromium
ALERTMANAGER=/usr/bin/prometheus-alertmanager
NATS_SERVER=/usr/sbin/nats-server
ZOOKEEPER_JAR=/usr/share/java/zookeeper.jar

say() { printf 'test.sh: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# --- timing and summary ---------------------------------------------------------------------

START=$SECONDS
STEP_START=$SECONDS
SUMMARY=()

# step NAME starts timing a step; done_step RESULT records it.
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

step() {
	STEP_NAME=$1
	STEP_START=$SECONDS
	say "== $STEP_NAME"
}
done_step() {
	SUMMARY+=("$(printf '%-34s %-5s %4ds' "$STEP_NAME" "$1" $((SECONDS - STEP_START)))")
}

print_summary() {
	printf '\n== test.sh summary\n' >&2
	local line
	for line in "${SUMMARY[@]}"; do
		printf '  %s\n' "$line" >&2
	done
	printf '  %-34s %-5s %4ds\n' "total" "$1" $((SECONDS - START)) >&2
}

# --- packages from apt ----------------------------------------------------------------------


ensure_go() {
	if ! command -v go >/dev/null 2>&1; then
		if [[ -x /usr/local/go/bin/go ]]; then
			export PATH="$PATH:/usr/local/go/bin"
		else
			die "Go is not installed (or not on PATH). Install Go $(sed -n 's/^go //p' go.mod) or newer" \
				"from https://go.dev/dl/ and run this script again."
		fi
	fi
	# -race needs cgo: a C compiler and the C library's headers.
	if ! command -v gcc >/dev/null 2>&1 || [[ ! -e /usr/include/stdlib.h ]]; then
		apt_install gcc libc6-dev
	fi
	export CGO_ENABLED=1
}

ensure_node() {
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		apt_install nodejs npm
	fi
}

# ensure_chromium installs Debian's chromium for the browser tests (chromedp drives it headless).
ensure_chromium() {
	[[ -x $CHROMIUM ]] || apt_install chromium
	[[ -x $CHROMIUM ]] || die "$CHROMIUM is still missing after installing chromium"
}

# ensure_alertmanager installs Debian's Prometheus Alertmanager: the alert delivery tests
# (internal/alert/notify) run it on a loopback port of their own. Where systemd runs, the
# package also enables its own service on port 9093.
ensure_alertmanager() {
	[[ -x $ALERTMANAGER ]] || apt_install prometheus-alertmanager
	[[ -x $ALERTMANAGER ]] || die "$ALERTMANAGER is still missing after installing prometheus-alertmanager"
}

# ensure_nats installs Debian's nats-server: the claim and cluster tests (internal/claim,
# cmd/truthboard) run it with JetStream on a loopback port and a store folder of their own.
ensure_nats() {
	[[ -x $NATS_SERVER ]] || apt_install nats-server
	[[ -x $NATS_SERVER ]] || die "$NATS_SERVER is still missing after installing nats-server"
}

# ensure_zookeeper installs Debian's ZooKeeper (and Java): the cluster tests (cmd/truthboard)
# replicate two ClickHouse servers through one they start on a loopback port.
ensure_zookeeper() {
	[[ -f $ZOOKEEPER_JAR ]] || apt_install zookeeper
	[[ -f $ZOOKEEPER_JAR ]] || die "$ZOOKEEPER_JAR is still missing after installing zookeeper"
}

# ensure_compat_modules runs npm ci for the modern-ClickHouse check when node_modules is missing
# or older than the lock file. npm ci writes node_modules/.package-lock.json last, so its time
# is when the install finished.
ensure_compat_modules() {
	local marker=$COMPAT_DIR/node_modules/.package-lock.json
	if [[ -f $COMPAT_DIR/node_modules/chdb/package.json && ! $COMPAT_DIR/package-lock.json -nt $marker ]]; then
		say "$COMPAT_DIR/node_modules is up to date"
		return 0
	fi
	say "npm ci in $COMPAT_DIR (chdb, ~540 MB; once)"
	npm_ci "$COMPAT_DIR"
}

# ensure_static_modules runs npm ci in static/ when needed and copies ECharts to static/vendor/,
# where static/embed.go embeds it into the binary.
ensure_static_modules() {
	local marker=static/node_modules/.package-lock.json
	if [[ -f static/node_modules/echarts/package.json && ! static/package-lock.json -nt $marker ]]; then
		say "static/node_modules is up to date"
	else
		say "npm ci in static/ (ECharts)"
		npm_ci static
	fi
	cp static/node_modules/echarts/dist/echarts.min.js static/vendor/echarts.min.js ||
		die "cannot copy ECharts to static/vendor/"
}

# ensure_go_tool PKG@VERSION installs a Go command into $TOOLS_BIN unless the binary there was
# built from that version of its module by the Go in use (a checker built by an older Go cannot
# load code that needs a newer one).
ensure_go_tool() {
	local pkg=${1%@*} version=${1##*@}
	local bin=$TOOLS_BIN/${pkg##*/} built
	if [[ -x $bin ]]; then
		built=$(go version -m "$bin" 2>/dev/null | awk 'NR == 1 { print $2 } $1 == "mod" { print $3 }' | paste -sd ' ')
		[[ $built == "$(go env GOVERSION) $version" ]] && return 0
	fi
	say "go install $1 (into ${TOOLS_BIN#"$ROOT"/})"
	GOBIN=$TOOLS_BIN go install "$1"
}

# run_on_chdb PACKAGE... starts clickhouse/compat/server.js on a free loopback port, runs the
# packages' tests against it (with the go test arguments given to the script), and stops it.
run_on_chdb() {
	local addr_file=$LOG_DIR/chdb-server.addr server_log=$LOG_DIR/chdb-server.log pid addr="" rc=0
	: >"$addr_file"
	node "$COMPAT_DIR/server.js" -listen 127.0.0.1:0 >"$addr_file" 2>"$server_log" &
	pid=$!
	# chdb loads a ~500 MB library: give it a minute on a busy machine.
	for _ in $(seq 600); do
		addr=$(head -n 1 "$addr_file")
		[[ -n $addr ]] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [[ -z $addr ]]; then
		say "clickhouse/compat/server.js did not start (its log, $server_log, says why):"
		cat "$server_log" >&2
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 1
	fi
	say "chdb over HTTP at $addr: go test -race -count=1 -timeout 15m ${GO_ARGS[*]} $*  (output also in $CHDB_LOG)"
	TRUTHBOARD_CLICKHOUSE_ADDR=$addr TRUTHBOARD_CLICKHOUSE_PROTOCOL=http TRUTHBOARD_TEST_CLICKHOUSE=chdb \
		go test -race -count=1 -timeout 15m "${GO_ARGS[@]}" "$@" 2>&1 | tee "$CHDB_LOG" || rc=1
	kill "$pid"
	wait "$pid" 2>/dev/null
	return "$rc"
}

# --- arguments ------------------------------------------------------------------------------

GO_ARGS=()
PACKAGES=()
for arg in "$@"; do
	case $arg in
	. | ./* | ../* | "$MODULE" | "$MODULE"/*) PACKAGES+=("$arg") ;;
	*) GO_ARGS+=("$arg") ;;
	esac
done

# module_packages prints the patterns of every package of the module: ./... without var/ and
# bin/. The go command's ./... would also walk var/, where ClickHouse creates and deletes files
# while tests (or a running Truthboard) write, and then fails with "pattern ./...: open
# var/clickhouse/data/...: no such file or directory".
module_packages() {
	local d found=0
	if compgen -G '*.go' >/dev/null; then
		echo .
		found=1
	fi
	for d in */; do
		d=${d%/}
		case $d in
		var | bin | node_modules | testdata | _* | .*) continue ;;
		esac
		if [[ -n $(find "$d" -name node_modules -prune -o -name '*.go' -print -quit) ]]; then
			echo "./$d/..."
			found=1
		fi
	done
	[[ $found == 1 ]] || echo ./...
}
mapfile -t MODULE_PACKAGES < <(module_packages)
ALL_PACKAGES=0
if [[ ${#PACKAGES[@]} -eq 0 ]]; then
	PACKAGES=("${MODULE_PACKAGES[@]}")
	ALL_PACKAGES=1
fi

# --- set-up ---------------------------------------------------------------------------------

step "tools (go, gcc, node, chromium, alertmanager, nats-server, zookeeper)"
ensure_go
ensure_node
ensure_chromium
ensure_alertmanager
ensure_nats
ensure_zookeeper
done_step ok

step "clickhouse"
clickhouse_env=$(scripts/clickhouse.sh env) || die "no ClickHouse for the tests (see the messages above)"
eval "$clickhouse_env"
export TRUTHBOARD_CLICKHOUSE_ADDR
say "ClickHouse for the tests: $TRUTHBOARD_CLICKHOUSE_ADDR"
done_step ok

step "npm ci ($COMPAT_DIR)"
ensure_compat_modules
done_step ok

step "npm ci (static: ECharts)"
ensure_static_modules
done_step ok

# --- checks ---------------------------------------------------------------------------------

status=0
LOG_DIR=var/test
mkdir -p "$LOG_DIR"
TEST_LOG=$LOG_DIR/go-test.log

step "go vet"
if go vet "${PACKAGES[@]}"; then
	done_step ok
else
	done_step FAIL
	status=1
fi

step "go mod tidy -diff"
if go mod tidy -diff; then
	done_step ok
else
	say "go.mod or go.sum is not tidy: run 'go mod tidy' and commit the result"
	done_step FAIL
	status=1
fi

step "install staticcheck, deadcode"
tools_ok=0
if ensure_go_tool "$STATICCHECK" && ensure_go_tool "$DEADCODE"; then
	tools_ok=1
	done_step ok
else
	done_step FAIL
	status=1
fi

step "staticcheck"
if [[ $tools_ok == 0 ]]; then
	done_step skip
elif "$TOOLS_BIN/staticcheck" "${PACKAGES[@]}"; then
	done_step ok
else
	done_step FAIL
	status=1
fi

# deadcode exits 0 whatever it finds: any line it prints is a function nothing reaches.
step "deadcode -test"
if [[ $tools_ok == 0 ]]; then
	done_step skip
elif [[ $ALL_PACKAGES == 0 ]]; then
	say "skipped: packages were given, and deadcode needs the whole module"
	done_step skip
elif dead=$("$TOOLS_BIN/deadcode" -test "${MODULE_PACKAGES[@]}") && [[ -z $dead ]]; then
	done_step ok
else
	[[ -z $dead ]] || printf '%s\n' "$dead" >&2
	say "remove what nothing uses (a function only tests use counts as used)"
	done_step FAIL
	status=1
fi

# A package's tests may take longer than go test's default 10 minutes on a busy 2-core machine
# (internal/web starts Chromium and many servers); -timeout bounds a hang, it measures nothing. A
# -timeout among the arguments comes later and wins.
step "go test -race -count=1"
say "go test -race -count=1 -timeout 25m ${GO_ARGS[*]} ${PACKAGES[*]}  (output also in $TEST_LOG)"
if go test -race -count=1 -timeout 25m "${GO_ARGS[@]}" "${PACKAGES[@]}" 2>&1 | tee "$TEST_LOG"; then
	done_step ok
else
	done_step FAIL
	status=1
fi

# The store and rollup tests again, on ClickHouse 26.x: clickhouse/compat/server.js serves chdb
# over ClickHouse's HTTP interface and the tests reach it through clickhouse-go's HTTP protocol.
# They run for the whole module (CI), or for the given packages under internal/store and
# internal/audit. A test that cannot run on chdb skips itself there (storetest.SkipOnChdb; the
# list is in clickhouse/compat/README.md).
CHDB_PACKAGES=()
if [[ $ALL_PACKAGES == 1 ]]; then
	CHDB_PACKAGES=(./internal/store/... ./internal/audit/)
else
	for p in "${PACKAGES[@]}"; do
		case ${p#"$MODULE"/} in
		./internal/store* | ./internal/audit* | internal/store* | internal/audit*) CHDB_PACKAGES+=("$p") ;;
		esac
	done
fi
CHDB_LOG=$LOG_DIR/go-test-chdb.log
if [[ ${#CHDB_PACKAGES[@]} -gt 0 ]]; then
	step "clickhouse/compat/server.js tests"
	if node --test "$COMPAT_DIR/"; then
		done_step ok
	else
		done_step FAIL
		status=1
	fi
	step "go test on ClickHouse 26.x (chdb)"
	if run_on_chdb "${CHDB_PACKAGES[@]}"; then
		done_step ok
	else
		done_step FAIL
		status=1
	fi
fi

result=ok
[[ $status == 0 ]] || result=FAIL
print_summary "$result"
LOGS=("$TEST_LOG")
[[ ${#CHDB_PACKAGES[@]} -eq 0 || ! -f $CHDB_LOG ]] || LOGS+=("$CHDB_LOG")
passed=$(cat "${LOGS[@]}" | grep -c '^ok ' || true)
failed=$(cat "${LOGS[@]}" | grep -c '^FAIL[[:space:]]' || true)
printf '  packages: %s passed, %s failed\n' "$passed" "$failed" >&2
# Failed tests and packages, and for a panic (a timeout, say) the tests that were running.
failures=$(awk '
	/^[[:space:]]*--- FAIL|^FAIL[[:space:]]|^panic: / { print; next }
	/^[[:space:]]+running tests:/ { running = 1; next }
	running && /^[[:space:]]+Test/ { print "  running: " $1 " " $2; next }
	{ running = 0 }' "${LOGS[@]}")
if [[ -n $failures ]]; then
	printf '  failures (details above and in %s):\n' "${LOGS[*]}" >&2
	printf '%s\n' "$failures" | sed 's/^/    /' >&2
fi
exit "$status"
