#!/bin/sh
# Run stock lua5.4 with the Quay module of a build on its paths:
#   test/packaging/run-lua.sh BUILD_DIR SANITIZERS script.lua [args]
# In a sanitized build (SANITIZERS e.g. "address,undefined"; "none" or
# empty otherwise) the sanitizer runtimes are
# preloaded into the interpreter, as scripts/test.sh does through
# QUAY_LUA_RUNNER (which wins when set).
set -eu
build=$1
san=$2
shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
export LUA_CPATH="$build/?.so;;"
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"
runner=${QUAY_LUA_RUNNER:-}
[ "$san" = none ] && san=""
if [ -z "$runner" ] && [ -n "$san" ]; then
  pre=""
  case $san in *address*) pre=$(gcc -print-file-name=libasan.so) ;; esac
  case $san in
    *undefined*) pre="${pre:+$pre:}$(gcc -print-file-name=libubsan.so)" ;;
  esac
  [ -n "$pre" ] && runner="env LD_PRELOAD=$pre"
fi
exec $runner lua5.4 "$@"
