"""The local cache of lake objects (--cache-dir, --cache-size) in S3 mode,
against the real SeaweedFS scripts/run-tests.sh starts (never skipped).

What a node downloads is read from INFO's counters: s3_gets / s3_get_bytes
(requests the S3 store sent) and cache_hits / cache_misses / cache_bytes.
"""
from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from harness import fp32
from lakeutil import RawLoader, check_vectors, flip_byte, start_expect_failure
from test_s3_storage import s3args  # noqa: F401  (the fixture)


def info(r) -> dict:
    return r.info("persistence")


def load(srv, n=3000, dim=32, batches=3, seed=81):
    """n vectors in `batches` SAVEs (so as many segments); returns them."""
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    keys = [f"k{i}" for i in range(n)]
    loader = RawLoader(srv.port)
    r = srv.client()
    step = n // batches
    for b in range(batches):
        loader.put(keys[b * step:(b + 1) * step], vecs[b * step:(b + 1) * step])
        assert r.execute_command("SAVE") in (True, "OK")
    loader.close()
    return dict(zip(keys, vecs)), r


@pytest.mark.timeout(120)
def test_cold_start_fills_the_cache_and_warm_start_reads_no_segment(vexlake, s3args):
    a = vexlake(args=s3args, name="a")
    expected, r = load(a)
    segments = int(r.info("vectors")["segments"])
    assert segments == 3
    r.close()
    a.stop()

    b = vexlake(args=s3args, name="b")  # fresh --dir: an empty cache
    r = b.client()
    cold = info(r)
    objects = 2 * segments  # each SAVE made one segment and one manifest
    assert cold["cache_files"] == objects and cold["cache_misses"] == objects, cold
    # Each object was downloaded once (the start reads manifests twice: the
    # second time is a hit), plus the collection's descriptor.
    assert cold["s3_gets"] == objects + 1, cold
    copies = sorted((b.dir / "cache").rglob("*.parquet"))
    seg_bytes = sum(p.stat().st_size - 8 for p in copies)  # each copy has an 8-byte trailer
    assert len(copies) == segments and cold["s3_get_bytes"] >= seg_bytes
    check_vectors(r, expected)
    r.close()

    b.stop()
    b.start()  # same --dir: the cache is warm
    r = b.client()
    warm = info(r)
    assert warm["cache_misses"] == 0 and warm["cache_hits"] >= objects, warm
    assert warm["s3_gets"] == 1, warm  # only the descriptor, which may change
    check_vectors(r, expected)
    hits = r.execute_command("VSEARCH", "FP32", fp32(expected["k7"]), 1)
    assert hits[0] == "k7"
    r.close()


@pytest.mark.timeout(120)
def test_deleted_or_corrupt_cache_is_fetched_again(vexlake, s3args):
    a = vexlake(args=s3args, name="a")
    expected, r = load(a, n=1200, batches=2)
    r.close()
    cache = a.dir / "cache"
    copies = sorted(p for p in cache.rglob("*.parquet"))
    assert len(copies) == 2  # the writer's own SAVEs filled it
    a.stop()

    flip_byte(copies[0])
    a.start()
    r = a.client()
    st = info(r)
    assert st["cache_dropped_corrupt"] == 1 and st["cache_misses"] == 1, st
    check_vectors(r, expected)

    shutil.rmtree(cache)  # while it runs
    assert r.execute_command("VSET", "extra", "FP32", fp32(np.ones(32, np.float32))) == "OK"
    assert r.execute_command("SAVE") in (True, "OK")  # GC and the flush work without it
    r.close()
    a.stop()
    a.start()
    r = a.client()
    st = info(r)
    # The two segments went with the directory; the new segment and the
    # manifests were cached again by the SAVE (and its GC's reads).
    assert st["cache_dropped_corrupt"] == 0 and st["cache_misses"] == 2, st
    expected["extra"] = np.ones(32, np.float32)
    check_vectors(r, expected)
    r.close()


@pytest.mark.timeout(120)
def test_cache_size_zero_disables_and_cache_dir_moves_it(vexlake, s3args, tmp_path):
    a = vexlake(args=[*s3args, "--cache-size", "0"], name="a")
    expected, r = load(a, n=600, batches=1)
    st = info(r)
    assert st["cache_size"] == 0 and st["cache_files"] == 0
    assert not (a.dir / "cache").exists()
    r.close()
    a.stop()

    elsewhere = tmp_path / "elsewhere"
    b = vexlake(args=[*s3args, "--cache-dir", str(elsewhere), "--cache-size", "10mb"], name="b")
    r = b.client()
    st = info(r)
    assert st["cache_size"] == 10 * 1024 * 1024 and st["cache_files"] == 2  # segment, manifest
    assert list(elsewhere.rglob("*.parquet")) and not (b.dir / "cache").exists()
    check_vectors(r, expected)
    r.close()


def test_info_sends_no_store_request(vexlake, s3args):
    """INFO (and the log line after every background job) used to list the
    bucket twice for bytes_on_disk, on the event loop: slow on S3, and
    2 x --s3-timeout-ms of a frozen server while S3 was down."""
    a = vexlake(args=s3args, name="a")
    expected, r = load(a, n=600, batches=1)
    # Background work after the save (index build and its commit, removal
    # of covered WAL objects) talks to the store too: let it settle first.
    keys = ("s3_gets", "s3_lists", "s3_puts", "s3_other_requests")
    before, deadline = info(r), time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = info(r)
        if all(now[k] == before[k] for k in keys) and now.get("index_build_running", 0) == 0:
            break
        before = now
    before = info(r)
    for _ in range(3):
        vectors = r.info("vectors")
    after = info(r)
    for k in keys:
        assert after[k] == before[k], (k, before[k], after[k])
    segment = sorted((a.dir / "cache").rglob("*.parquet"))[0].stat().st_size - 8
    assert vectors["bytes_on_disk"] >= segment
    r.close()


def test_unusable_cache_dir_exits_naming_it(vexlake, s3args, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    srv = vexlake(args=[*s3args, "--cache-dir", str(blocker / "cache")], start=False)
    rc, out = start_expect_failure(srv)
    assert rc != 0 and str(blocker / "cache") in out, out


def test_second_server_on_one_cache_dir_is_refused(vexlake, s3args, tmp_path):
    shared = tmp_path / "shared-cache"
    a = vexlake(args=[*s3args, "--cache-dir", str(shared)], name="a")
    expected, r = load(a, n=600, batches=1)
    files = sorted(p.name for p in shared.rglob("*") if p.is_file())
    b = vexlake(args=[*s3args, "--cache-dir", str(shared), "--cache-size", "1"], name="b",
                start=False)
    rc, out = start_expect_failure(b)
    assert rc != 0 and f"cache {shared} is locked by another process (pid {a.proc.pid})" in out, out
    assert sorted(p.name for p in shared.rglob("*") if p.is_file()) == files  # nothing evicted
    check_vectors(r, expected)
    r.close()
