#!/usr/bin/env bash
# A rank that dies mid-run ends the whole job within a bounded time, naming the rank, and
# leaves rank 0's last checkpoint whole. Usage: check_killed_rank.sh MPIEXEC DRIVER
set -uo pipefail
mpiexec=$1 driver=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
start=$(date +%s)
timeout 120 "$mpiexec" --oversubscribe --allow-run-as-root -np 2 "$driver" train "$dir" > "$dir/out.txt" 2>&1
status=$?
seconds=$(( $(date +%s) - start ))
fail() { echo "FAIL: $*"; cat "$dir/out.txt"; exit 1; }
[ "$status" -ne 124 ] || fail "the job still ran after 120 s: a rank waited for the dead one"
[ "$status" -ne 0 ] || fail "the job exited 0 though rank 1 died"
[ "$seconds" -le 60 ] || fail "the job took $seconds s to end after the death (bound: 60 s)"
grep -q "rank 1" "$dir/out.txt" || fail "mpirun's report does not name rank 1"
checked=$("$driver" check "$dir") || fail "the last checkpoint does not load: $checked"
# Rank 1 died in its third epoch: the checkpoint holds the end of the second, step 20.
[[ "$checked" == "checkpoint at step 20, epoch 3" ]] || fail "unexpected checkpoint: $checked"
echo "the job ended after $seconds s (exit $status), naming rank 1; $checked"
