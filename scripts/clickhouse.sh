#!/usr/bin/env bash
# scripts/clickhouse.sh: find, or start, the ClickHouse server that Truthboard's development
# commands and tests use.
#
# Usage: scripts/clickhouse.sh [ensure | env | stop | status | client [args...] | help]
#
#   ensure (default)  Use the server at TRUTHBOARD_CLICKHOUSE_ADDR (default 127.0.0.1:9000) if it
#                     answers. Otherwise start a project-local server with its own config, data and
#                     logs in var/clickhouse/ (git-ignored), installing Debian's clickhouse-server
#                     and clickhouse-client with apt-get first if they are missing.
#                     Messages go to stderr; stdout is one line that callers can eval:
#                         TRUTHBOARD_CLICKHOUSE_ADDR=127.0.0.1:19000
#   env               Like ensure, but prints only
#                         export TRUTHBOARD_CLICKHOUSE_ADDR=127.0.0.1:19000
#                     so that  eval "$(scripts/clickhouse.sh env)"  sets up a shell.
#   stop              Stop the project-local server (if this script started one) and wait for it.
#   status            Say which server answers. Exit status 0 if ensure would not need to start one.
#   client [args]     Run clickhouse-client against the server ensure picks (starting one if needed).
#
# Environment:
#   TRUTHBOARD_CLICKHOUSE_ADDR        host:port of a ClickHouse native-protocol (TCP) endpoint.
#                                     When it is set, does not answer and names a loopback host,
#                                     the project-local server is started on that port; when the
#                                     host is anything else, ensure fails.
#   TRUTHBOARD_LOCAL_CLICKHOUSE_PORT             native port of the project-local server (19000)
#   TRUTHBOARD_LOCAL_CLICKHOUSE_HTTP_PORT        its HTTP port (18123)
#   TRUTHBOARD_LOCAL_CLICKHOUSE_INTERSERVER_PORT its interserver HTTP port (19009)
#   TRUTHBOARD_CLICKHOUSE_START_TIMEOUT          seconds to wait for it to answer (60)
#   TRUTHBOARD_LOCAL_CLICKHOUSE_DIR              its config, data and logs (var/clickhouse); the
#                                                fault tests start a second server this way
#
# The project-local server runs as the invoking user, root included: ClickHouse 18.16 (Debian
# bookworm) neither refuses nor warns when run as root, and it owns the data directory it creates.
# Newer ClickHouse only refuses when the data directory belongs to another user, which cannot
# happen here because this script creates var/clickhouse/ as the same user that runs the server.
set -euo pipefail

# The repository root, found from this file's location so the script works from any directory.
ROOT=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${TRUTHBOARD_LOCAL_CLICKHOUSE_DIR:-"$ROOT/var/clickhouse"}
CONFIG_FILE="$STATE_DIR/config.xml"
USERS_FILE="$STATE_DIR/users.xml"
PID_FILE="$STATE_DIR/clickhouse-server.pid"
LOCK_FILE="$STATE_DIR/lock"
LOG_DIR="$STATE_DIR/log"
SERVER_LOG="$LOG_DIR/clickhouse-server.log"
SERVER_ERR_LOG="$LOG_DIR/clickhouse-server.err.log"
LAUNCH_LOG="$LOG_DIR/launch.log" # the server's own stdout/stderr

DEFAULT_ADDR=127.0.0.1:9000
LOCAL_PORT=${TRUTHBOARD_LOCAL_CLICKHOUSE_PORT:-19000}
LOCAL_HTTP_PORT=${TRUTHBOARD_LOCAL_CLICKHOUSE_HTTP_PORT:-18123}
LOCAL_INTERSERVER_PORT=${TRUTHBOARD_LOCAL_CLICKHOUSE_INTERSERVER_PORT:-19009}
START_TIMEOUT=${TRUTHBOARD_CLICKHOUSE_START_TIMEOUT:-60}

# Set by resolve_address: the address in use and whether the user chose it.
ADDR=""
HOST=""
PORT=""
EXPLICIT=0
# Set by probe: the server's version, or why it did not answer.
PROBE_VERSION=""
PROBE_ERROR=""
# Commands found by find_client / find_server (arrays: a command may be "clickhouse client").
CLIENT=()
SERVER=()
APT_UPDATED=0
QUIET=0

