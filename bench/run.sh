#!/usr/bin/env bash
# make bench: every workload with xgrad and with PyTorch, side by side in one run, at 1 and 2
# threads (PyTorch also with its intra-op and OpenBLAS thread counts apart), then the training
# workloads and batch-1 decoding beside a busy core, then training data-parallel on 2 ranks,
# then the report (ratios; roofline fractions: of OpenBLAS's sgemm, and of the machine's
# float32 FMA peak and read bandwidth, which fma-peak and read-bandwidth measure; scaling).
# Results go to build/bench/.
#   XGRAD_BENCH_WORKLOADS  the workloads to run (default: all)
#   XGRAD_BENCH_THREADS    the thread counts to try (default: "1 2")
#   XGRAD_BENCH_CONTENTION_WORKLOADS  the workloads to run beside a busy core (default: the
#                          training workloads and decode-greedy-1; "" for none)
#   XGRAD_BENCH_RANK_WORKLOADS  the workloads to run data-parallel on 2 ranks (default:
#                          seq2seq-train classifier-train; "" for none)
#   XGRAD_BENCH_BUILD      the build directory whose bin/xgrad-bench runs (default: build)
#   XGRAD_BENCH_ROUNDS     xgrad-then-PyTorch rounds per workload and thread count (default 1);
#                          the report takes each side's median, so that one run's drift on a
#                          shared machine does not decide a ratio
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=$("$root/scripts/find-data.sh")
build=${XGRAD_BENCH_BUILD:-$root/build}
out="$build/bench"
mkdir -p "$out/batches"
results="$out/results.jsonl"
: > "$results"
workloads=${XGRAD_BENCH_WORKLOADS:-"fma-peak read-bandwidth gemm graph-overhead seq2seq-train seq2seq-train-bf16 classifier-train classifier-train-bf16 decode-greedy-1 decode-greedy-1-int8 decode-greedy-1-bf16 read-bound decode-greedy-64 transformer-train transformer-train-bf16 transformer-decode-1 image-train"}
thread_counts=${XGRAD_BENCH_THREADS:-1 2}
for workload in $workloads; do
  for threads in $thread_counts; do
    # xgrad has one pool: OpenBLAS (its OpenMP build) and xgrad's own loops share it.
    # PyTorch has two (its intra-op threads, and the pthreads OpenBLAS that
    # torch.set_num_threads does not reach), so it runs with every OpenBLAS count as well.
    export OMP_NUM_THREADS=$threads
    # Every round exports again, so that every xgrad run does the same work and peak RSS.
    # The int8 and bf16 decoding workloads round decode-greedy-1's model: they export nothing
    # (run decode-greedy-1 first), and PyTorch quantises that export itself (int8 only: Debian's
    # PyTorch has no bf16 products for this model's CPU path). The *-train-bf16 workloads are
    # their float32 workload with bf16 products: xgrad's side only, set beside both float32 runs.
    export_flags=(--export "$out/batches")
    [[ $workload == *-int8 || $workload == *-bf16 ]] && export_flags=()
    for round in $(seq "${XGRAD_BENCH_ROUNDS:-1}"); do
      echo "== $workload, $threads thread(s), round $round" >&2
      OPENBLAS_NUM_THREADS=$threads "$build/bin/xgrad-bench" --workload "$workload" --threads "$threads" \
        --data "$data" "${export_flags[@]}" | tee -a "$results"
      if [[ $workload == fma-peak ]]; then
        # The AVX2 peak as well, the one OpenBLAS's Haswell kernels (OPENBLAS_CORETYPE=Haswell) can reach.
        XGRAD_MAX_ISA=avx2 "$build/bin/xgrad-bench" --workload "$workload" --threads "$threads" | tee -a "$results"
      fi
      # Bounds for xgrad's workloads and the machine's own, not models PyTorch runs.
      [[ $workload == read-bound || $workload == fma-peak || $workload == read-bandwidth || $workload == *-bf16 ]] && continue
      for blas_threads in $thread_counts; do
        # graph-overhead multiplies scalars: no BLAS in it, so only the one count matters.
        [[ $workload == graph-overhead && $blas_threads != "$threads" ]] && continue
        OPENBLAS_NUM_THREADS=$blas_threads /usr/bin/python3 "$root/bench/pytorch_bench.py" --workload "$workload" \
          --threads "$threads" --blas-threads "$blas_threads" --import "$out/batches" | tee -a "$results"
      done
    done
  done
