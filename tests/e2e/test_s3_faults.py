"""S3 mode under faults, against real SeaweedFS (never skipped).

- The store stopped during writes and searches, then started again: clients
  get errors, never OK for a write that is not stored; the server does not
  crash and recovers without a restart.
- The store restarted with its data kept mid-run: nothing acknowledged is
  lost.
- A slow store (tcp_proxy.py between the server and SeaweedFS: answers
  late, silence, resets): every call is bounded by --s3-timeout-ms, and the
  node recovers once the store is well.
- A multipart upload whose parts (and abort) get no answer leaves no
  upload behind once the store is back.

The stop/restart tests run their own SeaweedFS (seaweed.py) on other ports,
so the shared one the other suites use is never touched.

Writes are checked so that the tests hold whether the WAL is local (a
write is acknowledged after the local fsync; S3 is hit at flush and load)
or in the store: each write is either acknowledged and then found by a
fresh node with an empty --dir, or answered with an error.
"""
from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
import uuid

import numpy as np
import pytest
import redis

from harness import fp32
from lakeutil import RawLoader, check_vectors, start_expect_failure, version_numbers, wait_until
from seaweed import OwnSeaweedFS
from tcp_proxy import TcpProxy
from test_s3_storage import ENDPOINT

DIM = 16
# Background flushes every few writes, so the outage also hits BGSAVE jobs
# (and their retry after a failure) besides the SAVEs the tests send.
AUTO_FLUSH = ["--flush-rows", "60"]


@pytest.fixture
def s3env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "vexlake")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "vexlake-secret")


@pytest.fixture
def own_weed(tmp_path, s3env):
    w = OwnSeaweedFS(tmp_path / "weed-data").start()
    yield w
    w.stop()


def store_args(endpoint: str, timeout_ms: int = 1500, prefix: str | None = None):
    prefix = prefix or f"faults-{uuid.uuid4().hex[:12]}"
    return ["--storage", f"s3://vexlake-test/{prefix}", "--s3-endpoint", endpoint,
            "--s3-timeout-ms", str(timeout_ms)]


def vec(i: int) -> np.ndarray:
    return np.random.default_rng(i).standard_normal(DIM).astype(np.float32)


def is_ok(reply) -> bool:
    return reply is True or reply in ("OK", b"OK")


def save(r):
    """SAVE's outcome: True for OK, else the error text."""
    try:
        return True if is_ok(r.execute_command("SAVE")) else "not OK"
    except redis.ResponseError as e:
        return str(e)


