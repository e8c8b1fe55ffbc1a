"""
scale_startup.py - the start-up part of `make bench-scale` (bench/scale.sh).

    .venv/bin/python bench/scale_startup.py DIR [--server bin/vexlake-server]
        [--index hnsw|ivf] [--cache PATH] [--wait-rebuild]
        [--compare OTHER-SERVER [--names A,B] [--rounds N]]

DIR is a bench/scale_gen.c folder.

Build (once per data set and index type, then cached): on a free loopback
port, in a fresh --dir, bin/vexlake-server (flushing only on SAVE, so the
collection becomes one segment) gets every row of DIR/base.fvecs as
`VSET v<i> FP32 <blob>` from bin/vexlake-bench -mode=insert, a SAVE, and the
background job that builds and stores the segment's index; then it stops.
That build is the expensive part (about 550 s of CPU for HNSW at 1M x 384),
so the stopped server's whole --dir is kept in the cache folder (default
DIR/server-<index>, i.e. under ~/.cache/vexlake/scale/, outside the
repository) with build.json, the figures of the build.  A later run whose
build.json matches the server flags reuses it; a cache that a newer server
can no longer load shows up as index_rebuilds > 0 in the report (delete the
folder to build again).

Start-up, twice, each from a fresh copy of the cached --dir (so the page
cache holds the files: these are warm starts):
  1. with the index files present (the server loads them), and
  2. after deleting tables/*/indexes/* (the server scans the unindexed
     segment exactly and rebuilds its index in the background).
Timed from the exec: the first PONG (with the CPU seconds the server used
until then: the wall time depends on the machine's load), the first VSEARCH reply (of the first
query), and the first VSEARCH answered while INFO shows every row indexed
(for 2 only with --wait-rebuild: that is the whole build again).  Each row
also gives INFO's index counters right after the first answer, one more
VSEARCH's latency and recall@10, and the server's resident memory (VmRSS).
Prints Markdown.  Every server it starts is stopped before it returns.

--compare OTHER-SERVER: a second server binary (e.g. an older commit's,
built in a separate clone) timed on the same cached --dir, interleaved with
--server: each round starts both, for each kind of start, and the one that
goes first alternates (round 0: --server first with the index files, OTHER
first without them; round 1 the other way round ...), so a load that
drifts during the run falls on both.  --rounds N (default 1) repeats that;
the ratio table divides --server's median over the rounds by OTHER's, per
kind of start.  The cache is built by --server when missing: both binaries
must read the same files (a cache the other cannot load shows as its
index_rebuilds > 0).  --names A,B labels the two in the tables.
"""
from __future__ import annotations

import argparse
import glob
import json
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
CACHE_VERSION = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_records(path: str, count: int) -> list[bytes]:
    """The first `count` records of a texmex file as raw little-endian value bytes."""
    with open(path, "rb") as f:
        (dim,) = struct.unpack("<i", f.read(4))
        f.seek(0)
        rec = 4 + 4 * dim
        data = f.read(rec * count)
    return [data[i + 4:i + rec] for i in range(0, len(data), rec)]


