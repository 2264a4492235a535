#!/usr/bin/env bash
# Verifies migrations/postgres on a real PostgreSQL: applies every file to a fresh database, runs
# scripts/pg-schema-check.sql (the triggers, defaults and audit search) and compares the schema
# with the one migrations/sqlite builds (scripts/pg-schema-compare.py).
# Usage: scripts/pg-verify.sh   (on GRAYCAST_TEST_POSTGRES, or on a throwaway cluster of scripts/pg.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GRAYCAST_TEST_POSTGRES:-}" ]; then
  exec scripts/pg.sh run "$0"
fi
db="schema_check_$$"
base="${GRAYCAST_TEST_POSTGRES%/*}"
psql "$GRAYCAST_TEST_POSTGRES" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db"
trap 'psql "$GRAYCAST_TEST_POSTGRES" -X -q -c "DROP DATABASE IF EXISTS $db" || true' EXIT
for f in migrations/postgres/*.sql; do
  echo "applying $f"
  psql "$base/$db" -X -q -v ON_ERROR_STOP=1 -f "$f"
done
psql "$base/$db" -X -v ON_ERROR_STOP=1 -f scripts/pg-schema-check.sql
python3 scripts/pg-schema-compare.py "$base/$db"
