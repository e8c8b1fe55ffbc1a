/*
 * search.c - exact k-nearest-neighbour search of a snapshot, optionally
 * split into parts that run on different threads.
 *
 * Decisions:
 *  - Rows are scored in batches of BATCH_ROWS contiguous rows with the
 *    batched SIMD kernels (core/kernels), then the visible ones offered to
 *    the part's bounded heap of the K best.  Distances are ranked as "lower
 *    is nearer" keys (squared L2, cosine distance, negated inner product).
 *    Scoring a deleted row too keeps the kernel loop free of branches; a
 *    batch of 256 rows of keys stays in L1.
 *  - The kernels are guarded against float overflow and underflow (a row
 *    whose float result is out of range is recomputed in double), and 1/|v|
 *    is kept in double, so every finite input ranks correctly.
 *  - A search over many rows is cut into contiguous row ranges (parts),
 *    each with its own heap, so the parts share nothing while they run.
 *    Finishing merges the part heaps, then scores the K winners again in
 *    double precision and re-sorts them: reported scores carry no float32
 *    rounding (an identical vector scores 0 under cosine, not 3e-8).
 *  - The query is validated when the search is created, so a bad query
 *    fails on the caller's thread before any work is queued.
 *  - With the snapshot's index set (index_set.h) and no EXACT, a search is
 *    per indexed segment an index search filtered to the rows the snapshot
 *    sees (del_lsn 0 or above its LSN, row below its count), plus the
 *    exact scan of every row the set does not cover (the memtable and
 *    segments without an index), cut at the snapshot's row count (a
 *    durable snapshot, snapshot.c, may end below the set's base).  Part p takes the segments i with
 *    i % parts == p and the p-th slice of the rows to scan, so parts still
 *    share nothing.  Index hits are keyed with the scan's float kernels
 *    (the index's own distances may be in another space, e.g. over SQ8
 *    codes), so the finish re-scores only the K winners in double, once:
 *    re-scoring every segment's hits in double as well took a fifth of a
 *    384-d cosine search's CPU (perf, 50 clients over RESP).  A search
 *    whose only source of rows is one segment's index (no other entry, no
 *    rows to scan) keys its hits with the index's own distances instead:
 *    its at most K hits all survive the heap of K whatever their keys.
 *  - The double re-score under cosine reads each winner's 1/|v| from the
 *    row store (computed there at insert with the same double reference,
 *    vl_dot_f64) instead of summing |v|^2 again: that second pass over
 *    the winners was 5% of the server's CPU on the MiniLM sets (perf, 50
 *    clients over RESP, debian-minilm at EF 22).  Measured and not kept:
 *    prefetching each winner's vector, 1/|v| and key 4 or 16 winners ahead
 *    of the re-score (an SQ8 walk over byte-valued rows reads no float
 *    vector, so the winners' are cold): vl_l2sq_f64 stayed at 11-12% of
 *    the server on sift at 50 clients (perf); its cost was its code (see
 *    kernels/f32_scalar.c), not the misses.
 *  - A search allocates two blocks (the search with its scan ranges, the
 *    heaps with their candidates), and a segment's hits sit on the stack
 *    for K <= 64: per-search malloc and free were 3.6% of the server on
 *    sift at 50 clients.
 *  - The index walk asks the filter about every row it meets.  When no row
 *    of the generation was deleted since the set was built (the deletion
 *    count the snapshot saw equals the set's), every mapped row is live and
 *    the filter reads only the map, not the row's deletion LSN; and when
 *    moreover every row of the segment maps to a row the snapshot holds,
 *    there is no filter at all, and the HNSW walk takes its unfiltered
 *    path (a sorted pool, and a re-rank of the 2k best instead of all ef:
 *    hnsw.c).
 *  - If an index search fails (out of memory in the walk), that segment's
 *    rows are scanned exactly instead: a search never loses rows.
 *  - The pieces that index the tail in memory (tail_index.h) are entries
 *    of the set like segments, with a map from piece row to row, and are
 *    searched by the same code; the set's scan ranges then hold only the
 *    rows no piece holds yet, and the rows after its base (appended since
 *    it was built) are scanned as before.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"
#include "core/index_set.h"
#include "core/kernels/kernels.h"
#include "core/topk.h"
#include "core/vector_text.h"
#include "util/alloc.h"
#include "util/error.h"

/* A part should have at least this many multiply-adds to be worth a
 * thread hand-off (about a millisecond of scanning). */
