"""SIMD paths end to end: --simd forces a kernel path (INFO says which, a
path the CPU lacks exits with code 2), and on every path the CPU runs
VSEARCH ranks the issue's hostile magnitudes correctly:

- L2, 8 dimensions: near = 8 x 2e19 beats far = 8 x 1e20 from the origin
  (float32 squares of both overflow to inf, which tied them and let the
  earlier row, far, win);
- cosine, query e1: 1e20 e1 and 1e-23 e1 beat an orthogonal vector (their
  float32 norms overflowed and underflowed to a zero 1/|v|).

K=1 matters: with K >= 3 every row is a winner and the double re-scoring
of winners used to hide the wrong ranking.
"""
import subprocess

import pytest

from harness import fp32, server_binary

PATHS = ["auto", "avx512", "avx2", "neon", "scalar"]


def start_or_skip(vexlake, path, metric):
    if path == "auto":  # the default: no flag
        return vexlake(["--metric", metric])
    p = subprocess.run([str(server_binary()), "--simd", path, "--help"], capture_output=True,
                       text=True, timeout=10)
    if p.returncode == 2:
        assert f"cannot run simd path '{path}'" in p.stderr, p.stderr
        pytest.skip(f"this CPU lacks {path}")
    assert p.returncode == 0, p.stderr
    return vexlake(["--simd", path, "--metric", metric])


@pytest.mark.parametrize("path", PATHS)
def test_l2_huge_values_rank_correctly(vexlake, path):
    srv = start_or_skip(vexlake, path, "l2")
    r = srv.client(decode=False)
    r.execute_command("VSET", "far", "FP32", fp32([1e20] * 8))
    r.execute_command("VSET", "near", "FP32", fp32([2e19] * 8))
    origin = fp32([0.0] * 8)
    assert r.execute_command("VSEARCH", "FP32", origin, 1) == [b"near"]
    reply = r.execute_command("VSEARCH", "FP32", origin, 2, "WITHSCORES")
    assert reply[0::2] == [b"near", b"far"]
    near, far = float(reply[1]), float(reply[3])
    assert near == pytest.approx(8 ** 0.5 * 2e19, rel=1e-6)
    assert far == pytest.approx(8 ** 0.5 * 1e20, rel=1e-6)


def unit(i, scale=1.0, dim=16):
    v = [0.0] * dim
    v[i] = scale
    return fp32(v)


@pytest.mark.parametrize("path", PATHS)
def test_cosine_huge_and_tiny_vectors_beat_orthogonal(vexlake, path):
    srv = start_or_skip(vexlake, path, "cosine")
    r = srv.client(decode=False)
    # 16 dimensions: enough that every path sums in SIMD registers.
    r.execute_command("VSET", "ortho", "FP32", unit(1))
    r.execute_command("VSET", "big", "FP32", unit(0, 1e20))
    r.execute_command("VSET", "tiny", "FP32", unit(0, 1e-23))
    e1 = unit(0)
    assert r.execute_command("VSEARCH", "FP32", e1, 1) in ([b"big"], [b"tiny"])
    reply = r.execute_command("VSEARCH", "FP32", e1, 2, "WITHSCORES")
    assert sorted(reply[0::2]) == [b"big", b"tiny"]
    assert [float(s) for s in reply[1::2]] == [0.0, 0.0]
    # Huge and tiny queries find the same direction too.
    for scale in (1e30, 1e-30):
        assert r.execute_command("VSEARCH", "FP32", unit(0, scale), 1) in ([b"big"], [b"tiny"])


@pytest.mark.parametrize("path", PATHS)
def test_info_reports_the_path(vexlake, path):
    srv = start_or_skip(vexlake, path, "cosine")
    simd = srv.client().info("server")["simd"]
    assert simd in ("avx512", "avx2", "neon", "scalar")
    if path != "auto":
        assert simd == path


def test_bad_simd_value_exits_2():
    p = subprocess.run([str(server_binary()), "--simd", "sse4"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 2
    assert "--simd wants auto, avx512, avx2, neon or scalar, got 'sse4'" in p.stderr


def test_path_the_cpu_lacks_exits_2():
    lacking = []
    for path in ("avx512", "avx2", "neon"):
        p = subprocess.run([str(server_binary()), "--simd", path, "--help"], capture_output=True,
                           text=True, timeout=10)
        if p.returncode == 2:
            assert f"cannot run simd path '{path}'" in p.stderr, p.stderr
            lacking.append(path)
        else:
            assert p.returncode == 0
    assert lacking, "one of avx512/avx2 (x86) or neon (arm64) is always missing"
