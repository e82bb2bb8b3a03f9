#!/bin/sh
# The schema-evolution tester as a ctest (test/difftest/CMakeLists.txt):
#   test/difftest/migrations.sh sqlite|pg SEED CASES
# pg exits 77 (skipped) when QUAY_PG_URL is not set, like run.sh.  SQLite
# runs on a temporary file (each version opens the database anew).  Under
# a runner (QUAY_LUA_RUNNER, the ASan build of scripts/test.sh) a fifth of
# the cases run.  QUAY_MIGRATIONS_CASES overrides CASES.
set -eu
backend=$1
seed=$2
cases=${QUAY_MIGRATIONS_CASES:-$3}
root=$(cd "$(dirname "$0")/../.." && pwd)
case $backend in
  sqlite) set -- ;;
  pg)
    if [ -z "${QUAY_PG_URL:-}" ]; then
      echo "skipped: QUAY_PG_URL is not set (no PostgreSQL server)"
      exit 77
    fi
    set -- --url "$QUAY_PG_URL" ;;
  *) echo "unknown backend $backend" >&2; exit 2 ;;
esac
if [ -n "${QUAY_LUA_RUNNER:-}" ] && [ -z "${QUAY_MIGRATIONS_CASES:-}" ]; then
  cases=$((cases / 5))
fi
cd "$root"
exec ${QUAY_LUA_RUNNER:-} lua5.4 test/difftest/migrations.lua --seed "$seed" \
  --cases "$cases" --repros 3 "$@"
