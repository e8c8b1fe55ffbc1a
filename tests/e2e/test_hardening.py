"""Hardening (issue 6): one server per data directory, cross-protocol
requests, strict integers, file-descriptor exhaustion, idle-client timeouts."""
import os
import socket
import subprocess
import time

import pytest
import redis

from harness import VexLakeServer, encode_command, server_binary


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
    try:
        b.start()
        assert b.client().dbsize() == 100
    finally:
        b.kill9()  # not the fixture's: stop it here, or it outlives the test run


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


# ---- strict integers and decimal vector text (defect 7) ---------------------

NOT_STRICT = ["18446744073709551616", "9223372036854775808", "+1", "01", " 1", "1 ", "-0",
              "0x1", "1e0"]


@pytest.mark.parametrize("bad", NOT_STRICT)
def test_version_is_a_strict_integer(server, bad):
    r = server.client()
    r.execute_command("VSET", "a", "[1, 2]")
    assert r.execute_command("SAVE") in (True, "OK")
    assert r.execute_command("VGET", "a", "VERSION", "1") is not None
    for cmd in (["VGET", "a", "VERSION", bad], ["VSEARCH", "[1, 2]", "1", "VERSION", bad]):
        with pytest.raises(redis.ResponseError, match="^VERSION must be a positive integer$"):
            r.execute_command(*cmd)


@pytest.mark.parametrize("bad", ["01", "010", "+1", "-0"])
def test_k_is_a_strict_integer(server, bad):
    r = server.client()
    r.execute_command("VSET", "a", "[1, 2]")
    with pytest.raises(redis.ResponseError, match="^K must be a positive integer$"):
        r.execute_command("VSEARCH", "[1, 2]", bad)


@pytest.mark.parametrize("bad", ["+3", "03", " 3", "3 ", "99999999999999999999"])
def test_hello_protover_is_a_strict_integer(server, bad):
    with server.raw() as raw:
        reply = raw.command("HELLO", bad)
        assert reply == "ERR Protocol version is not an integer or out of range", reply


@pytest.mark.parametrize("bad", ["+0", "00", "-0", " 0", "x", "18446744073709551616"])
def test_select_is_a_strict_integer(server, bad):
    with server.raw() as raw:
        assert raw.command("SELECT", bad) == "ERR value is not an integer or out of range"
        assert raw.command("SELECT", "0") == "OK"
        assert raw.command("SELECT", "1").startswith("ERR DB index is out of range")


@pytest.mark.parametrize("frame", [b"*1\r\n$04\r\nPING\r\n", b"*01\r\n$4\r\nPING\r\n",
                                   b"*1\r\n$-0\r\n"])
def test_resp_lengths_are_strict_integers(server, frame):
    with server.raw() as raw:
        raw.send(frame)
        reply = raw.read_reply()
        assert reply.startswith("ERR Protocol error: invalid"), reply
        assert raw.closed_by_peer(timeout=3)


@pytest.mark.parametrize("vec", ["[0x1p3, 1]", "[1, 0X10]", "[-0x1.8p1, 2]"])
def test_hex_floats_are_not_vector_text(server, vec):
    r = server.client()
    with pytest.raises(redis.ResponseError, match="is a hexadecimal number"):
        r.execute_command("VSET", "a", vec)
    assert r.dbsize() == 0


@pytest.mark.parametrize("args", [["--threads", "+1"], ["--port", " 7000"], ["--maxclients", "010"],
                                  ["--flush-rows", "1e3"], ["--retain-versions", "18446744073709551617"]])
def test_flags_are_strict_integers(args):
    # A trailing unknown flag makes the old (lenient) parser exit too, so
    # the test is bounded either way; only the message tells them apart.
    p = subprocess.run([str(server_binary()), *args, "--no-such-flag"], capture_output=True,
                       text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert p.returncode == 2
    assert f"{args[0]} wants a number" in p.stderr, p.stderr


# ---- file descriptors (defect 5) ----------------------------------------------

def cpu_seconds(pid):
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def under_fd_limit(srv, n):
    """Run srv's process with RLIMIT_NOFILE n:n (prlimit execs the server)."""
    plain = srv.command_line
    srv.command_line = lambda args=None: ["prlimit", f"--nofile={n}:{n}", *plain(args)]
    return srv


@pytest.mark.timeout(60)
def test_fd_limit_lowers_maxclients_and_refuses_promptly(vexlake):
    srv = under_fd_limit(vexlake(start=False), 256).start()
    c = srv.client()
    c.execute_command("VSET", "a", "[1, 2]")

    socks, refused = [], 0
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            socks.append(s)
            s.sendall(b"PING\r\n")
            reply = s.recv(64)  # a timeout here is the old failure: no reply at all
            if reply.startswith(b"-ERR max number of clients reached"):
                refused += 1
            else:
                assert reply == b"+PONG\r\n", reply
        maxclients = int(c.config_get("maxclients")["maxclients"])
        assert 1 <= maxclients < 256
        assert refused == 300 - (maxclients - 1)  # c holds a slot too

        # With 300 connections open the server idles; the old one spun on
        # accept() failing with EMFILE (about 90% of a core).
        before = cpu_seconds(srv.proc.pid)
        time.sleep(3)
        assert cpu_seconds(srv.proc.pid) - before < 1.0  # a third of a core; idle is ~0

        assert c.ping() is True
        assert c.execute_command("VGET", "a") is not None
    finally:
        for s in socks:
            s.close()
    assert f"maxclients lowered from 10000 to {maxclients}" in srv.log_tail()
    srv.assert_healthy()


# ---- idle and slow clients (defect 6) -------------------------------------------

def test_idle_client_is_closed(vexlake):
    srv = vexlake(["--timeout", "1"])
    assert srv.client().config_get("timeout") == {"timeout": "1"}
    with srv.raw() as raw:
        assert raw.command("PING") == "PONG"
        start = time.monotonic()
        assert raw.closed_by_peer(timeout=10)
        assert time.monotonic() - start >= 0.9  # never before the timeout
    srv.assert_healthy()


def test_trickling_client_is_closed(vexlake):
    """Bytes that never complete a request do not count as activity."""
    srv = vexlake(["--timeout", "2"])
    request = encode_command("VSET", "k", "[" + ", ".join(["1"] * 100) + "]")
    with srv.raw() as raw:
        start = time.monotonic()
        closed = False
        for byte in request[:40]:  # at 0.25 s per byte: 10 s, far past the timeout
            try:
                raw.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if raw.closed_by_peer(timeout=0.25):
                closed = True
                break
        assert closed, "a client sending one byte at a time kept its connection"
        assert time.monotonic() - start >= 1.9
    assert srv.client().dbsize() == 0
    srv.assert_healthy()


def test_active_client_is_not_closed(vexlake):
    srv = vexlake(["--timeout", "1"])
    with srv.raw() as raw:
        for _ in range(12):  # 3 s of commands, each well within the timeout
            assert raw.command("PING") == "PONG"
            time.sleep(0.25)


@pytest.mark.parametrize("args", [[], ["--timeout", "0"]], ids=["default", "zero"])
def test_no_timeout_never_closes(vexlake, args):
    srv = vexlake(args)
    assert srv.client().config_get("timeout") == {"timeout": "0"}
    with srv.raw() as raw:
        assert raw.command("PING") == "PONG"
        assert not raw.closed_by_peer(timeout=2.5)
        assert raw.command("PING") == "PONG"
