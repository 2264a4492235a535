#!/usr/bin/env bash
# Watch fan-out benchmark (issue 6, point 8): graycast's SSE watch against
# etcd 3.4's watch, same subscribers, same updates, one run, on loopback.
# Usage: scripts/bench.sh [fanout_bench options], e.g. --subscribers 1000
# Installs etcd (Debian etcd-server) when missing, builds the release binary
# and the driver (examples/fanout_bench.rs) in the project's target dir,
# raises the open-file limit, and runs the driver; see docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_INCREMENTAL=0

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

ETCD="${ETCD:-/usr/bin/etcd}"
if ! [ -x "$ETCD" ]; then
  say "installing etcd 3.4 (Debian etcd-server, etcd-client)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y etcd-server etcd-client
fi

# Two invocations on purpose: an example unifies dev-dependency features, so
# building both at once would give a graycast binary that differs from `make
# build`'s and rebuild it; this way each is reused when up to date.
say "building target/release/graycast and the fanout_bench driver (reused when up to date)"
cargo build --release --features ssr --bin graycast
cargo build --release --features ssr --example fanout_bench

# Each side holds one descriptor per stream (10,000 by default) plus its own;
# both processes inherit this limit.
want=65536
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
  # Only root may raise the hard limit; otherwise use what is allowed.
  ulimit -Hn "$want" 2>/dev/null || want="$hard"
fi
ulimit -n "$want"
say "open-file limit $(ulimit -n); $(nproc) CPUs; etcd $("$ETCD" --version | awk '/etcd Version/ {print $3}')"

exec target/release/examples/fanout_bench --graycast target/release/graycast --etcd "$ETCD" "$@"
