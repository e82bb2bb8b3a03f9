#!/bin/sh
# A stand-alone randomized tester as a ctest (test/difftest/CMakeLists.txt,
# through the tester's own wrapper, e.g. m2m.sh):
#   test/difftest/seeded.sh TESTER NSEEDS COUNTFLAG sqlite|pg SEED COUNT
# runs test/difftest/TESTER.lua for NSEEDS seeds from SEED with COUNTFLAG
# COUNT (cases or operations per seed); pg exits 77 (skipped) when
# QUAY_PG_URL is not set.  Under a runner (QUAY_LUA_RUNNER, the ASan build
# of scripts/test.sh) a fifth of COUNT runs.
set -eu
tester=$1
nseeds=$2
flag=$3
backend=$4
seed=$5
count=$6
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${QUAY_LUA_RUNNER:-}" ]; then
  count=$(( (count + 4) / 5 ))
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
exec ${QUAY_LUA_RUNNER:-} lua5.4 "test/difftest/$tester.lua" "$url" \
  --seeds "$seed-$((seed + nseeds - 1))" "$flag" "$count"
