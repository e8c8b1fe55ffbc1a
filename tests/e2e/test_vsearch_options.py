"""VSEARCH vector K [EF n] [NPROBE n] [EXACT] [WITHSCORES] [VERSION n].

Parsing: options after K in any order and case, each at most once, strict
integers in range; every bad form is one -ERR line naming the option and the
connection goes on.  Results: EXACT equals a float64 numpy brute force, and
on small collections spread over indexed segments, unindexed rows, deletes
and overwrites the default search (and any EF / NPROBE) returns exactly what
EXACT returns, for every index kind.  These hold for today's exact scan and
must keep holding once searches go through indexes."""
import numpy as np
import pytest
import redis

from harness import RespError, fp32
from indexutil import reference, save, vectors_info, vsearch, wait_for_index


def small_set(server, n=40, dim=4, seed=1):
    r = server.client()
    rng = np.random.default_rng(seed)
    rows = {f"k{i}": rng.standard_normal(dim).astype(np.float32) for i in range(n)}
    p = r.pipeline(transaction=False)
    for key, v in rows.items():
        p.execute_command("VSET", key, "FP32", fp32(v))
    p.execute()
    return r, rows


# ---- accepted forms ---------------------------------------------------------

GOOD = [
    [],
    ["EXACT"],
    ["exact"],
    ["EF", "1"],
    ["ef", "100000"],
    ["NPROBE", "1"],
    ["nprobe", "65536"],
    ["EF", "64", "NPROBE", "8"],
    ["NPROBE", "8", "Ef", "64"],
    ["WITHSCORES", "EF", "20"],
    ["EF", "20", "WITHSCORES"],
    ["EXACT", "WITHSCORES"],
    ["WithScores", "exact"],
    ["NPROBE", "3", "WITHSCORES", "EF", "5"],
]


@pytest.mark.parametrize("opts", GOOD, ids=lambda o: "-".join(o) or "none")
def test_options_accepted_in_any_order_and_case(server, proto, opts):
    r, rows = small_set(server)
    r = server.client(proto)
    q = np.linspace(-1, 1, 4).astype(np.float32)
    want = reference(rows, q, "cosine", 5)
    reply = r.execute_command("VSEARCH", "FP32", fp32(q), 5, *opts)
    withscores = any(o.lower() == "withscores" for o in opts)
    if not withscores:
        assert reply == [key for key, _ in want]
        return
    if proto == 3:
        assert isinstance(reply, dict)
        pairs = [(key, float(s)) for key, s in reply.items()]
    else:
        pairs = [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]
    assert [key for key, _ in pairs] == [key for key, _ in want]
    np.testing.assert_allclose([s for _, s in pairs], [s for _, s in want], rtol=1e-9, atol=1e-12)


def test_options_with_version(server):
    """VERSION n combines with every option, in any position, and searches
    exactly that version's rows."""
    r, rows = small_set(server, n=30)
    save(r)
    v1 = vectors_info(r)["version"]
    old = dict(rows)
    for i in range(10):
        r.execute_command("VDEL", f"k{i}")
        del rows[f"k{i}"]
    rows["k20"] = np.full(4, 0.5, dtype=np.float32)
    r.execute_command("VSET", "k20", "FP32", fp32(rows["k20"]))
    save(r)
    v2 = vectors_info(r)["version"]
    assert v2 > v1
    q = np.array([0.3, -0.2, 0.9, 0.1], dtype=np.float32)
    for version, state in ((v1, old), (v2, rows)):
        want = [key for key, _ in reference(state, q, "cosine", 8)]
        for opts in (["VERSION", version, "EXACT"], ["EXACT", "VERSION", version],
                     ["EF", 50, "VERSION", version], ["VERSION", version, "NPROBE", 4, "ef", 9],
                     ["version", version]):
            assert vsearch(r, q, 8, *opts, withscores=False) == want, (version, opts)
    # time travel after the newest version moved on still sees v1's rows
    assert "k0" in vsearch(r, old["k0"], 1, "VERSION", v1, "EF", 10, withscores=False)
    assert "k0" not in vsearch(r, old["k0"], 30, "EF", 10, withscores=False)


# ---- refused forms ----------------------------------------------------------

NOT_STRICT = ["0", "-1", "01", "+5", " 5", "5 ", "1.5", "1e2", "0x10", "abc", "",
              "18446744073709551616", "9223372036854775808"]

