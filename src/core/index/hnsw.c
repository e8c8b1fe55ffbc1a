/*
 * hnsw.c - building and searching the HNSW graph (see hnsw.h for the API).
 *
 * What the paper prescribes, and how it is done here
 *  - Levels: each row's top layer is floor(-ln(U) * mL), mL = 1 / ln(M),
 *    U uniform in (0, 1] from a splitmix64 stream seeded by the caller and
 *    advanced once per add, so the same seed and insert order give the same
 *    graph.  Levels are capped at VL_HNSW_MAX_LEVEL.
 *  - Insert (Algorithm 1): greedy descent (beam 1) from the entry point down
 *    to the row's level, then on each layer from there to 0 a beam search
 *    with ef_construction (Algorithm 2) whose nearest result is the entry of
 *    the next layer.  Neighbours are chosen by the heuristic of Algorithm 4
 *    (keep a candidate only if it is no farther from the new row than from
 *    every neighbour kept so far - ties kept, see select_neighbours; no
 *    extended candidates, no pruned fill-up), M of them on every layer.  Links are made in both
 * directions; a neighbour whose list overflows (M on upper layers, M0 = 2M on layer 0) is shrunk
 *    with the same heuristic, relative to itself.
 *  - Search: greedy descent on the upper layers, then a beam of
 *    max(ef, k) on layer 0, stopping when the nearest unexpanded candidate
 *    is farther than the ef-th result.
 *
 * Decisions a reader cannot see from the code
 *  - Layer-0 lists live in one array with a fixed stride of 1 + M0 words
 *    ([count, ids...]), separate from the vectors: a row's list is found by
 *    multiplication, without a pointer chase, and one expansion touches one
 *    list of 132 bytes (M = 16).  Upper layers hold few rows (1/M of them
 *    per layer) and live in one pool addressed by a per-row offset.
 *  - Vectors are one 64-byte-aligned array of dim floats per row, stored
 *    normalised for cosine so that a cosine distance is one dot product.
 *  - Expanding a candidate first collects its unvisited neighbours, then
 *    computes their distances while prefetching the vector four neighbours
 *    ahead (its first 256 bytes; the hardware streams the rest), and
 *    prefetches the list of the next candidate: a neighbour's distance is a
 *    dependent random read of dim * 4 bytes, and perf showed a quarter of
 *    the search loop waiting for the expanded row's list.
 *  - The visited set is an array of uint32 epochs, one per row, in the
 *    caller's scratch: a search bumps the epoch instead of clearing the set,
 *    so it costs O(visited), not O(rows); the array is cleared only when the
 *    epoch wraps.
 *  - Unfiltered walks (every build step, most searches) keep one sorted
 *    pool of the ef best rows with an expanded flag each (search_pool);
 *    filtered ones keep the paper's two binary heaps, because rows that may
 *    not be returned still steer the walk (search_layer).  Both visit the
 *    same rows (tested).  The pool took 10-25% off the SIFT-5k search, where
 *    perf had put the heaps at a quarter of the walk.  Entries are (float
 *    distance, uint32 row) pairs in the caller's scratch; a search
 *    allocates nothing once its scratch has grown.
 *  - SQ8 traversal (vl_hnsw_set_quant): codes live in their own array of
 *    dim bytes per row, so a visited neighbour costs a quarter of the bytes;
 *    the walk (upper layers and layer 0) uses the kernels room's integer
 *    kernels, then the ef results are re-ranked in float32 and the k best
 *    returned.  L2 uses one uint8 map for the whole index (lossless for
 *    byte-valued data, where results equal the float32 walk's; tested),
 *    cosine and ip int8 codes with a per-row scale.  The graph is always
 *    built on float32, so one graph serves both walks and the build does not
 *    depend on the code.  Measured on debian-minilm (384-d, 30 MB of
 *    vectors): 1.4-2.2x the float32 walk's QPS at equal recall; on SIFT-5k
 *    (2 MB, cache resident) about 1.1x.
 *  - Re-rank cost (perf: 13% of an SQ8 search on debian-minilm at ef 64,
 *    one random 1.5 KB read per candidate).  When every row's code decodes
 *    to its vector exactly (byte-valued L2 data, sq_exact) and the query's
 *    does too, walk distances are the true ones and nothing is re-ranked:
 *    1.3x on SIFT-5k, 1.6-2x on Fashion-MNIST.  Otherwise an unfiltered walk
 *    re-ranks only the 1.5k best by code distance (the pool is sorted by
 *    it): on both MiniLM sets recall@10 at ef 16..400 was equal to
 *    re-ranking all ef to four decimals with 1.2k and 2k, and 0.003-0.04
 *    lower with k alone; 1.5k gave the same four decimals as 2k at ef
 *    16..96 (1.2k lost 0.0001 on manpage-minilm) and re-ranks a quarter
 *    fewer rows, whose float32 reads are most of what a re-rank costs
 *    (2k against all ef: 1.1-1.4x).  Filtered walks (two heaps, no
 *    order) still re-rank all ef.  The re-ranked rows' vectors are
 *    prefetched whole two rows ahead and the query's SQ8 code is rounded
 *    inline (perf had them at 11% and 6% of a manpage-minilm search at ef
 *    10): best of three interleaved runs, +11/+25% QPS on manpage-minilm at
 *    ef 10/24, +21/+23/+61% on debian-minilm at ef 10/24/64.  A walk that
 *    keeps at most k rows (ef <= k) returns them without the re-rank, which
 *    could only reorder them (the engine re-scores its winners in double
 *    anyway): perf still had the re-rank's float32 reads of 10 rows at 41%
 *    of a manpage-minilm search at ef 10, and skipping it gave +38% there
 *    (best of four interleaved runs, same recall).
 *  - Measured and not kept: a 1-bit RaBitQ prefilter (codes of the rotated
 *    residual against the centroid, 4-bit query, the paper's error bound
 *    with eps0 1.9; one 64-byte record per row at 384-d) that skips the SQ8
 *    distance of a neighbour whose lower bound is past the pool's worst.
 *    It skipped 60% of them on manpage-minilm at ef 10 (114 bounds, 45
 *    kept) with unchanged recall, but cost 25-35% QPS there and on
 *    Fashion-MNIST: on these sets the SQ8 codes (7-12 MB) sit in the 32 MB
 *    L3, so a skipped distance saves less than the query's rotation and
 *    quantisation (2 us) plus one more record read per neighbour.
 *  - Branch-free inner loops: the visited test (about half of a list is
 *    new) and the pool's binary search had perf's hottest lines on
 *    mispredicts; without branches the SIFT-5k SQ8 walk gained 15-35% and
 *    debian-minilm 2-20%, visiting the same rows.
 *  - One expansion in two steps (2026-12-02, hnsw2): first the distances of
 *    all the candidate's unvisited neighbours, back to back under the
 *    prefetch, then the pool: the few that enter are insertion-sorted
 *    (stable) and merged into it from its back, so the tail moves once per
 *    expansion, where each entering row cost a binary search and two
 *    memmoves (rows and expanded flags).  The pool ends the same, ties
 *    included, as inserting one by one, so the rows visited are unchanged.
 *    The results are put in order by insertion (the pool is sorted, the
 *    re-ranked window is 1.5k rows), not qsort.  Same run, interleaved
 *    with main's build (bench/results/2026-12-02-hnsw2.md): SIFT-5k SQ8
 *    +8-32% QPS at ef 10..64; on manpage-minilm within noise (-11..+19%).
 *    Measured and not kept: the two steps with the per-row binary search
 *    and memmoves kept (-13..+7% on SIFT-5k, noise).
 *  - Measured and not kept (2026-12-02, hnsw2): Algorithm 4's
 *    keepPrunedConnections on layer 0, filling lists with the nearest
 *    pruned candidates.  SQ8 distances per query at equal recall, mean of
 *    graph seeds 1, 2, 3, 42 (fashion: seed 1), against no fill, at recall
 *    0.95 / 0.99 (bench/results/2026-12-02-hnsw2.md):
 *      a new row's own list filled to M0: SIFT-5k +19/+13%, manpage-minilm
 *        0/-9%, Fashion-MNIST +6/+6%; build +10-60%;
 *      shrunk lists filled back to M0: SIFT +1/-5%, manpage +2/0%, Fashion
 *        +4/+3%;
 *      both: SIFT -5/-11%, manpage +7.5/-8%, but every link to a full list
 *        then re-runs the heuristic: build 2-3x (SIFT 0.46 -> 1.4 s,
 *        manpage 6.7 -> 13 s), which would put the build above hnswlib's.
 *    No variant wins on the total, so no fill.  A case it does fix: tight
 *    clusters inserted last, away from the rest (2000 uniform rows in 24-d,
 *    then 60 clusters of 20 within +-0.02): recall@10 at ef 10 is
 *    0.995-0.9975 per seed without a fill, 1.0 with any of them.  Not tried
 *    on the datasets: both fills with the shrunk lists filled to 3/4 of M0
 *    only (fewer heuristic re-runs; 1.0 on that case too).
 *  - Memory (vl_hnsw_set_vector_source): the float32 copy is 4 x dim of the
 *    index's bytes per row, and the engine already holds every vector in
 *    its row store, so the index can read them through a callback instead
 *    (rows in the engine live in chunks addressed through a directory, so a
 *    pointer plus stride would not fit).  Under cosine the caller's rows
 *    are not normalised: a float 1/|v| per row is kept and applied to the
 *    dot product.  With SQ8 the callback only serves the 1.5k re-ranked rows
 *    per search (and the build), so the walk is unchanged; bytes per vector
 *    become codes plus links (about dim + 148 at M = 16, below hnswlib's
 *    4 x dim + 132).
 *  - Measured and not kept (distance computations per query at equal
 *    recall, which the shared machine's noise does not blur, and QPS):
 *    Vamana-style pruning (keep a candidate unless alpha x its distance to
 *    a kept neighbour is below its distance to the base): alpha 1.05-1.2
 *    saved up to 15% of the distances on SIFT-5k at 0.99 but cost 15-35% on
 *    manpage-minilm at 0.95 and nothing on debian-minilm.  Prefetching the
 *    whole SQ8 code (512 or 1024 bytes instead of 256) or 2, 8 or 32
 *    neighbours ahead: within noise of 4 x 256.  The twin cap of
 *    select_neighbours changes nothing on manpage-minilm (no exact twins
 *    there), so its lower recall per ef than hnswlib's is not from it.
 *  - Where an SQ8 search's time goes now (perf, debian-minilm, ef 24): 39%
 *    in the int8 dot kernel, four fifths of it on the first loads of the
 *    neighbour's code (a cache miss: 384 bytes = 6 lines per neighbour), 27%
 *    in the walk, 8% re-rank.  The walk is bound by memory latency, so the
 *    next gain is fewer lines per neighbour (a 1-bit code with an error
 *    bound, one line at 384-d, or neighbour codes stored with each list),
 *    not faster arithmetic.
 *  - Huge pages: the vectors, the SQ8 codes and the layer-0 lists are read
 *    at random, a few bytes to a few lines per 4 KiB page, so each read
 *    risks a TLB miss; arrays of 2 MiB or more are allocated on a 2 MiB
 *    boundary and advised MADV_HUGEPAGE (Debian's default THP mode is
 *    "madvise").  SQ8 walk, medians of five interleaved runs at ef 24 and
 *    64: debian-minilm +0/+12%, Fashion-MNIST +8/+2%, manpage-minilm
 *    +0/+13%; no median lower.  Smaller arrays (SIFT-5k's codes and
 *    lists) keep normal pages, so a small segment's index is not rounded up
 *    to 2 MiB.
 *  - Distances go through the shared float32 kernels (core/kernels, one SIMD
 *    path chosen at start) and are kept as float:
 *    the graph only ranks; exact scores are the engine's job.
 */
