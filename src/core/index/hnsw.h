/*
 * hnsw.h - a Hierarchical Navigable Small World graph over the rows of one
 * segment (Malkov & Yashunin, "Efficient and robust approximate nearest
 * neighbor search using HNSW graphs", 2016/2018), written from the paper.
 *
 * Rows and vectors
 *  - Row ids are the dense uint32 positions of a segment: vl_hnsw_add takes
 *    them in order 0, 1, 2, ...  By default the index keeps its own float32
 *    copy of every vector (normalised for cosine) because traversal reads
 *    them at random; vl_hnsw_set_vector_source (added later, additive) makes
 *    it read the caller's vectors instead and drop the copy, so that with
 *    SQ8 codes the index holds codes and links only.  The serialised form
 *    does not carry vectors (it carries the SQ8 codes since version 2): the
 *    segment is the truth, and vl_hnsw_load takes the same vectors back and
 *    checks them against a CRC-32C recorded at build time.
 *
 * Distances (smaller is nearer; what vl_hnsw_hit.dist holds)
 *  - VL_METRIC_L2: squared Euclidean distance.
 *  - VL_METRIC_COSINE: 1 - dot of the normalised vectors (rows and queries
 *    are normalised on the way in; a zero vector stays zero).
 *  - VL_METRIC_IP: -dot.
 *  They are float32 approximations for ranking; the engine re-scores winners
 *  in double.  With SQ8 traversal they are float32 distances when the walk
 *  kept more than k candidates and re-ranked them, else (ef <= k, or fewer
 *  rows reachable) the codes' distances: re-ranking could not change which
 *  rows are returned, only their order.
 *
 * Threads
 *  - vl_hnsw_add, vl_hnsw_reserve, vl_hnsw_set_quant and vl_hnsw_free are
 *    single-writer and must not run concurrently with anything else on the
 *    same index.
 *  - vl_hnsw_set_vector_source is single-writer too.
 *  - Once built, any number of threads may call vl_hnsw_search at once, each
 *    with its own vl_hnsw_scratch (or NULL, which allocates one per call);
 *    with a vector source they call its function concurrently.
 *  - A vector source is called only from inside a call on the index, on
 *    the calling thread, and a filtered SQ8 search reads through it only
 *    rows the filter allows (the re-rank): the engine relies on both
 *    (core/index/seg_index.c serves each search from its snapshot's rows).
 *
 * Determinism: the same seed and the same rows added in the same order give
 * the same graph, byte for byte in vl_hnsw_save.
 */
#ifndef VL_CORE_INDEX_HNSW_H
#define VL_CORE_INDEX_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "vexlake.h"

/** Build parameters used when the caller passes 0. */
#define VL_HNSW_DEFAULT_M 16
#define VL_HNSW_DEFAULT_EF_CONSTRUCTION 200
/** Search beam used when vl_hnsw_search gets ef = 0.  With the default
 *  build parameters it gives recall@10 >= 0.986 on every shared dataset
 *  (float32 and SQ8 walks; 32 would give 0.967 on debian-minilm) and 0.96 on
 *  the 3000-row subset the sanitiser run uses (tests/unit/test_hnsw.c). */
#define VL_HNSW_DEFAULT_EF 64
/** Largest M accepted (layer 0 holds 2M links per row). */
#define VL_HNSW_MAX_M 128
/** Highest layer a row may be drawn on. */
#define VL_HNSW_MAX_LEVEL 31

typedef struct vl_hnsw vl_hnsw;

/** How the search walks the graph. */
typedef enum {
    VL_HNSW_QUANT_NONE = 0, /**< float32 distances throughout */
    /** SQ8 codes (src/core/kernels/sq8.h) for the walk, then the ef best are
     *  re-ranked in float32: L2 uses one uint8 map for the index (lossless
     *  for byte-valued data), cosine and ip int8 codes with a per-row scale.
     *  Adds dim bytes (+ 4 for cosine/ip) per row. */
    VL_HNSW_QUANT_SQ8 = 1
} vl_hnsw_quant;
typedef struct vl_hnsw_scratch vl_hnsw_scratch;

