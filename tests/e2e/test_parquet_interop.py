"""
Parquet interoperability: segment files written by bin/vl-parquet are read
by pyarrow and DuckDB with exactly our keys, seqs and float32 vectors, and
files pyarrow (and DuckDB) write with the same schema are read back by
`bin/vl-parquet dump` row for row.

Data: sift-128-euclidean-ngt5k/base.fvecs from $VL_DATASETS, else
../shared/datasets beside the checkout; the tests skip when it is missing.
Build first (`make build`).  Run: .venv/bin/python -m pytest tests/e2e/test_parquet_interop.py -q
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
duckdb = pytest.importorskip("duckdb")

REPO = Path(__file__).resolve().parents[2]
VL_PARQUET = REPO / "bin" / "vl-parquet"
DATASETS = Path(os.environ.get("VL_DATASETS") or (REPO.parent / "shared" / "datasets"))
BASE = DATASETS / "sift-128-euclidean-ngt5k" / "base.fvecs"
PREFIX = "sift:"


def read_fvecs(path: Path) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    return raw.reshape(-1, dim + 1)[:, 1:].copy().view(np.float32)


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    if not BASE.exists():
        pytest.skip(f"dataset missing: {BASE}")
    return read_fvecs(BASE)


@pytest.fixture(scope="module")
def ours(base, tmp_path_factory) -> Path:
    """Our segment file of the whole base set."""
    assert VL_PARQUET.exists(), "bin/vl-parquet is missing: run `make build`"
    out = tmp_path_factory.mktemp("pq") / "sift.parquet"
    run("write", str(BASE), str(out), "--keys-prefix", PREFIX)
    return out


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([str(VL_PARQUET), *args], capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise AssertionError(f"vl-parquet {' '.join(args)} failed: {res.stderr}")
    return res


def keys_for(n: int) -> list[str]:
    return [f"{PREFIX}{i}" for i in range(n)]


def bits(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def expected_dump(keys, seqs, vecs) -> str:
    return "".join(
        f"{k}\t{s}\t[" + ", ".join("%.9g" % float(x) for x in v) + "]\n"
        for k, s, v in zip(keys, seqs, vecs)
    )


# --------------------------------------------------------------------------
# our files, read by others
# --------------------------------------------------------------------------


def test_pyarrow_reads_our_file(ours, base):
    t = pq.read_table(ours)
    n = len(base)
    assert t.num_rows == n
    assert t.schema.field("key").type == pa.string()
    assert not t.schema.field("key").nullable
    vt = t.schema.field("vector").type
    assert pa.types.is_list(vt) and vt.value_type == pa.float32()
    assert t.schema.field("seq").type == pa.int64()
    assert t.column("key").to_pylist() == keys_for(n)
    assert np.array_equal(t.column("seq").to_numpy(), np.arange(1, n + 1))
    flat = t.column("vector").combine_chunks().flatten().to_numpy()
    assert flat.dtype == np.float32
    assert np.array_equal(bits(flat.reshape(n, -1)), bits(base))


def test_pyarrow_sees_our_metadata_and_statistics(ours, base):
    md = pq.ParquetFile(ours).metadata
    assert md.created_by == "vexlake version 0.1.0"
    assert md.num_rows == len(base) and md.num_row_groups == 1
    assert md.metadata[b"vexlake.format_version"] == b"1"
    assert md.metadata[b"vexlake.dim"] == b"128"
    rg = md.row_group(0)
    key, vec, seq = (rg.column(i) for i in range(3))
    assert key.path_in_schema == "key"
    assert vec.path_in_schema == "vector.list.element"
    assert seq.path_in_schema == "seq"
    for c in (key, vec, seq):
        assert c.compression == "ZSTD"
        assert c.statistics.has_min_max
        assert c.statistics.null_count == 0
    keys = keys_for(len(base))
    assert key.statistics.min == min(keys) and key.statistics.max == max(keys)
    assert seq.statistics.min == 1 and seq.statistics.max == len(base)
    assert vec.statistics.min == float(base.min()) and vec.statistics.max == float(base.max())
    assert vec.num_values == base.size
    assert "RLE" in vec.encodings and "PLAIN" in vec.encodings


def test_duckdb_reads_our_file(ours, base):
    rows = duckdb.sql(f"select key, seq, vector from read_parquet('{ours}') order by seq").fetchall()
    assert [r[0] for r in rows] == keys_for(len(base))
    assert [r[1] for r in rows] == list(range(1, len(base) + 1))
    got = np.array([r[2] for r in rows], dtype=np.float32)
    assert np.array_equal(bits(got), bits(base))


def test_duckdb_vector_functions_match_numpy(ours, base):
    q = read_fvecs(BASE.parent / "query.fvecs")[0] if (BASE.parent / "query.fvecs").exists() else base[7]
    lit = "[" + ", ".join("%.9g" % float(x) for x in q) + "]"
    rows = duckdb.sql(
        f"""select seq,
                   list_distance(vector, {lit}::FLOAT[]) as l2,
                   list_cosine_similarity(vector, {lit}::FLOAT[]) as cs,
                   array_distance(vector::FLOAT[128], {lit}::FLOAT[128]) as al2
            from read_parquet('{ours}') order by seq"""
    ).fetchall()
    b64 = base.astype(np.float64)
    q64 = q.astype(np.float64)
    l2 = np.sqrt(((b64 - q64) ** 2).sum(axis=1))
    norms = np.linalg.norm(b64, axis=1) * np.linalg.norm(q64)
    cs = (b64 @ q64) / norms
    got = np.array([(r[1], r[2], r[3]) for r in rows], dtype=np.float64)
    assert np.allclose(got[:, 0], l2, rtol=1e-5, atol=1e-3)
    assert np.allclose(got[:, 1], cs, rtol=1e-5, atol=1e-6)
    assert np.allclose(got[:, 2], l2, rtol=1e-5, atol=1e-3)
    # the nearest neighbours agree too
    assert int(np.argmin(got[:, 0])) == int(np.argmin(l2))


def test_our_dump_and_check(ours, base):
    res = run("check", str(ours))
    assert res.stdout.strip() == f"ok: {len(base)} rows, dim 128"
    res = run("dump", str(ours), "--limit", "3")
    assert res.stdout == expected_dump(keys_for(3), [1, 2, 3], base[:3])


def test_others_read_our_empty_file(tmp_path):
    empty = tmp_path / "empty.fvecs"
    empty.write_bytes(b"")
    out = tmp_path / "empty.parquet"
    run("write", str(empty), str(out))
    assert run("check", str(out)).stdout.strip() == "ok: 0 rows, dim 0"
    t = pq.read_table(out)
    assert t.num_rows == 0 and t.column_names == ["key", "vector", "seq"]
    assert duckdb.sql(f"select count(*) from read_parquet('{out}')").fetchall() == [(0,)]


def test_damaged_file_is_reported(ours, tmp_path):
    data = ours.read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    res = run("check", str(cut), check=False)
    assert res.returncode == 1
    assert "parquet:" in res.stderr and "magic" in res.stderr
    bad = bytearray(data)
    bad[len(bad) - 5] ^= 0xFF  # the top byte of the footer length
    flip = tmp_path / "flip.parquet"
    flip.write_bytes(bytes(bad))
    res = run("check", str(flip), check=False)
    assert res.returncode == 1 and "footer length" in res.stderr


# --------------------------------------------------------------------------
# others' files, read by us
# --------------------------------------------------------------------------


def arrow_table(base: np.ndarray, nullable: bool, leaf: str = "item"):
    n, dim = base.shape
    offsets = pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32))
    values = pa.array(base.ravel(), type=pa.float32())
    schema = pa.schema(
        [
            pa.field("key", pa.string(), nullable),
            pa.field("vector", pa.list_(pa.field(leaf, pa.float32(), nullable)), nullable),
            pa.field("seq", pa.int64(), nullable),
        ]
    )
    seqs = np.arange(n, dtype=np.int64) * 7 - 1000
    return (
        pa.Table.from_arrays(
            [pa.array(keys_for(n)), pa.ListArray.from_arrays(offsets, values), pa.array(seqs)],
            schema=schema,
        ),
        seqs,
    )


@pytest.mark.parametrize("compression", ["zstd", "none", None])  # None: pyarrow's default, snappy
@pytest.mark.parametrize("use_dictionary", [True, False])
@pytest.mark.parametrize("page_version", ["1.0", "2.0"])
def test_we_read_pyarrow_files(tmp_path, base, compression, use_dictionary, page_version):
    sub = base[:2000]
    table, seqs = arrow_table(sub, nullable=True)
    path = tmp_path / "pa.parquet"
    kw = {} if compression is None else {"compression": compression}
    pq.write_table(
        table,
        path,
        use_dictionary=use_dictionary,
        data_page_version=page_version,
        row_group_size=700,
        data_page_size=16384,
        **kw,
    )
    md = pq.ParquetFile(path).metadata
    assert md.num_row_groups == 3
    want = {"zstd": "ZSTD", "none": "UNCOMPRESSED", None: "SNAPPY"}[compression]
    assert md.row_group(0).column(1).compression == want
    res = run("dump", str(path))
    assert res.stdout == expected_dump(keys_for(len(sub)), seqs, sub)
    assert run("check", str(path)).stdout.strip() == f"ok: {len(sub)} rows, dim 128"


@pytest.mark.parametrize("leaf", ["element", "item"])
def test_we_read_pyarrow_required_schema(tmp_path, base, leaf):
    sub = base[:500]
    table, seqs = arrow_table(sub, nullable=False, leaf=leaf)
    path = tmp_path / "req.parquet"
    pq.write_table(table, path, compression="zstd")
    assert run("dump", str(path)).stdout == expected_dump(keys_for(len(sub)), seqs, sub)


@pytest.mark.parametrize("page_version", ["1.0", "2.0"])
def test_we_read_pyarrow_byte_stream_split(tmp_path, base, page_version):
    sub = base[:300]
    table, seqs = arrow_table(sub, nullable=True)
    path = tmp_path / "bss.parquet"
    pq.write_table(
        table,
        path,
        use_dictionary=["key"],
        use_byte_stream_split=["vector.list.element", "seq"],
        data_page_version=page_version,
    )
    assert "BYTE_STREAM_SPLIT" in pq.ParquetFile(path).metadata.row_group(0).column(1).encodings
    assert run("dump", str(path)).stdout == expected_dump(keys_for(len(sub)), seqs, sub)


def test_we_read_empty_pyarrow_file(tmp_path):
    table, _ = arrow_table(np.zeros((0, 4), dtype=np.float32), nullable=True)
    path = tmp_path / "empty.parquet"
    pq.write_table(table, path)
    assert run("check", str(path)).stdout.strip() == "ok: 0 rows, dim 0"
    assert run("dump", str(path)).stdout == ""


def test_unsupported_codec_is_named(tmp_path, base):
    table, _ = arrow_table(base[:10], nullable=True)
    path = tmp_path / "gzip.parquet"
    pq.write_table(table, path, compression="gzip")
    res = run("check", str(path), check=False)
    assert res.returncode == 1 and "unsupported compression GZIP" in res.stderr


def test_pyarrow_rewrite_of_our_file(ours, base, tmp_path):
    """Our file -> pyarrow -> parquet (pyarrow defaults) -> our reader: same rows."""
    path = tmp_path / "rewritten.parquet"
    pq.write_table(pq.read_table(ours), path, row_group_size=1000)
    n = len(base)
    assert run("dump", str(path)).stdout == expected_dump(keys_for(n), range(1, n + 1), base)


def test_we_read_duckdb_files(ours, base, tmp_path):
    path = tmp_path / "duck.parquet"
    duckdb.sql(
        f"copy (select * from read_parquet('{ours}') order by seq) to '{path}' (format parquet)"
    )
    n = len(base)
    assert run("dump", str(path)).stdout == expected_dump(keys_for(n), range(1, n + 1), base)


def test_nulls_and_ragged_rows_are_refused(tmp_path, base):
    sub = base[:10]
    table, _ = arrow_table(sub, nullable=True)
    keys = table.column("key").to_pylist()
    keys[3] = None
    nulled = table.set_column(0, table.schema.field("key"), pa.array(keys, pa.string()))
    p1 = tmp_path / "null.parquet"
    pq.write_table(nulled, p1)
    res = run("check", str(p1), check=False)
    assert res.returncode == 1 and "column key" in res.stderr and "row 3: null key" in res.stderr

    lists = [list(map(float, v)) for v in sub]
    lists[5] = lists[5][:100]
    ragged = table.set_column(
        1, table.schema.field("vector"), pa.array(lists, table.schema.field("vector").type)
    )
    p2 = tmp_path / "ragged.parquet"
    pq.write_table(ragged, p2)
    res = run("check", str(p2), check=False)
    assert res.returncode == 1
    assert "column vector" in res.stderr and "row 5: vector has 100 elements, expected 128" in res.stderr
