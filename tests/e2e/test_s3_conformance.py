"""Clauses of the S3 issue that no other suite proves, against the real
SeaweedFS that scripts/run-tests.sh starts (never skipped); the table of
every clause and its test is docs/s3-conformance.md.

- Credentials never appear in INFO or in the server's log, also when
  requests fail and are logged.
- An object in the bucket that is damaged (a segment whose bytes no longer
  match the CRC-32C its manifest records) is never served: a fresh node
  (empty cache) refuses to start, naming the object.
- The README's "Scaling out" commands work as printed: its writer and
  follower command lines (ports, directories and prefix swapped for the
  test's) start, the writer takes a write and the follower serves it.
"""
from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import uuid

import numpy as np
import pytest
import redis

from harness import REPO, fp32, server_binary
from lakeutil import start_expect_failure, wait_until
from tcp_proxy import TcpProxy
from test_s3_storage import ENDPOINT

SECRET = "vexlake-secret"  # the test-only secret scripts/seaweedfs.sh configures


@pytest.fixture
def s3env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "vexlake")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


def s3(method: str, key: str, body: bytes = b"") -> bytes:
    """One signed request on the test bucket (curl's SigV4, as
    scripts/seaweedfs.sh signs); the answer's body."""
    sha = hashlib.sha256(body).hexdigest()
    p = subprocess.run(
        ["curl", "-s", "-f", "--max-time", "20", "-X", method, "--aws-sigv4",
         "aws:amz:us-east-1:s3", "--user", f"vexlake:{SECRET}",
         "-H", f"x-amz-content-sha256: {sha}", "--data-binary", "@-",
         f"{ENDPOINT}/vexlake-test/{key}"],
        input=body if method == "PUT" else None, capture_output=True, timeout=30)
    assert p.returncode == 0, (method, key, p.stderr)
    return p.stdout


def vec(i: int) -> np.ndarray:
    return np.random.default_rng(i).standard_normal(8).astype(np.float32)


@pytest.mark.timeout(120)
def test_credentials_never_in_info_or_log(vexlake, s3env):
    px = TcpProxy(int(ENDPOINT.rsplit(":", 1)[1])).start()
    try:
        prefix = f"conf-{uuid.uuid4().hex[:12]}"
        a = vexlake(args=["--storage", f"s3://vexlake-test/{prefix}", "--s3-endpoint",
                          px.endpoint, "--s3-timeout-ms", "800"], name="a")
        r = a.client()
        for i in range(20):
            r.execute_command("VSET", f"k{i}", "FP32", fp32(vec(i)))
        assert r.execute_command("SAVE") in (True, "OK")
        px.set_mode("reset")  # failing requests get logged
        with pytest.raises(redis.ResponseError, match="store unavailable"):
            r.execute_command("VSET", "during", "FP32", fp32(vec(99)))
        px.set_mode("pass")
        wait_until(lambda: r.info("replication")["writer_state"] == "ok", 90,
                   what="writes to resume")
        info = r.execute_command("INFO", "everything")
        text = info if isinstance(info, str) else json.dumps(info)
        r.close()
        a.stop()
        log = a.log_path.read_text(errors="replace")
        assert "store unavailable" in log, log[-2000:]  # the failures were logged
        for where, s in (("INFO", text), ("the log", log)):
            assert SECRET not in s, f"the secret key appears in {where}"
            assert "AWS_SECRET_ACCESS_KEY=" not in s and "Credential=" not in s, where
    finally:
        px.stop()


def test_damaged_object_in_the_bucket_is_never_served(vexlake, s3env):
    prefix = f"conf-{uuid.uuid4().hex[:12]}"
    args = ["--storage", f"s3://vexlake-test/{prefix}", "--s3-endpoint", ENDPOINT,
            "--index", "flat"]
    a = vexlake(args=args, name="a")
    r = a.client()
    for i in range(50):
        r.execute_command("VSET", f"k{i}", "FP32", fp32(vec(i)))
    assert r.execute_command("SAVE") in (True, "OK")
    r.close()
    a.kill9()
    listing = s3("GET", f"?list-type=2&prefix={prefix}%2Ftables%2Fdefault%2Fmanifests%2F"
                 ).decode()
    manifest_key = re.findall(r"<Key>([^<]*\.json)</Key>", listing)[-1]
    manifest = json.loads(s3("GET", manifest_key))
    segment = manifest["segments"][0]["name"]
    data = bytearray(s3("GET", f"{prefix}/{segment}"))
    data[len(data) // 2] ^= 0x40  # one flipped bit, size unchanged
    s3("PUT", f"{prefix}/{segment}", bytes(data))
    b = vexlake(args=args, name="b", start=False)  # fresh --dir: nothing cached
    rc, out = start_expect_failure(b)
    assert rc != 0 and segment in out, out


def scaling_out_commands() -> list[list[str]]:
    """The bin/vexlake-server command lines of README's "Scaling out"."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Scaling out\n", 1)[1].split("\n## ", 1)[0]
    joined = re.sub(r"\\\n\s*", " ", section)
    lines = [ln.strip() for ln in joined.splitlines() if "bin/vexlake-server" in ln]
    cmds = []
    for ln in lines:
        words = shlex.split(ln[ln.index("bin/vexlake-server"):])
        cmds.append(words[1:])
    return cmds


def test_readme_scaling_out_commands_work(vexlake, s3env, tmp_path):
    cmds = scaling_out_commands()
    writer = [c for c in cmds if "--read-only" not in c]
    follower = [c for c in cmds if "--read-only" in c]
    assert writer and follower, cmds
    prefix = f"conf-readme-{uuid.uuid4().hex[:8]}"

    def adapt(words: list[str]) -> list[str]:
        out, it = [], iter(words)
        for w in it:
            v = next(it) if w in ("--dir", "--port", "--storage", "--s3-endpoint") else None
            if w == "--storage":
                out += [w, "s3://" + v.split("://", 1)[1].split("/", 1)[0] + "/" + prefix]
            elif w == "--s3-endpoint":
                out += [w, ENDPOINT]
            elif w not in ("--dir", "--port"):
                out.append(w)
        return out

    w = vexlake(args=adapt(writer[0]), name="w")
    f = vexlake(args=adapt(follower[0]) + ["--follow-interval-ms", "100"], name="f")
    rw = w.client()
    assert rw.execute_command("VSET", "hello", "FP32", fp32(vec(1))) == "OK"
    assert rw.execute_command("SAVE") in (True, "OK")
    rf = f.client()
    wait_until(lambda: rf.execute_command("VGET", "hello") is not None, 30,
               what="the follower to serve the writer's commit")
    rw.close()
    rf.close()


def test_help_lists_every_storage_flag_and_bad_values_exit_2():
    run = lambda *a: subprocess.run([str(server_binary()), *a], capture_output=True,  # noqa: E731
                                    text=True, timeout=10, stdin=subprocess.DEVNULL)
    p = run("--help")
    for flag in ("--storage", "--s3-endpoint", "--s3-region", "--s3-timeout-ms", "--cache-dir",
                 "--cache-size", "--read-only", "--follow-interval-ms"):
        assert flag in p.stdout, flag
    for args, match in ((["--s3-timeout-ms", "0"], "--s3-timeout-ms wants"),
                        (["--cache-size", "bogus"], "--cache-size wants"),
                        (["--follow-interval-ms", "5"], "--follow-interval-ms wants"),
                        (["--s3-region"], "needs a value")):
        q = run(*args)
        assert q.returncode == 2 and match in q.stderr, (args, q.returncode, q.stderr)
