#!/usr/bin/env bash
# Installs this example's packages (npm ci, when package-lock.json changed)
# and builds it (next build, when a source file changed). Used by
# scripts/test and by the browser tests; cheap when nothing changed.
#
# The build goes to $NEXT_DIST_DIR (default .next). With AUTHGATE_URL set it
# is the "beside authgate" build (next.config.mjs rewrites /api/auth/* there);
# the URL is part of what decides whether to rebuild.
set -euo pipefail
cd "$(dirname "$0")"
export NEXT_TELEMETRY_DISABLED=1

# One install/build at a time (the browser test and scripts/test may race).
exec 9>.build.lock
flock 9

lock_stamp=node_modules/.installed-lock
if [ ! -f "$lock_stamp" ] || ! cmp -s package-lock.json "$lock_stamp"; then
  echo "examples/nextjs: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$lock_stamp"
fi

dist=${NEXT_DIST_DIR:-.next}
sources=$( (find app lib types auth.ts middleware.ts next.config.mjs tsconfig.json package-lock.json \
  -type f -print0 | sort -z | xargs -0 sha256sum; echo "AUTHGATE_URL=${AUTHGATE_URL:-}") \
  | sha256sum | cut -d' ' -f1)
build_stamp=$dist/authgate-source-stamp
if [ ! -f "$dist/BUILD_ID" ] || [ "$(cat "$build_stamp" 2>/dev/null)" != "$sources" ]; then
  echo "examples/nextjs: next build into $dist${AUTHGATE_URL:+ (beside authgate at $AUTHGATE_URL)}"
  start=$(date +%s)
  npx --no-install next build
  echo "$sources" > "$build_stamp"
  echo "examples/nextjs: built in $(( $(date +%s) - start )) s"
fi