#include "core/index/hnsw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/kernels/kernels.h"
#include "core/kernels/sq8.h"
#include "core/index/hnsw_internal.h"
#include "storage/crc32c.h"
#include "util/error.h"

/* Prefetch distance (neighbours ahead) and bytes per vector; measured on
 * debian-minilm (384-d) against 1, 2 and 32 ahead and 128 or 1024 bytes
 * (bench/results/2026-12-01-hnsw.md). */
enum { PF_AHEAD = 4, PF_BYTES = 256 };

typedef struct {
    float d;
    uint32_t id;
} hn_item;

struct vl_hnsw_scratch {
    uint32_t *mark; /* visited epochs, one per row */
    uint32_t mark_cap, epoch;
    hn_item *cand; /* min-heap of candidates to expand */
    uint32_t ncand, cand_cap;
    hn_item *res; /* max-heap of the best ef found */
    uint32_t nres, res_cap;
    hn_item *tmp; /* neighbour selection: sorted candidates */
    uint32_t tmp_cap;
    uint8_t *done; /* search_pool: expanded flags, parallel to res */
    uint32_t done_cap;
    float *q; /* the normalised query (cosine) */
    uint32_t q_cap;
    uint8_t *qcode;     /* the query's SQ8 code */
    uint64_t distances; /* computed so far (vl_hnsw_scratch_distances) */
};

/* What a distance is taken against: the float query and, when the index
 * traverses on codes, the query's code and scale. */
typedef struct {
    const float *q;
    const uint8_t *code;
    float scale;
    const vl_kernel_set *k;
} hn_query;

/* ---- memory ------------------------------------------------------------- */

enum { HUGE_PAGE = 2u << 20 };

/* An array the walk reads at random (vectors, codes, layer-0 lists): from
 * 2 MiB on it starts on a 2 MiB boundary and is advised as huge pages (see
 * the header comment); smaller ones are 64-byte aligned. */
