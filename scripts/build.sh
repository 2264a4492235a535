#!/usr/bin/env bash
# The one release build: the server binary (target/release/graycast) and the front end
# (target/site, content-hashed, with brotli and gzip copies), built by cargo-leptos. `make run`,
# `make build`, `make test` (its browser half) and every benchmark use this build, so none of
# them builds the server again with other flags.
#
# cargo-leptos itself always re-runs wasm-bindgen, wasm-opt (about two minutes here) and the
# compression, even when nothing changed. So this script keeps a stamp of what the build is made
# of — the contents of the sources, manifests, styles, public files and migrations, the versions
# of rustc and cargo-leptos, and the build-relevant environment — and skips the build when the
# stamp and the outputs are still there and unchanged.
#
# usage: scripts/build.sh                      build unless up to date
#        scripts/build.sh --expect-up-to-date  fail (exit 3) if a build would be needed
#                                              (make test checks that a second build is a no-op)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$root/.tools/node_modules/.bin:$PATH"
target="${CARGO_TARGET_DIR:-$root/target}"
stamp_file="$target/graycast-build.stamp"

expect_up_to_date=false
case "${1:-}" in
  "") ;;
  --expect-up-to-date) expect_up_to_date=true ;;
  *) echo "usage: $0 [--expect-up-to-date]" >&2; exit 2 ;;
esac

# What the build is made of. Anything the compiler reads lives under these paths
# (include_str! and sqlx's migrate! read migrations/; cargo-leptos reads style/ and public/).
# vendor/ holds a patched dependency (vendor/tachys/GRAYCAST.md).
inputs=(Cargo.toml Cargo.lock src style public migrations crates vendor build.rs .cargo rust-toolchain.toml)
stamp() {
  local present=()
  for p in "${inputs[@]}"; do [ -e "$p" ] && present+=("$p"); done
  {
    echo "rustc: $(rustc -V)"
    echo "cargo-leptos: $(cargo leptos --version 2>/dev/null || echo missing)"
    # The environment cargo and cargo-leptos read (flags, profiles, leptos' own settings).
    env | grep -E '^(RUSTFLAGS|RUSTC_WRAPPER|CARGO_(BUILD|PROFILE|ENCODED)_[A-Z_]*|CARGO_TARGET_DIR|LEPTOS_[A-Z_]*)=' | sort || true
    find "${present[@]}" -type f -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}

outputs_present() {
  [ -x "$target/release/graycast" ] && [ -f "$target/site/hash.txt" ] && [ -d "$target/site/pkg" ]
}

now=$(stamp)
if outputs_present && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$now" ]; then
  echo "build: up to date ($target/release/graycast and $target/site; nothing it is made of changed)"
  exit 0
fi
if $expect_up_to_date; then
  echo "build: NOT up to date — a build right after a build would rebuild (stamp $now)" >&2
  exit 3
fi

rm -f "$stamp_file"
cargo leptos build --release --precompress
# The stamp of the inputs as they were when the build started: a file edited during the build
# makes the next run build again.
echo "$now" >"$stamp_file"
echo "build: done ($target/release/graycast and $target/site)"