#define MIN_WORK_PER_PART (1u << 20)
#define MAX_PARTS 64
#define BATCH_ROWS 256u

struct vl_search {
    const vl_snapshot *s;
    const float *q;
    double inv_qnorm;
    uint32_t k, cap, parts;
    vl_topk *tops;         /* one heap per part */
    vl_candidate *storage; /* parts * cap candidates */
    /* Indexed search (set NULL: scan rows [0, nrows) in slices). */
    const vl_index_set *set;
    uint32_t ef, nprobe;
    vl_row_range *scan; /* the set's ranges plus the tail [base, nrows) */
    size_t nscan;
    uint64_t scan_rows; /* rows in scan */
};

/* The blocks vl_search_new_opts shares (see there). */
_Static_assert(sizeof(vl_topk) % _Alignof(vl_candidate) == 0, "candidates follow the heaps");
_Static_assert(sizeof(vl_search) % _Alignof(vl_row_range) == 0, "ranges follow the search");

static int visible(const vl_snapshot *s, vl_chunk *c, uint32_t slot)
{
    uint64_t del = atomic_load_explicit(&c->del_lsn[slot], memory_order_acquire);
    return del == 0 || del > s->lsn;
}

/* Rank keys of the n rows of chunk c from slot first on. */
static void rank_keys(const vl_search *x, const vl_chunk *c, uint32_t first, uint32_t n,
                      double *keys)
{
    uint32_t dim = x->s->dim;
    const float *rows = c->vecs + (size_t)first * dim;
    switch (x->s->metric) {
    case VL_METRIC_L2: vl_l2sq_batch(x->q, rows, n, dim, keys); return;
    case VL_METRIC_COSINE:
        vl_dot_batch(x->q, rows, n, dim, keys);
        for (uint32_t i = 0; i < n; i++)
            keys[i] = 1.0 - keys[i] * x->inv_qnorm * c->inv_norms[first + i];
        return;
    case VL_METRIC_IP:
        vl_dot_batch(x->q, rows, n, dim, keys);
        for (uint32_t i = 0; i < n; i++)
            keys[i] = -keys[i];
        return;
    }
}

/* The same rank key in double precision throughout (winners only), with
 * the double references of kernels.h (four chains).  The query's norm and
 * every winner's norm come from vl_dot_f64 (the row's is the row store's
 * inv_norms, computed so at insert), so an identical vector normalises
 * alike and scores exactly 0 under cosine. */
static double precise_key(const vl_search *x, const vl_chunk *c, uint32_t slot)
{
    uint32_t dim = x->s->dim;
    const float *v = c->vecs + (size_t)slot * dim;
    switch (x->s->metric) {
    case VL_METRIC_L2: return vl_l2sq_f64(x->q, v, dim);
    case VL_METRIC_COSINE: {
        /* 1 - cos = |a/|a| - b/|b||^2 / 2: no cancellation near 0, and an
         * identical vector scores exactly 0 (both sides normalise alike).
         * A stored 0 (a zero row, which cosine refuses) is recomputed. */
        double iq = x->inv_qnorm, iv = c->inv_norms[slot];
        if (iv == 0.0)
            iv = 1.0 / sqrt(vl_dot_f64(v, v, dim));
        double acc[4] = {0, 0, 0, 0};
        const float *q = x->q;
        size_t i = 0, n = dim;
        for (; i + 4 <= n; i += 4)
            for (size_t j = 0; j < 4; j++) {
                double d = (double)q[i + j] * iq - (double)v[i + j] * iv;
                acc[j] += d * d;
            }
        for (; i < n; i++) {
            double d = (double)q[i] * iq - (double)v[i] * iv;
            acc[0] += d * d;
        }
        return ((acc[0] + acc[1]) + (acc[2] + acc[3])) / 2.0;
    }
    case VL_METRIC_IP: return -vl_dot_f64(x->q, v, dim);
    }
    return 0.0;
}

static double score_of(vl_metric m, double key)
{
    switch (m) {
    case VL_METRIC_L2: return sqrt(key);
    case VL_METRIC_COSINE: return key;
    case VL_METRIC_IP: return -key;
    }
    return key;
}

