#!/bin/sh
# Insert and read throughput of a 100k-row table: Quay through the Lua API
# next to a raw sqlite3 C loop doing the same, in one run (issue 2).
#   scripts/throughput.sh [rows]
# The C loop's times are wall seconds; Quay's are CPU seconds (os.clock);
# both sides are single-threaded and never wait, so the two agree.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100000}
"$root/scripts/deps.sh"
"$root/scripts/build.sh" "$root/build" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/raw" "$root/scripts/throughput/raw.c" -lsqlite3
export LUA_CPATH="$root/build/?.so;;"
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"
for side in raw quay; do
  lua5.4 "$root/scripts/throughput/quay.lua" "$tmp/$side.db" "$n" schema
done
"$tmp/raw" "$tmp/raw.db" "$n"
lua5.4 "$root/scripts/throughput/quay.lua" "$tmp/quay.db" "$n"
