#!/bin/sh
# ctest install.build (the fixture of every install.* test): build Quay
# the way an installable build is made, a plain configuration with the
# defaults (no tests, no test hooks: QUAY_TEST is off), and install it
# into BUILD_DIR/pkg/prefix, which the install.* tests use and nothing
# else.  The build tree BUILD_DIR/pkg/build is kept between runs, so a
# second run only rebuilds what changed.
#
#   test/packaging/install-build.sh BUILD_DIR SOURCE_DIR CC [SANITIZERS]
# SANITIZERS: "none", or e.g. "address,undefined" (the library is then
# built with them, as the test build is).
set -eu
build=$1
src=$2
cc=$3
san=${4:-none}
pkg=$build/pkg
set --
if [ "$san" != none ]; then
  set -- "-DQUAY_SANITIZE=$(echo "$san" | tr ',' ';')"
fi
mkdir -p "$pkg"
echo "== cmake -S $src -B $pkg/build (defaults) $*"
CC=$cc cmake -S "$src" -B "$pkg/build" -DQUAY_BUILD_TESTS=OFF \
  -DQUAY_BUILD_EXAMPLES=OFF "$@" >"$pkg/configure.log" 2>&1 ||
  { cat "$pkg/configure.log"; echo "install.build: configure failed" >&2; exit 1; }
grep -q '^QUAY_TEST:BOOL=OFF' "$pkg/build/CMakeCache.txt" ||
  { echo "install.build: QUAY_TEST is not off by default" >&2; exit 1; }
cmake --build "$pkg/build" -j 2 --target libquay quay_core quay_cmd \
  >"$pkg/build.log" 2>&1 ||
  { tail -50 "$pkg/build.log"; echo "install.build: build failed" >&2; exit 1; }
rm -rf "$pkg/prefix"
cmake --install "$pkg/build" --prefix "$pkg/prefix" >"$pkg/install.log" ||
  { cat "$pkg/install.log"; echo "install.build: install failed" >&2; exit 1; }
echo "install.build: installed into $pkg/prefix"
