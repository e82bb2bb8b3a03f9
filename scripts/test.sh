#!/bin/bash
# README command 2: install what is missing, build, and run every test:
# the C engine tests and the busted specs on SQLite, on a throwaway
# PostgreSQL server and through PgBouncer in front of it (with a streaming
# replica for the scale-out spec), then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer on; the
# PgBouncer pass only once).  Ends with one line "N passed, N failed".
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/deps.sh" --test || exit 1
# Test builds carry the fault-injection hooks (QUAY_TEST; off by default,
# so installable builds never have them).
"$root/scripts/build.sh" "$root/build" -DQUAY_TEST=ON || exit 1

pass=0
fail=0
count() {  # parse ctest's summary line
  local log=$1 t f
  t=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1)
  if [ -z "$t" ]; then fail=$((fail + 1)); return; fi
  f=$(echo "$t" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
  n=$(echo "$t" | sed -E 's/.* out of ([0-9]+).*/\1/')
  s=$(grep -cE "\*\*\*Skipped|Not Run" "$log" || true)
  pass=$((pass + n - f - s))
  fail=$((fail + f))
}

# A throwaway PostgreSQL cluster (scripts/pg-cluster.sh): a primary for
# the pg variants of the specs, a streaming replica of it (pg_basebackup
# -R) and PgBouncer in transaction pooling mode in front of it, for the
# pgbouncer variants (the whole suite once more, with { prepare = false })
# and the scale-out spec; all on free loopback ports, as a non-root user,
# stopped and removed at the end whatever happens.  Not getting it is a
# failure (the server variants would only be skipped), unless
# QUAY_SKIP_PG=1 asks for an SQLite-only run.
cluster=""
stop_cluster() {
  if [ -n "$cluster" ]; then
    "$root/scripts/pg-cluster.sh" stop "$cluster" || true
    cluster=""
  fi
}
if [ "${QUAY_SKIP_PG:-0}" != 1 ]; then
  trap stop_cluster EXIT
  trap 'exit 130' INT TERM
  if env=$("$root/scripts/pg-cluster.sh" start); then
    for kv in $env; do
      case $kv in
        QUAY_PG_URL=*|QUAY_PG_REPLICA_URL=*|QUAY_PGBOUNCER_URL=*|QUAY_PG_CLUSTER=*)
          export "${kv?}" ;;
      esac
    done
    cluster=$QUAY_PG_CLUSTER
  else
    echo "error: could not start the PostgreSQL cluster (primary, replica," \
         "PgBouncer); the server specs are skipped and counted as one failure" \
         "(QUAY_SKIP_PG=1 skips them on purpose)" >&2
    fail=$((fail + 1))
  fi
fi

log=$(mktemp)
(cd build && ctest --output-on-failure -j 2) 2>&1 | tee "$log"
count "$log"

# The same suite under ASan + UBSan, leaks included.
if [ "${QUAY_SKIP_ASAN:-0}" != 1 ]; then
  "$root/scripts/build.sh" "$root/build-asan" -DQUAY_SANITIZE="address;undefined" \
    -DCMAKE_BUILD_TYPE=Debug -DQUAY_TEST=ON || exit 1
  asan=$(gcc -print-file-name=libasan.so)
  ubsan=$(gcc -print-file-name=libubsan.so)
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=23"
  # use_tls=0: GCC 12's LeakSanitizer crashes ("Tracer caught signal 11")
  # scanning a dynamic TLS block glibc reports with a bogus address, which
  # depends on which libraries a process loads (libpq's Kerberos, jansson);
  # not scanning TLS only adds reports (scripts/lsan.supp), never hides one
  # of Quay's, which keeps no pointers in TLS.
  export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0:use_tls=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export QUAY_LUA_RUNNER="env LD_PRELOAD=$asan:$ubsan"
  # libpq probes GSSAPI encryption on every connect, and the dynamic TLS
  # that libkrb5 sets up then can crash GCC 12's LeakSanitizer at exit
  # ("Tracer caught signal 11", DTLS with a bogus address) depending on
  # the process's layout.  The test server has no Kerberos: skip the probe.
  export PGGSSENCMODE=disable
  # The PgBouncer pass runs once, in the plain build above.
  (cd build-asan && ctest --output-on-failure -j 2 -E '[.]pgbouncer$') 2>&1 |
    tee "$log"
  count "$log"
fi
# libFuzzer harnesses, a short run each (clang; see fuzz/ and the README).
if [ "${QUAY_SKIP_FUZZ:-0}" != 1 ] && command -v clang >/dev/null 2>&1; then
  CC=clang cmake -S "$root" -B "$root/build-fuzz" -DQUAY_FUZZ=ON \
    -DQUAY_BUILD_TESTS=OFF -DQUAY_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=Debug \
    -DQUAY_SANITIZE="address;undefined;fuzzer-no-link" \
    -DQUAY_FUZZ_SECONDS="${QUAY_FUZZ_SECONDS:-20}" >/dev/null &&
    cmake --build "$root/build-fuzz" -j 2 --target fuzz_cond fuzz_decl fuzz_url >/dev/null ||
    exit 1
  unset QUAY_LUA_RUNNER
  (cd build-fuzz && ctest --output-on-failure) 2>&1 | tee "$log"
  count "$log"
fi
rm -f "$log"
echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
