"""Shared helpers for the lake tests (test_lake.py, test_lake_crash.py).

Reading what SAVE/BGSAVE/compaction put on disk (manifests, Parquet
segments, deletion files), loading data fast over a raw socket, fetching
vectors back, and starting a server that is expected to refuse to start.
"""
from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import time
from pathlib import Path

import numpy as np

from harness import c_strtof, encode_command, no_callback

DEL_MAGIC = b"VLDEL001"


# ---------------------------------------------------------------------------
# CRC-32C (Castagnoli), to check deletion files independently of the server
# ---------------------------------------------------------------------------

def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


# ---------------------------------------------------------------------------
# On-disk layout of collection "default"
# ---------------------------------------------------------------------------

def table_dir(srv) -> Path:
    return Path(srv.dir) / "tables" / "default"


def manifest_paths(srv) -> list[Path]:
    d = table_dir(srv) / "manifests"
    if not d.exists():
        return []
    return sorted(p for p in d.iterdir() if p.name.endswith(".json") and ".tmp." not in p.name)


def manifest_path(srv, version: int) -> Path:
    return table_dir(srv) / "manifests" / f"{version:020d}.json"


def load_manifest(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def newest_manifest(srv) -> dict | None:
    ps = manifest_paths(srv)
    return load_manifest(ps[-1]) if ps else None


def segment_files(srv) -> list[Path]:
    d = table_dir(srv) / "segments"
    return sorted(d.iterdir()) if d.exists() else []


def delete_files(srv) -> list[Path]:
    d = table_dir(srv) / "deletes"
    return sorted(d.iterdir()) if d.exists() else []


def temp_files(srv) -> list[Path]:
    return [p for p in Path(srv.dir).rglob("*") if ".tmp." in p.name]


def referenced_objects(srv) -> set[str]:
    """Object names (relative to the data dir) referenced by the manifests on disk."""
    refs = set()
    for p in manifest_paths(srv):
        m = load_manifest(p)
        for g in m["segments"]:
            refs.add(g["name"])
            if g.get("deletes"):
                refs.add(g["deletes"]["name"])
    return refs


def stored_objects(srv) -> set[str]:
    root = Path(srv.dir)
    return {str(p.relative_to(root)) for p in segment_files(srv) + delete_files(srv)}


def read_deletes(path: Path) -> np.ndarray:
    """Parse a deletion file ("VLDEL001" u64 count, count x u32, u32 crc32c)."""
    data = Path(path).read_bytes()
    assert data[:8] == DEL_MAGIC, f"{path}: bad magic {data[:8]!r}"
    (count,) = struct.unpack_from("<Q", data, 8)
    assert len(data) == 16 + 4 * count + 4, f"{path}: size {len(data)} for {count} rows"
    rows = np.frombuffer(data, dtype="<u4", count=count, offset=16).copy()
    (crc,) = struct.unpack_from("<I", data, 16 + 4 * count)
    assert crc == crc32c(data[:16 + 4 * count]), f"{path}: crc32c mismatch"
    assert np.all(np.diff(rows.astype(np.int64)) > 0), f"{path}: rows not strictly ascending"
    return rows


def read_segment(path: Path):
    """(keys, seqs int64, vectors float32 [n, dim]) of one segment, via pyarrow."""
    import pyarrow.parquet as pq
    t = pq.read_table(path)
    keys = t.column("key").to_pylist()
    seqs = t.column("seq").to_numpy()
    col = t.column("vector").combine_chunks()
    flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    n = t.num_rows
    offs = col.offsets.to_numpy()
    dim = int(offs[1] - offs[0]) if n else 0
    assert np.array_equal(offs, np.arange(n + 1) * dim), f"{path}: ragged vectors"
    return keys, seqs, flat.reshape(n, dim) if n else np.zeros((0, 0), np.float32)


def read_version_from_disk(srv, manifest: dict) -> dict:
    """Exactly one version, read with pyarrow: {key: (seq, float32 vector)}."""
    out = {}
    root = Path(srv.dir)
    for g in manifest["segments"]:
        keys, seqs, vecs = read_segment(root / g["name"])
        assert len(keys) == g["rows"], g["name"]
        dead = set()
        if g.get("deletes"):
            dead = set(read_deletes(root / g["deletes"]["name"]).tolist())
            assert len(dead) == g["deletes"]["count"]
        for i, k in enumerate(keys):
            if i in dead:
                continue
            assert k not in out, f"key {k!r} live twice in version {manifest['version']}"
            out[k] = (int(seqs[i]), vecs[i])
    assert len(out) == manifest["live_rows"]
    return out


# ---------------------------------------------------------------------------
# Talking to the server
# ---------------------------------------------------------------------------

def lastsave(r) -> int:
    return int(no_callback(r, "LASTSAVE"))


def versions(r) -> list[dict]:
    """VERSIONS as a list of dicts (RESP2 maps arrive as flat lists)."""
    out = []
    for v in no_callback(r, "VERSIONS"):
        if isinstance(v, dict):
            d = {(k.decode() if isinstance(k, bytes) else k): val for k, val in v.items()}
        else:
            d = {}
            for i in range(0, len(v), 2):
                k = v[i].decode() if isinstance(v[i], bytes) else v[i]
                d[k] = v[i + 1]
        out.append(d)
    return out


def version_numbers(r) -> list[int]:
    return [int(v["version"]) for v in versions(r)]


class RawLoader:
    """Pipelined FP32 VSETs over one raw socket (much faster than redis-py)."""

    def __init__(self, port: int, timeout: float = 60.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def _read_replies(self, n: int) -> list[bytes]:
        out = []
        while len(out) < n:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("closed by server")
                self.buf += chunk
            # Only simple replies (+OK, :n, -ERR) are expected here.
            parts = self.buf.split(b"\r\n")
            self.buf = parts.pop()
            out.extend(parts)
        if len(out) > n:  # cannot happen with one outstanding batch
            raise AssertionError(f"extra replies {out[n:]!r}")
        return out

    def put(self, keys, vecs, batch: int = 2000):
        """VSET every key; all replies must be +OK (so all are acknowledged)."""
        vecs = np.asarray(vecs, dtype="<f4")
        for s in range(0, len(keys), batch):
            cmds = [encode_command("VSET", keys[i], "FP32", vecs[i].tobytes())
                    for i in range(s, min(s + batch, len(keys)))]
            self.sock.sendall(b"".join(cmds))
            replies = self._read_replies(len(cmds))
            bad = [x for x in replies if x != b"+OK"]
            assert not bad, f"VSET failed: {bad[:3]!r}"

    def delete(self, keys, batch: int = 2000):
        for s in range(0, len(keys), batch):
            cmds = [encode_command("VDEL", k) for k in keys[s:s + batch]]
            self.sock.sendall(b"".join(cmds))
            replies = self._read_replies(len(cmds))
            assert all(x.startswith(b":") for x in replies), replies[:3]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def parse_text_vec(s) -> np.ndarray:
    """VGET's text form -> float32, fast (via float64; check_vectors falls back
    to the exact C strtof parse before reporting a mismatch)."""
    if isinstance(s, bytes):
        s = s.decode()
    body = s.strip()[1:-1]
    parts = body.split(",")
    v = np.array(parts, dtype=np.float64).astype(np.float32)
    return v


def vget_many(port_or_srv, keys, batch: int = 4000) -> list:
    """VGET every key over one raw socket: text replies (bytes) or None."""
    port = port_or_srv if isinstance(port_or_srv, int) else port_or_srv.port
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        buf = bytearray()
        for s in range(0, len(keys), batch):
            chunk = keys[s:s + batch]
            sock.sendall(b"".join(encode_command("VGET", k) for k in chunk))
            pos, n = 0, 0
            while n < len(chunk):
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    del buf[:pos]
                    pos = 0
                    data = sock.recv(1 << 20)
                    if not data:
                        raise ConnectionError("closed by server")
                    buf += data
                    continue
                head = bytes(buf[pos:nl])
                if head[:1] == b"$":
                    ln = int(head[1:])
                    if ln < 0:
                        out.append(None)
                        pos = nl + 2
                    else:
                        end = nl + 2 + ln
                        while len(buf) < end + 2:
                            data = sock.recv(1 << 20)
                            if not data:
                                raise ConnectionError("closed by server")
                            buf += data
                        out.append(bytes(buf[nl + 2:end]))
                        pos = end + 2
                elif head[:1] == b"_":
                    out.append(None)
                    pos = nl + 2
                else:
                    raise AssertionError(f"VGET reply {head!r}")
                n += 1
            del buf[:pos]
    return out


def check_vectors(r, expected: dict, absent=(), batch: int = 4000):
    """Every key of expected is served with exactly its float32 vector;
    every key of absent is missing."""
    keys = list(expected)
    got = vget_many(_port(r), keys, batch)
    bad = []
    for k, g in zip(keys, got):
        want = np.asarray(expected[k], dtype=np.float32)
        if g is None:
            bad.append((k, "missing"))
            continue
        v = parse_text_vec(g)
        if v.shape != want.shape or not np.array_equal(v.view(np.uint32), want.view(np.uint32)):
            # exact parse (no double rounding) before calling it a mismatch
            body = (g.decode() if isinstance(g, bytes) else g).strip()[1:-1]
            v = np.array([c_strtof(x) for x in body.split(",")], dtype=np.float32)
            if v.shape != want.shape or not np.array_equal(v.view(np.uint32), want.view(np.uint32)):
                bad.append((k, "different vector"))
    assert not bad, f"{len(bad)} of {len(keys)} keys wrong, e.g. {bad[:5]}"
    absent = list(absent)
    if absent:
        got = vget_many(_port(r), absent, batch)
        present = [k for k, g in zip(absent, got) if g is not None]
        assert not present, f"{len(present)} deleted keys still served, e.g. {present[:5]}"


def _port(r) -> int:
    if isinstance(r, int):
        return r
    if hasattr(r, "port") and isinstance(r.port, int):
        return r.port  # a VexLakeServer
    return int(r.connection_pool.connection_kwargs["port"])  # a redis.Redis


def wait_until(pred, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def start_expect_failure(srv, args=None, timeout: float = 20.0):
    """Run the server on srv's data dir expecting it to exit; returns (rc, output).

    The harness' start() fails the test when the process exits early, so a
    start that must fail is run here, with stdout+stderr captured.
    """
    assert not srv.alive()
    cmd = srv.command_line(args)
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"server kept running on damaged data: {cmd}") from e
    out = (p.stdout + p.stderr).decode(errors="replace")
    with open(srv.log_path, "ab") as f:
        f.write(f"--- expected-failure start {cmd}\n".encode() + p.stdout + p.stderr)
    return p.returncode, out


def flip_byte(path: Path, offset: int | None = None) -> int:
    """XOR one byte (default: the middle one) of a file; returns the offset."""
    data = bytearray(Path(path).read_bytes())
    if offset is None:
        offset = len(data) // 2
    data[offset] ^= 0x5A
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes([data[offset]]))
        f.flush()
        os.fsync(f.fileno())
    return offset


def wal_lsns(srv) -> list[int]:
    """LSNs of the records in <dir>/wal (docs/storage-format.md), oldest first."""
    out = []
    d = Path(srv.dir) / "wal"
    for p in sorted(d.glob("*.log")):
        data = p.read_bytes()
        pos = 0
        while pos + 8 <= len(data):
            body_len, _crc = struct.unpack_from("<II", data, pos)
            if body_len < 16 or pos + 8 + body_len > len(data):
                break
            (lsn,) = struct.unpack_from("<Q", data, pos + 12)
            out.append(lsn)
            pos += 8 + body_len
    return out


def wal_dir_bytes(srv) -> int:
    d = Path(srv.dir) / "wal"
    return sum(p.stat().st_size for p in d.glob("*.log"))
