#!/bin/sh
# Install the Debian packages Quay needs, only those missing.
#   scripts/deps.sh            build + run deps (Lua, SQLite, libpq, jansson,
#                              cmake)
#   scripts/deps.sh --test     also busted, PostgreSQL, valgrind, clang (fuzzing)
#                              and luarocks (the rockspec test)
set -eu
pkgs="lua5.4 liblua5.4-dev libsqlite3-dev libpq-dev libjansson-dev cmake gcc make pkg-config"
if [ "${1:-}" = "--test" ]; then
  pkgs="$pkgs lua-busted postgresql valgrind clang libclang-rt-dev luarocks"
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
