"""Crashes and damage in the lake: kill -9 during a flush, a compaction or
garbage collection, and flipped bytes in segments, manifests and deletion
files.

After every crash the server must start (it never reads a half-written
object), serve every acknowledged write with its exact vector, and leave no
temp files or unreferenced objects behind.  Damage must stop the start with
a message naming the damaged file, or, with --open-previous-on-damage, open
the newest intact older version and say so.
"""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from harness import encode_command, fp32, no_callback, parse_vec_text, same_bits
from lakeutil import (RawLoader, check_vectors, flip_byte, load_manifest, manifest_path,
                      manifest_paths, newest_manifest, referenced_objects,
                      start_expect_failure, stored_objects, temp_files, vget_many,
                      version_numbers, versions, wait_until, wal_lsns)


def ok(r, *args):
    return no_callback(r, *args) in ("OK", b"OK")


class Model:
    """What the server must hold: acknowledged writes, plus writes in flight
    when the server was killed (each of those may or may not have landed)."""

    def __init__(self, dim: int, seed: int):
        self.dim = dim
        self.rng = np.random.default_rng(seed)
        self.expected: dict[str, np.ndarray] = {}
        self.absent: set[str] = set()
        self.next = 0
        self.inflight_puts: dict[str, np.ndarray] = {}
        self.inflight_dels: set[str] = set()

    def round(self, n_new: int, n_over: int, n_del: int):
        keys = [f"k{self.next + i}" for i in range(n_new)]
        self.next += n_new
        live = list(self.expected)
        pick = self.rng.permutation(len(live))
        over = [live[i] for i in pick[:n_over]]
        dels = [live[i] for i in pick[n_over:n_over + n_del]]
        puts = keys + over
        vecs = self.rng.standard_normal((len(puts), self.dim)).astype(np.float32)
        return puts, vecs, dels

    def acked_puts(self, keys, vecs):
        for k, v in zip(keys, vecs):
            self.expected[k] = v
            self.absent.discard(k)

    def acked_dels(self, keys):
        for k in keys:
            self.expected.pop(k, None)
            self.absent.add(k)

    def write(self, srv, n_new, n_over, n_del):
        """Write one round; returns only when every write is acknowledged."""
        puts, vecs, dels = self.round(n_new, n_over, n_del)
        loader = RawLoader(srv.port)
        try:
            loader.put(puts, vecs)
            self.acked_puts(puts, vecs)
            loader.delete(dels)
            self.acked_dels(dels)
        finally:
            loader.close()

    def reconcile(self, srv):
        """After a restart: every in-flight key holds its old or its new state;
        then the model adopts what the server has."""
        keys = sorted(set(self.inflight_puts) | self.inflight_dels)
        if not keys:
            return
        got = vget_many(srv.port, keys)
        for k, g in zip(keys, got):
            allowed = []
            if k in self.expected:
                allowed.append(self.expected[k])
            else:
                allowed.append(None)
            if k in self.inflight_puts:
                allowed.append(self.inflight_puts[k])
            if k in self.inflight_dels:
                allowed.append(None)
            if g is None:
                assert any(a is None for a in allowed), f"{k}: acknowledged vector lost"
                self.expected.pop(k, None)
                self.absent.add(k)
            else:
                v = parse_vec_text(g)  # exact (C strtof), few keys
                assert any(a is not None and same_bits(v, a) for a in allowed), \
                    f"{k}: vector is neither the old nor the new one"
                self.expected[k] = v
                self.absent.discard(k)
        self.inflight_puts.clear()
        self.inflight_dels.clear()


def disk_problems(srv, r) -> list[str]:
    """What is inconsistent between the data dir and the server right now."""
    try:
        ms = [load_manifest(p) for p in manifest_paths(srv)]
        stored, refs = stored_objects(srv), referenced_objects(srv)
        nums = version_numbers(r)
        busy = r.info("persistence").get("rdb_bgsave_in_progress", 0)
    except FileNotFoundError as e:  # GC removed a manifest while we read it
        return [f"raced with GC: {e}"]
    problems = []
    if busy:
        problems.append("a background job is running")
    for m in ms:
        for g in m["segments"]:
            f = Path(srv.dir) / g["name"]
            if not f.exists() or f.stat().st_size != g["bytes"]:
                problems.append(f"version {m['version']} references missing/short {g['name']}")
    if nums != [m["version"] for m in ms]:
        problems.append(f"VERSIONS {nums} but manifests {[m['version'] for m in ms]}")
    if stored != refs:
        problems.append(f"unreferenced objects {sorted(stored - refs)[:3]}, "
                        f"missing {sorted(refs - stored)[:3]}")
    return problems