BAD = (
    [(["EF", v], "^EF must be an integer from 1 to 100000$") for v in NOT_STRICT + ["100001"]]
    + [(["NPROBE", v], "^NPROBE must be an integer from 1 to 65536$")
       for v in NOT_STRICT + ["65537"]]
    + [
        (["EF"], "^syntax error: EF needs a value$"),
        (["WITHSCORES", "NPROBE"], "^syntax error: NPROBE needs a value$"),
        (["EF", "10", "EF", "10"], "^syntax error: EF given more than once$"),
        (["ef", "10", "WITHSCORES", "Ef", "20"], "^syntax error: EF given more than once$"),
        (["NPROBE", "1", "nprobe", "2"], "^syntax error: NPROBE given more than once$"),
        (["EXACT", "exact"], "^syntax error: EXACT given more than once$"),
        (["WITHSCORES", "withscores"], "^syntax error: WITHSCORES given more than once$"),
        (["VERSION", "1", "VERSION", "1"], "^syntax error: VERSION given more than once$"),
        (["EXACT", "EF", "10"], "^EXACT cannot be combined with EF or NPROBE"),
        (["NPROBE", "2", "WITHSCORES", "EXACT"], "^EXACT cannot be combined with EF or NPROBE"),
        (["EF=10"], "^syntax error: VSEARCH vector K \\[EF n\\] \\[NPROBE n\\] \\[EXACT\\]"),
        (["EFS", "10"], "^syntax error: VSEARCH vector K"),
        (["10"], "^syntax error: VSEARCH vector K"),
        (["EF", "10", "20"], "^syntax error: VSEARCH vector K"),
        (["EXACTLY"], "^syntax error: VSEARCH vector K"),
        (["EF", "10", "WITHSCORES", "extra"], "^syntax error: VSEARCH vector K"),
    ]
)


def test_bad_options_give_one_error_line_each(server, proto):
    """Every bad form, in both protocols: the exact message, on one line, on
    a connection (RESP2 raw socket and redis-py) that keeps working."""
    r, _ = small_set(server)
    r = server.client(proto)
    q = fp32([1, 0, 0, 0])
    searches_before = r.info("stats")["total_searches"]
    for opts, match in BAD:
        with pytest.raises(redis.ResponseError, match=match):
            r.execute_command("VSEARCH", "FP32", q, 3, *opts)
        assert r.ping() is True
    with server.raw() as raw:
        for opts, match in BAD:
            reply = raw.command("VSEARCH", "FP32", q, 3, *opts)
            assert isinstance(reply, RespError) and reply.startswith("ERR "), (opts, reply)
        assert raw.command("PING") == "PONG"
    assert r.info("stats")["total_searches"] == searches_before  # none of them ran
    server.assert_healthy()


def test_option_words_are_not_taken_as_the_vector_or_k(server):
    r, _ = small_set(server)
    for args, match in ((["VSEARCH", "EF", "10"], "invalid vector"),
                        (["VSEARCH", "[1, 0, 0, 0]", "EF", "10"], "K must be a positive integer"),
                        (["VSEARCH", "[1, 0, 0, 0]", "EXACT"], "K must be a positive integer")):
        with pytest.raises(redis.ResponseError, match=match):
            r.execute_command(*args)
    server.assert_healthy()


# ---- EXACT is a brute force -------------------------------------------------

@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_exact_equals_numpy_brute_force(vexlake, metric):
    """EXACT over segments, deletes, overwrites and unflushed rows gives the
    float64 brute force's keys in its order, and its scores."""
    srv = vexlake(["--metric", metric])
    r = srv.client()
    rng = np.random.default_rng(7)
    dim, rows = 24, {}

    def put(key, v):
        rows.pop(key, None)  # an overwrite moves the key to the end (insertion order)
        rows[key] = v
        r.execute_command("VSET", key, "FP32", fp32(v))

    for i in range(600):
        put(f"a{i}", rng.standard_normal(dim).astype(np.float32))
    save(r)
    for i in range(0, 600, 7):
        put(f"a{i}", rng.standard_normal(dim).astype(np.float32))
    for i in range(3, 600, 11):
        r.execute_command("VDEL", f"a{i}")
        rows.pop(f"a{i}", None)
    save(r)
    for i in range(200):
        put(f"b{i}", rng.standard_normal(dim).astype(np.float32))
    r.execute_command("VDEL", "b5")
    rows.pop("b5")
    assert r.dbsize() == len(rows)
    for qi in range(25):
        q = rng.standard_normal(dim).astype(np.float32)
        got = vsearch(r, q, 20, "EXACT")
        want = reference(rows, q, metric, 20)
        assert [key for key, _ in got] == [key for key, _ in want], qi
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want],
                                   rtol=1e-9, atol=1e-9)
    # K past the row count returns every live row, each once
    q = rng.standard_normal(dim).astype(np.float32)
    assert [k for k, _ in vsearch(r, q, 10000, "EXACT")] == \
        [k for k, _ in reference(rows, q, metric, 10000)]


# ---- defaults (through indexes) return what EXACT returns on small cases ------

def clustered(rng, n, dim, centres):
    c = centres[rng.integers(0, len(centres), n)]
    return (c + 0.15 * rng.standard_normal((n, dim))).astype(np.float32)


def check_live_hits(rows, q, got, exact, what):
    """Ten distinct live keys with their exact current scores, nearest
    first; returns how many of them EXACT's answer has."""
    assert len(got) == 10 and len({k for k, _ in got}) == 10, what
    for key, score in got:
        true = float(np.sqrt(((rows[key].astype(np.float64) - q) ** 2).sum()))
        assert abs(score - true) <= 1e-9 * max(1.0, true), (what, key)
    assert [s for _, s in got] == sorted(s for _, s in got), what
    return len({k for k, _ in got} & {k for k, _ in exact})


