"""Exact-search latency: VexLake VSEARCH (over loopback, redis-py, FP32
blobs) against FAISS IndexFlatL2 called in-process, same queries, same run.

Both sides search one query at a time.  VexLake splits a large search
across its worker threads (all cores by default); FAISS searches one query
on one thread.  VexLake's figures include the loopback round trip and the
protocol work a real client pays.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = os.path.join(ROOT, "..", "shared", "datasets")
K = 10


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].view(dtype).copy()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recall(found, gt, gt_dist, dist_of):
    """Tie-aware recall@K: a hit counts if its true distance is within the
    K-th ground-truth distance."""
    hits = 0
    for q, ids in enumerate(found):
        bound = gt_dist[q, K - 1]
        hits += sum(1 for i in ids[:K] if dist_of(q, i) <= bound * (1 + 1e-6))
    return hits / (len(found) * K)


def percentiles(lat):
    lat = np.array(lat) * 1e3
    return np.percentile(lat, 50), np.percentile(lat, 99), len(lat) / (lat.sum() / 1e3)


def bench_vexlake(base, queries, tmp):
    port = free_port()
    proc = subprocess.Popen([os.path.join(ROOT, "bin", "vexlake-server"), "--port", str(port),
                             "--dir", tmp, "--metric", "l2", "--appendfsync", "no"],
                            stderr=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port, protocol=2)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        t0 = time.perf_counter()
        pipe = r.pipeline(transaction=False)
        for i, v in enumerate(base):
            pipe.execute_command("VSET", str(i), "FP32", v.tobytes())
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()
        load_s = time.perf_counter() - t0
        for q in queries[:20]:  # warm up
            r.execute_command("VSEARCH", "FP32", q.tobytes(), K)
        ping = []
        for _ in range(200):
            t = time.perf_counter()
            r.ping()
            ping.append(time.perf_counter() - t)
        lat, found = [], []
        for q in queries:
            t = time.perf_counter()
            ids = r.execute_command("VSEARCH", "FP32", q.tobytes(), K)
            lat.append(time.perf_counter() - t)
            found.append([int(x) for x in ids])
        info = r.info("server")
        return (lat, found, load_s, info.get("simd", "?"),
                info.get("search_threads", "?"), float(np.median(ping)) * 1e3)
    finally:
        proc.terminate()
        proc.wait(10)


def bench_faiss(base, queries):
    import faiss
    faiss.omp_set_num_threads(1)
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(base)
    for q in queries[:20]:
        index.search(q[None, :], K)
    lat, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = index.search(q[None, :], K)
        lat.append(time.perf_counter() - t)
        found.append(list(ids[0]))
    return lat, found


def main():
    for name in ("sift-128-euclidean-ngt5k", "fashion-mnist-784-euclidean-15k"):
        d = os.path.join(DATASETS, name)
        if not os.path.isdir(d):
            print(f"search: {name}: dataset missing, skipped")
            continue
        base = read_vecs(os.path.join(d, "base.fvecs"), np.float32)
        queries = read_vecs(os.path.join(d, "query.fvecs"), np.float32)
        gt = read_vecs(os.path.join(d, "groundtruth.ivecs"), np.int32)
        gt_dist = read_vecs(os.path.join(d, "groundtruth_dist.fvecs"), np.float32)
        b64 = base.astype(np.float64)
        q64 = queries.astype(np.float64)

        def dist_of(q, i):
            return float(np.sqrt(((b64[i] - q64[q]) ** 2).sum()))

        with tempfile.TemporaryDirectory() as tmp:
            vl_lat, vl_found, load_s, kernel, threads, ping_ms = bench_vexlake(base, queries, tmp)
        fa_lat, fa_found = bench_faiss(base, queries)
        vp50, vp99, vqps = percentiles(vl_lat)
        fp50, fp99, fqps = percentiles(fa_lat)
        print(f"search: {name}: {len(base)} x {base.shape[1]}-d, {len(queries)} queries, K={K}, "
              f"exact (kernel {kernel}); load {len(base) / load_s:,.0f} vectors/s")
        print(f"  vexlake VSEARCH  p50 {vp50:7.3f} ms  p99 {vp99:7.3f} ms  {vqps:8.0f} q/s  "
              f"recall@10 {recall(vl_found, gt, gt_dist, dist_of):.4f}")
        print(f"  faiss FlatL2     p50 {fp50:7.3f} ms  p99 {fp99:7.3f} ms  {fqps:8.0f} q/s  "
              f"recall@10 {recall(fa_found, gt, gt_dist, dist_of):.4f}  (in-process, 1 thread)")
        print(f"  (vexlake: {threads} search threads over loopback incl. redis-py, whose PING round"
              f" trip alone is {ping_ms:.3f} ms; faiss: in-process)")
        print(f"  ratio p50 vexlake/faiss: {vp50 / fp50:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