def verify(srv, model: Model, what: str):
    r = srv.client()
    model.reconcile(srv)
    check_vectors(r, model.expected, absent=sorted(model.absent))
    assert r.dbsize() == len(model.expected), what
    assert not temp_files(srv), f"{what}: temp files left: {temp_files(srv)}"
    # Objects a crash left behind (written, never committed) are removed;
    # every retained manifest references complete files.  (Compared once no
    # background job runs: a job's new files are unreferenced until it commits.)
    deadline = time.monotonic() + 15
    while True:
        problems = disk_problems(srv, r)
        if not problems:
            break
        assert time.monotonic() < deadline, f"{what}: {problems}"
        time.sleep(0.1)
    r.close()


# ---------------------------------------------------------------------------
# 8. kill -9 during a flush
# ---------------------------------------------------------------------------

def job_running(r) -> bool:
    try:
        return bool(r.info("persistence").get("rdb_bgsave_in_progress", 0))
    except redis.RedisError:
        return False


def crash_outcome(srv, versions_before: int, busy: bool = False) -> str:
    """What a kill left on disk (for messages): committed, or half-written."""
    n = len(manifest_paths(srv))
    left = sorted(stored_objects(srv) - referenced_objects(srv))
    tmp = temp_files(srv)
    if tmp or left:
        return f"killed mid-save ({len(tmp)} temp files, {len(left)} uncommitted objects)"
    if n > versions_before:
        return "committed before the kill"
    return "killed while the job ran, before its files" if busy else "killed before the job"


@pytest.mark.timeout(120)
def test_kill9_during_flush(vexlake):
    srv = vexlake(["--flush-rows", "0"])
    model = Model(dim=64, seed=8)
    r = srv.client()
    # Calibrate: how long does a background flush of one round take here?
    model.write(srv, 12000, 0, 0)
    assert ok(r, "SAVE")
    model.write(srv, 5000, 1500, 300)
    t0 = time.monotonic()
    assert no_callback(r, "BGSAVE") == "Background saving started"
    wait_until(lambda: r.info("persistence").get("rdb_bgsave_in_progress", 0) == 0 and
               len(manifest_paths(srv)) == 2, 30, interval=0.002, what="calibration BGSAVE")
    flush_s = time.monotonic() - t0
    # kills spread over that time (when the files are written), plus one later
    rnd = random.Random(8)
    delays = [rnd.uniform(0.3, 1.1) * flush_s for _ in range(3)] + [rnd.uniform(0, 0.3)]
    rnd.shuffle(delays)
    outcomes = []
    for cycle, delay in enumerate(delays):
        what = f"cycle {cycle} (kill {delay * 1000:.0f} ms after the save started; {outcomes})"
        if cycle:
            srv.start()
            verify(srv, model, what)
        model.write(srv, 5000, 1500, 300)
        nv = len(manifest_paths(srv))
        with srv.raw(timeout=30) as c:
            if cycle % 2 == 0:
                assert c.command("BGSAVE") == "Background saving started"
            else:  # SAVE from another connection; its reply never comes
                c.send(encode_command("SAVE"))
            time.sleep(delay)
            srv.kill9()
        outcomes.append(crash_outcome(srv, nv))
    print(f"kill -9 during flush (a flush takes {flush_s * 1000:.0f} ms):",
          [(round(d * 1000), o) for d, o in zip(delays, outcomes)])
    what = "after the last crash"
    srv.start()
    verify(srv, model, what)
    r = srv.client()
    assert ok(r, "SAVE")
    m = newest_manifest(srv)
    assert m["live_rows"] == len(model.expected)
    srv.kill9()
    srv.start()
    verify(srv, model, "after a clean SAVE")
    assert srv.client().info("persistence")["wal_torn_bytes_dropped_at_start"] >= 0


