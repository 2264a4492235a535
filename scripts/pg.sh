#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (the specification, section 8), on loopback only.
# Usage:
#   scripts/pg.sh start DIR   start a cluster in DIR (created if missing); prints its URL
#                             postgres://graycast@127.0.0.1:PORT/postgres and writes it to DIR/url
#   scripts/pg.sh stop DIR    stop it (immediate) and remove DIR
#   scripts/pg.sh run CMD...  start one in a temporary directory, run CMD with
#                             GRAYCAST_TEST_POSTGRES=<url>, stop it whatever CMD did; CMD's status
#   scripts/pg.sh pause DIR   stop the cluster in DIR, keeping its data (an outage, for tests)
#   scripts/pg.sh resume DIR  start it again on the same port
#   scripts/pg.sh bin         print the PostgreSQL bin directory used (fails when there is none)
# As root the cluster runs as the `postgres` user (runuser); otherwise as the current user.
# PG_SHARED_BUFFERS (default 32MB) sets shared_buffers, for benchmarks on a bigger cache.
set -euo pipefail

say() { printf '%s\n' "$*" >&2; }
die() { say "scripts/pg.sh: $*"; exit 1; }

# The highest installed PostgreSQL that is 15 or newer (Debian lays them out by major version).
bin_dir() {
  local best="" major dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ] || continue
    major=$(basename "$(dirname "$dir")")
    [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -ge 15 ] || continue
    if [ -z "$best" ] || [ "$major" -gt "$(basename "$(dirname "$best")")" ]; then best=$dir; fi
  done
  [ -n "$best" ] || die "no PostgreSQL 15 or newer found in /usr/lib/postgresql/*/bin; install it with 'scripts/bootstrap.sh test' (Debian package postgresql)."
  printf '%s\n' "$best"
}

# Runs a PostgreSQL program as the cluster's owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A loopback port nobody listens on right now (the kernel picks it).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1 bin port url attempt
  bin=$(bin_dir)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ ! -e "$dir/data" ] || die "$dir/data exists already: give an empty directory, or stop that cluster first."
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir"
    runuser -u postgres -- test -w "$dir" \
      || die "$dir is not writable by the postgres user: a parent directory is closed to it; open it (chmod o+x) or give a new directory directly under /tmp."
  fi
  # UTF-8 with C.UTF-8 character classes, whatever the caller's locale: the audit search's
  # tokenizing (migrations/postgres) classifies letters by it.
  as_owner "$bin/initdb" -D "$dir/data" -A trust -U graycast -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed in $dir/data"; }
  # Test-only settings: no durability (fsync, synchronous_commit and full_page_writes off) and
  # little memory, for speed (PG_SHARED_BUFFERS, e.g. 1GB, for a benchmark); many connections,
  # for a fresh database per test. Never use these for data that matters.
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 400
shared_buffers = ${PG_SHARED_BUFFERS:-32MB}
EOF
  # Another process may take the port between the probe and the start: try a new one then.
  for attempt in 1 2 3; do
    port=$(free_port)
    if as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 30 -l "$dir/log" -o "-p $port" start >/dev/null; then
      url="postgres://graycast@127.0.0.1:$port/postgres"
      printf '%s\n' "$url" >"$dir/url"
      printf '%s\n' "$url"
      return 0
    fi
    say "PostgreSQL did not start on port $port (attempt $attempt):"
    tail -n 5 "$dir/log" >&2 || true
  done
  die "PostgreSQL did not start in $dir; its log is $dir/log"
}

stop() {
  local dir=$1 bin
  [ -f "$dir/data/PG_VERSION" ] || die "$dir holds no cluster started by scripts/pg.sh start."
  bin=$(bin_dir)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || say "pg_ctl stop failed in $dir"
  fi
  rm -rf "$dir"
}

pause() {
  local dir=$1
  [ -f "$dir/data/PG_VERSION" ] || die "$dir holds no cluster started by scripts/pg.sh start."
  as_owner "$(bin_dir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
}

resume() {
  local dir=$1 port
  [ -f "$dir/url" ] || die "$dir holds no cluster started by scripts/pg.sh start."
  port=$(sed -E 's|.*:([0-9]+)/.*|\1|' "$dir/url")
  as_owner "$(bin_dir)/pg_ctl" -D "$dir/data" -w -t 30 -l "$dir/log" -o "-p $port" start >/dev/null
}

run() {
  [ "$#" -gt 0 ] || die "run needs a command, e.g. scripts/pg.sh run cargo test"
  local dir status=0
  dir=$(mktemp -d "${TMPDIR:-/tmp}/graycast-pg.XXXXXX")
  # shellcheck disable=SC2064 # the directory is fixed now
  trap "if [ -f '$dir/data/PG_VERSION' ]; then stop '$dir'; else rm -rf '$dir'; fi" EXIT
  GRAYCAST_TEST_POSTGRES=$(start "$dir")
  export GRAYCAST_TEST_POSTGRES
  "$@" || status=$?
  exit "$status"
}

case "${1:-}" in
  start) [ "$#" = 2 ] || die "usage: scripts/pg.sh start DIR"; start "$2" ;;
  stop) [ "$#" = 2 ] || die "usage: scripts/pg.sh stop DIR"; stop "$2" ;;
  run) shift; run "$@" ;;
  pause) [ "$#" = 2 ] || die "usage: scripts/pg.sh pause DIR"; pause "$2" ;;
  resume) [ "$#" = 2 ] || die "usage: scripts/pg.sh resume DIR"; resume "$2" ;;
  bin) bin_dir ;;
  *) die "usage: scripts/pg.sh start DIR | stop DIR | pause DIR | resume DIR | run CMD... | bin" ;;
esac
