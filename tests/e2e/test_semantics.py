"""What the vector commands mean: dimension rules, overwrite/delete/clear,
exact float32 round trips, and scores checked against numpy."""
import numpy as np
import pytest

from harness import fp32, parse_vec_text, same_bits, scores_from_reply, vec_text


def ok(reply):
    return reply in ("OK", True, b"OK")


def test_first_vset_fixes_dimension(server, proto):
    r = server.client(proto)
    assert r.info("vectors")["dimension"] == 0
    assert ok(r.execute_command("VSET", "a", "[1, 2, 3]"))
    assert r.info("vectors")["dimension"] == 3
    for bad in ("[1, 2]", "[1, 2, 3, 4]"):
        with pytest.raises(Exception, match="dimension mismatch: expected 3"):
            r.execute_command("VSET", "b", bad)
    assert ok(r.execute_command("VSET", "b", "FP32", fp32([4, 5, 6])))
    assert r.dbsize() == 2


def test_vsearch_empty_collection(server, proto):
    r = server.client(proto)
    assert r.execute_command("VSEARCH", "[1, 2, 3]", 5) == []
    assert r.execute_command("VSEARCH", "FP32", fp32([1, 2]), 10) == []
    empty = r.execute_command("VSEARCH", "[1, 2, 3]", 5, "WITHSCORES")
    assert len(empty) == 0 and isinstance(empty, dict if proto == 3 else list)
    # Emptied by CLEAR: any dimension again.
    r.execute_command("VSET", "a", "[1, 2]")
    r.execute_command("CLEAR")
    assert r.execute_command("VSEARCH", "[1, 2, 3, 4]", 5) == []


def test_overwrite(server, proto):
    r = server.client(proto)
    r.execute_command("VSET", "k", "[1, 0]")
    r.execute_command("VSET", "other", "[0, 1]")
    assert ok(r.execute_command("VSET", "k", "[-1, 0]"))
    assert same_bits(parse_vec_text(r.execute_command("VGET", "k")), [-1, 0])
    assert r.dbsize() == 2
    # The old version is invisible to search; the key appears once.
    assert r.execute_command("VSEARCH", "[1, 0]", 10) == ["other", "k"]
    pairs = scores_from_reply(r.execute_command("VSEARCH", "[-1, 0]", 10, "WITHSCORES"), proto)
    assert pairs[0][0] == "k" and pairs[0][1] == pytest.approx(0.0, abs=1e-6)
    # Overwrite many times, then check once more.
    for i in range(50):
        r.execute_command("VSET", "k", vec_text([i + 1, 1]))
    assert same_bits(parse_vec_text(r.execute_command("VGET", "k")), [50, 1])
    assert r.dbsize() == 2


def test_vdel(server, proto):
    r = server.client(proto)
    r.execute_command("VSET", "a", "[1, 0]")
    r.execute_command("VSET", "b", "[0, 1]")
    assert r.execute_command("VDEL", "a") == 1
    assert r.execute_command("VGET", "a") is None
    assert r.execute_command("VSEARCH", "[1, 0]", 10) == ["b"]
    assert r.execute_command("VDEL", "a") == 0
    assert r.execute_command("VDEL", "never") == 0
    assert r.dbsize() == 1
    # Re-adding a deleted key works.
    r.execute_command("VSET", "a", "[1, 0.5]")
    assert r.execute_command("VSEARCH", "[1, 0]", 10) == ["a", "b"]
    assert r.dbsize() == 2


def test_clear_allows_new_dimension(server, proto):
    r = server.client(proto)
    for i in range(20):
        r.execute_command("VSET", f"k{i}", vec_text([i, 1, 2]))
    assert ok(r.execute_command("CLEAR"))
    assert r.dbsize() == 0
    assert r.info("vectors")["dimension"] == 0
    assert r.execute_command("VGET", "k1") is None
    assert ok(r.execute_command("VSET", "k1", "[1, 2, 3, 4, 5]"))
    assert r.info("vectors")["dimension"] == 5
    assert r.execute_command("VSEARCH", "[1, 2, 3, 4, 5]", 10) == ["k1"]
    assert ok(r.execute_command("CLEAR"))
    assert ok(r.execute_command("CLEAR"))  # clearing an empty collection is fine


def random_float32(rng, shape):
    """Random bit patterns: normals, subnormals, huge and tiny, both signs."""
    bits = rng.integers(0, 2**32, size=shape, dtype=np.uint64).astype(np.uint32)
    v = bits.view(np.float32)
    v = np.where(np.isfinite(v), v, np.float32(1.5))
    extras = np.array([0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38,
                       0.1, 1 / 3, 16777217.0, 2.0 ** -126, 123456.789], dtype=np.float32)
    v.reshape(-1)[: len(extras)] = extras
    return v


def test_vget_roundtrips_exact_float32(l2server, proto):
    r = l2server.client(proto)
    rng = np.random.default_rng(12345)
    vecs = random_float32(rng, (60, 48))
    p = r.pipeline(transaction=False)
    for i, v in enumerate(vecs):
        if i % 2:
            p.execute_command("VSET", f"r{i}", "FP32", fp32(v))
        else:
            p.execute_command("VSET", f"r{i}", vec_text(v))
    assert all(ok(x) for x in p.execute())
    p = r.pipeline(transaction=False)
    for i in range(len(vecs)):
        p.execute_command("VGET", f"r{i}")
    for i, text in enumerate(p.execute()):
        got = parse_vec_text(text)
        bad = np.nonzero(got.view(np.uint32) != vecs[i].view(np.uint32))[0]
        assert bad.size == 0, (i, [(vecs[i][j], text.split(",")[j]) for j in bad[:5]])
        # numpy agrees with the C parse
        assert same_bits(np.array([np.float32(x) for x in text.strip("[]").split(",")]), vecs[i])


