/*
 * parquet_meta.h - the subset of parquet.thrift that VexLake reads and
 * writes: FileMetaData (the footer) and PageHeader (before every page),
 * with their Statistics, SchemaElement, RowGroup, ColumnChunk,
 * ColumnMetaData, KeyValue and the LogicalType union reduced to its tag.
 *
 * Decoding is zero-copy for strings and binaries: they point into the
 * input buffer, which must outlive the decoded struct.  Arrays (schema,
 * row groups, columns, ...) are heap allocated; release them with
 * vl_pq_file_meta_free().  Fields we do not know (size_statistics,
 * geospatial statistics, bloom filter offsets, encryption, ...) are skipped.
 * Decoders return 0 or -1 with a static message in *why.
 *
 * Encoding writes exactly the fields that are set (has_* flags, non-NULL
 * pointers), in ascending field-id order.
 */
#ifndef VL_STORAGE_PARQUET_META_H
#define VL_STORAGE_PARQUET_META_H

#include <stddef.h>
#include <stdint.h>

#include "storage/thrift_compact.h"

/* parquet.thrift enums (only the values we name) */
enum {
    VL_PQ_BOOLEAN = 0,
    VL_PQ_INT32 = 1,
    VL_PQ_INT64 = 2,
    VL_PQ_INT96 = 3,
    VL_PQ_FLOAT = 4,
    VL_PQ_DOUBLE = 5,
    VL_PQ_BYTE_ARRAY = 6,
    VL_PQ_FIXED_LEN_BYTE_ARRAY = 7
};
enum { VL_PQ_CT_UTF8 = 0, VL_PQ_CT_LIST = 3 };
enum { VL_PQ_REQUIRED = 0, VL_PQ_OPTIONAL = 1, VL_PQ_REPEATED = 2 };
enum {
    VL_PQ_ENC_PLAIN = 0,
    VL_PQ_ENC_PLAIN_DICTIONARY = 2,
    VL_PQ_ENC_RLE = 3,
    VL_PQ_ENC_BIT_PACKED = 4,
    VL_PQ_ENC_RLE_DICTIONARY = 8,
    VL_PQ_ENC_BYTE_STREAM_SPLIT = 9
};
enum {
    VL_PQ_CODEC_UNCOMPRESSED = 0,
    VL_PQ_CODEC_SNAPPY = 1,
    VL_PQ_CODEC_GZIP = 2,
    VL_PQ_CODEC_LZO = 3,
    VL_PQ_CODEC_BROTLI = 4,
    VL_PQ_CODEC_LZ4 = 5,
    VL_PQ_CODEC_ZSTD = 6,
    VL_PQ_CODEC_LZ4_RAW = 7
};
enum {
    VL_PQ_PAGE_DATA = 0,
    VL_PQ_PAGE_INDEX = 1,
    VL_PQ_PAGE_DICTIONARY = 2,
    VL_PQ_PAGE_DATA_V2 = 3
};
/* LogicalType union members (the field id of the member that is set) */
enum { VL_PQ_LT_NONE = 0, VL_PQ_LT_STRING = 1, VL_PQ_LT_MAP = 2, VL_PQ_LT_LIST = 3 };

/** A string or binary: pointer + length (not NUL terminated). */
typedef struct {
    const uint8_t *p;
    uint32_t n;
} vl_pq_bytes;

typedef struct {
    vl_pq_bytes min_value, max_value; /* p == NULL: absent */
    int has_null_count;
    int64_t null_count;
    int has_exact; /* is_{max,min}_value_exact written as true */
} vl_pq_stats;

typedef struct {
    int type;       /* -1: absent (a group) */
    int repetition; /* -1: absent (the root) */
    vl_pq_bytes name;
    int32_t num_children; /* -1: absent (a leaf) */
    int converted_type;   /* -1: absent */
    int logical_type;     /* VL_PQ_LT_*: member id of the union, 0 absent */
} vl_pq_schema_elem;

typedef struct {
    int type;
    int32_t *encodings;
    uint32_t n_encodings;
    vl_pq_bytes *path;
    uint32_t n_path;
    int codec;
    int64_t num_values;
    int64_t total_uncompressed_size, total_compressed_size;
    int64_t data_page_offset;
    int has_dictionary_page_offset;
    int64_t dictionary_page_offset;
    int has_stats;
    vl_pq_stats stats;
} vl_pq_column_meta;

typedef struct {
    int64_t file_offset;
    int has_file_path;
    int has_meta;
    vl_pq_column_meta meta;
} vl_pq_column_chunk;

typedef struct {
    vl_pq_column_chunk *columns;
    uint32_t n_columns;
    int64_t total_byte_size;
    int64_t num_rows;
    int has_offsets; /* file_offset + total_compressed_size (fields 5, 6) */
    int64_t file_offset, total_compressed_size;
} vl_pq_row_group;

typedef struct {
    vl_pq_bytes key, value; /* value.p == NULL: absent */
} vl_pq_kv;

typedef struct {
    int32_t version;
    vl_pq_schema_elem *schema;
    uint32_t n_schema;
    int64_t num_rows;
    vl_pq_row_group *row_groups;
    uint32_t n_row_groups;
    vl_pq_kv *kv;
    uint32_t n_kv;
    vl_pq_bytes created_by;
    uint32_t n_column_orders; /* encode: that many TypeDefinedOrder entries */
} vl_pq_file_meta;

typedef struct {
    int type; /* VL_PQ_PAGE_* */
    int32_t uncompressed_size, compressed_size;
    /* DataPageHeader (v1) / DataPageHeaderV2 / DictionaryPageHeader */
    int32_t num_values;
    int32_t encoding;
    int32_t def_encoding, rep_encoding; /* v1 */
    int32_t num_nulls, num_rows;        /* v2 */
    int32_t def_bytes, rep_bytes;       /* v2 */
    int is_compressed;                  /* v2; default 1 */
    int has_stats;
    vl_pq_stats stats;
} vl_pq_page_header;

/** Decode a FileMetaData struct occupying exactly buf[0..len). */
int vl_pq_decode_file_meta(const uint8_t *buf, size_t len, vl_pq_file_meta *m, const char **why);
void vl_pq_file_meta_free(vl_pq_file_meta *m);
/** Decode a PageHeader at the start of buf; *used receives its size. */
int vl_pq_decode_page_header(const uint8_t *buf, size_t len, vl_pq_page_header *h, size_t *used,
                             const char **why);

void vl_pq_encode_file_meta(vl_buf *out, const vl_pq_file_meta *m);
void vl_pq_encode_page_header(vl_buf *out, const vl_pq_page_header *h);

#endif