class Traffic:
    """Writers and searchers on their own connections until stop().

    acked: key -> vector of every VSET answered OK.  errors: replies that
    were errors (each write answered -ERR is simply not acknowledged).
    """

    def __init__(self, srv, writers=2, searchers=2):
        self.srv = srv
        self.acked: dict[str, np.ndarray] = {}
        self.write_errors: list[str] = []
        self.search_errors: list[str] = []
        self.searches = 0
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(w,)) for w in range(writers)]
        self.threads += [threading.Thread(target=self._search) for _ in range(searchers)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.halt.set()
        for t in self.threads:
            t.join(60)
        assert not any(t.is_alive() for t in self.threads), "a client hung"

    def _write(self, w):
        r = self.srv.client(socket_timeout=60)
        i = 0
        while not self.halt.is_set():
            key, v = f"w{w}-{i}", vec(1000000 * (w + 1) + i)
            try:
                reply = r.execute_command("VSET", key, "FP32", fp32(v))
                assert is_ok(reply), reply
                with self.lock:
                    self.acked[key] = v
            except redis.ResponseError as e:
                with self.lock:
                    self.write_errors.append(str(e))
            i += 1
            time.sleep(0.002)
        r.close()

    def _search(self):
        r = self.srv.client(socket_timeout=60)
        q = vec(7)
        while not self.halt.is_set():
            try:
                r.execute_command("VSEARCH", "FP32", fp32(q), 5)
                with self.lock:
                    self.searches += 1
            except redis.ResponseError as e:
                with self.lock:
                    self.search_errors.append(str(e))
            time.sleep(0.005)
        r.close()


def seed(srv, n=300) -> dict:
    r = srv.client()
    data = {f"s{i}": vec(i) for i in range(n)}
    for k, v in data.items():
        assert is_ok(r.execute_command("VSET", k, "FP32", fp32(v)))
    assert save(r) is True
    r.close()
    return data


def save_until_ok(r, timeout=90):
    return wait_until(lambda: save(r) is True, timeout, interval=0.5, what="SAVE to succeed again")


def fresh_node_has(vexlake, args, expected: dict, name="fresh"):
    """A node with an empty --dir on the same bucket serves every key."""
    b = vexlake(args=args, name=name)
    r = b.client()
    check_vectors(r, expected)
    r.close()
    return b


@pytest.mark.timeout(300)
def test_store_stopped_during_writes_and_searches(vexlake, own_weed):
    args = [*store_args(own_weed.endpoint), *AUTO_FLUSH]
    a = vexlake(args=args, name="a")
    expected = seed(a)
    r = a.client(socket_timeout=60)
    with Traffic(a) as t:
        wait_until(lambda: t.searches > 20 and len(t.acked) > 20, 30, what="traffic")
        own_weed.stop()
        outage = save(r)
        assert outage is not True, "SAVE answered OK while the store was down"
        assert "S3" in outage or "vexlake-test" in outage, outage
        assert r.execute_command("BGSAVE") in (True, "Background saving started")
        wait_until(lambda: r.info("persistence")["lake_last_bgsave_status"] == "err", 60,
                   what="the failed BGSAVE to be reported")
        a.assert_healthy()
        searches_during = t.searches
        wait_until(lambda: t.searches > searches_during + 20, 30, what="searches in the outage")
        own_weed.start()  # the same data directory: the bucket comes back
        save_until_ok(r)  # no restart of the node
        assert r.info("persistence")["lake_last_bgsave_status"] == "ok"
    assert not t.search_errors, t.search_errors[:3]
    expected.update(t.acked)
    assert save(r) is True
    r.close()
    a.kill9()
    fresh_node_has(vexlake, args, expected)


@pytest.mark.timeout(300)
def test_store_restarted_with_data_kept_loses_nothing_acknowledged(vexlake, own_weed):
    args = [*store_args(own_weed.endpoint), *AUTO_FLUSH]
    a = vexlake(args=args, name="a")
    expected = seed(a)
    r = a.client(socket_timeout=60)
    saved_versions = []
    with Traffic(a) as t:
        for round_ in range(2):
            wait_until(lambda: len(t.acked) > 50 * (round_ + 1), 30, what="writes")
            assert save(r) is True
            saved_versions.append(int(r.info("vectors")["version"]))
            own_weed.stop()
            own_weed.start()
            save_until_ok(r)
    expected.update(t.acked)
    assert save(r) is True
    r.close()
    a.kill9()
    b = fresh_node_has(vexlake, args, expected)
    rb = b.client()
    for v in saved_versions:
        hits = rb.execute_command("VSEARCH", "FP32", fp32(vec(0)), 1, "VERSION", v)
        assert hits[0] == "s0", (v, hits)
    rb.close()


@pytest.fixture
def proxy(s3env):
    port = int(ENDPOINT.rsplit(":", 1)[1])
    px = TcpProxy(port).start()
    yield px
    px.stop()


def timed(fn):
    t0 = time.monotonic()
    out = fn()
    return out, time.monotonic() - t0


@pytest.mark.timeout(240)
@pytest.mark.parametrize("mode", ["blackhole", "reset", "delay", "delay-commit"])
def test_slow_store_every_call_bounded_then_recovers(vexlake, proxy, mode):
    """blackhole: no answer; reset: every connection reset; delay: answers
    arrive after the timeout, though the requests reach the store;
    delay-commit: only the manifest commit's answer is late, so the commit
    lands while the node sees a failure."""
    timeout_ms = 1000
    args = store_args(proxy.endpoint, timeout_ms)
    a = vexlake(args=args, name="a")
    expected = seed(a)
    r = a.client(socket_timeout=60)
    for i in range(50):
        k = f"late{i}"
        expected[k] = vec(5000 + i)
        assert is_ok(r.execute_command("VSET", k, "FP32", fp32(expected[k])))
    if mode == "delay-commit":
        proxy.set_mode("delay", seconds=5, match=b"/manifests/")
    else:
        proxy.set_mode(mode, seconds=5)
    outcome, took = timed(lambda: save(r))
    assert outcome is not True
    # A flush is a handful of calls (segment, manifest), each bounded by
    # --s3-timeout-ms; without the bound the blackhole would hang it.
    assert took < 10 * timeout_ms / 1000, (took, outcome)
    a.assert_healthy()
    proxy.set_mode("pass")
    time.sleep(5.5 if mode.startswith("delay") else 0)  # let late answers drain
    assert save(r) is True, "the node did not recover once the store was well"
    for i in range(20):
        k = f"after{i}"
        expected[k] = vec(9000 + i)
        assert is_ok(r.execute_command("VSET", k, "FP32", fp32(expected[k])))
    assert save(r) is True
    versions = version_numbers(r)
    r.close()
    a.kill9()
    b = fresh_node_has(vexlake, args, expected)
    rb = b.client()
    for v in versions:  # every version the node lists is whole
        assert rb.execute_command("VSEARCH", "FP32", fp32(vec(0)), 1, "VERSION", v)[0] == "s0"
    rb.close()


@pytest.mark.timeout(120)
def test_start_against_a_silent_store_fails_within_the_timeout(vexlake, proxy):
    proxy.set_mode("blackhole")
    srv = vexlake(args=store_args(proxy.endpoint, 1000), start=False)
    (rc, out), took = timed(lambda: start_expect_failure(srv))
    assert rc != 0 and "vexlake-test" in out and "attempts" in out, out
    assert took < 15, took


def multipart_uploads(prefix: str) -> list[str]:
    """Keys of the multipart uploads in progress under prefix (ListMultipartUploads,
    signed by curl as scripts/seaweedfs.sh does)."""
    empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    out = subprocess.run(
        ["curl", "-s", "--max-time", "20", "--aws-sigv4", "aws:amz:us-east-1:s3",
         "--user", "vexlake:vexlake-secret", "-H", f"x-amz-content-sha256: {empty_sha}",
         f"{ENDPOINT}/vexlake-test?prefix={prefix}%2F&uploads="],
        capture_output=True, text=True, timeout=30, check=True).stdout
    assert "<ListMultipartUploadsResult" in out, out
    return re.findall(r"<Upload>.*?<Key>([^<]*)</Key>", out)


@pytest.mark.timeout(240)
def test_multipart_upload_failing_part_way_is_aborted(vexlake, proxy):
    """A segment large enough for a multipart upload (>= 16 MiB) whose parts
    the store never answers (the proxy swallows every request that names an
    upload, the abort included): SAVE fails, and once the store is back the
    next SAVE's first act is the abort still owed, so no invisible parts
    stay behind.  The listing in between proves the failure left one."""
    prefix = f"faults-mp-{uuid.uuid4().hex[:12]}"
    args = store_args(proxy.endpoint, 2000, prefix) + ["--index", "flat"]
    a = vexlake(args=args, name="a")
    rows, dim = 5000, 1024  # 20 MB of float32: a 3-part upload
    vecs = np.random.default_rng(7).standard_normal((rows, dim)).astype(np.float32)
    keys = [f"m{i}" for i in range(rows)]
    loader = RawLoader(a.port)
    loader.put(keys, vecs, batch=250)
    loader.close()
    proxy.set_mode("blackhole", match=b"uploadId=")
    r = a.client(socket_timeout=120)
    outcome = save(r)
    assert outcome is not True and "part" in outcome, outcome
    assert multipart_uploads(prefix) != [], "the failed upload should still be there"
    proxy.set_mode("pass")
    assert save(r) is True
    assert multipart_uploads(prefix) == [], "a failed multipart upload was never aborted"
    r.close()
    a.kill9()
    b = vexlake(args=args, name="b")  # the completed upload is the segment
    rb = b.client(decode=False)
    assert rb.execute_command("DBSIZE") == rows
    assert rb.execute_command("VGET", "m4999") is not None
    rb.close()


@pytest.mark.timeout(120)
def test_save_against_a_silent_store_blocks_only_its_client(vexlake, proxy):
    """SAVE with --storage waits for the store, which here never answers
    (--s3-timeout-ms 4000): meanwhile other clients are served (PING,
    VGET, VSET) and the SAVE's own connection gets nothing until its
    answer.  On the event loop, the PING would have waited for the SAVE."""
    args = store_args(proxy.endpoint, 4000)
    a = vexlake(args=args, name="a")
    expected = seed(a, n=50)
    r = a.client(socket_timeout=60)
    expected["dirty"] = vec(777)  # so the SAVE has something to flush
    assert is_ok(r.execute_command("VSET", "dirty", "FP32", fp32(expected["dirty"])))
    saver = socket.create_connection(("127.0.0.1", a.port), timeout=60)
    proxy.set_mode("blackhole")
    saver.sendall(b"*1\r\n$4\r\nSAVE\r\n")
    # The flush is under way (on the old code INFO itself waited for the SAVE).
    wait_until(lambda: r.info("persistence")["rdb_bgsave_in_progress"] == 1, 10,
               what="the SAVE's flush to start")
    assert r.ping() is True
    assert r.execute_command("VGET", "s1") is not None
    saver.setblocking(False)
    try:
        early = saver.recv(100)
    except BlockingIOError:
        early = b""
    assert early == b"", f"SAVE answered before the other client's PING: {early!r}"
    saver.setblocking(True)
    reply = saver.recv(1000)  # the store's silence, named, within the timeout
    assert reply.startswith(b"-ERR SAVE failed:") and b"attempts" in reply, reply
    proxy.set_mode("pass")
    assert save(r) is True
    r.close()
    saver.close()
    a.kill9()
    fresh_node_has(vexlake, args, expected)
