#!/bin/sh
# ctest install.<case>: use the copy install.build put into
# BUILD_DIR/pkg/prefix, and only that copy (programs are compiled in a
# temporary directory from copies of their sources, so no header of the
# source tree is in reach):
#
#   prefix       the files are where Lua, the linker and pkg-config look
#                for them (LICENSE included); examples/host.c is built
#                with `pkg-config --cflags --libs quay-lua sqlite3` and
#                run (under valgrind in unsanitized builds); stock lua5.4
#                loads the installed module with LUA_CPATH/LUA_PATH
#                pointing into the prefix and nowhere else; the installed
#                quay command runs a script
#   symbols      nm -D: libquay exports quay_* and luaopen_quay_core only,
#                no test hook (quay_test_*) and no internal (quay__*,
#                lquay_*); quay/core.so exports luaopen_quay_core only, in
#                the installed copy and in the test build
#   pkgconfig    `pkg-config --cflags quay` is Quay's include directory
#                alone (no Lua, no libpq); quay-lua adds Lua's
#   find_package a CMake project (test/packaging/consumer) finds the
#                installed package with find_package(quay) and links
#                quay::quay; its program checks the versions and runs
#   capi         examples/capi.c (the C API without Lua) built with
#                `pkg-config quay` and run, under valgrind when unsanitized
#   host_txn     examples/host_txn.c (a host sharing its connection and
#                its transactions) built with quay-lua and sqlite3, run
#                likewise
#
#   test/packaging/test-installed.sh CASE BUILD_DIR SOURCE_DIR VERSION CC [SANITIZERS]
set -eu
case=$1
build=$2
src=$3
version=$4
cc=$5
san=${6:-none}
[ "$san" = none ] && san=""
prefix=$build/pkg/prefix
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install.$case: FAIL: $*" >&2; exit 1; }
[ -d "$prefix" ] || fail "no installed copy at $prefix (run install.build)"

# Sanitized builds: the installed library needs the sanitizer runtime, so
# programs are linked with the same flags and lua5.4 gets it preloaded.
# Unsanitized: programs run under valgrind (errors and definite leaks fail).
sanflags=""
preload=""
runner=""
if [ -n "$san" ]; then
  sanflags="-fsanitize=$(echo "$san" | tr ';' ',')"
  case $san in *address*) preload=$(gcc -print-file-name=libasan.so) ;; esac
  case $san in
    *undefined*) preload="${preload:+$preload:}$(gcc -print-file-name=libubsan.so)" ;;
  esac
elif command -v valgrind >/dev/null; then
  runner="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect"
fi

echo "== programs run ${runner:-directly (sanitized build)}"

pc=$(find "$prefix" -name quay.pc -path '*/pkgconfig/*' | head -1)
[ -n "$pc" ] || fail "no quay.pc installed"
export PKG_CONFIG_PATH="$(dirname "$pc")"
libdir=$(pkg-config --variable=libdir quay)

# Compile $1 (a copy in $tmp) with the flags in $2 into $tmp/prog.
build_prog() {
  cp "$1" "$tmp/prog.c"
  echo "== $cc prog.c ($(basename "$1")) $2"
  (cd "$tmp" && $cc -std=c11 -Wall -Wextra -Werror $sanflags -o prog prog.c \
     $2 -Wl,-rpath,"$libdir") || fail "cannot build $(basename "$1") against the prefix"
  if command -v ldd >/dev/null; then
    ldd "$tmp/prog" | grep -q "libquay.so.* => $libdir/" ||
      { ldd "$tmp/prog"; fail "$(basename "$1") does not load libquay from the prefix"; }
  fi
}