log() { printf 'clickhouse.sh: %s\n' "$*" >&2; }
info() { [[ $QUIET == 1 ]] || log "$@"; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}"
}

# --- tools ----------------------------------------------------------------------------------

# Debian's packages install /usr/bin/clickhouse-client and /usr/sbin/clickhouse-server; the
# upstream packages install one /usr/bin/clickhouse binary with client and server subcommands
# (plus symlinks). /usr/sbin is often not on a normal user's PATH, hence the explicit check.
find_client() {
	if command -v clickhouse-client >/dev/null 2>&1; then
		CLIENT=(clickhouse-client)
	elif command -v clickhouse >/dev/null 2>&1; then
		CLIENT=(clickhouse client)
	else
		return 1
	fi
}

find_server() {
	if command -v clickhouse-server >/dev/null 2>&1; then
		SERVER=(clickhouse-server)
	elif [[ -x /usr/sbin/clickhouse-server ]]; then
		SERVER=(/usr/sbin/clickhouse-server)
	elif command -v clickhouse >/dev/null 2>&1; then
		SERVER=(clickhouse server)
	else
		return 1
	fi
}

# install_packages PACKAGE... installs Debian packages, with sudo when not root.
install_packages() {
	command -v apt-get >/dev/null 2>&1 ||
		die "ClickHouse ($*) is not installed and apt-get is not available: install ClickHouse" \
			"yourself, or set TRUTHBOARD_CLICKHOUSE_ADDR=host:port to a running server"
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 ||
			die "ClickHouse ($*) is not installed and this user cannot install it: run" \
				"'apt-get install $*' as root"
		sudo=(sudo)
	fi
	log "installing $* with apt-get"
	# apt-get's output goes to stderr so that stdout stays the one line callers eval.
	if [[ $APT_UPDATED == 0 ]]; then
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 ||
			die "apt-get update failed"
		APT_UPDATED=1
	fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "$@" >&2 ||
		die "apt-get install $* failed"
}

need_client() {
	find_client && return 0
	install_packages clickhouse-client
	find_client || die "clickhouse-client is still missing after installing it"
}

need_server() {
	find_server && return 0
	install_packages clickhouse-server clickhouse-client
	find_server || die "clickhouse-server is still missing after installing it"
}

# --- addresses and probing ------------------------------------------------------------------

# split_addr ADDR sets HOST and PORT from host:port or [ipv6]:port.
split_addr() {
	if [[ $1 =~ ^\[([^]]+)\]:([0-9]+)$ || $1 =~ ^([^:]+):([0-9]+)$ ]]; then
		HOST=${BASH_REMATCH[1]}
		PORT=${BASH_REMATCH[2]}
	else
		die "TRUTHBOARD_CLICKHOUSE_ADDR='$1' is not host:port (for example 127.0.0.1:9000)"
	fi
}

resolve_address() {
	if [[ -n ${TRUTHBOARD_CLICKHOUSE_ADDR:-} ]]; then
		ADDR=$TRUTHBOARD_CLICKHOUSE_ADDR
		EXPLICIT=1
	else
		ADDR=$DEFAULT_ADDR
		EXPLICIT=0
	fi
	split_addr "$ADDR"
	if [[ $EXPLICIT == 1 ]]; then
		check_port "TRUTHBOARD_CLICKHOUSE_ADDR=$ADDR" "$PORT"
	fi
	check_port TRUTHBOARD_LOCAL_CLICKHOUSE_PORT "$LOCAL_PORT"
}

# check_port NAME VALUE fails unless VALUE is a TCP port number. (ClickHouse 18.16 would
# silently take 99999 modulo 65536.)
check_port() {
	if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 < 1 || $2 > 65535)); then
		die "$1: '$2' is not a TCP port number (1-65535)"
	fi
}

is_loopback() {
	[[ $1 == 127.0.0.1 || $1 == localhost || $1 == ::1 ]]
}

