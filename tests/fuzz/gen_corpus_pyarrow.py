"""gen_corpus_pyarrow.py - parquet seeds written by pyarrow (make fuzz-corpus).

Our writer makes one shape of file; these cover what the reader also accepts
from pyarrow: dictionary pages, data page v2, SNAPPY, BYTE_STREAM_SPLIT,
several row groups, nullable and required schemas.  A few rows each, so the
seeds stay small.
"""
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq

OUT = pathlib.Path("tests/fuzz/corpus/parquet")


def table(nullable=True, leaf="element", n=5, dim=3):
    schema = pa.schema(
        [
            pa.field("key", pa.string(), nullable),
            pa.field("vector", pa.list_(pa.field(leaf, pa.float32(), nullable)), nullable),
            pa.field("seq", pa.int64(), nullable),
        ]
    )
    keys = [f"k{i % 3}" for i in range(n)]  # repeats, so dictionaries matter
    vecs = [[float(i) - 0.5 * j for j in range(dim)] for i in range(n)]
    return pa.Table.from_pylist(
        [{"key": k, "vector": v, "seq": i * 7 - 3} for i, (k, v) in enumerate(zip(keys, vecs))],
        schema=schema,
    )


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cases = {
        "pa_snappy_dict_v1": dict(use_dictionary=True, data_page_version="1.0"),
        "pa_snappy_dict_v2": dict(use_dictionary=True, data_page_version="2.0"),
        "pa_none_plain_v2": dict(use_dictionary=False, data_page_version="2.0", compression="none"),
        "pa_zstd_groups": dict(use_dictionary=False, compression="zstd", row_group_size=2),
        "pa_bss": dict(
            use_dictionary=["key"],
            use_byte_stream_split=["vector.list.element", "seq"],
            compression="none",
        ),
    }
    for name, kw in cases.items():
        pq.write_table(table(), OUT / name, **kw)
    pq.write_table(table(nullable=False, leaf="item"), OUT / "pa_required_item", compression="none")


if __name__ == "__main__":
    main()
