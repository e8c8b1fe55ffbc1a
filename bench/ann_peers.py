#!/usr/bin/env python3
"""ann_peers.py - in-process ANN, one thread: VexLake against the open libraries.

For every dataset in ../shared/datasets (or $VL_DATASETS), in the same run:
  - VexLake through its C API: build/rel/bench/ann_bench (HNSW, walked on
    float32 and on SQ8 codes with a float32 re-rank) and build/rel/bench/
    ivf_bench (IVF over float32, SQ8 and RaBitQ codes, re-ranked in float32);
  - the peers of bench/ann/peers.py: hnswlib, faiss (HNSW, IVF-Flat, IVF-PQ
    fast-scan with refine), usearch, ngt (ONNG), pyvsag (hgraph) and scann,
    each in its own Python process (a peer that fails to import or crashes
    is reported, and the others still run), one thread, queries in batches.
Each system sweeps its search knob (ef, nprobe, epsilon, leaves).  QPS is
queries per second of the process's CPU time (best pass; the machine is
shared, so wall time includes other processes' turns; wall QPS is kept
too).  Recall@10 is tie-aware: a returned row whose true distance is within
the 10th ground-truth distance counts.

Writes the curves as JSON and the report (bench/ann/report.py: tables,
ratios, one recall-vs-QPS PNG per dataset) to bench/results/.

  make bench-ann [BENCH_DATASETS=sift,fashion] [BENCH_SYSTEMS=hnswlib,vexlake-hnsw]
                 [BENCH_QUICK=1]
  .venv/bin/python bench/ann_peers.py --report bench/results/<date>-ann.json
                                      (re-write the report from saved curves)
BENCH_QUICK=1 runs three sweep points per system on the smallest dataset
(unless BENCH_DATASETS names others) and writes to build/bench/ instead.

BENCH_BASELINE=<another build's ann_bench> (--baseline) also runs that
binary's SQ8 walk as system vexlake-hnsw-sq8-base, interleaved with this
tree's on every dataset: BENCH_BASELINE_ROUNDS rounds (default 2) in the
order this, base, base, this, ..., each point's best QPS over the rounds, so
that a change is measured against, say, main's build on the same noisy
machine in the same minutes.  The base counts neither as VexLake nor as a
peer in the headline; its row in the tables gives the ratios.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from ann import peers, report  # noqa: E402

K = peers.K
VEXLAKE = ["vexlake-hnsw", "vexlake-hnsw-sq8", "vexlake-ivf", "vexlake-ivf-sq8",
           "vexlake-ivf-rabitq"]
BASELINE = "vexlake-hnsw-sq8-base"
SYSTEMS = VEXLAKE + [BASELINE] + list(peers.PEERS)
WORKER_TIMEOUT = 1800


def read_vecs(path, dtype=np.float32):
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].copy().view(dtype)


def metric_of(name):
    return "cosine" if "cosine" in name else "l2"


def default_nlist(n):
    """VexLake's IVF default (src/core/index/ivf.c), given to every IVF peer."""
    return min(n, max(1, int(round(2 * np.sqrt(n)))))


def tie_recall(metric, base, queries, labels, kth):
    """Mean tie-aware recall@K of labels (nq x K, -1 = none) against kth (nq)."""
    valid = labels >= 0
    b = base[np.where(valid, labels, 0)].astype(np.float64)  # nq x K x d
    q = queries.astype(np.float64)[:, None, :]
    if metric == "l2":
        d = np.sqrt(((b - q) ** 2).sum(-1))
    else:
        dot = (b * q).sum(-1)
        d = 1.0 - dot / (np.linalg.norm(b, axis=-1) * np.linalg.norm(q, axis=-1))
    ok = (d <= (kth + 1e-6 * (1 + np.abs(kth)))[:, None]) & valid
    return float(ok.sum()) / (labels.shape[0] * K)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(search, queries, quick):
    """Best CPU and best wall seconds of whole passes over queries: at least
    2 passes (1 when quick), more until 0.5 s of CPU, at most 10."""
    search(queries[:8])  # warm up
    best_cpu = best_wall = float("inf")
    spent, passes, ids = 0.0, 0, None
    while passes < (1 if quick else 2) or (spent < 0.5 and passes < 10):
        c0, w0 = time.process_time(), time.perf_counter()
        out = search(queries)
        c, w = time.process_time() - c0, time.perf_counter() - w0
        ids = out if ids is None else ids
        best_cpu, best_wall = min(best_cpu, c), min(best_wall, w)
        spent += c
        passes += 1
    return ids, best_cpu, best_wall


