#!/usr/bin/env bash
# Installs this example's packages (npm ci, when package-lock.json changed)
# and builds it (next build, when a source file changed). Used by
# scripts/test and by the browser test; cheap when nothing changed.
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

sources=$(find app lib types auth.ts middleware.ts next.config.mjs tsconfig.json package-lock.json \
  -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
build_stamp=.next/authgate-source-stamp
if [ ! -f .next/BUILD_ID ] || [ "$(cat "$build_stamp" 2>/dev/null)" != "$sources" ]; then
  echo "examples/nextjs: next build"
  start=$(date +%s)
  npx --no-install next build
  echo "$sources" > "$build_stamp"
  echo "examples/nextjs: built in $(( $(date +%s) - start )) s"
fi
