"""Bad input: every case must give a clear -ERR, and the server must keep
serving (the same connection where the protocol allows, and a fresh one)."""
import socket
import threading
import time

import numpy as np
import pytest
import redis

from harness import RespError, encode_command, fp32, vec_text


def expect_error(server, proto, args, match, decode=True):
    r = server.client(proto, decode=decode)
    with pytest.raises(redis.ResponseError, match=match) as ei:
        r.execute_command(*args)
    msg = str(ei.value)
    assert "\n" not in msg and "\r" not in msg
    assert r.ping() is True  # same connection still usable
    r.close()
    server.assert_healthy()  # fresh connection too
    return msg


def raw_error(server, args, match):
    """Send via a raw socket; the reply must be exactly one -ERR line."""
    with server.raw() as c:
        reply = c.command(*args)
        assert isinstance(reply, RespError), reply
        assert reply.startswith("ERR "), reply
        assert match in reply, reply
        assert c.command("PING") == "PONG"
    server.assert_healthy()
    return reply


# ---- wrong arity / unknown command ----------------------------------------

@pytest.mark.parametrize("args,name", [
    (["VSET", "k"], "vset"),
    (["VSET"], "vset"),
    (["VGET"], "vget"),
    (["VDEL"], "vdel"),
    (["VDEL", "a", "b"], "vdel"),
    (["VSEARCH", "[1]"], "vsearch"),
    (["DBSIZE", "x"], "dbsize"),
    (["CLEAR", "x"], "clear"),
    (["ECHO"], "echo"),
    (["ECHO", "a", "b"], "echo"),
    (["SELECT"], "select"),
    (["CLIENT"], "client"),
])
def test_wrong_arity(server, proto, args, name):
    expect_error(server, proto, args, rf"^wrong number of arguments for '{name}' command$")


def test_wrong_arity_raw(server):
    raw_error(server, ["vset", "k"], "ERR wrong number of arguments for 'vset' command")


def test_unknown_command(server, proto):
    msg = expect_error(server, proto, ["FROBNICATE", "a", "b"], "unknown command 'FROBNICATE'")
    assert "with args beginning with: 'a' 'b'" in msg


def test_unknown_command_binary_name(server):
    reply = raw_error(server, [b"\x00\xff\r\nX", b"arg"], "unknown command")
    assert "\r" not in reply and "\n" not in reply


def test_syntax_errors(server, proto):
    expect_error(server, proto, ["VSET", "k", "[1, 2]", "extra"], "syntax error: VSET key vector")
    expect_error(server, proto, ["VSEARCH", "[1, 2]", "3", "WITHSCORES", "x"], "syntax error")
    expect_error(server, proto, ["VSEARCH", "[1, 2]", "3", "NOPE"], "syntax error")
    expect_error(server, proto, ["VSEARCH", "FP32", fp32([1, 2])], "syntax error")
    expect_error(server, proto, ["VSET", "k", "FP32"], "FP32 must be followed by a float32 blob")
    expect_error(server, proto, ["VSET", "", "[1, 2]"], "empty key")
    # VGET takes one key (newer servers: VGET key [VERSION n]); two words is wrong either way
    expect_error(server, proto, ["VGET", "a", "b"], "syntax error|wrong number of arguments")


# ---- vectors -----------------------------------------------------------------

@pytest.mark.parametrize("text,match", [
    ("1, 2, 3", "invalid vector: expected '\\['"),
    ("", "invalid vector: expected '\\['"),
    ("[1, x]", "element 1 \\('x'\\) is not a number"),
    ("[1 2]", "expected ',' or '\\]' after element 0"),
    ("[1,,2]", "missing number at element 1"),
    ("[1, 2", "expected ',' or '\\]' after element 1"),
    ("[1, 2] junk", "unexpected text after '\\]'"),
    ("[1, 2,]", "missing number at element 2"),
    ("[0x1g]", "not a number"),
    ("[1e999]", "out of float32 range"),
    ("[1" + "0" * 70 + "]", "too long"),
])
def test_unparsable_vector(server, proto, text, match):
    expect_error(server, proto, ["VSET", "k", text], match)
    expect_error(server, proto, ["VSEARCH", text, 1], match)
    assert server.client(proto).dbsize() == 0


