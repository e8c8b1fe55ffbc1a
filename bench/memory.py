"""bench/memory.py - bytes per vector of every index type, in process and in
the server, beside hnswlib's.

  .venv/bin/python bench/memory.py [--datasets DIR] [--only NAME,NAME]
      [--server-dataset NAME] [--baseline-server BIN [--baseline-label L]]
      [--skip-in-process] [--skip-server] [--out FILE]

1. In process, one thread, through the C API: bench/ann_bench.c (HNSW,
   float32 walk and SQ8 walk reading its re-rank rows from the caller's
   array, as the engine's row store serves them) and bench/ivf_bench.c
   (IVF none / sq8 / rabitq) print the bytes each index holds per vector;
   flat holds no index.  hnswlib (M 16, ef_construction 200, like ours) is
   built on the same rows and its index_file_size() taken: its vectors plus
   links, what it keeps in memory.  "index" is what the index holds;
   "+ rows" adds the 4 x dim float32 bytes of the row itself where the index
   re-ranks from rows kept outside it, so that column compares like with
   like against hnswlib, which has the vectors inside.
2. The server (bin/vexlake-server, and --baseline-server for another build,
   e.g. main's before a change): one dataset loaded over RESP, SAVE, the
   index built; RSS (VmRSS) above the empty server's, per vector, after the
   build and after a restart that loads the index files; INFO's index
   fields where the binary has them.

Writes markdown (tables and the command lines) to --out, default
bench/results/<UTC date>-memory.md, and prints it.
"""
import argparse
import datetime
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from ann import peers  # noqa: E402

SERVER_CONFIGS = [("flat", "none"), ("hnsw", "none"), ("hnsw", "sq8"), ("ivf", "none"),
                  ("ivf", "sq8"), ("ivf", "rabitq")]
INFO_FIELDS = ["index_bytes_per_vector", "index_vector_bytes", "vectors_bytes"]


def read_vecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    return raw.reshape(-1, raw[0] + 1)[:, 1:].view(np.float32).copy()


def metric_of(name):
    return "cosine" if "cosine" in name else "l2"


def kv(fields):
    if any("=" in f for f in fields):
        return dict(f.split("=", 1) for f in fields if "=" in f)
    return dict(zip(fields[0::2], fields[1::2]))


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return p.stdout


# ---- in process -------------------------------------------------------------

def in_process(path):
    name, metric = os.path.basename(path), metric_of(os.path.basename(path))
    dim = read_vecs(os.path.join(path, "query.fvecs")).shape[1]
    raw = 4 * dim
    row = {"flat": (0.0, raw)}
    cmds = [[os.path.join(ROOT, "build/rel/bench/ann_bench"), path, metric, str(peers.M),
             str(peers.EF_CONSTRUCTION), "64"],
            [os.path.join(ROOT, "build/rel/bench/ivf_bench"),
             f"-datasets={os.path.dirname(path)}", f"-only={name}", "-nprobe=1"]]
    for line in run(cmds[0]).splitlines():
        f = line.split()
        if f and f[0] == "build":
            b = float(kv(f[1:])["bytes_per_vector"])
            row["hnsw none"] = (b, b)  # the float32 walk keeps its own copy
        elif f and f[0] == "quant":
            b = float(kv(f[1:])["bytes_per_vector"])
            row["hnsw sq8"] = (b, b + raw)
    for line in run(cmds[1]).splitlines():
        f = line.split()
        if len(f) > 3 and f[0] == "build":
            b = float(kv(f[3:])["bytes_per_vector"])
            row["ivf " + f[2]] = (b, b if f[2] == "none" else b + raw)
    base = read_vecs(os.path.join(path, "base.fvecs"))
    p = peers.PEERS["hnswlib"]()
    p.build(peers.unit(base) if metric == "cosine" else base, metric, 0)
    hb = p.index_bytes() / len(base)
    row["hnswlib"] = (hb, hb)
    return name, dim, row, cmds


# ---- the server -------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Server:
    def __init__(self, binary, args, data_dir):
        self.binary, self.args, self.dir = binary, args, data_dir

    def start(self):
        self.port = free_port()
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--dir", self.dir,
                                      "--appendfsync", "no", *self.args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.r = redis.Redis(port=self.port, protocol=2)
        for _ in range(400):
            try:
                self.r.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.binary} did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=120)

    def settle(self, deadline_s=900):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            v = self.r.info("vectors")
            if v.get("index") == "flat" or (v["index_build_running"] == 0
                                            and v["unindexed_rows"] == 0):
                return v
            time.sleep(0.2)
        raise RuntimeError("index build did not finish")


