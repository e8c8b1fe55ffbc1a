"""TLS (--tls-port) end to end: redis-cli --tls and redis-py ssl=True against a
real server, with a CA, server and client certificates made by the openssl CLI.

What each test proves:
- clients with and without a certificate under --tls-auth-clients yes|no|optional
  get exactly the access the mode promises; a certificate from another CA is
  refused;
- plain text on the TLS port, a TLS 1.1 client, and a handshake trickled one
  byte at a time neither crash nor stall the server;
- a large pipelined workload (MiB of requests, replies far above the socket
  buffers) arrives intact, so partial TLS writes and want-write are handled;
- writes acknowledged over TLS survive kill -9;
- --maxclients counts TLS clients;
- --port 0 serves TLS only; bad certificate or key files stop the start with
  the file named and OpenSSL's reason.
"""
from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness import REDIS_CLI, RawConn, encode_command, fp32, free_port, server_binary, text_equals

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

REFUSED = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ssl.SSLError, OSError)


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """ca.crt signs server.crt (SAN 127.0.0.1, localhost) and client.crt;
    other-ca.crt signs stranger.crt."""
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2",
                "-subj", f"/CN=VexLake test {ca}")
    leaves = {
        "server": ("ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        "client": ("ca", "extendedKeyUsage=clientAuth\n"),
        "stranger": ("other-ca", "extendedKeyUsage=clientAuth\n"),
    }
    for name, (ca, ext) in leaves.items():
        (d / f"{name}.ext").write_text(ext)
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")
    return d


def tls_flags(pki: Path, tls_port: int, auth: str = "yes", ca: bool = True):
    flags = ["--tls-port", str(tls_port), "--tls-cert-file", str(pki / "server.crt"),
             "--tls-key-file", str(pki / "server.key"), "--tls-auth-clients", auth]
    if ca:
        flags += ["--tls-ca-cert-file", str(pki / "ca.crt")]
    return flags


def start_tls(vexlake, pki, auth="yes", extra=()):
    tls_port = free_port()
    srv = vexlake([*tls_flags(pki, tls_port, auth), *extra])
    srv.tls_port = tls_port
    return srv


def tls_client(port: int, pki: Path, cert: str | None = "client", **kw) -> redis.Redis:
    kw.setdefault("socket_timeout", 20)
    kw.setdefault("socket_connect_timeout", 5)
    kw.setdefault("protocol", 2)
    kw.setdefault("decode_responses", True)
    if cert:
        kw.update(ssl_certfile=str(pki / f"{cert}.crt"), ssl_keyfile=str(pki / f"{cert}.key"))
    return redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(pki / "ca.crt"),
                       retry=Retry(NoBackoff(), 0), **kw)


def tls_works(port: int, pki: Path, cert: str | None = "client") -> bool:
    r = tls_client(port, pki, cert)
    try:
        return r.ping() is True
    except REFUSED:
        return False
    finally:
        r.close()


def logged(srv, text: str, timeout: float = 5.0) -> bool:
    """The server logs a refusal just after sending its alert: wait for it."""
    deadline = time.monotonic() + timeout
    while text not in srv.log_tail(1 << 20):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def cli(port: int, pki: Path, *args, cert: str | None = "client"):
    cmd = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), "--tls", "--cacert", str(pki / "ca.crt")]
    if cert:
        cmd += ["--cert", str(pki / f"{cert}.crt"), "--key", str(pki / f"{cert}.key")]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=20,
                          stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------------------
# Access by mode
# ---------------------------------------------------------------------------


def test_redis_cli_tls(vexlake, pki):
    srv = start_tls(vexlake, pki)
    assert cli(srv.tls_port, pki, "PING").stdout.strip() == "PONG"
    assert cli(srv.tls_port, pki, "VSET", "k", "[1, 2, 3]").stdout.strip() == "OK"
    assert text_equals(cli(srv.tls_port, pki, "VGET", "k").stdout, [1, 2, 3])
    # No client certificate under the default --tls-auth-clients yes.
    p = cli(srv.tls_port, pki, "PING", cert=None)
    assert "PONG" not in p.stdout
    # The plain port works alongside and sees the same data.
    assert text_equals(srv.client().execute_command("VGET", "k"), [1, 2, 3])
    srv.assert_healthy()


