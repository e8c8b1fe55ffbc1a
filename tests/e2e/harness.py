"""
End-to-end test harness for bin/vexlake-server.

Every test talks to a real server process on 127.0.0.1, on a free port,
with its data in a per-test temporary directory.  `VexLakeServer` starts,
kills (-9), stops (SIGTERM) and restarts such a process; the `vexlake`
factory fixture guarantees every process it started is gone at teardown.

Build the server first (`make build`).  Run: .venv/bin/python -m pytest tests/e2e -q
"""
from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REPO = Path(__file__).resolve().parents[2]
SERVER_BIN = Path(os.environ.get("VEXLAKE_SERVER", REPO / "bin" / "vexlake-server"))
REDIS_CLI = os.environ.get("REDIS_CLI", "/usr/bin/redis-cli")
DATASETS = Path(os.environ.get("VL_DATASETS") or (REPO.parent / "shared" / "datasets"))

DEFAULT_TIMEOUT = 30  # seconds, per test, unless the test sets its own

_binary_copy: Path | None = None


def server_binary() -> Path:
    """A private copy of the server binary, taken once per session.

    Other people rebuild bin/vexlake-server while tests run; a copy keeps one
    run on one binary and never catches a half-written file.
    """
    global _binary_copy
    if _binary_copy is not None:
        return _binary_copy
    import shutil
    import tempfile
    deadline = time.monotonic() + 60
    while True:
        try:
            st = SERVER_BIN.stat()
            if time.time() - st.st_mtime > 1.0:  # not being written right now
                tmp = tempfile.mkdtemp(prefix="vexlake-bin-")
                atexit.register(shutil.rmtree, tmp, ignore_errors=True)
                dst = Path(tmp) / "vexlake-server"
                shutil.copy2(SERVER_BIN, dst)
                p = subprocess.run([str(dst), "--help"], capture_output=True, timeout=10)
                if p.returncode == 0:
                    _binary_copy = dst
                    return dst
        except (OSError, subprocess.SubprocessError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{SERVER_BIN} missing or broken: run `make build` first")
        time.sleep(0.5)


# ---------------------------------------------------------------------------
# Server process
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = s.recv(64)  # a server with a password answers, with NOAUTH
            return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")
    except OSError:
        return False


class VexLakeServer:
    """One vexlake-server process (restartable on the same data dir)."""

    def __init__(self, workdir: Path, args=(), port: int | None = None, data_dir: Path | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dir = Path(data_dir) if data_dir else self.workdir / "data"
        self.args = list(args)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "server.log"
        self._log = None
        self.starts = 0

    # -- lifecycle --------------------------------------------------------
    def command_line(self, args=None):
        return [str(server_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), *(self.args if args is None else args)]

    def start(self, args=None, timeout: float = 10.0):
        """Start (or restart) the process; args replaces the extra flags."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if args is not None:
            self.args = list(args)
        for attempt in range(5):
            self._log = open(self.log_path, "ab")
            self._log.write(f"--- start #{self.starts} port {self.port} args {self.args}\n".encode())
            self._log.flush()
            self.proc = subprocess.Popen(self.command_line(), stdout=self._log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            self.starts += 1
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if raw_ping(self.port):
                    return self
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.kill9()
                pytest.fail(f"server did not answer PING within {timeout}s\n{self.log_tail()}")
            # Exited early: most likely the port was taken meanwhile; retry
            # on a new port only if nothing was written to the data dir yet
            # by this object (the port is not part of the stored state).
            self._close_log()
            if "in use" not in self.log_tail():
                pytest.fail(f"server exited with {self.proc.returncode}\n{self.log_tail()}")
            self.port = free_port()
        pytest.fail(f"could not start the server\n{self.log_tail()}")

    def restart(self, args=None):
        return self.start(args)

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        rc = None
        if self.proc:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
                    pytest.fail(f"server ignored SIGTERM for {timeout}s\n{self.log_tail()}")
            rc = self.proc.returncode
        self._close_log()
        return rc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    # -- clients ----------------------------------------------------------
    def client(self, protocol=2, decode=True, **kw) -> redis.Redis:
        kw.setdefault("socket_timeout", 20)
        kw.setdefault("socket_connect_timeout", 5)
        kw.setdefault("retry", Retry(NoBackoff(), 0))  # fail fast: servers get killed on purpose
        return redis.Redis(host="127.0.0.1", port=self.port, protocol=protocol,
                           decode_responses=decode, **kw)

    def raw(self, timeout: float = 10.0) -> "RawConn":
        return RawConn(self.port, timeout)

    def assert_healthy(self):
        """Server process alive and answering on a brand-new connection."""
        assert self.alive(), f"server died\n{self.log_tail()}"
        c = self.client()
        try:
            assert c.ping() is True
        finally:
            c.close()
        assert raw_ping(self.port, timeout=5)


# ---------------------------------------------------------------------------
# Raw RESP socket, for bytes redis-py will not send
# ---------------------------------------------------------------------------


def encode_command(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, (int, float)):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RawConn:
    def __init__(self, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def command(self, *args):
        self.send(encode_command(*args))
        return self.read_reply()

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read_reply(self):
        """Parse one RESP2/RESP3 reply. Errors come back as RespError values."""
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b",":
            return float(rest)
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t in (b"$", b"="):
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t in (b"*", b"~", b">"):
            n = int(rest)
            return None if n < 0 else [self.read_reply() for _ in range(n)]
        if t == b"%":
            n = int(rest)
            return {self._hashable(self.read_reply()): self.read_reply() for _ in range(n)}
        raise AssertionError(f"unexpected reply line {line!r}")

    @staticmethod
    def _hashable(v):
        return tuple(v) if isinstance(v, list) else v

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection (EOF or reset) in time."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RespError(str):
    """An error reply read by RawConn."""


# ---------------------------------------------------------------------------
# Vectors
# ---------------------------------------------------------------------------

_libc = ctypes.CDLL(None)
_libc.strtof.restype = ctypes.c_float
_libc.strtof.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]


def c_strtof(s: str) -> np.float32:
    """Parse like the C library does (no double rounding through float64)."""
    return np.float32(_libc.strtof(s.strip().encode(), None))


def vec_text(v) -> str:
    """Text form whose every element parses back to the same float32."""
    return "[" + ", ".join(repr(float(x)) for x in np.asarray(v, dtype=np.float32)) + "]"


def parse_vec_text(s) -> np.ndarray:
    if isinstance(s, bytes):
        s = s.decode()
    s = s.strip()
    assert s.startswith("[") and s.endswith("]"), s[:80]
    body = s[1:-1].strip()
    if not body:
        return np.zeros(0, dtype=np.float32)
    return np.array([c_strtof(x) for x in body.split(",")], dtype=np.float32)


def text_equals(text, expected) -> bool:
    """VGET text == expected float32 vector, bit for bit.

    Fast path parses through float64 (numpy); only on a mismatch is it
    re-checked with the C library's strtof, which has no double rounding.
    """
    if isinstance(text, bytes):
        text = text.decode()
    t = text.strip()
    if not (t.startswith("[") and t.endswith("]")):
        return False
    try:
        fast = np.array(t[1:-1].split(","), dtype=np.float64).astype(np.float32)
    except ValueError:
        return False
    return same_bits(fast, expected) or same_bits(parse_vec_text(t), expected)


def fp32(v) -> bytes:
    return np.asarray(v, dtype="<f4").tobytes()


def same_bits(a, b) -> bool:
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def read_vecs(path: Path, dtype) -> np.ndarray:
    """fvecs/ivecs: per record int32 d then d values."""
    raw = np.fromfile(path, dtype="<i4")
    d = int(raw[0])
    rec = raw.reshape(-1, d + 1)
    assert (rec[:, 0] == d).all()
    return rec[:, 1:].copy().view(dtype)


def scores_from_reply(reply, proto):
    """VSEARCH ... WITHSCORES -> [(key, score)] nearest first."""
    if proto == 3:
        assert isinstance(reply, dict), reply
        return [(k, float(v)) for k, v in reply.items()]
    assert isinstance(reply, list) and len(reply) % 2 == 0, reply
    return [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]


def pack_le_f32(values) -> bytes:
    return struct.pack("<%df" % len(values), *values)


def no_callback(r: redis.Redis, *args):
    """execute_command without redis-py's response callback (the reply as parsed)."""
    conn = r.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        return conn.read_response()
    finally:
        r.connection_pool.release(conn)
