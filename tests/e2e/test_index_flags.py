"""--index / --quant / --hnsw-m / --hnsw-ef-construction / --ivf-lists: good
values start the server and set what a new collection gets, bad values exit
2 naming the flag; INFO reports the default collection's index and the
engine's index counters; a collection keeps its index across a restart with
other flags."""
import subprocess

import numpy as np
import pytest

from harness import fp32, free_port, server_binary
from indexutil import reference, save, vectors_info, vsearch, wait_for_index

INDEX_FIELDS_STR = {"index": {"hnsw", "ivf", "flat"}, "quant": {"none", "sq8", "rabitq"}}
INDEX_FIELDS_INT = ["indexed_rows", "unindexed_rows", "index_builds", "index_loads",
                    "index_rebuilds", "index_build_running"]


def run(*args, timeout=10):
    return subprocess.run([str(server_binary()), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_help_lists_index_flags():
    p = run("--help")
    assert p.returncode == 0
    for opt in ("--index hnsw|ivf|flat", "--quant none|sq8|rabitq", "--hnsw-m N",
                "--hnsw-ef-construction N", "--ivf-lists N"):
        assert opt in p.stdout, opt


@pytest.mark.parametrize("args,match", [
    (["--index", "annoy"], "--index wants hnsw, ivf or flat, got 'annoy'"),
    (["--index", "HNSW"], "--index wants hnsw, ivf or flat, got 'HNSW'"),
    (["--index", ""], "--index wants"),
    (["--index"], "option '--index' needs a value"),
    (["--quant", "pq"], "--quant wants none, sq8 or rabitq, got 'pq'"),
    (["--quant", "sq4"], "--quant wants none, sq8 or rabitq"),
    (["--hnsw-m", "1"], "--hnsw-m wants a number from 2 to 128, got '1'"),
    (["--hnsw-m", "129"], "--hnsw-m wants a number from 2 to 128"),
    (["--hnsw-m", "016"], "--hnsw-m wants a number"),
    (["--hnsw-m", "+16"], "--hnsw-m wants a number"),
    (["--hnsw-ef-construction", "0"], "--hnsw-ef-construction wants a number from 1 to 4096"),
    (["--hnsw-ef-construction", "4097"], "--hnsw-ef-construction wants a number"),
    (["--hnsw-ef-construction", "2e2"], "--hnsw-ef-construction wants a number"),
    (["--ivf-lists", "-1"], "--ivf-lists wants a number from 0 to 65536, got '-1'"),
    (["--ivf-lists", "65537"], "--ivf-lists wants a number from 0 to 65536"),
    (["--ivf-lists", "many"], "--ivf-lists wants a number"),
    (["--quant", "rabitq"], "--quant rabitq needs --index ivf"),
    (["--index", "hnsw", "--quant", "rabitq"], "--quant rabitq needs --index ivf"),
])
def test_bad_index_flags_exit_2(args, match, tmp_path):
    p = run("--dir", str(tmp_path / "d"), "--port", str(free_port()), *args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert match in p.stderr
    assert "--help" in p.stderr
    assert not (tmp_path / "d").exists()  # refused before anything was opened


def check_index_fields(info):
    for f, allowed in INDEX_FIELDS_STR.items():
        assert info[f] in allowed, (f, info[f])
    for f in INDEX_FIELDS_INT:
        assert isinstance(info[f], int) and info[f] >= 0, (f, info[f])
    assert info["index_build_running"] in (0, 1)
    assert info["index_rebuilds"] <= info["index_builds"]


@pytest.mark.parametrize("flags,index,quant", [
    ([], "hnsw", "sq8"),
    (["--index", "ivf"], "ivf", "sq8"),
    (["--index", "ivf", "--quant", "rabitq", "--ivf-lists", "65536"], "ivf", "rabitq"),
    (["--index", "flat", "--quant", "none"], "flat", "none"),
    (["--quant", "rabitq", "--index", "ivf"], "ivf", "rabitq"),
    (["--quant", "none", "--hnsw-m", "2", "--hnsw-ef-construction", "1"], "hnsw", "none"),
    (["--hnsw-m", "128", "--hnsw-ef-construction", "4096", "--ivf-lists", "0"], "hnsw", "sq8"),
])
def test_index_flags_accepted_and_reported(vexlake, proto, flags, index, quant):
    """A good value starts the server; before the collection exists INFO
    shows what it will be created with; after writes every field is there
    and typed, and searches work."""
    srv = vexlake(flags)
    r = srv.client(proto)
    info = vectors_info(r)
    check_index_fields(info)
    assert (info["index"], info["quant"]) == (index, quant)
    assert info["indexed_rows"] == 0 and info["unindexed_rows"] == 0
    rng = np.random.default_rng(3)
    rows = {f"k{i}": rng.standard_normal(6).astype(np.float32) for i in range(50)}
    for key, v in rows.items():
        r.execute_command("VSET", key, "FP32", fp32(v))
    save(r)
    info = vectors_info(r)
    check_index_fields(info)
    assert info["vectors"] == 50
    q = rng.standard_normal(6).astype(np.float32)
    want = [k for k, _ in reference(rows, q, "cosine", 5)]
    assert vsearch(srv.client(), q, 5, withscores=False) == want
    assert vsearch(srv.client(), q, 5, "EXACT", withscores=False) == want


@pytest.mark.timeout(90)
def test_restart_with_other_index_flags_keeps_the_collections_index(vexlake):
    """The index kind and codes are stored with the collection, like the
    metric: restarted with different --index / --quant it reports the same
    ones, loads its index files instead of building them, and searches as
    before."""
    srv = vexlake(["--metric", "l2", "--index", "ivf", "--quant", "none", "--ivf-lists", "8"])
    r = srv.client()
    rng = np.random.default_rng(5)
    rows = {f"k{i}": rng.standard_normal(16).astype(np.float32) for i in range(1500)}
    p = r.pipeline(transaction=False)
    for key, v in rows.items():
        p.execute_command("VSET", key, "FP32", fp32(v))
    p.execute()
    save(r)
    before = wait_for_index(r, 0, deadline_s=60)
    if before["index"] != "flat":  # the index file exists before the restart
        assert before["unindexed_rows"] == 0 and before["index_build_running"] == 0, before
    queries = [rng.standard_normal(16).astype(np.float32) for _ in range(10)]
    answers = [vsearch(r, q, 10) for q in queries]
    exact = [vsearch(r, q, 10, "EXACT") for q in queries]
    for q, got in zip(queries, exact):
        assert [k for k, _ in got] == [k for k, _ in reference(rows, q, "l2", 10)]
    assert srv.stop() == 0

    srv.start(["--metric", "cosine", "--index", "hnsw", "--quant", "sq8"])
    r = srv.client()
    after = wait_for_index(r, 0, deadline_s=60)  # an engine may load index files in the background
    assert (after["index"], after["quant"], after["metric"]) == \
        (before["index"], before["quant"], "l2")
    assert after["vectors"] == len(rows)
    if after["index"] != "flat":
        assert after["unindexed_rows"] == 0 and after["indexed_rows"] >= len(rows), after
        assert after["index_builds"] == 0 and after["index_loads"] >= 1, after
    assert [vsearch(r, q, 10) for q in queries] == answers  # the same index, loaded
    assert [vsearch(r, q, 10, "EXACT") for q in queries] == exact
    assert "keeps its stored metric l2" in srv.log_tail()
    srv.assert_healthy()