# probe HOST PORT asks the server for its version over the native protocol, as the default user
# without a password (what the project-local server and a stock Debian install accept). It sets
# PROBE_VERSION on success and PROBE_ERROR (the client's first line) on failure. The timeout
# covers a port held by something that accepts connections but does not speak ClickHouse.
probe() {
	local out
	PROBE_VERSION=""
	PROBE_ERROR=""
	if out=$(timeout 5 "${CLIENT[@]}" --host "$1" --port "$2" --query 'SELECT version()' 2>&1); then
		PROBE_VERSION=$out
		return 0
	fi
	out=${out:-no answer within 5 s}
	PROBE_ERROR=${out%%$'\n'*}
	return 1
}

# port_in_use PORT: does anything accept TCP connections on 127.0.0.1:PORT?
port_in_use() {
	# The inner script gets the port as $1; it must not expand here.
	# shellcheck disable=SC2016
	timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# --- the project-local server ---------------------------------------------------------------

# local_pid prints the pid of the project-local server if it is running. It checks the process's
# command line, so a stale pid file whose number was reused by another process does not count.
local_pid() {
	[[ -f $PID_FILE ]] || return 1
	local pid
	pid=$(tr -cd '0-9' <"$PID_FILE")
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
	local cmdline
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == *"$CONFIG_FILE"* ]] || return 1
	printf '%s\n' "$pid"
}

# local_port prints the native port in the project-local server's config.
local_port() {
	sed -n 's:.*<tcp_port>\([0-9]*\)</tcp_port>.*:\1:p' "$CONFIG_FILE" 2>/dev/null
}

# lock serialises starting and stopping, so that test processes calling ensure at the same time
# start one server, not several. The lock is released when the script exits.
lock() {
	mkdir -p "$STATE_DIR"
	command -v flock >/dev/null 2>&1 || return 0
	exec 9>"$LOCK_FILE"
	flock -w 120 9 || die "another scripts/clickhouse.sh has held $LOCK_FILE for 2 minutes"
}