static void *alloc_big(size_t bytes)
{
    void *p = NULL;
    if (bytes < HUGE_PAGE)
        return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (posix_memalign(&p, HUGE_PAGE, bytes) != 0)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE); /* advice only: failure changes nothing */
    return p;
}

/* Replace *p (keep bytes of it) by a fresh alloc_big of want bytes; 0 and
 * *p unchanged when out of memory. */
static int grow_big(void **p, size_t keep, size_t want)
{
    void *n = alloc_big(want);
    if (!n)
        return 0;
    if (keep)
        memcpy(n, *p, keep);
    free(*p);
    *p = n;
    return 1;
}

/* ---- distances ---------------------------------------------------------- */

/* Row r's vector: the index's copy (normalised for cosine) or, with a
 * vector source, the caller's (as added; see row_inv). */
static inline const float *vec_of(const vl_hnsw *h, uint32_t r)
{
    if (h->vecs)
        return h->vecs + (size_t)r * h->dim;
    return h->src.vector(h->src.ctx, r);
}

/* What vec_of(r) must be multiplied by to be normalised: 1/|v| for cosine
 * rows read from a source, else 1. */
static inline double row_inv(const vl_hnsw *h, uint32_t r)
{
    return h->inv ? h->inv[r] : 1.0;
}

/* The distance of a and b where a.b is to be scaled by `scale` (the
 * product of the inverse norms not applied yet; cosine only). */
static inline float dist_scaled(const vl_hnsw *h, const float *a, const float *b, double scale)
{
    switch (h->metric) {
    case VL_METRIC_L2: return (float)vl_l2sq(a, b, h->dim);
    case VL_METRIC_COSINE: return (float)(1.0 - vl_dot(a, b, h->dim) * scale);
    default: return (float)-vl_dot(a, b, h->dim);
    }
}

/* From a query (normalised for cosine) to row r. */
static inline float dist_q(const vl_hnsw *h, const float *q, uint32_t r)
{
    return dist_scaled(h, q, vec_of(h, r), row_inv(h, r));
}

/* Between rows a and b. */
static inline float dist_rr(const vl_hnsw *h, uint32_t a, uint32_t b)
{
    return dist_scaled(h, vec_of(h, a), vec_of(h, b), row_inv(h, a) * row_inv(h, b));
}

static inline const uint8_t *code_of(const vl_hnsw *h, uint32_t r)
{
    return h->codes + (size_t)r * h->dim;
}

/* Encode v (normalised for cosine) into code; returns the int8 scale
 * (cosine, ip) or 0 (L2, the index's uint8 map).  A raw cosine row gets the
 * same codes; its scale is then multiplied by its inverse norm. */
static float encode_row(const vl_hnsw *h, const float *v, uint8_t *code)
{
    if (h->metric == VL_METRIC_L2) {
        vl_sq8_encode_u8(v, h->dim, h->sq_lo, h->sq_step, code);
        return 0;
    }
    return vl_sq8_encode_s8(v, h->dim, (int8_t *)code);
}

/* Distance from the query to row r on its SQ8 code (see sq8.h). */
static inline float code_dist(const vl_hnsw *h, const hn_query *x, uint32_t r)
{
    if (h->metric == VL_METRIC_L2)
        return h->sq_step * h->sq_step * (float)x->k->l2sq_u8(x->code, code_of(h, r), h->dim);
    float dot = x->scale * h->sq_scale[r] *
                (float)x->k->dot_s8((const int8_t *)x->code, (const int8_t *)code_of(h, r), h->dim);
    return h->metric == VL_METRIC_COSINE ? 1.0f - dot : -dot;
}

/* The query's code: encode_row's map and scale, rounded inline instead of
 * through a libm call per dimension (perf: 6% of a manpage-minilm search at
 * ef 10).  Exact halves may round the other way, which a query tolerates;
 * integers under the L2 map 0 + 1 * code code exactly as before. */
static float encode_query(const vl_hnsw *h, const float *v, uint8_t *code)
{
    uint32_t dim = h->dim;
    if (h->metric == VL_METRIC_L2) {
        /* In double: a loaded map's step may be so small that 1 / step
         * overflows float.  NaN codes as 0. */
        double lo = h->sq_lo, inv = 1.0 / h->sq_step;
        for (uint32_t i = 0; i < dim; i++) {
            double c = ((double)v[i] - lo) * inv + 0.5;
            code[i] = c >= 255.0 ? 255 : c >= 1.0 ? (uint8_t)c : 0;
        }
        return 0;
    }
    float m = 0;
    for (uint32_t i = 0; i < dim; i++)
        m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
    if (!(m > 0x1p-100f)) /* zero, or so small that 127 / m needs double */
        return encode_row(h, v, code);
    float inv = 127.0f / m;
    int8_t *c8 = (int8_t *)code;
    for (uint32_t i = 0; i < dim; i++) {
        float t = v[i] * inv; /* |t| <= 127, or NaN (a NaN or infinite v) */
        c8[i] = t >= 0 ? (int8_t)(int)(t + 0.5f) : t < 0 ? (int8_t)(-(int)(0.5f - t)) : 0;
    }
    return (float)((double)m / 127.0);
}

/* Re-rank res[0..n) in float32, fetching each row's whole vector two rows
 * ahead: the rows are random reads of dim x 4 bytes (perf: 11% of a
 * manpage-minilm search at ef 10 before the prefetch). */
static void rerank(const vl_hnsw *h, const float *q, hn_item *res, uint32_t n)
{
    size_t bytes = (size_t)h->dim * sizeof(float);
    for (uint32_t i = 0; i < n + 2; i++) {
        if (i < n) {
            const char *p = (const char *)vec_of(h, res[i].id);
            for (size_t off = 0; off < bytes; off += 64)
                __builtin_prefetch(p + off, 0, 3);
        }
        if (i >= 2)
            res[i - 2].d = dist_q(h, q, res[i - 2].id);
    }
}

/* Whether code (of v under the index's uint8 map) decodes to v exactly. */
static int code_is_exact(const vl_hnsw *h, const float *v, const uint8_t *code)
{
    for (uint32_t i = 0; i < h->dim; i++)
        if (h->sq_lo + h->sq_step * (float)code[i] != v[i])
            return 0;
    return 1;
}

/* How many of the walk's best (by code distance) are re-ranked in
 * float32: 1.5 k rounded up, at most ef (see the header comment). */
static inline uint32_t rerank_count(uint32_t k, uint32_t ef)
{
    uint32_t w = k + (k + 1) / 2; /* k <= VL_MAX_K */
    return w < ef ? w : ef;
}

/* The traversal distance: on codes when `coded`, else float32. */
static inline float node_dist(const vl_hnsw *h, const hn_query *x, uint32_t r, int coded)
{
    return coded ? code_dist(h, x, r) : dist_q(h, x->q, r);
}

