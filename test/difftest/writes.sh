#!/bin/sh
# The write tester as a ctest (test/difftest/CMakeLists.txt):
#   test/difftest/writes.sh sqlite|pg SEED CASES
# sqlite runs CASES cases in memory, then a fifth of them on a file in a
# temporary directory; pg exits 77 (skipped) when QUAY_PG_URL is not set.
# Under a runner (QUAY_LUA_RUNNER, the ASan build of scripts/test.sh) a
# fifth of the cases run.  QUAY_WRITES_CASES overrides CASES.
set -eu
backend=$1
seed=$2
cases=${QUAY_WRITES_CASES:-$3}
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${QUAY_LUA_RUNNER:-}" ] && [ -z "${QUAY_WRITES_CASES:-}" ]; then
  cases=$((cases / 5))
fi
cd "$root"
run() {
  ${QUAY_LUA_RUNNER:-} lua5.4 test/difftest/writes.lua --seed "$1" --cases "$2" \
    --url "$3" --stop-after 3
}
case $backend in
  sqlite)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/quay-writes.XXXXXX")
    trap 'rm -rf "$dir"' EXIT
    status=0
    run "$seed" "$cases" "sqlite::memory:" || status=1
    run "$((seed + 1))" "$(( (cases + 4) / 5 ))" "sqlite:$dir/writes.db" || status=1
    exit $status ;;
  pg)
    if [ -z "${QUAY_PG_URL:-}" ]; then
      echo "skipped: QUAY_PG_URL is not set (no PostgreSQL server)"
      exit 77
    fi
    run "$seed" "$cases" "$QUAY_PG_URL" ;;
  *) echo "unknown backend $backend" >&2; exit 2 ;;
esac