case $case in
prefix)
  pkg-config --exists --print-errors quay quay-lua ||
    fail "pkg-config cannot use quay.pc / quay-lua.pc"
  [ "$(pkg-config --modversion quay)" = "$version" ] ||
    fail "quay.pc version $(pkg-config --modversion quay), want $version"
  incdir=$(pkg-config --variable=includedir quay)
  luacdir=$(pkg-config --variable=luacdir quay)
  luadir=$(pkg-config --variable=luadir quay)
  for f in "$libdir/libquay.so" "$incdir/quay.h" "$luacdir/quay/core.so" \
           "$luadir/quay/init.lua" "$prefix/bin/quay" \
           "$prefix/share/doc/quay/LICENSE"; do
    [ -e "$f" ] || fail "missing $f"
    case $f in "$prefix"/*) ;; *) fail "$f is outside the prefix" ;; esac
  done
  cmp -s "$prefix/share/doc/quay/LICENSE" "$src/LICENSE" ||
    fail "the installed LICENSE differs from the source's"
  echo "installed: $(cd "$prefix" && find . -type f | sort | tr '\n' ' ')"

  build_prog "$src/examples/host.c" "$(pkg-config --cflags --libs quay-lua sqlite3)"
  $runner "$tmp/prog" "$src/examples/models.lua" || fail "installed host failed"

  # Stock lua5.4 with only the prefix on its paths (no ';;' defaults).
  LUA_CPATH="$luacdir/?.so" LUA_PATH="$luadir/?.lua;$luadir/?/init.lua" \
    ${preload:+env LD_PRELOAD=$preload} lua5.4 - "$prefix" "$version" <<'LUA' ||
local prefix, version = ...
local quay = require("quay")
local core = package.searchpath("quay.core", package.cpath)
local init = package.searchpath("quay", package.path)
assert(core and core:sub(1, #prefix) == prefix, "quay.core from " .. tostring(core))
assert(init and init:sub(1, #prefix) == prefix, "quay from " .. tostring(init))
assert(quay.version == version, "version " .. tostring(quay.version))
assert(require("quay.core")._test == nil, "test hooks in an installed module")
local db <close> = quay.open("sqlite::memory:")
local Note = db:model("Note", { text = quay.text() })
db:create_tables()
Note:create { text = "installed" }
assert(Note:first().text == "installed")
print("lua5.4 loads " .. core .. " and " .. init)
LUA
    fail "stock lua5.4 cannot use the installed module"

  out=$("$prefix/bin/quay" --version) || fail "installed quay --version"
  case $out in "quay $version "*) ;; *) fail "quay --version printed: $out" ;; esac
  "$prefix/bin/quay" "$src/examples/blog.lua" >"$tmp/blog.out" ||
    fail "installed quay cannot run examples/blog.lua"
  grep -q "posts tagged lua:" "$tmp/blog.out" || fail "unexpected blog.lua output"
  ;;
symbols)
  luacdir=$(pkg-config --variable=luacdir quay)
  lib=$(readlink -f "$libdir/libquay.so")
  nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ { print $3 }' |
    sed 's/@.*//' | sort -u >"$tmp/lib.syms"
  nquay=$(grep -c '^quay_' "$tmp/lib.syms" || true)
  echo "libquay exports $(wc -l <"$tmp/lib.syms") symbols, $nquay quay_*"
  bad=$(grep -v -e '^quay_' -e '^luaopen_quay_core$' "$tmp/lib.syms" |
        grep -v -e '^_init$' -e '^_fini$' -e '^_edata$' -e '^_end$' \
                -e '^__bss_start$' || true)
  [ -z "$bad" ] || fail "libquay exports more than the API: $bad"
  hooks=$(grep -e '^quay_test_' -e '^quay__' "$tmp/lib.syms" || true)
  [ -z "$hooks" ] || fail "libquay exports test hooks or internals: $hooks"
  grep -q '^quay_db_open$' "$tmp/lib.syms" || fail "libquay lacks quay_db_open"
  grep -q '^quay_qs_fetch$' "$tmp/lib.syms" || fail "libquay lacks quay_qs_fetch"
  [ "$nquay" -gt 100 ] || fail "libquay exports only $nquay quay_* symbols"
  for mod in "$luacdir/quay/core.so" "$build/quay/core.so"; do
    syms=$(nm -D --defined-only "$mod" | awk '$2 ~ /^[TDBRVWiu]$/ { print $3 }' |
           sed 's/@.*//' | grep -v -e '^_init$' -e '^_fini$' -e '^_edata$' \
             -e '^_end$' -e '^__bss_start$' | sort -u | tr '\n' ' ')
    echo "$mod exports: $syms"
    [ "$syms" = "luaopen_quay_core " ] ||
      fail "$mod exports more than luaopen_quay_core: $syms"
  done
  ;;
pkgconfig)
  c=$(pkg-config --cflags quay | sed "s/ *$//")
  incdir=$(pkg-config --variable=includedir quay)
  echo "pkg-config --cflags quay: $c"
  [ "$c" = "-I$incdir" ] || fail "--cflags quay is '$c', want '-I$incdir' alone"
  luainc=$(pkg-config --cflags lua5.4 2>/dev/null || true)
  cl=$(pkg-config --cflags quay-lua)
  echo "pkg-config --cflags quay-lua: $cl"
  case " $cl " in *" -I$incdir "*) ;; *) fail "quay-lua lacks -I$incdir" ;; esac
  if [ -n "$luainc" ]; then
    case " $cl " in *" $luainc "*) ;; *) fail "quay-lua lacks Lua's $luainc" ;; esac
  fi
  pkg-config --libs quay | grep -q -- '-lquay' || fail "--libs quay lacks -lquay"
  ;;
find_package)
  cp -r "$src/test/packaging/consumer" "$tmp/consumer"
  cflags=""
  [ -n "$sanflags" ] && cflags="-DCMAKE_C_FLAGS=$sanflags"
  echo "== cmake consumer -DCMAKE_PREFIX_PATH=$prefix"
  CC=$cc cmake -S "$tmp/consumer" -B "$tmp/cbuild" -DCMAKE_PREFIX_PATH="$prefix" \
    -DQUAY_EXPECT_VERSION="$version" $cflags >"$tmp/c.log" 2>&1 ||
    { cat "$tmp/c.log"; fail "find_package(quay) failed"; }
  cmake --build "$tmp/cbuild" >"$tmp/b.log" 2>&1 ||
    { cat "$tmp/b.log"; fail "the consumer does not build"; }
  $runner "$tmp/cbuild/consumer" "$version" || fail "the consumer failed"
  ;;
capi)
  build_prog "$src/examples/capi.c" "$(pkg-config --cflags --libs quay)"
  $runner "$tmp/prog" || fail "examples/capi.c failed against the installed copy"
  ;;
host_txn)
  build_prog "$src/examples/host_txn.c" "$(pkg-config --cflags --libs quay-lua sqlite3)"
  $runner "$tmp/prog" "$tmp" || fail "examples/host_txn.c failed against the installed copy"
  ;;
*) fail "unknown case" ;;
esac
echo "install.$case: ok"