def measure_server(binary, index, quant, path):
    base, queries = read_vecs(os.path.join(path, "base.fvecs")), read_vecs(
        os.path.join(path, "query.fvecs"))[:100]
    args = ["--metric", metric_of(os.path.basename(path)), "--index", index, "--quant", quant]
    with tempfile.TemporaryDirectory(prefix="vl-mem-") as d:
        s = Server(binary, args, d).start()
        empty = vm_rss(s.proc.pid)
        p = s.r.pipeline(transaction=False)
        for i, v in enumerate(base):
            p.execute_command("VSET", str(i), "FP32", v.tobytes())
            if i % 1000 == 999:
                p.execute()
        p.execute()
        s.r.execute_command("SAVE")
        out = {}
        for state in ("built", "loaded"):
            info = s.settle()
            for q in queries:
                s.r.execute_command("VSEARCH", "FP32", q.tobytes(), 10)
            out[state] = ((vm_rss(s.proc.pid) - empty) / len(base),
                          {f: info.get(f) for f in INFO_FIELDS})
            s.stop()
            if state == "built":
                s.start()
    return out


# ---- report -----------------------------------------------------------------

def fmt(x):
    return "-" if x is None else (f"{x:,.0f}" if isinstance(x, (int, float)) else str(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default=os.environ.get(
        "VL_DATASETS", os.path.join(ROOT, "..", "shared", "datasets")))
    ap.add_argument("--only", default="")
    ap.add_argument("--server-dataset", default="debian-minilm-384-cosine-20k")
    ap.add_argument("--server", default=os.path.join(ROOT, "bin", "vexlake-server"))
    ap.add_argument("--baseline-server", default="")
    ap.add_argument("--baseline-label", default="baseline")
    ap.add_argument("--skip-in-process", action="store_true")
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--out", default=os.path.join(
        ROOT, "bench", "results",
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d") + "-memory.md"))
    a = ap.parse_args()
    md = ["# Memory per vector by index type", "",
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}.", "",
          "Command: `" + " ".join(shlex.quote(x) for x in [".venv/bin/python", "bench/memory.py",
                                                            *sys.argv[1:]]) + "`", ""]
    if not a.skip_in_process:
        names = sorted(n for n in os.listdir(a.datasets)
                       if os.path.isfile(os.path.join(a.datasets, n, "base.fvecs")))
        if a.only:
            names = [n for n in names if any(o in n for o in a.only.split(","))]
        cols = ["flat", "hnsw none", "hnsw sq8", "ivf none", "ivf sq8", "ivf rabitq", "hnswlib"]
        md += ["## In process (C API, one thread), bytes per vector", "",
               "Each cell: what the index holds / with the float32 row (4 x dim) where the "
               "index re-ranks from rows kept outside it (VexLake keeps them once, in its row "
               "store; hnswlib and hnsw none hold them inside).", "",
               "| dataset | dim | " + " | ".join(cols) + " |",
               "|---|---|" + "---|" * len(cols)]
        cmds = []
        for n in names:
            name, dim, row, c = in_process(os.path.join(a.datasets, n))
            cmds += c
            md.append(f"| {name} | {dim} | " + " | ".join(
                f"{row[k][0]:.0f} / {row[k][1]:.0f}" if k in row else "-" for k in cols) + " |")
            print(md[-1], flush=True)
        md += ["", "hnswlib " + peers.Hnswlib().version + "; commands:", ""]
        md += ["    " + " ".join(shlex.quote(x) for x in c) for c in cmds] + [""]
    path = os.path.join(a.datasets, a.server_dataset)
    servers = [] if a.skip_server else [("this tree", a.server, SERVER_CONFIGS)]
    if a.baseline_server and not a.skip_server:
        servers.insert(0, (a.baseline_label, a.baseline_server, [("hnsw", "none"), ("hnsw", "sq8")]))
    md += [f"## The server, {a.server_dataset} loaded over RESP", "",
           "RSS (VmRSS) above the empty server's, per vector: after SAVE and the index build, "
           "and after a restart that loads the segment and its index file; INFO (Vectors) "
           "fields after the restart.", "",
           "| build | index | RSS/vector built | RSS/vector loaded | " +
           " | ".join(INFO_FIELDS) + " |", "|---|---|---|---|" + "---|" * len(INFO_FIELDS)]
    for label, binary, configs in servers:
        for index, quant in configs:
            m = measure_server(binary, index, quant, path)
            info = m["loaded"][1]
            md.append(f"| {label} | {index} {quant} | {m['built'][0]:,.0f} | "
                      f"{m['loaded'][0]:,.0f} | " +
                      " | ".join(fmt(info.get(f)) for f in INFO_FIELDS) + " |")
            print(md[-1], flush=True)
    md.append("")
    with open(a.out, "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    print(f"memory: written to {a.out}")


if __name__ == "__main__":
    main()
