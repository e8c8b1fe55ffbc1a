"""The WAL in the store (--storage s3://...): a stateless writer, fenced
takeover.  Against the real SeaweedFS that scripts/run-tests.sh starts
(scripts/seaweedfs.sh: S3 on 127.0.0.1:8333, bucket vexlake-test); never
skipped: without SeaweedFS these fail.  Every test uses its own prefix.

What is proved:
- kill -9 of a writer during a 50-client write storm, then a fresh node
  with an EMPTY --dir on the same prefix: every acknowledged write is there
  with its exact vector, and of the writes never acknowledged at most the
  one each client had in flight is there (each client writes its keys in
  order, so anything else would be a write that appeared from nowhere or
  twice).
- a second writer started on the prefix while the first is under load
  fences it: the first's clients get -ERR fenced (or their connection
  closed after it), nothing the first acknowledged is lost, and a third
  fresh node sees every write either of them acknowledged.
- a fenced writer answers every data command, reads included, and SAVE
  with an -ERR that names the fencing, keeps answering PING and INFO
  (writer_state:fenced), and never commits again: the new writer's
  versions stay the newest.
"""
from __future__ import annotations

import os
import threading
import uuid

import numpy as np
import pytest
import redis

from harness import fp32, parse_vec_text, same_bits

ENDPOINT = os.environ.get("VL_S3_ENDPOINT", "http://127.0.0.1:8333")
BUCKET = "vexlake-test"
CLIENTS = 50


@pytest.fixture
def s3args(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "vexlake")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "vexlake-secret")
    prefix = f"e2e-wal-{uuid.uuid4().hex[:12]}"
    return ["--storage", f"s3://{BUCKET}/{prefix}", "--s3-endpoint", ENDPOINT]


def vec(t: int, i: int) -> np.ndarray:
    return np.array([t + 1, i + 1, 0.5, 1.0], dtype=np.float32)


class Writer(threading.Thread):
    """Writes c<t>-<i> for i = 0, 1, ... one at a time until stopped or an
    error; acked[t] is the count of writes answered OK."""

    def __init__(self, srv, t: int, stop: threading.Event, progress: threading.Semaphore):
        super().__init__(daemon=True)
        self.srv, self.t, self.stop, self.progress = srv, t, stop, progress
        self.acked = 0
        self.error: Exception | None = None

    def run(self):
        r = self.srv.client(decode=False, socket_timeout=60)
        try:
            while not self.stop.is_set():
                reply = r.execute_command("VSET", f"c{self.t}-{self.acked}", "FP32",
                                          fp32(vec(self.t, self.acked)))
                assert reply in (b"OK", "OK"), reply
                self.acked += 1
                self.progress.release()
        except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError) as e:
            self.error = e
        finally:
            r.close()


def storm(srv, clients=CLIENTS):
    stop = threading.Event()
    progress = threading.Semaphore(0)
    writers = [Writer(srv, t, stop, progress) for t in range(clients)]
    for w in writers:
        w.start()
    return writers, stop, progress


def wait_acks(progress: threading.Semaphore, n: int):
    for _ in range(n):
        assert progress.acquire(timeout=60), "writes stopped being acknowledged"


def check_node(srv, acked: dict[int, int], others: int = 0):
    """Every acknowledged write of client t (acked[t] of them) is there with
    its vector; at most the one in flight after them is too (and `others`
    keys written outside the storm)."""
    r = srv.client(decode=False)
    try:
        total = 0
        for t, n in acked.items():
            for i in range(n):
                got = r.execute_command("VGET", f"c{t}-{i}")
                assert got is not None, f"acknowledged write c{t}-{i} is missing"
                assert same_bits(parse_vec_text(got), vec(t, i)), f"c{t}-{i} has the wrong vector"
            extra = r.execute_command("VGET", f"c{t}-{n}") is not None
            assert r.execute_command("VGET", f"c{t}-{n + 1}") is None, f"c{t}-{n + 1} never sent"
            total += n + extra
        assert r.execute_command("DBSIZE") == total + others
    finally:
        r.close()


