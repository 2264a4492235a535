#!/usr/bin/env bash
# Per-request resolve benchmark (issue 16, point 4): graycast's resolve, its
# /healthz and its OFREP evaluation against Unleash Edge 19.15.1 (offline
# mode) evaluating the same rule, one run, on loopback, with wrk -t2 -c64 and
# a new user id on every request. See docs/benchmarks.md.
#
# Usage: scripts/bench-resolve.sh [--duration S] [--warmup S] [--connections N]
#        scripts/bench-resolve.sh --memory [--configs N]
#   --duration S     seconds each measured wrk run lasts (default 15)
#   --warmup S       seconds of warm-up before each measured run (default 3)
#   --connections N  wrk connections (default 64; 2 threads always)
#   --memory         instead: create N released configs of 2 KiB (default
#                    10,000) and report the server's RSS before, after, and
#                    after resolving each once
#   KEEP=1           keep the temporary directory (databases, logs)
#   PROFILE=1        also sample graycast with `perf record -g` during its measured
#                    runs and print where the time goes (perf must be installed)
#
# Installs wrk (Debian `wrk`) and jq when missing, and Unleash Edge 19.15.1
# with cargo (its swagger-ui archive prepared from npm, no network at build
# time) when `cargo install --list` does not show it. Builds the release server
# (in $CARGO_TARGET_DIR, default target/; reused when up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_INCREMENTAL=0
TARGET="${CARGO_TARGET_DIR:-target}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[1;31m!!! %s\033[0m\n' "$*" >&2; exit 1; }

DURATION=15
WARMUP=3
CONNECTIONS=64
THREADS=2
MEMORY=""
CONFIGS=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --duration | --warmup | --connections | --configs) [ $# -ge 2 ] || die "$1 needs a value" ;;
  esac
  case "$1" in
    --duration) DURATION="${2:-}"; shift 2 ;;
    --warmup) WARMUP="${2:-}"; shift 2 ;;
    --connections) CONNECTIONS="${2:-}"; shift 2 ;;
    --memory) MEMORY=1; shift ;;
    --configs) CONFIGS="${2:-}"; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for n in "$DURATION" "$WARMUP" "$CONNECTIONS" "$CONFIGS"; do
  [[ "$n" =~ ^[0-9]+$ ]] || die "not a whole number: '$n'"
done
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 3600 ] || die "--duration must be 1..3600"
[ "$WARMUP" -le 600 ] || die "--warmup must be 0..600"
[ "$CONNECTIONS" -ge "$THREADS" ] && [ "$CONNECTIONS" -le 10000 ] || die "--connections must be $THREADS..10000"
[ "$CONFIGS" -ge 1 ] && [ "$CONFIGS" -le 100000 ] || die "--configs must be 1..100000"

# ---------------------------------------------------------------- tools
apt_install() {
  say "installing $* (Debian)"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "$@"
}
WRK=/usr/bin/wrk
[ -x "$WRK" ] || apt_install wrk
command -v jq >/dev/null || apt_install jq

EDGE_VERSION=19.15.1
SWAGGER=5.17.14
edge_installed() {
  command -v unleash-edge >/dev/null || return 1
  unleash-edge --version 2>/dev/null | grep -qF "$EDGE_VERSION" && return 0
  # 19.15.1 has no --version flag: ask cargo what it installed.
  cargo install --list | grep -q "^unleash-edge v${EDGE_VERSION}:"
}
install_edge() {
  # Edge's build downloads swagger-ui unless given an archive: the npm
  # package, laid out as the GitHub release archive (swagger-ui-X/dist/…).
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/graycast-bench/unleash-edge"
  say "installing Unleash Edge $EDGE_VERSION (cargo install, in $cache)"
  mkdir -p "$cache"
  (
    cd "$cache"
    rm -rf package "swagger-ui-$SWAGGER" "swagger-ui-$SWAGGER.zip" swagger-ui-dist-*.tgz
    npm pack "swagger-ui-dist@$SWAGGER"
    tar xzf "swagger-ui-dist-$SWAGGER.tgz"
    mkdir "swagger-ui-$SWAGGER"
    mv package "swagger-ui-$SWAGGER/dist"
    python3 -c "import shutil; shutil.make_archive('swagger-ui-$SWAGGER', 'zip', '.', 'swagger-ui-$SWAGGER')"
    SWAGGER_UI_DOWNLOAD_URL="file://$cache/swagger-ui-$SWAGGER.zip" \
      cargo install unleash-edge --version "$EDGE_VERSION" --locked --target-dir "$cache/target"
  )
}
if [ -z "$MEMORY" ] && ! edge_installed; then
  install_edge
  edge_installed || die "unleash-edge $EDGE_VERSION is still not installed"