static inline void prefetch_row(const vl_hnsw *h, uint32_t r, int coded)
{
    const char *p = coded ? (const char *)code_of(h, r) : (const char *)vec_of(h, r);
    size_t bytes = (size_t)h->dim * (coded ? 1 : sizeof(float));
    for (size_t off = 0; off < bytes && off < PF_BYTES; off += 64)
        __builtin_prefetch(p + off, 0, 3);
}

/* Normalise src into dst (dim floats); a zero vector stays zero. */
static void normalise(float *dst, const float *src, uint32_t dim)
{
    double norm = sqrt(vl_dot(src, src, dim));
    double inv = norm > 0 ? 1.0 / norm : 0.0;
    for (uint32_t i = 0; i < dim; i++)
        dst[i] = (float)(src[i] * inv);
}

/* ---- heaps -------------------------------------------------------------- */

/* One binary heap in two orders: min_* keeps the nearest item on top (the
 * candidates still to expand), max_* the farthest (the worst of the best
 * found).  LT/LE are the order's "before" and "before or equal". */
#define HN_HEAP(name, LT, LE)                                                                      \
    static inline void name##_push(hn_item *a, uint32_t *n, hn_item x)                             \
    {                                                                                              \
        uint32_t i = (*n)++;                                                                       \
        while (i > 0) {                                                                            \
            uint32_t p = (i - 1) / 2;                                                              \
            if (a[p].d LE x.d)                                                                     \
                break;                                                                             \
            a[i] = a[p];                                                                           \
            i = p;                                                                                 \
        }                                                                                          \
        a[i] = x;                                                                                  \
    }                                                                                              \
    static inline void name##_pop(hn_item *a, uint32_t *n)                                         \
    {                                                                                              \
        hn_item x = a[--(*n)];                                                                     \
        uint32_t i = 0, m = *n;                                                                    \
        for (;;) {                                                                                 \
            uint32_t c = 2 * i + 1;                                                                \
            if (c >= m)                                                                            \
                break;                                                                             \
            if (c + 1 < m && a[c + 1].d LT a[c].d)                                                 \
                c++;                                                                               \
            if (x.d LE a[c].d)                                                                     \
                break;                                                                             \
            a[i] = a[c];                                                                           \
            i = c;                                                                                 \
        }                                                                                          \
        a[i] = x;                                                                                  \
    }

HN_HEAP(min, <, <=)
HN_HEAP(max, >, >=)

/* The results' order: nearer first, ties by row id. */
static inline int item_before(hn_item a, hn_item b)
{
    return a.d < b.d || (a.d == b.d && a.id < b.id);
}

static int item_cmp(const void *pa, const void *pb)
{
    const hn_item *a = pa, *b = pb;
    return item_before(*a, *b) ? -1 : item_before(*b, *a);
}

/* Sort a[0..n) by item_before, by insertion: the pool's rows come already
 * sorted by distance (only ties may move) and a re-ranked window is 1.5k
 * rows, so this is about n steps where qsort paid a call per comparison
 * (a filtered walk's heap is in no order: qsort). */
static void sort_items(hn_item *a, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        hn_item x = a[i];
        uint32_t j = i;
        while (j > 0 && item_before(x, a[j - 1])) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* ---- scratch ------------------------------------------------------------ */

vl_hnsw_scratch *vl_hnsw_scratch_new(void)
{
    return calloc(1, sizeof(vl_hnsw_scratch));
}

uint64_t vl_hnsw_scratch_distances(const vl_hnsw_scratch *s)
{
    return s->distances;
}

void vl_hnsw_scratch_free(vl_hnsw_scratch *s)
{
    if (!s)
        return;
    free(s->mark);
    free(s->cand);
    free(s->res);
    free(s->tmp);
    free(s->q);
    free(s->qcode);
    free(s->done);
    free(s);
}

static int grow_items(hn_item **a, uint32_t *cap, uint32_t need)
{
    if (*cap >= need)
        return 1;
    uint32_t c = *cap ? *cap : 64;
    while (c < need)
        c = c > UINT32_MAX / 2 ? need : c * 2;
    hn_item *p = realloc(*a, (size_t)c * sizeof(hn_item));
    if (!p)
        return 0;
    *a = p;
    *cap = c;
    return 1;
}

/* Room for a search over `rows` rows with beam ef (and, for building, a
 * candidate heap that can never overflow). */
static int scratch_prepare(vl_hnsw_scratch *s, uint32_t rows, uint32_t ef, uint32_t cand_need,
                           uint32_t dim)
{
    if (s->mark_cap < rows) {
        uint32_t c = s->mark_cap ? s->mark_cap : 1024;
        while (c < rows)
            c = c > UINT32_MAX / 2 ? rows : c * 2;
        uint32_t *p = realloc(s->mark, (size_t)c * sizeof(uint32_t));
        if (!p)
            return 0;
        memset(p + s->mark_cap, 0, (size_t)(c - s->mark_cap) * sizeof(uint32_t));
        s->mark = p;
        s->mark_cap = c;
    }
    if (!grow_items(&s->res, &s->res_cap, ef + 1) ||
        !grow_items(&s->cand, &s->cand_cap, cand_need) ||
        !grow_items(&s->tmp, &s->tmp_cap, (ef > 2 * VL_HNSW_MAX_M ? ef : 2 * VL_HNSW_MAX_M) + 1))
        return 0;
    if (s->done_cap < ef + 1) {
        uint8_t *d = realloc(s->done, ef + 1);
        if (!d)
            return 0;
        s->done = d;
        s->done_cap = ef + 1;
    }
    if (s->q_cap < dim) {
        float *q = realloc(s->q, (size_t)dim * sizeof(float));
        if (q)
            s->q = q;
        uint8_t *c = q ? realloc(s->qcode, dim) : NULL;
        if (!c)
            return 0;
        s->qcode = c;
        s->q_cap = dim;
    }
    return 1;
}

/* A fresh visited set: bump the epoch, clearing only when it wraps. */
static void new_epoch(vl_hnsw_scratch *s)
{
    if (++s->epoch == 0) {
        memset(s->mark, 0, (size_t)s->mark_cap * sizeof(uint32_t));
        s->epoch = 1;
    }
}

/* ---- search ------------------------------------------------------------- */

static inline int allowed(const vl_hnsw_filter *f, uint32_t r)
{
    if (!f)
        return 1;
    if (f->excluded && (f->excluded[r >> 6] >> (r & 63)) & 1)
        return 0;
    return !f->allow || f->allow(f->ctx, r);
}

/* Beam 1 on layer lc: move to a nearer neighbour until none is. */
static inline __attribute__((always_inline)) hn_item greedy(const vl_hnsw *h, const hn_query *x,
                                                            hn_item cur, uint32_t lc, int coded,
                                                            uint64_t *distances)
{
    for (;;) {
        const uint32_t *list = vl_hnsw_list(h, cur.id, lc);
        uint32_t n = list[0];
        int moved = 0;
        *distances += n;
        for (uint32_t i = 0; i < n; i++) {
            if (i + 1 < n)
                prefetch_row(h, list[2 + i], coded);
            float d = node_dist(h, x, list[1 + i], coded);
            if (d < cur.d) {
                cur.d = d;
                cur.id = list[1 + i];
                moved = 1;
            }
        }
        if (!moved)
            return cur;
    }
}

/* Algorithm 2 on layer lc from ep: leaves the best ef allowed rows in the
 * scratch's result max-heap.  Returns 0 when the candidate heap cannot
 * grow (never while building: the writer's heap holds every row). */
static inline __attribute__((always_inline)) int search_layer(const vl_hnsw *h, vl_hnsw_scratch *s,
                                                              const hn_query *x, hn_item ep,
                                                              uint32_t ef, uint32_t lc,
                                                              const vl_hnsw_filter *f, int coded)
{
    new_epoch(s);
    uint32_t *mark = s->mark, epoch = s->epoch;
    s->ncand = s->nres = 0;
    mark[ep.id] = epoch;
    min_push(s->cand, &s->ncand, ep);
    if (allowed(f, ep.id))
        max_push(s->res, &s->nres, ep);
    while (s->ncand > 0) {
        hn_item c = s->cand[0];
        if (s->nres >= ef && c.d > s->res[0].d)
            break;
        min_pop(s->cand, &s->ncand);
        if (s->ncand > 0) /* the list most likely expanded next */
            __builtin_prefetch(vl_hnsw_list(h, s->cand[0].id, lc), 0, 3);
        const uint32_t *list = vl_hnsw_list(h, c.id, lc);
        uint32_t n = list[0], fresh[2 * VL_HNSW_MAX_M], nf = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t nb = list[1 + i];
            if (mark[nb] != epoch) {
                mark[nb] = epoch;
                fresh[nf++] = nb;
            }
        }
        s->distances += nf;
        for (uint32_t j = 0; j < nf && j < PF_AHEAD; j++)
            prefetch_row(h, fresh[j], coded);
        for (uint32_t j = 0; j < nf; j++) {
            uint32_t nb = fresh[j];
            if (j + PF_AHEAD < nf)
                prefetch_row(h, fresh[j + PF_AHEAD], coded);
            float d = node_dist(h, x, nb, coded);
            if (s->nres < ef || d < s->res[0].d) {
                if (s->ncand == s->cand_cap && !grow_items(&s->cand, &s->cand_cap, s->ncand + 1))
                    return 0;
                min_push(s->cand, &s->ncand, (hn_item){d, nb});
                if (allowed(f, nb)) {
                    max_push(s->res, &s->nres, (hn_item){d, nb});
                    if (s->nres > ef)
                        max_pop(s->res, &s->nres);
                }
            }
        }
    }
    return 1;
}

