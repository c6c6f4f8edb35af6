#!/usr/bin/python3
"""Summarises bench/run.sh's JSON lines: for each workload, both implementations at every
thread count, the ratio of their best speeds, and the fraction of the roofline: for batch-1
decoding the memory's (tokens/s / the read-bound workload's passes/s), otherwise the GEMM's
(GEMM FLOPs per step / time per step / measured sgemm peak at that thread count). Beside
it, the machine's own roofline: workloads with a FLOP count (training, gemm) as a fraction of
the fma-peak workload's float32 GFLOP/s (its widest instruction set) at the same thread count,
and those bound by bytes (batch-1 decoding, read-bound: the bytes of weights read-bound reads
per token x tokens/s) as a fraction of the read-bandwidth workload's GB/s. Where a
workload ran in several rounds, each line is the median run and shows the range. A run
whose OpenBLAS thread count differs from its other threads (PyTorch's two pools) shows
both, "1, BLAS 2". Runs beside a busy core, and data-parallel runs on several ranks, are
reported apart."""

import json
import sys
from collections import defaultdict


def speed(r):
    """Higher is better: GFLOP/s for gemm and fma-peak, GB/s for read-bandwidth, tokens (for
    graph-overhead, ops) per second otherwise."""
    if r["workload"] in ("gemm", "fma-peak"):
        return gflop_per_s(r)
    if r["workload"] == "read-bandwidth":
        return r["tokens_per_s"] * r["bytes_per_token"] / 1e9
    return r["tokens_per_s"]


def gflop_per_s(r):
    return r["gflop_per_step"] / (r["ms_per_step"] / 1000)


def blas_threads(r):
    return r.get("blas_threads", r["threads"])


def threads_label(r):
    return str(r["threads"]) if blas_threads(r) == r["threads"] else f"{r['threads']}, BLAS {blas_threads(r)}"


