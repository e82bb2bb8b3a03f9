#!/bin/sh
# The soft-delete aggregate tester as a ctest (test/difftest/CMakeLists.txt):
#   test/difftest/softagg.sh sqlite|pg SEED CASES
# runs CASES cases for each of five seeds from SEED; pg exits 77 (skipped)
# when QUAY_PG_URL is not set.  Under a runner (QUAY_LUA_RUNNER, the ASan
# build of scripts/test.sh) a fifth of the cases run.
set -eu
backend=$1
seed=$2
cases=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${QUAY_LUA_RUNNER:-}" ]; then
  cases=$(( (cases + 4) / 5 ))
fi
cd "$root"
case $backend in
  sqlite) url="sqlite::memory:" ;;
  pg)
    if [ -z "${QUAY_PG_URL:-}" ]; then
      echo "skipped: QUAY_PG_URL is not set (no PostgreSQL server)"
      exit 77
    fi
    url=$QUAY_PG_URL ;;
  *) echo "unknown backend $backend" >&2; exit 2 ;;
esac
exec ${QUAY_LUA_RUNNER:-} lua5.4 test/difftest/softagg.lua "$url" \
  --seeds "$seed-$((seed + 4))" --cases "$cases"
