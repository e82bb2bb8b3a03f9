#!/bin/sh
# Configure and build a test build into build/ (or $1 with extra cmake
# args after it): the tests, and the test-only hooks (QUAY_TEST: fault
# injection), which an installable build (plain cmake, the rockspec)
# leaves out.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
[ $# -gt 0 ] && shift
cmake -S "$root" -B "$dir" -DQUAY_BUILD_TESTS=ON -DQUAY_TEST=ON "$@" >/dev/null
cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)"
