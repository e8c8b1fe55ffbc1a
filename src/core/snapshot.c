/*
 * snapshot.c - pinned views of a collection and exact search over them.
 *
 * A snapshot holds a reference to the row store generation plus the row
 * count and LSN current when it was opened; see rowstore.h for why that is
 * enough for a consistent view while the writer goes on.
 *
 * Search is exact: every visible row is scored with the SIMD kernels and
 * the K best kept in a bounded heap.  Distances are ranked as "lower is
 * nearer" keys (squared L2, cosine distance, negated inner product).  The K
 * winners are then scored again in double precision and re-sorted, so the
 * reported scores carry no float32 rounding (an identical vector scores 0
 * under cosine, not 3e-8) and the final order follows the exact scores.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/distance.h"
#include "core/engine_internal.h"
#include "core/topk.h"
#include "core/vector_text.h"
#include "util/alloc.h"
#include "util/error.h"

vl_snapshot *vl_snapshot_open(vl_engine *e, const char *coll)
{
    vl_snapshot *s = vl_calloc(1, sizeof *s);
    vl_collection *c = vl_engine_find(e, coll);
    s->metric = c ? c->metric : e->opt.default_metric;
    if (!c)
        return s;
    vl_rowstore_ref(c->rows);
    s->rows = c->rows;
    s->nrows = atomic_load_explicit(&c->rows->nrows, memory_order_acquire);
    s->lsn = e->applied_lsn;
    s->count = c->rows->live;
    s->dim = c->rows->dim;
    return s;
}

void vl_snapshot_close(vl_snapshot *s)
{
    if (!s)
        return;
    vl_rowstore_unref(s->rows);
    free(s);
}

uint64_t vl_snapshot_count(const vl_snapshot *s)
{
    return s->count;
}

static int visible(const vl_snapshot *s, vl_chunk *c, uint32_t slot)
{
    uint64_t del = atomic_load_explicit(&c->del_lsn[slot], memory_order_acquire);
    return del == 0 || del > s->lsn;
}

typedef struct {
    const float *q;
    double inv_qnorm;
} query;

static double rank_key(const vl_snapshot *s, const query *q, const float *v, float inv_norm)
{
    switch (s->metric) {
    case VL_METRIC_L2:
        return vl_l2sq(q->q, v, s->dim);
    case VL_METRIC_COSINE:
        return 1.0 - vl_dot(q->q, v, s->dim) * q->inv_qnorm * (double)inv_norm;
    case VL_METRIC_IP:
        return -vl_dot(q->q, v, s->dim);
    }
    return 0.0;
}

/* The same rank key in double precision throughout (winners only). */
static double precise_key(const vl_snapshot *s, const query *q, const float *v)
{
    switch (s->metric) {
    case VL_METRIC_L2:
        return vl_l2sq_scalar(q->q, v, s->dim);
    case VL_METRIC_COSINE: {
        double nv = sqrt(vl_dot_scalar(v, v, s->dim));
        double cos = vl_dot_scalar(q->q, v, s->dim) * q->inv_qnorm / nv;
        return 1.0 - (cos > 1.0 ? 1.0 : cos);
    }
    case VL_METRIC_IP:
        return -vl_dot_scalar(q->q, v, s->dim);
    }
    return 0.0;
}

static void rescore(const vl_snapshot *s, const query *q, vl_topk *top, vl_chunk_dir *dir)
{
    for (uint32_t i = 0; i < top->n; i++) {
        uint64_t row = top->items[i].row;
        const float *v = vl_rowstore_chunk(dir, row)->vecs + (size_t)(row % VL_CHUNK_ROWS) * s->dim;
        top->items[i].dist = precise_key(s, q, v);
    }
    vl_topk_sort(top);
}

static double score_of(vl_metric m, double key)
{
    switch (m) {
    case VL_METRIC_L2:
        return sqrt(key);
    case VL_METRIC_COSINE:
        return key;
    case VL_METRIC_IP:
        return -key;
    }
    return key;
}

static void scan(const vl_snapshot *s, const query *q, vl_topk *top)
{
    vl_chunk_dir *dir = atomic_load_explicit(&s->rows->dir, memory_order_acquire);
    for (uint64_t base = 0; base < s->nrows; base += VL_CHUNK_ROWS) {
        vl_chunk *c = vl_rowstore_chunk(dir, base);
        uint64_t left = s->nrows - base;
        uint32_t n = left < VL_CHUNK_ROWS ? (uint32_t)left : VL_CHUNK_ROWS;
        for (uint32_t i = 0; i < n; i++) {
            if (!visible(s, c, i))
                continue;
            const float *v = c->vecs + (size_t)i * s->dim;
            vl_topk_push(top, rank_key(s, q, v, c->inv_norms[i]), base + i);
        }
    }
}

static vl_status check_query(const vl_snapshot *s, const float *qv, uint32_t dim, uint32_t k,
                             query *q, vl_error *err)
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
    q->q = qv;
    q->inv_qnorm = 0;
    if (s->metric == VL_METRIC_COSINE) {
        double norm = sqrt(vl_dot_scalar(qv, qv, dim));
        if (norm == 0)
            return vl_fail(err, VL_ERR_ARG, "zero vector has no direction (metric is cosine)");
        q->inv_qnorm = 1.0 / norm;
    }
    return VL_OK;
}

vl_status vl_snapshot_search(const vl_snapshot *s, const float *qv, uint32_t dim, uint32_t k,
                             vl_hit *hits, uint32_t *nhits, vl_error *err)
{
    query q = {NULL, 0};
    *nhits = 0;
    vl_status st = check_query(s, qv, dim, k, &q, err);
    if (st != VL_OK || !s->rows || s->nrows == 0)
        return st;
    uint32_t cap = (uint64_t)k < s->nrows ? k : (uint32_t)s->nrows;
    vl_candidate *cands = vl_malloc((size_t)cap * sizeof *cands);
    vl_topk top;
    vl_topk_init(&top, cands, cap);
    scan(s, &q, &top);
    vl_chunk_dir *dir = atomic_load_explicit(&s->rows->dir, memory_order_acquire);
    rescore(s, &q, &top, dir);
    for (uint32_t i = 0; i < top.n; i++) {
        uint64_t row = cands[i].row;
        vl_key *key = vl_rowstore_chunk(dir, row)->keys[row % VL_CHUNK_ROWS];
        hits[i].key = key->data;
        hits[i].keylen = key->len;
        hits[i].score = score_of(s->metric, cands[i].dist);
    }
    *nhits = top.n;
    free(cands);
    return VL_OK;
}
