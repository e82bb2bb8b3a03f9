#!/bin/sh
# Run one busted spec file on one backend (sqlite | pg | pgbouncer).
# Used by ctest; QUAY_BUILD_DIR points at the build with quay/core.so.
set -eu
backend=$1
spec=$2
root=$(cd "$(dirname "$0")/.." && pwd)
build=${QUAY_BUILD_DIR:-$root/build}
case $backend in
  sqlite) QUAY_URL=${QUAY_SQLITE_URL:-sqlite::memory:} ;;
  pg)
    if [ -z "${QUAY_PG_URL:-}" ]; then
      echo "skipped: QUAY_PG_URL is not set (no PostgreSQL server)"
      exit 77
    fi
    QUAY_URL=$QUAY_PG_URL ;;
  pgbouncer)
    # The pass through PgBouncer in transaction pooling mode: every
    # PostgreSQL handle the specs open gets { prepare = false }
    # (spec/helper.lua).
    if [ -z "${QUAY_PGBOUNCER_URL:-}" ]; then
      echo "skipped: QUAY_PGBOUNCER_URL is not set (no PgBouncer)"
      exit 77
    fi
    QUAY_URL=$QUAY_PGBOUNCER_URL
    export QUAY_PG_PREPARE=0 ;;
  *) echo "unknown backend $backend" >&2; exit 2 ;;
esac
export QUAY_URL
export QUAY_BUILD_DIR="$build"      # specs that run the quay command find it here
export LUA_CPATH="$build/?.so;;"
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/?.lua;;"
exec ${QUAY_LUA_RUNNER:-} lua5.4 "$(command -v busted)" --output=utfTerminal "$spec"