# write_config PORT LISTEN_IPV6 writes the server's config.xml and users.xml.
write_config() {
	local port=$1 ipv6=$2 listen='<listen_host>127.0.0.1</listen_host>'
	if [[ $ipv6 == 1 ]]; then
		# Only when the user asked for ::1 or localhost. listen_try keeps the server up on
		# machines without IPv6.
		listen+=$'\n    <listen_host>::1</listen_host>\n    <listen_try>1</listen_try>'
	fi
	mkdir -p "$STATE_DIR"/{data,tmp,user_files,format_schemas} "$LOG_DIR"
	# <yandex> is the root element ClickHouse 18.16 needs; newer releases still accept it.
	cat >"$CONFIG_FILE" <<EOF
<?xml version="1.0"?>
<!-- Written by scripts/clickhouse.sh on every start; edits are overwritten. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$SERVER_LOG</log>
        <errorlog>$SERVER_ERR_LOG</errorlog>
        <size>20M</size>
        <count>3</count>
    </logger>

    $listen
    <tcp_port>$port</tcp_port>
    <http_port>$LOCAL_HTTP_PORT</http_port>
    <interserver_http_port>$LOCAL_INTERSERVER_PORT</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>

    <path>$STATE_DIR/data/</path>
    <tmp_path>$STATE_DIR/tmp/</tmp_path>
    <user_files_path>$STATE_DIR/user_files/</user_files_path>
    <format_schema_path>$STATE_DIR/format_schemas/</format_schema_path>
    <users_config>$USERS_FILE</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>

    <!-- UTC like the ClickHouse container users run, whatever this machine's zone. -->
    <timezone>UTC</timezone>
    <!-- A development server: small caches (both are filled on demand). -->
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
EOF
	cat >"$USERS_FILE" <<'EOF'
<?xml version="1.0"?>
<!-- Written by scripts/clickhouse.sh on every start; edits are overwritten. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>10000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <!-- No password, reachable from this machine only. -->
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

# show_logs prints the end of the server's logs, for a failed start.
show_logs() {
	local f
	for f in "$LAUNCH_LOG" "$SERVER_ERR_LOG"; do
		[[ -s $f ]] || continue
		log "last lines of $f (stack traces left out):"
		grep -vE '^[0-9]+\. ' "$f" | tail -n 10 >&2 || true
	done
}

# wait_ready HOST PORT LAUNCHER_PID waits until the server answers. LAUNCHER_PID (may be empty)
# is the process just started: if it exits without the server answering, the start failed.
wait_ready() {
	local host=$1 port=$2 launcher=${3:-} deadline=$((SECONDS + START_TIMEOUT))
	until probe "$host" "$port"; do
		if [[ -n $launcher ]] && ! kill -0 "$launcher" 2>/dev/null && ! local_pid >/dev/null; then
			show_logs
			die "the ClickHouse server exited during start-up; see $SERVER_ERR_LOG and $LAUNCH_LOG"
		fi
		if ((SECONDS >= deadline)); then
			show_logs
			die "the ClickHouse server did not answer on $host:$port within $START_TIMEOUT s" \
				"(last error: $PROBE_ERROR); see $SERVER_LOG and $SERVER_ERR_LOG"
		fi
		sleep 0.2
	done
}

# start_local HOST PORT makes the project-local server answer on PORT, starting it if needed.
start_local() {
	local host=$1 port=$2 pid running_port ipv6=0
	lock
	# Another process may have started it while this one waited for the lock.
	probe "$host" "$port" && return 0

	if pid=$(local_pid); then
		running_port=$(local_port)
		if [[ $running_port != "$port" ]]; then
			die "the project-local server (pid $pid) runs on port $running_port, not $port:" \
				"run 'scripts/clickhouse.sh stop' first, or use TRUTHBOARD_CLICKHOUSE_ADDR=127.0.0.1:$running_port"
		fi
		info "the project-local server (pid $pid) is running but not answering yet; waiting"
		wait_ready "$host" "$port" ""
		return 0
	fi

	need_server
	check_port TRUTHBOARD_LOCAL_CLICKHOUSE_HTTP_PORT "$LOCAL_HTTP_PORT"
	check_port TRUTHBOARD_LOCAL_CLICKHOUSE_INTERSERVER_PORT "$LOCAL_INTERSERVER_PORT"
	# A port held by another program would make the server exit with a bind error in its log;
	# say so directly, naming the variable that moves the port.
	local port_var=TRUTHBOARD_LOCAL_CLICKHOUSE_PORT
	[[ $EXPLICIT == 1 ]] && port_var=TRUTHBOARD_CLICKHOUSE_ADDR
	port_in_use "$port" &&
		die "cannot start the project-local server: 127.0.0.1:$port is taken by something that" \
			"does not answer as ClickHouse's default user ($PROBE_ERROR); choose another port" \
			"with $port_var"
	port_in_use "$LOCAL_HTTP_PORT" &&
		die "cannot start the project-local server: its HTTP port 127.0.0.1:$LOCAL_HTTP_PORT is" \
			"taken; choose another with TRUTHBOARD_LOCAL_CLICKHOUSE_HTTP_PORT"
	port_in_use "$LOCAL_INTERSERVER_PORT" &&
		die "cannot start the project-local server: its interserver port" \
			"127.0.0.1:$LOCAL_INTERSERVER_PORT is taken; choose another with" \
			"TRUTHBOARD_LOCAL_CLICKHOUSE_INTERSERVER_PORT"

	[[ $host == ::1 || $host == localhost ]] && ipv6=1
	write_config "$port" "$ipv6"
	rm -f "$PID_FILE"
	info "starting a project-local ClickHouse server on 127.0.0.1:$port (data and logs in $STATE_DIR)"
	# The server runs in the foreground of a background job rather than with --daemon, so that
	# $! is its pid and a start-up failure shows at once instead of after the timeout. (18.16
	# writes --pid-file only with --daemon, so this script writes the pid file itself.)
	# setsid puts the server in its own session, so a Ctrl-C meant for the command that called
	# this script (go test, make) does not also stop the server; setsid runs it in place (no
	# fork) because a background job of a script is never a process group leader.
	# Standard streams go to a log file: a caller reading this script's stdout through a pipe
	# must not wait for the server. fd 9 (the lock) is closed so the server does not hold it.
	local setsid=()
	command -v setsid >/dev/null 2>&1 && setsid=(setsid)
	"${setsid[@]}" "${SERVER[@]}" --config-file="$CONFIG_FILE" \
		</dev/null >>"$LAUNCH_LOG" 2>&1 9>&- &
	local launched=$!
	printf '%s\n' "$launched" >"$PID_FILE"
	wait_ready "$host" "$port" "$launched"
}

# --- subcommands ----------------------------------------------------------------------------

# ensure leaves ADDR/HOST/PORT naming a server that answers, starting one if needed.
ensure() {
	need_client
	resolve_address
	if probe "$HOST" "$PORT"; then
		info "using ClickHouse $PROBE_VERSION at $ADDR"
		return 0
	fi

	if [[ $EXPLICIT == 1 ]]; then
		is_loopback "$HOST" ||
			die "TRUTHBOARD_CLICKHOUSE_ADDR=$ADDR does not answer ($PROBE_ERROR): start that" \
				"server, or unset TRUTHBOARD_CLICKHOUSE_ADDR to use a project-local one"
		info "nothing answers at TRUTHBOARD_CLICKHOUSE_ADDR=$ADDR; it will be the project-local server"
	else
		ADDR=127.0.0.1:$LOCAL_PORT
		HOST=127.0.0.1
		PORT=$LOCAL_PORT
		# The usual case once started: the project-local server answers at once.
		if probe "$HOST" "$PORT"; then
			info "using ClickHouse $PROBE_VERSION at $ADDR (nothing answers at $DEFAULT_ADDR)"
			return 0
		fi
	fi
	start_local "$HOST" "$PORT"
	info "using ClickHouse $PROBE_VERSION at $ADDR (project-local server, pid $(local_pid || echo '?'))"
}

cmd_ensure() {
	ensure
	printf 'TRUTHBOARD_CLICKHOUSE_ADDR=%q\n' "$ADDR"
}

cmd_env() {
	QUIET=1
	ensure
	printf 'export TRUTHBOARD_CLICKHOUSE_ADDR=%q\n' "$ADDR"
}

cmd_stop() {
	local pid
	lock
	if ! pid=$(local_pid); then
		rm -f "$PID_FILE"
		log "no project-local ClickHouse server is running"
		return 0
	fi
	log "stopping the project-local ClickHouse server (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	# ClickHouse finishes running queries and flushes on SIGTERM; give it a minute.
	local deadline=$((SECONDS + 60))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			log "pid $pid did not exit within 60 s of SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			deadline=$((SECONDS + 10))
		fi
		sleep 0.1
	done
	rm -f "$PID_FILE"
	log "stopped"
}

cmd_status() {
	local pid rc=1 how="default"
	[[ -n ${TRUTHBOARD_CLICKHOUSE_ADDR:-} ]] && how="TRUTHBOARD_CLICKHOUSE_ADDR"
	resolve_address
	if ! find_client; then
		echo "clickhouse-client is not installed ('scripts/clickhouse.sh ensure' installs it)"
	elif probe "$HOST" "$PORT"; then
		echo "$ADDR ($how): ClickHouse $PROBE_VERSION answers"
		rc=0
	else
		echo "$ADDR ($how): not answering ($PROBE_ERROR)"
	fi

	if pid=$(local_pid); then
		local port
		port=$(local_port)
		if [[ ${#CLIENT[@]} -gt 0 ]] && probe 127.0.0.1 "$port"; then
			echo "project-local server: running, pid $pid, 127.0.0.1:$port, ClickHouse $PROBE_VERSION"
			[[ $EXPLICIT == 0 ]] && rc=0
		else
			echo "project-local server: pid $pid on 127.0.0.1:$port, not answering (${PROBE_ERROR:-})"
		fi
		echo "  data and config: $STATE_DIR"
		echo "  logs: $SERVER_LOG, $SERVER_ERR_LOG"
	else
		echo "project-local server: not running"
	fi
	return "$rc"
}

cmd_client() {
	QUIET=1
	ensure
	# Note: Debian's clickhouse-client 18.16 loops forever on --help; use --version instead.
	exec "${CLIENT[@]}" --host "$HOST" --port "$PORT" "$@"
}

main() {
	local cmd=${1:-ensure}
	[[ $# -gt 0 ]] && shift
	case $cmd in
	ensure) cmd_ensure ;;
	env) cmd_env ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	client) cmd_client "$@" ;;
	help | -h | --help) usage ;;
	*)
		usage >&2
		die "unknown command '$cmd'"
		;;
	esac
}

main "$@"