@pytest.mark.parametrize("text", ["[nan, 1]", "[1, NaN]", "[-nan]", "[NAN, 2, 3]"])
def test_nan(server, proto, text):
    expect_error(server, proto, ["VSET", "k", text], "NaN or Inf")
    expect_error(server, proto, ["VSEARCH", text, 1], "NaN or Inf")


def test_nan_fp32(server, proto):
    blob = np.array([1.0, np.nan, 2.0], dtype="<f4").tobytes()
    expect_error(server, proto, ["VSET", "k", "FP32", blob], "element 1 is NaN or Inf")
    expect_error(server, proto, ["VSEARCH", "FP32", blob, 1], "NaN or Inf")


@pytest.mark.parametrize("text", ["[inf]", "[1, -inf]", "[Infinity, 0]", "[1, -INFINITY]"])
def test_inf(server, proto, text):
    expect_error(server, proto, ["VSET", "k", text], "NaN or Inf")
    expect_error(server, proto, ["VSEARCH", text, 1], "NaN or Inf")


def test_inf_fp32(server, proto):
    for bad in (np.inf, -np.inf):
        blob = np.array([0.5, 1.0, bad], dtype="<f4").tobytes()
        expect_error(server, proto, ["VSET", "k", "FP32", blob], "element 2 is NaN or Inf")
        expect_error(server, proto, ["VSEARCH", "FP32", blob, 1], "NaN or Inf")
    assert server.client(proto).dbsize() == 0


@pytest.mark.parametrize("text", ["[]", "[ ]", " [ \t] "])
def test_empty_vector(server, proto, text):
    expect_error(server, proto, ["VSET", "k", text], "empty vector")
    expect_error(server, proto, ["VSEARCH", text, 1], "empty vector")


def test_empty_fp32(server, proto):
    expect_error(server, proto, ["VSET", "k", "FP32", b""], "empty vector")
    expect_error(server, proto, ["VSEARCH", "FP32", b"", 1], "empty vector")


def test_dimension_mismatch(server, proto):
    r = server.client(proto)
    assert r.execute_command("VSET", "base", vec_text(np.arange(1, 129)))
    msg = expect_error(server, proto, ["VSET", "k", "[1, 2, 3, 4]"], "expected 128, got 4")
    assert "dimension mismatch" in msg
    expect_error(server, proto, ["VSEARCH", "[1, 2, 3, 4]", 3], "expected 128, got 4")
    expect_error(server, proto, ["VSET", "k", "FP32", fp32([1, 2, 3, 4])], "expected 128, got 4")
    expect_error(server, proto, ["VSEARCH", "FP32", fp32(np.ones(129)), 3], "expected 128, got 129")
    assert r.dbsize() == 1
    assert r.execute_command("VGET", "k") is None


def test_dimension_too_large(server, proto):
    big = np.ones(16385, dtype=np.float32)
    expect_error(server, proto, ["VSET", "k", "FP32", fp32(big)],
                 "vector has 16385 dimensions; the maximum is 16384")
    expect_error(server, proto, ["VSET", "k", vec_text(big)], "more than 16384 elements")
    expect_error(server, proto, ["VSEARCH", "FP32", fp32(big), 1], "maximum is 16384")
    expect_error(server, proto, ["VSEARCH", vec_text(big), 1], "more than 16384 elements")
    assert server.client(proto).dbsize() == 0


