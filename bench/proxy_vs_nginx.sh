#!/usr/bin/env bash
# Issue #13: authgate against nginx in the same run — the fair limit for a
# proxy on this machine is a proxy that does nothing else.
#
# Starts its own upstream (bench/upstream.mjs), nginx (own prefix and config),
# and two `authgate serve` (JWT strategy; database strategy with its session
# in the in-process cache), all on free ephemeral loopback ports; runs wrk
# against the upstream direct, nginx, authgate's public route, its protected
# route with a valid Auth.js cookie, and the database-strategy gateway,
# interleaved over ROUNDS rounds; then one connection each. Prints req/s,
# the ratio to nginx in the same round (and its median), p50/p90/p99, CPU µs
# per request of the proxy and the upstream, and 1-connection p50 over nginx.
#
# Usage: bench/proxy_vs_nginx.sh     (cargo build --release -p authgate;
#        apt-get install -y wrk nginx-light sqlite3; npm ci --prefix interop)
# Env:   as bench/gateway_wrk.sh; defaults here: THREADS=1 CONNECTIONS=32
#        DURATION=5s ROUNDS=3 WARMUP=2s.
set -euo pipefail
export TARGETS="${TARGETS:-direct nginx authgate-public authgate authgate-db}"
export THREADS="${THREADS:-1}" CONNECTIONS="${CONNECTIONS:-32}" DURATION="${DURATION:-5s}"
export ROUNDS="${ROUNDS:-3}" WARMUP="${WARMUP:-2s}"
exec "$(dirname "$0")/gateway_wrk.sh"
