/*
 * ivf_calibrate.c - the search defaults of a built IVF index, measured on
 * its own rows: the adaptive probe's reach and the SQ8 re-rank depth.
 *
 * Decisions (figures: bench/results/2026-12-02-ivf.md):
 *  - Why measure: the adaptive probe (ivf.c) skips a list when the bisector
 *    bound puts all its rows beyond reach x the k-th distance found so far.
 *    How tight that bound is depends on the data: in 8 dimensions it is
 *    nearly the true distance to the cell, so a reach below 1 loses
 *    neighbours, while on 384-d text embeddings it is so loose that reach
 *    0.35 already scans 45% of the lists (debian MiniLM).  One constant
 *    cannot serve both, so vl_ivf_build() picks the reach per index.
 *  - How: CAL_QUERIES rows of the index, spread over it (seeded stride),
 *    are searched as queries, with the row itself hidden by the filter, and
 *    checked against their exact CAL_K nearest among the other rows
 *    (tie-aware: a hit counts when its distance is within the k-th).  The
 *    reach is the smallest of a fixed ladder whose sample recall reaches
 *    CAL_TARGET; the ladder ends at "every list".  The target is above the
 *    0.95 promised for held-out queries because a row of the index is an
 *    easier query than a new one (it sits where the data is dense).
 *  - SQ8 first: its re-rank depth (k x depth estimates re-ranked) is the
 *    smallest of 2, 4, ... 64 that reaches CAL_CODE_TARGET with every list
 *    scanned, so the code's own loss is settled before the reach is.  Data
 *    whose clusters are small against a dimension's global range (the steps
 *    are per dimension over the whole set) needs more than 2.  RaBitQ needs
 *    nothing: its re-rank follows its error bound.
 *  - ip keeps the fixed probe count of vl_ivf_default_nprobe(): the bisector
 *    bound is about L2 cells, not inner products.
 *  - Cost: CAL_QUERIES exact scans of the rows plus a few hundred searches,
 *    about a fifth of a k-means build on the 20k-row datasets.
 */
#include <math.h>
#include <stdlib.h>

#include "core/index/ivf_internal.h"
#include "core/kernels/kernels.h"
#include "core/topk.h"
#include "util/alloc.h"

#define CAL_QUERIES 100u
#define CAL_K 10u
#define CAL_TARGET 0.97
#define CAL_CODE_TARGET 0.99
#define CAL_BATCH 256u

static const float REACHES[] = {0.25f, 0.28f, 0.31f, 0.34f, 0.37f, 0.4f, 0.45f, 0.5f,
                                0.6f,  0.7f,  0.8f,  1.0f,  1.25f, 1.5f, 2.0f};
static const uint32_t SQ8_DEPTHS[] = {2, 4, 8, 16, 32, 64};

typedef struct {
    const vl_ivf *ix;
    const float *x;
    uint32_t n, nq;
    uint32_t *qrow;  /* the sample rows */
    double *kth;     /* each one's exact CAL_K-th key among the other rows */
    uint32_t hidden; /* the row the current search hides */
} sample;

static int not_hidden(void *ctx, uint32_t row)
{
    return row != ((const sample *)ctx)->hidden;
}

/* Keys as vl_ivf_search reports them: l2 squared, 1 - cos, -ip. */
static void keys(const vl_ivf *ix, const float *q, double qn, const float *rows, const float *inv,
                 uint32_t m, double *out)
{
    if (ix->metric == VL_METRIC_L2) {
        vl_l2sq_batch(q, rows, m, ix->dim, out);
        return;
    }
    vl_dot_batch(q, rows, m, ix->dim, out);
    for (uint32_t i = 0; i < m; i++)
        out[i] = ix->metric == VL_METRIC_IP ? -out[i] : 1 - out[i] * qn * inv[i];
}

