"""--storage s3://bucket/prefix against the real SeaweedFS that
scripts/run-tests.sh starts (scripts/seaweedfs.sh: S3 on 127.0.0.1:8333,
bucket vexlake-test).  Never skipped: without SeaweedFS these fail.

Descriptors, segments, manifests and the WAL go to the bucket, so what
SAVE committed survives losing --dir entirely; a fresh node on the same
bucket serves it (test_s3_wal.py covers writes not yet in a version).
"""
from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from harness import fp32, parse_vec_text, same_bits
from lakeutil import start_expect_failure

ENDPOINT = os.environ.get("VL_S3_ENDPOINT", "http://127.0.0.1:8333")
BUCKET = "vexlake-test"


@pytest.fixture
def s3args(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "vexlake")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "vexlake-secret")
    prefix = f"e2e-{uuid.uuid4().hex[:12]}"
    return ["--storage", f"s3://{BUCKET}/{prefix}", "--s3-endpoint", ENDPOINT]


@pytest.mark.timeout(120)
def test_save_then_kill9_fresh_dir_has_the_data(vexlake, s3args):
    rng = np.random.default_rng(8)
    vecs = rng.standard_normal((300, 16)).astype(np.float32)
    a = vexlake(args=s3args, name="a")
    r = a.client(decode=False)
    for i, v in enumerate(vecs):
        assert r.execute_command("VSET", f"k{i}", "FP32", fp32(v)) in (b"OK", "OK")
    assert r.execute_command("SAVE") in (True, b"OK", "OK")
    r.close()
    a.kill9()
    # Nothing of the lake is in --dir: it went to the bucket.
    assert not (a.dir / "tables").exists() and not (a.dir / "collections").exists()

    b = vexlake(args=s3args, name="b")  # a fresh, empty --dir on the same bucket
    r = b.client(decode=False)
    for i in (0, 1, 150, 299):
        assert same_bits(parse_vec_text(r.execute_command("VGET", f"k{i}")), vecs[i])
    hits = r.execute_command("VSEARCH", "FP32", fp32(vecs[42]), 1)
    assert hits[0] in (b"k42", "k42")
    r.close()


def test_bad_credentials_exit_nonzero_naming_the_cause(vexlake, s3args, monkeypatch):
    srv = vexlake(args=s3args, start=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    rc, out = start_expect_failure(srv)
    assert rc != 0
    assert "credentials refused" in out and "SignatureDoesNotMatch" in out, out
    assert "wrong-secret" not in out

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    rc, out = start_expect_failure(srv)
    assert rc != 0 and "AWS_ACCESS_KEY_ID" in out, out


def test_missing_bucket_exits_nonzero_naming_it(vexlake, s3args):
    args = ["--storage", "s3://vexlake-no-such-bucket/x", "--s3-endpoint", ENDPOINT]
    srv = vexlake(args=args, start=False)
    rc, out = start_expect_failure(srv)
    assert rc != 0
    assert "vexlake-no-such-bucket" in out and "does not exist" in out, out


def test_bad_storage_url_is_refused(vexlake, s3args):
    srv = vexlake(args=["--storage", "file:///tmp/x", "--s3-endpoint", ENDPOINT], start=False)
    rc, out = start_expect_failure(srv)
    assert rc != 0 and "s3://bucket/prefix" in out, out
