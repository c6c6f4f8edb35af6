#!/usr/bin/env bash
# A rank that dies mid-run, or whose backward fails while the gradient allreduce overlaps it,
# ends the whole job within a bounded time, naming the rank or the error, and leaves rank 0's
# last checkpoint whole. Usage: check_killed_rank.sh MPIEXEC DRIVER
set -uo pipefail
mpiexec=$1 driver=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; cat "$dir/out.txt"; exit 1; }

# check MODE TEXT: `driver MODE` on 2 ranks ends non-zero within 60 s, printing TEXT.
check() {
  local mode=$1 text=$2
  rm -rf "${dir:?}"/* && mkdir -p "$dir/run"
  local start status seconds checked
  start=$(date +%s)
  timeout 120 "$mpiexec" --oversubscribe --allow-run-as-root -np 2 "$driver" "$mode" "$dir/run" > "$dir/out.txt" 2>&1
  status=$?
  seconds=$(( $(date +%s) - start ))
  [ "$status" -ne 124 ] || fail "$mode: the job still ran after 120 s: a rank waited for the failed one"
  [ "$status" -ne 0 ] || fail "$mode: the job exited 0 though rank 1 failed"
  [ "$seconds" -le 60 ] || fail "$mode: the job took $seconds s to end after the failure (bound: 60 s)"
  grep -q "$text" "$dir/out.txt" || fail "$mode: the output does not say \"$text\""
  checked=$("$driver" check "$dir/run") || fail "$mode: the last checkpoint does not load: $checked"
  # Rank 1 failed in its third epoch: the checkpoint holds the end of the second, step 20.
  [[ "$checked" == "checkpoint at step 20, epoch 3" ]] || fail "$mode: unexpected checkpoint: $checked"
  echo "$mode: the job ended after $seconds s (exit $status), saying \"$text\"; $checked"
}

check train "rank 1"
check fail "rank 1's backward failed on purpose"
