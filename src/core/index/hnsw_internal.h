/*
 * hnsw_internal.h - the in-memory layout of an HNSW index, shared by the
 * graph code (hnsw.c) and its serialisation (hnsw_io.c).  See hnsw.c for
 * why the layout is what it is.
 */
#ifndef VL_CORE_INDEX_HNSW_INTERNAL_H
#define VL_CORE_INDEX_HNSW_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/index/hnsw.h"

struct vl_hnsw {
    uint32_t dim;
    vl_metric metric;
    uint32_t m;  /* links per row on layers >= 1 */
    uint32_t m0; /* links per row on layer 0 (2m) */
    uint32_t ef_construction;
    uint64_t seed;
    uint64_t rng; /* level generator state, advanced once per add */
    double ml;    /* level multiplier 1 / ln(m) */

    uint32_t count, cap;
    uint32_t entry;     /* entry point (valid when count > 0) */
    uint32_t max_level; /* level of entry */
    uint32_t vec_crc;   /* CRC-32C of the vectors as given to add, in order */

    float *vecs;         /* cap x dim (normalised for cosine); NULL with a source */
    vl_hnsw_vectors src; /* the caller's vectors (vl_hnsw_set_vector_source) */
    float *inv;          /* cosine with a source: 1/|v| per row (0 for zero) */
    uint32_t *links0;    /* cap x (1 + m0): [n, id_0 .. id_{n-1}, unused] */
    uint8_t *levels;     /* cap: top layer of each row */
    uint32_t *uoff;      /* cap: first word in upper of row's layer-1 list */
    uint32_t *upper;     /* per row with level >= 1: level x (1 + m) words */
    size_t upper_len, upper_cap;

    vl_hnsw_quant quant;  /* traversal codes (search only; the build is float32) */
    float sq_lo, sq_step; /* L2: the uint8 map x ~= lo + step * code */
    uint8_t *codes;       /* cap x dim SQ8 codes, when quant is SQ8 */
    float *sq_scale;      /* cosine/ip: per-row int8 scale (NULL under L2) */
    /* L2: every row's code decodes to its vector exactly (byte-valued data
     * under the map 0 + 1 * code), so a query that also codes exactly gets
     * exact walk distances and needs no re-rank. */
    int sq_exact;

    vl_hnsw_scratch *build; /* the writer's search memory */
};

/** Words of one layer-0 list (count plus m0 ids). */
static inline uint32_t vl_hnsw_stride0(const vl_hnsw *h)
{
    return 1 + h->m0;
}

/** The list of row r on layer lc (lc <= levels[r]): [n, ids...]. */
static inline uint32_t *vl_hnsw_list(const vl_hnsw *h, uint32_t r, uint32_t lc)
{
    if (lc == 0)
        return h->links0 + (size_t)r * vl_hnsw_stride0(h);
    return h->upper + h->uoff[r] + (size_t)(lc - 1) * (1 + h->m);
}

/** An empty index with room for cap rows (no rows, no links). */
vl_status vl_hnsw_alloc(uint32_t dim, vl_metric metric, uint32_t m, uint32_t ef_construction,
                        uint64_t seed, uint32_t cap, vl_hnsw **out, vl_error *err);
/** Copy vec into row r's slot (normalising for cosine). */
void vl_hnsw_store_vector(vl_hnsw *h, uint32_t r, const float *vec);
/** Encode every row with quantiser q (L2: with the map lo, step). */
vl_status vl_hnsw_quantise(vl_hnsw *h, vl_hnsw_quant q, float lo, float step, vl_error *err);
/** Reserve upper-layer lists for a row of the given level; sets uoff[r]. */
vl_status vl_hnsw_reserve_upper(vl_hnsw *h, uint32_t r, uint32_t level, vl_error *err);

#endif