@pytest.mark.timeout(300)
def test_kill9_during_write_storm_fresh_node_has_every_ack(vexlake, s3args):
    a = vexlake(args=s3args, name="a")
    writers, stop, progress = storm(a)
    wait_acks(progress, 3000)
    a.kill9()
    for w in writers:  # each ends on its connection's error
        w.join(30)
    stop.set()
    acked = {w.t: w.acked for w in writers}
    assert all(isinstance(w.error, redis.ConnectionError) for w in writers), [
        repr(w.error) for w in writers if not isinstance(w.error, redis.ConnectionError)]

    # Nothing of the log or the lake is in --dir: the lock file and the
    # cache, which is only a copy; the fresh node below starts without both.
    assert sorted(p.name for p in a.dir.iterdir() if p.name != "cache") == ["LOCK"]

    b = vexlake(args=s3args, name="b")  # a fresh, empty --dir on the same prefix
    check_node(b, acked)
    # The new writer continues the log: a write to it survives another kill.
    r = b.client(decode=False)
    assert r.execute_command("VSET", "after", "FP32", fp32(vec(99, 0))) in (b"OK", "OK")
    r.close()
    b.kill9()
    c = vexlake(args=s3args, name="c")
    check_node(c, acked, others=1)
    r = c.client(decode=False)
    assert same_bits(parse_vec_text(r.execute_command("VGET", "after")), vec(99, 0))
    r.close()


@pytest.mark.timeout(300)
def test_second_writer_fences_the_first_and_loses_no_ack(vexlake, s3args):
    a = vexlake(args=s3args, name="a")
    writers, stop, progress = storm(a, clients=10)
    wait_acks(progress, 500)

    b = vexlake(args=s3args, name="b")  # opens while a is being written to
    for w in writers:  # every client of a hits the fence (or its closed connection)
        w.join(60)
        assert not w.is_alive(), "a client of the fenced writer kept being acknowledged"
    stop.set()
    errors = [str(w.error) for w in writers]
    assert any("fenced: another writer took over" in e for e in errors), errors
    acked = {w.t: w.acked for w in writers}

    r = a.client(decode=False)
    with pytest.raises(redis.ResponseError, match="fenced: another writer took over"):
        r.execute_command("VSET", "late", "FP32", fp32(vec(98, 0)))
    r.close()

    check_node(b, acked)
    r = b.client(decode=False)
    assert r.execute_command("VSET", "by-b", "FP32", fp32(vec(97, 0))) in (b"OK", "OK")
    assert r.execute_command("VGET", "late") is None
    r.close()
    b.kill9()
    a.kill9()

    c = vexlake(args=s3args, name="c")
    check_node(c, acked, others=1)
    r = c.client(decode=False)
    assert same_bits(parse_vec_text(r.execute_command("VGET", "by-b")), vec(97, 0))
    assert r.execute_command("VGET", "late") is None
    r.close()


@pytest.mark.timeout(120)
def test_fenced_writer_names_the_fence_for_reads_and_commits_nothing(vexlake, s3args):
    a = vexlake(args=s3args, name="a")
    ra = a.client(decode=True)
    for i in range(20):
        assert ra.execute_command("VSET", f"k{i}", "FP32", fp32(vec(1, i))) == "OK"
    assert ra.execute_command("SAVE") in (True, "OK")
    assert ra.info("replication")["writer_state"] == "ok"
    b = vexlake(args=s3args, name="b")  # fences a, which has not noticed yet
    rb = b.client(decode=True)
    assert rb.execute_command("VSET", "by-b", "FP32", fp32(vec(2, 0))) == "OK"
    assert rb.execute_command("SAVE") in (True, "OK")  # covers (and trims) a's WAL objects
    # a's next batch goes to the number b fenced it at, which b's trimming
    # must not have removed: were it gone, "late" would be acknowledged and lost.
    with pytest.raises(redis.ResponseError, match="fenced: another writer took over"):
        ra.execute_command("VSET", "late", "FP32", fp32(vec(3, 0)))
    ra.close()  # a client that waited for the refused batch is closed after its -ERR
    ra = a.client(decode=True)
    # From now on every data command names the fence: memory may hold a
    # batch the store never took, and the new writer has moved on.
    for cmd in (("VGET", "k1"), ("DBSIZE",), ("VSEARCH", "FP32", fp32(vec(1, 1)), 3),
                ("VERSIONS",)):
        with pytest.raises(redis.ResponseError, match="fenced: another writer took over"):
            ra.execute_command(*cmd)
    with pytest.raises(redis.ResponseError, match="fenced"):
        ra.execute_command("SAVE")
    with pytest.raises(redis.ResponseError, match="fenced"):
        ra.execute_command("BGSAVE")
    assert ra.execute_command("PING") in (True, "PONG")
    assert ra.info("replication")["writer_state"] == "fenced"
    head = rb.info("vectors")["version"]
    ra.close()
    a.stop()  # a clean shutdown of the fenced node commits nothing either
    assert rb.info("vectors")["version"] == head
    assert rb.execute_command("DBSIZE") == 21
    assert rb.execute_command("VGET", "late") is None
    rb.close()
    b.kill9()
    c = vexlake(args=s3args, name="c")  # a fresh node: the same 21, never "late"
    rc = c.client(decode=True)
    assert rc.execute_command("DBSIZE") == 21 and rc.execute_command("VGET", "late") is None
    rc.close()
