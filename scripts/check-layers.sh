#!/usr/bin/env bash
# The layers, checked (`make lint` runs this):
#   1. no new module cycle inside any crate of the workspace (scripts/cycles.py; the cycles still
#      to be broken are listed in scripts/known-cycles.txt and may only shrink);
#   2. the client crate (crates/client) links no server: no leptos, sqlx, axum, tower-sessions or
#      SQLite, and hyper (under reqwest) without its server half;
#   3. the domain crate (crates/domain) links no runtime, web framework or database driver
#      (with its default features, as the dashboard and the client use it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
status=0
fail() { echo "check-layers: $*" >&2; status=1; }

# The checker itself must see a cycle: two modules that use each other.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
mkdir -p "$probe/src"
printf 'pub mod a;\npub mod b;\n' >"$probe/src/lib.rs"
printf 'pub fn x() { crate::b::y() }\n' >"$probe/src/a.rs"
printf 'pub fn y() {}\npub fn z() { crate::a::x() }\n' >"$probe/src/b.rs"
if python3 scripts/cycles.py "$probe/src/lib.rs" >/dev/null; then
  fail "scripts/cycles.py did not see the cycle a <-> b in its probe"
fi

for lib in src/lib.rs crates/*/src/lib.rs; do
  python3 scripts/cycles.py --known scripts/known-cycles.txt "$lib" || fail "new module cycles in $(dirname "$(dirname "$lib")") (above)"
done

client=$(cargo tree -p graycast-client -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
bad=$(grep -E '^(leptos|leptos_[a-z_]+|sqlx|sqlx-[a-z-]+|axum|axum-[a-z-]+|tower-sessions[a-z-]*|libsqlite3-sys|graycast)$' <<<"$client" || true)
[ -z "$bad" ] || fail "graycast-client depends on server crates: $(tr '\n' ' ' <<<"$bad")"
for dep in hyper hyper-util; do
  if grep -qx "$dep" <<<"$client"; then
    feats=$(cargo tree -p graycast-client -e features -i "$dep" --prefix none | grep -o "^$dep feature \"[a-z0-9_-]*\"" | sort -u)
    ! grep -q 'feature "server' <<<"$feats" || fail "graycast-client builds $dep's server half: $(tr '\n' ' ' <<<"$feats")"
  fi
done

domain=$(cargo tree -p graycast-domain -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
bad=$(grep -E '^(tokio|leptos|leptos_[a-z_]+|sqlx|sqlx-[a-z-]+|axum|hyper|reqwest|graycast|graycast-client)$' <<<"$domain" || true)
[ -z "$bad" ] || fail "graycast-domain depends on I/O crates: $(tr '\n' ' ' <<<"$bad")"

[ "$status" = 0 ] && echo "check-layers: no new module cycle; graycast-client links no server; graycast-domain no I/O"
exit "$status"
