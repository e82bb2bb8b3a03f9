#!/bin/sh
# The many-to-many write tester as a ctest (test/difftest/CMakeLists.txt):
#   test/difftest/m2m.sh sqlite|pg SEED OPS
# runs OPS operations for each of ten seeds from SEED; pg exits 77
# (skipped) when QUAY_PG_URL is not set.  Under a runner (QUAY_LUA_RUNNER,
# the ASan build of scripts/test.sh) a fifth of the operations run.
set -eu
backend=$1
seed=$2
ops=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${QUAY_LUA_RUNNER:-}" ]; then
  ops=$(( (ops + 4) / 5 ))
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
exec ${QUAY_LUA_RUNNER:-} lua5.4 test/difftest/m2m.lua "$url" \
  --seeds "$seed-$((seed + 9))" --ops "$ops"
