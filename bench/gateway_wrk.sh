#!/usr/bin/env bash
# Gateway throughput and added latency (issues #6 and #13), all on loopback:
#
#   direct           wrk -> upstream
#   nginx            wrk -> nginx proxy_pass (keepalive pool, no auth) -> upstream:
#                    the fair limit, a proxy that does nothing else (issue #13)
#   authgate-public  wrk -> authgate serve (release) -> upstream   (public route)
#   authgate         wrk -> authgate serve (release) -> upstream   (protected route, valid JWT session cookie)
#   authgate-db      wrk -> a second authgate serve, database strategy, the session
#                    in its in-process cache -> upstream (protected route)
#   node-authjs      wrk -> Node server validating the cookie with @auth/core decode -> upstream
#
# The upstream is bench/upstream.mjs (Node http, 200 "ok"). The cookie is
# minted by bench/mint_cookie.mjs with far-future `authgate.ate`, so no refresh
# happens. Every run sends the same Cookie header (also to the upstream
# directly). Runs are interleaved A,B,C and repeated ROUNDS times.
#
# Usage: bench/gateway_wrk.sh               (after: cargo build --release -p authgate;
#                                             apt-get install -y wrk; npm ci --prefix interop)
# Env:   DURATION=10s CONNECTIONS=32 THREADS=2 ROUNDS=2 WARMUP=2s OUT=/tmp/authgate-bench-gw
#        TARGETS="direct nginx authgate-public authgate node-authjs" (nginx needs nginx installed;
#        authgate-db needs sqlite3) AUTHGATE_BIN=target/release/authgate
#        PORT_GATEWAY PORT_GATEWAY_DB PORT_UPSTREAM PORT_NODE PORT_NGINX: free ports by default
# Then (LAT1=1, default) one 1-connection run per target for the unloaded latency.
# Also records CPU time per request of the gateway process and of the upstream
# (from /proc/PID/stat over each run; "gate cpu"/"ups cpu" in µs).
# Writes raw wrk output to $OUT/<target>-<round>.txt and a summary table on stdout.
# Starts only its own processes and stops them (by pid) on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-2}"
WARMUP="${WARMUP:-2s}"
OUT="${OUT:-/tmp/authgate-bench-gw}"
# A port the kernel says is free now (bound to 0 and released): every
# process gets its own, so two runs never collide.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT_GATEWAY="${PORT_GATEWAY:-$(free_port)}"
PORT_GATEWAY_DB="${PORT_GATEWAY_DB:-$(free_port)}"
PORT_UPSTREAM="${PORT_UPSTREAM:-$(free_port)}"
PORT_NODE="${PORT_NODE:-$(free_port)}"
PORT_NGINX="${PORT_NGINX:-$(free_port)}"
TARGETS="${TARGETS:-direct nginx authgate-public authgate node-authjs}"
BIN="${AUTHGATE_BIN:-$ROOT/target/release/authgate}"
SECRET="bench-secret-at-least-32-chars-long!!!!"

command -v wrk >/dev/null || { echo "wrk not found (apt-get install -y wrk)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$BIN not found (cargo build --release -p authgate)" >&2; exit 1; }

mkdir -p "$OUT"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_http() { # url
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "not answering: $1" >&2; exit 1
}

# The canonical configuration's shape: JWT strategy, SQLite, in-process cache.
# The provider is a preset with fixed endpoints (no discovery at start-up);
# it is never contacted because the cookie's access token is never stale.
cat > "$WORK/authgate.toml" <<EOF
[server]
listen = "127.0.0.1:$PORT_GATEWAY"
public_url = "http://127.0.0.1:$PORT_GATEWAY"
upstream = "http://127.0.0.1:$PORT_UPSTREAM"

[session]
strategy = "jwt"
secret = ["$SECRET"]
max_age = "30d"

[refresh]
mode = "inline"
skew = "2s"

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
path = "/api/**"
access = "api"

[[routes]]
path = "/protected/**"
access = "protected"

[[routes]]
path = "/**"
access = "public"
EOF

