"""S3 mode: does store I/O stall the event loop?  PING latency from other
clients while the server SAVEs (or BGSAVEs) against a slow store.

    scripts/seaweedfs.sh start
    AWS_ACCESS_KEY_ID=vexlake AWS_SECRET_ACCESS_KEY=vexlake-secret \\
      .venv/bin/python bench/s3_loop_stall.py [--delay-ms 200] [--rows 20000]

The server reaches SeaweedFS through tests/e2e/tcp_proxy.py, which holds
every answer of the store back by --delay-ms (requests reach the store at
once).  ROWS vectors of 128 dimensions are written and acknowledged (so the
WAL batches are stored), then one client sends the command while --pingers
clients each send PING in a loop, one at a time, until it has answered.
Printed per command: how long it took, and the PINGs' count, p50, p99 and
max latency while it ran.  With the store I/O off the loop, the PINGs stay
near their idle latency; on the loop, the slowest PING is about as long as
the command.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from harness import VexLakeServer  # noqa: E402
from lakeutil import RawLoader  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402

ENDPOINT = os.environ.get("VL_S3_ENDPOINT", "http://127.0.0.1:8333")


def pings_during(srv, command: str, pingers: int) -> tuple[float, list[float]]:
    done = threading.Event()
    lat: list[list[float]] = [[] for _ in range(pingers)]

    def ping(i):
        r = srv.client()
        while not done.is_set():
            t0 = time.perf_counter()
            r.ping()
            lat[i].append(time.perf_counter() - t0)
        r.close()

    threads = [threading.Thread(target=ping, args=(i,)) for i in range(pingers)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    r = srv.client(socket_timeout=300)
    t0 = time.perf_counter()
    r.execute_command(command)
    if command == "BGSAVE":  # until the background save has committed
        while int(r.info("persistence")["rdb_bgsave_in_progress"]):
            time.sleep(0.005)
    took = time.perf_counter() - t0
    done.set()
    for t in threads:
        t.join()
    r.close()
    return took, sorted(x for per in lat for x in per)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay-ms", type=float, default=200)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--pingers", type=int, default=4)
    ap.add_argument("--commands", default="SAVE,BGSAVE")
    a = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "vexlake")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "vexlake-secret")
    px = TcpProxy(int(ENDPOINT.rsplit(":", 1)[1])).start()
    tmp = tempfile.mkdtemp(prefix="vl-stall-")
    prefix = f"bench-stall-{uuid.uuid4().hex[:12]}"
    srv = VexLakeServer(Path(tmp) / "node", args=[
        "--storage", f"s3://vexlake-test/{prefix}", "--s3-endpoint", px.endpoint,
        "--index", "flat", "--metric", "l2"])
    srv.start()
    try:
        rng = np.random.default_rng(1)
        print(f"delay {a.delay_ms:.0f} ms per store answer, {a.rows} rows x 128 per command, "
              f"{a.pingers} PING clients")
        for n, command in enumerate(a.commands.split(",")):
            loader = RawLoader(srv.port)
            loader.put([f"k{n}-{i}" for i in range(a.rows)],
                       rng.standard_normal((a.rows, 128)).astype(np.float32), batch=1000)
            loader.close()
            px.set_mode("delay", seconds=a.delay_ms / 1000)
            took, lat = pings_during(srv, command, a.pingers)
            px.set_mode("pass")
            q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
            print(f"{command:7s} took {took * 1000:7.0f} ms; PINGs meanwhile: {len(lat)}, "
                  f"p50 {q(0.5):.2f} ms, p99 {q(0.99):.2f} ms, max {lat[-1] * 1000:.0f} ms")
            time.sleep(1.5)  # let the save's GC and WAL trimming finish before the next
    finally:
        srv.stop()
        px.stop()


if __name__ == "__main__":
    main()