fi

if [ -n "${GRAYCAST_BIN:-}" ]; then
  # Another server binary to measure (e.g. an older build for a before/after).
  GRAYCAST="$GRAYCAST_BIN"
  [ -x "$GRAYCAST" ] || die "GRAYCAST_BIN=$GRAYCAST is not an executable"
  say "using $GRAYCAST"
else
  say "the server: the release build run and the tests use (scripts/build.sh; reused when up to date)"
  scripts/build.sh
  GRAYCAST="$TARGET/release/graycast"
fi

# ---------------------------------------------------------------- processes
WORK="$(mktemp -d "${TMPDIR:-/tmp}/graycast-bench-resolve.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do wait "$pid" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# poll DEADLINE_SECS COMMAND…: run COMMAND until it succeeds, or fail after the deadline.
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
alive() { kill -0 "$1" 2>/dev/null; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# user + system CPU ticks of a process (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# CPU ticks of this shell's reaped children (fields 16 and 17): wrk's, once waited for.
children_ticks() { sed 's/.*) //' "/proc/$$/stat" | awk '{print $14 + $15}'; }
# busy CPU ticks of the whole machine (/proc/stat: all but idle and iowait).
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
CLK_TCK="$(getconf CLK_TCK)"

DB_URL="sqlite://$WORK/db.sqlite?mode=rwc"
GC_PID=""
GC=""
start_graycast() {
  ADMIN="$("$GRAYCAST" token create --name bench-admin --role admin --database-url "$DB_URL" 2>>"$WORK/graycast.log" |
    awk 'NF {last = $0} END {print last}')"
  [ -n "$ADMIN" ] || die "graycast token create printed no token"
  RUST_LOG=warn "$GRAYCAST" serve --listen 127.0.0.1:0 --database-url "$DB_URL" \
    --admin-password "bench-admin-$RANDOM$RANDOM" --site-root "$WORK/no-site" \
    >"$WORK/graycast.out" 2>"$WORK/graycast.log" </dev/null &
  GC_PID=$!
  PIDS+=("$GC_PID")
  listening() {
    alive "$GC_PID" || die "graycast exited: $(tail -5 "$WORK/graycast.log")"
    grep -q 'listening on http://' "$WORK/graycast.out"
  }
  poll 60 listening || die "graycast did not listen within 60 s"
  GC="http://$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$WORK/graycast.out" | head -1)"
  say "graycast pid $GC_PID on $GC ($(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
}

# api METHOD PATH BODY EXPECTED_STATUS [TOKEN]: a JSON call; prints the answer.
api() {
  local code
  code="$(curl -sS -o "$WORK/answer" -w '%{http_code}' -X "$1" \
    -H "Authorization: Bearer ${5:-$ADMIN}" -H 'Content-Type: application/json' \
    ${3:+--data-binary "$3"} "$GC/api/v1$2")"
  [ "$code" = "$4" ] || die "$1 $2 answered $code, expected $4: $(head -c 500 "$WORK/answer")"
  cat "$WORK/answer"
}

NS=bench
ENV=prod
KEY=gateway.json
CONFIG="/namespaces/$NS/envs/$ENV/configs/$KEY"
THRESHOLD=3000 # 30 % in basis points

# ---------------------------------------------------------------- --memory
if [ -n "$MEMORY" ]; then
  start_graycast
  api POST /namespaces "{\"name\":\"$NS\"}" 201 >/dev/null
  SUB="$(api POST /tokens "{\"name\":\"bench-subscriber\",\"role\":\"subscriber\",\"namespace\":\"$NS\",\"env\":\"$ENV\"}" 201 | jq -r .token)"
  mkdir -p "$WORK/bodies"
  # One curl process per phase: every request listed in a config file, run
  # 16 at a time over reused connections.
  python3 - "$WORK" "$GC" "$NS" "$ENV" "$CONFIGS" "$ADMIN" "$SUB" <<'PY'
