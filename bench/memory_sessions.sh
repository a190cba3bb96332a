#!/usr/bin/env bash
# Memory (issue #6): RSS of `authgate serve` (release) with N active database
# sessions in the in-process cache.
#
#   1. `authgate migrate` an empty SQLite database (database strategy, memory cache),
#   2. insert N users + N sessions with sqlite3 (bench/seed_sessions.mjs),
#   3. start `authgate serve`, read VmRSS (idle),
#   4. touch every session once through the gateway (bench/touch_sessions.mjs:
#      GET /protected/bench with that session's cookie) -> each lookup misses
#      and fills the cache (session entry + user identity), read VmRSS/VmHWM,
#   5. touch them all again (should now be cache hits), read VmRSS,
#   6. print the gateway's cache hit/miss counters from /metrics.
#
# Usage: bench/memory_sessions.sh       (needs target/release/authgate, sqlite3, node)
# Env:   SESSIONS=100000 PORT_GATEWAY=38190 PORT_UPSTREAM=38191 CONCURRENCY=32
# Starts only its own processes and stops them (by pid) on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SESSIONS="${SESSIONS:-100000}"
PORT_GATEWAY="${PORT_GATEWAY:-38190}"
PORT_UPSTREAM="${PORT_UPSTREAM:-38191}"
CONCURRENCY="${CONCURRENCY:-32}"
BIN="${AUTHGATE_BIN:-$ROOT/target/release/authgate}"
SECRET="bench-secret-at-least-32-chars-long!!!!"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/authgate.toml" <<EOF
[server]
listen = "127.0.0.1:$PORT_GATEWAY"
public_url = "http://127.0.0.1:$PORT_GATEWAY"
upstream = "http://127.0.0.1:$PORT_UPSTREAM"

[session]
strategy = "database"
secret = ["$SECRET"]
max_age = "30d"

[store]
url = "sqlite://$WORK/authgate.db"

[cache]
url = "memory://"

[[providers]]
id = "gh"
preset = "github"
client_id = "bench"
client_secret = "bench-client-secret"

[[routes]]
path = "/protected/**"
access = "protected"

[[routes]]
path = "/**"
access = "public"
EOF

rss() { awk '/^VmRSS|^VmHWM/{printf "%s %s %s  ", $1, $2, $3}' "/proc/$1/status"; echo; }
wait_http() {
  for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "not answering: $1" >&2; exit 1
}

"$BIN" migrate --config "$WORK/authgate.toml"
node "$ROOT/bench/seed_sessions.mjs" "$SESSIONS" "$WORK/seed.sql" "$WORK/tokens.txt"
time sqlite3 "$WORK/authgate.db" < "$WORK/seed.sql"
echo "rows: $(sqlite3 "$WORK/authgate.db" 'select count(*) from sessions') sessions"

node "$ROOT/bench/upstream.mjs" "$PORT_UPSTREAM" > "$WORK/upstream.log" 2>&1 &
PIDS+=($!)
AUTHGATE_LOG="${AUTHGATE_LOG:-warn}" "$BIN" serve --config "$WORK/authgate.toml" > "$WORK/authgate.log" 2>&1 &
GW=$!
PIDS+=($GW)
wait_http "http://127.0.0.1:$PORT_UPSTREAM/"
wait_http "http://127.0.0.1:$PORT_GATEWAY/healthz"

URL="http://127.0.0.1:$PORT_GATEWAY/protected/bench"
echo "idle:                 $(rss $GW)"
echo "pass 1 (cold cache):  $(node "$ROOT/bench/touch_sessions.mjs" "$URL" "$WORK/tokens.txt" "$CONCURRENCY")"
sleep 1
echo "after pass 1:         $(rss $GW)"
echo "pass 2 (warm cache):  $(node "$ROOT/bench/touch_sessions.mjs" "$URL" "$WORK/tokens.txt" "$CONCURRENCY")"
sleep 1
echo "after pass 2:         $(rss $GW)"
echo "cache counters (/metrics):"
curl -s "http://127.0.0.1:$PORT_GATEWAY/metrics" | grep -iE '^authgate_(store_)?cache|cache_(hits|misses|lookups)' | head -20 || true