def test_vget_roundtrips_typical_values(server, proto):
    r = server.client(proto)
    rng = np.random.default_rng(1)
    for i in range(30):
        v = (rng.standard_normal(32) * 10.0 ** rng.integers(-8, 8)).astype(np.float32)
        r.execute_command("VSET", f"n{i}", "FP32", fp32(v))
        assert same_bits(parse_vec_text(r.execute_command("VGET", f"n{i}")), v)


def test_fp32_and_text_agree(l2server, proto):
    r = l2server.client(proto)
    rng = np.random.default_rng(99)
    v = rng.standard_normal(24).astype(np.float32)
    r.execute_command("VSET", "text", vec_text(v))
    r.execute_command("VSET", "blob", "FP32", fp32(v))
    a, b = r.execute_command("VGET", "text"), r.execute_command("VGET", "blob")
    assert a == b and same_bits(parse_vec_text(a), v)
    q = rng.standard_normal(24).astype(np.float32)
    s1 = scores_from_reply(r.execute_command("VSEARCH", vec_text(q), 2, "WITHSCORES"), proto)
    s2 = scores_from_reply(r.execute_command("VSEARCH", "FP32", fp32(q), 2, "WITHSCORES"), proto)
    assert {k for k, _ in s1} == {"text", "blob"}
    assert [s for _, s in s1] == [s for _, s in s2]
    assert s1[0][1] == s1[1][1]
    # A lower-case fp32 keyword works too.
    r.execute_command("VSET", "lower", "fp32", fp32(v))
    assert r.execute_command("VGET", "lower") == a


def numpy_scores(metric, base, q):
    b = base.astype(np.float64)
    q = q.astype(np.float64)
    if metric == "l2":
        s = np.sqrt(((b - q) ** 2).sum(1))
        order = np.argsort(s, kind="stable")
    elif metric == "cosine":
        s = 1 - (b @ q) / (np.linalg.norm(b, axis=1) * np.linalg.norm(q))
        order = np.argsort(s, kind="stable")
    else:
        s = b @ q
        order = np.argsort(-s, kind="stable")
    return s, order


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_withscores_match_numpy(vexlake, proto, metric):
    server = vexlake(["--metric", metric])
    r = server.client(proto)
    assert r.info("vectors")["metric"] == metric
    rng = np.random.default_rng({"l2": 1, "cosine": 2, "ip": 3}[metric])
    n, dim, k = 300, 37, 15  # odd dimension: exercises SIMD tails
    base = rng.standard_normal((n, dim)).astype(np.float32)
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.execute_command("VSET", str(i), "FP32", fp32(base[i]))
    assert all(ok(x) for x in p.execute())
    for qi in range(10):
        q = rng.standard_normal(dim).astype(np.float32)
        want, order = numpy_scores(metric, base, q)
        pairs = scores_from_reply(r.execute_command("VSEARCH", "FP32", fp32(q), k, "WITHSCORES"),
                                  proto)
        assert len(pairs) == k
        keys = [int(key) for key, _ in pairs]
        scores = np.array([s for _, s in pairs])
        np.testing.assert_allclose(scores, want[keys], rtol=1e-5, atol=1e-5)
        # Nearest first, and exactly numpy's top-k (random data: no near-ties expected).
        if metric == "ip":
            assert (np.diff(scores) <= 1e-9).all()
        else:
            assert (np.diff(scores) >= -1e-9).all()
        assert keys == [int(x) for x in order[:k]]
        # Without scores: same keys.
        assert r.execute_command("VSEARCH", "FP32", fp32(q), k) == [str(x) for x in keys]


def test_cosine_is_scale_invariant(server, proto):
    r = server.client(proto)  # default metric: cosine
    r.execute_command("VSET", "a", "[1, 1]")
    r.execute_command("VSET", "b", "[100, 0]")
    pairs = scores_from_reply(r.execute_command("VSEARCH", "[5, 0]", 2, "WITHSCORES"), proto)
    assert pairs[0][0] == "b" and pairs[0][1] == pytest.approx(0.0, abs=1e-7)
    assert pairs[1][1] == pytest.approx(1 - np.sqrt(0.5), abs=1e-6)
    with pytest.raises(Exception, match="zero vector"):
        r.execute_command("VSET", "z", "[0, 0]")
    with pytest.raises(Exception, match="zero vector"):
        r.execute_command("VSEARCH", "[0, 0]", 1)


def test_k_larger_than_collection(l2server, proto):
    r = l2server.client(proto)
    for i in range(7):
        r.execute_command("VSET", f"k{i}", vec_text([i, 0]))
    res = r.execute_command("VSEARCH", "[0, 0]", 100)
    assert res == [f"k{i}" for i in range(7)]


def test_read_your_writes(l2server, proto):
    r = l2server.client(proto)
    rng = np.random.default_rng(5)
    for i in range(200):
        v = rng.standard_normal(8).astype(np.float32)
        r.execute_command("VSET", f"w{i}", "FP32", fp32(v))
        assert r.execute_command("VSEARCH", "FP32", fp32(v), 1) == [f"w{i}"]
        if i % 3 == 0:
            assert r.execute_command("VDEL", f"w{i}") == 1
            res = r.execute_command("VSEARCH", "FP32", fp32(v), 1)
            assert res != [f"w{i}"]
    assert r.dbsize() == 200 - 67
