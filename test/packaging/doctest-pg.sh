#!/bin/sh
# ctest docs.<guide>.pg: run a guide's blocks on PostgreSQL.  Creates a
# fresh database on the server of $QUAY_PG_URL (scripts/test.sh starts a
# throwaway one), runs test/packaging/doctest.lua with QUAY_URL pointing at
# it, and drops it.  Exits 77 (skipped) without QUAY_PG_URL.
#   test/packaging/doctest-pg.sh BUILD_DIR SANITIZERS GUIDE.md
set -eu
build=$1
san=$2
guide=$3
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${QUAY_PG_URL:-}" ]; then
  echo "skipped: QUAY_PG_URL is not set (no PostgreSQL server)"
  exit 77
fi
name=quay_doc_$(basename "$guide" .md)_$$
admin() {   # run one SQL statement on the server's maintenance database
  "$here/run-lua.sh" "$build" "$san" - "$QUAY_PG_URL" "$1" <<'LUA'
local url, sql = ...
local db = require("quay").open(url)
db:execute(sql)
db:close()
LUA
}
admin "CREATE DATABASE $name"
set +e
QUAY_URL="${QUAY_PG_URL%/*}/$name" "$here/run-lua.sh" "$build" "$san" \
  "$here/doctest.lua" "$guide"
rc=$?
set -e
admin "DROP DATABASE $name" || true
exit $rc