def median_runs(rows):
    """One run per (workload, impl, threads, OpenBLAS threads, instruction set of the workload's
    own loop, where it names one): the median by speed (the upper
    one of an even count, so that it is a run that happened), with the number of rounds and the
    slowest and fastest speed."""
    groups = defaultdict(list)
    for r in rows:
        groups[(r["workload"], r["impl"], r["threads"], blas_threads(r), r.get("isa"), r.get("allreduce"))].append(r)
    medians = []
    for runs in groups.values():
        runs.sort(key=speed)
        median = dict(runs[len(runs) // 2], rounds=len(runs), slowest=speed(runs[0]), fastest=speed(runs[-1]))
        medians.append(median)
    return medians


def report_busy_core(rows):
    """Beside a busy core: xgrad at its default (largest) thread count against its own one-thread
    speed and against PyTorch's best, all under the same load."""
    by_workload = defaultdict(list)
    for r in rows:
        by_workload[r["workload"]].append(r)
    print()
    print("beside a busy core (yes > /dev/null on one core; higher is better):")
    for workload, results in by_workload.items():
        xgrad = {r["threads"]: r for r in results if r["impl"] == "xgrad"}
        pytorch = [r for r in results if r["impl"] == "pytorch"]
        if not xgrad or not pytorch:
            continue
        default, one = xgrad[max(xgrad)], xgrad[min(xgrad)]
        best = max(pytorch, key=speed)
        print(f"  {workload:20} xgrad {default['threads']} threads {speed(default):.1f}, 1 thread {speed(one):.1f} "
              f"({speed(default) / speed(one):.2f}x); PyTorch's best ({threads_label(best)} threads) {speed(best):.1f} "
              f"({speed(default) / speed(best):.2f}x)")


NETWORKS_GBIT = (10, 100)


def ring_allreduce_seconds(gradient_bytes, ranks, gbit_per_s):
    """A ring allreduce sends and receives 2 (N - 1) / N of the gradient's bytes per rank."""
    return 2 * (ranks - 1) / ranks * gradient_bytes / (gbit_per_s * 1e9 / 8)


def report_data_parallel(parallel, rows):
    """2 ranks x 1 thread against one process at 1 and 2 threads, xgrad's allreduce time, and
    where a network would stop the scaling: with the global batch fixed (--batch), N ranks
    each compute 1/N of a step, while a ring allreduce's time grows towards 2 G / bandwidth."""
    single = {(r["workload"], r["impl"], r["threads"], blas_threads(r)): r for r in rows}
    print()
    print("data-parallel, 2 ranks x 1 thread (xgrad: mpirun, MPI over shared memory; PyTorch: DDP over Gloo):")
    for r in sorted(parallel, key=lambda r: (r["workload"], r["impl"], r.get("allreduce", ""))):
        workload, impl = r["workload"], r["impl"]
        allreduce = f" (allreduce {r['allreduce']})" if "allreduce" in r else ""
        line = f"  {workload:20} {impl:8} {speed(r):>10.1f} tokens/s{allreduce}"
        one, two = single.get((workload, impl, 1, 1)), single.get((workload, impl, 2, 2))
        if one:
            line += f", {speed(r) / speed(one):.2f}x 1 rank x 1 thread"
        if two:
            line += f", {speed(r) / speed(two):.2f}x 1 rank x 2 threads"
        ddp = [p for p in parallel if p["workload"] == workload and p["impl"] == "pytorch"]
        if impl == "xgrad" and ddp:
            line += f", {speed(r) / speed(ddp[0]):.2f}x PyTorch DDP"
        pytorch_best = [p for p in rows if p["workload"] == workload and p["impl"] == "pytorch"]
        if impl == "pytorch" and pytorch_best:
            best = max(pytorch_best, key=speed)
            line += f", {speed(r) / speed(best):.2f}x its best one process ({threads_label(best)} threads)"
        spread = f"; {r['rounds']} rounds: {r['slowest']:.1f} to {r['fastest']:.1f}" if r["rounds"] > 1 else ""
        print(line + spread)
        if impl != "xgrad" or "gradient_mb" not in r:
            continue
        print(f"  {'':18} gradient {r['gradient_mb']:.1f} MB; allreduce {r['allreduce_ms_alone']:.1f} ms alone, "
              f"{r['allreduce_ms_in_step']:.1f} ms within a step of {r['ms_per_step']:.0f} ms (waits included)")
        if not one:
            continue
        step = one["ms_per_step"] / 1000  # one rank's whole step at one thread
        gradient_bytes = r["gradient_mb"] * 1e6
        for gbit in NETWORKS_GBIT:
            speedups = ", ".join(
                f"{n}: {step / (step / n + ring_allreduce_seconds(gradient_bytes, n, gbit)):.1f}x" for n in (2, 4, 8, 16))
            limit = 1 + step * gbit * 1e9 / 8 / (2 * gradient_bytes)  # the N whose allreduce takes as long as its compute
            print(f"  {'':18} {gbit} Gb/s: ring allreduce {1000 * ring_allreduce_seconds(gradient_bytes, 2, gbit):.0f} ms "
                  f"at 2 ranks, {1000 * 2 * gradient_bytes / (gbit * 1e9 / 8):.0f} ms as N grows; speed-up without overlap "
                  f"{speedups}; communication outweighs computation beyond {limit:.0f} ranks")


def report_paired_scaling(lines):
    """Each round's xgrad ranks against the one-process, one-thread run made just before them:
    the median of these ratios does not move with the machine's drift between sections."""
    alone = {(r["workload"], r["round"]): r for r in lines if r.get("pairs_with_ranks")}
    ratios = defaultdict(list)
    for r in lines:
        one = alone.get((r["workload"], r.get("round")))
        if r["impl"] == "xgrad" and r.get("ranks", 1) > 1 and one:
            ratios[(r["workload"], r.get("allreduce", ""))].append(speed(r) / speed(one))
    if ratios:
        print()
        print("data-parallel, 2 ranks x 1 thread against 1 process x 1 thread run just before, per round:")
    for (workload, allreduce), values in sorted(ratios.items()):
        values.sort()
        median = values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
        print(f"  {workload:20} allreduce {allreduce:15} median {median:.2f}x of {len(values)} rounds "
              f"({', '.join(f'{v:.2f}' for v in values)})")


def machine_roofline(r, fma_peak, bandwidth, weight_bytes_per_token):
    """An xgrad run's fraction of the machine's roofline at its thread count: "% FMA" of the
    float32 multiply-add peak for a workload with a FLOP count, "% read" of the read bandwidth
    for one bound by bytes (bf16 training's products count against the float32 peak too, which
    they may pass); the instruction set for the two peaks themselves."""
    workload, threads = r["workload"], r["threads"]
    if r["impl"] != "xgrad":
        return ""
    if workload in ("fma-peak", "read-bandwidth"):
        return r.get("isa", "")
    if workload.startswith("decode") and workload.endswith(("-int8", "-bf16")):
        return ""  # bound by fewer bytes than read-bound reads, and its FLOP count is not float32's
    if workload in ("decode-greedy-1", "read-bound"):
        bytes_per_token = r.get("bytes_per_token", weight_bytes_per_token)
        if not bytes_per_token or threads not in bandwidth:
            return ""
        return f"{100 * r['tokens_per_s'] * bytes_per_token / 1e9 / bandwidth[threads]:.0f}% read"
    if r.get("gflop_per_step") and threads in fma_peak:
        return f"{100 * gflop_per_s(r) / fma_peak[threads]:.0f}% FMA"
    return ""


def report_machine(fma_peak_by_isa, bandwidth, sgemm):
    """The machine's roofline: the FMA peak at every instruction set measured, the read
    bandwidth, and xgrad's float32 gemm (oneDNN's sgemm where the CPU has AVX2) against the
    widest FMA peak."""
    if not fma_peak_by_isa and not bandwidth:
        return
    print()
    print("the machine's roofline (xgrad-bench fma-peak and read-bandwidth):")
    for (isa, threads), peak in sorted(fma_peak_by_isa.items(), key=lambda item: (item[0][1], -item[1])):
        print(f"  float32 FMA peak, {isa:8} {threads} thread(s): {peak:8.1f} GFLOP/s")
    for threads, gb_per_s in sorted(bandwidth.items()):
        print(f"  read bandwidth,          {threads} thread(s): {gb_per_s:8.1f} GB/s")
    for threads, gflops in sorted(sgemm.items()):
        peaks = {isa: peak for (isa, t), peak in fma_peak_by_isa.items() if t == threads}
        if peaks:
            fractions = ", ".join(f"{100 * gflops / peak:.0f}% of the {isa} peak" for isa, peak in
                                  sorted(peaks.items(), key=lambda item: -item[1]))
            print(f"  gemm 2048^3 (xgrad's sgemm), {threads} thread(s): {gflops:8.1f} GFLOP/s, {fractions}")


def main(path):
    lines = [json.loads(line) for line in open(path) if line.startswith("{")]
    busy = [r for r in lines if r.get("load") == "busy-core"]
    parallel = median_runs([r for r in lines if r.get("ranks", 1) > 1])
    rows = median_runs([r for r in lines if r.get("load") != "busy-core" and r.get("ranks", 1) == 1
                        and not r.get("pairs_with_ranks")])
    peak = {r["threads"]: speed(r) for r in rows if r["workload"] == "gemm" and r["impl"] == "xgrad"}
    read_bound = {r["threads"]: speed(r) for r in rows if r["workload"] == "read-bound"}
    fma_peak_by_isa = {(r.get("isa"), r["threads"]): speed(r) for r in rows if r["workload"] == "fma-peak"}
    fma_peak = {}  # at each thread count the widest instruction set's, the fastest
    for (_, threads), gflops in fma_peak_by_isa.items():
        fma_peak[threads] = max(fma_peak.get(threads, 0), gflops)
    bandwidth = {r["threads"]: speed(r) for r in rows if r["workload"] == "read-bandwidth"}
    weight_bytes_per_token = next((r["bytes_per_token"] for r in rows if r["workload"] == "read-bound" and
                                   "bytes_per_token" in r), None)
    by_workload = defaultdict(list)
    for r in rows:
        by_workload[r["workload"]].append(r)
    print(f"{'workload':20} {'impl':8} {'threads':>12} {'tokens/s':>12} {'ms/step':>10} {'RSS MB':>8} {'roofline':>9} "
          f"{'machine':>9} {'check loss':>11}  range of rounds")
    for workload, results in by_workload.items():
        for r in sorted(results, key=lambda r: (r["impl"], r["threads"], blas_threads(r), -speed(r))):
            roofline = ""
            if workload == "decode-greedy-1" and r["impl"] == "xgrad" and r["threads"] in read_bound:
                roofline = f"{100 * speed(r) / read_bound[r['threads']]:.0f}%"
            elif (workload not in ("gemm", "fma-peak") and not workload.endswith(("-int8", "-bf16")) and r["impl"] == "xgrad"
                  and r.get("gflop_per_step") and r["threads"] in peak):
                roofline = f"{100 * r['gflop_per_step'] / (r['ms_per_step'] / 1000) / peak[r['threads']]:.0f}%"
            check = f"{r['check_loss']:.6f}" if "check_loss" in r else ""
            spread = f"  {r['rounds']} rounds: {r['slowest']:.1f} to {r['fastest']:.1f}" if r["rounds"] > 1 else ""
            machine = machine_roofline(r, fma_peak, bandwidth, weight_bytes_per_token)
            print(f"{workload:20} {r['impl']:8} {threads_label(r):>12} {speed(r):>12.1f} {r['ms_per_step']:>10.2f} "
                  f"{r['peak_rss_mb']:>8.0f} {roofline:>9} {machine:>9} {check:>11}{spread}")
    print()
    print("best of each side (higher is better; gemm in GFLOP/s):")
    for workload, results in by_workload.items():
        best = {}
        for impl in ("xgrad", "pytorch"):
            candidates = [r for r in results if r["impl"] == impl]
            if candidates:
                best[impl] = max(candidates, key=speed)
        if len(best) < 2:
            continue
        x, p = best["xgrad"], best["pytorch"]
        if workload == "graph-overhead":
            line = (f"{1000 * x['ms_per_step'] / 1e6:.3f} us/op vs {1000 * p['ms_per_step'] / 1e6:.3f} us/op "
                    f"({p['ms_per_step'] / x['ms_per_step']:.2f}x)")
        else:
            line = f"xgrad ({threads_label(x)} threads) vs PyTorch ({threads_label(p)} threads): {speed(x) / speed(p):.2f}x"
        rss = f", peak RSS {x['peak_rss_mb']:.0f} vs {p['peak_rss_mb']:.0f} MB" if workload.endswith("train") else ""
        bound = ""
        if workload == "decode-greedy-1" and read_bound:
            threads, fastest = max(read_bound.items(), key=lambda item: item[1])
            bound = f"; the read bound ({threads} threads, {fastest:.1f} tokens/s) is {fastest / speed(p):.2f}x PyTorch's best"
        print(f"  {workload:20} {line}{rss}{bound}")
    # Rounded weights (decoding) and bf16 products (training) against PyTorch's float32 run of
    # the same workload as well (the target compares xgrad's int8 decoding with
    # PyTorch's best), beside PyTorch's own int8 above, and against xgrad's own float32.
    for workload, results in by_workload.items():
        if not workload.endswith(("-int8", "-bf16")):
            continue
        float32_workload = workload.rsplit("-", 1)[0]
        rounded = [r for r in results if r["impl"] == "xgrad"]
        for impl in ("pytorch", "xgrad"):
            float32 = [r for r in by_workload.get(float32_workload, []) if r["impl"] == impl]
            if rounded and float32:
                x, f = max(rounded, key=speed), max(float32, key=speed)
                print(f"  {workload:20} xgrad ({threads_label(x)} threads) vs {'PyTorch' if impl == 'pytorch' else 'xgrad'} "
                      f"float32 {float32_workload} ({threads_label(f)} threads): {speed(x) / speed(f):.2f}x")
    xgrad_seq2seq = {r["threads"]: r for r in by_workload.get("seq2seq-train", []) if r["impl"] == "xgrad"}
    if 1 in xgrad_seq2seq and 2 in xgrad_seq2seq:
        print(f"  seq2seq-train scaling: 2 threads = {xgrad_seq2seq[2]['tokens_per_s'] / xgrad_seq2seq[1]['tokens_per_s']:.2f}x 1 thread")
    report_machine(fma_peak_by_isa, bandwidth, peak)
    if busy:
        report_busy_core(median_runs(busy))
    if parallel:
        report_data_parallel(parallel, rows)
        report_paired_scaling(lines)


if __name__ == "__main__":
    main(sys.argv[1])
