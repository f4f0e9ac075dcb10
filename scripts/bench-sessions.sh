#!/usr/bin/env bash
# bench-sessions.sh measures the session store's work of one ceremony (a Put and its Consume,
# BenchmarkSessionPutConsume in db/sessions_test.go) against a redis-server of its own on a free
# loopback port, so that no other client's commands count: ns/op from go test, and Redis's own CPU per
# ceremony from INFO cpu and the commands it ran from INFO commandstats (reset before each run).
# Bounded: COUNT (5) runs of about BENCHTIME (2 s) each.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
W=$(mktemp -d)
REDIS_PID=
cleanup() {
  if [[ -n "$REDIS_PID" ]]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT
for _ in $(seq 20); do
  PORT=$((20000 + RANDOM % 20000))
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$W" --daemonize no >"$W/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break 2; kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
  wait "$REDIS_PID" 2>/dev/null || true; REDIS_PID=
done
[[ -n "$REDIS_PID" ]] || { echo "redis-server did not start"; cat "$W/redis.log"; exit 1; }
go test -c -o "$W/db.test" ./db/
export PASSKEY_TEST_REDIS_URL=redis://127.0.0.1:$PORT/0
cpu() { redis-cli -p "$PORT" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ {t+=$2} END {printf "%.6f", t}'; }
for c in ${CASES:-redis}; do
  for _ in $(seq "${COUNT:-5}"); do
    redis-cli -p "$PORT" config resetstat >/dev/null
    before=$(cpu)
    out=$("$W/db.test" -test.run '^$' -test.bench "^BenchmarkSessionPutConsume\$/^${c}\$" -test.benchtime "${BENCHTIME:-2s}" | grep '^Benchmark')
    after=$(cpu)
    # Per ceremony (one GETDEL each): the CPU time of the redis-server process (parsing, commands,
    # replies, system calls) and the commands it ran (those inside a MULTI/EXEC included).
    stats=$(redis-cli -p "$PORT" info commandstats | tr -d '\r')
    ops=$(sed -n 's/^cmdstat_getdel:calls=\([0-9]*\),.*/\1/p' <<<"$stats")
    cmds=$(sed -n 's/^cmdstat_\([a-z]*\):calls=\([0-9]*\),.*/\1 \2/p' <<<"$stats" | grep -v -e '^ping ' -e '^config ' -e '^hello ' -e '^scan ' -e '^del ' -e '^info ' | awk '{c+=$2} END {print c}')
    echo "$out  redis: $(awk -v ops="$ops" -v b="$before" -v a="$after" -v c="$cmds" 'BEGIN {printf "%.1f us CPU, %.1f commands per ceremony", (a-b)*1e6/ops, c/ops}')"
  done
done
