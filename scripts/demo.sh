#!/bin/sh
# README command 1: install what is missing, build, run the demo model
# script on the embedded SQLite default.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh"
"$root/scripts/build.sh"
exec "$root/build/bin/quay" "$root/scripts/demo.lua" "$@"
