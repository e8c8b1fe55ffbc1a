"""Helpers for the tests of VSEARCH's per-query options and of collection
indexes: a numpy reference search, VSEARCH wrappers, and waiting for
background index builds through INFO (never through timing)."""
from __future__ import annotations

import time

import numpy as np

from harness import fp32, no_callback, scores_from_reply


def reference(rows: dict, q, metric: str, k: int):
    """Exact top k of {key: vector} in float64, nearest first, as
    [(key, score)]; ties keep insertion order (dict order)."""
    keys = list(rows)
    if not keys:
        return []
    b = np.array([rows[key] for key in keys], dtype=np.float64)
    qq = np.asarray(q, dtype=np.float64)
    if metric == "l2":
        s = np.sqrt(((b - qq) ** 2).sum(1))
    elif metric == "cosine":
        s = 1.0 - (b @ qq) / (np.linalg.norm(b, axis=1) * np.linalg.norm(qq))
    else:
        s = b @ qq
    order = np.argsort(-s if metric == "ip" else s, kind="stable")[:k]
    return [(keys[i], float(s[i])) for i in order]


def vsearch(r, q, k, *options, withscores=True):
    """VSEARCH FP32 q k [options...] [WITHSCORES] -> [(key, score)] or [key]."""
    args = ["VSEARCH", "FP32", fp32(q), k, *options]
    if withscores:
        args.append("WITHSCORES")
    reply = no_callback(r, *args)
    dec = (lambda x: x.decode() if isinstance(x, bytes) else x)
    if not withscores:
        return [dec(x) for x in reply]
    return [(dec(key), s) for key, s in scores_from_reply(reply, 2)]


def vectors_info(r) -> dict:
    return r.info("vectors")


def wait_for_index(r, max_unindexed: int, deadline_s: float) -> dict:
    """Wait until no index build runs and at most max_unindexed rows are
    scanned without an index (a collection with index flat never waits).
    Returns the last INFO vectors; the caller decides whether reaching the
    state is required (pytest's timeout bounds every test anyway)."""
    end = time.monotonic() + deadline_s
    while True:
        info = vectors_info(r)
        settled = info["index_build_running"] == 0 and info["unindexed_rows"] <= max_unindexed
        if info["index"] == "flat" or settled or time.monotonic() > end:
            return info
        time.sleep(0.05)


def save(r):
    assert r.execute_command("SAVE") in (True, "OK")