def check_small_collection(vexlake, flags, dim):
    """Two sealed segments (the first with deletes and overwrites committed
    against it), then unflushed writes, overwrites and deletes.  The default
    search gives exactly EXACT's answer (IVF: at least 0.95 of it, every
    hit live with its exact score; its defaults scan only the lists that
    can still hold a neighbour), EXACT the brute force's; with large
    EF / NPROBE every hit is a live row with its exact current score and the
    answer overlaps EXACT's by at least 0.9 (compressed codes may trade a
    neighbour when more candidates compete); no deleted or overwritten row
    ever shows.  The segments are a few thousand rows, big enough to get
    index files (an engine may scan tiny segments instead) and small enough
    that an index must find every true neighbour with its defaults."""
    ivf = "ivf" in flags
    srv = vexlake(["--metric", "l2", *flags])
    r = srv.client()
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((12, dim)) * 3
    rows, gone = {}, {}
    pipe = r.pipeline(transaction=False)

    def put(key, v):
        if key in rows:
            gone[key] = rows.pop(key)
        rows[key] = v
        pipe.execute_command("VSET", key, "FP32", fp32(v))

    def delete(key):
        gone[key] = rows.pop(key)
        pipe.execute_command("VDEL", key)

    def send():
        assert all(x in (True, "OK", 1) for x in pipe.execute())

    first = clustered(rng, 2000, dim, centres)
    for i in range(2000):
        put(f"s{i}", first[i])
    send()
    save(r)
    second = clustered(rng, 1500, dim, centres)
    for i in range(1500):
        put(f"t{i}", second[i])
    for i in range(0, 2000, 9):
        put(f"s{i}", clustered(rng, 1, dim, centres)[0])  # overwrite a sealed row
    for i in range(4, 2000, 13):
        delete(f"s{i}")
    send()
    save(r)
    tail = clustered(rng, 150, dim, centres)
    for i in range(150):
        put(f"u{i}", tail[i])  # unflushed
    for i in range(1, 1500, 17):
        put(f"t{i}", clustered(rng, 1, dim, centres)[0])  # overwritten while unflushed
    for i in range(2, 1500, 19):
        delete(f"t{i}")
    delete("u3")
    send()
    unflushed = 150 + len(range(1, 1500, 17))
    info = wait_for_index(r, unflushed, deadline_s=60)
    if info["index"] != "flat":
        assert info["indexed_rows"] > 0, info  # the defaults below go through an index
    assert r.dbsize() == len(rows)

    queries = list(clustered(rng, 30, dim, centres))
    queries += [gone[key] for key in list(gone)[:20]]  # where a stale row would win
    overlap, default_hits = {}, 0
    for qi, q in enumerate(queries):
        want = reference(rows, q, "l2", 10)
        exact = vsearch(r, q, 10, "EXACT")
        assert [k for k, _ in exact] == [k for k, _ in want], qi
        np.testing.assert_allclose([s for _, s in exact], [s for _, s in want],
                                   rtol=1e-9, atol=1e-9)
        if ivf:  # scans the lists that can still hold a neighbour: near-exact
            default_hits += check_live_hits(rows, q, vsearch(r, q, 10), exact, ("default",))
        else:
            assert vsearch(r, q, 10) == exact, qi
        for opts in (("EF", 400), ("NPROBE", 65536), ("EF", 400, "NPROBE", 65536)):
            got = vsearch(r, q, 10, *opts)
            overlap[opts] = overlap.get(opts, 0) + check_live_hits(rows, q, got, exact, (qi, opts))
    for opts, hits in overlap.items():
        assert hits / (10 * len(queries)) >= 0.9, (opts, hits)
    if ivf:
        assert default_hits / (10 * len(queries)) >= 0.95, default_hits
    # a deleted key is never returned, an overwritten one only with its new vector
    for key, old in gone.items():
        hits = dict(vsearch(r, old, 3))
        if key not in rows:
            assert key not in hits, key
        elif key in hits:
            new_score = float(np.sqrt(((rows[key].astype(np.float64) - old) ** 2).sum()))
            assert abs(hits[key] - new_score) <= 1e-6 * max(1.0, new_score), key
    srv.assert_healthy()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flags", [
    ["--index", "hnsw"],
    ["--index", "hnsw", "--quant", "none"],
    ["--index", "ivf"],
    ["--index", "ivf", "--quant", "none"],
    ["--index", "flat"],
], ids=lambda f: "-".join(x.lstrip("-") for x in f))
def test_defaults_match_exact_on_small_collections(vexlake, flags):
    check_small_collection(vexlake, flags, dim=8)


@pytest.mark.timeout(120)
def test_defaults_match_exact_on_small_collections_with_rabitq_codes(vexlake):
    """The same for IVF over 1-bit RaBitQ codes, in 64 dimensions (in 8 a
    code would be 8 bits).  The codes' error bound tells the search which
    candidates the float32 re-rank must see, so the codes lose nothing
    against the lists' float32 scan."""
    check_small_collection(vexlake, ["--index", "ivf", "--quant", "rabitq"], dim=64)