def git_head() -> str:
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Server:
    def __init__(self, binary: str, data_dir: str, index: str):
        self.binary, self.data_dir, self.index = binary, data_dir, index
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    @property
    def flags(self) -> list[str]:
        """The flags that shape what is stored (the cache key), without port and dir."""
        return ["--metric", "cosine", "--appendfsync", "everysec", "--flush-rows", "0",
                "--flush-mb", "1048576", "--flush-seconds", "86400", "--index", self.index]

    @property
    def args(self) -> list[str]:
        return [self.binary, "--port", str(self.port), "--dir", self.data_dir] + self.flags

    def start(self) -> None:
        self.port = free_port()
        self.log = open(os.path.join(self.data_dir, "..", "server.log"), "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=3600, socket_connect_timeout=1)

    def poll(self, what: str, call, timeout: float) -> float:
        """Seconds from start() until call(client) returns true without error."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} (see server.log)")
            try:
                if call(self.client()):
                    return time.monotonic() - self.started
            except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"no {what} within {timeout:.0f} s")

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


def all_indexed(r: redis.Redis) -> bool:
    info = r.info("all")
    return info.get("unindexed_rows", 1) == 0 and info.get("indexed_rows", 0) > 0


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


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def recall(reply: list, truth: list[int]) -> float:
    keys = [k.decode() if isinstance(k, bytes) else k for k in reply]
    want = {f"v{i}" for i in truth[:10]}
    return sum(k in want for k in keys) / 10


def build(server: Server, a, cache: str, work: str) -> dict:
    """Loads, saves and indexes the data set in server.data_dir, stops the
    server and moves its --dir to `cache` with build.json; the figures."""
    server.start()
    server.poll("empty VSEARCH reply", lambda r: r.ping(), 60)
    load_cmd, loaded = load(a.bench, server.port, a.dataset)
    r = server.client()
    t0 = time.monotonic()
    r.execute_command("SAVE")
    save_s = time.monotonic() - t0
    index_s = wait_indexed(r, a.timeout)
    rss = rss_mib(server.proc.pid)
    after = counters(r)
    server.stop()
    files = glob.glob(os.path.join(server.data_dir, "tables", "*", "indexes", "*"))
    load_cmd = (" ".join(load_cmd).replace(REPO + "/", "").replace(a.dataset, "DATA")
                .replace(str(server.port), "PORT"))
    fig = {"version": CACHE_VERSION, "flags": server.flags, "commit": git_head(),
           "made": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_cmd": load_cmd,
           "rows": int(loaded["ops"]), "load_s": float(loaded["seconds"]),
           "load_rate": float(loaded["ops_per_sec"]), "save_s": save_s, "index_s": index_s,
           "rss_mib": rss, "after": after, "index_files": len(files),
           "index_bytes": sum(os.path.getsize(f) for f in files)}
    with open(os.path.join(server.data_dir, "..", "build.json"), "w") as f:
        json.dump(fig, f, indent=1)
    os.makedirs(os.path.dirname(cache) or ".", exist_ok=True)
    staged = cache + ".partial"
    shutil.rmtree(staged, ignore_errors=True)
    os.mkdir(staged)
    shutil.move(server.data_dir, os.path.join(staged, "data"))
    shutil.move(os.path.join(work, "build.json"), os.path.join(staged, "build.json"))
    os.rename(staged, cache)
    return fig


def cached(cache: str, flags: list[str]) -> dict | None:
    try:
        with open(os.path.join(cache, "build.json")) as f:
            fig = json.load(f)
    except (OSError, ValueError):
        return None
    return fig if fig.get("version") == CACHE_VERSION and fig.get("flags") == flags else None


def timed_start(server: Server, cache: str, drop_indexes: bool, query: bytes, truth: list[int],
                a) -> dict:
    shutil.rmtree(server.data_dir, ignore_errors=True)
    shutil.copytree(os.path.join(cache, "data"), server.data_dir)
    dropped = glob.glob(os.path.join(server.data_dir, "tables", "*", "indexes", "*"))
    if drop_indexes:
        for f in dropped:
            os.unlink(f)
    server.start()
    try:
        row = {"dropped": len(dropped) if drop_indexes else 0}
        row["pong"] = server.poll("PONG", lambda r: r.ping(), a.timeout)
        row["pong_cpu"] = cpu_s(server.proc.pid)
        row["first"] = server.poll(
            "VSEARCH answer", lambda r: r.execute_command("VSEARCH", "FP32", query, 10) is not None,
            a.timeout)
        r = server.client()
        row.update(counters(r))
        row["rss"] = rss_mib(server.proc.pid)
        t0 = time.monotonic()
        reply = r.execute_command("VSEARCH", "FP32", query, 10)
        row.update(latency=time.monotonic() - t0, recall=recall(reply, truth))
        row["indexed"] = None
        if not drop_indexes or a.wait_rebuild:
            row["indexed"] = server.poll(
                "VSEARCH with every row indexed",
                lambda r: all_indexed(r) and r.execute_command("VSEARCH", "FP32", query, 10),
                a.timeout)
        return row
    finally:
        server.stop()


STARTS = (("index files present", False), ("index files deleted", True))
RATIOS = (("first PONG", "pong"), ("server CPU until then", "pong_cpu"),
          ("first VSEARCH answer", "first"), ("resident memory", "rss"))


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def interleaved_starts(servers: list[tuple[str, Server]], cache: str, query: bytes,
                       truth: list[int], a) -> list[tuple[str, str, dict]]:
    """(server name, start name, row) of every start: each round, each kind of
    start, every server once, the first one alternating."""
    out = []
    for rnd in range(a.rounds):
        for k, (start, drop) in enumerate(STARTS):
            order = servers if (rnd + k) % 2 == 0 else servers[::-1]
            for name, server in order:
                out.append((name, start, timed_start(server, cache, drop, query, truth, a)))
    return out


def print_ratios(rows: list[tuple[str, str, dict]], names: list[str]) -> None:
    print(f"Ratios {names[0]} / {names[1]} (medians over the rounds; below 1: {names[0]} "
          "is faster or smaller):\n")
    print("| start | " + " | ".join(label for label, _ in RATIOS) + " |")
    print("|---|" + "---:|" * len(RATIOS))
    for start, _ in STARTS:
        cells = []
        for _, key in RATIOS:
            med = [median([row[key] for name, st, row in rows if name == n and st == start])
                   for n in names]
            cells.append(f"{med[0] / med[1]:.2f}x ({med[0]:.2f} / {med[1]:.2f})" if med[1] else "-")
        print(f"| {start} | " + " | ".join(cells) + " |")
    print()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("--server", default=os.path.join(REPO, "bin", "vexlake-server"))
    ap.add_argument("--bench", default=os.path.join(REPO, "bin", "vexlake-bench"))
    ap.add_argument("--index", default="hnsw", choices=("hnsw", "ivf"))
    ap.add_argument("--cache", help="cached build folder (default DATASET/server-INDEX)")
    ap.add_argument("--wait-rebuild", action="store_true",
                    help="after deleting the index files, also wait for the rebuild")
    ap.add_argument("--timeout", type=float, default=7200, help="bound on each wait (s)")
    ap.add_argument("--compare", help="a second server binary, timed interleaved with --server")
    ap.add_argument("--names", help="labels of --server and --compare, comma-separated")
    ap.add_argument("--rounds", type=int, default=1, help="starts of each kind per server")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    names = a.names.split(",") if a.names else [a.server] + ([a.compare] if a.compare else [])
    if len(names) != (2 if a.compare else 1):
        ap.error("--names takes one name per server (two with --compare)")
    a.dataset = os.path.abspath(a.dataset)
    cache = os.path.abspath(a.cache or os.path.join(a.dataset, f"server-{a.index}"))

    query = read_records(os.path.join(a.dataset, "query.fvecs"), 1)[0]
    gt = read_records(os.path.join(a.dataset, "groundtruth.ivecs"), 1)[0]
    truth = list(struct.unpack(f"<{len(gt) // 4}i", gt))

    work = tempfile.mkdtemp(prefix="vexlake-scale-", dir=os.environ.get("VL_SCALE_TMP"))
    data_dir = os.path.join(work, "data")
    os.mkdir(data_dir)
    server = Server(a.server, data_dir, a.index)
    servers = [(names[0], server)]
    if a.compare:
        servers.append((names[1], Server(a.compare, data_dir, a.index)))
    try:
        fig = cached(cache, server.flags)
        reused = fig is not None
        if not reused:
            shutil.rmtree(cache, ignore_errors=True)
            fig = build(server, a, cache, work)
        rows = interleaved_starts(servers, cache, query, truth, a)
    except BaseException:
        for _, srv in servers:
            if srv.proc:
                srv.stop()
        print(f"scale_startup: failed; the server's files and server.log are kept in {work}",
              file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)

    print(f"## Start-up of bin/vexlake-server (--index {a.index})\n")
    print(f"Server: `--port PORT --dir DIR {' '.join(server.flags)}`, built at {git_head()}.\n")
    if a.compare:
        print(f"Compared, interleaved, {a.rounds} round(s): {names[0]} = `{a.server}`, "
              f"{names[1]} = `{a.compare}`.\n")
    n = fig["rows"]
    how = (f"reused from the cache `{cache}` (built {fig['made']} by {fig['commit']})" if reused
           else f"built now and cached in `{cache}`")
    print(f"Build ({how}): `{fig['load_cmd']}`: {n} VSETs with FP32 blobs in "
          f"{fig['load_s']:.1f} s ({fig['load_rate']:.0f}/s).  SAVE (one segment): "
          f"{fig['save_s']:.1f} s, then {fig['index_s']:.1f} s until INFO showed no unindexed row "
          f"(the background index build), server resident {fig['rss_mib']:.0f} MiB "
          f"({fig['rss_mib'] * 2**20 / n:.0f} B/vector); INFO after it: "
          + ", ".join(f"{k} {v}" for k, v in fig["after"].items())
          + f".  Index files: {fig['index_files']}, {fig['index_bytes'] / 2**20:.1f} MiB.\n")
    print("Each start copies the cached --dir to a fresh folder first (warm page cache). "
          "Times are seconds from the exec.\n")
    lead = "| server " if a.compare else ""
    print(lead + "| start | first PONG (s) | server CPU until then (s) | first VSEARCH answer (s) "
          "| VSEARCH with every row indexed (s) | next VSEARCH (ms) | recall@10 (query 0) "
          "| resident (MiB) | " + " | ".join(FIELDS) + " |")
    print(("|---" if a.compare else "") + "|---|---:|---:|---:|---:|---:|---:|---:|"
          + "---:|" * len(FIELDS))
    for who, start, row in rows:
        if row["dropped"]:
            start += f" ({row['dropped']} deleted)"
        idx = "not waited" if row["indexed"] is None else f"{row['indexed']:.2f}"
        print((f"| {who} " if a.compare else "")
              + f"| {start} | {row['pong']:.2f} | {row['pong_cpu']:.2f} | {row['first']:.2f} | "
              f"{idx} | {row['latency'] * 1000:.1f} | {row['recall']:.1f} | {row['rss']:.0f} | "
              + " | ".join(str(row[f]) for f in FIELDS) + " |")
    print()
    if a.compare:
        print_ratios(rows, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