static vl_status check_query(const vl_snapshot *s, const float *qv, uint32_t dim, uint32_t k,
                             double *inv_qnorm, vl_error *err)
{
    if (dim == 0)
        return vl_fail(err, VL_ERR_ARG, "empty vector");
    if (dim > VL_MAX_DIM)
        return vl_fail(err, VL_ERR_LIMIT, "vector has %u dimensions; the maximum is %u", dim,
                       VL_MAX_DIM);
    if (k == 0 || k > VL_MAX_K)
        return vl_fail(err, VL_ERR_LIMIT, "K must be between 1 and %u", VL_MAX_K);
    if (s->dim && dim != s->dim)
        return vl_fail(err, VL_ERR_DIM, "dimension mismatch: expected %u, got %u", s->dim, dim);
    vl_status st = vl_vector_check_finite(qv, dim, err);
    if (st != VL_OK)
        return st;
    *inv_qnorm = 0;
    if (s->metric == VL_METRIC_COSINE) {
        double norm = sqrt(vl_dot_f64(qv, qv, dim));
        if (norm == 0)
            return vl_fail(err, VL_ERR_ARG, "zero vector has no direction (metric is cosine)");
        *inv_qnorm = 1.0 / norm;
    }
    return VL_OK;
}

int vl_search_is_small(const vl_snapshot *s)
{
    return s->nrows * (uint64_t)(s->dim ? s->dim : 1) < MIN_WORK_PER_PART / 4;
}

uint32_t vl_search_suggest_parts(const vl_snapshot *s, uint32_t max_parts)
{
    uint64_t work = s->nrows * (uint64_t)(s->dim ? s->dim : 1);
    uint64_t parts = work / MIN_WORK_PER_PART;
    if (parts > max_parts)
        parts = max_parts;
    return parts < 1 ? 1 : (uint32_t)parts;
}

vl_status vl_search_new(const vl_snapshot *s, const float *q, uint32_t dim, uint32_t k,
                        uint32_t parts, vl_search **out, vl_error *err)
{
    return vl_search_new_opts(s, q, dim, k, parts, NULL, out, err);
}

/* The rows an indexed search scans exactly, and the parts worth having:
 * one per indexed segment at most, plus the scan's own share. */
static uint32_t plan_indexed(vl_search *x, uint32_t parts)
{
    const vl_index_set *set = x->set;
    x->scan = (vl_row_range *)(x + 1); /* room for set->nscan + 1: vl_search_new_opts */
    for (size_t i = 0; i < set->nscan && set->scan[i].lo < x->s->nrows; i++) {
        vl_row_range r = set->scan[i]; /* a durable snapshot may end below base */
        r.hi = r.hi < x->s->nrows ? r.hi : x->s->nrows;
        x->scan[x->nscan++] = r;
        x->scan_rows += r.hi - r.lo;
    }
    if (x->s->nrows > set->base) {
        x->scan[x->nscan++] = (vl_row_range){set->base, x->s->nrows};
        x->scan_rows += x->s->nrows - set->base;
    }
    uint64_t useful = set->n + x->scan_rows * (x->s->dim ? x->s->dim : 1) / MIN_WORK_PER_PART;
    return useful < parts ? (uint32_t)(useful ? useful : 1) : parts;
}

static vl_status check_opts(const vl_search_opts *o, vl_error *err)
{
    if (o && o->ef > VL_MAX_EF)
        return vl_fail(err, VL_ERR_ARG, "EF must be between 1 and %u", VL_MAX_EF);
    if (o && o->nprobe > VL_MAX_NPROBE)
        return vl_fail(err, VL_ERR_ARG, "NPROBE must be between 1 and %u", VL_MAX_NPROBE);
    return VL_OK;
}

