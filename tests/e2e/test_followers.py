"""Read-only followers (--read-only) on the real SeaweedFS that
scripts/run-tests.sh starts (S3 on 127.0.0.1:8333, bucket vexlake-test),
each test under its own bucket prefix.

A follower serves the newest committed version of the writer's bucket and
follows new commits every --follow-interval-ms; writes to it get Redis'
-READONLY reply.  Convergence is waited for (bounded), never timed.
"""
from __future__ import annotations

import os
import threading
import time
import uuid

import numpy as np
import pytest
import redis

from harness import RespError, fp32
from lakeutil import start_expect_failure

ENDPOINT = os.environ.get("VL_S3_ENDPOINT", "http://127.0.0.1:8333")
BUCKET = "vexlake-test"
READONLY = "You can't write against a read only replica."
DIM = 16


@pytest.fixture
def s3args(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "vexlake")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "vexlake-secret")
    prefix = f"e2e-follow-{uuid.uuid4().hex[:12]}"
    return ["--storage", f"s3://{BUCKET}/{prefix}", "--s3-endpoint", ENDPOINT, "--metric", "l2"]


def follower_args(s3args):
    return [*s3args, "--read-only", "--follow-interval-ms", "200"]


def info(srv) -> dict:
    r = srv.client()
    try:
        return r.info("all")
    finally:
        r.close()


def version(srv) -> int:
    return int(info(srv)["version"])


def wait_for_version(srv, want: int, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = info(srv)
        if int(got["follow_version"]) >= want:
            return
        time.sleep(0.05)
    pytest.fail(f"follower stayed at version {got['follow_version']}, wanted {want}\n"
                f"{srv.log_tail()}")


def state(srv, keys, queries):
    """(VGET of every key, EXACT VSEARCH WITHSCORES of every query, DBSIZE)."""
    r = srv.client(decode=False)
    try:
        gets = [r.execute_command("VGET", k) for k in keys]
        hits = [r.execute_command("VSEARCH", "FP32", fp32(q), 10, "EXACT", "WITHSCORES")
                for q in queries]
        return gets, hits, r.execute_command("DBSIZE")
    finally:
        r.close()


def load(writer, rng, n_keys, rounds, stop_readers):
    """Overwrites and deletes over n_keys keys from two clients."""
    def one(seed):
        g = np.random.default_rng(seed)
        r = writer.client(decode=False)
        for _ in range(rounds):
            k = f"k{g.integers(n_keys)}"
            if g.random() < 0.15:
                r.execute_command("VDEL", k)
            else:
                v = g.standard_normal(DIM).astype(np.float32)
                assert r.execute_command("VSET", k, "FP32", fp32(v)) == b"OK"
        r.close()
    ts = [threading.Thread(target=one, args=(int(rng.integers(1 << 30)),)) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stop_readers.set()


def read_while(srv, stop, errors):
    """Searches and gets on a follower until stop; any failure is kept."""
    r = srv.client(decode=False)
    q = fp32(np.ones(DIM, np.float32))
    try:
        while not stop.is_set():
            r.execute_command("VSEARCH", "FP32", q, 5)
            r.execute_command("VGET", "k1")
    except redis.ResponseError as e:
        if "not found" not in str(e).lower() and "no such" not in str(e).lower():
            errors.append(repr(e))
    except Exception as e:  # noqa: BLE001 - reported by the test
        errors.append(repr(e))
    finally:
        r.close()


@pytest.mark.timeout(240)
def test_two_followers_converge_under_load_and_outlive_the_writer(vexlake, s3args):
    rng = np.random.default_rng(81)
    writer = vexlake(args=[*s3args, "--flush-rows", "300", "--compact-segments", "3"],
                     name="writer")
    r = writer.client(decode=False)
    for i in range(500):
        assert r.execute_command("VSET", f"k{i}", "FP32",
                                 fp32(rng.standard_normal(DIM).astype(np.float32))) == b"OK"
    assert r.execute_command("SAVE") is True
    f1 = vexlake(args=follower_args(s3args), name="f1")
    f2 = vexlake(args=follower_args(s3args), name="f2")
    assert int(info(f1)["follow_version"]) >= 1  # served from the start

    stop, errors = threading.Event(), []
    readers = [threading.Thread(target=read_while, args=(f, stop, errors)) for f in (f1, f2)]
    for t in readers:
        t.start()
    load(writer, rng, 500, 1500, stop)  # automatic flushes and compactions commit meanwhile
    for t in readers:
        t.join()
    assert errors == []
    assert r.execute_command("SAVE") is True
    want = version(writer)
    assert want > 2

    keys = [f"k{i}" for i in range(500)]
    queries = rng.standard_normal((20, DIM)).astype(np.float32)
    expected = state(writer, keys, queries)
    for f in (f1, f2):
        wait_for_version(f, want)
        assert state(f, keys, queries) == expected

    writer.kill9()
    time.sleep(0.5)  # a few follow intervals without a writer
    for f in (f1, f2):
        f.assert_healthy()
        assert state(f, keys, queries) == expected
        assert int(info(f)["follow_version"]) >= want  # a compaction may have followed SAVE
    r.close()


def test_writes_to_a_follower_get_readonly_and_info_shows_the_role(vexlake, s3args):
    writer = vexlake(args=s3args, name="writer")
    r = writer.client(decode=False)
    assert r.execute_command("VSET", "a", "FP32", fp32(np.ones(DIM, np.float32))) == b"OK"
    assert r.execute_command("SAVE") is True
    f = vexlake(args=follower_args(s3args), name="f")
    raw = f.raw()
    for cmd in (("VSET", "b", "FP32", fp32(np.zeros(DIM, np.float32))), ("VDEL", "a"),
                ("CLEAR",)):
        reply = raw.command(*cmd)
        assert isinstance(reply, RespError) and reply == f"READONLY {READONLY}", reply
    raw.close()
    # nothing changed, on the follower or in the store
    fr = f.client(decode=False)
    assert fr.execute_command("DBSIZE") == 1
    assert r.execute_command("DBSIZE") == 1

    fi, wi = info(f), info(writer)
    assert fi["role"] == "follower" and wi["role"] == "writer"
    assert int(fi["follow_version"]) == version(writer) == 1
    assert int(fi["follow_lag_ms"]) >= 0
    assert "follow_version" not in wi
    fr.close()
    r.close()


def test_follower_on_an_empty_bucket_picks_up_the_first_collection(vexlake, s3args):
    f = vexlake(args=follower_args(s3args), name="f")
    assert int(info(f)["follow_version"]) == 0
    writer = vexlake(args=s3args, name="writer")
    r = writer.client(decode=False)
    v = np.arange(DIM, dtype=np.float32)
    assert r.execute_command("VSET", "x", "FP32", fp32(v)) == b"OK"
    assert r.execute_command("SAVE") is True
    wait_for_version(f, 1)
    fr = f.client(decode=False)
    assert fr.execute_command("VGET", "x") == r.execute_command("VGET", "x")
    assert fr.execute_command("DBSIZE") == 1
    fr.close()
    r.close()


def test_read_only_needs_storage(vexlake):
    srv = vexlake(args=["--read-only"], start=False)
    rc, out = start_expect_failure(srv)
    assert rc == 2 and "--read-only needs --storage" in out, out
