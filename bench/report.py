#!/usr/bin/python3
"""Summarises bench/run.sh's JSON lines: for each workload, both implementations at every
thread count, the ratio of their best speeds, and the fraction of the GEMM roofline
(GEMM FLOPs per step / time per step / measured sgemm peak at that thread count)."""

import json
import sys
from collections import defaultdict


def main(path):
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    peak = {r["threads"]: r["gflop_per_step"] / (r["ms_per_step"] / 1000)
            for r in rows if r["workload"] == "gemm" and r["impl"] == "xgrad"}
    by_workload = defaultdict(list)
    for r in rows:
        by_workload[r["workload"]].append(r)
    print(f"{'workload':18} {'impl':8} {'threads':>7} {'tokens/s':>12} {'ms/step':>10} {'RSS MB':>8} {'roofline':>9} {'check loss':>11}")
    for workload, results in by_workload.items():
        for r in sorted(results, key=lambda r: (r["impl"], r["threads"])):
            roofline = ""
            if workload != "gemm" and r["impl"] == "xgrad" and r.get("gflop_per_step") and r["threads"] in peak:
                roofline = f"{100 * r['gflop_per_step'] / (r['ms_per_step'] / 1000) / peak[r['threads']]:.0f}%"
            speed = r["tokens_per_s"] if workload != "gemm" else r["gflop_per_step"] / (r["ms_per_step"] / 1000)
            check = f"{r['check_loss']:.6f}" if "check_loss" in r else ""
            print(f"{workload:18} {r['impl']:8} {r['threads']:>7} {speed:>12.1f} {r['ms_per_step']:>10.2f} "
                  f"{r['peak_rss_mb']:>8.0f} {roofline:>9} {check:>11}")
    print()
    print("best of each side (higher is better; gemm in GFLOP/s):")
    for workload, results in by_workload.items():
        best = {}
        for impl in ("xgrad", "pytorch"):
            candidates = [r for r in results if r["impl"] == impl]
            if not candidates:
                continue
            if workload == "gemm":
                best[impl] = max(candidates, key=lambda r: r["gflop_per_step"] / r["ms_per_step"])
            else:
                best[impl] = max(candidates, key=lambda r: r["tokens_per_s"] if workload != "graph-overhead" else -r["ms_per_step"])
        if len(best) < 2:
            continue
        x, p = best["xgrad"], best["pytorch"]
        if workload == "graph-overhead":
            line = (f"{1000 * x['ms_per_step'] / 1e6:.3f} us/op vs {1000 * p['ms_per_step'] / 1e6:.3f} us/op "
                    f"({p['ms_per_step'] / x['ms_per_step']:.2f}x)")
        else:
            ratio = x["ms_per_step"] and (p["ms_per_step"] / x["ms_per_step"] if workload == "gemm"
                                          else x["tokens_per_s"] / p["tokens_per_s"])
            line = f"xgrad {x['threads']} thread(s) vs PyTorch {p['threads']} thread(s): {ratio:.2f}x"
        rss = f", peak RSS {x['peak_rss_mb']:.0f} vs {p['peak_rss_mb']:.0f} MB" if workload.endswith("train") else ""
        print(f"  {workload:18} {line}{rss}")
    xgrad_seq2seq = {r["threads"]: r for r in by_workload.get("seq2seq-train", []) if r["impl"] == "xgrad"}
    if 1 in xgrad_seq2seq and 2 in xgrad_seq2seq:
        print(f"  seq2seq-train scaling: 2 threads = {xgrad_seq2seq[2]['tokens_per_s'] / xgrad_seq2seq[1]['tokens_per_s']:.2f}x 1 thread")


if __name__ == "__main__":
    main(sys.argv[1])
