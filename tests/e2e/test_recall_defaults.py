"""Recall@10 of VSEARCH with default settings (no EF, no NPROBE) on every
dataset in ../shared/datasets, after a SAVE so the rows sit in a sealed
segment and, once the background build is done, are searched through the
collection's index: at least 0.95 (tie-aware against the datasets' exact
ground truth), while EXACT on the same queries stays at 1.0.  Skipped when
the datasets are absent (set VL_DATASETS)."""
import numpy as np
import pytest

from harness import fp32, scores_from_reply
from indexutil import save, wait_for_index
from test_recall import bulk_load, load_dataset

DATASETS = [
    ("sift-128-euclidean-ngt5k", "l2"),
    ("fashion-mnist-784-euclidean-15k", "l2"),
    ("debian-minilm-384-cosine-20k", "cosine"),
    ("manpage-minilm-384-cosine-19k", "cosine"),
]
NQ = 200
K = 10


def true_distances(base, ids, q, metric):
    b = base[ids].astype(np.float64)
    qq = q.astype(np.float64)
    if metric == "l2":
        return np.sqrt(((b - qq) ** 2).sum(1))
    return 1.0 - (b @ qq) / (np.linalg.norm(b, axis=1) * np.linalg.norm(qq))


def recall(r, base, queries, gt_dist, metric, *options):
    """Mean tie-aware recall@K: a hit counts when its true distance is no
    farther than the K-th exact neighbour's."""
    total = 0
    for qi in range(NQ):
        q = queries[qi]
        reply = r.execute_command("VSEARCH", "FP32", fp32(q), K, *options, "WITHSCORES")
        pairs = scores_from_reply(reply, 2)
        ids = [int(key) for key, _ in pairs]
        assert len(ids) == K and len(set(ids)) == K, (qi, ids)
        true = true_distances(base, ids, q, metric)
        scores = np.array([s for _, s in pairs])
        np.testing.assert_allclose(scores, true, rtol=1e-6, atol=1e-5)  # scores stay exact
        assert (np.diff(scores) >= 0).all(), "nearest first"
        kth = float(gt_dist[qi][K - 1])
        total += int((true <= kth + 1e-5 * max(1.0, kth)).sum())
    return total / (NQ * K)


INDEXES = [[], ["--index", "ivf"], ["--index", "ivf", "--quant", "rabitq"]]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("flags", INDEXES, ids=["default", "ivf", "ivf-rabitq"])
@pytest.mark.parametrize("name,metric", DATASETS, ids=[d for d, _ in DATASETS])
def test_recall_with_defaults_after_save(vexlake, name, metric, flags):
    """The server's default index, and --index ivf with its default and
    its 1-bit codes, each with no NPROBE or EF given."""
    base, queries, gt, gt_dist = load_dataset(name)
    srv = vexlake(["--metric", metric, *flags])
    r = srv.client()
    bulk_load(r, base)
    save(r)
    info = wait_for_index(r, 0, deadline_s=240)
    if flags:
        assert info["index"] == "ivf", info
    if info["index"] != "flat":  # what the defaults search must go through
        assert info["index_build_running"] == 0 and info["unindexed_rows"] == 0, info
        assert info["indexed_rows"] >= len(base), info
    default = recall(r, base, queries, gt_dist, metric)
    exact = recall(r, base, queries, gt_dist, metric, "EXACT")
    print(f"{name}: index {info['index']} + {info['quant']}: recall@{K} default {default:.4f}, "
          f"EXACT {exact:.4f}")
    assert exact == 1.0
    assert default >= 0.95, default
