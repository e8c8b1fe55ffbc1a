"""S3 mode: cold and warm start, and VSEARCH latency after each, for the
largest dataset in ../shared/datasets loaded into SeaweedFS.

    scripts/seaweedfs.sh start
    AWS_ACCESS_KEY_ID=vexlake AWS_SECRET_ACCESS_KEY=vexlake-secret \\
      .venv/bin/python bench/s3_cold_start.py [--runs 3] [--out bench/results/...md]

One writer loads the base set over RESP and SAVEs (one segment per SAVE,
SEGMENTS of them), then stops.  Each measured start is a new process on
the same bucket prefix:
  cold      an empty --dir (so an empty cache): what a fresh node downloads
  warm      the --dir of the previous cold start (its cache holds every segment)
  no cache  --cache-size 0 on an empty --dir (every start reads the segments)
  local     the same data in a local --dir without S3: what opening costs
            besides the store (reading, checking and decoding the segments,
            building the in-memory rows)
Start time is from spawning the process to its first PONG (the server opens
the lake before it listens).  The request counts come from INFO (s3_gets,
s3_get_bytes, s3_lists, cache_*), read right after the start, so they are
exactly what opening made.  VSEARCH p50/p99: the dataset's queries, K=10,
one client, after each start.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import numpy as np
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = os.environ.get("VL_DATASETS", os.path.join(ROOT, "..", "shared", "datasets"))
ENDPOINT = os.environ.get("VL_S3_ENDPOINT", "http://127.0.0.1:8333")
SEGMENTS = 3


def read_vecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()


def largest_dataset():
    best = None
    for name in sorted(os.listdir(DATASETS)):
        p = os.path.join(DATASETS, name, "base.fvecs")
        if os.path.exists(p) and (best is None or os.path.getsize(p) > os.path.getsize(best[1])):
            best = (name, p)
    if best is None:
        sys.exit(f"no dataset under {DATASETS} (set VL_DATASETS)")
    return best[0], best[1], os.path.join(os.path.dirname(best[1]), "query.fvecs")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Node:
    def __init__(self, datadir, storage, metric, extra=()):
        self.port = free_port()
        where = ["--storage", storage, "--s3-endpoint", ENDPOINT] if storage else []
        self.cmd = [os.path.join(ROOT, "bin", "vexlake-server"), "--port", str(self.port),
                    "--dir", datadir, "--metric", metric, *where, "--flush-rows", "0",
                    "--flush-mb", "0", "--flush-seconds", "0", *extra]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.r = redis.Redis(port=self.port, protocol=2, socket_timeout=120)
        while True:
            try:
                self.r.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None:
                    sys.exit(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
                if time.perf_counter() - t0 > 300:
                    raise
                time.sleep(0.002)
        self.start_s = time.perf_counter() - t0
        self.info = self.r.info("persistence")

    def stop(self):
        self.r.close()
        self.proc.terminate()
        self.proc.wait(60)


def load(node, vecs, segments):
    s = socket.create_connection(("127.0.0.1", node.port))
    step = (len(vecs) + segments - 1) // segments
    for seg in range(segments):
        for lo in range(seg * step, min(len(vecs), (seg + 1) * step), 1000):
            hi = min(len(vecs), lo + 1000, (seg + 1) * step)
            s.sendall(b"".join(encode("VSET", f"v{i}", "FP32", vecs[i].tobytes())
                               for i in range(lo, hi)))
            want, buf = hi - lo, b""
            while buf.count(b"\r\n") < want:
                buf += s.recv(1 << 20)
            assert buf.count(b"+OK") == want, buf[:200]
        assert node.r.execute_command("SAVE") in (True, b"OK")
    s.close()


def search_latency(node, queries, k=10):
    lat = []
    for q in queries:
        t0 = time.perf_counter()
        node.r.execute_command("VSEARCH", "FP32", q.tobytes(), k)
        lat.append(time.perf_counter() - t0)
    lat = np.array(lat) * 1000
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


def measure(kind, storage, metric, queries, warm_dir=None, extra=()):
    d = warm_dir or tempfile.mkdtemp(prefix=f"vl-s3bench-{kind}-")
    node = Node(d, storage, metric, extra)
    p50, p99 = search_latency(node, queries)
    i = node.info
    row = dict(kind=kind, start_s=node.start_s, p50=p50, p99=p99, gets=i.get("s3_gets", 0),
               get_bytes=i.get("s3_get_bytes", 0), lists=i.get("s3_lists", 0),
               hits=i.get("cache_hits", 0), misses=i.get("cache_misses", 0),
               cache_bytes=i.get("cache_bytes", 0))
    node.stop()
    return row, d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    name, base_path, query_path = largest_dataset()
    metric = "l2" if "euclidean" in name else "cosine"
    vecs, queries = read_vecs(base_path), read_vecs(query_path)
    storage = f"s3://vexlake-test/bench-{uuid.uuid4().hex[:10]}"
    writer_dir = tempfile.mkdtemp(prefix="vl-s3bench-writer-")
    w = Node(writer_dir, storage, metric)
    t0 = time.perf_counter()
    load(w, vecs, SEGMENTS)
    load_s = time.perf_counter() - t0
    vi = w.r.info("vectors")
    w.stop()
    shutil.rmtree(writer_dir)

    local_dir = tempfile.mkdtemp(prefix="vl-s3bench-local-")
    w = Node(local_dir, None, metric)
    load(w, vecs, SEGMENTS)
    w.stop()

    rows, dirs = [], [local_dir]
    for _ in range(args.runs):
        local, _ = measure("local --dir (no S3, the floor)", None, metric, queries,
                           warm_dir=local_dir)
        rows.append(local)
        cold, d = measure("cold (empty cache)", storage, metric, queries)
        warm, _ = measure("warm (cache of the cold start)", storage, metric, queries, warm_dir=d)
        nocache, d2 = measure("no cache (--cache-size 0)", storage, metric, queries,
                              extra=("--cache-size", "0"))
        rows += [cold, warm, nocache]
        dirs += [d, d2]
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)

    out = [f"# S3 mode: cold and warm start ({time.strftime('%Y-%m-%d')})", "",
           f"Dataset {name}: {len(vecs)} x {vecs.shape[1]} float32 ({metric}), "
           f"{vi['segments']} segments of {vi['bytes_on_disk'] / 1e6:.1f} MB in all, in SeaweedFS "
           f"(scripts/seaweedfs.sh, loopback) at {ENDPOINT}. Loaded over RESP with {SEGMENTS} "
           f"SAVEs in {load_s:.1f} s. {args.runs} runs of each start, in order local, cold, "
           f"warm, no cache; every row is one start. Machine: 2 cores shared with other "
           f"sessions (load average {os.getloadavg()[0]:.0f} at the end), so times are noisy; "
           f"the request counts are exact.", "",
           "    scripts/seaweedfs.sh start",
           "    AWS_ACCESS_KEY_ID=vexlake AWS_SECRET_ACCESS_KEY=vexlake-secret \\",
           f"      .venv/bin/python bench/s3_cold_start.py --runs {args.runs}", "",
           "| start | time to first PONG | GETs | GET bytes | LISTs | cache hits | cache misses "
           "| cache bytes | VSEARCH p50 | VSEARCH p99 |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append(f"| {r['kind']} | {r['start_s']:.3f} s | {r['gets']} | {r['get_bytes']:,} | "
                   f"{r['lists']} | {r['hits']} | {r['misses']} | {r['cache_bytes']:,} | "
                   f"{r['p50']:.2f} ms | {r['p99']:.2f} ms |")
    out += ["", "Medians over the runs:", "",
            "| start | time to first PONG | GETs | GET bytes | VSEARCH p50 | VSEARCH p99 |",
            "| --- | --- | --- | --- | --- | --- |"]
    for kind in dict.fromkeys(r["kind"] for r in rows):
        sel = [r for r in rows if r["kind"] == kind]
        med = {k: float(np.median([r[k] for r in sel])) for k in ("start_s", "p50", "p99")}
        out.append(f"| {kind} | {med['start_s']:.3f} s | {sel[0]['gets']} | "
                   f"{sel[0]['get_bytes']:,} | {med['p50']:.2f} ms | {med['p99']:.2f} ms |")
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
