"""Every command through redis-py, in RESP2 and RESP3 (the `proto` fixture)."""
import pytest
import redis

from harness import fp32, no_callback, parse_vec_text, same_bits, scores_from_reply, vec_text


def test_default_client_connects(server):
    """redis-py 8 defaults (HELLO + CLIENT SETINFO on connect) just work."""
    r = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    assert r.ping() is True
    info = r.client_info()
    assert info["lib-name"].startswith("redis-py"), info
    assert info["lib-ver"] == redis.__version__, info
    r.close()


def test_ping_echo(server, proto):
    r = server.client(proto)
    assert r.ping() is True
    assert no_callback(r, "PING", "hello world") == "hello world"
    assert r.echo("héllo\x00bin") == "héllo\x00bin"
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'ping'"):
        r.execute_command("PING", "a", "b")


def test_client_setinfo_on_connect(server, proto):
    r = server.client(proto)
    info = r.client_info()
    assert info["lib-name"].startswith("redis-py"), info
    assert info["lib-ver"] == redis.__version__
    assert int(info["resp"]) == proto
    assert r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "mylib") in ("OK", True)
    assert r.execute_command("CLIENT", "SETINFO", "lib-ver", "1.2.3") in ("OK", True)
    info = r.client_info()
    assert info["lib-name"] == "mylib" and info["lib-ver"] == "1.2.3"
    with pytest.raises(redis.ResponseError, match="Unrecognized option"):
        r.execute_command("CLIENT", "SETINFO", "FOO", "x")
    with pytest.raises(redis.ResponseError, match="cannot contain spaces"):
        r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "a b")


def test_client_subcommands(server, proto):
    r = server.client(proto)
    assert r.client_getname() is None
    assert r.client_setname("worker-1") is True
    assert r.client_getname() == "worker-1"
    cid = r.client_id()
    assert isinstance(cid, int) and cid > 0
    info = r.client_info()
    assert int(info["id"]) == cid and info["name"] == "worker-1"
    assert info["addr"].startswith("127.0.0.1:")
    with pytest.raises(redis.ResponseError, match="cannot contain spaces"):
        r.client_setname("has space")
    with pytest.raises(redis.ResponseError, match="unknown subcommand"):
        r.execute_command("CLIENT", "NOPE")
    # A second connection gets a different id.
    r2 = server.client(proto)
    assert r2.client_id() != cid


def test_hello(server, proto):
    r = server.client(proto)
    reply = r.execute_command("HELLO", proto)
    if isinstance(reply, list):  # RESP2: flat key/value list
        reply = dict(zip(reply[::2], reply[1::2]))
    assert reply["server"] == "vexlake"
    assert int(reply["proto"]) == proto
    assert reply["mode"] == "standalone" and reply["role"] == "master"
    assert int(reply["id"]) == r.client_id()
    with pytest.raises(redis.ResponseError, match="NOPROTO"):
        r.execute_command("HELLO", 4)
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.execute_command("HELLO", "x")
    with pytest.raises(redis.ResponseError, match="Syntax error"):
        r.execute_command("HELLO", proto, "BOGUS")
    reply = r.execute_command("HELLO", proto, "SETNAME", "via-hello")
    assert r.client_getname() == "via-hello"
    assert r.ping() is True