node "$ROOT/bench/upstream.mjs" "$PORT_UPSTREAM" > "$WORK/upstream.log" 2>&1 &
PIDS+=($!)
UP_PID=$!
AUTHGATE_LOG="${AUTHGATE_LOG:-warn}" "$BIN" serve --config "$WORK/authgate.toml" > "$WORK/authgate.log" 2>&1 &
PIDS+=($!)
GW_PID=$!
NODE_PID=""
if [[ " $TARGETS " == *" node-authjs "* ]]; then
  node "$ROOT/bench/node_authjs_gate.mjs" --port "$PORT_NODE" --upstream "http://127.0.0.1:$PORT_UPSTREAM" \
    --secret "$SECRET" > "$WORK/node-gate.log" 2>&1 &
  PIDS+=($!)
  NODE_PID=$!
fi

# The database strategy: a second gateway whose one session (seeded with
# sqlite3 as bench/memory_sessions.sh does) is served from its in-process
# cache after the first request.
DB_PID=""
DB_COOKIE=""
if [[ " $TARGETS " == *" authgate-db "* ]]; then
  command -v sqlite3 >/dev/null || { echo "sqlite3 not found (apt-get install -y sqlite3), or leave authgate-db out of TARGETS" >&2; exit 1; }
  sed -e "s/$PORT_GATEWAY/$PORT_GATEWAY_DB/g" -e 's/strategy = "jwt"/strategy = "database"/' \
    -e "s#$WORK/authgate.db#$WORK/authgate-db.db#" "$WORK/authgate.toml" > "$WORK/authgate-db.toml"
  "$BIN" migrate --config "$WORK/authgate-db.toml" > /dev/null
  node "$ROOT/bench/seed_sessions.mjs" 1 "$WORK/seed.sql" "$WORK/db-tokens.txt" > /dev/null
  sqlite3 "$WORK/authgate-db.db" < "$WORK/seed.sql"
  DB_COOKIE="authjs.session-token=$(head -1 "$WORK/db-tokens.txt")"
  AUTHGATE_LOG="${AUTHGATE_LOG:-warn}" "$BIN" serve --config "$WORK/authgate-db.toml" > "$WORK/authgate-db.log" 2>&1 &
  PIDS+=($!)
  DB_PID=$!
fi

