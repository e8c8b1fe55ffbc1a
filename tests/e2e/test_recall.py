"""Exact search (VSEARCH ... EXACT) on real data: recall@10 must be 1.0
(tie-aware) against the datasets' brute-force ground truth.  Skipped when
the datasets are absent.  The default search, through indexes, is
test_recall_defaults.py."""
import time

import numpy as np
import pytest

from harness import DATASETS, parse_vec_text, read_vecs, same_bits, scores_from_reply


def load_dataset(name):
    d = DATASETS / name
    if not (d / "base.fvecs").exists():
        pytest.skip(f"dataset {d} not available")
    return (read_vecs(d / "base.fvecs", np.float32), read_vecs(d / "query.fvecs", np.float32),
            read_vecs(d / "groundtruth.ivecs", np.int32),
            read_vecs(d / "groundtruth_dist.fvecs", np.float32))


def bulk_load(r, base, batch=500):
    for start in range(0, len(base), batch):
        p = r.pipeline(transaction=False)
        for i in range(start, min(start + batch, len(base))):
            p.execute_command("VSET", str(i), "FP32", base[i].astype("<f4").tobytes())
        res = p.execute()
        assert all(x is True or x == "OK" for x in res), res[:3]
    assert r.dbsize() == len(base)


def check_recall(r, proto, base, queries, gt, gt_dist, nq, k=10):
    recalls = []
    for qi in range(nq):
        q = queries[qi]
        reply = r.execute_command("VSEARCH", "FP32", q.astype("<f4").tobytes(), k, "EXACT",
                                  "WITHSCORES")
        pairs = scores_from_reply(reply, proto)
        ids = [int(key) for key, _ in pairs]
        assert len(ids) == k and len(set(ids)) == k, ids
        # True distances of what came back (float64, exact for integer data).
        true = np.sqrt(((base[ids].astype(np.float64) - q.astype(np.float64)) ** 2).sum(1))
        scores = np.array([s for _, s in pairs])
        np.testing.assert_allclose(scores, true, rtol=1e-6, atol=1e-4)
        assert (np.diff(scores) >= 0).all(), "results must be nearest first"
        kth = float(gt_dist[qi][k - 1])
        tol = 1e-4 * max(1.0, kth)
        # Tie-aware: a hit counts if it is at least as near as the k-th true neighbour.
        hits = int((true <= kth + tol).sum())
        recalls.append(hits / k)
        # Where there is no tie at the k-th place the id set must match exactly.
        if gt_dist[qi][k] - kth > tol:
            assert set(ids) == set(int(x) for x in gt[qi][:k]), qi
        # The i-th result's distance equals the i-th ground-truth distance.
        np.testing.assert_allclose(true, gt_dist[qi][:k].astype(np.float64), rtol=1e-5, atol=1e-3)
    recall = float(np.mean(recalls))
    assert recall == 1.0, recall
    return recall


@pytest.mark.timeout(90)
def test_recall_sift_128(vexlake, proto):
    base, queries, gt, gt_dist = load_dataset("sift-128-euclidean-ngt5k")
    assert base.shape == (4500, 128)
    server = vexlake(["--metric", "l2"])
    r = server.client(proto)
    bulk_load(r, base)
    info = r.info("vectors")
    assert info["dimension"] == 128 and info["vectors"] == 4500 and info["metric"] == "l2"
    check_recall(r, proto, base, queries, gt, gt_dist, nq=100)


@pytest.mark.timeout(120)
def test_recall_fashion_mnist_784(vexlake, proto):
    base, queries, gt, gt_dist = load_dataset("fashion-mnist-784-euclidean-15k")
    assert base.shape == (15000, 784)
    server = vexlake(["--metric", "l2"])
    r = server.client(proto)
    t0 = time.monotonic()
    bulk_load(r, base)
    load_s = time.monotonic() - t0
    assert r.info("vectors")["dimension"] == 784
    check_recall(r, proto, base, queries, gt, gt_dist, nq=50)
    # The stored vectors are the exact ones sent.
    for i in (0, 7, 14999):
        assert same_bits(parse_vec_text(r.execute_command("VGET", str(i))), base[i])
    print(f"loaded 15000x784 in {load_s:.1f}s")