def test_hello_switches_protocol_raw(server):
    """HELLO 3 gives a map and RESP3 types; HELLO 2 switches back."""
    with server.raw() as c:
        c.send(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
        first = c._line()
        assert first == b"%7", first
        c.buf = b"%7\r\n" + c.buf
        m = c.read_reply()
        assert m[b"server"] == b"vexlake" and m[b"proto"] == 3
        c.send(b"*2\r\n$4\r\nVGET\r\n$7\r\nmissing\r\n")
        assert c._line() == b"_"  # RESP3 null
        c.send(b"*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n")
        assert c._line() == b"*14"
        c.buf = b"*14\r\n" + c.buf
        flat = c.read_reply()
        assert dict(zip(flat[::2], flat[1::2]))[b"proto"] == 2
        c.send(b"*2\r\n$4\r\nVGET\r\n$7\r\nmissing\r\n")
        assert c._line() == b"$-1"  # RESP2 null
        # HELLO with no version: reply in the current protocol
        assert isinstance(c.command("HELLO"), list)


def test_quit(server, proto):
    r = server.client(proto)
    conn = r.connection_pool.get_connection()
    conn.send_command("QUIT")
    assert conn.read_response() in ("OK", True)
    with pytest.raises((redis.ConnectionError, OSError)):
        conn.send_command("PING")
        conn.read_response()
    r.connection_pool.release(conn)
    conn.disconnect()
    assert r.ping() is True  # redis-py reconnects


def test_select(server, proto):
    r = server.client(proto)
    assert r.execute_command("SELECT", 0) in ("OK", True)
    with pytest.raises(redis.ResponseError, match="out of range"):
        r.execute_command("SELECT", 1)
    # db=0 in the URL works too
    r0 = redis.Redis.from_url(f"redis://127.0.0.1:{server.port}/0", protocol=proto)
    assert r0.ping() is True
    r0.close()


NAMES = {"ping", "echo", "quit", "shutdown", "hello", "client", "select", "command", "info",
         "stats", "dbsize", "vset", "vget", "vdel", "clear", "vsearch"}


def test_command_count_list_info_docs(server, proto):
    r = server.client(proto)
    listed = set(r.command_list())
    assert NAMES <= listed, NAMES - listed  # others may be added over time
    assert r.command_count() == len(listed)
    entries = no_callback(r, "COMMAND")
    assert len(entries) == len(listed)
    by_name = {e[0]: e for e in entries}
    assert set(by_name) == listed
    assert by_name["vset"][1] == -3 and "write" in by_name["vset"][2]
    assert by_name["vget"][1] in (2, -2) and "readonly" in by_name["vget"][2]
    assert by_name["vsearch"][1] == -3
    info = no_callback(r, "COMMAND", "INFO", "vget", "nosuch")
    assert len(info) == 2 and info[0][0] == "vget" and info[1] is None
    docs = no_callback(r, "COMMAND", "DOCS")
    assert len(docs) == 0
    with pytest.raises(redis.ResponseError, match="unknown subcommand"):
        r.execute_command("COMMAND", "FROB")


REQUIRED_INFO = ["vexlake_version", "redis_version", "uptime_in_seconds", "connected_clients",
                 "total_commands_processed", "vectors", "dimension", "metric", "bytes_on_disk"]


def test_info(server, proto):
    r = server.client(proto)
    info = r.info()
    for f in REQUIRED_INFO:
        assert f in info, (f, info)
    assert str(info["redis_version"]).count(".") == 2
    assert isinstance(info["uptime_in_seconds"], int) and info["uptime_in_seconds"] >= 0
    assert info["connected_clients"] >= 1
    assert info["vectors"] == 0 and info["dimension"] == 0 and info["metric"] == "cosine"
    before = info["total_commands_processed"]
    assert r.execute_command("VSET", "a", "[1, 2, 3]") in ("OK", True)
    r.execute_command("VSET", "b", "[1, 2, 4]")
    info = r.info()
    assert info["vectors"] == 2 and info["dimension"] == 3
    assert info["total_commands_processed"] >= before + 3
    assert info["bytes_on_disk"] > 0
    # Other clients are counted.
    others = [server.client(proto) for _ in range(3)]
    for o in others:
        o.ping()
    assert r.info()["connected_clients"] >= 4
    for o in others:
        o.close()


def test_info_sections(server, proto):
    r = server.client(proto)
    vec = r.info("vectors")
    assert set(vec) >= {"vectors", "dimension", "metric", "bytes_on_disk"}
    assert "uptime_in_seconds" not in vec
    srv = r.info("server")
    assert "vexlake_version" in srv and "vectors" not in srv
    assert "connected_clients" in r.info("clients")
    assert "total_commands_processed" in r.info("stats")
    assert "appendfsync" in r.info("persistence")
    assert set(REQUIRED_INFO) <= set(r.info("all"))
    assert set(REQUIRED_INFO) <= set(r.info("everything"))
    # Raw text: Redis layout with section headers.
    text = no_callback(server.client(proto), "INFO")
    for h in ("# Server", "# Clients", "# Stats", "# Persistence", "# Vectors"):
        assert h in text
    assert "\r\n" in text


def test_stats_alias(server, proto):
    r = server.client(proto)
    text = no_callback(r, "STATS")
    if isinstance(text, bytes):
        text = text.decode()
    assert "# Vectors" in text and "vexlake_version:" in text
    assert "total_commands_processed:" in text


def test_vset_vget_vdel_dbsize_clear(server, proto):
    r = server.client(proto)
    assert r.dbsize() == 0
    assert r.execute_command("VGET", "k1") is None
    assert r.execute_command("VSET", "k1", "[0.5, -1.25, 3]") in ("OK", True)
    got = r.execute_command("VGET", "k1")
    assert same_bits(parse_vec_text(got), [0.5, -1.25, 3.0])
    assert r.execute_command("VSET", "k2", "FP32", fp32([1, 2, 3])) in ("OK", True)
    assert r.dbsize() == 2
    assert r.execute_command("VDEL", "k1") == 1
    assert r.execute_command("VDEL", "k1") == 0
    assert r.execute_command("VGET", "k1") is None
    assert r.dbsize() == 1
    assert r.execute_command("CLEAR") in ("OK", True)
    assert r.dbsize() == 0
    assert r.execute_command("VGET", "k2") is None


def test_vsearch(server, proto):
    r = server.client(proto)
    vecs = {"x": [1, 0, 0], "y": [0, 1, 0], "z": [0.9, 0.1, 0]}
    for k, v in vecs.items():
        r.execute_command("VSET", k, vec_text(v))
    assert r.execute_command("VSEARCH", "[1, 0, 0]", 2) == ["x", "z"]
    assert r.execute_command("VSEARCH", "FP32", fp32([1, 0, 0]), 3) == ["x", "z", "y"]
    assert r.execute_command("VSEARCH", "[1, 0, 0]", 10) == ["x", "z", "y"]
    reply = r.execute_command("VSEARCH", "[1, 0, 0]", 3, "WITHSCORES")
    if proto == 3:
        assert isinstance(reply, dict) and all(isinstance(v, float) for v in reply.values())
    else:
        assert isinstance(reply, list) and len(reply) == 6
    pairs = scores_from_reply(reply, proto)
    assert [k for k, _ in pairs] == ["x", "z", "y"]
    assert pairs[0][1] == pytest.approx(0.0, abs=1e-6)
    assert pairs[2][1] == pytest.approx(1.0, abs=1e-6)
    # withscores is case-insensitive
    assert scores_from_reply(r.execute_command("VSEARCH", "[1, 0, 0]", 1, "withscores"),
                             proto)[0][0] == "x"


def test_binary_keys(server, proto):
    r = server.client(proto, decode=False)
    key = bytes(range(256))
    assert r.execute_command("VSET", key, "[1, 2]")
    assert r.execute_command("VGET", key) == b"[1.000000, 2.000000]"
    assert r.execute_command("VSEARCH", "[1, 2]", 1) == [key]
    assert r.execute_command("VDEL", key) == 1


def test_long_key_limit(server, proto):
    r = server.client(proto, decode=False)
    key = b"k" * 65536
    assert r.execute_command("VSET", key, "[1, 2]")
    assert r.execute_command("VSEARCH", "[1, 2]", 1) == [key]
    with pytest.raises(redis.ResponseError, match="maximum is 65536"):
        r.execute_command("VSET", key + b"k", "[1, 2]")
    server.assert_healthy()


def test_shutdown(server, proto):
    r = server.client(proto)
    r.execute_command("VSET", "persist", "[1, 2, 3]")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SHUTDOWN", "BOGUS")
    r.shutdown()  # redis-py expects the connection to drop
    assert server.proc.wait(10) == 0
    server.restart()
    r = server.client(proto)
    assert same_bits(parse_vec_text(r.execute_command("VGET", "persist")), [1, 2, 3])


def test_shutdown_nosave(server):
    r = server.client()
    with pytest.raises(redis.ConnectionError):
        r.execute_command("SHUTDOWN", "NOSAVE")
    assert server.proc.wait(10) == 0
