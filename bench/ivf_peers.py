#!/usr/bin/env python3
"""bench/ivf_peers.py - VexLake IVF against faiss IVF in the same run, one thread.

For every dataset in the shared datasets folder:
  * VexLake: build/rel/bench/ivf_bench (in-process C, none / sq8 / rabitq),
  * faiss-cpu: IndexIVFFlat, and IndexIVFPQFastScan (M = dim/2, 4 bits,
    by residual) wrapped in IndexRefineFlat (exact float32 re-rank),
with the same nlist, sweeping nprobe.  faiss runs with omp_set_num_threads(1)
and gets all queries in one batch (so Python's per-call cost does not count
against it); VexLake runs queries one at a time.  QPS is per CPU second of
the one thread (robust on a shared machine); wall-clock QPS is printed too.
Recall@10 is tie-aware: a hit counts when its true distance is within the
10th ground-truth distance (groundtruth_dist.fvecs).

Prints one table per dataset and the QPS ratios at recall 0.95 and 0.99
(linear interpolation between sweep points), and writes them to
bench/results/<date>-ivf.md.

    make bench-ivf      (or: .venv/bin/python bench/ivf_peers.py [--datasets DIR]
                         [--only NAME] [--refine K]; DIR defaults to $VL_DATASETS,
                         else ../shared/datasets beside the checkout)
"""
import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

import faiss
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NPROBES = [1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]
K = 10


def read_vecs(path, dtype=np.float32):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].copy().view(dtype)


def true_dist(base, q, ids, cosine):
    x = base[ids].astype(np.float64)
    qq = q.astype(np.float64)
    if cosine:
        return 1 - (x @ qq) / (np.linalg.norm(x, axis=1) * np.linalg.norm(qq))
    return np.sqrt(((x - qq) ** 2).sum(axis=1))


def recall(base, queries, gtd, ids, cosine):
    ok = 0
    for i in range(len(queries)):
        row = ids[i][ids[i] >= 0][:K]
        t = gtd[i, K - 1]
        ok += int((true_dist(base, queries[i], row, cosine) <= t + 1e-6 * (1 + abs(t))).sum())
    return ok / (K * len(queries))


def timed_search(index, xq):
    index.search(xq[:8], K)  # warm up
    best = None
    c0, w0 = time.process_time(), time.perf_counter()
    passes = 0
    while True:
        _, ids = index.search(xq, K)
        passes += 1
        if best is None:
            best = ids
        if time.process_time() - c0 >= 0.3:
            break
    c1, w1 = time.process_time(), time.perf_counter()
    n = len(xq) * passes
    return best, n / (c1 - c0), n / (w1 - w0)


