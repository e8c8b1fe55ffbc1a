#!/usr/bin/env python3
"""ann_peers.py - VexLake's HNSW (through its C API) against hnswlib, one thread.

For every dataset in ../shared/datasets (or $VL_DATASETS), in the same run:
  - VexLake: build/rel/bench/ann_bench builds the graph and sweeps ef, walking
    it on float32 and then on SQ8 codes with a float32 re-rank (same graph);
  - hnswlib 0.8.0: the same M and ef_construction, one thread for the build
    (add_items num_threads=1) and for the search (set_num_threads(1) and
    knn_query on the whole query matrix, so Python's per-call cost is paid
    once per pass), the same ef sweep.
Both are timed the same way: the best of 3 passes, by the process's CPU time
(the machine is shared, so wall time includes other processes' turns; wall
QPS is printed too).  Recall@10 is tie-aware for both: a returned row whose
true distance is within the 10th ground-truth distance counts.

Prints the curves per dataset and the QPS ratio VexLake / hnswlib at recall
0.95 and 0.99 for each VexLake mode (log-QPS interpolated between sweep points), and writes the
same as Markdown to bench/results/<date>-hnsw.md (override with --out).
"""
import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

import numpy as np

K = 10
REPEAT = 3
EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 400]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].copy().view(dtype)


def metric_of(name):
    return "cosine" if "cosine" in name else "l2"


def tie_recall(metric, base, queries, labels, kth):
    """Mean tie-aware recall@K of labels (nq x K) against kth (nq)."""
    b = base[labels].astype(np.float64)  # nq x K x d
    q = queries.astype(np.float64)[:, None, :]
    if metric == "l2":
        d = np.sqrt(((b - q) ** 2).sum(-1))
    else:
        dot = (b * q).sum(-1)
        d = 1.0 - dot / (np.linalg.norm(b, axis=-1) * np.linalg.norm(q, axis=-1))
    ok = d <= (kth + 1e-6 * (1 + np.abs(kth)))[:, None]
    return float(ok.sum()) / (labels.shape[0] * K)


def run_vexlake(binary, path, metric, m, efc):
    """Build facts and {mode: curve} from one ann_bench run."""
    out = subprocess.run([binary, path, metric, str(m), str(efc)] + [str(e) for e in EFS],
                         check=True, capture_output=True, text=True).stdout
    build, curves = {}, {}
    for line in out.splitlines():
        f = line.split()
        kv = dict(zip(f[1::2], f[2::2]))
        if f[0] == "build":
            build = {"seconds": float(kv["seconds"]), "bpv": float(kv["bytes_per_vector"])}
        elif f[0] == "quant":
            build["sq8_seconds"] = float(kv["seconds"])
            build["sq8_bpv"] = float(kv["bytes_per_vector"])
        elif f[0] == "search":
            curves.setdefault(kv["mode"], []).append(
                (int(kv["ef"]), float(kv["recall"]), float(kv["cpu_qps"]), float(kv["wall_qps"])))
    return build, curves


def run_hnswlib(path, metric, m, efc):
    import hnswlib

    base = read_vecs(os.path.join(path, "base.fvecs"), np.float32)
    queries = read_vecs(os.path.join(path, "query.fvecs"), np.float32)
    kth = read_vecs(os.path.join(path, "groundtruth_dist.fvecs"), np.float32)[:, K - 1]
    kth = kth.astype(np.float64)
    index = hnswlib.Index(space=metric, dim=base.shape[1])
    index.init_index(max_elements=base.shape[0], M=m, ef_construction=efc, random_seed=42)
    index.set_num_threads(1)
    t0 = time.perf_counter()
    index.add_items(base, np.arange(base.shape[0]), num_threads=1)
    build_s = time.perf_counter() - t0
    bpv = index.index_file_size() / base.shape[0]
    curve = []
    for ef in EFS:
        index.set_ef(ef)
        best_cpu = best_wall = float("inf")
        for _ in range(REPEAT):
            c0, w0 = time.process_time(), time.perf_counter()
            labels, _ = index.knn_query(queries, k=K, num_threads=1)
            best_cpu = min(best_cpu, time.process_time() - c0)
            best_wall = min(best_wall, time.perf_counter() - w0)
        r = tie_recall(metric, base, queries, labels.astype(np.int64), kth)
        curve.append((ef, r, len(queries) / best_cpu, len(queries) / best_wall))
    return {"seconds": build_s, "bpv": bpv}, curve


