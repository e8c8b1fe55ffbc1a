/*
 * seg_index.h - the index of one sealed segment, whatever its kind: built
 * from the segment's vectors, encoded as an index file body, decoded and
 * searched.  The engine's only door to core/index/hnsw.h and ivf.h.
 *
 * Decisions:
 *  - Row ids are the segment's seg_row positions (deleted rows included):
 *    the index is as immutable as its segment file, and deletions are a
 *    search filter, never an index update.
 *  - Builds are deterministic (fixed seed, rows in segment order), so a
 *    rebuild from the segment gives the same bytes on the same code.
 *  - An index file body is exactly vl_hnsw_save's or vl_ivf_serialize's
 *    output (docs/storage-format.md); the manifest entry names its kind,
 *    size and CRC-32C, so no wrapper is needed.
 *  - Segments below min_rows rows get no index: scanning a few thousand
 *    rows costs microseconds, less than a graph walk with its set-up.
 *  - A built index is shared read-only by any number of searches
 *    (reference counted: index sets and version caches hold it).
 */
#ifndef VL_CORE_INDEX_SEG_INDEX_H
#define VL_CORE_INDEX_SEG_INDEX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "vexlake.h"

typedef struct vl_seg_index vl_seg_index;

/** Rejects combinations the indexes cannot build (hnsw walks none|sq8). */
vl_status vl_seg_index_check_params(const vl_index_params *p, vl_error *err);

/** 1 when a segment of rows rows gets an index under p. */
int vl_seg_index_wanted(const vl_index_params *p, uint64_t rows, uint64_t min_rows);

/** Build over n vectors (row-major, dim floats, seg_row order; read during
 *  the call only: the index keeps no pointer to them).  When
 *  *cancel (may be NULL) becomes nonzero an HNSW build stops early with
 *  VL_ERR_BUSY. */
vl_status vl_seg_index_build(const vl_index_params *p, vl_metric metric, const float *vecs,
                             uint32_t n, uint32_t dim, const atomic_int *cancel, vl_seg_index **out,
                             vl_error *err);

/** The index file body (*buf malloc'd). */
vl_status vl_seg_index_encode(const vl_seg_index *ix, uint8_t **buf, size_t *len, vl_error *err);

/** Decode a body of kind over the segment's n vectors (the ones it was
 *  built from, read during the call only); VL_ERR_CORRUPT names the first
 *  problem. */
vl_status vl_seg_index_decode(vl_index_kind kind, const uint8_t *buf, size_t len, const float *vecs,
                              uint32_t n, uint32_t dim, vl_metric metric, vl_seg_index **out,
                              vl_error *err);

/** 1 when ix was decoded from a body of an older format version than
 *  vl_seg_index_encode writes (the lake writes such files anew). */
int vl_seg_index_outdated(const vl_seg_index *ix);

vl_index_kind vl_seg_index_kind(const vl_seg_index *ix);
uint32_t vl_seg_index_rows(const vl_seg_index *ix);
/** Heap bytes of the index (codes, links, vectors it keeps). */
size_t vl_seg_index_memory(const vl_seg_index *ix);
/** The part of vl_seg_index_memory that is float32 vectors: 0 with
 *  compressed codes (re-ranking reads the row store), rows x dim x 4 for
 *  hnsw none (its walk's copy) and ivf none (its lists). */
size_t vl_seg_index_vector_bytes(const vl_seg_index *ix);
/** File suffix of kind: "hnsw" or "ivf". */
const char *vl_seg_index_suffix(vl_index_kind kind);

void vl_seg_index_ref(vl_seg_index *ix);
/** Drop a reference (NULL is fine); the last frees.  Thread safe. */
void vl_seg_index_unref(vl_seg_index *ix);

/** What a search of one segment may return and where its float32 rows
 *  are: the re-rank of HNSW with SQ8 and of IVF with compressed codes reads
 *  them, for allowed rows only, on the calling thread, during the call.
 *  vector is required; allow NULL allows every row (an HNSW walk then
 *  takes its unfiltered path), so every row's vector must be readable. */
typedef struct {
    int (*allow)(void *ctx, uint32_t seg_row);
    const float *(*vector)(void *ctx, uint32_t seg_row);
    void *ctx;
} vl_seg_filter;

typedef struct {
    uint32_t seg_row;
    float dist; /* lower is nearer; the engine re-scores in double */
} vl_seg_hit;

/** Up to k allowed rows nearest to query, nearest first, into out[0..*n).
 *  ef / nprobe 0 take the index's default. */
vl_status vl_seg_index_search(const vl_seg_index *ix, const float *query, uint32_t k, uint32_t ef,
                              uint32_t nprobe, const vl_seg_filter *f, vl_seg_hit *out, uint32_t *n,
                              vl_error *err);

#endif
