"""INFO (Vectors) reports the memory of the default collection's indexes:
index_bytes, index_bytes_per_vector, index_vector_bytes (the float32
copies an index keeps) and vectors_bytes (the rows' vectors).  With SQ8
codes the HNSW keeps no float32 copy (it re-ranks from the rows in memory),
before and after a restart that loads its index file; hnsw none keeps one.
The memory an index build frees goes back to the system."""
import numpy as np
import pytest

from harness import fp32
from indexutil import save, vectors_info, vsearch, wait_for_index

ROWS, DIM = 1500, 64


def fill(r, seed=9):
    rng = np.random.default_rng(seed)
    p = r.pipeline(transaction=False)
    for i in range(ROWS):
        p.execute_command("VSET", f"k{i}", "FP32", fp32(rng.standard_normal(DIM).astype(np.float32)))
    p.execute()
    save(r)
    info = wait_for_index(r, 0, deadline_s=60)
    assert info["unindexed_rows"] == 0 and info["indexed_rows"] == ROWS, info
    return info


def check_counts(info):
    assert info["index_bytes"] > 0
    assert info["index_bytes_per_vector"] == pytest.approx(info["index_bytes"] / ROWS, abs=0.06)
    assert info["vectors_bytes"] >= ROWS * DIM * 4


@pytest.mark.timeout(120)
def test_hnsw_sq8_index_holds_codes_and_links_only(vexlake):
    srv = vexlake(["--index", "hnsw", "--quant", "sq8"])
    r = srv.client()
    info = fill(r)
    for state in ("built", "loaded"):
        check_counts(info)
        assert info["index_vector_bytes"] == 0, (state, info)
        # codes (dim) + scale and norm (8) + links: less than one float32 copy
        assert info["index_bytes_per_vector"] < 4 * DIM, (state, info)
        q = np.ones(DIM, dtype=np.float32)
        assert vsearch(r, q, 10) == vsearch(r, q, 10, "EXACT")
        if state == "built":
            assert srv.stop() == 0
            srv.start(["--index", "hnsw", "--quant", "sq8"])
            r = srv.client()
            info = wait_for_index(r, 0, deadline_s=60)
            assert info["index_loads"] >= 1 and info["index_builds"] == 0, info
    srv.assert_healthy()


@pytest.mark.timeout(120)
def test_hnsw_none_reports_its_float_copy(vexlake):
    srv = vexlake(["--index", "hnsw", "--quant", "none"])
    r = srv.client()
    info = fill(r)
    check_counts(info)
    assert info["index_vector_bytes"] == ROWS * DIM * 4, info
    assert info["index_bytes_per_vector"] > 4 * DIM, info


def test_flat_has_no_index_bytes(vexlake):
    srv = vexlake(["--index", "flat"])
    r = srv.client()
    info = vectors_info(r)
    assert info["index_bytes"] == 0 and info["index_vector_bytes"] == 0
    assert info["index_bytes_per_vector"] == 0 and info["vectors_bytes"] == 0


def vm_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


@pytest.mark.timeout(180)
def test_rss_after_a_build_is_its_steady_state(vexlake):
    """RSS above the empty server's right after an index build stays within
    1.3x of the RSS after a restart that loads the same index file: the
    segment the build read and its working memory are returned, not kept
    in the build thread's malloc arena (before: 2.4x here, and 2.1x for
    hnsw sq8 on debian-minilm, bench/results/2026-12-02-memory.md)."""
    flags = ["--metric", "l2", "--index", "ivf", "--quant", "sq8"]
    srv = vexlake(flags)
    empty = vm_rss(srv.proc.pid)
    r = srv.client()
    rng = np.random.default_rng(4)
    p = r.pipeline(transaction=False)
    for i in range(12000):
        p.execute_command("VSET", f"k{i}", "FP32", fp32(rng.standard_normal(256).astype(np.float32)))
        if i % 1000 == 999:
            p.execute()
    p.execute()
    save(r)
    assert wait_for_index(r, 0, deadline_s=120)["unindexed_rows"] == 0
    built = vm_rss(srv.proc.pid) - empty
    assert srv.stop() == 0
    srv.start(flags)
    r = srv.client()
    info = wait_for_index(r, 0, deadline_s=120)
    assert info["index_loads"] >= 1 and info["index_builds"] == 0, info
    loaded = vm_rss(srv.proc.pid) - empty
    assert built <= 1.3 * loaded, (built, loaded)
