#!/bin/sh
# ctest install.prefix: install a build into a temporary prefix, then use
# the installed copy only:
#   1. the files are where Lua, the linker and pkg-config look for them;
#   2. examples/host.c is compiled with `pkg-config --cflags --libs quay
#      lua5.4 sqlite3` (PKG_CONFIG_PATH pointing into the prefix) and run;
#   3. stock lua5.4 loads the installed module with LUA_CPATH/LUA_PATH
#      pointing into the prefix and nowhere else;
#   4. the installed quay command runs a script.
#
#   test/packaging/test-install.sh BUILD_DIR SOURCE_DIR VERSION CC [SANITIZERS]
# SANITIZERS: "none", or e.g. "address,undefined" for a sanitized build.
set -eu
build=$1
src=$2
version=$3
cc=$4
san=${5:-}
[ "$san" = none ] && san=""
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "install test: FAIL: $*" >&2; exit 1; }

# Sanitized builds: the installed library needs the sanitizer runtime, so
# the host is linked with the same flags and lua5.4 gets it preloaded.
sanflags=""
preload=""
if [ -n "$san" ]; then
  sanflags="-fsanitize=$(echo "$san" | tr ';' ',')"
  case $san in *address*) preload=$(gcc -print-file-name=libasan.so) ;; esac
  case $san in
    *undefined*) preload="${preload:+$preload:}$(gcc -print-file-name=libubsan.so)" ;;
  esac
fi

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
  { cat "$tmp/install.log"; fail "cmake --install"; }

# 1. Files.  pkg-config tells where the library and the Lua files went.
pc=$(find "$prefix" -name quay.pc -path '*/pkgconfig/*' | head -1)
[ -n "$pc" ] || fail "no quay.pc installed"
export PKG_CONFIG_PATH="$(dirname "$pc")"
[ "$PKG_CONFIG_PATH" = "$prefix/lib/pkgconfig" ] ||
  echo "note: pkg-config directory is $PKG_CONFIG_PATH"
pkg-config --exists --print-errors quay || fail "pkg-config cannot use quay.pc"
[ "$(pkg-config --modversion quay)" = "$version" ] ||
  fail "quay.pc version $(pkg-config --modversion quay), want $version"
libdir=$(pkg-config --variable=libdir quay)
incdir=$(pkg-config --variable=includedir quay)
luacdir=$(pkg-config --variable=luacdir quay)
luadir=$(pkg-config --variable=luadir quay)
for f in "$libdir/libquay.so" "$incdir/quay.h" "$luacdir/quay/core.so" \
         "$luadir/quay/init.lua" "$prefix/bin/quay"; do
  [ -e "$f" ] || fail "missing $f"
  case $f in "$prefix"/*) ;; *) fail "$f is outside the prefix" ;; esac
done
echo "installed: $(cd "$prefix" && find . -type f | sort | tr '\n' ' ')"
pkg-config --print-requires-private quay | grep -q sqlite3 ||
  fail "quay.pc lacks Requires.private: sqlite3"

# 2. The example host, built against the installed copy only: compiled in
# the temporary directory from a copy of host.c, so no header of the source
# tree is in reach.
cp "$src/examples/host.c" "$tmp/host.c"
flags=$(pkg-config --cflags --libs quay lua5.4 sqlite3)
echo "== $cc host.c $flags"
(cd "$tmp" && $cc -std=c11 -Wall -Wextra -Werror $sanflags -o host host.c \
   $flags -Wl,-rpath,"$libdir") || fail "cannot build host.c against the prefix"
if command -v ldd >/dev/null; then
  ldd "$tmp/host" | grep -q "libquay.so.* => $libdir/" ||
    { ldd "$tmp/host"; fail "host does not load libquay from the prefix"; }
fi
"$tmp/host" "$src/examples/models.lua" || fail "installed host failed"

# 3. Stock lua5.4 with only the prefix on its paths (no ';;' defaults).
LUA_CPATH="$luacdir/?.so" LUA_PATH="$luadir/?.lua;$luadir/?/init.lua" \
  ${preload:+env LD_PRELOAD=$preload} lua5.4 - "$prefix" "$version" <<'LUA' ||
local prefix, version = ...
local quay = require("quay")
local core = package.searchpath("quay.core", package.cpath)
local init = package.searchpath("quay", package.path)
assert(core and core:sub(1, #prefix) == prefix, "quay.core from " .. tostring(core))
assert(init and init:sub(1, #prefix) == prefix, "quay from " .. tostring(init))
assert(quay.version == version, "version " .. tostring(quay.version))
local db <close> = quay.open("sqlite::memory:")
local Note = db:model("Note", { text = quay.text() })
db:create_tables()
Note:create { text = "installed" }
assert(Note:first().text == "installed")
print("lua5.4 loads " .. core .. " and " .. init)
LUA
  fail "stock lua5.4 cannot use the installed module"

# 4. The installed command (finds libquay through its RPATH).
out=$("$prefix/bin/quay" --version) || fail "installed quay --version"
case $out in "quay $version "*) ;; *) fail "quay --version printed: $out" ;; esac
"$prefix/bin/quay" "$src/examples/blog.lua" >"$tmp/blog.out" ||
  fail "installed quay cannot run examples/blog.lua"
grep -q "posts tagged lua:" "$tmp/blog.out" || fail "unexpected blog.lua output"
echo "install test: ok"
