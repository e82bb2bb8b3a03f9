#!/bin/sh
# Install the Debian packages Quay needs, only those missing.
#   scripts/deps.sh            build + run deps (Lua, SQLite, libpq, jansson,
#                              cmake)
#   scripts/deps.sh --test     also busted, PostgreSQL, PgBouncer (the pooled
#                              pass), valgrind, clang (fuzzing), luarocks
#                              (the rockspec test) and python3-django (the
#                              inspector spec)
set -eu
pkgs="lua5.4 liblua5.4-dev libsqlite3-dev libpq-dev libjansson-dev cmake gcc make pkg-config"
if [ "${1:-}" = "--test" ]; then
  pkgs="$pkgs lua-busted postgresql pgbouncer valgrind clang libclang-rt-dev luarocks"
  # The inspector spec builds Django's auth/contenttypes tables with Django's
  # own migrate (spec/inspect_spec.lua), on SQLite and PostgreSQL.
  pkgs="$pkgs python3-django python3-psycopg2"
fi
need=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    need="$need $p"
done
[ -z "$need" ] && exit 0
echo "installing:$need"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends $need ||
  { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends $need; }
