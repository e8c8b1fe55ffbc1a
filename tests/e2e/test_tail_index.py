"""Tail indexes over RESP (--tail-index-rows, src/core/tail_index.h): rows
no segment index covers yet are indexed in memory in pieces, INFO counts
them (tail_indexes, tail_indexed_rows, ...), unindexed_rows stays below a
piece, and a default VSEARCH still returns what EXACT returns, also right
after overwrites and deletes (an acknowledged write is visible to the next
search).  Pieces of 64 rows: the default beam walks every row of one."""
import subprocess
import time

import numpy as np
import pytest

from harness import fp32, free_port, server_binary
from indexutil import reference, vectors_info, vsearch

TAIL_FIELDS = ["tail_indexes", "tail_indexed_rows", "tail_index_bytes", "tail_index_builds",
               "tail_index_build_running"]


def wait_for_pieces(r, max_unindexed, deadline_s=60):
    end = time.monotonic() + deadline_s
    while True:
        info = vectors_info(r)
        if (info["tail_index_build_running"] == 0 and info["unindexed_rows"] <= max_unindexed) \
                or time.monotonic() > end:
            return info
        time.sleep(0.05)


def test_tail_index_rows_flag():
    p = subprocess.run([str(server_binary()), "--help"], capture_output=True, text=True,
                       timeout=10)
    assert "--tail-index-rows N" in p.stdout
    for bad in ("65537", "-1", "many"):
        p = subprocess.run([str(server_binary()), "--port", str(free_port()), "--dir",
                            "/nonexistent/never", "--tail-index-rows", bad],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, (bad, p.stderr)
        assert "--tail-index-rows wants a number from 0 to 65536" in p.stderr


@pytest.mark.timeout(120)
def test_pieces_bound_the_exact_scan_and_search_stays_exact(vexlake):
    srv = vexlake(["--metric", "l2", "--tail-index-rows", "64"])
    r = srv.client()
    rng = np.random.default_rng(11)
    rows = {f"k{i}": rng.standard_normal(12).astype(np.float32) for i in range(2000)}
    p = r.pipeline(transaction=False)
    for key, v in rows.items():
        p.execute_command("VSET", key, "FP32", fp32(v))
    p.execute()
    info = wait_for_pieces(r, 63)
    for f in TAIL_FIELDS:
        assert isinstance(info[f], int) and info[f] >= 0, (f, info)
    assert info["unindexed_rows"] <= 63, info  # 2000 = 31 pieces of 64 + 16 waiting
    assert info["tail_indexes"] == 31 and info["tail_indexed_rows"] == 31 * 64, info
    assert info["tail_index_builds"] >= 31 and info["tail_index_bytes"] > 0, info
    assert info["indexed_rows"] == 0, info  # nothing saved: no segment index

    def check(n):
        for _ in range(n):
            q = rng.standard_normal(12).astype(np.float32)
            want = reference(rows, q, "l2", 10)
            assert [k for k, _ in vsearch(r, q, 10, "EXACT")] == [k for k, _ in want]
            assert [k for k, _ in vsearch(r, q, 10)] == [k for k, _ in want]

    check(20)
    for i in range(0, 300, 3):  # rows already in pieces: overwritten, then deleted
        key = f"k{i}"
        rows[key] = rng.standard_normal(12).astype(np.float32)
        r.execute_command("VSET", key, "FP32", fp32(rows[key]))
        q = rows[key]  # the next search finds the new vector
        assert vsearch(r, q, 1, withscores=False) == [key]
    for i in range(1, 300, 3):
        del rows[f"k{i}"]
        r.execute_command("VDEL", f"k{i}")
    check(20)
    info = wait_for_pieces(r, 63)
    assert info["unindexed_rows"] <= 63, info
    check(20)
    srv.assert_healthy()