def test_dimension_at_limit_works(server, proto):
    r = server.client(proto)
    v = np.linspace(-1, 1, 16384, dtype=np.float32)
    assert r.execute_command("VSET", "max", "FP32", fp32(v))
    assert r.execute_command("VSET", "max2", vec_text(v[::-1]))
    assert r.execute_command("VSEARCH", "FP32", fp32(v), 2) == ["max", "max2"]
    assert r.info("vectors")["dimension"] == 16384
    got = r.execute_command("VGET", "max")
    assert got.count(",") == 16383


# ---- K ---------------------------------------------------------------------

@pytest.mark.parametrize("k,match", [
    ("0", "K must be a positive integer"),
    ("-1", "K must be a positive integer"),
    ("abc", "K must be a positive integer"),
    ("", "K must be a positive integer"),
    ("1.5", "K must be a positive integer"),
    (" 5", "K must be a positive integer"),
    ("10001", "K must be at most 10000"),
    ("99999999999999999999999", "K must be a positive integer"),
    ("18446744073709551617", "K must be"),
])
def test_bad_k(server, proto, k, match):
    r = server.client(proto)
    r.execute_command("VSET", "a", "[1, 2]")
    expect_error(server, proto, ["VSEARCH", "[1, 2]", k], match)
    expect_error(server, proto, ["VSEARCH", "FP32", fp32([1, 2]), k, "WITHSCORES"], match)


def test_k_at_limit_works(server, proto):
    r = server.client(proto)
    r.execute_command("VSET", "a", "[1, 2]")
    assert r.execute_command("VSEARCH", "[1, 2]", 10000) == ["a"]


# ---- FP32 blobs --------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 3, 5, 7, 513])
def test_fp32_blob_not_multiple_of_4(server, proto, n):
    blob = bytes(range(1, n + 1)) if n < 256 else b"\x01" * n
    expect_error(server, proto, ["VSET", "k", "FP32", blob],
                 f"FP32 blob length {n} is not a multiple of 4")
    expect_error(server, proto, ["VSEARCH", "FP32", blob, 1], "not a multiple of 4")


# ---- protocol level: raw sockets ------------------------------------------

def assert_protocol_error_and_close(server, payload, match):
    with server.raw() as c:
        c.send(payload)
        reply = c.read_reply()
        assert isinstance(reply, RespError), reply
        assert reply.startswith("ERR Protocol error"), reply
        assert match in reply, reply
        assert c.closed_by_peer(), "connection should be closed after a protocol error"
    server.assert_healthy()


def test_oversized_bulk(server):
    """A bulk > 8 MiB is refused from its header; the connection closes."""
    assert_protocol_error_and_close(
        server, b"*3\r\n$4\r\nVSET\r\n$1\r\nk\r\n$8388609\r\n", "invalid bulk length")


def test_oversized_bulk_with_payload(server):
    """Same, with the client already streaming the payload (it may see a reset
    once the server closes with unread bytes; the error must come first or the
    connection must at least be dropped, and the server must survive)."""
    with server.raw() as c:
        c.send(b"*3\r\n$4\r\nVSET\r\n$1\r\nk\r\n$9000000\r\n")
        try:
            c.send(b"x" * 1_000_000)
        except OSError:
            pass
        try:
            reply = c.read_reply()
            assert isinstance(reply, RespError) and "invalid bulk length" in reply, reply
            assert c.closed_by_peer()
        except (ConnectionError, OSError):
            pass
    server.assert_healthy()
    assert server.client().dbsize() == 0


