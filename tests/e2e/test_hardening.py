"""Hardening (issue 6): one server per data directory, cross-protocol
requests, file-descriptor exhaustion, idle-client timeouts."""
import subprocess

import pytest

from harness import VexLakeServer, encode_command


def vset_many(client, prefix, n):
    for i in range(n):
        assert client.execute_command("VSET", f"{prefix}:{i}", f"[{i}, 1]") == "OK"


def test_second_server_on_same_dir_is_refused(vexlake, tmp_path):
    a = vexlake(["--metric", "l2"])
    c = a.client()
    vset_many(c, "a", 50)

    b = VexLakeServer(tmp_path / "second", data_dir=a.dir)
    p = subprocess.run(b.command_line(), capture_output=True, text=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert f"data directory {a.dir} is locked by another process (pid {a.proc.pid})" in out

    # The owner is unaffected: its writes before and after a SAVE survive.
    assert c.execute_command("SAVE") in (True, "OK")
    vset_many(c, "b", 50)
    c.close()
    assert a.stop() == 0
    a.start()
    assert a.client().dbsize() == 100
    assert a.stop() == 0

    # Once the owner is gone the directory is free again.
    b.start()
    assert b.client().dbsize() == 100


HTTP_ATTACK = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1:6379\r\nContent-Type: text/plain\r\n"
               b"Content-Length: 7\r\n\r\nCLEAR\r\n")


@pytest.mark.parametrize("payload", [
    HTTP_ATTACK,
    b"Host: 127.0.0.1\r\nCLEAR\r\n",
    b"post / HTTP/1.0\r\n\r\nCLEAR\r\n",
    encode_command("POST", "/") + encode_command("CLEAR"),
], ids=["http-post", "host-first", "lowercase", "multibulk"])
def test_cross_protocol_request_is_closed(server, payload):
    c = server.client()
    c.execute_command("VSET", "keep", "[1, 2]")
    with server.raw() as raw:
        raw.send(payload)
        assert raw.closed_by_peer(timeout=3), raw.buf
        assert raw.buf == b""  # nothing of the request ran, not even the first line
    assert c.dbsize() == 1
    assert "Possible SECURITY ATTACK detected" in server.log_tail()
    server.assert_healthy()