/* Algorithm 2 without a filter, as one sorted pool of the best ef rows seen
 * with an expanded flag each: the pool's first unexpanded row is the
 * nearest candidate, and a candidate that falls out of the pool is one the
 * heap version would never expand (it stops when the nearest candidate is
 * farther than the ef-th result), so both return the same rows.  One array
 * instead of two heaps: perf showed the heaps at a quarter of the walk on
 * cache-resident data.  Leaves the pool, nearest first, in the scratch's
 * result array. */
static inline __attribute__((always_inline)) void search_pool(const vl_hnsw *h, vl_hnsw_scratch *s,
                                                              const hn_query *x, hn_item ep,
                                                              uint32_t ef, uint32_t lc, int coded)
{
    new_epoch(s);
    uint32_t *mark = s->mark, epoch = s->epoch;
    hn_item *pool = s->res;
    uint8_t *done = s->done;
    uint32_t n = 1, cur = 0;
    pool[0] = ep;
    done[0] = 0;
    mark[ep.id] = epoch;
    while (cur < n) {
        hn_item c = pool[cur];
        done[cur] = 1;
        if (cur + 1 < n) /* the list most likely expanded next */
            __builtin_prefetch(vl_hnsw_list(h, pool[cur + 1].id, lc), 0, 3);
        const uint32_t *list = vl_hnsw_list(h, c.id, lc);
        uint32_t nl = list[0], fresh[2 * VL_HNSW_MAX_M], nf = 0;
        for (uint32_t i = 0; i < nl; i++) { /* branch-free: half the tests fail */
            uint32_t nb = list[1 + i];
            fresh[nf] = nb;
            nf += mark[nb] != epoch;
            mark[nb] = epoch;
        }
        s->distances += nf;
        for (uint32_t j = 0; j < nf && j < PF_AHEAD; j++)
            prefetch_row(h, fresh[j], coded);
        float fd[2 * VL_HNSW_MAX_M];
        for (uint32_t j = 0; j < nf; j++) { /* the kernels back to back */
            if (j + PF_AHEAD < nf)
                prefetch_row(h, fresh[j + PF_AHEAD], coded);
            fd[j] = node_dist(h, x, fresh[j], coded);
        }
        uint32_t lowest = n;
        hn_item in[2 * VL_HNSW_MAX_M];
        uint32_t b = 0;
        int full = n == ef;
        float worst = pool[n - 1].d;
        for (uint32_t j = 0; j < nf; j++) { /* the ones that enter, sorted (stable) */
            float d = fd[j];
            if (full && d >= worst)
                continue;
            uint32_t i = b++;
            while (i > 0 && in[i - 1].d > d) {
                in[i] = in[i - 1];
                i--;
            }
            in[i] = (hn_item){d, fresh[j]};
        }
        if (b > 0) { /* merge from the back: the tail moves once */
            uint32_t total = n + b, keep = total < ef ? total : ef;
            int64_t i = (int64_t)n - 1, j = (int64_t)b - 1;
            for (int64_t w = (int64_t)total - 1; j >= 0; w--) {
                if (i >= 0 && pool[i].d > in[j].d) {
                    if (w < keep) {
                        pool[w] = pool[i];
                        done[w] = done[i];
                    }
                    i--;
                } else {
                    if (w < keep) {
                        pool[w] = in[j];
                        done[w] = 0;
                        lowest = (uint32_t)w;
                    }
                    j--;
                }
            }
            n = keep;
        }
        cur = lowest < cur + 1 ? lowest : cur + 1;
        while (cur < n && done[cur])
            cur++;
    }
    s->nres = n;
}

