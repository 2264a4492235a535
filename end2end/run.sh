#!/usr/bin/env bash
# Runs the Playwright specs against the release build: starts its own server on
# a free port with a fresh database, waits until it is ready, stops it by pid.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)
target="${CARGO_TARGET_DIR:-$root/target}"
bin="${GRAYCAST_BIN:-$target/release/graycast}"
[ -x "$bin" ] || { echo "end2end: $bin is missing; run 'make build' first" >&2; exit 1; }
work=$(mktemp -d)
"$bin" serve --listen 127.0.0.1:0 --database-url "sqlite://$work/e2e.db" \
  --site-root "${GRAYCAST_SITE:-$target/site}" --admin-password e2e-admin-password \
  --heartbeat-secs 1 --plan-tick-ms 200 >"$work/server.out" 2>"$work/server.err" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
url=""
for _ in $(seq 1 300); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/server.out" | head -n1 || true)
  [ -n "$url" ] && curl -fsS "$url/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.err" >&2; echo "end2end: server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/server.err" >&2; echo "end2end: server did not become ready" >&2; exit 1; }
echo "end2end: server ready at $url"
status=0
BASE_URL="$url" GRAYCAST_ADMIN_PASSWORD=e2e-admin-password npx playwright test "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "---- server log (last 50 lines) ----" >&2
  tail -n 50 "$work/server.err" >&2
fi
exit "$status"
