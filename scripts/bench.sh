#!/usr/bin/env bash
# Watch fan-out benchmark (issue 6, point 8): graycast's SSE watch against
# etcd 3.4's watch, same subscribers, same updates, one run, on loopback.
# Usage: scripts/bench.sh [fanout_bench options], e.g. --subscribers 1000
#        scripts/bench.sh --floor [loopback_floor options]: the kernel's share
#        alone (examples/loopback_floor.rs), no server, no etcd
#        scripts/bench.sh --postgres-nodes 2 [options]: one graycast node on
#        SQLite, then 2 nodes sharing one PostgreSQL, no etcd (issue 17, point 8);
#        without GRAYCAST_TEST_POSTGRES it runs under scripts/pg.sh run, which
#        starts a throwaway cluster on loopback (PostgreSQL 15+ must be installed:
#        scripts/bootstrap.sh test)
# Installs etcd (Debian etcd-server) when missing, builds the release binary
# (in $CARGO_TARGET_DIR, default target/) and the driver
# (examples/fanout_bench/, in its own target dir below it), raises the
# open-file limit, and runs the driver; see docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_INCREMENTAL=0
# Cargo resolves a relative CARGO_TARGET_DIR against the working directory,
# which is the project root from here on.
TARGET="${CARGO_TARGET_DIR:-target}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

FLOOR=""
if [ "${1:-}" = --floor ]; then FLOOR=1; shift; fi
# --postgres-nodes: no etcd; a PostgreSQL server is needed instead.
POSTGRES=""
for arg in "$@"; do
  case "$arg" in --postgres-nodes | --postgres-nodes=*) POSTGRES=1 ;; esac
done

ETCD="${ETCD:-/usr/bin/etcd}"
if [ -z "$FLOOR" ] && [ -z "$POSTGRES" ] && ! [ -x "$ETCD" ]; then
  say "installing etcd 3.4 (Debian etcd-server, etcd-client)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y etcd-server etcd-client
fi

# The driver is built in a target dir of its own. An example unifies the
# dev-dependencies' features (reqwest turns on hyper's client, …): built next
# to the server, it would rebuild the server's lib against those features (same
# file names), and the next server build would rebuild it back, on every run.
# Apart, both are reused when up to date; the server binary is the one `make build`
# gives (scripts/build.sh), the same that `make run` and the browser tests use.
DRIVER_TARGET="$TARGET/fanout-driver"
raise_fd_limit() {
  # Each side holds one descriptor per stream (10,000 by default) plus its own.
  want=65536
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    # Only root may raise the hard limit; otherwise use what is allowed.
    ulimit -Hn "$want" 2>/dev/null || want="$hard"
  fi
  ulimit -n "$want"
}
if [ -n "$FLOOR" ]; then
  say "building the loopback floor in $DRIVER_TARGET (reused when up to date)"
  CARGO_TARGET_DIR="$DRIVER_TARGET" cargo build --release --features ssr --example loopback_floor
  raise_fd_limit
  exec "$DRIVER_TARGET/release/examples/loopback_floor" "$@"
fi
say "the server: the release build run and the tests use (scripts/build.sh; reused when up to date)"
scripts/build.sh
say "building the driver in $DRIVER_TARGET (reused when up to date)"
CARGO_TARGET_DIR="$DRIVER_TARGET" cargo build --release --features ssr --example fanout_bench

# Server and driver both inherit this limit.
raise_fd_limit
DRIVER=("$DRIVER_TARGET/release/examples/fanout_bench" --graycast "$TARGET/release/graycast" --etcd "$ETCD")
if [ -n "$POSTGRES" ]; then
  say "open-file limit $(ulimit -n); $(nproc) CPUs; PostgreSQL in $(scripts/pg.sh bin)"
  # The driver reads the server's URL from GRAYCAST_TEST_POSTGRES.
  if [ -z "${GRAYCAST_TEST_POSTGRES:-}" ]; then
    exec scripts/pg.sh run "${DRIVER[@]}" "$@"
  fi
  exec "${DRIVER[@]}" "$@"
fi
say "open-file limit $(ulimit -n); $(nproc) CPUs; etcd $("$ETCD" --version | awk '/etcd Version/ {print $3}')"

exec "${DRIVER[@]}" "$@"
