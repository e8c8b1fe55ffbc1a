"""
scale_startup.py - the start-up part of `make bench-scale` (bench/scale.sh).

    .venv/bin/python bench/scale_startup.py DIR [--server bin/vexlake-server]

DIR is a bench/scale_gen.c folder.  On a free loopback port, in a fresh
temporary --dir: start bin/vexlake-server (flushing only on SAVE, so the
collection becomes one segment), load every row of DIR/base.fvecs as
`VSET v<i> FP32 <blob>` with bin/vexlake-bench -mode=insert, SAVE, wait for
the background job that builds and stores the segment's index, stop.  Then start it twice more and
time, from the exec to the first reply, how long it takes to answer a
VSEARCH of the first query:

  1. with the index files present (the server loads them), and
  2. after deleting tables/*/indexes/* (the server scans the unindexed
     segment exactly and rebuilds its index in the background).

Each row of the report also gives INFO's index_loads / index_builds /
index_rebuilds / index_build_running right after that first answer, the
latency of one more VSEARCH, its recall@10 against the ground truth, and the
server's resident memory (VmRSS).
Prints Markdown.  Every server it starts is stopped before it returns.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import redis

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELDS = ("indexed_rows", "unindexed_rows", "index_loads", "index_builds", "index_rebuilds",
          "index_build_running")
CONNECTIONS, PIPELINE = 8, 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_records(path: str) -> tuple[int, list[bytes]]:
    """The records of a texmex file as raw little-endian value bytes."""
    with open(path, "rb") as f:
        data = f.read()
    (dim,) = struct.unpack_from("<i", data, 0)
    rec = 4 + 4 * dim
    return dim, [data[i + 4:i + rec] for i in range(0, len(data), rec)]


class Server:
    def __init__(self, binary: str, data_dir: str):
        self.binary, self.data_dir = binary, data_dir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    @property
    def args(self) -> list[str]:
        return [self.binary, "--port", str(self.port), "--dir", self.data_dir,
                "--metric", "cosine", "--appendfsync", "everysec", "--flush-rows", "0",
                "--flush-mb", "1048576", "--flush-seconds", "86400"]

    def start(self) -> None:
        self.started = time.monotonic()
        self.log = open(os.path.join(self.data_dir, "..", "server.log"), "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=3600, socket_connect_timeout=1)

    def first_answer(self, query: bytes, timeout: float) -> float:
        """Seconds from start() to the first VSEARCH reply that is not an error."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} (see server.log)")
            try:
                self.client().execute_command("VSEARCH", "FP32", query, 10)
                return time.monotonic() - self.started
            except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError):
                time.sleep(0.02)
        raise RuntimeError(f"no VSEARCH answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=600)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.log.close()


def load(bench: str, port: int, dataset: str) -> tuple[list[str], dict]:
    """VSET v<i> FP32 <row i> for every base row with bin/vexlake-bench;
    its command line and the fields of its result line."""
    cmd = [bench, "-mode=insert", f"-dataset={dataset}", f"-port={port}",
           f"-concurrency={CONNECTIONS}", f"-pipeline={PIPELINE}", "-key-prefix=v"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = [x for x in out.splitlines() if x.startswith("result ")][-1]
    return cmd, dict(f.split("=", 1) for f in line.split()[1:])


def counters(r: redis.Redis) -> dict:
    info = r.info("all")
    return {f: info.get(f, "n/a") for f in FIELDS}


def wait_indexed(r: redis.Redis, timeout: float, idle: float = 10) -> float:
    """Seconds until INFO shows no unindexed row (the background index job
    after a commit has stored its file); stops early once index_build_running
    has been 0 for `idle` seconds in a row (a server that builds no index)."""
    t0 = last_busy = time.monotonic()
    while time.monotonic() - t0 < timeout:
        info = r.info("all")
        if info.get("unindexed_rows", 0) == 0:
            break
        now = time.monotonic()
        if info.get("index_build_running", 0):
            last_busy = now
        elif now - last_busy > idle:
            break
        time.sleep(0.2)
    return time.monotonic() - t0


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def recall(reply: list, truth: list[int]) -> float:
    keys = [k.decode() if isinstance(k, bytes) else k for k in reply]
    want = {f"v{i}" for i in truth[:10]}
    return sum(k in want for k in keys) / 10


def timed_start(server: Server, query: bytes, truth: list[int], timeout: float) -> dict:
    server.start()
    try:
        first = server.first_answer(query, timeout)
        r = server.client()
        row = counters(r)
        t0 = time.monotonic()
        reply = r.execute_command("VSEARCH", "FP32", query, 10)
        row.update(first=first, latency=time.monotonic() - t0, recall=recall(reply, truth),
                   rss=rss_mib(server.proc.pid))
        return row
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("--server", default=os.path.join(REPO, "bin", "vexlake-server"))
    ap.add_argument("--bench", default=os.path.join(REPO, "bin", "vexlake-bench"))
    ap.add_argument("--timeout", type=float, default=3600, help="bound on each start-up (s)")
    a = ap.parse_args()

    _, queries = read_records(os.path.join(a.dataset, "query.fvecs"))
    _, gt = read_records(os.path.join(a.dataset, "groundtruth.ivecs"))
    truth = list(struct.unpack(f"<{len(gt[0]) // 4}i", gt[0]))

    work = tempfile.mkdtemp(prefix="vexlake-scale-", dir=os.environ.get("VL_SCALE_TMP"))
    data_dir = os.path.join(work, "data")
    os.mkdir(data_dir)
    server = Server(a.server, data_dir)
    try:
        server.start()
        server.first_answer(queries[0], 60)  # up and empty: an empty reply
        load_cmd, loaded = load(a.bench, server.port, a.dataset)
        r = server.client()
        t0 = time.monotonic()
        r.execute_command("SAVE")
        save_s = time.monotonic() - t0
        index_s = wait_indexed(r, a.timeout)
        save_rss = rss_mib(server.proc.pid)
        after_save = counters(r)
        server.stop()
        index_files = glob.glob(os.path.join(data_dir, "tables", "*", "indexes", "*"))
        index_bytes = sum(os.path.getsize(f) for f in index_files)

        with_index = timed_start(server, queries[0], truth, a.timeout)
        # listed again: a start may commit a new version and collect old files
        deleted = glob.glob(os.path.join(data_dir, "tables", "*", "indexes", "*"))
        for f in deleted:
            os.unlink(f)
        without_index = timed_start(server, queries[0], truth, a.timeout)
    except BaseException:
        if server.proc:
            server.stop()
        print(f"scale_startup: failed; the server's files and server.log are kept in {work}",
              file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)

    print("## Start-up of bin/vexlake-server\n")
    args = " ".join(server.args[1:]).replace(server.data_dir, "DIR")
    print(f"Server: `{args.replace(str(server.port), 'PORT', 1)}`.\n")
    n = int(loaded["ops"])
    load_cmd = (" ".join(load_cmd).replace(REPO + "/", "").replace(a.dataset, "DATA")
                .replace(str(server.port), "PORT"))
    print(f"Load: `{load_cmd}`: {n} VSETs with FP32 blobs in "
          f"{float(loaded['seconds']):.1f} s ({float(loaded['ops_per_sec']):.0f}/s).  SAVE (one segment): "
          f"{save_s:.1f} s, then {index_s:.1f} s until INFO showed no unindexed row (the "
          f"background index build; it gives up after 10 s without one), server resident {save_rss:.0f} MiB "
          f"({save_rss * 2**20 / n:.0f} B/vector); INFO after it: "
          + ", ".join(f"{k} {v}" for k, v in after_save.items())
          + f".  Index files: {len(index_files)}, {index_bytes / 2**20:.1f} MiB; "
          f"{len(deleted)} deleted before the second start.\n")
    print("| start | first VSEARCH answer (s) | next VSEARCH (ms) | recall@10 (query 0) | "
          "resident (MiB) | " + " | ".join(FIELDS) + " |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(FIELDS))
    for name, row in (("index files present", with_index),
                      ("index files deleted", without_index)):
        print(f"| {name} | {row['first']:.2f} | {row['latency'] * 1000:.1f} | "
              f"{row['recall']:.1f} | {row['rss']:.0f} | " + " | ".join(str(row[f]) for f in FIELDS) + " |")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