# (mode, certificate the client presents) -> served?
ACCESS = [
    ("yes", "client", True),
    ("yes", None, False),
    ("yes", "stranger", False),
    ("optional", "client", True),
    ("optional", None, True),
    ("optional", "stranger", False),
    ("no", "client", True),
    ("no", None, True),
]


@pytest.mark.parametrize("auth,cert,served", ACCESS,
                         ids=[f"{a}-{c or 'nocert'}" for a, c, _ in ACCESS])
def test_redis_py_auth_clients(vexlake, pki, auth, cert, served):
    srv = start_tls(vexlake, pki, auth)
    r = tls_client(srv.tls_port, pki, cert)
    if served:
        assert r.ping() is True
        assert r.execute_command("VSET", "a", "[0.5, 1.5]") in (True, "OK")
        assert text_equals(r.execute_command("VGET", "a"), [0.5, 1.5])
    else:
        with pytest.raises(REFUSED):
            r.ping()
        assert logged(srv, "TLS handshake with 127.0.0.1:"), srv.log_tail()
    r.close()
    srv.assert_healthy()
    assert tls_works(srv.tls_port, pki)


def test_info_and_config_show_tls(vexlake, pki):
    srv = start_tls(vexlake, pki, "optional")
    r = tls_client(srv.tls_port, pki)
    info = r.info()
    assert info["tls_port"] == srv.tls_port
    assert info["connected_tls_clients"] == 1
    assert r.config_get("tls-*") == {"tls-port": str(srv.tls_port), "tls-auth-clients": "optional"}
    assert srv.client().info()["connected_tls_clients"] == 1
    r.close()


def test_maxclients_counts_tls_clients(vexlake, pki):
    srv = start_tls(vexlake, pki, extra=["--maxclients", "1"])
    holder = tls_client(srv.tls_port, pki)
    assert holder.ping() is True
    # Full: a second TLS client is closed during its handshake, a plain one
    # gets the usual error; neither is served.
    assert not tls_works(srv.tls_port, pki)
    with srv.raw() as c:
        assert c.read_reply() == "ERR max number of clients reached"
    assert holder.info()["rejected_connections"] == 2
    holder.close()
    deadline = time.monotonic() + 10
    while not tls_works(srv.tls_port, pki):  # the slot frees once the server sees the close
        assert time.monotonic() < deadline
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# Hostile or outdated peers on the TLS port
# ---------------------------------------------------------------------------


