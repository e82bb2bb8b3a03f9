#!/bin/sh
# The soft-delete aggregate tester as a ctest (test/difftest/CMakeLists.txt):
#   test/difftest/softagg.sh sqlite|pg SEED CASES
# runs CASES cases for each of five seeds from SEED (seeded.sh).
exec "$(dirname "$0")/seeded.sh" softagg 5 --cases "$@"
