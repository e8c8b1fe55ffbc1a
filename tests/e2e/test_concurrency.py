"""Many clients at once, and deep pipelines."""
import threading
import time

import numpy as np
import pytest

from harness import fp32, parse_vec_text, same_bits, scores_from_reply


def client_vector(tid, slot, version, dim=16):
    """Unique per (thread, slot, version): nobody else ever writes it."""
    rng = np.random.default_rng(tid * 1_000_003 + slot * 1009 + version)
    v = rng.standard_normal(dim).astype(np.float32)
    v[0], v[1] = tid, slot * 1000 + version
    return v


@pytest.mark.timeout(90)
def test_50_concurrent_clients(vexlake):
    server = vexlake(["--metric", "l2"])
    nthreads, slots, ops, deadline = 50, 8, 60, time.monotonic() + 40
    errors, counts = [], [0] * nthreads
    start = threading.Barrier(nthreads)

    def worker(tid):
        r = server.client(2 if tid % 2 else 3, decode=True)
        proto = 2 if tid % 2 else 3
        try:
            start.wait(10)
            for i in range(ops):
                if time.monotonic() > deadline:
                    break
                slot = i % slots
                key = f"t{tid}:s{slot}"
                v = client_vector(tid, slot, i)
                if i % 2:
                    ok = r.execute_command("VSET", key, "FP32", fp32(v))
                else:
                    ok = r.execute_command("VSET", key, "[" + ", ".join(repr(float(x)) for x in v) + "]")
                assert ok in (True, "OK"), ok
                got = parse_vec_text(r.execute_command("VGET", key))
                assert same_bits(got, v), (key, got, v)
                pairs = scores_from_reply(
                    r.execute_command("VSEARCH", "FP32", fp32(v), 3, "WITHSCORES"), proto)
                assert pairs[0][0] == key, (key, pairs)
                assert pairs[0][1] == 0.0, pairs
                assert all(pairs[j][1] <= pairs[j + 1][1] for j in range(len(pairs) - 1))
                if i % 10 == 9:
                    assert r.dbsize() >= 1
                counts[tid] += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((tid, repr(e)))
        finally:
            r.close()

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "workers hung"
    assert not errors, errors[:5]
    assert min(counts) >= slots, counts  # every slot of every thread written
    r = server.client()
    assert r.dbsize() == nthreads * slots
    # Final state: each key holds its thread's last write.
    for tid in range(0, nthreads, 7):
        done = counts[tid]
        for slot in range(slots):
            last = max(i for i in range(done) if i % slots == slot)
            got = parse_vec_text(r.execute_command("VGET", f"t{tid}:s{slot}"))
            assert same_bits(got, client_vector(tid, slot, last))
    info = r.info()
    assert info["connected_clients"] == 1
    assert info["vectors"] == nthreads * slots
    server.assert_healthy()


@pytest.mark.timeout(60)
def test_concurrent_readers_and_writers_with_deletes(vexlake):
    """Searches running while other clients delete and re-add keys never see
    a key twice or a result that is not sorted."""
    server = vexlake(["--metric", "l2"])
    dim, n = 32, 2000
    rng = np.random.default_rng(3)
    base = rng.standard_normal((n, dim)).astype(np.float32)
    r = server.client(decode=False)
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.execute_command("VSET", b"%d" % i, "FP32", base[i].tobytes())
    p.execute()
    stop = threading.Event()
    errors = []

    def churn(seed):
        c = server.client(decode=False)
        g = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                i = int(g.integers(n))
                c.execute_command("VDEL", b"%d" % i)
                c.execute_command("VSET", b"%d" % i, "FP32", base[i].tobytes())
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    def search(seed):
        c = server.client(decode=False)
        g = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                q = g.standard_normal(dim).astype(np.float32)
                flat = c.execute_command("VSEARCH", "FP32", q.tobytes(), 50, "WITHSCORES")
                keys, scores = flat[0::2], [float(s) for s in flat[1::2]]
                assert len(set(keys)) == len(keys), "duplicate key in results"
                assert scores == sorted(scores)
                assert 48 <= len(keys) <= 50
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=churn, args=(s,), daemon=True) for s in range(4)]
    threads += [threading.Thread(target=search, args=(100 + s,), daemon=True) for s in range(6)]
    for t in threads:
        t.start()
    time.sleep(4)
    stop.set()
    for t in threads:
        t.join(20)
    assert not errors, errors[:5]
    assert r.dbsize() == n
    for i in range(0, n, 97):
        assert r.execute_command("VSEARCH", "FP32", base[i].tobytes(), 1) == [b"%d" % i]


