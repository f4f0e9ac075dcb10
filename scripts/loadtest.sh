#!/usr/bin/env bash
# loadtest.sh builds the server and cmd/passkey-loadgen and measures full login ceremonies against
# 127.0.0.1 only: PostgreSQL + Redis (8 and 32 workers, and discoverable logins), then SQLite with the
# in-process session store. Rate limits are off so that capacity, not policy, is measured. Needs the
# services scripts/services.sh starts. Bounded: five runs of 20 s.
set -euo pipefail
W=$(mktemp -d)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
go build -o $W/passkey-server ./cmd/passkey-server
go build -o $W/passkey-loadgen ./cmd/passkey-loadgen
RND=$(openssl rand -hex 6)
DB=loadgen_$RND
PREFIX="loadgen:$RND:"
TOKEN=$(openssl rand -hex 16)
SERVER_PID=
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then kill "$SERVER_PID"; wait "$SERVER_PID" || true; fi
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  redis-cli --scan --pattern "${PREFIX}*" | xargs -r redis-cli del >/dev/null || true
  echo "cleanup: db $DB dropped, redis keys left with prefix: $(redis-cli --scan --pattern "${PREFIX}*" | wc -l)"
}
trap cleanup EXIT
start() {
  "$W/passkey-server" > "$W/server-$1.log" 2>&1 &
  SERVER_PID=$!
  for i in $(seq 100); do curl -sf http://127.0.0.1:18001/health/ready >/dev/null && return; sleep 0.2; done
  echo "server did not start"; cat "$W/server-$1.log"; exit 1
}
stop() { kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=; }
lg() { echo; echo "\$ passkey-loadgen -public http://127.0.0.1:18000 -admin http://127.0.0.1:18001 -admin-token \$TOKEN $*"; "$W/passkey-loadgen" -public http://127.0.0.1:18000 -admin http://127.0.0.1:18001 -admin-token "$TOKEN" "$@"; }

psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $DB"
export PASSKEY_RATE_LIMIT_IP=off PASSKEY_RATE_LIMIT_TENANT=off PASSKEY_RATE_LIMIT_TENANT_PUBLIC=off PASSKEY_RATE_LIMIT_KEY=off PASSKEY_PUBLIC_ADDRESS=127.0.0.1:18000 PASSKEY_ADMIN_ADDRESS=127.0.0.1:18001 PASSKEY_LOG_LEVEL=warn \
  PASSKEY_ADMIN_TOKENS=$TOKEN PASSKEY_MASTER_KEY=$(openssl rand -base64 32) PASSKEY_DATA_DIR=$W/data
echo "=== PostgreSQL + Redis"
PASSKEY_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" PASSKEY_REDIS_URL=redis://127.0.0.1:6379/0 \
  PASSKEY_REDIS_PREFIX=$PREFIX start pg
lg -concurrency 8 -duration 20s
lg -concurrency 32 -duration 20s
lg -concurrency 8 -duration 20s -mode discoverable
stop
echo; echo "=== SQLite, in-process sessions"
start sqlite
lg -concurrency 8 -duration 20s
lg -concurrency 32 -duration 20s
stop
echo; echo "server logs:"; tail -n 20 $W/server-*.log