done
# Beside a busy core: the training workloads and batch-1 decoding again while `yes` holds one
# core, xgrad at its programs' default thread count (one per core) and at one thread, PyTorch
# at every count, so that each side's best under the load is known. Lines carry
# "load": "busy-core"; the report compares them apart.
contention_workloads=${XGRAD_BENCH_CONTENTION_WORKLOADS-"seq2seq-train classifier-train decode-greedy-1"}
cores=$(nproc)
busy_tag='s/}$/, "load": "busy-core"}/'
for workload in $contention_workloads; do
  yes > /dev/null &
  busy_loop=$!
  trap 'kill $busy_loop 2>/dev/null' EXIT
  for threads in $(printf '%s\n' 1 "$cores" | sort -un); do
    echo "== $workload beside a busy core, xgrad at $threads thread(s)" >&2
    OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads "$build/bin/xgrad-bench" --workload "$workload" \
      --threads "$threads" --data "$data" --export "$out/batches" | sed "$busy_tag" | tee -a "$results"
  done
  for threads in $thread_counts; do
    for blas_threads in $thread_counts; do
      echo "== $workload beside a busy core, PyTorch at $threads thread(s), BLAS $blas_threads" >&2
      OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$blas_threads /usr/bin/python3 "$root/bench/pytorch_bench.py" \
        --workload "$workload" --threads "$threads" --blas-threads "$blas_threads" --import "$out/batches" |
        sed "$busy_tag" | tee -a "$results"
    done
  done
  kill $busy_loop
  wait $busy_loop 2>/dev/null || true
  trap - EXIT
done
# Data parallelism: the training workloads on 2 ranks of 1 thread each, under mpirun (xgrad,
# MPI over shared memory) and as PyTorch's DistributedDataParallel over Gloo, each rank taking
# its share of the same global batches as the one-process runs above. Lines carry "ranks".
rank_workloads=${XGRAD_BENCH_RANK_WORKLOADS-"seq2seq-train classifier-train"}
ranks=2
for workload in $rank_workloads; do
  for round in $(seq "${XGRAD_BENCH_ROUNDS:-1}"); do
    echo "== $workload, $ranks ranks x 1 thread, round $round" >&2
    # One process at 1 thread right before the ranks, so that the scaling is also a ratio of
    # runs a minute apart (this machine drifts by 10-15% over the minutes between sections);
    # then the allreduce overlapped with backward (the default) and after it.
    pair_tag="s/}\$/, \"round\": $round, \"pairs_with_ranks\": true}/"
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$build/bin/xgrad-bench" --workload "$workload" --threads 1 \
      --data "$data" | sed "$pair_tag" | tee -a "$results"
    for allreduce in "" --sum-after-backward; do
      OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mpirun --allow-run-as-root -np $ranks \
        "$build/bin/xgrad-bench" --workload "$workload" --threads 1 --data "$data" $allreduce |
        sed "s/}\$/, \"round\": $round}/" | tee -a "$results"
    done
    "$build/bin/xgrad-bench" --workload "$workload" --threads 1 --data "$data" --export "$out/batches" > /dev/null
    # Bounded: a rank of PyTorch's that hangs (it did once, at its exit) must not stop the bench.
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 timeout 900 /usr/bin/python3 "$root/bench/pytorch_bench.py" \
      --workload "$workload" --threads 1 --blas-threads 1 --ranks $ranks --import "$out/batches" | tee -a "$results" ||
      echo "bench: PyTorch DDP on $workload failed or timed out; its line is missing" >&2
  done
done
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "torch: $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
  echo "OPENBLAS_CORETYPE: ${OPENBLAS_CORETYPE:-unset}"
  /usr/bin/python3 "$root/bench/report.py" "$results"
} | tee "$out/report.txt"