vl_status vl_search_new_opts(const vl_snapshot *s, const float *q, uint32_t dim, uint32_t k,
                             uint32_t parts, const vl_search_opts *opts, vl_search **out,
                             vl_error *err)
{
    double inv_qnorm;
    *out = NULL;
    vl_status st = check_query(s, q, dim, k, &inv_qnorm, err);
    if (st == VL_OK)
        st = check_opts(opts, err);
    if (st != VL_OK)
        return st;
    /* One block for the search and its scan ranges, one for the heaps and
     * their candidates: a search allocates two blocks (perf, sift at 50
     * clients: malloc and free were 3.6% of the server with six). */
    int indexed = s->iset && !(opts && opts->exact);
    size_t ranges = indexed ? s->iset->nscan + 1 : 0;
    vl_search *x = vl_calloc(1, sizeof *x + ranges * sizeof(vl_row_range));
    x->s = s;
    x->q = q;
    x->inv_qnorm = inv_qnorm;
    x->k = k;
    x->cap = (uint64_t)k < s->nrows ? k : (uint32_t)s->nrows;
    x->parts = parts < 1 ? 1 : (parts > MAX_PARTS ? MAX_PARTS : parts);
    if (indexed) {
        x->set = s->iset;
        x->ef = opts ? opts->ef : 0;
        x->nprobe = opts ? opts->nprobe : 0;
        x->parts = plan_indexed(x, x->parts);
    }
    size_t cap = x->cap ? x->cap : 1;
    x->tops = vl_malloc(x->parts * sizeof *x->tops + x->parts * cap * sizeof *x->storage);
    x->storage = (vl_candidate *)(x->tops + x->parts);
    for (uint32_t i = 0; i < x->parts; i++)
        vl_topk_init(&x->tops[i], x->storage + (size_t)i * x->cap, x->cap);
    *out = x;
    return VL_OK;
}

uint32_t vl_search_parts(const vl_search *x)
{
    return x->parts;
}

/* Exact scan of rows [lo, hi) into top. */
static void scan_rows(const vl_search *x, vl_topk *top, uint64_t lo, uint64_t hi)
{
    const vl_snapshot *s = x->s;
    vl_chunk_dir *dir = atomic_load_explicit(&s->rows->dir, memory_order_acquire);
    for (uint64_t row = lo; row < hi;) {
        vl_chunk *c = vl_rowstore_chunk(dir, row);
        uint32_t first = (uint32_t)(row % VL_CHUNK_ROWS);
        uint64_t chunk_end = row - first + VL_CHUNK_ROWS;
        uint32_t last = (uint32_t)((hi < chunk_end ? hi : chunk_end) - (row - first));
        for (uint32_t b = first; b < last; b += BATCH_ROWS) {
            uint32_t n = last - b < BATCH_ROWS ? last - b : BATCH_ROWS;
            double keys[BATCH_ROWS];
            rank_keys(x, c, b, n, keys);
            /* Most rows lose to the K-th best: one compare, no call. */
            double bound = vl_topk_bound(top);
            for (uint32_t i = 0; i < n; i++)
                if (keys[i] <= bound && visible(s, c, b + i)) {
                    vl_topk_push(top, keys[i], row - first + b + i);
                    bound = vl_topk_bound(top);
                }
        }
        row = chunk_end;
    }
}

/* Scan the rows of slice [from, to) of the concatenated scan ranges. */
static void scan_slice(const vl_search *x, vl_topk *top, uint64_t from, uint64_t to)
{
    uint64_t at = 0;
    for (size_t i = 0; i < x->nscan && at < to; i++) {
        uint64_t len = x->scan[i].hi - x->scan[i].lo;
        uint64_t lo = from > at ? from - at : 0, hi = to - at < len ? to - at : len;
        if (lo < hi)
            scan_rows(x, top, x->scan[i].lo + lo, x->scan[i].lo + hi);
        at += len;
    }
}

typedef struct {
    const vl_snapshot *s;
    const uint32_t *map;
    vl_chunk_dir *dir;
} seg_ctx;

static int seg_allow(void *ctx, uint32_t seg_row)
{
    const seg_ctx *c = ctx;
    uint32_t row = c->map[seg_row];
    if (row == VL_ROW_NONE || row >= c->s->nrows)
        return 0;
    return visible(c->s, vl_rowstore_chunk(c->dir, row), row % VL_CHUNK_ROWS);
}

/* The same when no row of the generation was deleted since the set was
 * built: every mapped row is live, so no deletion LSN need be read. */
static int seg_allow_mapped(void *ctx, uint32_t seg_row)
{
    const seg_ctx *c = ctx;
    uint32_t row = c->map[seg_row];
    return row != VL_ROW_NONE && row < c->s->nrows;
}

static const float *seg_vector(void *ctx, uint32_t seg_row)
{
    const seg_ctx *c = ctx;
    uint32_t row = c->map[seg_row];
    return vl_rowstore_chunk(c->dir, row)->vecs + (size_t)(row % VL_CHUNK_ROWS) * c->s->dim;
}

/* Offer row to top under the scan's rank key (the finish re-scores). */
static void push_row(const vl_search *x, vl_topk *top, vl_chunk_dir *dir, uint32_t row)
{
    double key;
    rank_keys(x, vl_rowstore_chunk(dir, row), row % VL_CHUNK_ROWS, 1, &key);
    vl_topk_push(top, key, row);
}