import json, sys
work, base, ns, env, n, admin, sub = sys.argv[1:8]
configs = f"{base}/api/v1/namespaces/{ns}/envs/{env}/configs"
def block(f, url, token, body=None):
    # "next" separates transfers; one after the last would start an empty one.
    if f.tell():
        f.write("next\n")
    f.write(f'url = "{url}"\nheader = "Authorization: Bearer {token}"\n')
    if body:
        f.write(f'request = "POST"\nheader = "Content-Type: application/json"\ndata-binary = "@{body}"\n')
    f.write('silent\nshow-error\noutput = "/dev/null"\nwrite-out = "%{http_code}\\n"\n')
with open(f"{work}/release.json", "w") as f:
    json.dump({"version": 1}, f)
with open(f"{work}/create.cfg", "w") as c, open(f"{work}/release.cfg", "w") as r, \
        open(f"{work}/resolve.cfg", "w") as g:
    for i in range(int(n)):
        key = f"cfg-{i:05d}.json"
        head = json.dumps({"name": key, "pad": ""})
        content = json.dumps({"name": key, "pad": "x" * (2048 - len(head))})
        assert len(content) == 2048
        path = f"{work}/bodies/{i:05d}.json"
        with open(path, "w") as f:
            json.dump({"key": key, "format": "json", "content": content}, f)
        block(c, configs, admin, path)
        block(r, f"{configs}/{key}/release", admin, f"{work}/release.json")
        block(g, f"{configs}/{key}/resolve?client_id=mem&labels=region%3Dbeijing", sub)
PY
  run_phase() { # NAME CFG EXPECTED_STATUS
    local t0 bad
    t0="$(date +%s.%N)"
    curl -sS --parallel --parallel-max 16 -K "$WORK/$2" >"$WORK/$1.codes" 2>"$WORK/$1.err" || true
    bad="$(grep -cv "^$3\$" "$WORK/$1.codes" || true)"
    [ "$(wc -l <"$WORK/$1.codes")" = "$CONFIGS" ] && [ "$bad" = 0 ] ||
      die "$1: $bad of $CONFIGS answers were not $3 ($(sort "$WORK/$1.codes" | uniq -c | tr '\n' ' ')) $(tail -c 300 "$WORK/$1.err")"
    say "$1: $CONFIGS × HTTP $3 in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
  }
  rss0="$(rss_kib "$GC_PID")"
  say "RSS before: $rss0 KiB; creating $CONFIGS configs of 2 KiB, then releasing each"
  run_phase create create.cfg 201
  run_phase release release.cfg 201
  rss1="$(rss_kib "$GC_PID")"
  run_phase resolve resolve.cfg 200
  rss2="$(rss_kib "$GC_PID")"
  db_kib=$(($(stat -c %s "$WORK/db.sqlite") / 1024))
  wal_kib=$(($(stat -c %s "$WORK/db.sqlite-wal" 2>/dev/null || echo 0) / 1024))
  echo
  printf '%-44s %12s %14s\n' "graycast server ($CONFIGS configs × 2 KiB)" "VmRSS" "vs. before"
  printf '%-44s %8d KiB %14s\n' "before (empty database)" "$rss0" ""
  printf '%-44s %8d KiB %+10d KiB\n' "after creating and releasing them" "$rss1" $((rss1 - rss0))
  printf '%-44s %8d KiB %+10d KiB\n' "after resolving each once" "$rss2" $((rss2 - rss0))
  printf '%-44s %8d KiB (and %d KiB of write-ahead log)\n' "database file" "$db_kib" "$wal_kib"
  exit 0
fi

# ---------------------------------------------------------------- seeding
start_graycast
V1='{"upstream":"http://10.0.0.1:8080","timeout_ms":500,"retries":2,"release":"v1"}'
V2='{"upstream":"http://10.0.0.2:8080","timeout_ms":800,"retries":3,"release":"v2"}'
api POST /namespaces "{\"name\":\"$NS\"}" 201 >/dev/null
api POST "/namespaces/$NS/envs/$ENV/configs" "$(jq -nc --arg k "$KEY" --arg c "$V1" '{key:$k,format:"json",content:$c}')" 201 >/dev/null
api POST "$CONFIG/versions" "$(jq -nc --arg c "$V2" '{content:$c,base_version:1}')" 201 >/dev/null
api POST "$CONFIG/release" '{"version":1}' 201 >/dev/null
LANE="$(api POST "$CONFIG/lanes" '{"version":2,"selector":"region in (beijing,shanghai)","percentage":30,"stickiness":"user_id"}' 201 | jq -r .id)"
SUB="$(api POST /tokens "{\"name\":\"bench-subscriber\",\"role\":\"subscriber\",\"namespace\":\"$NS\",\"env\":\"$ENV\"}" 201 | jq -r .token)"
say "seeded $NS/$ENV/$KEY: stable v1, lane $LANE (v2, region in (beijing,shanghai), 30 %, user_id)"

