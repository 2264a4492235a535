#!/usr/bin/env bash
# Installs whatever the build and the tests need and is missing; skips what is present.
# Usage: scripts/bootstrap.sh [build|test]   (test also installs Chromium, Playwright, Prometheus
# and PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-build}"
export PATH="$HOME/.cargo/bin:$PWD/.tools/node_modules/.bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -q '0\.3\.6'; then
  say "installing cargo-leptos 0.3.6 (takes about 11 minutes on 2 cores, once)"
  cargo install cargo-leptos --version 0.3.6 --locked --features no_downloads
fi

# The wasm-bindgen CLI must equal the wasm-bindgen version in Cargo.lock exactly.
wb_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock 2>/dev/null || true)
wb_version="${wb_version:-0.2.130}"
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wb_version\$"; then
  say "installing wasm-bindgen-cli $wb_version"
  cargo install wasm-bindgen-cli --version "$wb_version" --force
fi

if ! [ -x .tools/node_modules/.bin/wasm-opt ]; then
  say "installing wasm-opt (npm binaryen) into .tools"
  mkdir -p .tools
  (cd .tools && [ -f package.json ] || echo '{"private":true}' > package.json; npm install --no-audit --no-fund binaryen@132.0.0)
fi

if [ "$what" = test ]; then
  if ! [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
    say "installing Debian chromium"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
  fi
  # The Prometheus guard tests (tests/api/probes.rs) start the Debian package's binary themselves.
  if ! [ -x "${PROMETHEUS_PATH:-/usr/bin/prometheus}" ]; then
    say "installing Debian prometheus (the tests run it on loopback; its service is not used)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends prometheus
    # The package's service listens on every interface; the tests need none of it.
    if [ -d /run/systemd/system ]; then $SUDO systemctl disable --now prometheus || true; fi
  fi
  # The integration suites run again on PostgreSQL, on throwaway clusters scripts/pg.sh starts.
  if ! scripts/pg.sh bin >/dev/null 2>&1; then
    say "installing Debian postgresql (the tests start their own clusters on loopback; the package's is stopped)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update
    # The package creates a cluster and starts it on port 5432; the tests need neither. A
    # policy-rc.d answering 101 keeps invoke-rc.d (and deb-systemd-invoke) from starting it
    # during the install; it is ours only if there was none, and removed right after.
    policy=""
    if ! [ -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
      $SUDO chmod +x /usr/sbin/policy-rc.d
      policy=/usr/sbin/policy-rc.d
    fi
    installed=0
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends postgresql || installed=$?
    [ -z "$policy" ] || $SUDO rm -f "$policy"
    [ "$installed" = 0 ] || exit "$installed"
    # Whatever started anyway is stopped, and kept from starting at boot.
    if [ -d /run/systemd/system ]; then $SUDO systemctl disable --now postgresql || true; fi
    pg_lsclusters -h 2>/dev/null | while read -r version cluster _ status _; do
      if [ "$status" = online ]; then $SUDO pg_ctlcluster "$version" "$cluster" stop || true; fi
    done
    scripts/pg.sh bin >/dev/null
  fi
  if ! [ -d end2end/node_modules/@playwright/test ] || ! [ -d end2end/node_modules/@axe-core/playwright ]; then
    say "installing Playwright and axe-core (npm) in end2end/"
    (cd end2end && npm install --no-audit --no-fund)
  fi
  if ! [ -d tests/ofrep-node/node_modules/@openfeature/ofrep-provider ]; then
    say "installing the OpenFeature OFREP provider (npm) in tests/ofrep-node/"
    (cd tests/ofrep-node && npm install --no-audit --no-fund)
  fi
fi
say "toolchain ready"
