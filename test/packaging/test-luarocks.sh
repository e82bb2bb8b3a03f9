#!/bin/sh
# ctest package.luarocks: `luarocks make` the rockspec into a temporary
# tree from a copy of the source tree, then load the deployed module with
# stock lua5.4 and run the deployed quay command.  Exits 77 (skipped) when
# luarocks is not installed.
#   test/packaging/test-luarocks.sh SOURCE_DIR ROCKSPEC
set -eu
src=$1
rockspec=$2
command -v luarocks >/dev/null || { echo "skipped: luarocks is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# LuaRocks builds in ./build.luarocks: use a copy without build trees.
mkdir "$tmp/src"
(cd "$src" && tar --exclude='./build*' --exclude=./.git -cf - .) |
  (cd "$tmp/src" && tar -xf -)
(cd "$tmp/src" && luarocks --lua-version 5.4 make --tree "$tmp/tree" \
   "$(basename "$rockspec")") >"$tmp/luarocks.log" 2>&1 ||
  { tail -40 "$tmp/luarocks.log"; echo "luarocks make failed" >&2; exit 1; }
eval "$(luarocks --lua-version 5.4 --tree "$tmp/tree" path)"
lua5.4 - "$tmp/tree" <<'LUA'
local tree = ...
local quay = require("quay")
local core = package.searchpath("quay.core", package.cpath)
assert(core and core:sub(1, #tree) == tree, "quay.core from " .. tostring(core))
assert(require("quay.core")._test == nil, "test hooks in the rock's module")
local db <close> = quay.open("sqlite::memory:")
local T = db:model("T", { x = quay.integer() })
db:create_tables()
T:create { x = 42 }
assert(T:first().x == 42)
print("luarocks tree: quay " .. quay.version .. " from " .. core)
LUA
"$tmp/tree/bin/quay" --version
# The rock is an installable build: no test hook in its library, and its
# module exports its entry only.
core=$(find "$tmp/tree" -name core.so -path '*quay*' | head -1)
syms=$(nm -D --defined-only "$core" | awk '$2 == "T" { print $3 }' | tr '\n' ' ')
[ "$syms" = "luaopen_quay_core " ] || { echo "core.so exports: $syms" >&2; exit 1; }
lib=$(find "$tmp/tree" -name 'libquay.so*' -type f | head -1)
if nm -D --defined-only "$lib" | grep -q ' quay_test_'; then
  echo "the rock's libquay exports test hooks" >&2; exit 1
fi
echo "package.luarocks: ok"