# ---------------------------------------------------------------- sanity: graycast
resolve_as() { # TOKEN USER REGION [explain]: prints "version lane bucket"
  curl -sS -f -H "Authorization: Bearer $1" \
    "$GC/api/v1$CONFIG/resolve?user_id=$2&labels=region%3D$3${4:+&explain=true}" |
    jq -r '[.version, (.lane // "-"), ((.explain.lanes // [])[0].bucket // "-")] | join(" ")'
}
in_gc=0
out_gc=0
for i in $(seq 1 60); do
  read -r v lane _ <<<"$(resolve_as "$SUB" "s$i" beijing)"
  read -r ve _ bucket <<<"$(resolve_as "$ADMIN" "s$i" beijing explain)"
  [ "$v" = "$ve" ] || die "graycast: user s$i got v$v as subscriber but v$ve with explain"
  if [ "$bucket" -lt "$THRESHOLD" ]; then
    [ "$v" = 2 ] && [ "$lane" = "$LANE" ] || die "graycast: beijing user s$i (bucket $bucket < $THRESHOLD) got v$v lane $lane, not v2 lane $LANE"
    in_gc=$((in_gc + 1))
    IN_USER="s$i"
  else
    [ "$v" = 1 ] && [ "$lane" = - ] || die "graycast: beijing user s$i (bucket $bucket ≥ $THRESHOLD) got v$v lane $lane, not stable v1"
    out_gc=$((out_gc + 1))
    OUT_USER="s$i"
  fi
done
[ "$in_gc" -gt 0 ] && [ "$out_gc" -gt 0 ] || die "graycast: of 60 beijing users $in_gc got v2 and $out_gc v1; expected some of each"
for i in $(seq 1 30); do
  read -r v lane _ <<<"$(resolve_as "$SUB" "s$i" guangzhou)"
  [ "$v" = 1 ] && [ "$lane" = - ] || die "graycast: guangzhou user s$i got v$v lane $lane, not stable v1"
done
say "sanity graycast: 60 beijing users → $in_gc on v2 (bucket < $THRESHOLD), $out_gc on v1; 30 guangzhou users → v1"

# ---------------------------------------------------------------- Unleash Edge
EDGE_TOKEN='default:development.abc123'
FEATURE=gateway
jq -n --arg f "$FEATURE" --arg v2 "$V2" '{
  version: 2,
  features: [{
    name: $f, type: "release", project: "default", enabled: true, stale: false,
    impressionData: false,
    strategies: [{
      name: "flexibleRollout", sortOrder: 0,
      parameters: {rollout: "30", stickiness: "userId", groupId: $f},
      constraints: [{contextName: "region", operator: "IN", values: ["beijing", "shanghai"],
                     caseInsensitive: false, inverted: false}],
      variants: [{name: "v2", weight: 1000, weightType: "variable", stickiness: "userId",
                  payload: {type: "json", value: $v2}}]
    }],
    variants: []
  }],
  segments: []
}' >"$WORK/features.json"
EDGE_PORT="$(free_port)"
EDGE="http://127.0.0.1:$EDGE_PORT"
RUST_LOG=warn unleash-edge --interface 127.0.0.1 --port "$EDGE_PORT" offline \
  -b "$WORK/features.json" -f "$EDGE_TOKEN" -c "$EDGE_TOKEN" \
  >"$WORK/edge.log" 2>&1 </dev/null &
EDGE_PID=$!
PIDS+=("$EDGE_PID")
edge_up() {
  alive "$EDGE_PID" || die "unleash-edge exited: $(tail -5 "$WORK/edge.log")"
  curl -sf "$EDGE/internal-backstage/health" >/dev/null
}
poll 60 edge_up || die "unleash-edge did not answer within 60 s (port $EDGE_PORT; $(tail -3 "$WORK/edge.log"))"
say "unleash-edge $EDGE_VERSION pid $EDGE_PID on $EDGE (offline, $WORK/features.json)"

edge_variant() { # USER REGION: prints the variant name when the feature is on, else "off"
  curl -sS -f -H "Authorization: $EDGE_TOKEN" \
    "$EDGE/api/frontend?userId=$1&properties%5Bregion%5D=$2" |
    jq -r --arg f "$FEATURE" '[.toggles[] | select(.name == $f and .enabled) | .variant.name] | first // "off"'
}
in_edge=0
for i in $(seq 1 60); do
  case "$(edge_variant "s$i" beijing)" in
    v2) in_edge=$((in_edge + 1)) ;;
    off) ;;
    *) die "unleash-edge: beijing user s$i: the feature is on without variant v2" ;;
  esac