vl_status vl_hnsw_search(const vl_hnsw *h, const float *query, uint32_t k, uint32_t ef,
                         const vl_hnsw_filter *filter, vl_hnsw_scratch *scratch, vl_hnsw_hit *out,
                         uint32_t *n, vl_error *err)
{
    *n = 0;
    if (k == 0 || k > VL_MAX_K)
        return vl_fail(err, VL_ERR_ARG, "hnsw search: k %u outside 1..%u", k, VL_MAX_K);
    if (h->count == 0)
        return VL_OK;
    if (ef == 0)
        ef = VL_HNSW_DEFAULT_EF;
    if (ef < k)
        ef = k;
    vl_hnsw_scratch *s = scratch ? scratch : vl_hnsw_scratch_new();
    vl_status st = VL_OK;
    if (!s || !scratch_prepare(s, h->count, ef, ef + 1, h->dim)) {
        st = vl_fail(err, VL_ERR_NOMEM, "hnsw search: out of memory for scratch (ef %u)", ef);
        goto done;
    }
    hn_query x = {query, NULL, 0, vl_kernels()};
    if (h->metric == VL_METRIC_COSINE) {
        normalise(s->q, query, h->dim);
        x.q = s->q;
    }
    int ok = 1, coded = h->quant == VL_HNSW_QUANT_SQ8;
    hn_item cur;
    if (coded) {
        x.code = s->qcode;
        x.scale = encode_query(h, x.q, s->qcode);
        cur = (hn_item){code_dist(h, &x, h->entry), h->entry};
        for (uint32_t lc = h->max_level; lc > 0; lc--)
            cur = greedy(h, &x, cur, lc, 1, &s->distances);
        int exact = h->sq_exact && code_is_exact(h, x.q, s->qcode);
        if (filter) {
            ok = search_layer(h, s, &x, cur, ef, 0, filter, 1);
        } else {
            search_pool(h, s, &x, cur, ef, 0, 1);
            uint32_t keep = exact ? k : rerank_count(k, ef);
            s->nres = s->nres < keep ? s->nres : keep;
        }
        if (ok && !exact && s->nres > k) { /* at most k kept: the set is final */
            rerank(h, x.q, s->res, s->nres);
            s->distances += s->nres;
        }
    } else {
        cur = (hn_item){dist_q(h, x.q, h->entry), h->entry};
        for (uint32_t lc = h->max_level; lc > 0; lc--)
            cur = greedy(h, &x, cur, lc, 0, &s->distances);
        if (filter)
            ok = search_layer(h, s, &x, cur, ef, 0, filter, 0);
        else
            search_pool(h, s, &x, cur, ef, 0, 0);
    }
    if (!ok) {
        st = vl_fail(err, VL_ERR_NOMEM, "hnsw search: out of memory for candidates");
        goto done;
    }
    if (filter)
        qsort(s->res, s->nres, sizeof(hn_item), item_cmp);
    else
        sort_items(s->res, s->nres);
    uint32_t m = s->nres < k ? s->nres : k;
    for (uint32_t i = 0; i < m; i++)
        out[i] = (vl_hnsw_hit){s->res[i].id, s->res[i].d};
    *n = m;
done:
    if (s != scratch)
        vl_hnsw_scratch_free(s);
    return st;
}

/* ---- building ----------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t draw_level(const vl_hnsw *h, uint64_t *rng)
{
    double u = (double)((splitmix64(rng) >> 11) + 1) * 0x1p-53; /* (0, 1] */
    double l = floor(-log(u) * h->ml);
    return l >= VL_HNSW_MAX_LEVEL ? VL_HNSW_MAX_LEVEL : (uint32_t)l;
}

/* A stable spread of equal distances: exact duplicates sorted by id would
 * all pick (and keep) the same few twins and leave the rest unreachable. */
static inline uint32_t tie_key(uint32_t id, uint32_t base)
{
    uint32_t x = (id ^ (base * 0x9E3779B9u)) * 0x85EBCA6Bu;
    return x ^ (x >> 15);
}