def test_plain_text_on_tls_port_is_refused(vexlake, pki):
    srv = start_tls(vexlake, pki)
    for payload in (b"PING\r\n", encode_command("CLEAR"), b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"):
        with RawConn(srv.tls_port) as c:
            c.send(payload)
            assert c.closed_by_peer()
            assert b"PONG" not in c.buf and b"OK" not in c.buf
    assert logged(srv, "wrong version number") or logged(srv, "http request"), srv.log_tail()
    srv.assert_healthy()
    assert tls_works(srv.tls_port, pki)


def old_protocol_context(maximum: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old versions are the point
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = maximum
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the local OpenSSL offer TLS 1.0/1.1 at all
    return ctx


def test_tls_1_1_client_is_refused(vexlake, pki):
    srv = start_tls(vexlake, pki, "no")
    try:
        old = old_protocol_context(ssl.TLSVersion.TLSv1_1)
    except (ValueError, ssl.SSLError) as e:
        pytest.skip(f"local OpenSSL cannot make a TLS 1.1 client: {e}")
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as s:
        with pytest.raises(ssl.SSLError) as e:
            old.wrap_socket(s).close()
    if "NO_PROTOCOLS_AVAILABLE" in str(e.value) or "no protocols available" in str(e.value):
        pytest.skip("local OpenSSL refuses to send a TLS 1.1 hello")
    assert logged(srv, "unsupported protocol"), (str(e.value), srv.log_tail())
    # The same client allowed TLS 1.2 is served: the version was the reason.
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as s:
        with old_protocol_context(ssl.TLSVersion.TLSv1_2).wrap_socket(s) as t:
            assert t.version() == "TLSv1.2"
            t.sendall(encode_command("PING"))
            assert t.recv(64) == b"+PONG\r\n"
    srv.assert_healthy()


def test_trickled_handshake_does_not_stall_the_loop(vexlake, pki):
    """The ClientHello arrives one byte at a time; between bytes the server
    answers on the plain port, so it never waits for the handshake."""
    srv = start_tls(vexlake, pki, "no")
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname="localhost")
    plain = srv.raw()
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as s:
        first = True
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            data = out.read()
            if first:  # the ClientHello, a byte at a time
                for i in range(len(data)):
                    s.sendall(data[i:i + 1])
                    if i % 16 == 0:
                        assert plain.command("PING") == "PONG"
                first = False
            else:
                s.sendall(data)
            chunk = s.recv(65536)
            assert chunk, "server closed during the handshake"
            inc.write(chunk)
        s.sendall(out.read())
        tls.write(encode_command("PING"))
        s.sendall(out.read())
        reply = b""
        while not reply.endswith(b"\r\n"):
            inc.write(s.recv(65536))
            try:
                reply += tls.read(64)
            except ssl.SSLWantReadError:
                pass
        assert reply == b"+PONG\r\n"
    plain.close()


# ---------------------------------------------------------------------------
# Volume and durability over TLS
# ---------------------------------------------------------------------------


def test_large_pipelined_workload(vexlake, pki):
    """8 MiB of pipelined FP32 VSETs, 3.6 MiB of pipelined VGET replies, a
    VSEARCH reply of ~240 KiB, and 12 MiB for a slow reader: far more than one
    TLS record or socket buffer, so SSL_write makes partial writes and waits
    for the socket (want-write)."""
    srv = start_tls(vexlake, pki)
    r = tls_client(srv.tls_port, pki, decode_responses=False)
    dim, n = 1024, 2000
    vecs = np.random.default_rng(7).standard_normal((n, dim)).astype(np.float32)
    names = [f"k{i:05d}:" + "x" * 100 for i in range(n)]
    p = r.pipeline(transaction=False)
    for name, v in zip(names, vecs):
        p.execute_command("VSET", name, "FP32", fp32(v))
    assert all(x in (True, b"OK") for x in p.execute())
    p = r.pipeline(transaction=False)
    for name in names[:300]:
        p.execute_command("VGET", name)
    got = p.execute()
    assert sum(len(g) for g in got) > 3 << 20
    assert all(text_equals(g, vecs[i]) for i, g in enumerate(got))
    reply = r.execute_command("VSEARCH", "FP32", fp32(vecs[0]), n, "WITHSCORES")
    assert len(reply) == 2 * n and reply[0] == names[0].encode()
    assert sum(len(x) for x in reply) > 64 << 10
    assert sorted(reply[0::2]) == sorted(x.encode() for x in names)
    assert r.dbsize() == n
    r.close()
    assert srv.client().dbsize() == n
    # A reader with a 4 KiB receive window that reads only after sending 1000
    # VGETs: 12 MiB of replies must wait in the server for the socket many
    # times (SSL_write want-write, then epoll write interest) and still
    # arrive whole and in order.
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(20)
    s.connect(("127.0.0.1", srv.tls_port))
    with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
        t.sendall(b"".join(encode_command("VGET", name) for name in names[:1000]))
        slow = RawConn.__new__(RawConn)
        slow.sock, slow.buf = t, b""
        for i in range(1000):
            assert text_equals(slow.read_reply(), vecs[i]), i


def test_writes_acked_over_tls_survive_kill9(vexlake, pki):
    srv = start_tls(vexlake, pki)
    r = tls_client(srv.tls_port, pki, decode_responses=False)
    vecs = np.random.default_rng(3).standard_normal((300, 64)).astype(np.float32)
    for i in range(100):
        assert r.execute_command("VSET", f"d{i}", "FP32", fp32(vecs[i])) in (True, b"OK")
    p = r.pipeline(transaction=False)
    for i in range(100, 300):
        p.execute_command("VSET", f"d{i}", "FP32", fp32(vecs[i]))
    assert all(x in (True, b"OK") for x in p.execute())
    r.close()
    srv.kill9()
    srv.start()
    r = tls_client(srv.tls_port, pki, decode_responses=False)
    assert r.dbsize() == 300
    for i in range(300):
        assert text_equals(r.execute_command("VGET", f"d{i}"), vecs[i]), i
    r.close()


# ---------------------------------------------------------------------------
# Start-up: --port 0, bad files, flag misuse
# ---------------------------------------------------------------------------


def run_server(*args, timeout=20):
    return subprocess.run([str(server_binary()), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_port_0_serves_tls_only(tmp_path, pki):
    tls_port, plain_port = free_port(), free_port()
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([str(server_binary()), "--port", "0", "--dir", str(tmp_path / "data"),
                             *tls_flags(pki, tls_port)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not tls_works(tls_port, pki):
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "TLS port never answered"
            time.sleep(0.05)
        r = tls_client(tls_port, pki)
        assert r.config_get("port") == {"port": "0"}
        assert r.info()["tcp_port"] == 0
        r.close()
        # --port 0 opened no plain listener on any port (Redis' meaning).
        assert "ready on 127.0.0.1:%d (TLS)" % tls_port in (tmp_path / "server.log").read_text()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", plain_port), timeout=2).close()
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
        log.close()


def bad_files(pki: Path, tmp: Path):
    garbage = tmp / "garbage.pem"
    garbage.write_text("not a certificate\n")
    missing = str(tmp / "missing.pem")
    s_crt, s_key = str(pki / "server.crt"), str(pki / "server.key")
    return {
        "missing-cert": ((missing, s_key, str(pki / "ca.crt")), [missing, "--tls-cert-file", "No such file"]),
        "garbage-cert": ((str(garbage), s_key, str(pki / "ca.crt")), [str(garbage), "no start line"]),
        "missing-key": ((s_crt, missing, str(pki / "ca.crt")), [missing, "--tls-key-file", "No such file"]),
        "mismatched-key": ((s_crt, str(pki / "client.key"), str(pki / "ca.crt")),
                           ["does not match", str(pki / "client.key"), "key values mismatch"]),
        "missing-ca": ((s_crt, s_key, missing), [missing, "--tls-ca-cert-file", "No such file"]),
    }


@pytest.mark.parametrize("case", ["missing-cert", "garbage-cert", "missing-key", "mismatched-key",
                                  "missing-ca"])
def test_bad_certificate_files_stop_the_start(tmp_path, pki, case):
    (cert, key, ca), expect = bad_files(pki, tmp_path)[case]
    p = run_server("--port", str(free_port()), "--dir", str(tmp_path / "data"),
                   "--tls-port", str(free_port()), "--tls-cert-file", cert, "--tls-key-file", key,
                   "--tls-ca-cert-file", ca)
    assert p.returncode == 1, (p.returncode, p.stderr)
    for text in expect:
        assert text in p.stderr, (text, p.stderr)


@pytest.mark.parametrize("args,match", [
    (["--port", "0"], "--port 0 needs --tls-port"),
    (["--tls-port", "7001"], "--tls-port needs --tls-cert-file and --tls-key-file"),
    (["--tls-port", "7001", "--tls-cert-file", "c.pem", "--tls-key-file", "k.pem"],
     "--tls-auth-clients yes needs --tls-ca-cert-file"),
    (["--tls-port", "7001", "--tls-cert-file", "c", "--tls-key-file", "k",
      "--tls-auth-clients", "optional"], "--tls-auth-clients optional needs --tls-ca-cert-file"),
    (["--tls-auth-clients", "maybe"], "--tls-auth-clients wants yes, no or optional, got 'maybe'"),
    (["--tls-port", "70000"], "--tls-port wants a number from 0 to 65535"),
    (["--port", "7001", "--tls-port", "7001"], "--tls-port 7001 is also --port"),
])
def test_tls_flag_misuse_exits_2(args, match):
    p = run_server(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert match in p.stderr


def test_auth_clients_no_needs_no_ca(vexlake, pki):
    tls_port = free_port()
    srv = vexlake(tls_flags(pki, tls_port, "no", ca=False))
    assert tls_works(tls_port, pki, cert=None)
    srv.assert_healthy()


def test_help_lists_tls_flags():
    out = run_server("--help").stdout
    for flag in ("--tls-port", "--tls-cert-file", "--tls-key-file", "--tls-ca-cert-file",
                 "--tls-auth-clients"):
        assert flag in out