/* The exact CAL_K-th key of every sample query among the other rows. */
static void exact_kth(sample *s)
{
    const vl_ivf *ix = s->ix;
    uint32_t dim = ix->dim, k = s->n - 1 < CAL_K ? s->n - 1 : CAL_K;
    float *inv = vl_malloc((size_t)s->n * sizeof *inv);
    for (uint32_t i = 0; i < s->n; i++) {
        double nn = vl_dot_f64(s->x + (size_t)i * dim, s->x + (size_t)i * dim, dim);
        inv[i] = nn > 0 ? (float)(1 / sqrt(nn)) : 0;
    }
    double *d = vl_malloc(CAL_BATCH * sizeof *d);
    vl_candidate *items = vl_malloc(CAL_K * sizeof *items);
    for (uint32_t qi = 0; qi < s->nq; qi++) {
        uint32_t self = s->qrow[qi];
        const float *q = s->x + (size_t)self * dim;
        vl_topk t;
        vl_topk_init(&t, items, k);
        for (uint32_t b = 0; b < s->n; b += CAL_BATCH) {
            uint32_t m = s->n - b < CAL_BATCH ? s->n - b : CAL_BATCH;
            keys(ix, q, inv[self], s->x + (size_t)b * dim, inv + b, m, d);
            for (uint32_t i = 0; i < m; i++)
                if (b + i != self && d[i] <= vl_topk_bound(&t))
                    vl_topk_push(&t, d[i], b + i);
        }
        s->kth[qi] = vl_topk_bound(&t);
    }
    free(items);
    free(d);
    free(inv);
}

/* Tie-aware recall@CAL_K of the sample with the index's current defaults
 * (nprobe 0: the adaptive probe) or every list (all). */
static double sample_recall(sample *s, int all)
{
    const vl_ivf *ix = s->ix;
    vl_ivf_search_opts o = {
        .nprobe = all ? ix->nlist : 0, .filter = not_hidden, .filter_ctx = s, .rows = s->x};
    vl_ivf_hit hits[CAL_K];
    uint64_t ok = 0, want = 0;
    for (uint32_t qi = 0; qi < s->nq; qi++) {
        uint32_t got = 0;
        s->hidden = s->qrow[qi];
        if (vl_ivf_search(ix, s->x + (size_t)s->hidden * ix->dim, CAL_K, &o, hits, &got, NULL) !=
            VL_OK)
            continue;
        double kth = s->kth[qi], tol = 1e-6 * (1 + fabs(kth));
        for (uint32_t i = 0; i < got; i++)
            ok += hits[i].dist <= kth + tol;
        want += s->n - 1 < CAL_K ? s->n - 1 : CAL_K;
    }
    return want ? (double)ok / (double)want : 1;
}

void vl_ivf_calibrate(vl_ivf *ix, const float *x, uint32_t n)
{
    if (n < 2 || ix->nlist < 2 || (ix->metric == VL_METRIC_IP && ix->quant != VL_IVF_QUANT_SQ8))
        return;
    sample s = {.ix = ix, .x = x, .n = n, .nq = n < CAL_QUERIES ? n : CAL_QUERIES};
    s.qrow = vl_malloc((size_t)s.nq * sizeof *s.qrow);
    s.kth = vl_malloc((size_t)s.nq * sizeof *s.kth);
    uint64_t st = ix->seed ^ 0x63616c6962ull; /* "calib" */
    for (uint32_t i = 0; i < s.nq; i++)
        s.qrow[i] = (uint32_t)(((uint64_t)i * n) / s.nq + vl_ivf_rand(&st) % (n / s.nq));
    exact_kth(&s);
    if (ix->quant == VL_IVF_QUANT_SQ8) {
        size_t d = 0, nd = sizeof SQ8_DEPTHS / sizeof *SQ8_DEPTHS;
        for (ix->sq8_rerank = SQ8_DEPTHS[d]; d + 1 < nd && sample_recall(&s, 1) < CAL_CODE_TARGET;)
            ix->sq8_rerank = SQ8_DEPTHS[++d];
    }
    if (ix->metric != VL_METRIC_IP) {
        size_t r = 0, nr = sizeof REACHES / sizeof *REACHES;
        for (ix->reach = REACHES[0]; sample_recall(&s, 0) < CAL_TARGET;)
            if (++r < nr) {
                ix->reach = REACHES[r];
            } else {
                ix->reach = VL_IVF_REACH_ALL;
                break;
            }
    }
    free(s.kth);
    free(s.qrow);
}
