"""Memory under hostile clients (issue 6, defect 4): query buffers capped per
client and in total (client eviction), output buffers capped before a reply
is built, and --maxmemory for the data."""
import re
import socket
import subprocess
import threading
import time

import pytest

from harness import RespError, VexLakeServer, encode_command

MiB = 1 << 20
BULK = 8 * MiB  # the largest argument the parser accepts


def info(r, section=None):
    return r.info(section) if section else r.info()


def wait_for(cond, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def closed_by_peer(s: socket.socket, timeout=10.0) -> bool:
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def unfinished_request(total: int) -> bytes:
    """A VSET whose arguments add up to about `total` bytes, the last one cut
    short: the server must buffer all of it and can never run it."""
    nargs = (total + BULK - 1) // BULK
    out = [b"*%d\r\n$4\r\nVSET\r\n" % (nargs + 2)]
    left = total
    for _ in range(nargs):
        n = min(BULK, left)
        out.append(b"$%d\r\n" % BULK + b"x" * n + (b"\r\n" if n == BULK else b""))
        left -= n
    return b"".join(out)


class LimitedServer(VexLakeServer):
    """The server under an address-space limit (prlimit), as a small host or
    container would impose; ASan builds cannot run like this."""

    def __init__(self, *a, as_bytes: int, **kw):
        super().__init__(*a, **kw)
        self.as_bytes = as_bytes

    def command_line(self, args=None):
        return ["prlimit", f"--as={self.as_bytes}", "--"] + super().command_line(args)


def flood(port: int, clients: int, payload: bytes):
    """`clients` connections each send payload and then hold; returns the
    sockets (closed by the caller) once every send finished or failed."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(clients)]

    def send(s):
        try:
            view = memoryview(payload)
            for off in range(0, len(view), 4 * MiB):
                s.sendall(view[off:off + 4 * MiB])
        except OSError:  # evicted: the server closed us
            pass

    threads = [threading.Thread(target=send, args=(s,), daemon=True) for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    return socks


@pytest.mark.timeout(300)
def test_query_buffers_of_many_clients_are_capped_and_the_largest_evicted(tmp_path):
    # 100 clients x 56 MiB of unfinished requests = 5.6 GB; the server has a
    # 2 GiB address space.  Before the fix it aborted ("out of memory
    # allocating ...") and every client was dropped.
    srv = LimitedServer(tmp_path / "srv", as_bytes=2 << 30,
                        args=["--appendfsync", "no", "--threads", "2"])
    srv.start()
    try:
        r = srv.client()
        r.execute_command("VSET", "keep", "[1, 2, 3]")
        socks = flood(srv.port, 100, unfinished_request(56 * MiB))
        try:
            assert srv.alive(), f"server died under the flood\n{srv.log_tail()}"
            assert r.ping() is True
            assert r.execute_command("VGET", "keep").startswith("[1.0")
            st = info(r, "stats")
            assert st["evicted_clients"] > 0, st
            mem = info(r, "memory")
            assert mem["mem_clients_normal"] <= mem["maxmemory_clients"], mem
            assert mem["maxmemory_clients"] == 1 << 30
        finally:
            for s in socks:
                s.close()
        log = srv.log_tail(200000)
        assert re.search(r"Evicting client: id=\d+ addr=127\.0\.0\.1:\d+ .*qbuf=\d+", log), log[-2000:]
        assert "out of memory" not in log
        srv.assert_healthy()
    finally:
        srv.kill9()


def test_maxmemory_clients_evicts_the_largest_client_only(vexlake):
    srv = vexlake(["--maxmemory-clients", "20mb"])
    r = srv.client()
    small = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    small.sendall(unfinished_request(1 * MiB))
    big = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        big.sendall(unfinished_request(30 * MiB))
    except OSError:
        pass
    wait_for(lambda: info(r, "stats")["evicted_clients"] == 1, what="an eviction")
    assert closed_by_peer(big)
    # The small client was not touched: its request can still be finished.
    assert info(r, "clients")["connected_clients"] == 2
    assert info(r, "memory")["mem_clients_query_buffers"] < 20 * MiB
    small.close()
    big.close()
    assert re.search(r"Evicting client: id=\d+ addr=\S+ .*qbuf=\d+", srv.log_tail(20000))


def test_client_query_buffer_limit_closes_that_client(vexlake):
    srv = vexlake(["--client-query-buffer-limit", "1mb"])
    with srv.raw() as c:
        try:
            c.send(unfinished_request(2 * MiB))
        except OSError:
            pass
        got = c.read_reply()
        assert isinstance(got, RespError) and "request larger than 1048576 bytes" in got, got
        assert c.closed_by_peer()
    r = srv.client()
    assert info(r, "stats")["client_query_buffer_limit_disconnections"] == 1
    assert "Closing client that reached max query buffer length" in srv.log_tail()
    srv.assert_healthy()


def test_idle_client_gives_back_the_buffer_of_a_large_request(server):
    r = server.client()
    with server.raw() as c:
        big = "x" * (6 * MiB)
        got = c.command("ECHO", big)
        assert got == big.encode()
        assert c.command("PING") == "PONG"
        mem = info(r, "memory")
        # Both the 6 MiB request and its 6 MiB reply are released once done.
        assert mem["mem_clients_normal"] < 2 * MiB, mem


def test_memory_flags_are_parsed_with_redis_units(tmp_path):
    from harness import server_binary
    bad = subprocess.run([str(server_binary()), "--maxmemory-clients", "12xb"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "--maxmemory-clients wants a size in bytes" in bad.stderr
    help_text = subprocess.run([str(server_binary()), "--help"], capture_output=True, text=True,
                               timeout=10).stdout
    for flag in ("--maxmemory-clients", "--client-query-buffer-limit",
                 "--client-output-buffer-limit"):
        assert flag in help_text


def test_memory_flags_show_in_info(vexlake):
    srv = vexlake(["--maxmemory-clients", "1gb", "--client-query-buffer-limit", "2m",
                   "--client-output-buffer-limit", "3kb"])
    mem = info(srv.client(), "memory")
    assert mem["maxmemory_clients"] == 1 << 30
    assert mem["client_query_buffer_limit"] == 2000000
    assert mem["client_output_buffer_limit"] == 3072
    assert mem["used_memory_rss"] > 0


def test_config_get_reports_the_memory_limits(vexlake):
    srv = vexlake(["--maxmemory-clients", "100mb"])
    got = srv.client().config_get("*")
    assert got["maxmemory-clients"] == str(100 << 20)
    assert got["client-query-buffer-limit"] == str(64 << 20)
    assert got["client-output-buffer-limit"] == str(256 << 20)
