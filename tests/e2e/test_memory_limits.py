"""Memory under hostile clients (issue 6, defect 4): query buffers capped per
client and in total (client eviction), output buffers capped before a reply
is built, and --maxmemory for the data."""
import re
import socket
import subprocess
import threading
import time

import pytest
import redis

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


# ---- reply amplification ---------------------------------------------------

KEY_BYTES = 64 * 1024


def big_key(i: int) -> bytes:
    return b"%06d" % i + b"k" * (KEY_BYTES - 6)


def load_big_keys(r, n: int):
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.execute_command("VSET", big_key(i), f"[{i}]")
        if i % 200 == 199:
            pipe.execute()
    pipe.execute()


def vm_kb(pid: int, field: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def send_and_never_read(port: int, *cmd) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(encode_command(*cmd))
    return s


@pytest.mark.timeout(180)
def test_vsearch_reply_past_the_output_limit_is_never_built(vexlake):
    # 2000 keys of 64 KiB: one 23-byte VSEARCH asks for a 131 MB reply.  Four
    # clients that never read used to pin four of them (3.1 GB at the issue's
    # scale); the limit must refuse the reply before building it, so the
    # server's peak RSS does not move by a reply's size.
    n = 2000
    srv = vexlake(["--metric", "l2", "--appendfsync", "no",
                   "--client-output-buffer-limit", "64mb"])
    r = srv.client(decode=False)
    load_big_keys(r, n)
    assert r.dbsize() == n
    pid = srv.proc.pid
    peak_before = vm_kb(pid, "VmHWM")
    hostile = [send_and_never_read(srv.port, "VSEARCH", "[0]", str(n)) for _ in range(4)]
    try:
        wait_for(lambda: info(r, "stats")["client_output_buffer_limit_disconnections"] == 4,
                 what="four output-limit disconnections")
        for s in hostile:
            assert closed_by_peer(s)
        grew_mb = (vm_kb(pid, "VmHWM") - peak_before) / 1024
        assert grew_mb < 64, f"peak RSS grew by {grew_mb:.0f} MB for replies never sent"
        assert r.ping() is True
        assert r.execute_command("VGET", big_key(7)) == b"[7.000000]"
        assert r.execute_command("VSEARCH", "[3]", "1") == [big_key(3)]
    finally:
        for s in hostile:
            s.close()
    assert re.search(r"Client id=\d+ addr=127\.0\.0\.1:\d+ .* scheduled to be closed ASAP for "
                     r"overcoming of output buffer limits", srv.log_tail(20000))
    srv.assert_healthy()


@pytest.mark.timeout(180)
def test_replies_of_all_clients_count_against_maxmemory_clients(vexlake):
    # No per-client limit, 100 MB for all clients: two non-reading clients
    # each asking for a 66 MB reply cannot both keep theirs.
    n = 1000
    srv = vexlake(["--metric", "l2", "--appendfsync", "no", "--client-output-buffer-limit", "0",
                   "--maxmemory-clients", "100mb"])
    r = srv.client(decode=False)
    load_big_keys(r, n)
    hostile = [send_and_never_read(srv.port, "VSEARCH", "[0]", str(n)) for _ in range(2)]
    try:
        wait_for(lambda: info(r, "stats")["evicted_clients"] >= 1, what="an eviction")
        mem = info(r, "memory")
        assert mem["mem_clients_normal"] <= 100 * MiB, mem
        assert r.ping() is True
    finally:
        for s in hostile:
            s.close()
    assert "Evicting client: id=" in srv.log_tail(20000)


# ---- --maxmemory for the data ----------------------------------------------

OOM = "OOM command not allowed when used memory > 'maxmemory'."


def fill_until_oom(r, start=0, limit=10000):
    """VSET 64 KiB keys until the server refuses one; returns the count stored."""
    for i in range(start, start + limit):
        try:
            r.execute_command("VSET", big_key(i), f"[{i}, 1]")
        except redis.ResponseError as e:
            assert OOM.endswith(str(e)), str(e)  # redis-py drops the "OOM" code word
            return i - start
    pytest.fail("no OOM reply")


def test_maxmemory_refuses_writes_with_redis_oom_and_keeps_reads(vexlake):
    srv = vexlake(["--metric", "l2", "--appendfsync", "no", "--maxmemory", "8mb"])
    r = srv.client(decode=False)
    stored = fill_until_oom(r)
    assert 50 < stored < 130, stored  # 8 MiB of 64 KiB keys, less the vectors and index
    with srv.raw() as c:  # the exact error line on the wire
        assert c.command("VSET", big_key(99999), "[1, 2]") == RespError(OOM)
    mem = info(r, "memory")
    assert mem["maxmemory"] == 8 << 20
    assert mem["maxmemory_human"] == "8.00M"
    assert mem["maxmemory_policy"] == "noeviction"
    assert stored * KEY_BYTES <= mem["used_memory"] <= 8 << 20, mem
    assert mem["collection_default_bytes"] == mem["used_memory"]
    assert mem["collection_default_keys_bytes"] >= stored * KEY_BYTES
    assert mem["collection_default_vectors_bytes"] > 0
    assert mem["collection_default_index_bytes"] > 0
    assert mem["used_memory_rss"] > mem["used_memory"]
    # Reads keep working.
    assert r.dbsize() == stored
    assert r.execute_command("VGET", big_key(3)) == b"[3.000000, 1.000000]"
    assert r.execute_command("VSEARCH", "[5, 1]", "1") == [big_key(5)]
    assert r.execute_command("VGET", big_key(stored)) is None  # the refused one is not there
    # Deleting frees memory (reclaimed by maintenance within a moment).
    used = mem["used_memory"]
    for i in range(20):
        assert r.execute_command("VDEL", big_key(i)) == 1
    wait_for(lambda: info(r, "memory")["used_memory"] < used - 10 * KEY_BYTES,
             what="deleted rows reclaimed")
    assert fill_until_oom(r, start=1000) >= 10
    # CLEAR is always allowed and frees the data.
    assert r.execute_command("CLEAR") == b"OK"
    assert info(r, "memory")["used_memory"] < 1 << 20
    r.execute_command("VSET", b"small", "[1, 2]")
    assert srv.client().config_get("maxmemory") == {"maxmemory": str(8 << 20)}


def test_maxmemory_holds_across_a_restart(vexlake):
    srv = vexlake(["--metric", "l2", "--appendfsync", "no", "--maxmemory", "4mb"])
    r = srv.client(decode=False)
    stored = fill_until_oom(r)
    srv.stop()
    srv.start()
    r = srv.client(decode=False)
    assert r.dbsize() == stored  # replay is never refused
    with pytest.raises(redis.ResponseError, match="command not allowed when used memory"):
        r.execute_command("VSET", big_key(5000), "[1, 2]")


def test_info_memory_without_a_limit(server):
    r = server.client()
    mem = info(r, "memory")
    assert mem["used_memory"] == 0 and mem["maxmemory"] == 0
    r.execute_command("VSET", "a", "[1, 2]")
    mem = info(r, "memory")
    assert mem["used_memory"] == mem["collection_default_bytes"] > 0
    from harness import no_callback
    assert "# Memory" in no_callback(r, "INFO")  # in the default sections
