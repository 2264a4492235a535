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

# The crates each side must not link, as patterns over `cargo tree` package names.
server_side='^(leptos|leptos_[a-z_]+|sqlx|sqlx-[a-z-]+|axum|axum-[a-z-]+|tower-sessions[a-z-]*|libsqlite3-sys|graycast)$'
io_side='^(tokio|leptos|leptos_[a-z_]+|sqlx|sqlx-[a-z-]+|axum|hyper|reqwest|graycast|graycast-client)$'
# `forbidden PATTERN` prints the package names on stdin that match.
forbidden() { grep -E "$1" || true; }
# `deps_of PACKAGE [CARGO ARGS]`: the names of the packages it links (normal dependencies).
deps_of() { cargo tree -p "$1" "${@:2}" -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u; }
# `server_half PACKAGE DEP [CARGO ARGS]`: DEP's server features PACKAGE builds (empty: none).
server_half() {
  cargo tree -p "$1" "${@:3}" -e features -i "$2" --prefix none 2>/dev/null |
    grep -o "^$2 feature \"server[a-z0-9_-]*\"" | sort -u || true
}

# The checks must see what they look for: the server package links all of it.
server_deps=$(deps_of graycast --features graycast/ssr)
grep -qx axum <<<"$(forbidden "$server_side" <<<"$server_deps")" ||
  fail "the client check did not see axum in the server package (its probe)"
grep -qx tokio <<<"$(forbidden "$io_side" <<<"$server_deps")" ||
  fail "the domain check did not see tokio in the server package (its probe)"
[ -n "$(server_half graycast hyper --features graycast/ssr)" ] ||
  fail "the hyper check did not see hyper's server half in the server package (its probe)"

client=$(deps_of graycast-client)
bad=$(forbidden "$server_side" <<<"$client")
[ -z "$bad" ] || fail "graycast-client depends on server crates: $(tr '\n' ' ' <<<"$bad")"
for dep in hyper hyper-util; do
  feats=$(server_half graycast-client "$dep")
  [ -z "$feats" ] || fail "graycast-client builds $dep's server half: $(tr '\n' ' ' <<<"$feats")"
done

domain=$(deps_of graycast-domain)
bad=$(forbidden "$io_side" <<<"$domain")
[ -z "$bad" ] || fail "graycast-domain depends on I/O crates: $(tr '\n' ' ' <<<"$bad")"

[ "$status" = 0 ] && echo "check-layers: no new module cycle; graycast-client links no server; graycast-domain no I/O"
exit "$status"
