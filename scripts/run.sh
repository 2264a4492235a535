#!/usr/bin/env bash
# Starts the built server with its database under ./data. On the very first
# start it picks an admin password, keeps it in data/admin-password (mode 600)
# and prints it on every start, so the quick start always shows how to sign in.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data
listen="${GRAYCAST_LISTEN:-127.0.0.1:8080}"
if [ -z "${GRAYCAST_ADMIN_PASSWORD:-}" ]; then
  if [ ! -f data/admin-password ] && [ ! -f data/graycast.db ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > data/admin-password)
  fi
  if [ -f data/admin-password ]; then
    GRAYCAST_ADMIN_PASSWORD="$(cat data/admin-password)"
    export GRAYCAST_ADMIN_PASSWORD
  fi
fi
echo
echo "  graycast: http://${listen}"
if [ -n "${GRAYCAST_ADMIN_PASSWORD:-}" ]; then
  echo "  sign in as: admin / ${GRAYCAST_ADMIN_PASSWORD}   (kept in data/admin-password)"
else
  echo "  sign in as: admin, with the password printed when this database was created"
fi
echo
exec target/release/graycast serve --listen "$listen" --site-root target/site