def worker(system, path, nlist, quick):
    """Child process: build one peer on one dataset, sweep, print JSON lines."""
    base = read_vecs(os.path.join(path, "base.fvecs"))
    queries = read_vecs(os.path.join(path, "query.fvecs"))
    kth = read_vecs(os.path.join(path, "groundtruth_dist.fvecs"))[:, K - 1].astype(np.float64)
    metric = metric_of(os.path.basename(path))
    rows, qs = (peers.unit(base), peers.unit(queries)) if metric == "cosine" else (base, queries)
    p = peers.PEERS[system]()
    rss0 = rss_bytes()
    c0, w0 = time.process_time(), time.perf_counter()
    p.build(rows, metric, nlist)
    build_cpu, build_wall = time.process_time() - c0, time.perf_counter() - w0
    rss1 = rss_bytes()
    ib = p.index_bytes()
    print(json.dumps({"build": {"build_s": build_cpu, "build_wall_s": build_wall,
                                "index_bpv": ib / len(base) if ib else None,
                                "rss_bpv": (rss1 - rss0) / len(base),
                                "version": p.version, "knob": p.knob}}), flush=True)
    for v in p.knobs(quick):
        p.set(v)
        ids, cpu, wall = timed(p.search, qs, quick)
        r = tie_recall(metric, base, queries, ids, kth)
        print(json.dumps({"point": [v, r, len(queries) / cpu, len(queries) / wall]}), flush=True)
    return 0


