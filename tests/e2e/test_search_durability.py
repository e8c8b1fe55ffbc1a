"""A search reply is never held back by another client's write that is not
durable yet, and never shows that write either.

The store WAL (--storage) is durable once the store answers the PUT of the
batch; a TCP proxy between the server and SeaweedFS holds the answers to
WAL PUTs back (tcp_proxy.py "delay" with a match), so one client's VSET
stays not durable for as long as the test likes, with no timing involved:

- client W sends VSET near (durable only when the proxy lets the answer
  through); the proxy reports that the batch's PUT went out, so the server
  has applied the write;
- client R's VSEARCH must then be answered while W still has no reply, and
  must not show `near` (it is not durable);
- once the proxy passes, W gets +OK and a new search shows `near`;
- a client that pipelines its own VSET and VSEARCH sees its write
  (read-your-writes), the search reply coming after the write's +OK.

Before the durable search snapshot, R's reply waited for W's batch: the
VSEARCH below timed out.
"""
from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from harness import encode_command, fp32
from tcp_proxy import TcpProxy
from test_s3_storage import ENDPOINT

DIM = 8


@pytest.fixture
def proxy(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "vexlake")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "vexlake-secret")
    px = TcpProxy(int(ENDPOINT.rsplit(":", 1)[1])).start()
    yield px
    px.set_mode("pass")
    px.stop()


def vec(x: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[0] = x
    return v


def wait_for(cond, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.timeout(180)
def test_search_not_held_by_others_unsynced_write(vexlake, proxy):
    srv = vexlake(args=["--metric", "l2", "--index", "flat", "--storage",
                        f"s3://vexlake-test/search-dur-{uuid.uuid4().hex[:12]}",
                        "--s3-endpoint", proxy.endpoint, "--s3-timeout-ms", "120000"])
    r = srv.raw(timeout=30)
    for i in range(5):
        assert r.command("VSET", f"far{i}", "FP32", fp32(vec(10 + i))) == "OK"

    proxy.set_mode("delay", seconds=600, match=b"/wal/")
    before = proxy.matched_requests
    w = srv.raw(timeout=30)
    w.send(encode_command("VSET", "near", "FP32", fp32(vec(0))))
    wait_for(lambda: proxy.matched_requests > before, "the PUT of the VSET's batch")

    hits = r.command("VSEARCH", "FP32", fp32(vec(0)), 3)
    assert hits == [b"far0", b"far1", b"far2"]  # `near` is not durable: not shown
    w.sock.settimeout(0)
    with pytest.raises(BlockingIOError):
        w.sock.recv(1)  # W's write is still unacknowledged

    proxy.set_mode("pass")
    w.sock.settimeout(30)
    assert w.read_reply() == "OK"
    assert r.command("VSEARCH", "FP32", fp32(vec(0)), 1) == [b"near"]

    # Read-your-writes in a pipeline: the search shows the client's own
    # write, and its reply follows the write's acknowledgement.
    r.send(encode_command("VSET", "mine", "FP32", fp32(vec(0.5))) +
           encode_command("VSEARCH", "FP32", fp32(vec(0.4)), 1))
    assert r.read_reply() == "OK"
    assert r.read_reply() == [b"mine"]
    r.close()
    w.close()
    srv.assert_healthy()
