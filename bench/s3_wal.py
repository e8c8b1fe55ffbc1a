"""Write acknowledgement latency and throughput: WAL in SeaweedFS vs local disk.

For each storage mode (--storage s3://vexlake-test/<fresh prefix> against
the SeaweedFS of scripts/seaweedfs.sh, and a local --dir with appendfsync
always) and each client pattern (one VSET at a time, and pipelines of
PIPELINE VSETs), CLIENTS connections write DIM-dimensional FP32 vectors
under fresh keys for SECONDS seconds.  Reported per mode and pattern:

- ack latency p50 / p99: time from sending a request (a pipeline) until its
  reply arrived, i.e. until the server acknowledged it as durable;
- throughput: acknowledged writes per second over the run;
- writes per PUT (S3: WAL LSNs / wal_puts from INFO) or per fsync (local:
  LSNs / wal_fsyncs): how many writes one durable batch carried.

The clients are PROCS processes of CLIENTS/PROCS threads each (redis-py),
on the same 2-core machine as the server and SeaweedFS, so every figure
includes client overhead and shared CPU.

Usage: AWS_ACCESS_KEY_ID=vexlake AWS_SECRET_ACCESS_KEY=vexlake-secret \\
       .venv/bin/python bench/s3_wal.py [out.md]
Env: CLIENTS (50), PROCS (5), SECONDS (10), PIPELINE (16), DIM (128),
     VL_S3_ENDPOINT (http://127.0.0.1:8333).
"""
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import numpy as np
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENTS = int(os.environ.get("CLIENTS", "50"))
PROCS = int(os.environ.get("PROCS", "5"))
SECONDS = float(os.environ.get("SECONDS", "10"))
PIPELINE = int(os.environ.get("PIPELINE", "16"))
DIM = int(os.environ.get("DIM", "128"))
ENDPOINT = os.environ.get("VL_S3_ENDPOINT", "http://127.0.0.1:8333")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, datadir, port):
    log = open(os.path.join(datadir, "..", f"server-{port}.log"), "wb")
    p = subprocess.Popen([os.path.join(ROOT, "bin", "vexlake-server"), "--port", str(port),
                          "--dir", datadir, *args], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(500):
        try:
            if redis.Redis(port=port).ping():
                return p
        except redis.ConnectionError:
            time.sleep(0.02)
    p.kill()
    raise SystemExit(f"server did not start: {args}")


def info(port):
    return redis.Redis(port=port).info("persistence")


def client_proc(port, first, nthreads, depth, deadline, q):
    """nthreads clients; each writes until deadline; puts (latencies, n)."""
    out = []

    def one(t):
        r = redis.Redis(port=port, socket_timeout=120)
        rng = np.random.default_rng(t)
        blob = rng.standard_normal(DIM).astype(np.float32).tobytes()
        lat, n, i = [], 0, 0
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            if depth == 1:
                assert r.execute_command("VSET", f"b{t}-{i}", "FP32", blob) == b"OK"
            else:
                p = r.pipeline(transaction=False)
                for j in range(depth):
                    p.execute_command("VSET", f"b{t}-{i + j}", "FP32", blob)
                assert all(x == b"OK" for x in p.execute())
            lat.append(time.perf_counter() - t0)
            i += depth
            n += depth
        out.append((lat, n))

    ths = [threading.Thread(target=one, args=(first + k,)) for k in range(nthreads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    lat = [x for l, _ in out for x in l]
    q.put((lat, sum(n for _, n in out)))


def run(port, depth):
    before = info(port)
    q = mp.Queue()
    per = CLIENTS // PROCS
    deadline = time.monotonic() + 1.0 + SECONDS  # every process starts inside the first second
    procs = [mp.Process(target=client_proc, args=(port, k * per, per, depth, deadline, q))
             for k in range(PROCS)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - t0
    after = info(port)
    lat = np.array([x for l, _ in results for x in l]) * 1000
    writes = sum(n for _, n in results)
    lsns = after["wal_lsn"] - before["wal_lsn"]
    puts = after.get("wal_puts", 0) - before.get("wal_puts", 0)
    fsyncs = after["wal_fsyncs"] - before["wal_fsyncs"]
    batches = puts if puts else fsyncs
    return {
        "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
        "tput": writes / elapsed, "writes": writes, "batches": batches,
        "per_batch": lsns / batches if batches else float("nan"),
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else None
    work = tempfile.mkdtemp(prefix="vl-bench-s3wal-")
    modes = [
        ("SeaweedFS (--storage)", lambda: ["--storage",
                                           f"s3://vexlake-test/bench-{uuid.uuid4().hex[:10]}",
                                           "--s3-endpoint", ENDPOINT]),
        ("local disk (appendfsync always)", lambda: []),
    ]
    rows = []
    try:
        for name, args in modes:
            for depth in (1, PIPELINE):
                d = tempfile.mkdtemp(dir=work)
                port = free_port()
                srv = start(args() + ["--flush-rows", "0", "--flush-seconds", "0",
                                      "--flush-mb", "0"], d, port)
                try:
                    res = run(port, depth)
                finally:
                    srv.terminate()
                    srv.wait(30)
                rows.append((name, "not pipelined" if depth == 1 else f"pipeline {depth}", res))
                print(name, depth, res, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"| WAL | clients ({CLIENTS}) | ack p50 ms | ack p99 ms | writes/s | writes per PUT/fsync |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, pattern, r in rows:
        lines.append(f"| {name} | {pattern} | {r['p50']:.2f} | {r['p99']:.2f} | {r['tput']:.0f} | "
                     f"{r['per_batch']:.1f} |")
    table = "\n".join(lines)
    print(table)
    if out:
        with open(out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