# ---------------------------------------------------------------------------
# 9. kill -9 during compaction and during garbage collection
# ---------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_kill9_during_compaction(vexlake):
    srv = vexlake(["--flush-rows", "0", "--compact-segments", "2"])
    model = Model(dim=64, seed=9)
    r = srv.client()
    # Calibrate: from the SAVE that makes a second segment to the compaction's commit
    model.write(srv, 8000, 0, 0)
    assert ok(r, "SAVE")
    model.write(srv, 2000, 1000, 300)
    assert ok(r, "SAVE")
    t0 = time.monotonic()
    wait_until(lambda: len(manifest_paths(srv)) == 3 and
               r.info("persistence").get("rdb_bgsave_in_progress", 0) == 0, 30, interval=0.002,
               what="the first compaction")
    compact_s = time.monotonic() - t0
    assert len(newest_manifest(srv)["segments"]) == 1
    rnd = random.Random(9)
    delays = [rnd.uniform(0.2, 1.2) * compact_s for _ in range(3)] + [rnd.uniform(0, 0.3)]
    rnd.shuffle(delays)
    outcomes = []
    for cycle, delay in enumerate(delays):
        what = f"cycle {cycle} (kill {delay * 1000:.0f} ms after the second SAVE; {outcomes})"
        if cycle:
            srv.start()
            verify(srv, model, what)
            r = srv.client()
        model.write(srv, 2000, 800, 200)
        assert ok(r, "SAVE")  # now >= 2 segments: the cron starts a compaction
        nv = len(manifest_paths(srv))
        time.sleep(delay)
        busy = job_running(r)
        srv.kill9()
        outcomes.append(crash_outcome(srv, nv, busy))
    print(f"kill -9 during compaction (SAVE to commit: {compact_s * 1000:.0f} ms):",
          [(round(d * 1000), o) for d, o in zip(delays, outcomes)])
    srv.start()
    verify(srv, model, "after the last crash")
    r = srv.client()
    wait_until(lambda: len(newest_manifest(srv)["segments"]) < 2, 15,
               what="the compaction to finish")
    verify(srv, model, "after the compaction finished")
    srv.kill9()
    srv.start()
    verify(srv, model, "after a restart on the compacted version")


@pytest.mark.timeout(120)
def test_kill9_during_gc(vexlake):
    """--retain-versions 1: every commit expires the previous version and
    deletes its deletion files; a writer commits over and over until killed."""
    srv = vexlake(["--flush-rows", "0", "--retain-versions", "1"])
    model = Model(dim=32, seed=10)
    model.write(srv, 6000, 0, 0)
    r = srv.client()
    assert ok(r, "SAVE")
    delays = [0.05, 0.12, 0.2, 0.3]
    random.Random(10).shuffle(delays)
    outcomes = []
    for cycle, delay in enumerate(delays):
        what = f"cycle {cycle} (kill after {delay * 1000:.0f} ms)"
        if cycle:
            srv.start()
            verify(srv, model, what)
            assert len(manifest_paths(srv)) == 1, f"{what}: only one version is retained"
        stop = threading.Event()
        errors = []

        def writer():
            try:
                loader = RawLoader(srv.port)
                for _ in range(200):
                    if stop.is_set():
                        return
                    puts, vecs, dels = model.round(50, 250, 30)
                    model.inflight_puts = dict(zip(puts, vecs))
                    loader.put(puts, vecs)
                    model.acked_puts(puts, vecs)
                    model.inflight_puts = {}
                    model.inflight_dels = set(dels)
                    loader.delete(dels)
                    model.acked_dels(dels)
                    model.inflight_dels = set()
                    loader.sock.sendall(encode_command("SAVE"))
                    assert loader._read_replies(1) == [b"+OK"]
            except (ConnectionError, OSError):
                pass  # killed
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        time.sleep(delay)
        srv.kill9()
        stop.set()
        t.join(30)
        assert not t.is_alive()
        assert not errors, errors
        outcomes.append(crash_outcome(srv, 1))
    print("kill -9 during GC:", list(zip(delays, outcomes)))
    srv.start()
    verify(srv, model, "after the last crash")
    assert len(manifest_paths(srv)) == 1
    r = srv.client()
    assert ok(r, "SAVE")
    srv.kill9()
    srv.start()
    verify(srv, model, "after a final SAVE")


# ---------------------------------------------------------------------------
# 10. Damaged files
# ---------------------------------------------------------------------------

def dir_listing(srv) -> dict:
    root = Path(srv.dir)
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def flip_manifest_digit(path: Path):
    """Change one digit of created_ms: still valid JSON, wrong checksum."""
    text = path.read_bytes()
    key = b'"created_ms":'
    i = text.index(key) + len(key)
    while not chr(text[i]).isdigit():
        i += 1
    i += 3  # a digit in the middle of the number
    d = text[i] - ord("0")
    new = text[:i] + bytes([ord("0") + (d + 1) % 10]) + text[i + 1:]
    path.write_bytes(new)
    import json
    json.loads(new)  # still parses


