/*
 * parquet.h - VexLake segment files: Apache Parquet, written and read by
 * our own codec (Thrift compact protocol + the Parquet format spec).
 *
 * A segment holds rows (key, vector, seq):
 *
 *     message vexlake_segment {
 *       required binary key (STRING);        -- STRING only if every key is UTF-8
 *       required group vector (LIST) {
 *         repeated group list { required float element; }
 *       }
 *       required int64 seq;                  -- LSN of the write that made the row
 *     }
 *
 * One row group, data pages v1, PLAIN encoding, ZSTD compression, page and
 * column-chunk statistics, and footer key-value metadata
 * "vexlake.format_version" = "1", "vexlake.dim" = "<dim>".  pyarrow and
 * DuckDB read these files directly; the reader also accepts files pyarrow
 * writes with the same schema (dictionary pages, data page v2, no/zstd/
 * snappy compression).  The byte-level details are in docs/storage-format.md.
 */
#ifndef VL_STORAGE_PARQUET_H
#define VL_STORAGE_PARQUET_H

#include <stddef.h>
#include <stdint.h>

#include "vexlake.h"

/** Rows to write: key i is keys[i] (key_lens[i] bytes), its vector is
 *  vecs[i*dim .. i*dim+dim), its sequence number seqs[i]. */
typedef struct {
    uint64_t nrows;
    uint32_t dim;
    const char *const *keys;
    const uint32_t *key_lens;
    const float *vecs;
    const int64_t *seqs;
} vl_segment_rows;

/** A decoded segment; every array is owned (vl_segment_free). */
typedef struct {
    uint64_t nrows;
    uint32_t dim;
    char *key_data;     /* all keys, concatenated */
    uint64_t *key_offs; /* nrows + 1 offsets into key_data */
    float *vecs;        /* nrows * dim, 64-byte aligned */
    int64_t *seqs;      /* nrows */
} vl_segment;

typedef struct {
    int zstd_level;      /* 0 disables compression; default 1 (fast; 3 saves ~4% more) */
    uint32_t page_bytes; /* target uncompressed page size; default 1 MiB */
} vl_parquet_options;

void vl_parquet_options_init(vl_parquet_options *o);

/** Encode rows into a complete Parquet file in memory (*out malloc'd). */
vl_status vl_parquet_write_segment(const vl_segment_rows *rows, const vl_parquet_options *opt,
                                   uint8_t **out, size_t *len, vl_error *err);

/** Decode a whole Parquet file.  Any malformed input gives VL_ERR_CORRUPT
 *  with a message naming what was wrong ("column vector: page 3: ..."),
 *  never a crash or an out-of-bounds read. */
vl_status vl_parquet_read_segment(const uint8_t *buf, size_t len, vl_segment *out, vl_error *err);

void vl_segment_free(vl_segment *s);

#endif