/* Sort a small candidate array nearest first, ties by tie_key. */
static void sort_candidates(hn_item *a, uint32_t n, uint32_t base)
{
    for (uint32_t i = 1; i < n; i++) {
        hn_item x = a[i];
        uint32_t kx = tie_key(x.id, base), j = i;
        while (j > 0 &&
               (a[j - 1].d > x.d || (a[j - 1].d == x.d && tie_key(a[j - 1].id, base) > kx))) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* Algorithm 4: from cand[0..n) (sorted by sort_candidates by distance to
 * the base row), keep each one no farther from the base than from every one
 * kept so far, at most max of them; writes [count, ids] to list.
 *  - The paper's test is strict; with exact duplicates (distance 0 to the
 *    base and to a kept twin) the strict test keeps one twin and drops the
 *    rest, and shrinking full lists then leaves twins unreachable, so ties
 *    are kept (on data without ties the two tests agree).
 *  - Twins of the base (bytewise equal vectors) take at most half the list,
 *    so a row with many duplicates still links to the rest of the graph. */
static void select_neighbours(const vl_hnsw *h, uint32_t base, const hn_item *cand, uint32_t n,
                              uint32_t max, uint32_t *list)
{
    uint32_t kept = 0, twins = 0;
    size_t bytes = (size_t)h->dim * sizeof(float);
    const float *bv = vec_of(h, base);
    for (uint32_t i = 0; i < n && kept < max; i++) {
        int twin = memcmp(vec_of(h, cand[i].id), bv, bytes) == 0;
        if (twin && twins >= max / 2)
            continue;
        int good = 1;
        for (uint32_t j = 0; j < kept && good; j++)
            good = dist_rr(h, cand[i].id, list[1 + j]) >= cand[i].d;
        if (good) {
            list[1 + kept++] = cand[i].id;
            twins += (uint32_t)twin;
        }
    }
    list[0] = kept;
}

/* Add a link e -> r on layer lc, shrinking e's list with the heuristic when
 * it is full. */
static void connect(vl_hnsw *h, uint32_t e, uint32_t r, uint32_t lc)
{
    uint32_t *list = vl_hnsw_list(h, e, lc);
    uint32_t max = lc ? h->m : h->m0;
    if (list[0] < max) {
        list[1 + list[0]++] = r;
        return;
    }
    hn_item *c = h->build->tmp;
    for (uint32_t i = 0; i < max; i++)
        c[i] = (hn_item){dist_rr(h, e, list[1 + i]), list[1 + i]};
    c[max] = (hn_item){dist_rr(h, e, r), r};
    sort_candidates(c, max + 1, e);
    select_neighbours(h, e, c, max + 1, max, list);
}

/* Room for `need` rows: exactly that many when exact, else by doubling. */
static int grow_rows(vl_hnsw *h, uint32_t need, int exact)
{
    if (need <= h->cap)
        return 1;
    uint32_t cap = exact ? need : h->cap ? h->cap : 256;
    while (cap < need)
        cap = cap > UINT32_MAX / 2 ? need : cap * 2;
    size_t vbytes = ((size_t)cap * h->dim * sizeof(float) + 63) & ~(size_t)63;
    float *vecs = h->src.vector ? NULL : alloc_big(vbytes);
    if (!vecs && !h->src.vector)
        return 0;
    size_t list_bytes = vl_hnsw_stride0(h) * sizeof(uint32_t);
    void *links0 = h->links0;
    int linked = grow_big(&links0, (size_t)h->count * list_bytes, (size_t)cap * list_bytes);
    h->links0 = links0;
    uint8_t *levels = linked ? realloc(h->levels, cap) : NULL;
    if (levels)
        h->levels = levels;
    uint32_t *uoff = levels ? realloc(h->uoff, (size_t)cap * sizeof(uint32_t)) : NULL;
    if (uoff)
        h->uoff = uoff;
    float *inv = uoff && h->inv ? realloc(h->inv, (size_t)cap * sizeof(float)) : NULL;
    if (inv)
        h->inv = inv;
    if (!uoff || (h->inv && !inv)) {
        free(vecs);
        return 0;
    }
    if (h->codes) {
        void *codes = h->codes;
        int coded = grow_big(&codes, (size_t)h->count * h->dim, (size_t)cap * h->dim);
        h->codes = codes;
        float *sc = coded && h->sq_scale ? realloc(h->sq_scale, (size_t)cap * sizeof(float)) : NULL;
        if (sc)
            h->sq_scale = sc;
        if (!coded || (h->sq_scale && !sc)) {
            free(vecs);
            return 0;
        }
    }
    if (vecs) {
        if (h->count)
            memcpy(vecs, h->vecs, (size_t)h->count * h->dim * sizeof(float));
        free(h->vecs);
        h->vecs = vecs;
    }
    h->cap = cap;
    return 1;
}

vl_status vl_hnsw_reserve_upper(vl_hnsw *h, uint32_t r, uint32_t level, vl_error *err)
{
    size_t words = (size_t)level * (1 + h->m);
    if (h->upper_len + words > UINT32_MAX)
        return vl_fail(err, VL_ERR_LIMIT, "hnsw: upper layers exceed 2^32 words");
    if (h->upper_len + words > h->upper_cap) {
        size_t c = h->upper_cap ? h->upper_cap : 1024;
        while (c < h->upper_len + words)
            c *= 2;
        uint32_t *p = realloc(h->upper, c * sizeof(uint32_t));
        if (!p)
            return vl_fail(err, VL_ERR_NOMEM, "hnsw: out of memory for upper layers");
        h->upper = p;
        h->upper_cap = c;
    }
    h->uoff[r] = (uint32_t)h->upper_len;
    for (uint32_t lc = 0; lc < level; lc++)
        h->upper[h->upper_len + (size_t)lc * (1 + h->m)] = 0;
    h->upper_len += words;
    return VL_OK;
}

void vl_hnsw_store_vector(vl_hnsw *h, uint32_t r, const float *vec)
{
    if (!h->vecs) { /* a vector source: only the inverse norm (cosine) */
        if (h->inv) {
            double norm = sqrt(vl_dot(vec, vec, h->dim));
            h->inv[r] = norm > 0 ? (float)(1.0 / norm) : 0.0f;
        }
        return;
    }
    float *dst = h->vecs + (size_t)r * h->dim;
    if (h->metric == VL_METRIC_COSINE)
        normalise(dst, vec, h->dim);
    else
        memcpy(dst, vec, (size_t)h->dim * sizeof(float));
}

vl_status vl_hnsw_alloc(uint32_t dim, vl_metric metric, uint32_t m, uint32_t ef_construction,
                        uint64_t seed, uint32_t cap, vl_hnsw **out, vl_error *err)
{
    *out = NULL;
    if (dim < 1 || dim > VL_MAX_DIM)
        return vl_fail(err, VL_ERR_ARG, "hnsw: dimension %u outside 1..%u", dim, VL_MAX_DIM);
    if (metric != VL_METRIC_L2 && metric != VL_METRIC_COSINE && metric != VL_METRIC_IP)
        return vl_fail(err, VL_ERR_ARG, "hnsw: unknown metric %d", (int)metric);
    if (m == 0)
        m = VL_HNSW_DEFAULT_M;
    if (ef_construction == 0)
        ef_construction = VL_HNSW_DEFAULT_EF_CONSTRUCTION;
    if (m < 2 || m > VL_HNSW_MAX_M)
        return vl_fail(err, VL_ERR_ARG, "hnsw: M %u outside 2..%u", m, VL_HNSW_MAX_M);
    vl_hnsw *h = calloc(1, sizeof(*h));
    if (!h)
        return vl_fail(err, VL_ERR_NOMEM, "hnsw: out of memory");
    h->dim = dim;
    h->metric = metric;
    h->m = m;
    h->m0 = 2 * m;
    h->ef_construction = ef_construction;
    h->seed = seed;
    h->rng = seed;
    h->ml = 1.0 / log((double)m);
    h->build = vl_hnsw_scratch_new();
    if (!h->build || !grow_rows(h, cap ? cap : 1, 1)) {
        vl_hnsw_free(h);
        return vl_fail(err, VL_ERR_NOMEM, "hnsw: out of memory for %u rows", cap);
    }
    *out = h;
    return VL_OK;
}

vl_status vl_hnsw_create(uint32_t dim, vl_metric metric, uint32_t m, uint32_t ef_construction,
                         uint64_t seed, vl_hnsw **out, vl_error *err)
{
    return vl_hnsw_alloc(dim, metric, m, ef_construction, seed, 0, out, err);
}

/* Encode row r's code and scale; L2 rows that do not code exactly clear
 * sq_exact. */
static void encode_stored(vl_hnsw *h, uint32_t r)
{
    const float *v = vec_of(h, r);
    uint8_t *code = h->codes + (size_t)r * h->dim;
    float scale = encode_row(h, v, code);
    if (h->sq_scale)
        h->sq_scale[r] = (float)(scale * row_inv(h, r));
    if (h->metric == VL_METRIC_L2)
        h->sq_exact = h->sq_exact && code_is_exact(h, v, code);
}

vl_status vl_hnsw_quantise(vl_hnsw *h, vl_hnsw_quant q, float lo, float step, vl_error *err)
{
    free(h->codes);
    free(h->sq_scale);
    h->codes = NULL;
    h->sq_scale = NULL;
    h->quant = VL_HNSW_QUANT_NONE;
    if (q == VL_HNSW_QUANT_NONE)
        return VL_OK;
    if (q != VL_HNSW_QUANT_SQ8)
        return vl_fail(err, VL_ERR_ARG, "hnsw: unknown quantiser %d", (int)q);
    h->codes = alloc_big((size_t)h->cap * h->dim);
    if (h->metric != VL_METRIC_L2) /* L2 codes share one map, no scale */
        h->sq_scale = malloc((size_t)h->cap * sizeof(float));
    if (!h->codes || (h->metric != VL_METRIC_L2 && !h->sq_scale)) {
        free(h->codes);
        free(h->sq_scale);
        h->codes = NULL;
        h->sq_scale = NULL;
        return vl_fail(err, VL_ERR_NOMEM, "hnsw: out of memory for %u SQ8 codes", h->cap);
    }
    h->sq_lo = lo;
    h->sq_step = step;
    h->sq_exact = h->metric == VL_METRIC_L2;
    for (uint32_t r = 0; r < h->count; r++)
        encode_stored(h, r);
    h->quant = q;
    return VL_OK;
}

vl_status vl_hnsw_set_quant(vl_hnsw *h, vl_hnsw_quant q, vl_error *err)
{
    float lo = 0, step = 1;
    if (h->metric == VL_METRIC_L2 && h->count > 0) {
        float mn = vec_of(h, 0)[0], mx = mn;
        int bytes = 1;
        for (uint32_t r = 0; r < h->count; r++) {
            const float *row = vec_of(h, r);
            for (uint32_t i = 0; i < h->dim; i++) {
                float v = row[i];
                mn = v < mn ? v : mn;
                mx = v > mx ? v : mx;
                bytes &= v == floorf(v);
            }
        }
        if (!(bytes && mn >= 0 && mx <= 255)) {
            lo = mn;
            step = mx > mn ? (mx - mn) / 255.0f : 1.0f;
        }
    }
    return vl_hnsw_quantise(h, q, lo, step, err);
}

vl_status vl_hnsw_reserve(vl_hnsw *h, uint32_t rows, vl_error *err)
{
    if (!grow_rows(h, rows, 1))
        return vl_fail(err, VL_ERR_NOMEM, "hnsw: out of memory for %u rows", rows);
    return VL_OK;
}

vl_status vl_hnsw_add(vl_hnsw *h, uint32_t row, const float *vec, vl_error *err)
{
    if (row != h->count)
        return vl_fail(err, VL_ERR_ARG, "hnsw add: row %u out of order (next row is %u)", row,
                       h->count);
    if (h->count >= UINT32_MAX - 1)
        return vl_fail(err, VL_ERR_LIMIT, "hnsw add: index is full (%u rows)", h->count);
    vl_hnsw_scratch *s = h->build;
    /* Every allocation happens before the graph changes, so a failure
     * leaves the index as it was. */
    if (!grow_rows(h, row + 1, 0) ||
        !scratch_prepare(s, row + 1, h->ef_construction, row + 2, h->dim))
        return vl_fail(err, VL_ERR_NOMEM, "hnsw add: out of memory at row %u", row);
    uint64_t rng = h->rng;
    uint32_t level = draw_level(h, &rng);
    vl_status st = vl_hnsw_reserve_upper(h, row, level, err);
    if (st != VL_OK)
        return st;
    h->rng = rng;
    h->levels[row] = (uint8_t)level;
    h->links0[(size_t)row * vl_hnsw_stride0(h)] = 0;
    vl_hnsw_store_vector(h, row, vec);
    if (h->codes)
        encode_stored(h, row);
    h->vec_crc = vl_crc32c(h->vec_crc, vec, (size_t)h->dim * sizeof(float));

    if (h->count == 0) {
        h->entry = row;
        h->max_level = level;
        h->count = 1;
        return VL_OK;
    }
    const float *q = vec_of(h, row);
    if (h->inv) { /* a raw cosine row from the source: walk from its unit vector */
        normalise(s->q, q, h->dim);
        q = s->q;
    }
    hn_query x = {q, NULL, 0, NULL};
    hn_item cur = {dist_q(h, q, h->entry), h->entry};
    for (uint32_t lc = h->max_level; lc > level; lc--)
        cur = greedy(h, &x, cur, lc, 0, &s->distances);
    for (uint32_t lc = level < h->max_level ? level : h->max_level;; lc--) {
        search_pool(h, s, &x, cur, h->ef_construction, lc, 0);
        uint32_t w = s->nres;
        memcpy(s->tmp, s->res, (size_t)w * sizeof(hn_item));
        sort_candidates(s->tmp, w, row);
        cur = s->tmp[0];
        uint32_t *mine = vl_hnsw_list(h, row, lc);
        select_neighbours(h, row, s->tmp, w, h->m, mine);
        for (uint32_t i = 0; i < mine[0]; i++)
            connect(h, mine[1 + i], row, lc);
        if (lc == 0)
            break;
    }
    if (level > h->max_level) {
        h->entry = row;
        h->max_level = level;
    }
    h->count++;
    return VL_OK;
}

/* ---- accounting --------------------------------------------------------- */

uint32_t vl_hnsw_count(const vl_hnsw *h)
{
    return h->count;
}

uint32_t vl_hnsw_dim(const vl_hnsw *h)
{
    return h->dim;
}

size_t vl_hnsw_graph_bytes(const vl_hnsw *h)
{
    return sizeof(*h) +
           (size_t)h->cap * (vl_hnsw_stride0(h) * sizeof(uint32_t) + 1 + sizeof(uint32_t)) +
           h->upper_cap * sizeof(uint32_t);
}

size_t vl_hnsw_vector_bytes(const vl_hnsw *h)
{
    return h->vecs ? (size_t)h->cap * h->dim * sizeof(float) : 0;
}

vl_hnsw_quant vl_hnsw_quant_of(const vl_hnsw *h)
{
    return h->quant;
}

size_t vl_hnsw_memory_bytes(const vl_hnsw *h)
{
    size_t codes = h->codes ? (size_t)h->cap * h->dim : 0;
    size_t scales = h->sq_scale ? (size_t)h->cap * sizeof(float) : 0;
    size_t vecs = h->vecs ? (size_t)h->cap * h->dim * sizeof(float) : 0;
    size_t inv = h->inv ? (size_t)h->cap * sizeof(float) : 0;
    return vl_hnsw_graph_bytes(h) + codes + scales + vecs + inv;
}

vl_status vl_hnsw_set_vector_source(vl_hnsw *h, const vl_hnsw_vectors *src, vl_error *err)
{
    if (!src || !src->vector)
        return vl_fail(err, VL_ERR_ARG, "hnsw: a vector source needs a vector function");
    uint32_t crc = 0;
    for (uint32_t r = 0; r < h->count; r++)
        crc = vl_crc32c(crc, src->vector(src->ctx, r), (size_t)h->dim * sizeof(float));
    if (crc != h->vec_crc)
        return vl_fail(err, VL_ERR_ARG,
                       "hnsw: the source's %u vectors differ from the ones added (CRC %08x, "
                       "index's %08x)",
                       h->count, crc, h->vec_crc);
    float *inv = NULL;
    if (h->metric == VL_METRIC_COSINE && !h->inv) {
        inv = malloc((size_t)(h->cap ? h->cap : 1) * sizeof(float));
        if (!inv)
            return vl_fail(err, VL_ERR_NOMEM, "hnsw: out of memory for %u norms", h->cap);
    }
    free(h->vecs);
    h->vecs = NULL;
    h->src = *src;
    if (inv) {
        h->inv = inv;
        for (uint32_t r = 0; r < h->count; r++)
            vl_hnsw_store_vector(h, r, vec_of(h, r));
    }
    return VL_OK;
}

void vl_hnsw_free(vl_hnsw *h)
{
    if (!h)
        return;
    free(h->vecs);
    free(h->links0);
    free(h->levels);
    free(h->uoff);
    free(h->upper);
    free(h->codes);
    free(h->sq_scale);
    free(h->inv);
    vl_hnsw_scratch_free(h->build);
    free(h);
}