def run_vexlake(args, name):
    cmd = [args.ivf_bench, f"-datasets={args.datasets}",
           f"-only={name}", "-nprobe=" + ",".join(map(str, NPROBES))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    curves, builds, defaults = {}, {}, {}
    for line in out.splitlines():
        f = line.split()
        if not f or f[0] not in ("ivf", "build"):
            continue
        kv = dict(x.split("=", 1) for x in f[3:])
        label = "vexlake-ivf-" + f[2]
        if f[0] == "build":
            builds[label] = kv
            continue
        point = (int(kv["nprobe"]), float(kv["recall"]), float(kv["qps"]), float(kv["qps_wall"]))
        if label not in defaults:  # the first point: no nprobe given (the adaptive probe)
            defaults[label] = point + (float(kv.get("lists", "nan")),)
        else:
            curves.setdefault(label, []).append(point)
    return curves, builds, defaults, " ".join([os.path.relpath(cmd[0], ROOT)] + cmd[1:])


def run_faiss(base, queries, gtd, cosine, nlist, refine):
    if cosine:
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    d = base.shape[1]
    curves, builds = {}, {}
    makers = {
        "faiss-ivf-flat": lambda: faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist),
        f"faiss-ivfpq{d // 2}x4fs-refine": lambda: faiss.IndexRefineFlat(
            faiss.IndexIVFPQFastScan(faiss.IndexFlatL2(d), d, nlist, d // 2, 4)),
    }
    for label, make in makers.items():
        c0, w0 = time.process_time(), time.perf_counter()
        index = make()
        index.train(base)
        index.add(base)
        c1, w1 = time.process_time(), time.perf_counter()
        ivf = faiss.extract_index_ivf(index)
        mem = faiss.serialize_index(index).size
        if isinstance(index, faiss.IndexRefineFlat):
            index.k_factor = refine
            mem -= base.nbytes  # the refine copy of the vectors: VexLake keeps them outside too
        builds[label] = {"build_s": f"{c1 - c0:.3f}", "bytes_per_vector": f"{mem / len(base):.1f}"}
        pts = []
        for p in NPROBES:
            if p > nlist:
                break
            ivf.nprobe = p
            ids, qps, qps_wall = timed_search(index, queries)
            pts.append((p, recall(base, queries, gtd, ids, False if not cosine else True), qps, qps_wall))
        curves[label] = pts
    return curves, builds


def qps_at(points, target):
    pts = sorted(points)
    for a, b in zip(pts, pts[1:]):
        if a[1] < target <= b[1]:
            return a[2] + (b[2] - a[2]) * (target - a[1]) / (b[1] - a[1])
    if pts and pts[0][1] >= target:
        return pts[0][2]
    return None


def fmt(x):
    return "n/a" if x is None else f"{x:,.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default=os.environ.get("VL_DATASETS") or
                    os.path.join(ROOT, "..", "shared", "datasets"))
    ap.add_argument("--only")
    ap.add_argument("--refine", type=int, default=10, help="faiss IndexRefineFlat k_factor")
    ap.add_argument("--ivf-bench", default=os.path.join(ROOT, "build", "rel", "bench", "ivf_bench"),
                    help="the VexLake side (build/rel/bench/ivf_bench)")
    ap.add_argument("--out", default=os.path.join(
        ROOT, "bench", "results", datetime.date.today().isoformat() + "-ivf.md"))
    args = ap.parse_args()
    args.datasets = os.path.abspath(args.datasets)
    faiss.omp_set_num_threads(1)
    names = sorted(n for n in os.listdir(args.datasets)
                   if os.path.exists(os.path.join(args.datasets, n, "base.fvecs")))
    if args.only:
        names = [n for n in names if n == args.only]
    md = [f"## {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC  bench/ivf_peers.py "
          f"({os.cpu_count()} cores, {platform.machine()}, faiss {faiss.__version__}, one thread)", ""]
    for name in names:
        path = os.path.join(args.datasets, name)
        base = read_vecs(os.path.join(path, "base.fvecs"))
        queries = read_vecs(os.path.join(path, "query.fvecs"))
        gtd = read_vecs(os.path.join(path, "groundtruth_dist.fvecs"))
        cosine = "cosine" in name
        curves, builds, defaults, cmd = run_vexlake(args, name)
        nlist = int(next(iter(builds.values()))["nlist"])
        fc, fb = run_faiss(base, queries, gtd, cosine, nlist, args.refine)
        curves.update(fc)
        builds.update(fb)
        md += [f"### {name} (n={len(base)}, dim={base.shape[1]}, nlist={nlist})", "",
               f"VexLake: `{cmd}`", "",
               "| index | build s (CPU) | bytes/vector (index only) | defaults (no NPROBE): "
               "lists scanned, recall, QPS | best faiss QPS at that recall |",
               "|---|---|---|---|---|"]
        faiss_labels = [lab for lab in fc]
        for label in curves:
            b = builds[label]
            dflt = defaults.get(label)
            dtxt, ftxt = "-", "-"
            if dflt:
                dtxt = f"{dflt[4]:.1f} of {nlist}: {dflt[1]:.4f}, {dflt[2]:,.0f}"
                peer = max(((qps_at(fc[lab], dflt[1]) or 0, lab) for lab in faiss_labels))
                if peer[0]:
                    ftxt = f"{peer[1]} {peer[0]:,.0f} ({dflt[2] / peer[0]:.2f}x)"
            md.append(f"| {label} | {b['build_s']} | {b['bytes_per_vector']} | {dtxt} | {ftxt} |")
        md += ["", "| index | nprobe | recall@10 | QPS (CPU) | QPS (wall) |", "|---|---|---|---|---|"]
        for label, pts in curves.items():
            for p, r, q, qw in pts:
                md.append(f"| {label} | {p} | {r:.4f} | {q:,.0f} | {qw:,.0f} |")
        md += ["", "| index | QPS @0.95 | QPS @0.99 | vs faiss-ivf-flat @0.95 | @0.99 | vs best faiss @0.95 | @0.99 |",
               "|---|---|---|---|---|---|---|"]
        at = {lab: (qps_at(p, 0.95), qps_at(p, 0.99)) for lab, p in curves.items()}
        fl = at["faiss-ivf-flat"]
        peers = [v for lab, v in at.items() if lab.startswith("faiss")]
        best = tuple(max((v[i] for v in peers if v[i] is not None), default=None) for i in (0, 1))
        def ratio(a, b):
            return "n/a" if a is None or b is None else f"{a / b:.2f}x"
        for lab, (a, b) in at.items():
            md.append(f"| {lab} | {fmt(a)} | {fmt(b)} | {ratio(a, fl[0])} | {ratio(b, fl[1])} | "
                      f"{ratio(a, best[0])} | {ratio(b, best[1])} |")
        md.append("")
        print("\n".join(md[-(len(curves) + 4):]), flush=True)
    text = "\n".join(md) + "\n"
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "a") as f:
        f.write(text)
    print(f"ivf_peers: appended to {os.path.relpath(args.out, ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