done
[ "$in_edge" -gt 0 ] && [ "$in_edge" -lt 60 ] || die "unleash-edge: $in_edge of 60 beijing users in; expected some, not all (is the rule evaluated?)"
for i in $(seq 1 30); do
  [ "$(edge_variant "s$i" guangzhou)" = off ] || die "unleash-edge: guangzhou user s$i is in; the constraint is not evaluated"
done
say "sanity unleash-edge: 60 beijing users → $in_edge in (variant v2); 30 guangzhou users → none"

# ---------------------------------------------------------------- wrk scripts
# Each thread numbers its requests from its own base: (seed + thread) × 10^8,
# so user ids never repeat across threads, nor between warm-up and run.
lua_common='
local next_thread = 0
function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end
function init(args)
  counter = (tonumber(os.getenv("BENCH_SEED") or "0") + (tid or 0)) * 100000000
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max, e.status,
    e.connect + e.read + e.write + e.timeout))
end
'
lua_str() { jq -Rn --arg s "$1" '$s'; } # a quoted string Lua accepts (JSON escapes)
cat >"$WORK/resolve.lua" <<EOF
$lua_common
local headers = {["Authorization"] = $(lua_str "Bearer $SUB")}
local prefix = $(lua_str "/api/v1$CONFIG/resolve?labels=region%3Dbeijing&user_id=u")
function request()
  counter = counter + 1
  return wrk.format("GET", prefix .. string.format("%d", counter), headers)
end
EOF
cat >"$WORK/healthz.lua" <<EOF
$lua_common
EOF
cat >"$WORK/ofrep.lua" <<EOF
$lua_common
local path = $(lua_str "/ofrep/v1/evaluate/flags/$KEY")
local headers = {["Authorization"] = $(lua_str "Bearer $SUB"),
  ["X-Graycast-Namespace"] = "$NS", ["X-Graycast-Env"] = "$ENV",
  ["Content-Type"] = "application/json"}
function request()
  counter = counter + 1
  local body = '{"context":{"targetingKey":"bench-client-' .. (tid or 0) ..
    '","user_id":"u' .. string.format("%d", counter) .. '","region":"beijing"}}'
  return wrk.format("POST", path, headers, body)
end
EOF
cat >"$WORK/edge.lua" <<EOF
$lua_common
local headers = {["Authorization"] = $(lua_str "$EDGE_TOKEN")}
function request()
  counter = counter + 1
  return wrk.format("GET", "/api/frontend?properties%5Bregion%5D=beijing&userId=u" ..
    string.format("%d", counter), headers)
end
EOF