def test_bulk_at_limit_is_accepted(server):
    """Exactly 8 MiB in one argument is allowed (ECHO it back)."""
    payload = bytes(range(256)) * (8 * 1024 * 1024 // 256)
    r = server.client(decode=False)
    assert r.echo(payload) == payload
    with pytest.raises(redis.ResponseError, match="maximum is 65536"):
        r.execute_command("VSET", payload, "[1]")
    server.assert_healthy()


@pytest.mark.timeout(60)
def test_oversized_request_query_buffer(server):
    """Many in-limit bulks adding up to more than the 64 MiB query buffer."""
    chunk = b"a" * (7 * 1024 * 1024)
    header = b"*11\r\n$4\r\nECHO\r\n"
    body = b"".join(b"$%d\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10))
    c = server.raw(timeout=30)
    errors = []

    def sender():
        try:
            c.send(header + body)
        except OSError as e:  # the server stops reading and closes
            errors.append(e)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got = None
    try:
        got = c.read_reply()
    except (ConnectionError, OSError):
        pass
    t.join(30)
    c.close()
    if got is not None:
        assert isinstance(got, RespError) and "request larger than 67108864 bytes" in got, got[:200]
    server.assert_healthy()


@pytest.mark.parametrize("payload,match", [
    (b"*1\r\n$abc\r\n", "invalid bulk length"),
    (b"*abc\r\n", "invalid multibulk length"),
    (b"*1\r\n$-5\r\n", "invalid bulk length"),
    (b"*1\r\n+PING\r\n", "expected '$', got '+'"),
    (b"*1\r\n$4\r\nPINGXX\r\n", "bulk string not terminated by CRLF"),
    (b"*2000000\r\n", "too many arguments"),
    (b"*1\r\n$" + b"9" * 40, "invalid bulk length"),  # header line without CRLF, too long
    (b"*" + b"1" * 40, "invalid multibulk length"),
    (b'ECHO "unbalanced\r\n', "unbalanced quotes"),
    (b'ECHO "a"b\r\n', "closing quote must be followed by a space"),
])
def test_malformed_resp(server, payload, match):
    assert_protocol_error_and_close(server, payload, match)


def test_inline_too_big(server):
    assert_protocol_error_and_close(server, b"PING " + b"x" * (70 * 1024), "too big inline request")


def test_malformed_after_good_commands(server):
    """Replies to the good commands before the garbage are all delivered."""
    with server.raw() as c:
        c.send(encode_command("VSET", "a", "[1, 2]") + encode_command("PING") + b"*1\r\n$x\r\n")
        assert c.read_reply() == "OK"
        assert c.read_reply() == "PONG"
        err = c.read_reply()
        assert isinstance(err, RespError) and "Protocol error" in err
        assert c.closed_by_peer()
    assert server.client().execute_command("VGET", "a") == "[1.000000, 2.000000]"


def test_inline_commands(server):
    with server.raw() as c:
        c.send(b"PING\r\n")
        assert c.read_reply() == "PONG"
        c.send(b'VSET ik "[1, 2, 3]"\n')
        assert c.read_reply() == "OK"
        c.send(b"VGET ik\r\n\r\n")  # an empty line is skipped
        assert c.read_reply() == b"[1.000000, 2.000000, 3.000000]"
        c.send(b"DBSIZE\r\n")
        assert c.read_reply() == 1


def test_split_request_byte_by_byte(server):
    """A request arriving one byte at a time is still parsed."""
    req = encode_command("VSET", "slow", "[1.5, 2.5]") + encode_command("VGET", "slow")
    with server.raw() as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(req)):
            c.send(req[i:i + 1])
            if i % 7 == 0:
                time.sleep(0.001)
        assert c.read_reply() == "OK"
        assert c.read_reply() == b"[1.500000, 2.500000]"


def test_errors_in_pipeline_keep_order(server, proto):
    r = server.client(proto)
    p = r.pipeline(transaction=False)
    p.execute_command("VSET", "a", "[1, 2]")
    p.execute_command("VSET", "b", "[1, 2, 3]")
    p.execute_command("VSEARCH", "[1, 2]", 0)
    p.execute_command("NOPE")
    p.execute_command("VGET", "a")
    res = p.execute(raise_on_error=False)
    assert res[0] in ("OK", True)
    assert isinstance(res[1], redis.ResponseError) and "expected 2, got 3" in str(res[1])
    assert isinstance(res[2], redis.ResponseError) and "K must be" in str(res[2])
    assert isinstance(res[3], redis.ResponseError) and "unknown command" in str(res[3])
    assert res[4] == "[1.000000, 2.000000]"
    assert r.info("stats")["total_error_replies"] >= 3


# ---- clients going away ----------------------------------------------------

@pytest.mark.parametrize("partial", [
    b"*3\r\n",
    b"*3\r\n$4\r\nVSET\r\n$1\r\nk\r\n",
    b"*3\r\n$4\r\nVSET\r\n$1\r\nk\r\n$12\r\n[1, 2",
    b"*3\r\n$4\r\nVSET\r\n$1\r\nk\r\n$4000000\r\n" + b"[" * 100000,
    b"VSET k [1,2]",  # inline without the newline
])
def test_disconnect_mid_command(server, partial):
    r = server.client()
    for _ in range(3):
        c = server.raw()
        c.send(partial)
        time.sleep(0.05)
        c.close()
    # Abortive close (RST) as well.
    c = server.raw()
    c.send(partial)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    server.assert_healthy()
    assert r.execute_command("VGET", "k") is None
    assert r.dbsize() == 0
    deadline = time.time() + 5
    while r.info("clients")["connected_clients"] != 1 and time.time() < deadline:
        time.sleep(0.05)
    assert r.info("clients")["connected_clients"] == 1


@pytest.mark.timeout(60)
def test_disconnect_while_vsearch_runs(vexlake):
    """Clients vanish while their searches (and queued requests) are in flight."""
    server = vexlake(["--metric", "l2", "--threads", "2"])
    rng = np.random.default_rng(7)
    dim, n = 256, 20000
    data = rng.standard_normal((n, dim)).astype(np.float32)
    r = server.client(decode=False)
    for start in range(0, n, 2000):
        p = r.pipeline(transaction=False)
        for i in range(start, start + 2000):
            p.execute_command("VSET", b"v%d" % i, "FP32", data[i].tobytes())
        assert all(p.execute())
    q = fp32(rng.standard_normal(dim))
    search = encode_command("VSEARCH", "FP32", q, 10000, "WITHSCORES")
    for round_ in range(20):
        socks = []
        for _ in range(4):
            c = server.raw()
            c.send(search * 20 + encode_command("VSET", "after", "[1]"))
            socks.append(c)
        time.sleep(0.005 * (round_ % 4))
        for i, c in enumerate(socks):
            if i % 2:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.close()
    server.assert_healthy()
    # Searches still answer correctly afterwards.
    res = r.execute_command("VSEARCH", "FP32", data[123].tobytes(), 1)
    assert res == [b"v123"]
    assert r.dbsize() == n
    deadline = time.time() + 10
    while r.info("clients")["connected_clients"] != 1 and time.time() < deadline:
        time.sleep(0.05)
    assert r.info("clients")["connected_clients"] == 1
    assert r.info("clients")["blocked_clients"] == 0


def test_maxclients(vexlake):
    server = vexlake(["--maxclients", "3"])
    keep = [server.raw() for _ in range(3)]
    for c in keep:
        assert c.command("PING") == "PONG"
    with server.raw() as extra:
        extra.send(encode_command("PING"))
        reply = extra.read_reply()
        assert isinstance(reply, RespError) and "max number of clients reached" in reply
        assert extra.closed_by_peer()
    keep.pop().close()
    time.sleep(0.2)
    server.assert_healthy()
    for c in keep:
        c.close()


def test_commands_after_quit_are_not_run(server):
    with server.raw() as c:
        c.send(encode_command("QUIT") + encode_command("VSET", "after_quit", "[1]"))
        assert c.read_reply() == "OK"
        assert c.closed_by_peer()
    time.sleep(0.1)
    assert server.client().execute_command("VGET", "after_quit") is None