NGINX_PID=""
if [[ " $TARGETS " == *" nginx "* ]]; then
  NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
  [ -x "$NGINX" ] || { echo "nginx not found (apt-get install -y nginx-light), or leave it out of TARGETS" >&2; exit 1; }
  mkdir -p "$WORK/nginx"
  # As lean as a reverse proxy gets: two workers (authgate's runtime uses both
  # cores too), a keepalive pool to the upstream, no access log.
  cat > "$WORK/nginx/nginx.conf" <<NGINX_CONF
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream app { server 127.0.0.1:$PORT_UPSTREAM; keepalive 64; }
  server {
    listen 127.0.0.1:$PORT_NGINX;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX_CONF
  "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" > "$WORK/nginx/stdout.log" 2>&1 &
  PIDS+=($!)
  NGINX_PID=$!
fi

wait_http "http://127.0.0.1:$PORT_UPSTREAM/"
wait_http "http://127.0.0.1:$PORT_GATEWAY/healthz"
if [ -n "$NODE_PID" ]; then wait_http "http://127.0.0.1:$PORT_NODE/"; fi
if [ -n "$DB_PID" ]; then wait_http "http://127.0.0.1:$PORT_GATEWAY_DB/healthz"; fi
if [ -n "$NGINX_PID" ]; then wait_http "http://127.0.0.1:$PORT_NGINX/"; fi

TOKEN="$(node "$ROOT/bench/mint_cookie.mjs" --secret "$SECRET" --provider gh)"
COOKIE="authjs.session-token=$TOKEN"
echo "session cookie: ${#TOKEN}-byte JWE (minted with @auth/core encode)"

# Sanity: the protected route answers 200 "ok" with the cookie, not without it.
check() { # name url expect_with expect_without [cookie]
  local with without
  with="$(curl -s -o "$WORK/body" -w '%{http_code}' -H "Cookie: ${5:-$COOKIE}" "$2")"
  without="$(curl -s -o /dev/null -w '%{http_code}' "$2")"
  if [ "$with" != "$3" ] || [ "$(cat "$WORK/body")" != "ok" ] || [ "$without" != "$4" ]; then
    echo "sanity check failed for $1: with cookie $with ($(cat "$WORK/body")), without $without" >&2
    cat "$WORK/authgate.log" >&2
    exit 1
  fi
  echo "sanity $1: with cookie $with \"ok\", without cookie $without"
}
check direct "http://127.0.0.1:$PORT_UPSTREAM/protected/bench" 200 200
if [ -n "$NGINX_PID" ]; then check nginx "http://127.0.0.1:$PORT_NGINX/protected/bench" 200 200; fi
check authgate-public "http://127.0.0.1:$PORT_GATEWAY/public/bench" 200 200
check authgate "http://127.0.0.1:$PORT_GATEWAY/protected/bench" 200 302
if [ -n "$NODE_PID" ]; then check node-authjs "http://127.0.0.1:$PORT_NODE/protected/bench" 200 401; fi
if [ -n "$DB_PID" ]; then check authgate-db "http://127.0.0.1:$PORT_GATEWAY_DB/protected/bench" 200 302 "$DB_COOKIE"; fi
if curl -s -D - -o /dev/null -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT_GATEWAY/protected/bench" | grep -qi '^set-cookie'; then
  echo "note: authgate rewrote the cookie on a plain request" >&2
fi

# CPU time (user+system clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK="$(getconf CLK_TCK)"
declare -A GATE_PID=([direct]="" [nginx]="" [authgate-public]="$GW_PID" [authgate]="$GW_PID" [node-authjs]="$NODE_PID" [authgate-db]="$DB_PID")
# The Cookie header each target gets: the JWT cookie, except the
# database-strategy gateway's own session.
declare -A TARGET_COOKIE=([direct]="$COOKIE" [nginx]="$COOKIE" [authgate-public]="$COOKIE" [authgate]="$COOKIE" [node-authjs]="$COOKIE" [authgate-db]="$DB_COOKIE")

declare -A URL=(
  [direct]="http://127.0.0.1:$PORT_UPSTREAM/protected/bench"
  [nginx]="http://127.0.0.1:$PORT_NGINX/protected/bench"
  [authgate-public]="http://127.0.0.1:$PORT_GATEWAY/public/bench"
  [authgate]="http://127.0.0.1:$PORT_GATEWAY/protected/bench"
  [node-authjs]="http://127.0.0.1:$PORT_NODE/protected/bench"
  [authgate-db]="http://127.0.0.1:$PORT_GATEWAY_DB/protected/bench"
)
# CPU ticks of the proxy in front of the upstream (nginx: its workers, the
# master's children; none for the upstream served directly).
gate_ticks() { # target
  if [ "$1" = nginx ]; then
    local sum=0 w
    for w in $(pgrep -P "$NGINX_PID"); do sum=$((sum + $(ticks "$w"))); done
    echo "$sum"
  elif [ -n "${GATE_PID[$1]}" ]; then
    ticks "${GATE_PID[$1]}"
  else
    echo 0
  fi
}
echo "uptime before runs: $(uptime)"
for round in $(seq 1 "$ROUNDS"); do
  for target in $TARGETS; do
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "Cookie: ${TARGET_COOKIE[$target]}" "${URL[$target]}" > /dev/null
    up0="$(ticks "$UP_PID")"; g0="$(gate_ticks "$target")"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Cookie: ${TARGET_COOKIE[$target]}" "${URL[$target]}" \
      > "$OUT/$target-$round.txt"
    up1="$(ticks "$UP_PID")"; g1="$(gate_ticks "$target")"
    n="$(awk '/requests in/{print $1}' "$OUT/$target-$round.txt")"
    awk -v n="$n" -v g=$((g1 - g0)) -v u=$((up1 - up0)) -v t="$TCK" \
      'BEGIN{printf "cpu_us_per_request gate %.1f upstream %.1f\n", g*1e6/t/n, u*1e6/t/n}' >> "$OUT/$target-$round.txt"
    echo "round $round $target: $(grep -E 'Requests/sec' "$OUT/$target-$round.txt"); $(tail -1 "$OUT/$target-$round.txt")"
  done
done
# Unloaded latency: one connection, one request at a time.
if [ "${LAT1:-1}" = 1 ]; then
  for target in $TARGETS; do
    wrk -t1 -c1 -d"${LAT1_DURATION:-5s}" --latency -H "Cookie: ${TARGET_COOKIE[$target]}" "${URL[$target]}" > "$OUT/$target-c1.txt"
    echo "1 connection $target: $(grep -E 'Requests/sec' "$OUT/$target-c1.txt"); $(awk '$1=="50%"||$1=="99%"{printf "%s %s  ", $1, $2}' "$OUT/$target-c1.txt")"
  done
fi
echo "uptime after runs: $(uptime)"
echo "authgate RSS after runs: $(grep VmRSS /proc/$GW_PID/status | awk '{print $2, $3}')"
if [ -n "$DB_PID" ]; then echo "authgate (database strategy) RSS after runs: $(grep VmRSS /proc/$DB_PID/status | awk '{print $2, $3}')"; fi

# Summary: requests/s and latency percentiles per run (wrk --latency).
to_ms() { # wrk duration (e.g. 512.00us, 1.20ms, 2.00s) -> ms
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) { sub(/us$/,"",v); printf "%.3f", v/1000 }
                      else if (v ~ /ms$/) { sub(/ms$/,"",v); printf "%.3f", v }
                      else if (v ~ /s$/) { sub(/s$/,"",v); printf "%.3f", v*1000 } }'
}
# "÷ nginx": this run's req/s over nginx's in the same round (the fair limit).
rps_of() { awk '/Requests\/sec/{print $2}' "$1"; }
printf '\n%-16s %-5s %12s %8s %9s %9s %9s %7s %10s %10s\n' target round "req/s" "÷ nginx" "p50 ms" "p90 ms" "p99 ms" errors "gate cpu" "ups cpu"
declare -A RATIOS=()
for round in $(seq 1 "$ROUNDS"); do
  nginx_rps=""
  if [ -f "$OUT/nginx-$round.txt" ] && [[ " $TARGETS " == *" nginx "* ]]; then nginx_rps="$(rps_of "$OUT/nginx-$round.txt")"; fi
  for target in $TARGETS; do
    f="$OUT/$target-$round.txt"
    rps="$(rps_of "$f")"
    ratio="-"
    if [ -n "$nginx_rps" ]; then
      ratio="$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN{printf "%.2f", a/b}')"
      RATIOS[$target]="${RATIOS[$target]:-} $ratio"
    fi
    p50="$(to_ms "$(awk '$1=="50%"{print $2}' "$f")")"
    p90="$(to_ms "$(awk '$1=="90%"{print $2}' "$f")")"
    p99="$(to_ms "$(awk '$1=="99%"{print $2}' "$f")")"
    errs="$(grep -cE 'Non-2xx|Socket errors' "$f" || true)"
    gcpu="$(awk '/^cpu_us_per_request/{print $3}' "$f")"
    ucpu="$(awk '/^cpu_us_per_request/{print $5}' "$f")"
    printf '%-16s %-5s %12s %8s %9s %9s %9s %7s %10s %10s\n' "$target" "$round" "$rps" "$ratio" "$p50" "$p90" "$p99" "$errs" "$gcpu" "$ucpu"
  done
