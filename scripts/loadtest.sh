#!/usr/bin/env bash
# loadtest.sh measures full WebAuthn ceremonies against passkey-server on 127.0.0.1 only, and with
# --base compares the current tree with another commit in the same run:
#
#   scripts/loadtest.sh [--base <commit>] [--duration 20s] [--quick] [--rounds N]
#
# It builds cmd/passkey-server from the current tree and, with --base, from that commit (checked out in a
# temporary git worktree, removed on exit); cmd/passkey-loadgen is always built from the current tree,
# so both servers get the same load. Each scenario runs against base and current back to back, the
# order alternating from one scenario to the next so that a drift of the shared machine does not
# always favour one side. That still leaves each scenario with one order: on this 2-core machine the
# second of two back-to-back registration runs was 15-30 % slower whichever code it ran (PostgreSQL CPU
# per registration bimodal, 0.5 or 1.2 ms), so with --rounds 2 each scenario runs base-current then
# current-base (ABBA) and the table ends with each side's mean; use it for write-heavy comparisons.
# Every server run gets a fresh server process, a fresh database (or SQLite
# file) and its own Redis prefix. Rate limits are off so that capacity, not policy, is measured.
#
# Per run it prints ceremonies/s, the ceremony's p50 and p99 (as the client sees it), and, over the
# measured window only (passkey-loadgen -mark samples before and after it, not during setup):
#   server CPU ms per ceremony      utime+stime of the server process (/proc/<pid>/stat)
#   PostgreSQL CPU ms per ceremony  utime+stime of the backends serving the run's database (the pids of
#                                   pg_stat_activity for that datname); PostgreSQL's shared background
#                                   processes (WAL writer, checkpointer) are not counted
#   Redis CPU ms per ceremony       the INFO cpu used_cpu_sys+used_cpu_user delta: the Redis is shared,
#                                   so other clients' work lands in it too
#   RSS peak, RSS end               VmHWM (over the server's life: setup included) and VmRSS at the end
#                                   of the window, from /proc/<pid>/status
# Needs the services scripts/services.sh starts, psql, redis-cli, curl, openssl and jq. Bounded: five
# scenarios of --duration (20 s; --quick: 5 s) per side and round (--rounds, 1 to 4, default 1), plus a
# few seconds of setup each.
set -euo pipefail