static void search_segment(const vl_search *x, vl_topk *top, const vl_index_entry *e)
{
    seg_ctx ctx = {x->s, e->map, atomic_load_explicit(&x->s->rows->dir, memory_order_acquire)};
    int fresh = x->set->deletions == x->s->deletions;
    vl_seg_filter f = {fresh ? seg_allow_mapped : seg_allow, seg_vector, &ctx};
    if (fresh && e->whole && e->max_row < x->s->nrows)
        f.allow = NULL; /* every row of the segment is visible */
    vl_seg_hit local[64];
    vl_seg_hit *hits = x->k <= 64 ? local : vl_malloc((size_t)x->k * sizeof *hits);
    uint32_t n = 0;
    vl_error err;
    /* The search's only source of rows: its at most k hits all stay in the
     * heap of k whatever their keys, and the finish re-scores them, so the
     * index's own distance serves as the key and no row is read again. */
    int alone = x->set->n == 1 && x->scan_rows == 0;
    if (vl_seg_index_search(e->ix, x->q, x->k, x->ef, x->nprobe, &f, hits, &n, &err) == VL_OK) {
        for (uint32_t i = 0; i < n; i++)
            if (alone)
                vl_topk_push(top, hits[i].dist, e->map[hits[i].seg_row]);
            else
                push_row(x, top, ctx.dir, e->map[hits[i].seg_row]);
    } else {
        for (uint32_t r = 0; r < vl_seg_index_rows(e->ix); r++)
            if (seg_allow(&ctx, r))
                push_row(x, top, ctx.dir, e->map[r]);
    }
    if (hits != local)
        free(hits);
}

void vl_search_run_part(vl_search *x, uint32_t part)
{
    const vl_snapshot *s = x->s;
    if (!s->rows || part >= x->parts || x->cap == 0)
        return;
    vl_topk *top = &x->tops[part];
    if (!x->set) {
        scan_rows(x, top, s->nrows * part / x->parts, s->nrows * (part + 1) / x->parts);
        return;
    }
    for (size_t i = part; i < x->set->n; i += x->parts)
        search_segment(x, top, &x->set->entries[i]);
    scan_slice(x, top, x->scan_rows * part / x->parts, x->scan_rows * (part + 1) / x->parts);
}

vl_status vl_search_finish(vl_search *x, vl_hit *hits, uint32_t *nhits)
{
    const vl_snapshot *s = x->s;
    *nhits = 0;
    if (!s->rows || x->cap == 0)
        return VL_OK;
    vl_topk *all = &x->tops[0];
    for (uint32_t p = 1; p < x->parts; p++)
        for (uint32_t i = 0; i < x->tops[p].n; i++)
            vl_topk_push(all, x->tops[p].items[i].dist, x->tops[p].items[i].row);
    vl_chunk_dir *dir = atomic_load_explicit(&s->rows->dir, memory_order_acquire);
    for (uint32_t i = 0; i < all->n; i++) {
        uint64_t row = all->items[i].row;
        all->items[i].dist =
            precise_key(x, vl_rowstore_chunk(dir, row), (uint32_t)(row % VL_CHUNK_ROWS));
    }
    vl_topk_sort(all);
    for (uint32_t i = 0; i < all->n; i++) {
        uint64_t row = all->items[i].row;
        vl_key *key = vl_rowstore_chunk(dir, row)->keys[row % VL_CHUNK_ROWS];
        hits[i].key = key->data;
        hits[i].keylen = key->len;
        hits[i].score = score_of(s->metric, all->items[i].dist);
    }
    *nhits = all->n;
    return VL_OK;
}

void vl_search_free(vl_search *x)
{
    if (!x)
        return;
    free(x->tops); /* and the candidates */
    free(x);       /* and the scan ranges */
}

vl_status vl_snapshot_search(const vl_snapshot *s, const float *q, uint32_t dim, uint32_t k,
                             vl_hit *hits, uint32_t *nhits, vl_error *err)
{
    vl_search *x;
    *nhits = 0;
    vl_status st = vl_search_new(s, q, dim, k, 1, &x, err);
    if (st != VL_OK)
        return st;
    vl_search_run_part(x, 0);
    st = vl_search_finish(x, hits, nhits);
    vl_search_free(x);
    return st;
}