/** One result: a row of the segment and its distance (see above). */
typedef struct {
    uint32_t row;
    float dist;
} vl_hnsw_hit;

/**
 * Which rows a search may return (MVCC visibility, deletes).  Rows that are
 * not allowed are still walked through, so they keep the graph connected,
 * but never appear in the results.  Both parts are optional; a row must pass
 * both.
 */
typedef struct {
    /** Bit r (word r / 64, bit r % 64) set: row r is excluded (the form of
     *  a segment's deletion set).  Must cover every row of the index. */
    const uint64_t *excluded;
    /** Non-zero when row may be returned. */
    int (*allow)(void *ctx, uint32_t row);
    void *ctx;
} vl_hnsw_filter;

/**
 * A new, empty index.  m = 0 and ef_construction = 0 take the defaults.
 * Fails with VL_ERR_ARG for dim outside 1..VL_MAX_DIM, an unknown metric,
 * m outside 2..VL_HNSW_MAX_M.  *out is freed with vl_hnsw_free.
 */
vl_status vl_hnsw_create(uint32_t dim, vl_metric metric, uint32_t m, uint32_t ef_construction,
                         uint64_t seed, vl_hnsw **out, vl_error *err);

/** Make room for rows 0..rows-1 at once (the engine knows a segment's size;
 *  without this the arrays grow by doubling).  VL_ERR_NOMEM on failure. */
vl_status vl_hnsw_reserve(vl_hnsw *h, uint32_t rows, vl_error *err);

/**
 * Traverse with quantiser q from now on (VL_HNSW_QUANT_NONE turns it off).
 * Encodes the rows already added and every later one.  For L2 the uint8 map
 * is chosen from the rows present now: 0..255 in steps of 1 when every value
 * is an integer in that range, else min..max of all values (later rows are
 * clamped into it); call it after adding a segment's rows.  Graph and build
 * are unchanged.  VL_ERR_ARG for an unknown q, VL_ERR_NOMEM.
 */
vl_status vl_hnsw_set_quant(vl_hnsw *h, vl_hnsw_quant q, vl_error *err);

/**
 * Insert row `row` with vector `vec` (dim floats, copied).  row must equal
 * vl_hnsw_count(h): rows come in segment order.  VL_ERR_ARG otherwise,
 * VL_ERR_LIMIT past UINT32_MAX - 1 rows, VL_ERR_NOMEM; on failure the index
 * is unchanged.
 */
vl_status vl_hnsw_add(vl_hnsw *h, uint32_t row, const float *vec, vl_error *err);

/**
 * The up to k nearest allowed rows to query (dim floats), nearest first,
 * written to out[0..n) where n is returned through *n (n < k when fewer rows
 * are allowed or reachable).  ef is the beam width on layer 0 (0 = the
 * default; values below k are raised to k).  filter may be NULL.  scratch
 * may be NULL (then one is allocated for this call); it must not be shared
 * between concurrent searches.  Fails only with VL_ERR_NOMEM or VL_ERR_ARG
 * (k = 0, k > VL_MAX_K).
 */
vl_status vl_hnsw_search(const vl_hnsw *h, const float *query, uint32_t k, uint32_t ef,
                         const vl_hnsw_filter *filter, vl_hnsw_scratch *scratch, vl_hnsw_hit *out,
                         uint32_t *n, vl_error *err);

/** Where the index reads row vectors from instead of its own copy. */
typedef struct {
    /** Row r's dim floats exactly as they were given to vl_hnsw_add (not
     *  normalised), readable from several threads at once, valid and
     *  unchanged while the index lives.  Never called with r >= count. */
    const float *(*vector)(void *ctx, uint32_t row);
    void *ctx;
} vl_hnsw_vectors;

