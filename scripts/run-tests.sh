#!/usr/bin/env bash
# run-tests.sh all|unit|asan|cross|fuzz|e2e - run test suites and print one closing
# line "N passed, N failed, N skipped" over all of them.
#
# unit: every tests/unit/test_* binary (build/rel/test/)
# asan: the same binaries built with AddressSanitizer + UBSan (build/san/test/)
# cross: the NEON kernel checks cross-built for arm64 (build/aarch64/test/,
#       make cross-bins), run under qemu-user
# fuzz: every libFuzzer harness (build/fuzz/bin/) on its checked-in corpus
#       and regression inputs, then FUZZ_TEST_SECONDS (default 3) of fuzzing
#       (tests/fuzz/run.sh; one pass or failure per harness and step)
# e2e:  pytest tests/e2e against real server processes (redis-py, redis-cli)
# unit, asan, e2e and all first start SeaweedFS (scripts/seaweedfs.sh start: S3 on
# 127.0.0.1:8333; the first run builds it, ~5 min) for the S3 tests, and stop
# it on exit, even on failure.  If it cannot start, that counts as a failure
# and the S3 tests fail too: they are never skipped.
set -uo pipefail
cd "$(dirname "$0")/.."

mode=${1:-all}
passed=0 failed=0 skipped=0
log=$(mktemp)
s3_state=
export VL_SEAWEEDFS_USER=$$ # shared with parallel runs: see scripts/seaweedfs.sh
trap 'rm -f "$log"; [ -n "$s3_state" ] && scripts/seaweedfs.sh stop' EXIT

s3_up() {
  [ -n "$s3_state" ] && return
  s3_state=up
  echo "== seaweedfs start"
  if ! scripts/seaweedfs.sh start; then
    echo "FAIL seaweedfs start: the S3 tests will fail"
    failed=$((failed + 1))
  fi
}

count() { # extract a number printed by cmocka: "[  PASSED  ] 5 test(s)."
  grep -Eo "\[  $1 *\] [0-9]+ test" "$log" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}'
}

run_c_suite() { # $1 = build/rel/test or build/san/test, $2 = label
  for bin in "$1"/test_*; do
    [ -x "$bin" ] || continue
    echo "== $2 $(basename "$bin")"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      timeout 300 "$bin" >"$log" 2>&1
    rc=$?
    p=$(count PASSED) f=$(count FAILED) s=$(count SKIPPED)
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # a crash counts as a failure
    [ "$f" -gt 0 ] && cat "$log" || tail -n 1 "$log"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  done
}

run_cross() {
  echo "== cross kernels_check (arm64 NEON under qemu-aarch64)"
  timeout 300 qemu-aarch64 -L /usr/aarch64-linux-gnu build/aarch64/test/kernels_check >"$log" 2>&1
  rc=$?
  p=$(count PASSED) f=$(count FAILED)
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # missing binary or crash
  [ "$f" -gt 0 ] && cat "$log" || tail -n 1 "$log"
  passed=$((passed + p)) failed=$((failed + f))
}

run_fuzz() {
  echo "== fuzz (libFuzzer, ASan + UBSan)"
  tests/fuzz/run.sh short "${FUZZ_TEST_SECONDS:-3}" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  p=$(grep -Eo '[0-9]+ passed' <<<"$line" | grep -Eo '[0-9]+' || echo 0)
  f=$(grep -Eo '[0-9]+ failed' <<<"$line" | grep -Eo '[0-9]+' || echo 0)
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)) failed=$((failed + f))
}

run_e2e() {
  echo "== e2e (pytest)"
  timeout 1800 .venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^=*.*[0-9]+ (passed|failed|error|skipped)' "$log" | tail -n 1)
  p=$(grep -Eo '[0-9]+ passed' <<<"$line" | grep -Eo '[0-9]+' || echo 0)
  f=$(grep -Eo '[0-9]+ (failed|errors?)' <<<"$line" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}')
  s=$(grep -Eo '[0-9]+ skipped' <<<"$line" | grep -Eo '[0-9]+' || echo 0)
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # collection error, timeout, no tests
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

case "$mode" in
  unit) s3_up; run_c_suite build/rel/test unit ;;
  asan) s3_up; run_c_suite build/san/test asan ;;
  cross) run_cross ;;
  fuzz) run_fuzz ;;
  e2e) s3_up; run_e2e ;;
  all) s3_up; run_c_suite build/rel/test unit; run_c_suite build/san/test asan; run_cross; run_fuzz; run_e2e ;;
  *) echo "usage: $0 all|unit|asan|cross|fuzz|e2e" >&2; exit 2 ;;
esac

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