done
if [ "${#RATIOS[@]}" -gt 0 ]; then
  echo
  echo "median ratio to nginx over $ROUNDS rounds:"
  for target in $TARGETS; do
    [ -n "${RATIOS[$target]:-}" ] || continue
    printf '  %-16s %s   (rounds:%s)\n' "$target" \
      "$(tr ' ' '\n' <<< "${RATIOS[$target]}" | grep . | sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')" \
      "${RATIOS[$target]}"
  done
fi
if [ "${LAT1:-1}" = 1 ]; then
  printf '\n1 connection:\n%-16s %9s %9s %14s\n' target "p50 us" "p99 us" "p50 - nginx"
  nginx_p50=""
  if [ -f "$OUT/nginx-c1.txt" ] && [[ " $TARGETS " == *" nginx "* ]]; then
    nginx_p50="$(to_ms "$(awk '$1=="50%"{print $2}' "$OUT/nginx-c1.txt")")"
  fi
  for target in $TARGETS; do
    f="$OUT/$target-c1.txt"
    p50="$(to_ms "$(awk '$1=="50%"{print $2}' "$f")")"
    p99="$(to_ms "$(awk '$1=="99%"{print $2}' "$f")")"
    added="-"
    if [ -n "$nginx_p50" ]; then added="$(awk -v a="$p50" -v b="$nginx_p50" 'BEGIN{printf "%+.0f us", (a-b)*1000}')"; fi
    printf '%-16s %9.0f %9.0f %14s\n' "$target" "$(awk -v v="$p50" 'BEGIN{print v*1000}')" "$(awk -v v="$p99" 'BEGIN{print v*1000}')" "$added"
  done
fi
