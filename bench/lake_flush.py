"""Lake benchmark: flush throughput, cold start and on-disk size.

Loads the Fashion-MNIST base set (15,000 x 784 float32) COPIES times under
different keys, then times a synchronous SAVE (writing one Parquet segment
plus manifest), restarts the server and times how long it takes until it
answers (open manifest + read, verify and decode the segment + build the
in-memory store).  The same vectors are written and read with pyarrow
(zstd, same schema) in the same run, as the peer.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = os.environ.get("VL_DATASETS", os.path.join(ROOT, "..", "shared", "datasets"))
COPIES = int(os.environ.get("COPIES", "7"))


def read_vecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(datadir, port):
    proc = subprocess.Popen([os.path.join(ROOT, "bin", "vexlake-server"), "--port", str(port),
                             "--dir", datadir, "--metric", "l2", "--appendfsync", "no",
                             "--flush-rows", "0", "--flush-mb", "0", "--flush-seconds", "0"],
                            stderr=subprocess.DEVNULL)
    r = redis.Redis(port=port, protocol=2)
    t0 = time.perf_counter()
    while True:
        try:
            r.ping()
            return proc, r, time.perf_counter() - t0
        except redis.ConnectionError:
            if time.perf_counter() - t0 > 120:
                raise
            time.sleep(0.005)


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    base_path = os.path.join(DATASETS, "fashion-mnist-784-euclidean-15k", "base.fvecs")
    if not os.path.exists(base_path):
        print("lake: fashion-mnist dataset missing, skipped")
        return
    base = read_vecs(base_path)
    n, dim = len(base) * COPIES, base.shape[1]
    raw_bytes = n * dim * 4
    tmp = tempfile.mkdtemp(prefix="vl-bench-")
    try:
        port = free_port()
        proc, r, _ = start(os.path.join(tmp, "data"), port)
        pipe = r.pipeline(transaction=False)
        for c in range(COPIES):
            for i, v in enumerate(base):
                pipe.execute_command("VSET", f"c{c}:{i}", "FP32", v.tobytes())
                if i % 1000 == 999:
                    pipe.execute()
            pipe.execute()
        t = time.perf_counter()
        r.execute_command("SAVE")
        save_s = time.perf_counter() - t
        seg_dir = os.path.join(tmp, "data", "tables", "default", "segments")
        seg_bytes = du(seg_dir)
        proc.terminate()
        proc.wait(30)
        proc, r, cold_s = start(os.path.join(tmp, "data"), port)
        loaded = r.dbsize()
        proc.terminate()
        proc.wait(30)

        keys = pa.array([f"c{c}:{i}" for c in range(COPIES) for i in range(len(base))])
        vecs = np.tile(base, (COPIES, 1))
        table = pa.table({"key": keys,
                          "vector": pa.ListArray.from_arrays(
                              pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32)),
                              pa.array(vecs.reshape(-1))),
                          "seq": pa.array(np.arange(1, n + 1, dtype=np.int64))})
        peer_file = os.path.join(tmp, "peer.parquet")
        t = time.perf_counter()
        pq.write_table(table, peer_file, compression="zstd", use_dictionary=False)
        peer_write_s = time.perf_counter() - t
        t = time.perf_counter()
        pq.read_table(peer_file)
        peer_read_s = time.perf_counter() - t
        peer_bytes = os.path.getsize(peer_file)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    mb = raw_bytes / 2**20
    print(f"lake: fashion-mnist x{COPIES} = {n} vectors x {dim}-d ({mb:.0f} MiB of float32)")
    print(f"  flush (SAVE)      {save_s:6.2f} s  {mb / save_s:7.1f} MiB/s  {n / save_s:9.0f} vectors/s")
    print(f"  pyarrow write     {peer_write_s:6.2f} s  {mb / peer_write_s:7.1f} MiB/s  (zstd, same schema)"
          f"   ratio vexlake/pyarrow time: {save_s / peer_write_s:.2f}")
    print(f"  cold start        {cold_s:6.2f} s  ({loaded} vectors loaded and searchable)")
    print(f"  pyarrow read      {peer_read_s:6.2f} s  (decode only)   "
          f"ratio vexlake start/pyarrow read: {cold_s / peer_read_s:.2f}")
    print(f"  on disk           {seg_bytes / 2**20:7.1f} MiB segment = {seg_bytes / raw_bytes:.3f} x raw"
          f" float32;  pyarrow zstd file {peer_bytes / raw_bytes:.3f} x raw")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