def run_cmd(cmd, env=None):
    """(stdout, error text or None) of cmd, never raising."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT, env=env)
    except subprocess.TimeoutExpired as e:
        return e.stdout or "", f"timed out after {WORKER_TIMEOUT} s"
    except OSError as e:
        return "", str(e)
    if p.returncode != 0:
        tail = [ln for ln in p.stderr.strip().splitlines() if ln.strip()][-1:] or ["no message"]
        why = f"exit code {p.returncode}" if p.returncode > 0 else f"signal {-p.returncode}"
        return p.stdout, f"{why}: {tail[0][:200]}"
    return p.stdout, None


def kv(fields):
    """'key value key value' (ann_bench) or 'key=value' (ivf_bench) to a dict."""
    if any("=" in f for f in fields):
        return dict(f.split("=", 1) for f in fields if "=" in f)
    return dict(zip(fields[0::2], fields[1::2]))


def run_vexlake_hnsw(path, metric, quick, binary=None):
    efs = peers.EFS_QUICK if quick else peers.EFS
    cmd = [binary or os.path.join(ROOT, "build/rel/bench/ann_bench"), path, metric, str(peers.M),
           str(peers.EF_CONSTRUCTION)] + [str(e) for e in efs]
    out, err = run_cmd(cmd)
    res = {s: {"knob": "ef", "points": [], "cmd": cmd,
               "version": "this tree" if binary is None else binary}
           for s in VEXLAKE[:2]}
    for line in out.splitlines():
        f = line.split()
        if not f:
            continue
        d = kv(f[1:])
        if f[0] == "build":
            for s in res.values():
                s.update(build_s=float(d.get("cpu_seconds", d["seconds"])),
                         build_wall_s=float(d["seconds"]),
                         index_bpv=float(d["bytes_per_vector"]), rss_bpv=None)
        elif f[0] == "quant":
            s = res["vexlake-hnsw-sq8"]
            s["build_s"] += float(d.get("cpu_seconds", d["seconds"]))
            s["build_wall_s"] += float(d["seconds"])
            # Codes and links: ann_bench serves the float32 rows for the re-rank from
            # its own array (vl_hnsw_set_vector_source), as the engine's row store does.
            # Counted with the float32 rows it re-ranks with, like every
            # other system; without them (the row store serves them) beside.
            s["index_bpv"] = float(d.get("own_copy_bytes_per_vector", d["bytes_per_vector"]))
            s["external_bpv"] = float(d["bytes_per_vector"])
        elif f[0] == "search":
            name = "vexlake-hnsw" if d["mode"] == "float32" else "vexlake-hnsw-" + d["mode"]
            if name in res:
                res[name]["points"].append([int(d["ef"]), float(d["recall"]),
                                            float(d["cpu_qps"]), float(d["wall_qps"])])
    for s in res.values():
        s["status"] = err or ("ok" if s["points"] else "no output")
    return res


def best_points(runs):
    """One result of several runs of the same sweep: each point's best CPU and
    wall QPS (recall is the same in every run: the build is deterministic)."""
    out = dict(runs[0], points=[list(p) for p in runs[0]["points"]])
    for r in runs[1:]:
        if r["status"] != "ok":
            out["status"] = r["status"]
            continue
        for p, q in zip(out["points"], r["points"]):
            p[2], p[3] = max(p[2], q[2]), max(p[3], q[3])
    return out


def run_hnsw_with_baseline(path, metric, quick, baseline, rounds):
    """This tree's HNSW and the baseline binary's SQ8 walk, interleaved."""
    mine, base = [], []
    for i in range(rounds):
        order = [False, True] if i % 2 == 0 else [True, False]
        for is_base in order:
            if is_base:
                base.append(run_vexlake_hnsw(path, metric, quick, baseline)["vexlake-hnsw-sq8"])
            else:
                mine.append(run_vexlake_hnsw(path, metric, quick))
    res = {s: best_points([m[s] for m in mine]) for s in VEXLAKE[:2]}
    res[BASELINE] = best_points(base)
    return res


def run_vexlake_ivf(datasets, name, quick):
    nprobes = peers.NPROBES_QUICK if quick else peers.NPROBES
    cmd = [os.path.join(ROOT, "build/rel/bench/ivf_bench"), f"-datasets={datasets}",
           f"-only={name}", "-nprobe=" + ",".join(map(str, nprobes))]
    out, err = run_cmd(cmd)
    res, seen = {}, set()
    for line in out.splitlines():
        f = line.split()
        if len(f) < 3 or f[0] not in ("build", "ivf"):
            continue
        label = "vexlake-ivf" if f[2] == "none" else "vexlake-ivf-" + f[2]
        d = kv(f[3:])
        s = res.setdefault(label, {"knob": "nprobe", "points": [], "cmd": cmd,
                                   "version": "this tree"})
        if f[0] == "build":
            # The float32 rows the re-rank reads are memory the search needs.
            rerank = 0 if f[2] == "none" else int(d["raw"])
            s.update(build_s=float(d["build_s"]), build_wall_s=float(d["build_wall_s"]),
                     index_bpv=float(d["bytes_per_vector"]) + rerank, rss_bpv=None,
                     nlist=int(d["nlist"]))
            if rerank:
                s["external_bpv"] = float(d["bytes_per_vector"])
        elif (label, d["nprobe"]) not in seen:  # the default nprobe comes first, then the sweep
            seen.add((label, d["nprobe"]))
            s["points"].append([int(d["nprobe"]), float(d["recall"]), float(d["qps"]),
                                float(d["qps_wall"])])
    for label in VEXLAKE[2:]:
        s = res.setdefault(label, {"knob": "nprobe", "points": [], "cmd": cmd})
        s["points"].sort()
        s["status"] = err or ("ok" if s["points"] else "no output")
    return res


def run_peer(system, path, nlist, quick):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", system, "--path", path,
           "--nlist", str(nlist)] + (["--quick"] if quick else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="3", GLOG_minloglevel="2")
    out, err = run_cmd(cmd, env)
    res = {"points": [], "cmd": cmd[1:]}
    for line in out.splitlines():
        if line.startswith("{"):
            msg = json.loads(line)
            if "build" in msg:
                res.update(msg["build"])
            elif "point" in msg:
                res["points"].append(msg["point"])
    res["status"] = err or ("ok" if res["points"] else "no output")
    return res


def dataset_names(datasets, only, quick):
    names = sorted(n for n in os.listdir(datasets)
                   if os.path.isfile(os.path.join(datasets, n, "base.fvecs")))
    if only:
        keys = [k for k in only.split(",") if k]
        names = [n for n in names if any(k in n for k in keys)]
    elif quick and names:
        names = [min(names, key=lambda n: os.path.getsize(os.path.join(datasets, n, "base.fvecs")))]
    return names


def command_line():
    """How this run was started: the make target with the knobs it was given."""
    if not os.environ.get("BENCH_COMMAND"):
        return " ".join([".venv/bin/python bench/ann_peers.py"] + sys.argv[1:])
    knobs = [f"{k}={os.environ[k]}" for k in ("BENCH_DATASETS", "BENCH_SYSTEMS", "BENCH_QUICK",
                                               "BENCH_BASELINE", "BENCH_BASELINE_ROUNDS",
                                               "VL_DATASETS") if os.environ.get(k)]
    return " ".join(["nice -n %d" % os.nice(0)] * (os.nice(0) > 0) + [os.environ["BENCH_COMMAND"]] +
                    knobs)


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"cores": os.cpu_count(), "arch": platform.machine(), "cpu": model,
            "kernel": platform.release(), "python": platform.python_version()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=os.environ.get("VL_DATASETS") or
                    os.path.join(ROOT, "..", "shared", "datasets"))
    ap.add_argument("--only", default=os.environ.get("BENCH_DATASETS", ""),
                    help="comma-separated substrings of dataset names (default: all)")
    ap.add_argument("--systems", default=os.environ.get("BENCH_SYSTEMS", ""),
                    help="comma-separated systems (default: all): " + ",".join(SYSTEMS))
    ap.add_argument("--quick", action="store_true",
                    default=os.environ.get("BENCH_QUICK", "") not in ("", "0"))
    ap.add_argument("--baseline", default=os.environ.get("BENCH_BASELINE", ""),
                    help="another build's ann_bench, run as " + BASELINE)
    ap.add_argument("--baseline-rounds", type=int,
                    default=int(os.environ.get("BENCH_BASELINE_ROUNDS", "2")))
    ap.add_argument("--out-dir", help="default bench/results (quick: build/bench)")
    ap.add_argument("--report", metavar="JSON", help="only re-write the report from saved curves")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--nlist", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.path, args.nlist, args.quick)
    out_dir = args.out_dir or os.path.join(ROOT, "build/bench" if args.quick else "bench/results")
    if args.report:
        with open(args.report) as f:
            res = json.load(f)
        print(report.write(res, out_dir))
        return 0

    datasets = os.path.abspath(args.datasets)
    if not os.path.isdir(datasets):
        print(f"ann_peers: no datasets at {datasets}, nothing to run")
        return 0
    systems = [s for s in (args.systems.split(",") if args.systems else SYSTEMS) if s]
    if args.baseline:
        args.baseline = os.path.abspath(args.baseline)
        if BASELINE not in systems:
            systems.append(BASELINE)
    elif BASELINE in systems:
        print(f"ann_peers: {BASELINE} needs BENCH_BASELINE (another build's ann_bench)",
              file=sys.stderr)
        return 2
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        print(f"ann_peers: unknown systems {unknown}; known: {SYSTEMS}", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.timezone.utc)
    res = {"started": started.strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
           "quick": args.quick, "command": command_line(), "nice": os.nice(0),
           "load": [], "datasets": {}}
    json_path = os.path.join(out_dir, started.strftime("%Y-%m-%d") + "-ann.json")
    os.makedirs(out_dir, exist_ok=True)
    for name in dataset_names(datasets, args.only, args.quick):
        path = os.path.join(datasets, name)
        metric = metric_of(name)
        n = os.path.getsize(os.path.join(path, "base.fvecs"))
        dim = int(np.fromfile(os.path.join(path, "base.fvecs"), dtype=np.int32, count=1)[0])
        n //= 4 + 4 * dim
        ds = res["datasets"][name] = {"n": n, "dim": dim, "metric": metric,
                                      "nlist": default_nlist(n), "systems": {}}
        print(f"ann_peers: {name} (n={n}, dim={dim}, {metric})", flush=True)
        todo = [s for s in SYSTEMS if s in systems]
        got = {}
        for s in todo:
            if s in got:
                continue
            res["load"].append([time.time(), os.getloadavg()[0]])
            t0 = time.perf_counter()
            if s.startswith("vexlake-hnsw") and args.baseline:
                got.update(run_hnsw_with_baseline(path, metric, args.quick, args.baseline,
                                                  max(1, args.baseline_rounds)))
            elif s.startswith("vexlake-hnsw"):
                got.update(run_vexlake_hnsw(path, metric, args.quick))
            elif s.startswith("vexlake-ivf"):
                got.update(run_vexlake_ivf(datasets, name, args.quick))
            else:
                got[s] = run_peer(s, path, ds["nlist"], args.quick)
            for k in [k for k in got if k not in ds["systems"] and k in systems]:
                ds["systems"][k] = got[k]
                print(f"  {k:20s} {got[k]['status']:10.60s} {len(got[k]['points']):2d} points"
                      f" ({time.perf_counter() - t0:.0f} s)", flush=True)
        with open(json_path, "w") as f:
            json.dump(res, f, indent=1)
    res["load"].append([time.time(), os.getloadavg()[0]])
    res["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(json_path, "w") as f:
        json.dump(res, f, indent=1)
    print(report.write(res, out_dir))
    print(f"ann_peers: curves in {os.path.relpath(json_path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