usage() { echo "usage: $0 [--base <commit>] [--duration 20s] [--quick] [--rounds N]" >&2; exit 2; }
BASE= DURATION=20s ROUNDS=1
while (($#)); do
  case $1 in
    --base) (($# >= 2)) || usage; BASE=$2; shift 2 ;;
    --duration) (($# >= 2)) || usage; DURATION=$2; shift 2 ;;
    --quick) DURATION=5s; shift ;;
    --rounds) (($# >= 2)) || usage; ROUNDS=$2; shift 2 ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done
# passkey-loadgen takes at most 120s; check the form here rather than after the builds.
[[ $DURATION =~ ^[0-9]+(s|ms)$ ]] || { echo "loadtest.sh: --duration must be like 20s" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-4]$ ]] || { echo "loadtest.sh: --rounds must be 1 to 4" >&2; exit 2; }
for tool in go git psql redis-cli curl openssl jq; do
  command -v $tool >/dev/null || { echo "loadtest.sh: $tool is needed" >&2; exit 1; }
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# The servers get exactly the configuration below, none of the caller's.
for v in $(compgen -e | grep '^PASSKEY_' || true); do unset "$v"; done
W=$(mktemp -d)
TOKEN=$(openssl rand -hex 16)
PG="psql -q -X -h 127.0.0.1 -U postgres -d postgres"
BASE_TREE= SERVER_PID=
DBS=() PREFIXES=()

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then kill "$SERVER_PID"; wait "$SERVER_PID" || true; fi
  # Each run drops its database when it ends; this catches a run that did not get there.
  local db dbs=0 left=0
  for db in "${DBS[@]}"; do
    PGOPTIONS="-c client_min_messages=warning" $PG -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
    dbs=$((dbs + $($PG -At -c "SELECT count(*) FROM pg_database WHERE datname = '$db'" || echo 1)))
  done
  for p in "${PREFIXES[@]}"; do
    redis-cli -h 127.0.0.1 --scan --pattern "${p}*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null || true
    left=$((left + $(redis-cli -h 127.0.0.1 --scan --pattern "${p}*" | wc -l)))
  done
  if [[ -n "$BASE_TREE" ]]; then git -C "$ROOT" worktree remove --force "$BASE_TREE" || true; fi
  rm -rf "$W"
  echo "cleanup: databases of this run left: $dbs, redis keys left under its prefixes: $left" >&2
}
trap cleanup EXIT
# An interrupted run still cleans up (bash runs the EXIT trap once the foreground command returns).
trap 'exit 130' INT
trap 'exit 143' TERM

echo "building current tree ($(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +changes))" >&2
mkdir -p "$W/current" "$W/base"
go build -o "$W/current/passkey-server" ./cmd/passkey-server
go build -o "$W/passkey-loadgen" ./cmd/passkey-loadgen
SIDES=(current)
if [[ -n "$BASE" ]]; then
  BASE_REV=$(git rev-parse --verify --quiet "$BASE^{commit}") || { echo "loadtest.sh: $BASE is not a commit" >&2; exit 2; }
  BASE_TREE=$W/base-tree
  git worktree add -q --detach "$BASE_TREE" "$BASE_REV"
  echo "building base $(git rev-parse --short "$BASE_REV") in a temporary worktree" >&2
  (cd "$BASE_TREE" && go build -o "$W/base/passkey-server" ./cmd/passkey-server)
  SIDES=(base current)
fi

# mark.sh is passkey-loadgen's -mark: it samples the counters just before (start) and just after (end)
# the measured ceremonies into $MARK_DIR.
cat > "$W/mark.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
phase=$1 out=$MARK_DIR
# utime+stime in clock ticks; the fields after the command name, which ends with the last ')'.
ticks() { local s; s=$(cat /proc/$1/stat 2>/dev/null) || return 1; s=${s##*) }; set -- $s; echo $(( ${12} + ${13} )); }
ticks "$MARK_PID" > "$out/server-$phase"
if [[ -n "$MARK_DB" ]]; then
  : > "$out/pg-$phase"
  for pid in $(psql -X -At -h 127.0.0.1 -U postgres -d postgres -c "SELECT pid FROM pg_stat_activity WHERE datname = '$MARK_DB'"); do
    t=$(ticks "$pid") && echo "$pid $t" >> "$out/pg-$phase"
  done
fi
if [[ -n "$MARK_REDIS" ]]; then
  redis-cli -h 127.0.0.1 info cpu | tr -d '\r' | awk -F: '$1=="used_cpu_sys"||$1=="used_cpu_user"{s+=$2} END{printf "%.6f\n", s}' > "$out/redis-$phase"
fi
if [[ $phase == end ]]; then
  awk '$1=="VmHWM:"{print $2}' /proc/$MARK_PID/status > "$out/hwm"
  awk '$1=="VmRSS:"{print $2}' /proc/$MARK_PID/status > "$out/rss"
fi
EOF
chmod +x "$W/mark.sh"

# free_port prints a port p such that p and p+1 are free on 127.0.0.1.
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/$((p + 1))) 2>/dev/null; then echo $p; return; fi
  done
  echo "loadtest.sh: no free port" >&2; return 1
}

# The scenarios: name, store (pg: PostgreSQL + Redis; sqlite: SQLite with in-process sessions), mode,
# clients.
SCENARIOS=(
  "login user 32|pg|user|32"
  "login discoverable 32|pg|discoverable|32"
  "registration 32|pg|register|32"
  "login user 1|pg|user|1"
  "sqlite login user 32|sqlite|user|32"
)

# run_one side store mode clients: one fresh server, one loadgen run; leaves $W/res-<n>/ with the
# loadgen's JSON and the samples.
RUN=0
run_one() {
  local side=$1 store=$2 mode=$3 clients=$4
  RUN=$((RUN + 1))
  local rnd port dir=$W/res-$RUN db= prefix= redis=
  rnd=$(openssl rand -hex 6)
  port=$(free_port)
  mkdir -p "$dir"
  local env=(PASSKEY_RATE_LIMIT_IP=off PASSKEY_RATE_LIMIT_TENANT=off PASSKEY_RATE_LIMIT_TENANT_PUBLIC=off PASSKEY_RATE_LIMIT_KEY=off
    PASSKEY_PUBLIC_ADDRESS=127.0.0.1:$port PASSKEY_ADMIN_ADDRESS=127.0.0.1:$((port + 1)) PASSKEY_LOG_LEVEL=warn
    PASSKEY_ADMIN_TOKENS=$TOKEN PASSKEY_MASTER_KEY=$(openssl rand -base64 32) PASSKEY_DATA_DIR=$dir/data)
  if [[ $store == pg ]]; then
    db=loadgen_$rnd prefix="loadgen:$rnd:" redis=1
    DBS+=("$db") PREFIXES+=("$prefix")
    $PG -c "CREATE DATABASE $db"
    env+=(PASSKEY_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable" PASSKEY_REDIS_URL=redis://127.0.0.1:6379/0 PASSKEY_REDIS_PREFIX=$prefix)
  fi
  env "${env[@]}" "$W/$side/passkey-server" > "$dir/server.log" 2>&1 &
  SERVER_PID=$!
  local ready=
  for _ in $(seq 150); do
    if curl -sf "http://127.0.0.1:$((port + 1))/health/ready" >/dev/null; then ready=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  if [[ -z "$ready" ]]; then echo "loadtest.sh: the $side server did not start:" >&2; tail -n 20 "$dir/server.log" >&2; exit 1; fi
  echo "$side: $store, $mode, $clients clients, $DURATION" >&2
  MARK_DIR=$dir MARK_PID=$SERVER_PID MARK_DB=$db MARK_REDIS=$redis "$W/passkey-loadgen" -json -mark "$W/mark.sh" \
    -public "http://127.0.0.1:$port" -admin "http://127.0.0.1:$((port + 1))" -admin-token "$TOKEN" \
    -mode "$mode" -concurrency "$clients" -duration "$DURATION" > "$dir/result.json" 2> "$dir/loadgen.log" ||
    { echo "loadtest.sh: passkey-loadgen failed:" >&2; tail -n 20 "$dir/loadgen.log" >&2; exit 1; }
  kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
  if [[ -n "$db" ]]; then
    $PG -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    redis-cli -h 127.0.0.1 --scan --pattern "${prefix}*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null
  fi
}

# row scenario side dir [base rate]: one line of the table.
TICK_MS=$(awk -v hz="$(getconf CLK_TCK)" 'BEGIN{print 1000 / hz}')
row() {
  local name=$1 side=$2 dir=$3 base_rate=${4:-} n rate p50 p99 failed srv pg=- rds=- vs=
  n=$(jq .ceremonies "$dir/result.json")
  rate=$(jq .per_second "$dir/result.json")
  p50=$(jq .p50_ms "$dir/result.json")
  p99=$(jq .p99_ms "$dir/result.json")
  failed=$(jq .failed "$dir/result.json")
  per() { awk -v d="$1" -v n="$n" 'BEGIN{ if (n > 0) printf "%.3f", d / n; else print "-" }'; }
  srv=$(per "$(awk -v a="$(cat "$dir/server-start")" -v b="$(cat "$dir/server-end")" -v t="$TICK_MS" 'BEGIN{print (b - a) * t}')")
  if [[ -f $dir/pg-end ]]; then
    # A backend born during the window counts from zero; one that ended during it is lost (the pool
    # keeps its connections under load, so that is rare).
    pg=$(per "$(awk -v t="$TICK_MS" 'NR==FNR{s[$1]=$2; next} {d += $2 - ($1 in s ? s[$1] : 0)} END{print d * t}' "$dir/pg-start" "$dir/pg-end")")
    [[ -s $dir/pg-end ]] || pg="n/a"
  fi
  if [[ -f $dir/redis-end ]]; then
    rds=$(per "$(awk -v a="$(cat "$dir/redis-start")" -v b="$(cat "$dir/redis-end")" 'BEGIN{print (b - a) * 1000}')")
  fi
  [[ -n "$base_rate" ]] && vs=$(awk -v a="$rate" -v b="$base_rate" 'BEGIN{ if (b > 0) printf "x%.2f", a / b }')
  printf '| %-22s | %-8s | %8.0f | %-6s | %6.2f | %6.2f | %7s | %7s | %7s | %6.0f | %6.0f | %6s |\n' \
    "$name" "$side" "$rate" "$vs" "$p50" "$p99" "$srv" "$pg" "$rds" \
    "$(awk '{print $1 / 1024}' "$dir/hwm")" "$(awk '{print $1 / 1024}' "$dir/rss")" "$failed"
}

declare -A DIR
i=0
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r name store mode clients <<<"$s"
  for ((r = 0; r < ROUNDS; r++)); do
    order=("${SIDES[@]}")
    # Alternate which side goes first, from one scenario and one round to the next.
    if ((${#SIDES[@]} == 2 && (i + r) % 2 == 1)); then order=(current base); fi
    for side in "${order[@]}"; do
      run_one "$side" "$store" "$mode" "$clients"
      DIR[$i,$r,$side]=$W/res-$RUN
    done
  done
  i=$((i + 1))
done

echo
echo "passkey-server load test, $DURATION per scenario and side, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs"
echo "current: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +changes)${BASE:+, base: $(git rev-parse --short "$BASE_REV") ($BASE)}"
echo
printf '| %-22s | %-8s | %8s | %-6s | %6s | %6s | %7s | %7s | %7s | %6s | %6s | %6s |\n' \
  scenario side cer/s "vs" "p50 ms" "p99 ms" "srv CPU" "PG CPU" "Rd CPU" "RSS pk" "RSS" errors
echo "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
i=0
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r name _ <<<"$s"
  for ((r = 0; r < ROUNDS; r++)); do
    label=$name
    ((ROUNDS > 1)) && label="$name #$((r + 1))"
    base_rate=
    for side in "${SIDES[@]}"; do
      row "$label" "$side" "${DIR[$i,$r,$side]}" "$base_rate"
      [[ $side == base ]] && base_rate=$(jq .per_second "${DIR[$i,$r,$side]}/result.json")
    done
  done
  i=$((i + 1))
done
if ((ROUNDS > 1 && ${#SIDES[@]} == 2)); then
  echo
  echo "Mean ceremonies/s over the $ROUNDS rounds:"
  echo
  echo "| scenario               |     base |  current | vs     |"
  echo "|---|---:|---:|---|"
  i=0
  for s in "${SCENARIOS[@]}"; do
    IFS='|' read -r name _ <<<"$s"
    mean() { for ((r = 0; r < ROUNDS; r++)); do jq .per_second "${DIR[$i,$r,$1]}/result.json"; done | awk '{s += $1} END {printf "%.0f", s / NR}'; }
    mb=$(mean base) mc=$(mean current)
    printf '| %-22s | %8s | %8s | %-6s |\n' "$name" "$mb" "$mc" "$(awk -v a="$mc" -v b="$mb" 'BEGIN{ if (b > 0) printf "x%.2f", a / b }')"
    i=$((i + 1))
  done
fi
echo
echo "cer/s: ceremonies per second (32 or 1 clients, each one ceremony at a time); vs: current cer/s / base cer/s."
echo "p50/p99: a whole ceremony as the client sees it. CPU columns: ms per ceremony over the measured window:"
echo "server process; PostgreSQL backends of the run's database (not its background processes);"
echo "Redis (INFO cpu, a shared server: other clients count too). RSS pk/RSS: the server's VmHWM and VmRSS in MiB."
