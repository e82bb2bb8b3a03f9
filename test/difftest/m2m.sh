#!/bin/sh
# The many-to-many write tester as a ctest (test/difftest/CMakeLists.txt):
#   test/difftest/m2m.sh sqlite|pg SEED OPS
# runs OPS operations for each of ten seeds from SEED (seeded.sh).
exec "$(dirname "$0")/seeded.sh" m2m 10 --ops "$@"