/**
 * Read vectors through src from now on and free the index's own float32
 * copy (vl_hnsw_memory_bytes drops by dim x 4 bytes per row; cosine keeps
 * 4 bytes per row of inverse norm instead).  May be called on an empty, a
 * built or a loaded index; every row already added is read once through
 * src and must match what was added (checked against the CRC-32C the index
 * keeps: VL_ERR_ARG when it does not, and nothing changes).  Rows added
 * later must be readable through src before their vl_hnsw_add, and the
 * vector passed to it must be the same values.  Searches return the same
 * rows as with the copy, up to float rounding under cosine (1/|v| is then
 * applied to the dot product instead of the row being normalised).
 * VL_ERR_ARG for a NULL src or function, VL_ERR_NOMEM.
 */
vl_status vl_hnsw_set_vector_source(vl_hnsw *h, const vl_hnsw_vectors *src, vl_error *err);

/** Per-thread search memory; grows as needed and is reused across searches
 *  and indexes.  NULL when out of memory. */
vl_hnsw_scratch *vl_hnsw_scratch_new(void);
void vl_hnsw_scratch_free(vl_hnsw_scratch *s);
/** Distances the searches with s have computed so far (every layer's walk,
 *  on codes or float32, plus the float32 re-rank): a machine-independent
 *  cost per query for the benchmark (added by the hnsw2 work, additive). */
uint64_t vl_hnsw_scratch_distances(const vl_hnsw_scratch *s);

uint32_t vl_hnsw_count(const vl_hnsw *h);
uint32_t vl_hnsw_dim(const vl_hnsw *h);
/** Bytes the index holds (its vector copy unless a source is set, codes,
 *  links, bookkeeping), excluding scratch and a source's vectors. */
size_t vl_hnsw_memory_bytes(const vl_hnsw *h);
/** Bytes of the same, links and bookkeeping only (without the vectors). */
size_t vl_hnsw_graph_bytes(const vl_hnsw *h);
/** Bytes of the index's own float32 copy (0 with a vector source). */
size_t vl_hnsw_vector_bytes(const vl_hnsw *h);
/** The traversal quantiser set by vl_hnsw_set_quant or a load. */
vl_hnsw_quant vl_hnsw_quant_of(const vl_hnsw *h);
void vl_hnsw_free(vl_hnsw *h);

/**
 * Serialise the graph (not the vectors) as an index file body, see
 * docs/storage-format.md, "HNSW index file".  *buf is malloc'd.
 */
vl_status vl_hnsw_save(const vl_hnsw *h, uint8_t **buf, size_t *len, vl_error *err);

/**
 * Rebuild an index from a body written by vl_hnsw_save and the segment's
 * vectors (count x dim floats, row-major, as they were given to
 * vl_hnsw_add).  A body that is damaged, truncated, of another version or
 * inconsistent (any link out of range, a level or list count out of bounds)
 * fails with VL_ERR_CORRUPT and a message naming the first problem found;
 * vectors that do not match the ones the graph was built from fail the
 * same way.  Nothing is read outside buf[0..len).
 */
vl_status vl_hnsw_load(const uint8_t *buf, size_t len, const float *vectors, uint32_t count,
                       uint32_t dim, vl_hnsw **out, vl_error *err);

/**
 * vl_hnsw_load for an index that reads its rows through src from the start
 * (as after vl_hnsw_set_vector_source), without ever holding a float32
 * copy: `vectors` (the same rows) are read once during the call, for the
 * CRC-32C check and cosine's inverse norms, and src afterwards.  A body
 * without SQ8 codes keeps its own copy, exactly as vl_hnsw_load gives it
 * (src is not used).  Added by the start-up work (hnsw_io.c): the copy was
 * 4 x dim bytes per row written and freed again at every start.
 * VL_ERR_ARG for a NULL src or function; otherwise as vl_hnsw_load.
 */
vl_status vl_hnsw_load_over(const uint8_t *buf, size_t len, const float *vectors,
                            const vl_hnsw_vectors *src, uint32_t count, uint32_t dim, vl_hnsw **out,
                            vl_error *err);

/** 1 when buf, a body vl_hnsw_load accepts, is of an older format version
 *  than vl_hnsw_save writes (a save of its index would write it anew). */
int vl_hnsw_body_outdated(const uint8_t *buf, size_t len);

#endif