# ---------------------------------------------------------------- OFREP probe
# ofrep USER REGION: the answer's status; the body is left in $WORK/ofrep.answer.
ofrep() {
  curl -sS -o "$WORK/ofrep.answer" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $SUB" -H "X-Graycast-Namespace: $NS" -H "X-Graycast-Env: $ENV" \
    -H 'Content-Type: application/json' \
    --data-binary "{\"context\":{\"targetingKey\":\"bench-client\",\"user_id\":\"$1\",\"region\":\"$2\"}}" \
    "$GC/ofrep/v1/evaluate/flags/$KEY"
}
OFREP_CODE="$(ofrep "$IN_USER" beijing)"
if [ "$OFREP_CODE" = 200 ]; then
  # The specification, section 9: variant "v<version>".
  for check in "$IN_USER beijing v2" "$OUT_USER beijing v1" "$IN_USER guangzhou v1"; do
    read -r user region want <<<"$check"
    code="$(ofrep "$user" "$region")"
    got="$(jq -r .variant "$WORK/ofrep.answer" 2>/dev/null || true)"
    [ "$code" = 200 ] && [ "$got" = "$want" ] ||
      die "OFREP: $region user $user answered $code variant '$got', expected 200 $want: $(head -c 300 "$WORK/ofrep.answer")"
  done
  say "sanity OFREP: beijing $IN_USER → v2, beijing $OUT_USER → v1, guangzhou $IN_USER → v1"
else
  say "OFREP POST /ofrep/v1/evaluate/flags/$KEY answers $OFREP_CODE: not benchmarked"
fi

# ---------------------------------------------------------------- load
ROWS=()
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
# bench NAME PID URL LUA: warm-up, then the measured run; appends a row.
bench() {
  local name="$1" pid="$2" url="$3" lua="$4" c0 c1 w0 w1 m0 m1 rss
  say "$name: warm-up ${WARMUP} s, then ${DURATION} s (wrk -t$THREADS -c$CONNECTIONS)"
  if [ "$WARMUP" -gt 0 ]; then
    BENCH_SEED=50 "$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" --timeout 10s -s "$lua" "$url" >/dev/null
  fi
  c0="$(cpu_ticks "$pid")" w0="$(children_ticks)" m0="$(machine_ticks)"
  # Run by this shell itself (not in $(…)), so its CPU time lands in children_ticks.
  local perf_pid=""
  if [ -n "${PROFILE:-}" ] && [ "$pid" = "$GC_PID" ]; then
    perf record -q -F 499 -g -p "$pid" -o "$WORK/${name//[^a-z]/_}.perf" -- sleep "$DURATION" 2>/dev/null &
    perf_pid=$!
  fi
  BENCH_SEED=0 "$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s "$lua" "$url" >"$WORK/wrk.out"
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    say "profile of $name (perf, self time by symbol, top 25):"
    perf report -q -i "$WORK/${name//[^a-z]/_}.perf" --no-children --sort symbol --stdio 2>/dev/null \
      | grep -E "^ +[0-9.]+%" | head -25 | sed -e "s/^/    /" -e "s/ *-  *- *$//" || true
  fi
  c1="$(cpu_ticks "$pid")" w1="$(children_ticks)" m1="$(machine_ticks)"
  rss="$(rss_kib "$pid")"
  grep -v '^RESULT' "$WORK/wrk.out" | sed 's/^/    /'
  read -r _ reqs dur p50 p99 max status sock <<<"$(grep '^RESULT' "$WORK/wrk.out")"
  ROWS+=("$(awk -v n="$name" -v r="$reqs" -v d="$dur" -v a="$p50" -v b="$p99" -v m="$max" \
    -v s="$status" -v e="$sock" -v c=$((c1 - c0)) -v w=$((w1 - w0)) -v o=$((m1 - m0 - (c1 - c0) - (w1 - w0))) \
    -v t="$CLK_TCK" -v rss="$rss" 'BEGIN {
      secs = d / 1e6
      printf "%-34s %11.0f %9.2f %9.2f %9.2f %8d %6d %6.2f %6.2f %6.2f %8.1f\n", n, r / secs,
        a / 1000, b / 1000, m / 1000, s, e, c / t / secs, w / t / secs, (o < 0 ? 0 : o) / t / secs, rss / 1024 }')")
}
RESOLVE_URL="$GC/api/v1$CONFIG/resolve"
bench "graycast resolve (user_id per req)" "$GC_PID" "$RESOLVE_URL" "$WORK/resolve.lua"
bench "graycast /healthz" "$GC_PID" "$GC/healthz" "$WORK/healthz.lua"
if [ "$OFREP_CODE" = 200 ]; then
  bench "graycast OFREP evaluate" "$GC_PID" "$GC/ofrep/v1/evaluate/flags/$KEY" "$WORK/ofrep.lua"
fi
bench "unleash-edge /api/frontend" "$EDGE_PID" "$EDGE/api/frontend" "$WORK/edge.lua"

echo
say "results: wrk -t$THREADS -c$CONNECTIONS, ${DURATION} s each after ${WARMUP} s warm-up; $(nproc) CPUs shared by server and wrk; load average before: $LOAD0"
printf '%-34s %11s %9s %9s %9s %8s %6s %6s %6s %6s %8s\n' "target" "requests/s" "p50 ms" "p99 ms" "max ms" \
  "non-2xx" "sockE" "server" "wrk" "others" "RSS MiB"
printf '%s\n' "${ROWS[@]}"
if [ "$OFREP_CODE" != 200 ]; then
  printf '%-34s %s\n' "graycast OFREP evaluate" "not available ($OFREP_CODE)"
fi
echo "(server, wrk, others: CPUs each used on average over the run, user + system; others is the rest"
echo " of the machine's busy time; RSS: the server's after the run)"
failed="$(printf '%s\n' "${ROWS[@]}" | awk '$(NF-5) + $(NF-4) > 0' | wc -l)"
[ "$failed" = 0 ] || die "$failed row(s) had non-2xx answers or socket errors"