def qps_at(curve, target):
    """QPS at recall target, log-interpolated; None when never reached."""
    pts = [(r, q) for _, r, q, _ in curve]
    if pts[0][0] >= target:
        return pts[0][1]
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 < target <= r1:
            t = (target - r0) / (r1 - r0)
            return float(np.exp(np.log(q0) + t * (np.log(q1) - np.log(q0))))
    return None


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=os.environ.get("VL_DATASETS") or
                    os.path.join(ROOT, "..", "shared", "datasets"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "rel", "bench", "ann_bench"))
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--out", default=os.path.join(
        ROOT, "bench", "results", datetime.date.today().isoformat() + "-hnsw.md"))
    ap.add_argument("--only", default="", help="substring: run only matching datasets")
    args = ap.parse_args()
    if not os.path.isdir(args.datasets):
        print(f"ann_peers: no datasets at {args.datasets}, nothing to run")
        return 0
    import hnswlib  # noqa: F401  (fail early if missing)

    names = sorted(n for n in os.listdir(args.datasets)
                   if os.path.isfile(os.path.join(args.datasets, n, "base.fvecs"))
                   and args.only in n)
    lines = [f"# HNSW, one thread: VexLake vs hnswlib 0.8.0 ({datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC)",
             "",
             f"Machine: {os.cpu_count()} cores, {platform.machine()}, shared with other sessions "
             "(QPS by process CPU time, best of 3 passes; wall QPS alongside).",
             f"Parameters: M={args.m}, ef_construction={args.efc}, k=10, tie-aware recall@10.",
             "", "Command: `make bench-ann` (= `.venv/bin/python bench/ann_peers.py`).", ""]
    summary = []
    for name in names:
        path = os.path.join(args.datasets, name)
        metric = metric_of(name)
        vb, vcs = run_vexlake(args.bin, path, metric, args.m, args.efc)
        hb, hc = run_hnswlib(path, metric, args.m, args.efc)
        vc, sc = vcs["float32"], vcs["sq8"]
        lines += [f"## {name} ({metric})", "",
                  f"Build (one thread): VexLake {vb['seconds']:.2f} s, {vb['bpv']:.0f} B/vector "
                  f"(SQ8 codes: +{vb['sq8_seconds']:.2f} s, {vb['sq8_bpv']:.0f} B/vector); "
                  f"hnswlib {hb['seconds']:.2f} s, {hb['bpv']:.0f} B/vector (index file size).",
                  "", "| ef | VexLake f32 recall | QPS (cpu / wall) | VexLake SQ8 recall | QPS (cpu / wall) "
                  "| hnswlib recall | QPS (cpu / wall) |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for (ef, vr, vq, vw), (_, sr, sq, sw), (_, hr, hq, hw) in zip(vc, sc, hc):
            lines.append(f"| {ef} | {vr:.4f} | {vq:.0f} / {vw:.0f} | {sr:.4f} | {sq:.0f} / {sw:.0f} "
                         f"| {hr:.4f} | {hq:.0f} / {hw:.0f} |")
        for mode, curve in (("float32", vc), ("sq8", sc)):
            row = [name, mode]
            for target in (0.95, 0.99):
                v, h = qps_at(curve, target), qps_at(hc, target)
                row += [v, h, v / h if v and h else None]
            summary.append(row)
        lines.append("")
        print("\n".join(lines[-(len(vc) + 6):]), flush=True)
    lines += ["## QPS at equal recall (VexLake / hnswlib; target >= 2x)", "",
              "| dataset | VexLake walk | QPS@0.95 VexLake | hnswlib | ratio | QPS@0.99 VexLake | hnswlib | ratio |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in summary:
        lines.append(f"| {r[0]} | {r[1]} | {fmt(r[2], '.0f')} | {fmt(r[3], '.0f')} | {fmt(r[4], '.2f')}x | "
                     f"{fmt(r[5], '.0f')} | {fmt(r[6], '.0f')} | {fmt(r[7], '.2f')}x |")
    print("\n".join(lines[-(len(summary) + 4):]))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"ann_peers: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
