#!/usr/bin/env bash
# The dashboard's first-load weight (docs/benchmarks.md): starts a release build on a free
# loopback port with a fresh database, and has Chromium load the config page through a
# 20 Mbit/s, 40 ms link, cold and warm (scripts/bench-weight.cjs).
#
# usage: scripts/bench-weight.sh [--runs N] [--bin PATH] [--site-root DIR]
#   --bin and --site-root measure another build, e.g. an older one for a before/after.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release/graycast"
site="$target/site"
runs=5
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --site-root) site=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--bin PATH] [--site-root DIR]" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "bench-weight: $bin is missing; run 'make build' first" >&2; exit 1; }
[ -d "$root/end2end/node_modules/@playwright/test" ] || { echo "bench-weight: run 'make bootstrap-test' first (Playwright)" >&2; exit 1; }

echo "front end in $site/pkg (bytes as stored; .br and .gz are the build's compressed copies):"
for f in "$site"/pkg/*; do
  case "$f" in *.br | *.gz) continue ;; esac
  line="  $(basename "$f") $(stat -c %s "$f")"
  [ -f "$f.br" ] && line="$line, br $(stat -c %s "$f.br")"
  [ -f "$f.gz" ] && line="$line, gzip $(stat -c %s "$f.gz")"
  echo "$line"
done

work=$(mktemp -d)
"$bin" serve --listen 127.0.0.1:0 --database-url "sqlite://$work/bench.db" \
  --site-root "$site" --admin-password bench-admin-password \
  >"$work/server.out" 2>"$work/server.err" &
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
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.err" >&2; echo "bench-weight: server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/server.err" >&2; echo "bench-weight: server did not become ready" >&2; exit 1; }

NODE_PATH="$root/end2end/node_modules" node "$root/scripts/bench-weight.cjs" "$url" bench-admin-password "$runs"
