#!/bin/sh
# Configure and build into build/ (or $1 with extra cmake args after it).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
[ $# -gt 0 ] && shift
cmake -S "$root" -B "$dir" -DQUAY_BUILD_TESTS=ON "$@" >/dev/null
cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)"
