#!/bin/sh
# The migration text-conversion tester as a ctest (test/difftest/CMakeLists.txt):
#   test/difftest/conv.sh SEED CASES
# PostgreSQL is its truth: exits 77 (skipped) when QUAY_PG_URL is not set.
# Under a runner (QUAY_LUA_RUNNER, the ASan build of scripts/test.sh) a
# fifth of the cases run.
set -eu
seed=$1
cases=$2
if [ -z "${QUAY_PG_URL:-}" ]; then
  echo "skipped: QUAY_PG_URL is not set (no PostgreSQL server)"
  exit 77
fi
if [ -n "${QUAY_LUA_RUNNER:-}" ]; then
  cases=$(( (cases + 4) / 5 ))
fi
cd "$(dirname "$0")/../.."
exec ${QUAY_LUA_RUNNER:-} lua5.4 test/difftest/conv.lua "$QUAY_PG_URL" \
  --seed "$seed" --cases "$cases"
