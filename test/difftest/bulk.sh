#!/bin/sh
# The bulk insert tester as a ctest (test/difftest/CMakeLists.txt):
#   test/difftest/bulk.sh sqlite SEED CASES
# runs CASES cases for each of five seeds from SEED (seeded.sh); SQLite
# only (the fast path it checks is SQLite's).
exec "$(dirname "$0")/seeded.sh" bulk 5 --cases "$@"
