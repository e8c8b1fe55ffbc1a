/*
 * ivf.h - IVF index: a k-means coarse quantiser whose inverted lists hold
 * row ids and codes (float32, SQ8 or RaBitQ 1-bit), searched by probing
 * the NPROBE nearest lists, with exact float32 re-ranking of compressed
 * candidates.  The engine (a later step) builds one per sealed segment;
 * nothing here knows about RESP, snapshots or files.
 *
 * Contract
 *  - Rows are dense: the first vl_ivf_add() call numbers its vectors
 *    0..n-1, the next one continues at n, and so on.  Search results carry
 *    these row numbers (the engine maps them to its segment rows).
 *  - Distances are "lower is nearer" keys: squared L2, 1 - cosine, or the
 *    negated inner product.  Compressed codes only choose candidates; the
 *    reported distance is always computed from float32 vectors.
 *  - A built index is read-only and a search allocates its own scratch,
 *    so any number of threads may search one index at once.  vl_ivf_add()
 *    must not run concurrently with searches of the same index.
 *  - Out of memory aborts (util/alloc.h); every other failure returns a
 *    vl_status with a message in err.
 *
 * The decisions, and the measurements behind them, are in ivf.c.
 */
#ifndef VL_CORE_INDEX_IVF_H
#define VL_CORE_INDEX_IVF_H

#include <stddef.h>
#include <stdint.h>

#include "vexlake.h"

/** What the inverted lists store per vector. */
typedef enum {
    VL_IVF_QUANT_NONE = 0,  /**< float32 (normalised for cosine); exact scan */
    VL_IVF_QUANT_SQ8 = 1,   /**< 8 bits per dimension, per-dimension min/step */
    VL_IVF_QUANT_RABITQ = 2 /**< 1 bit per (rotated) dimension, fast-scan */
} vl_ivf_quant;

/** Parse "none" | "sq8" | "rabitq"; VL_ERR_ARG otherwise. */
vl_status vl_ivf_quant_parse(const char *name, vl_ivf_quant *out);
const char *vl_ivf_quant_name(vl_ivf_quant q);

/** Training parameters.  Zero means "the default" for every field but
 *  dim, metric and quant. */
typedef struct {
    uint32_t dim;       /**< 1..VL_MAX_DIM */
    vl_metric metric;   /**< l2, cosine (vectors normalised on add and query), ip */
    uint32_t nlist;     /**< lists; 0: vl_ivf_default_nlist(n); clamped to n */
    vl_ivf_quant quant; /**< code stored in the lists */
    uint64_t seed;      /**< k-means init, sampling and the RaBitQ rotation */
    uint32_t iters;     /**< Lloyd iterations; 0: default (10) */
    uint32_t max_train; /**< train on at most this many sampled vectors;
                             0: 256 per list */
} vl_ivf_params;

typedef struct vl_ivf vl_ivf;

/** The nlist used when params->nlist is 0, for n vectors. */
uint32_t vl_ivf_default_nlist(uint64_t n);

/**
 * Train the coarse quantiser (and the code's parameters) on n vectors
 * (row-major, dim floats each) and return an empty index in *out.  The
 * vectors are not added.  VL_ERR_ARG for n = 0, a bad dim/metric/quant or
 * a non-finite value.  Deterministic for a given seed and input.
 */
vl_status vl_ivf_train(const vl_ivf_params *p, const float *vectors, uint32_t n, vl_ivf **out,
                       vl_error *err);

/** Add n vectors as rows count..count+n-1 (see vl_ivf_count).  VL_ERR_ARG
 *  for a non-finite value; VL_ERR_LIMIT past 2^32 - 1 rows. */
vl_status vl_ivf_add(vl_ivf *ix, const float *vectors, uint32_t n, vl_error *err);

/** vl_ivf_train then vl_ivf_add of the same vectors (rows 0..n-1). */
vl_status vl_ivf_build(const vl_ivf_params *p, const float *vectors, uint32_t n, vl_ivf **out,
                       vl_error *err);