@pytest.mark.timeout(60)
@pytest.mark.parametrize("target", ["segment", "manifest", "deletes"])
def test_damaged_newest_version(vexlake, target):
    srv = vexlake(["--flush-rows", "0", "--metric", "l2"])
    r = srv.client()
    dim = 16
    rng = np.random.default_rng(100)
    a_keys = [f"a{i}" for i in range(500)]
    a_vecs = rng.standard_normal((500, dim)).astype(np.float32)
    loader = RawLoader(srv.port)
    loader.put(a_keys, a_vecs)
    assert ok(r, "SAVE")
    v1 = newest_manifest(srv)
    v1_state = dict(zip(a_keys, a_vecs))
    full = dict(v1_state)
    b_keys, b_vecs, gone = [], np.zeros((0, dim), np.float32), []
    if target == "deletes":
        gone = a_keys[:60]  # 12%: below the rewrite threshold
        loader.delete(gone)
        for k in gone:
            del full[k]
    else:
        b_keys = [f"b{i}" for i in range(500)]
        b_vecs = rng.standard_normal((500, dim)).astype(np.float32)
        loader.put(b_keys, b_vecs)
        full.update(zip(b_keys, b_vecs))
    assert ok(r, "SAVE")
    v2 = newest_manifest(srv)
    assert v2["version"] == 2 and len(version_numbers(r)) == 2
    tail = [f"t{i}" for i in range(50)]
    tail_vecs = rng.standard_normal((50, dim)).astype(np.float32)
    loader.put(tail, tail_vecs)
    loader.close()
    full.update(zip(tail, tail_vecs))
    srv.kill9()

    if target == "segment":
        name = v2["segments"][-1]["name"]
        assert name not in {g["name"] for g in v1["segments"]}
        victim = Path(srv.dir) / name
        flip_byte(victim)
    elif target == "deletes":
        name = v2["segments"][0]["deletes"]["name"]
        victim = Path(srv.dir) / name
        flip_byte(victim)
    else:
        victim = manifest_path(srv, 2)
        name = str(victim.relative_to(srv.dir))
        flip_manifest_digit(victim)
    before = dir_listing(srv)
    lsns = set(wal_lsns(srv))

    # Without the flag: refuse to start, naming the damaged file
    rc, out = start_expect_failure(srv)
    assert rc != 0, out
    assert victim.name in out, f"the message must name {name}:\n{out}"
    assert dir_listing(srv) == before, "a failed start must not change the data dir"
    rc2, out2 = start_expect_failure(srv)  # and again: same answer
    assert rc2 == rc and victim.name in out2

    # With it: open version 1, say so, and replay what the WAL still has
    srv.start(args=["--flush-rows", "0", "--metric", "l2", "--open-previous-on-damage"])
    r = srv.client()
    log = srv.log_tail(20000)
    assert "damaged" in log and victim.name in log, log[-2000:]
    assert version_numbers(r) == [1], versions(r)
    with pytest.raises(redis.ResponseError):
        r.execute_command("VGET", "a1", "VERSION", 2)
    v1_lsn, v2_lsn = v1["wal_lsn"], v2["wal_lsn"]
    last = max(lsns)
    if set(range(v1_lsn + 1, last + 1)) <= lsns:
        # every change after version 1 is still in the WAL: nothing is lost
        check_vectors(r, full, absent=gone)
        assert r.dbsize() == len(full)
        served = full
    else:
        # the WAL no longer has version 2's changes: version 1 plus the tail
        untouched = {k: v for k, v in v1_state.items() if k not in gone}
        check_vectors(r, untouched)
        check_vectors(r, dict(zip(tail, tail_vecs)))
        assert set(range(v2_lsn + 1, last + 1)) <= lsns
        served = {k: full.get(k, v1_state.get(k)) for k in list(v1_state) + tail}
        got = vget_many(srv.port, b_keys + gone)
        for k, g in zip(b_keys + gone, got):
            if g is not None:
                served[k] = parse_vec_text(g)
            else:
                served.pop(k, None)
        assert r.dbsize() == len(served)
    # the server works on: a new version on top of version 1 ...
    r.execute_command("VSET", "after", "FP32", fp32(np.ones(dim)))
    served = dict(served)
    served["after"] = np.ones(dim, np.float32)
    assert ok(r, "SAVE")
    m = newest_manifest(srv)
    assert m["version"] == 3 and m["parent"] == 1 and m["live_rows"] == len(served)
    # ... that a plain restart (no flag) opens
    srv.kill9()
    srv.start(args=["--flush-rows", "0", "--metric", "l2"])
    r = srv.client()
    check_vectors(r, served)
    assert r.dbsize() == len(served)
    assert version_numbers(r)[-1] == 3
    assert not temp_files(srv)
