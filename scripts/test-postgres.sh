#!/usr/bin/env bash
# The PostgreSQL half of `make test`, run by `scripts/pg.sh run` on one throwaway cluster
# (GRAYCAST_TEST_POSTGRES): the schema checks, then the API suites with a fresh database per test.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${GRAYCAST_TEST_POSTGRES:?run me through scripts/pg.sh run}"
scripts/pg-verify.sh
cargo test --features ssr --test api "$@"
# kill -9 under concurrent writers, on PostgreSQL: no acknowledged write lost; then several nodes.
cargo test --features ssr --test crash
cargo test --features ssr --test nodes