/** Row r is visible to this search when the callback returns nonzero. */
typedef int (*vl_ivf_filter_fn)(void *ctx, uint32_t row);
/** The float32 vector of row r as it was added (not normalised). */
typedef const float *(*vl_ivf_vector_fn)(void *ctx, uint32_t row);

/** Per-search options; a zeroed struct means "defaults, every row
 *  visible".  Rows must pass both the bitmap and the callback. */
typedef struct {
    uint32_t nprobe;         /**< lists to scan, nearest first; clamped to nlist.
                                  0: adaptive (l2, cosine): lists whose rows can
                                  still be near enough, judged from the k-th
                                  distance found so far (see ivf.c); ip:
                                  vl_ivf_default_nprobe() */
    uint32_t rerank;         /**< compressed codes: re-rank the k * rerank best
                                  estimates exactly; 0: the code's default (sq8:
                                  2; rabitq: every row its error bound cannot
                                  rule out) */
    const uint64_t *visible; /**< bit r % 64 of word r / 64 set: row r is
                                  visible; NULL: all (covers every row) */
    vl_ivf_filter_fn filter; /**< NULL: no callback */
    void *filter_ctx;
    /** Float32 vectors for re-ranking (required unless quant is none):
     *  either rows (row r at rows + r * dim) or the vector callback. */
    const float *rows;
    vl_ivf_vector_fn vector;
    void *vector_ctx;
    uint32_t *lists_scanned; /**< if not NULL, set to the lists the search scanned */
} vl_ivf_search_opts;

/** One result: a row and its distance key (see the contract). */
typedef struct {
    uint32_t row;
    float dist;
} vl_ivf_hit;

/**
 * The k nearest visible rows to query (dim floats) among the probed lists,
 * nearest first (ties by smaller row), into out[0..*nout).  *nout < k when
 * fewer rows are visible in those lists.  VL_ERR_ARG for k = 0, a
 * non-finite query, or compressed codes without re-rank vectors.
 */
vl_status vl_ivf_search(const vl_ivf *ix, const float *query, uint32_t k,
                        const vl_ivf_search_opts *opt, vl_ivf_hit *out, uint32_t *nout,
                        vl_error *err);

/** The most lists a search scans when the options leave nprobe 0: nlist
 *  for l2 and cosine (the adaptive search stops earlier), max(8, nlist / 4)
 *  for ip. */
uint32_t vl_ivf_default_nprobe(const vl_ivf *ix);
uint32_t vl_ivf_count(const vl_ivf *ix);
uint32_t vl_ivf_nlist(const vl_ivf *ix);
uint32_t vl_ivf_dim(const vl_ivf *ix);
vl_metric vl_ivf_metric(const vl_ivf *ix);
vl_ivf_quant vl_ivf_quant_of(const vl_ivf *ix);
/** Heap bytes the index holds (centroids, parameters, lists). */
size_t vl_ivf_memory_bytes(const vl_ivf *ix);

/** One list's place in the serialised body: bytes [offset, offset + len)
 *  after the body start, holding count rows (see docs/storage-format.md). */
typedef struct {
    uint64_t offset, len;
    uint32_t count;
} vl_ivf_list_info;
vl_ivf_list_info vl_ivf_list(const vl_ivf *ix, uint32_t list);

/**
 * Serialise into a new malloc'd buffer (*buf, *len; the caller frees it)
 * in the "IVF index file" format of docs/storage-format.md.
 */
vl_status vl_ivf_serialize(const vl_ivf *ix, uint8_t **buf, size_t *len, vl_error *err);

/**
 * Load a serialised index (the buffer is copied; the caller keeps it).
 * A damaged or truncated buffer fails with VL_ERR_CORRUPT and a message
 * naming what is wrong; nothing is allocated then.
 */
vl_status vl_ivf_load(const uint8_t *buf, size_t len, vl_ivf **out, vl_error *err);

void vl_ivf_free(vl_ivf *ix);

#endif
