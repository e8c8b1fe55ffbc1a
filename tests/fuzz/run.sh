#!/usr/bin/env bash
# tests/fuzz/run.sh long|short SECONDS - run every libFuzzer harness.
#
# For each build/fuzz/bin/fuzz_<name>:
#  1. regression: every file of tests/fuzz/corpus/<name>/ and
#     tests/fuzz/regressions/<name>/ runs once (libFuzzer with file args);
#  2. fuzzing for SECONDS, starting from those files.  New inputs go to a
#     scratch directory (the checked-in corpus never grows); a crash, leak
#     or timeout is saved under build/fuzz/artifacts/ and fails the harness.
# Both modes print the executions (libFuzzer's stat::number_of_executed_units)
# and exec/s of each harness; both
# modes end with "fuzz: N passed, N failed" (one per harness and step).
# FUZZ_ONLY=name limits the run to one harness.  short uses a fixed seed
# (FUZZ_SEED, default 1) so make test mutates the same way every time; long
# draws a new seed per run.
set -uo pipefail
cd "$(dirname "$0")/../.."

mode=${1:-short}
secs=${2:-3}
case "$mode" in long|short) ;; *) echo "usage: $0 long|short SECONDS" >&2; exit 2 ;; esac

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0 failed=0 total_execs=0
scratch=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$scratch" "$log"' EXIT
mkdir -p build/fuzz/artifacts
seed=${FUZZ_SEED:-$([ "$mode" = short ] && echo 1 || echo 0)}

step() { # $1 = ok?, $2 = label
  if [ "$1" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL $2"; tail -n 40 "$log"; fi
}

for bin in build/fuzz/bin/fuzz_*; do
  [ -x "$bin" ] || continue
  name=${bin##*/fuzz_}
  [ -n "${FUZZ_ONLY:-}" ] && [ "$FUZZ_ONLY" != "$name" ] && continue
  seeds=()
  for d in tests/fuzz/corpus/$name tests/fuzz/regressions/$name; do [ -d "$d" ] && seeds+=("$d"); done
  dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=("-dict=tests/fuzz/$name.dict")
  files=()
  for d in "${seeds[@]}"; do files+=("$d"/*); done
  art="build/fuzz/artifacts/$name-"

  rc=0
  if [ ${#files[@]} -gt 0 ]; then
    timeout 300 "$bin" -artifact_prefix="$art" "${files[@]}" >"$log" 2>&1 || rc=1
  fi
  [ "$mode" = short ] && echo "== fuzz $name: ${#files[@]} regression inputs $([ $rc -eq 0 ] && echo ok)"
  step $rc "fuzz_$name regression inputs"

  mkdir -p "$scratch/$name"
  rc=0
  timeout $((secs + 120)) "$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 -seed="$seed" \
    -artifact_prefix="$art" "${dict[@]}" "$scratch/$name" "${seeds[@]}" >"$log" 2>&1 || rc=1
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n 1 || echo 0)
  rate=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n 1 || echo 0)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | grep -Eo '[0-9]+' || echo 0)
  total_execs=$((total_execs + execs))
  printf '== fuzz %-14s %10s execs, %s/s, %ss, cov %s%s\n' "$name" "$execs" "$rate" "$secs" \
    "$cov" "$([ $rc -eq 0 ] || echo ', FAILED (stopped early)')"
  step $rc "fuzz_$name (${secs}s)"
done

echo "fuzz: $total_execs executions in total"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
