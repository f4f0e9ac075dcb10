#!/usr/bin/env bash
# services.sh makes sure the services the tests talk to answer: PostgreSQL on
# 127.0.0.1:5432 (user postgres, no password) and Redis on 127.0.0.1:6379.
# It is idempotent: a service that answers is left alone; one that is
# installed but stopped is started; one that is missing is installed from
# Debian's packages, started and waited for.
#
# Usage: scripts/services.sh [--browser]
#   --browser  also make sure Debian's chromium (/usr/bin/chromium) and
#              Node.js with npm are installed, for the end-to-end tests.
#
# Environment:
#   PASSKEY_TEST_POSTGRES_URL  when set, only check that this PostgreSQL
#                              answers; install and start nothing.
#   PASSKEY_TEST_REDIS_URL     the same for Redis.
#   PASSKEY_SERVICES_REDIS_PORT  port of the local Redis to ensure (6379).
#   PASSKEY_SERVICES_WAIT      seconds to wait for a service (30).
set -euo pipefail

WAIT_SECONDS="${PASSKEY_SERVICES_WAIT:-30}"
PG_HOST=127.0.0.1
PG_PORT=5432
PG_DEFAULT_URL="postgres://postgres@${PG_HOST}:${PG_PORT}/postgres?sslmode=disable"
REDIS_HOST=127.0.0.1
REDIS_PORT="${PASSKEY_SERVICES_REDIS_PORT:-6379}"

WANT_BROWSER=0
for arg in "$@"; do
	case "$arg" in
	--browser) WANT_BROWSER=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "services.sh: unknown argument: $arg (try --help)" >&2
		exit 2
		;;
	esac
done

log() { echo "services: $*"; }
die() {
	echo "services: ERROR: $*" >&2
	exit 1
}