@pytest.mark.timeout(60)
def test_pipelined_writes(server, proto):
    r = server.client(proto)
    rng = np.random.default_rng(11)
    vecs = rng.standard_normal((5000, 24)).astype(np.float32)
    p = r.pipeline(transaction=False)
    for i in range(5000):
        if i % 2:
            p.execute_command("VSET", f"p{i}", "FP32", fp32(vecs[i]))
        else:
            p.execute_command("VSET", f"p{i}", "[" + ", ".join(repr(float(x)) for x in vecs[i]) + "]")
    res = p.execute()
    assert len(res) == 5000 and all(x in (True, "OK") for x in res)
    assert r.dbsize() == 5000
    p = r.pipeline(transaction=False)
    for i in range(5000):
        p.execute_command("VGET", f"p{i}")
    for i, text in enumerate(p.execute()):
        assert same_bits(parse_vec_text(text), vecs[i]), i
    # A pipeline of searches keeps reply order.
    p = r.pipeline(transaction=False)
    for i in range(0, 5000, 25):
        p.execute_command("VSEARCH", "FP32", fp32(vecs[i]), 1)
    assert p.execute() == [[f"p{i}"] for i in range(0, 5000, 25)]


@pytest.mark.timeout(60)
def test_pipeline_mixed_reads_writes_order(server):
    """Interleaved VSET / VSEARCH / VGET in one pipeline observe each other in order."""
    r = server.client(3)
    p = r.pipeline(transaction=False)
    for i in range(1000):
        v = [1.0, float(i + 1)]
        p.execute_command("VSET", "moving", "[" + ", ".join(map(str, v)) + "]")
        p.execute_command("VGET", "moving")
        p.execute_command("VSEARCH", "[1, %d]" % (i + 1), 1, "WITHSCORES")
    res = p.execute()
    for i in range(1000):
        assert res[3 * i] in (True, "OK")
        assert same_bits(parse_vec_text(res[3 * i + 1]), [1.0, i + 1])
        hit = res[3 * i + 2]
        assert list(hit) == ["moving"] and abs(hit["moving"]) < 1e-6


@pytest.mark.timeout(60)
def test_many_idle_connections(server):
    conns = [server.raw() for _ in range(200)]
    for c in conns[::10]:
        assert c.command("PING") == "PONG"
    assert server.client().info("clients")["connected_clients"] >= 201
    for c in conns:
        c.close()
    server.assert_healthy()


@pytest.mark.timeout(60)
def test_clear_and_redimension_during_searches(vexlake):
    """CLEAR (and a new dimension) while other clients write and search: only
    the documented errors, never a crash or a wrong-dimension result."""
    server = vexlake(["--metric", "l2"])
    stop = threading.Event()
    errors = []
    allowed = ("dimension mismatch",)

    def worker(seed, dim):
        c = server.client()
        g = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                v = g.standard_normal(dim).astype(np.float32)
                for args in (("VSET", f"d{dim}:{int(g.integers(200))}", "FP32", fp32(v)),
                             ("VSEARCH", "FP32", fp32(v), 20, "WITHSCORES")):
                    try:
                        res = c.execute_command(*args)
                    except Exception as e:  # noqa: BLE001
                        if not any(a in str(e) for a in allowed):
                            raise
                        continue
                    if args[0] == "VSEARCH":
                        keys = res[0::2]
                        assert all(k.startswith(f"d{dim}:") for k in keys), keys[:3]
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    def clearer():
        c = server.client()
        try:
            while not stop.is_set():
                c.execute_command("CLEAR")
                time.sleep(0.01)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i, 8 if i % 2 else 24), daemon=True)
               for i in range(6)]
    threads.append(threading.Thread(target=clearer, daemon=True))
    for t in threads:
        t.start()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(20)
    assert not errors, errors[:5]
    server.assert_healthy()
    r = server.client()
    dim = r.info("vectors")["dimension"]
    assert r.dbsize() <= 200 and (dim in (0, 8, 24))


@pytest.mark.timeout(60)
def test_slow_reader_does_not_stall_others(vexlake):
    """A client that pipelines big replies and does not read them must not
    block other clients; its replies all arrive, in order, once it reads."""
    server = vexlake(["--metric", "l2"])
    r = server.client(decode=False)
    rng = np.random.default_rng(2)
    base = rng.standard_normal((12000, 8)).astype(np.float32)
    p = r.pipeline(transaction=False)
    for i in range(len(base)):
        p.execute_command("VSET", b"k%d" % i, "FP32", base[i].tobytes())
    p.execute()
    from harness import encode_command
    n = 40
    slow = server.raw(timeout=30)
    q = [fp32(base[i]) for i in range(n)]
    slow.send(b"".join(encode_command("VSEARCH", "FP32", q[i], 10000, "WITHSCORES")
                       for i in range(n)))
    time.sleep(0.5)  # ~10 MB of replies pile up unread
    other = server.client()
    for _ in range(20):
        assert other.ping() is True
        assert other.dbsize() == len(base)
    for i in range(n):
        rep = slow.read_reply()
        assert len(rep) == 20000 and rep[0] == b"k%d" % i and float(rep[1]) == 0.0
    slow.close()
    server.assert_healthy()
