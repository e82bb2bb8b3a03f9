#!/bin/sh
# ctest example.threads.tsan: build Quay and examples/threads.c with
# -fsanitize=thread in their own build directory, then run two lua_States
# in two threads under ThreadSanitizer.  Any report fails the test
# (halt_on_error=1, and the exit code is checked).
#   test/packaging/test-tsan.sh SOURCE_DIR BUILD_DIR [ROUNDS]
set -eu
src=$1
dir=$2
rounds=${3:-5}
# The nested configure must not see the calling build's settings.
unset QUAY_LUA_RUNNER LD_PRELOAD ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS || true
cmake -S "$src" -B "$dir" -DQUAY_SANITIZE=thread -DQUAY_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$dir.configure.log" 2>&1 ||
  { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" --target quay_example_threads -j 2 >"$dir.build.log" 2>&1 ||
  { cat "$dir.build.log"; exit 1; }
exe=$(find "$dir/examples" -maxdepth 1 -name quay_example_threads -type f | head -1)
[ -x "$exe" ] || { echo "threads example not built" >&2; exit 1; }
# Confirm it is instrumented (otherwise the test would prove nothing).
nm -D "$exe" 2>/dev/null | grep -q __tsan_init ||
  nm "$exe" 2>/dev/null | grep -q __tsan_init ||
  { echo "$exe is not built with -fsanitize=thread" >&2; exit 1; }
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1"
set +e
"$exe" "$src/examples/models.lua" "$rounds"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "threads under ThreadSanitizer: exit status $rc" >&2
  exit 1
fi
echo "ThreadSanitizer: no reports"