# as_root runs a command as root: directly when we are root, else through
# non-interactive sudo (CI has no terminal to type a password into).
as_root() {
	if [[ "$(id -u)" -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		die "need root to run '$*', and sudo is not installed"
	fi
}

APT_UPDATED=0
apt_install() {
	command -v apt-get >/dev/null 2>&1 || die "cannot install $*: apt-get not found (not a Debian-based system?)"
	if [[ "$APT_UPDATED" -eq 0 ]]; then
		log "apt-get update"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
			die "apt-get update failed"
		APT_UPDATED=1
	fi
	log "apt-get install $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" ||
		die "apt-get install $* failed"
}

# tcp_open HOST PORT: true when something accepts a TCP connection.
tcp_open() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# redis_tcp_ping HOST PORT: true when a Redis answers PING (no client needed).
redis_tcp_ping() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf "PING\r\n" >&3
		IFS= read -r line <&3 || exit 1
		[[ "$line" == "+PONG"* ]]' _ "$1" "$2" 2>/dev/null
}

# pg_answers URL: true when PostgreSQL accepts connections: at URL, or at
# PG_HOST:PG_PORT when URL is empty.
pg_answers() {
	local url="${1:-}"
	if command -v pg_isready >/dev/null 2>&1; then
		if [[ -n "$url" ]]; then
			pg_isready -q -t 3 -d "$url"
		else
			pg_isready -q -t 3 -h "$PG_HOST" -p "$PG_PORT"
		fi
	else
		local hp host port
		if [[ -n "$url" ]]; then
			hp="$(url_host_port "$url" 5432)"
			host="${hp% *}" port="${hp#* }"
		else
			host="$PG_HOST" port="$PG_PORT"
		fi
		tcp_open "$host" "$port"
	fi
}

# redis_answers URL: true when Redis answers PING: at URL, or at
# REDIS_HOST:REDIS_PORT when URL is empty.
redis_answers() {
	local url="${1:-}"
	if command -v redis-cli >/dev/null 2>&1; then
		local out
		if [[ -n "$url" ]]; then
			out="$(timeout 5 redis-cli --no-auth-warning -u "$url" ping 2>/dev/null)" || return 1
		else
			out="$(timeout 5 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" || return 1
		fi
		[[ "$out" == PONG* ]]
	else
		local hp host port
		if [[ -n "$url" ]]; then
			hp="$(url_host_port "$url" 6379)"
			host="${hp% *}" port="${hp#* }"
		else
			host="$REDIS_HOST" port="$REDIS_PORT"
		fi
		# A password-protected server answers PING with an error: then an
		# open port is the best we can check without a client.
		redis_tcp_ping "$host" "$port" || { [[ -n "$url" ]] && tcp_open "$host" "$port"; }
	fi
}

# url_host_port URL DEFAULT_PORT prints "host port" from scheme://[user@]host[:port]/...
url_host_port() {
	local rest="${1#*://}"
	rest="${rest%%/*}"
	rest="${rest%%\?*}"
	rest="${rest##*@}"
	local host port
	if [[ "$rest" == \[* ]]; then # [ipv6]:port
		host="${rest%%]*}" host="${host#[}"
		port="${rest##*]}" port="${port#:}"
	else
		host="${rest%%:*}"
		port=""
		[[ "$rest" == *:* ]] && port="${rest##*:}"
	fi
	echo "${host:-127.0.0.1} ${port:-$2}"
}

# wait_for NAME CHECK [ARGS...]: retry CHECK for up to WAIT_SECONDS.
wait_for() {
	local name="$1"
	shift
	local deadline=$((SECONDS + WAIT_SECONDS))
	while ! "$@"; do
		if ((SECONDS >= deadline)); then
			return 1
		fi
		sleep 1
	done
	log "$name answers"
}

# ---------------------------------------------------------------- PostgreSQL

pg_newest_version() {
	local v newest=""
	for v in /usr/lib/postgresql/*/bin/postgres; do
		[[ -x "$v" ]] || continue
		v="${v#/usr/lib/postgresql/}"
		v="${v%%/*}"
		if [[ -z "$newest" ]] || ((v > newest)); then newest="$v"; fi
	done
	echo "$newest"
}

# pg_set_trust VERSION: let local TCP connections in without a password.
# Only ever done to a cluster this script installed or created.
pg_set_trust() {
	local hba="/etc/postgresql/$1/main/pg_hba.conf"
	[[ -f "$hba" ]] || die "no $hba to configure"
	log "configuring trust auth for 127.0.0.1 and ::1 in $hba"
	as_root sed -i -E \
		-e 's#^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1/32|::1/128)[[:space:]]+)[^[:space:]]+#\1trust#' \
		"$hba"
	as_root grep -qE '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba" ||
		echo 'host all all 127.0.0.1/32 trust' | as_root tee -a "$hba" >/dev/null
}

# pg_connects URL: true when a password-less login works (psql needed).
pg_connects() {
	PGCONNECT_TIMEOUT=5 psql -w -X -q -t -d "$1" -c 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
	if [[ -n "${PASSKEY_TEST_POSTGRES_URL:-}" ]]; then
		log "PASSKEY_TEST_POSTGRES_URL is set: checking it only"
		wait_for "PostgreSQL (PASSKEY_TEST_POSTGRES_URL)" pg_answers "$PASSKEY_TEST_POSTGRES_URL" ||
			die "PostgreSQL at PASSKEY_TEST_POSTGRES_URL does not answer after ${WAIT_SECONDS}s"
		return
	fi
	if pg_answers ""; then
		log "PostgreSQL answers on $PG_HOST:$PG_PORT"
		return
	fi

	local fresh=0 version
	version="$(pg_newest_version)"
	if [[ -z "$version" ]] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
		log "PostgreSQL is not installed"
		apt_install postgresql
		fresh=1
		version="$(pg_newest_version)"
		[[ -n "$version" ]] || die "installed postgresql, but no /usr/lib/postgresql/*/bin/postgres"
	fi
	if [[ ! -f "/etc/postgresql/$version/main/postgresql.conf" ]]; then
		log "creating PostgreSQL $version cluster 'main' on port $PG_PORT"
		as_root pg_createcluster -p "$PG_PORT" "$version" main || die "pg_createcluster $version main failed"
		fresh=1
	fi
	if [[ "$fresh" -eq 1 ]]; then
		pg_set_trust "$version"
	fi

	log "starting PostgreSQL $version/main"
	# "start" fails when the cluster is already running (say, on another
	# port, or still starting); the wait below tells what matters.
	if ! as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start; then
		log "pg_ctlcluster start $version main reported a failure; waiting anyway"
	fi
	if [[ "$fresh" -eq 1 ]]; then
		# An install's own start may have run with the old pg_hba.conf.
		as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload >/dev/null 2>&1 || true
	fi
	wait_for "PostgreSQL" pg_answers "" ||
		die "PostgreSQL does not answer on $PG_HOST:$PG_PORT after ${WAIT_SECONDS}s; see /var/log/postgresql/postgresql-$version-main.log (pg_lsclusters shows its port)"
	if command -v psql >/dev/null 2>&1 && ! pg_connects "$PG_DEFAULT_URL"; then
		die "PostgreSQL answers but '$PG_DEFAULT_URL' cannot log in; allow trust auth for 127.0.0.1 in /etc/postgresql/$version/main/pg_hba.conf, or set PASSKEY_TEST_POSTGRES_URL"
	fi
}

# --------------------------------------------------------------------- Redis

start_redis() {
	local logdir=/var/log/redis args=()
	[[ -d "$logdir" && -w "$logdir" ]] || logdir="${TMPDIR:-/tmp}"
	REDIS_LOG="$logdir/redis-test-$REDIS_PORT.log"
	args=(--daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT"
		--save "" --appendonly no --logfile "$REDIS_LOG")
	# Nothing is saved, but Redis still wants a writable working directory.
	if [[ -d /var/lib/redis && -w /var/lib/redis ]]; then
		args+=(--dir /var/lib/redis)
	else
		args+=(--dir "${TMPDIR:-/tmp}")
	fi
	log "starting redis-server on $REDIS_HOST:$REDIS_PORT (log: $REDIS_LOG)"
	redis-server "${args[@]}" || log "redis-server reported a failure; waiting anyway"
}

ensure_redis() {
	if [[ -n "${PASSKEY_TEST_REDIS_URL:-}" ]]; then
		log "PASSKEY_TEST_REDIS_URL is set: checking it only"
		wait_for "Redis (PASSKEY_TEST_REDIS_URL)" redis_answers "$PASSKEY_TEST_REDIS_URL" ||
			die "Redis at PASSKEY_TEST_REDIS_URL does not answer after ${WAIT_SECONDS}s"
		return
	fi
	if redis_answers ""; then
		log "Redis answers on $REDIS_HOST:$REDIS_PORT"
		return
	fi
	if ! command -v redis-server >/dev/null 2>&1; then
		log "Redis is not installed"
		apt_install redis-server
		# The package's own service may have come up on 6379 already.
		if redis_answers ""; then
			log "Redis answers on $REDIS_HOST:$REDIS_PORT"
			return
		fi
	fi
	REDIS_LOG=""
	start_redis
	wait_for "Redis" redis_answers "" ||
		die "Redis does not answer on $REDIS_HOST:$REDIS_PORT after ${WAIT_SECONDS}s${REDIS_LOG:+; see $REDIS_LOG}"
}

# ------------------------------------------------------------------- Browser

ensure_browser() {
	local pkgs=()
	[[ -x /usr/bin/chromium ]] || pkgs+=(chromium)
	command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
	command -v npm >/dev/null 2>&1 || pkgs+=(npm)
	if ((${#pkgs[@]})); then
		apt_install "${pkgs[@]}"
	fi
	[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is missing after installing chromium"
	command -v node >/dev/null 2>&1 || die "node is missing after installing nodejs"
	command -v npm >/dev/null 2>&1 || die "npm is missing after installing npm"
	log "browser tools: $(/usr/bin/chromium --version 2>/dev/null || echo chromium), node $(node --version), npm $(npm --version)"
}

ensure_postgres
ensure_redis
if [[ "$WANT_BROWSER" -eq 1 ]]; then
	ensure_browser
fi
log "ready"
