#!/usr/bin/env bash
# make fuzz: runs every libFuzzer target of tests/fuzz for a bounded time, starting from its
# seed corpus. An input that crashes a target, reads out of bounds, leaks, or makes it
# allocate more than the limit fails the run; the input is saved under BUILD/crashes so that,
# once fixed, it can join tests/fuzz/regressions/<target>/ and be replayed by ctest forever.
#   run-fuzzers.sh BUILD_DIR SECONDS_PER_TARGET
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: run-fuzzers.sh BUILD_DIR SECONDS}
seconds=${2:-60}
mkdir -p "$build/crashes"
status=0
for target in safetensors tsv parallel model_files model_directory subword_model idx; do
  work="$build/corpus/$target"
  mkdir -p "$work"
  seeds=("$root/tests/fuzz/corpus/$target" "$root/tests/fuzz/regressions/$target")
  [ "$target" = safetensors ] && seeds+=("$root/tests/fixtures/data")
  fuzzer="$build/bin/fuzz_$target"
  [ -x "$fuzzer" ] || { echo "run-fuzzers: $fuzzer is missing; build with -DXGRAD_FUZZ=ON (make fuzz)" >&2; exit 1; }
  echo "== fuzz_$target for ${seconds}s"
  if ! "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/crashes/$target-" "$work" "${seeds[@]}" \
      > "$build/fuzz_$target.log" 2>&1; then
    tail -n 40 "$build/fuzz_$target.log"
    echo "fuzz_$target failed; the input is in $build/crashes/ (after the fix, add it to tests/fuzz/regressions/$target/)" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/fuzz_$target.log" | tr '\n' ' '
    echo
  fi
done
exit $status
