#!/usr/bin/env python3
"""Follower lag: time from a write's +OK on the writer to the write being
visible via VGET on a --read-only follower, against a real SeaweedFS.

One writer and one follower on a fresh prefix of the bucket.  A background
client writes at --rate writes/s (overwrites over 5000 keys); a probe
client writes a fresh key every --gap-ms and notes when its +OK arrived; a
poller asks the follower for every probe not yet seen (one pipelined round
of VGETs every --poll-ms) and notes when each first answers with a vector.
The lag of a probe is the difference; the report gives p50/p99/max per
--follow-interval-ms.

Needs SeaweedFS on --endpoint (scripts/seaweedfs.sh start) and a built
server (--bin, default bin/vexlake-server; pass another build's binary to
compare).  Example (the figures in bench/results/2026-12-02-followers.md):

  bench/follower_lag.py --bin bin/vexlake-server --intervals 1000,100
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import redis

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, workdir: Path, args) -> tuple[subprocess.Popen, int]:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / "server.log", "wb")
    p = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                          "--dir", str(workdir / "data"), *args],
                         stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_timeout=1).ping():
                return p, port
        except redis.ConnectionError:
            time.sleep(0.05)
    p.kill()
    sys.exit(f"server did not start: {(workdir / 'server.log').read_text()[-2000:]}")


def pct(xs, q):
    return float(np.percentile(np.array(xs), q)) if xs else float("nan")


def measure(args, interval_ms: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="vl-follower-lag-"))
    prefix = f"bench-follow-{uuid.uuid4().hex[:10]}"
    store = ["--storage", f"s3://{args.bucket}/{prefix}", "--s3-endpoint", args.endpoint,
             "--metric", "l2"]
    writer, wport = start(args.bin, tmp / "writer",
                          [*store, "--flush-seconds", str(args.flush_seconds)])
    w = redis.Redis(port=wport)
    dim = args.dim
    rng = np.random.default_rng(1)
    w.execute_command("VSET", "seed", "FP32", rng.standard_normal(dim).astype(np.float32).tobytes())
    w.execute_command("SAVE")  # the collection exists with a version
    follower, fport = start(args.bin, tmp / "follower",
                            [*store, "--read-only", "--follow-interval-ms", str(interval_ms)])
    stop = threading.Event()
    sent: dict[str, float] = {}  # probe key -> monotonic time of its +OK
    seen: dict[str, float] = {}
    lock = threading.Lock()

    def background():
        r = redis.Redis(port=wport)
        g = np.random.default_rng(2)
        vecs = g.standard_normal((64, dim)).astype(np.float32)
        i = 0
        period = 1.0 / args.rate
        next_t = time.monotonic()
        while not stop.is_set():
            r.execute_command("VSET", f"bg{i % 5000}", "FP32", vecs[i % 64].tobytes())
            i += 1
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))

    def probes():
        r = redis.Redis(port=wport)
        v = np.ones(dim, np.float32).tobytes()
        for n in range(args.probes):
            key = f"probe{n}"
            assert r.execute_command("VSET", key, "FP32", v) == b"OK"
            t = time.monotonic()
            with lock:
                sent[key] = t
            time.sleep(args.gap_ms / 1000.0 * (0.5 + np.random.random()))

    def poller():
        r = redis.Redis(port=fport)
        while not stop.is_set():
            with lock:
                pending = [k for k in sent if k not in seen]
            if pending:
                pipe = r.pipeline(transaction=False)
                for k in pending:
                    pipe.execute_command("VGET", k)
                replies = pipe.execute()
                now = time.monotonic()
                with lock:
                    for k, rep in zip(pending, replies):
                        if rep is not None:
                            seen[k] = now
            time.sleep(args.poll_ms / 1000.0)

    threads = [threading.Thread(target=f, daemon=True) for f in (background, poller)]
    for t in threads:
        t.start()
    pt = threading.Thread(target=probes)
    pt.start()
    pt.join()
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        with lock:
            if len(seen) == len(sent):
                break
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    info = redis.Redis(port=fport).info("replication")
    for p in (follower, writer):
        p.terminate()
        p.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)
    lags = [(seen[k] - sent[k]) * 1000.0 for k in sent if k in seen]
    return {"interval_ms": interval_ms, "probes": len(sent), "seen": len(lags),
            "p50_ms": pct(lags, 50), "p99_ms": pct(lags, 99),
            "max_ms": max(lags) if lags else float("nan"),
            "follow_version": info.get("follow_version")}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(REPO / "bin" / "vexlake-server"))
    ap.add_argument("--endpoint", default=os.environ.get("VL_S3_ENDPOINT", "http://127.0.0.1:8333"))
    ap.add_argument("--bucket", default="vexlake-test")
    ap.add_argument("--intervals", default="1000,100", help="--follow-interval-ms values")
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--gap-ms", type=float, default=100, help="mean time between probes")
    ap.add_argument("--rate", type=float, default=200, help="background writes per second")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--poll-ms", type=float, default=2)
    ap.add_argument("--flush-seconds", type=int, default=10,
                    help="the writer's automatic flush (what a follower that reads no WAL waits for)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds to wait for the last probes")
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "vexlake")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "vexlake-secret")
    print(f"# {' '.join(sys.argv)}")
    print(f"# bin={args.bin} rate={args.rate}/s gap={args.gap_ms}ms dim={args.dim} "
          f"writer --flush-seconds {args.flush_seconds}")
    print("| --follow-interval-ms | probes | seen | p50 ms | p99 ms | max ms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for iv in (int(x) for x in args.intervals.split(",")):
        r = measure(args, iv)
        print(f"| {iv} | {r['probes']} | {r['seen']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} "
              f"| {r['max_ms']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
