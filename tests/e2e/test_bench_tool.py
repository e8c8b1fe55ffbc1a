"""bin/vexlake-bench against a real server: every mode runs, its report
parses, the counts add up, recall is computed (and can come out wrong when
the ground truth says so), and failures reach the exit status.  Small runs:
this keeps the tool from rotting, it measures nothing."""
import os
import shutil
import subprocess

import numpy as np
import pytest

from harness import DATASETS, REPO

BENCH = REPO / "bin" / "vexlake-bench"
CONTRACT_FLAGS = ["-mode=", "-n=", "-concurrency=", "-pipeline=", "-dataset=", "-k=", "-ef=",
                  "-host=", "-port="]


def bench_binary(tmp_path):
    if not BENCH.exists():
        pytest.fail(f"{BENCH} missing: run `make build` first")
    dst = tmp_path / "vexlake-bench"  # others rebuild bin/ while tests run
    shutil.copy2(BENCH, dst)
    return dst


def run_bench(tmp_path, port, *flags, expect_rc=0):
    p = subprocess.run([str(bench_binary(tmp_path)), f"-port={port}", *flags],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == expect_rc, p.stdout + p.stderr
    results = {}
    for line in p.stdout.splitlines():
        if line.startswith("result "):
            fields = dict(f.split("=", 1) for f in line.split()[1:])
            results[fields["stream"]] = fields
    return results, p.stdout


def check_stream(r, ops):
    assert int(r["ops"]) == ops, r
    assert int(r["errors"]) == 0, r
    assert float(r["ops_per_sec"]) > 0 and float(r["seconds"]) > 0, r
    p50, p95, p99, mx = (float(r[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
    assert 0 < p50 <= p95 <= p99 <= mx, r
    if r["stream"] == "search":
        assert int(r["dup_replies"]) == 0, r  # no reply names a key twice


def write_vecs(path, rows, dtype):
    rows = np.asarray(rows, dtype=dtype)
    d = np.full((rows.shape[0], 1), rows.shape[1], dtype="<i4")
    np.hstack([d, rows.view("<i4")]).astype("<i4").tofile(path)


def small_dataset(root, shuffled_truth=False):
    """200 random 8-d base rows, 20 queries, exact L2 ground truth."""
    rng = np.random.default_rng(7)
    base = rng.random((200, 8), dtype=np.float32)
    query = rng.random((20, 8), dtype=np.float32)
    dist = np.sqrt(((query[:, None, :].astype(np.float64) - base[None, :, :]) ** 2).sum(-1))
    gt = np.argsort(dist, axis=1, kind="stable")[:, :100].astype(np.int32)
    root.mkdir()
    write_vecs(root / "base.fvecs", base, "<f4")
    write_vecs(root / "query.fvecs", query, "<f4")
    if shuffled_truth:  # every query gets another query's neighbours, no distances
        write_vecs(root / "groundtruth.ivecs", np.roll(gt, 1, axis=0), "<i4")
    else:
        write_vecs(root / "groundtruth.ivecs", gt, "<i4")
        write_vecs(root / "groundtruth_dist.fvecs",
                   np.take_along_axis(dist, gt.astype(np.int64), 1).astype(np.float32), "<f4")
    return root


def test_help_names_the_contract_flags(tmp_path):
    p = subprocess.run([str(bench_binary(tmp_path)), "-help"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 0
    for flag in CONTRACT_FLAGS:
        assert flag in p.stdout, flag
    bad = subprocess.run([str(bench_binary(tmp_path)), "-mode=fly"], capture_output=True,
                         text=True, timeout=10)
    assert bad.returncode == 2 and "-mode" in bad.stderr
    bad = subprocess.run([str(bench_binary(tmp_path)), "-pipelin=4"], capture_output=True,
                         text=True, timeout=10)
    assert bad.returncode == 2 and "unknown flag" in bad.stderr


def test_insert_search_mixed_ping_on_random_vectors(vexlake, tmp_path):
    srv = vexlake(["--metric", "l2"])
    res, _ = run_bench(tmp_path, srv.port, "-mode=insert", "-dim=16", "-n=3000",
                       "-concurrency=8", "-pipeline=16", "-key-prefix=r:")
    check_stream(res["insert"], 3000)
    r = srv.client()
    assert r.dbsize() == 3000
    assert r.execute_command("VGET", "r:2999") is not None

    res, out = run_bench(tmp_path, srv.port, "-mode=search", "-dim=16", "-n=200",
                         "-concurrency=4", "-k=5")
    check_stream(res["search"], 200)
    assert "recall" not in res["search"] and "no ground truth" in out

    res, _ = run_bench(tmp_path, srv.port, "-mode=mixed", "-dim=16", "-n=300",
                       "-concurrency=3", "-insert-concurrency=2", "-insert-pipeline=4",
                       "-key-prefix=r:", "-key-offset=100000", "-label=smoke")
    check_stream(res["search"], 300)
    assert r.info("stats")["total_searches"] == 200 + 300
    ins = int(res["insert"]["ops"])
    assert ins > 0 and int(res["insert"]["errors"]) == 0
    assert res["search"]["label"] == "smoke"
    # Every acknowledged insert of the stream is there (new keys from 100000).
    assert r.dbsize() == 3000 + ins

    # A capped insert stream: what it sent fits the cap over the time it ran
    # (plus the batches in flight when it stopped).
    res, _ = run_bench(tmp_path, srv.port, "-mode=mixed", "-dim=16", "-n=400",
                       "-concurrency=2", "-insert-concurrency=4", "-insert-pipeline=2",
                       "-insert-rate=300", "-key-prefix=r:", "-key-offset=200000")
    ins = res["insert"]
    assert 0 < int(ins["ops"]) <= 300 * float(ins["seconds"]) + 2 * 4 * 2 + 2, ins

    # -seconds without -n: runs until the time is up.
    res, _ = run_bench(tmp_path, srv.port, "-mode=ping", "-seconds=0.3", "-concurrency=3")
    assert int(res["ping"]["ops"]) > 0 and int(res["ping"]["errors"]) == 0

    before = r.info("stats")
    res, _ = run_bench(tmp_path, srv.port, "-mode=ping", "-n=5000", "-concurrency=10",
                       "-pipeline=7", "-threads=2")
    check_stream(res["ping"], 5000)
    after = r.info("stats")
    # The server saw what the tool counted (+1: this INFO itself).
    assert after["total_commands_processed"] - before["total_commands_processed"] == 5001
    assert after["total_writes"] - before["total_writes"] == 0


def test_recall_is_measured_and_can_fail(vexlake, tmp_path):
    srv = vexlake(["--metric", "l2"])
    good = small_dataset(tmp_path / "tiny-l2")
    res, _ = run_bench(tmp_path, srv.port, "-mode=insert", f"-dataset={good}", "-concurrency=4",
                       "-pipeline=8")
    check_stream(res["insert"], 200)
    res, out = run_bench(tmp_path, srv.port, "-mode=search", f"-dataset={good}", "-n=40",
                         "-concurrency=2")
    check_stream(res["search"], 40)
    assert float(res["search"]["recall"]) == 1.0 and "tie-aware" in out  # exact search today

    # Copies of every row under new keys: tie-aware recall still counts them,
    # by ids half of the top 10 are copies now.
    run_bench(tmp_path, srv.port, "-mode=insert", f"-dataset={good}", "-key-offset=200")
    res, _ = run_bench(tmp_path, srv.port, "-mode=search", f"-dataset={good}", "-n=20")
    assert float(res["search"]["recall"]) == 1.0
    assert 0.3 <= float(res["search"]["recall_ids"]) <= 0.7

    wrong = small_dataset(tmp_path / "tiny-wrong", shuffled_truth=True)
    res, out = run_bench(tmp_path, srv.port, "-mode=search", f"-dataset={wrong}", "-n=20",
                         "-metric=l2")
    assert float(res["search"]["recall"]) < 0.3, out
    assert "by ids" in out and "tie-aware" not in out


def test_server_errors_reach_the_exit_status(vexlake, tmp_path):
    srv = vexlake(["--metric", "l2"])
    srv.client().execute_command("VSET", "x", "[1, 2, 3, 4, 5, 6, 7, 8]")
    res, out = run_bench(tmp_path, srv.port, "-mode=insert", "-dim=16", "-n=50",
                         "-concurrency=2", expect_rc=1)
    assert int(res["insert"]["errors"]) == 50
    assert "dimension mismatch" in out


def test_closed_port_fails_cleanly(tmp_path):
    from harness import free_port
    p = subprocess.run([str(bench_binary(tmp_path)), "-mode=ping", f"-port={free_port()}"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and "connect" in p.stderr


@pytest.mark.timeout(120)
def test_shared_dataset_recall_is_sane(vexlake, tmp_path):
    ds = DATASETS / "sift-128-euclidean-ngt5k"
    if not (ds / "base.fvecs").exists():
        pytest.skip(f"dataset {ds} not available")
    srv = vexlake(["--metric", "l2"])
    res, _ = run_bench(tmp_path, srv.port, "-mode=insert", f"-dataset={ds}", "-concurrency=16",
                       "-pipeline=16")
    check_stream(res["insert"], 4500)
    res, _ = run_bench(tmp_path, srv.port, "-mode=search", f"-dataset={ds}", "-n=300",
                       "-concurrency=8", "-k=10")
    check_stream(res["search"], 300)
    recall = float(res["search"]["recall"])
    # Exact search gives 1.0; an index with default settings promises >= 0.95.
    assert 0.95 <= recall <= 1.0, res
