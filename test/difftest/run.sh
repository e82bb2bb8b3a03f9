#!/bin/sh
# The differential tester as a ctest (test/difftest/CMakeLists.txt):
#   test/difftest/run.sh sqlite|pg SEED CASES [MIX]
# pg exits 77 (skipped) when QUAY_PG_URL is not set, like spec/run_busted.sh.
# Under a runner (QUAY_LUA_RUNNER, the ASan build of scripts/test.sh) a
# fifth of the cases run, the same first fifth, to keep the time close.
# QUAY_DIFFTEST_CASES overrides CASES, QUAY_DIFFTEST_MIX overrides MIX (the
# share of cases past conditions, difftest.lua --mix; default 0.3).
set -eu
backend=$1
seed=$2
cases=${QUAY_DIFFTEST_CASES:-$3}
mix=${QUAY_DIFFTEST_MIX:-${4:-0.3}}
root=$(cd "$(dirname "$0")/../.." && pwd)
case $backend in
  sqlite) url=${QUAY_SQLITE_URL:-sqlite::memory:} ;;
  pg)
    if [ -z "${QUAY_PG_URL:-}" ]; then
      echo "skipped: QUAY_PG_URL is not set (no PostgreSQL server)"
      exit 77
    fi
    url=$QUAY_PG_URL ;;
  *) echo "unknown backend $backend" >&2; exit 2 ;;
esac
if [ -n "${QUAY_LUA_RUNNER:-}" ] && [ -z "${QUAY_DIFFTEST_CASES:-}" ]; then
  cases=$((cases / 5))
fi
cd "$root"
exec ${QUAY_LUA_RUNNER:-} lua5.4 test/difftest/difftest.lua --seed "$seed" \
  --cases "$cases" --mix "$mix" --url "$url" --repros 3 --stop-after 30
