/*
 * ivf.c - the IVF index: assignment and encoding of added vectors, the
 * contiguous list body, and NPROBE search with exact re-ranking.
 *
 * Decisions (figures: bench/results/2026-12-01-ivf.md, `make bench-ivf`):
 *  - One body buffer, lists in list order, each list's region = row ids,
 *    codes, factors, starting on a 64-byte boundary.  One range read of
 *    [offset, offset + len) fetches a whole list, which is what serving
 *    from object storage needs; in memory a probe is one sequential pass.
 *    vl_ivf_add() rebuilds the body (decoding the old lists), which is the
 *    price of contiguity; the engine builds an index per sealed segment.
 *  - Defaults (figures: bench/results/2026-12-02-ivf.md): nlist = sqrt(n),
 *    at most 4096.  nprobe is adaptive for l2 and cosine: lists are taken
 *    nearest centroid first, and list l is skipped when every row it can
 *    hold is farther than reach x R, R the k-th distance found so far.  A
 *    row of list l is on c_l's side of the bisector of c_l and c_1 (the
 *    nearest centroid), so at least (|q - c_l|^2 - |q - c_1|^2) /
 *    (2 |c_l - c_1|) from q; that bound is at least (|q - c_l| - |q - c_1|)
 *    / 2, which grows with the probe order, so the scan stops at the first
 *    list where that passes reach x R.  reach 1 would be exact; the bound
 *    is loose in high dimensions, so reach is measured per index at build
 *    (ivf_calibrate.c).  A fixed nlist / 4 (the old default) needed 71 of
 *    283 lists on debian MiniLM and scanned a quarter of a 1M segment where
 *    8 of 2000 lists gave recall 0.95; the adaptive probe scans what each
 *    query needs (6 lists on fashion-mnist, 85 of 141 on debian).  2 sqrt(n)
 *    lists with the adaptive probe were slower on all four datasets (CPU
 *    QPS of rabitq: debian 6.6k against 8.0k, sift 36k against 46k).  ip
 *    keeps max(8, nlist / 4): the bound is about L2 cells.
 *  - Assignment to lists is by L2 for every metric (cosine on normalised
 *    vectors); probing ranks centroids by the metric's key (L2, or the
 *    inner product for ip).
 *  - none: float32 rows in the list, scored with the batched kernels; the
 *    list itself gives exact distances, so there is no re-rank.
 *  - sq8: per-dimension min/step uint8 codes stored as c - 128 in int8.
 *    For a query q, <q, x^> = <q, b> + sum_i (q_i step_i) c'_i with
 *    b_i = lo_i + 128 step_i; the weights q_i step_i are encoded once per
 *    query with the per-vector int8 code of sq8.h, so each row costs one
 *    exact dot_s8 kernel call.  L2 adds the stored |x^|^2.
 *  - rabitq: RaBitQ (Gao & Long 2024) 1-bit codes of the rotated residual
 *    r = P x - P c (P a seeded random rotation, c the list centroid),
 *    scanned 32 rows at a time with the 4-bit fast-scan kernel: every 4
 *    rotated dimensions form one 4-bit sub-code, and the table holds, for
 *    each sub-code value, sum_t +-v[t], quantised to uint8 with one step
 *    (the kernel's integer sum is exact; one multiply-add recovers the
 *    float).  RaBitQ's estimator <o_bar, v> / <o_bar, o> written out is
 *    <v, r> ~= |r|^2 / sum|r_j| * sum_j sign(r_j) v[j].
 *    The table is built once per query from v = P q - mu (mu the rotated
 *    mean of the centroids), not per list from the query's residual: the
 *    list centroid moves into a per-row offset (|r|^2 - 2 <mu - P c, r>),
 *    exact, computed at build.  A per-list table cost a third of search
 *    time (perf, sift nprobe 16); one table per query raised rabitq's QPS
 *    at recall 0.95 on sift from 36k to 46k.  Centring on mu keeps |v|
 *    close to |q - c| on data far from the origin (SIFT, pixels).
 *  - Compressed candidates, rabitq: RaBitQ's error bound decides.  Per row
 *    the file keeps the estimate's spread s (see encode()); the true key
 *    is at least estimate - 2 eps0 |v| s - (table rounding, 3 sigma), and a
 *    row is scored exactly (float32, caller's rows) at once when that lower
 *    bound can still beat the k-th exact key.  eps0 = 3 (three standard
 *    deviations): 1.9, the paper's value, lost 2% of neighbours in 16-64
 *    dimensions with every list probed, 3 lost none, for about 1.3x the
 *    exact scores (60-110 per query at 1.9, 76-126 at 3 on the datasets).
 *    The fixed depth it replaces (the 10 k best estimates) found 0.65-0.75
 *    of the true neighbours in 8-64 dimensions (test_ivf.c).
 *  - Compressed candidates, sq8: the k x depth best estimates are kept (a
 *    pool with lazy selection, below) and re-scored in float32; depth is
 *    measured at build (with it sq8 matches the float32 lists' recall on
 *    the four datasets).  SQ8 estimates rank nearby rows well but are off
 *    in absolute terms (the int8 query weights err in proportion to |q|),
 *    so the adaptive probe takes R from exact scores of the pool's k best
 *    after each list.  The index never duplicates the vectors the engine
 *    already keeps.
 *  - Visibility (MVCC, deletes) is checked per candidate before it enters
 *    the pool, so filtered rows never take a slot from a visible one.
 */
#include "core/index/ivf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/index/ivf_internal.h"
#include "core/kernels/bits.h"
#include "core/kernels/kernels.h"
#include "core/kernels/sq8.h"
#include "core/topk.h"
#include "util/alloc.h"
#include "util/error.h"

/* RaBitQ's bound in standard deviations of its estimate (see above). */
#define RABITQ_EPS0 3.0
#define DEFAULT_NLIST_MAX 4096u
#define BATCH 256u

uint32_t vl_ivf_default_nlist(uint64_t n)
{
    double l = sqrt((double)n);
    return l < 1 ? 1 : l > DEFAULT_NLIST_MAX ? DEFAULT_NLIST_MAX : (uint32_t)lrint(l);
}

uint32_t vl_ivf_default_nprobe(const vl_ivf *ix)
{
    if (ix->metric != VL_METRIC_IP)
        return ix->nlist; /* a bound: the adaptive search stops long before */
    uint32_t p = (ix->nlist + 3) / 4;
    return p < 8 ? (ix->nlist < 8 ? ix->nlist : 8) : p;
}

vl_status vl_ivf_quant_parse(const char *name, vl_ivf_quant *out)
{
    static const char *names[] = {"none", "sq8", "rabitq"};
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (vl_ivf_quant)i;
            return VL_OK;
        }
    return VL_ERR_ARG;
}

const char *vl_ivf_quant_name(vl_ivf_quant q)
{
    return q == VL_IVF_QUANT_NONE ? "none" : q == VL_IVF_QUANT_SQ8 ? "sq8" : "rabitq";
}

uint32_t vl_ivf_count(const vl_ivf *ix)
{
    return ix->count;
}
uint32_t vl_ivf_nlist(const vl_ivf *ix)
{
    return ix->nlist;
}
uint32_t vl_ivf_dim(const vl_ivf *ix)
{
    return ix->dim;
}
vl_metric vl_ivf_metric(const vl_ivf *ix)
{
    return ix->metric;
}
vl_ivf_quant vl_ivf_quant_of(const vl_ivf *ix)
{
    return ix->quant;
}
vl_ivf_list_info vl_ivf_list(const vl_ivf *ix, uint32_t list)
{
    return ix->lists[list];
}

size_t vl_ivf_memory_bytes(const vl_ivf *ix)
{
    size_t b = sizeof *ix + (size_t)ix->nlist * (ix->dim * sizeof(float) + sizeof *ix->lists);
    if (ix->sq_lo)
        b += 2 * (size_t)ix->dim * sizeof(float);
    if (ix->rot)
        b += (size_t)ix->rdim * (3 + ix->nlist + 1) * sizeof(float);
    return b + ix->body_len;
}

uint32_t vl_ivf_factors(const vl_ivf *ix)
{
    return ix->quant == VL_IVF_QUANT_NONE ? 0 : ix->quant == VL_IVF_QUANT_SQ8 ? 1 : 3;
}

static uint64_t code_bytes(const vl_ivf *ix, uint32_t count)
{
    switch (ix->quant) {
    case VL_IVF_QUANT_NONE: return (uint64_t)count * ix->dim * sizeof(float);
    case VL_IVF_QUANT_SQ8: return ((uint64_t)count * ix->dim + 3) & ~(uint64_t)3;
    default: return (((uint64_t)count + 31) / 32) * ix->nsub * 16;
    }
}

uint64_t vl_ivf_list_bytes(const vl_ivf *ix, uint32_t count)
{
    return (uint64_t)count * 4 * (1 + vl_ivf_factors(ix)) + code_bytes(ix, count);
}

/* Unpacked code bytes of one row while lists are (re)built. */
static size_t entry_code(const vl_ivf *ix)
{
    return ix->quant == VL_IVF_QUANT_NONE  ? (size_t)ix->dim * sizeof(float)
           : ix->quant == VL_IVF_QUANT_SQ8 ? ix->dim
                                           : ix->nsub;
}

static size_t entry_size(const vl_ivf *ix)
{
    return 4 + ((entry_code(ix) + 3) & ~(size_t)3) + 4 * (size_t)vl_ivf_factors(ix);
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* x for this index: a copy normalised for cosine (a zero vector stays). */
static const float *prepare(const vl_ivf *ix, const float *x, float *tmp)
{
    if (ix->metric != VL_METRIC_COSINE)
        return x;
    double nn = vl_dot_f64(x, x, ix->dim);
    double inv = nn > 0 ? 1 / sqrt(nn) : 0;
    for (uint32_t i = 0; i < ix->dim; i++)
        tmp[i] = (float)(x[i] * inv);
    return tmp;
}

vl_status vl_ivf_train(const vl_ivf_params *p, const float *vectors, uint32_t n, vl_ivf **out,
                       vl_error *err)
{
    if (p->dim == 0 || p->dim > VL_MAX_DIM)
        return vl_fail(err, VL_ERR_ARG, "ivf: dimension %u outside 1..%u", p->dim, VL_MAX_DIM);
    if ((unsigned)p->metric > VL_METRIC_IP || (unsigned)p->quant > VL_IVF_QUANT_RABITQ)
        return vl_fail(err, VL_ERR_ARG, "ivf: unknown metric or quantiser");
    if (n == 0)
        return vl_fail(err, VL_ERR_ARG, "ivf: training needs at least one vector");
    if (!all_finite(vectors, (size_t)n * p->dim))
        return vl_fail(err, VL_ERR_ARG, "ivf: training vectors must be finite");
    vl_ivf *ix = vl_calloc(1, sizeof *ix);
    ix->dim = p->dim;
    ix->metric = p->metric;
    ix->quant = p->quant;
    ix->seed = p->seed;
    ix->nlist = p->nlist ? p->nlist : vl_ivf_default_nlist(n);
    ix->nlist = ix->nlist > n ? n : ix->nlist;
    if (ix->quant == VL_IVF_QUANT_RABITQ) {
        ix->rdim = vl_ivf_rdim(p->dim);
        ix->nsub = ix->rdim / 4;
    }
    /* Training sample: a seeded subset when the set is large. */
    uint64_t cap = p->max_train ? p->max_train : (uint64_t)ix->nlist * VL_IVF_TRAIN_PER_LIST;
    uint32_t m = n < cap ? n : (uint32_t)(cap < ix->nlist ? ix->nlist : cap);
    float *sample = vl_malloc((size_t)m * p->dim * sizeof(float));
    uint64_t st = p->seed ^ 0x73616d706c65ull; /* "sample" */
    for (uint32_t i = 0; i < m; i++) {
        /* Reservoir-free choice: stride sampling with a seeded start keeps
         * the sample spread over the whole input in O(m). */
        uint64_t src = m == n ? i : ((uint64_t)i * n) / m + vl_ivf_rand(&st) % (n / m);
        float *dst = sample + (size_t)i * p->dim;
        const float *x = prepare(ix, vectors + src * p->dim, dst);
        if (x != dst)
            memcpy(dst, x, p->dim * sizeof(float));
    }
    ix->centroids = vl_malloc((size_t)ix->nlist * p->dim * sizeof(float));
    vl_ivf_kmeans(sample, m, p->dim, ix->nlist, p->iters ? p->iters : VL_IVF_DEFAULT_ITERS, p->seed,
                  ix->centroids);
    vl_ivf_train_code(ix, sample, m);
    free(sample);
    ix->lists = vl_calloc(ix->nlist, sizeof *ix->lists);
    ix->reach = VL_IVF_DEFAULT_REACH;
    ix->sq8_rerank = ix->quant == VL_IVF_QUANT_SQ8 ? VL_IVF_DEFAULT_SQ8_RERANK : 0;
    *out = ix;
    return VL_OK;
}

/* ---- encoding ------------------------------------------------------- */

static void encode(const vl_ivf *ix, const float *x, uint32_t list, uint8_t *e, float *y)
{
    uint32_t dim = ix->dim;
    uint8_t *code = e + 4;
    float *fac = (float *)(e + entry_size(ix) - 4 * vl_ivf_factors(ix));
    if (ix->quant == VL_IVF_QUANT_NONE) {
        memcpy(code, x, (size_t)dim * sizeof(float));
    } else if (ix->quant == VL_IVF_QUANT_SQ8) {
        double n2 = 0;
        for (uint32_t i = 0; i < dim; i++) {
            double c = rint(((double)x[i] - ix->sq_lo[i]) / ix->sq_step[i]);
            c = c < 0 ? 0 : (c > 255 ? 255 : c);
            code[i] = (uint8_t)(int8_t)(c - 128);
            double xh = (double)ix->sq_lo[i] + (double)ix->sq_step[i] * c;
            n2 += xh * xh;
        }
        fac[0] = (float)n2;
    } else {
        vl_ivf_rotate(ix, x, y);
        const float *rc = ix->rcent + (size_t)list * ix->rdim;
        double n2 = 0, sabs = 0, mr = 0, mcr = 0;
        memset(code, 0, ix->nsub);
        for (uint32_t j = 0; j < ix->rdim; j++) {
            double r = y[j] - rc[j];
            n2 += r * r;
            sabs += fabs(r);
            mr += (double)ix->rmu[j] * r;
            mcr += ((double)ix->rmu[j] - rc[j]) * r;
            if (r > 0)
                code[j / 4] |= (uint8_t)(1u << (j % 4));
        }
        fac[0] = (float)(ix->metric == VL_METRIC_IP ? mr : n2 - 2 * mcr);
        fac[1] = sabs > 0 ? (float)(n2 / sabs) : 0.0f;
        /* The spread of the estimate of <v, r> per unit |v| (RaBitQ's
         * bound): |r| sqrt(1 / <o_bar, o>^2 - 1) / sqrt(D - 1), with
         * <o_bar, o> = sum|r_j| / (sqrt(D) |r|). */
        double spread = sabs > 0 ? (double)ix->rdim * n2 * n2 / (sabs * sabs) - n2 : 0;
        fac[2] = (float)sqrt((spread > 0 ? spread : 0) / (ix->rdim - 1));
    }
}

/* ---- list regions: pack / unpack entries ---------------------------- */

static void pack_list(const vl_ivf *ix, const uint8_t *entries, uint32_t cnt, uint8_t *dst)
{
    size_t es = entry_size(ix), ec = entry_code(ix);
    uint32_t nf = vl_ivf_factors(ix);
    uint32_t *ids = (uint32_t *)dst;
    uint8_t *codes = dst + 4 * (size_t)cnt;
    float *fac = (float *)(codes + code_bytes(ix, cnt));
    for (uint32_t i = 0; i < cnt; i++) {
        const uint8_t *e = entries + i * es;
        memcpy(&ids[i], e, 4);
        for (uint32_t f = 0; f < nf; f++)
            memcpy(&fac[(size_t)f * cnt + i], e + es - 4 * (nf - f), 4);
        if (ix->quant != VL_IVF_QUANT_RABITQ)
            memcpy(codes + i * ec, e + 4, ec);
    }
    if (ix->quant != VL_IVF_QUANT_RABITQ)
        return;
    uint8_t *tmp = vl_calloc(32, ix->nsub);
    for (uint32_t b = 0; b * 32 < cnt; b++) {
        for (uint32_t v = 0; v < 32; v++) {
            uint32_t i = b * 32 + v;
            if (i < cnt)
                memcpy(tmp + (size_t)v * ix->nsub, entries + i * es + 4, ix->nsub);
            else
                memset(tmp + (size_t)v * ix->nsub, 0, ix->nsub);
        }
        vl_lut4_pack_block(tmp, ix->nsub, codes + (size_t)b * ix->nsub * 16);
    }
    free(tmp);
}

static void unpack_list(const vl_ivf *ix, const uint8_t *src, uint32_t cnt, uint8_t *entries)
{
    size_t es = entry_size(ix), ec = entry_code(ix);
    uint32_t nf = vl_ivf_factors(ix);
    const uint8_t *codes = src + 4 * (size_t)cnt;
    const uint8_t *fac = codes + code_bytes(ix, cnt);
    for (uint32_t i = 0; i < cnt; i++) {
        uint8_t *e = entries + i * es;
        memset(e, 0, es);
        memcpy(e, src + 4 * (size_t)i, 4);
        for (uint32_t f = 0; f < nf; f++)
            memcpy(e + es - 4 * (nf - f), fac + 4 * ((size_t)f * cnt + i), 4);
        if (ix->quant != VL_IVF_QUANT_RABITQ) {
            memcpy(e + 4, codes + i * ec, ec);
            continue;
        }
        const uint8_t *blk = codes + (size_t)(i / 32) * ix->nsub * 16;
        uint32_t v = i % 32;
        for (uint32_t m = 0; m < ix->nsub; m++) {
            uint8_t byte = blk[(m / 2) * 32 + (m % 2) * 16 + v % 16];
            e[4 + m] = v < 16 ? byte & 15 : byte >> 4;
        }
    }
}

vl_status vl_ivf_add(vl_ivf *ix, const float *vectors, uint32_t n, vl_error *err)
{
    if ((uint64_t)ix->count + n > UINT32_MAX)
        return vl_fail(err, VL_ERR_LIMIT, "ivf: more than %u rows", UINT32_MAX);
    if (!all_finite(vectors, (size_t)n * ix->dim))
        return vl_fail(err, VL_ERR_ARG, "ivf: vectors must be finite");
    if (n == 0)
        return VL_OK;
    size_t es = entry_size(ix);
    uint32_t total = ix->count + n;
    uint32_t *list_of = vl_malloc((size_t)n * sizeof *list_of);
    uint32_t *cnt = vl_calloc(ix->nlist, sizeof *cnt);
    uint8_t *fresh = vl_malloc((size_t)n * es);
    float *tmp = vl_malloc((size_t)ix->dim * sizeof *tmp);
    double *scratch = vl_malloc((size_t)ix->nlist * sizeof *scratch);
    float *rot = vl_malloc(((size_t)ix->rdim + 1) * sizeof *rot);
    for (uint32_t i = 0; i < n; i++) {
        const float *x = prepare(ix, vectors + (size_t)i * ix->dim, tmp);
        uint32_t l = vl_ivf_nearest(ix->centroids, ix->nlist, ix->dim, x, scratch);
        uint8_t *e = fresh + (size_t)i * es;
        memset(e, 0, es);
        uint32_t row = ix->count + i;
        memcpy(e, &row, 4);
        encode(ix, x, l, e, rot);
        list_of[i] = l;
        cnt[l]++;
    }
    /* Entries of every list in list order: old (decoded) then new. */
    uint64_t *start = vl_malloc(((size_t)ix->nlist + 1) * sizeof *start);
    start[0] = 0;
    for (uint32_t l = 0; l < ix->nlist; l++)
        start[l + 1] = start[l] + ix->lists[l].count + cnt[l];
    uint8_t *all = vl_malloc((size_t)total * es);
    uint64_t *fill = vl_malloc((size_t)ix->nlist * sizeof *fill);
    for (uint32_t l = 0; l < ix->nlist; l++) {
        if (ix->lists[l].count) /* no body before the first add */
            unpack_list(ix, ix->body + ix->lists[l].offset, ix->lists[l].count,
                        all + start[l] * es);
        fill[l] = start[l] + ix->lists[l].count;
    }
    for (uint32_t i = 0; i < n; i++)
        memcpy(all + (fill[list_of[i]]++) * es, fresh + (size_t)i * es, es);
    uint64_t off = 0;
    ix->max_count = 0;
    for (uint32_t l = 0; l < ix->nlist; l++) {
        uint32_t c = (uint32_t)(start[l + 1] - start[l]);
        ix->lists[l].offset = off;
        ix->lists[l].len = vl_ivf_list_bytes(ix, c);
        ix->lists[l].count = c;
        ix->max_count = c > ix->max_count ? c : ix->max_count;
        off = (off + ix->lists[l].len + VL_IVF_ALIGN - 1) & ~(uint64_t)(VL_IVF_ALIGN - 1);
    }
    free(ix->body);
    ix->body_len = off;
    ix->body = vl_aligned_alloc(off ? off : VL_IVF_ALIGN);
    memset(ix->body, 0, off);
    for (uint32_t l = 0; l < ix->nlist; l++)
        pack_list(ix, all + start[l] * es, ix->lists[l].count, ix->body + ix->lists[l].offset);
    ix->count = total;
    free(fill);
    free(all);
    free(start);
    free(scratch);
    free(rot);
    free(tmp);
    free(fresh);
    free(cnt);
    free(list_of);
    return VL_OK;
}

vl_status vl_ivf_build(const vl_ivf_params *p, const float *vectors, uint32_t n, vl_ivf **out,
                       vl_error *err)
{
    vl_status st = vl_ivf_train(p, vectors, n, out, err);
    if (st != VL_OK)
        return st;
    st = vl_ivf_add(*out, vectors, n, err);
    if (st != VL_OK) {
        vl_ivf_free(*out);
        *out = NULL;
        return st;
    }
    vl_ivf_calibrate(*out, vectors, n);
    return VL_OK;
}

void vl_ivf_free(vl_ivf *ix)
{
    if (!ix)
        return;
    free(ix->centroids);
    free(ix->sq_lo);
    free(ix->sq_step);
    free(ix->rot);
    free(ix->rcent);
    free(ix->rmu);
    free(ix->lists);
    free(ix->body);
    free(ix);
}

/* ---- search --------------------------------------------------------- */

/* The `keep` best candidates of a scan, kept lazily: candidates below the
 * threshold are appended, and when the buffer holds POOL_SLACK x keep a selection
 * keeps the best `keep` and tightens the threshold.  Amortised O(1) per
 * candidate, where a bounded heap paid a sift for nearly every row while
 * it filled (the heap was a quarter of the search time in perf). */
#define POOL_SLACK 4u
typedef struct {
    vl_candidate *buf;
    uint32_t n, keep;
    double thr;
} pool;

static int better(const vl_candidate *a, const vl_candidate *b)
{
    return a->dist < b->dist || (a->dist == b->dist && a->row < b->row);
}

/* Reorder c[0..n) so its `keep` best come first (quickselect). */
static void select_best(vl_candidate *c, uint32_t n, uint32_t keep)
{
    uint32_t lo = 0, hi = n;
    while (hi - lo > 1 && keep > lo && keep < hi) {
        vl_candidate piv = c[lo + (hi - lo - 1) / 2]; /* never the last: j < hi - 1 */
        uint32_t i = lo, j = hi - 1;
        for (;;) { /* Hoare partition: [lo, i) <= piv <= [j + 1, hi) */
            while (better(&c[i], &piv))
                i++;
            while (better(&piv, &c[j]))
                j--;
            if (i >= j)
                break;
            vl_candidate t = c[i];
            c[i++] = c[j];
            c[j--] = t;
        }
        if (keep <= j)
            hi = j + 1;
        else
            lo = j + 1;
    }
}

static void pool_shrink(pool *p)
{
    select_best(p->buf, p->n, p->keep);
    p->n = p->keep;
    double t = p->buf[0].dist;
    for (uint32_t i = 1; i < p->n; i++)
        t = p->buf[i].dist > t ? p->buf[i].dist : t;
    p->thr = t;
}

static int cmp_cand(const void *a, const void *b)
{
    return better(a, b) ? -1 : better(b, a);
}

/* Leave the best min(n, keep) candidates at the front, sorted if asked
 * (the candidates for re-ranking need no order). */
static void pool_finish(pool *p, int sorted)
{
    if (p->n > p->keep)
        pool_shrink(p);
    if (sorted)
        qsort(p->buf, p->n, sizeof *p->buf, cmp_cand);
}

/* The k-th best key in the pool (INFINITY while it holds fewer than k);
 * a pool that keeps k tightens its threshold to it. */
static double pool_kth(pool *p, uint32_t k)
{
    if (p->n < k)
        return INFINITY;
    select_best(p->buf, p->n, k);
    double t = p->buf[0].dist;
    for (uint32_t i = 1; i < k; i++)
        t = p->buf[i].dist > t ? p->buf[i].dist : t;
    if (p->keep == k) {
        p->n = k;
        p->thr = t;
    }
    return t;
}

typedef struct {
    const vl_ivf *ix;
    const vl_ivf_search_opts *o;
    const float *q; /* prepared query */
    uint32_t k;
    pool cand;    /* none: the k best; sq8, or a given re-rank depth: k * rerank estimates */
    int bounded;  /* rabitq re-ranked by its error bound into `best` */
    vl_topk best; /* bounded, and sq8: the k best exact keys so far */
    double *d;    /* BATCH or nlist scratch */
    /* sq8 */
    int8_t *wq;
    double ws, qb;
    /* |q - x|^2 = key_scale x the key the probe's radius comes from:
     * cosine keys are 1 - cos of unit vectors (scale 2), rabitq estimates
     * are |q - x|^2 already */
    double key_scale;
    /* rabitq */
    uint8_t *lut;
    double delta, bias;
    float err_spread, err_table; /* key error bound: err_spread f2 + err_table f1 */
} scan;

static inline int visible(const vl_ivf_search_opts *o, uint32_t row)
{
    if (o->visible && !((o->visible[row >> 6] >> (row & 63)) & 1))
        return 0;
    return !o->filter || o->filter(o->filter_ctx, row);
}

static inline void offer(scan *s, double key, uint32_t row)
{
    pool *p = &s->cand;
    if (key <= p->thr && visible(s->o, row)) {
        p->buf[p->n].dist = key;
        p->buf[p->n++].row = row;
        if (p->n == POOL_SLACK * p->keep)
            pool_shrink(p);
    }
}

static double exact(const vl_ivf *ix, const vl_ivf_search_opts *o, const float *q, uint32_t row)
{
    const float *x = o->rows ? o->rows + (size_t)row * ix->dim : o->vector(o->vector_ctx, row);
    if (ix->metric == VL_METRIC_L2)
        return vl_l2sq(q, x, ix->dim);
    if (ix->metric == VL_METRIC_IP)
        return -vl_dot(q, x, ix->dim);
    double nx = vl_dot(x, x, ix->dim);
    return nx > 0 ? 1 - vl_dot(q, x, ix->dim) / sqrt(nx) : 1;
}

static void scan_none(scan *s, const uint32_t *ids, uint32_t cnt)
{
    const vl_ivf *ix = s->ix;
    const float *rows = (const float *)(ids + cnt);
    for (uint32_t b = 0; b < cnt; b += BATCH) {
        uint32_t m = cnt - b < BATCH ? cnt - b : BATCH;
        const float *r = rows + (size_t)b * ix->dim;
        if (ix->metric == VL_METRIC_L2)
            vl_l2sq_batch(s->q, r, m, ix->dim, s->d);
        else
            vl_dot_batch(s->q, r, m, ix->dim, s->d);
        for (uint32_t i = 0; i < m; i++) {
            double key = ix->metric == VL_METRIC_L2       ? s->d[i]
                         : ix->metric == VL_METRIC_COSINE ? 1 - s->d[i]
                                                          : -s->d[i];
            offer(s, key, ids[b + i]);
        }
    }
}

static void scan_sq8(scan *s, const uint32_t *ids, uint32_t cnt)
{
    const vl_ivf *ix = s->ix;
    const vl_kernel_set *k = vl_kernels();
    const int8_t *codes = (const int8_t *)(ids + cnt);
    const float *n2 = (const float *)((const uint8_t *)codes + code_bytes(ix, cnt));
    int l2 = ix->metric == VL_METRIC_L2;
    for (uint32_t i = 0; i < cnt; i++) {
        double ip = s->qb + s->ws * k->dot_s8(s->wq, codes + (size_t)i * ix->dim, ix->dim);
        offer(s, l2 ? n2[i] - 2 * ip : -ip, ids[i]);
    }
}

/* The list's fast-scan table from the query vector v (rdim floats):
 * entry c of sub-code m is sum_t (bit t of c ? v[4m+t] : -v[4m+t]) plus
 * sum_t |v[4m+t]| (so it is >= 0), in steps of delta; bias undoes the
 * shift.  Written as two 4-entry halves and branch-free rounding so the
 * compiler vectorises it (it was a third of rabitq's search time). */
static void build_lut(scan *s, const float *v)
{
    uint32_t nsub = s->ix->nsub;
    float maxr = 0;
    double bias = 0;
    for (uint32_t m = 0; m < nsub; m++) {
        const float *a = v + 4 * m;
        float sa = fabsf(a[0]) + fabsf(a[1]) + fabsf(a[2]) + fabsf(a[3]);
        maxr = 2 * sa > maxr ? 2 * sa : maxr;
        bias -= sa;
    }
    float delta = maxr > 0 ? maxr / 255 : 1, inv = 1 / delta;
    for (uint32_t m = 0; m < nsub; m++) {
        const float *a = v + 4 * m;
        float lo[4], hi[4];
        for (uint32_t c = 0; c < 4; c++) {
            lo[c] = ((c & 1) ? a[0] : -a[0]) + ((c & 2) ? a[1] : -a[1]) + fabsf(a[0]) + fabsf(a[1]);
            hi[c] = ((c & 1) ? a[2] : -a[2]) + ((c & 2) ? a[3] : -a[3]) + fabsf(a[2]) + fabsf(a[3]);
        }
        uint8_t *t = s->lut + 16 * m;
        for (uint32_t c = 0; c < 16; c++) {
            float q = (lo[c & 3] + hi[c >> 2]) * inv + 0.5f;
            q = q > 0 ? (q < 255 ? q : 255) : 0; /* NaN (overflowing input) -> 0 */
            t[c] = (uint8_t)(int)q;
        }
    }
    s->delta = delta;
    s->bias = bias;
}

/* Bounded re-rank: rows whose lower bound (estimate minus error bound)
 * can still beat the k-th exact key so far are scored exactly now. */
static void rerank_bounded(scan *s, const float *key, const float *g1, const float *g2,
                           const uint32_t *ids, uint32_t m)
{
    float lb[32];
    float es = s->err_spread, et = s->err_table;
    for (uint32_t v = 0; v < m; v++)
        lb[v] = key[v] - es * g2[v] - et * g1[v];
    /* estimates of cosine rows are |q - x|^2 = 2 (1 - cos) of unit vectors */
    double scale = s->ix->metric == VL_METRIC_COSINE ? 2 : 1;
    double thr = scale * vl_topk_bound(&s->best);
    for (uint32_t v = 0; v < m; v++)
        if (lb[v] <= thr && visible(s->o, ids[v])) {
            vl_topk_push(&s->best, exact(s->ix, s->o, s->q, ids[v]), ids[v]);
            thr = scale * vl_topk_bound(&s->best);
        }
}

/* pkey: the list's probe key, |q - c|^2 (l2, cosine) or -<q, c> (ip).
 * Keys of a block are computed in float in a branch-free loop of 32 (the
 * compiler vectorises it) and only those under the pool's threshold are
 * offered: per-row scalar work was the largest cost once the table was
 * built per query (perf, debian nprobe 64). */
static void scan_rabitq(scan *s, double pkey, const uint32_t *ids, uint32_t cnt)
{
    const vl_ivf *ix = s->ix;
    const vl_kernel_set *k = vl_kernels();
    const uint8_t *blocks = (const uint8_t *)(ids + cnt);
    const float *f0 = (const float *)(blocks + code_bytes(ix, cnt)), *f1 = f0 + cnt, *f2 = f1 + cnt;
    float sg = ix->metric == VL_METRIC_IP ? -1.0f : 1.0f, two = ix->metric == VL_METRIC_IP ? 1 : 2;
    float pk = (float)pkey, dl = (float)s->delta, bs = (float)s->bias;
    uint32_t tot[32];
    float key[32];
    for (uint32_t b = 0; b * 32 < cnt; b++) {
        k->lut4_scan(blocks + (size_t)b * ix->nsub * 16, s->lut, ix->nsub, tot);
        uint32_t base = b * 32, m = cnt - base < 32 ? cnt - base : 32;
        const float *g0 = f0 + base, *g1 = f1 + base;
        if (m == 32)
            for (uint32_t v = 0; v < 32; v++)
                key[v] = pk + sg * g0[v] - two * g1[v] * (dl * (float)tot[v] + bs);
        else
            for (uint32_t v = 0; v < m; v++)
                key[v] = pk + sg * g0[v] - two * g1[v] * (dl * (float)tot[v] + bs);
        if (s->bounded) {
            rerank_bounded(s, key, g1, f2 + base, ids + base, m);
            continue;
        }
        for (uint32_t v = 0; v < m; v++)
            if (key[v] <= s->cand.thr)
                offer(s, key[v], ids[base + v]);
    }
}

static void prepare_query(scan *s)
{
    const vl_ivf *ix = s->ix;
    if (ix->quant == VL_IVF_QUANT_SQ8) {
        float *w = vl_malloc((size_t)ix->dim * sizeof *w);
        double qb = 0;
        for (uint32_t i = 0; i < ix->dim; i++) {
            qb += (double)s->q[i] * ((double)ix->sq_lo[i] + 128.0 * ix->sq_step[i]);
            w[i] = s->q[i] * ix->sq_step[i];
        }
        s->wq = vl_malloc(ix->dim);
        s->ws = vl_sq8_encode_s8(w, ix->dim, s->wq);
        s->qb = qb;
        free(w);
    } else if (ix->quant == VL_IVF_QUANT_RABITQ) {
        float *v = vl_malloc((size_t)ix->rdim * sizeof *v);
        s->lut = vl_malloc((size_t)ix->nsub * 16);
        vl_ivf_rotate(ix, s->q, v);
        double vv = 0;
        for (uint32_t j = 0; j < ix->rdim; j++) { /* one table for every list */
            v[j] -= ix->rmu[j];
            vv += (double)v[j] * v[j];
        }
        build_lut(s, v);
        free(v);
        double two = ix->metric == VL_METRIC_IP ? 1 : 2;
        s->err_spread = (float)(two * RABITQ_EPS0 * sqrt(vv));
        s->err_table = (float)(two * 3 * sqrt(ix->nsub / 12.0) * s->delta);
        if (!s->bounded)
            s->key_scale = 1;
    }
}

/* ---- the lists a search scans -------------------------------------- */

/* Lists by probe key, nearest first, popped from a binary min-heap: an
 * adaptive search looks at a few lists of many, so heapify (O(nlist)) and
 * pops beat sorting every list. */
static void heap_down(vl_candidate *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        if (l < n && better(&h[l], &h[m]))
            m = l;
        if (l + 1 < n && better(&h[l + 1], &h[m]))
            m = l + 1;
        if (m == i)
            return;
        vl_candidate t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static vl_candidate heap_pop(vl_candidate *h, uint32_t *n)
{
    vl_candidate top = h[0];
    h[0] = h[--*n];
    heap_down(h, *n, 0);
    return top;
}

static void order_lists(const vl_ivf *ix, const float *q, double *d, vl_candidate *h)
{
    if (ix->metric == VL_METRIC_IP)
        vl_dot_batch(q, ix->centroids, ix->nlist, ix->dim, d);
    else
        vl_l2sq_batch(q, ix->centroids, ix->nlist, ix->dim, d);
    for (uint32_t l = 0; l < ix->nlist; l++)
        h[l] = (vl_candidate){ix->metric == VL_METRIC_IP ? -d[l] : d[l], l};
    for (uint32_t i = ix->nlist / 2; i-- > 0;)
        heap_down(h, ix->nlist, i);
}

/* SQ8 estimates rank nearby rows well but are off in absolute terms (the
 * int8 query weights err in proportion to |q|), so the probe's radius
 * comes from exact keys: after each list, the pool's k best estimates not
 * scored yet are scored exactly into `best` (ROW_SCORED marks them). */
#define ROW_SCORED (1ull << 63)
static void score_sq8_best(scan *s)
{
    pool *p = &s->cand;
    uint32_t m = p->n < s->k ? p->n : s->k;
    select_best(p->buf, p->n, m);
    for (uint32_t i = 0; i < m; i++)
        if (!(p->buf[i].row & ROW_SCORED)) {
            uint32_t row = (uint32_t)p->buf[i].row;
            vl_topk_push(&s->best, exact(s->ix, s->o, s->q, row), row);
            p->buf[i].row |= ROW_SCORED;
        }
}

/* The Euclidean radius of the k-th best key so far, between the prepared
 * (unit, for cosine) query and rows: INFINITY while fewer than k are known. */
static double kth_radius(scan *s)
{
    double key;
    if (s->ix->quant == VL_IVF_QUANT_SQ8) {
        score_sq8_best(s);
        key = vl_topk_bound(&s->best);
    } else {
        key = s->bounded ? vl_topk_bound(&s->best) : pool_kth(&s->cand, s->k);
    }
    if (!isfinite(key))
        return INFINITY;
    double r2 = s->key_scale * key;
    return sqrt(r2 > 0 ? r2 : 0);
}

/* Whether the adaptive search can skip list l (probe key dl) when the
 * first list scanned was c1 (key d1): every row of l lies on c_l's side of
 * the bisector of c_1 and c_l, at distance (dl - d1) / (2 |c_l - c_1|)
 * from q at least; l is skipped when that exceeds ix->reach x the k-th
 * radius.  *stop: no later list can qualify either, since the bound is at
 * least (sqrt(dl) - sqrt(d1)) / 2 (triangle inequality), which grows with
 * the probe order. */
static int skip_list(const vl_ivf *ix, uint32_t l, double dl, uint32_t c1, double d1, double r,
                     int *stop)
{
    *stop = 0;
    if (!isfinite(r))
        return 0;
    double reach = (double)ix->reach * r;
    if ((sqrt(dl > 0 ? dl : 0) - sqrt(d1 > 0 ? d1 : 0)) / 2 > reach) {
        *stop = 1;
        return 1;
    }
    double cc =
        vl_l2sq(ix->centroids + (size_t)l * ix->dim, ix->centroids + (size_t)c1 * ix->dim, ix->dim);
    return cc > 0 && (dl - d1) / (2 * sqrt(cc)) > reach;
}

static void scan_list(scan *s, uint32_t l, double pkey)
{
    const vl_ivf *ix = s->ix;
    const vl_ivf_list_info *li = &ix->lists[l];
    const uint32_t *ids = (const uint32_t *)(ix->body + li->offset);
    if (li->count == 0)
        return;
    if (ix->quant == VL_IVF_QUANT_NONE)
        scan_none(s, ids, li->count);
    else if (ix->quant == VL_IVF_QUANT_SQ8)
        scan_sq8(s, ids, li->count);
    else
        scan_rabitq(s, pkey, ids, li->count);
}

/* Scans the given number of lists, nearest first, or (nprobe 0, l2 and
 * cosine) adaptively; returns how many it scanned. */
static uint32_t scan_lists(scan *s, vl_candidate *h)
{
    const vl_ivf *ix = s->ix;
    int adaptive = !s->o->nprobe && ix->metric != VL_METRIC_IP;
    uint32_t cap = s->o->nprobe ? s->o->nprobe : vl_ivf_default_nprobe(ix);
    cap = cap > ix->nlist ? ix->nlist : cap;
    uint32_t left = ix->nlist, scanned = 0, c1 = 0;
    double d1 = 0;
    while (left && scanned < cap) {
        vl_candidate c = heap_pop(h, &left);
        uint32_t l = (uint32_t)c.row;
        int stop = 0;
        if (adaptive && scanned && skip_list(ix, l, c.dist, c1, d1, kth_radius(s), &stop)) {
            if (stop)
                break;
            continue;
        }
        if (!scanned) {
            c1 = l;
            d1 = c.dist;
        }
        scan_list(s, l, c.dist);
        scanned++;
    }
    return scanned;
}

vl_status vl_ivf_search(const vl_ivf *ix, const float *query, uint32_t k,
                        const vl_ivf_search_opts *opt, vl_ivf_hit *out, uint32_t *nout,
                        vl_error *err)
{
    static const vl_ivf_search_opts none_opts;
    const vl_ivf_search_opts *o = opt ? opt : &none_opts;
    *nout = 0;
    if (o->lists_scanned)
        *o->lists_scanned = 0;
    if (k == 0)
        return vl_fail(err, VL_ERR_ARG, "ivf search: k must be at least 1");
    if (!all_finite(query, ix->dim))
        return vl_fail(err, VL_ERR_ARG, "ivf search: query must be finite");
    int compressed = ix->quant != VL_IVF_QUANT_NONE;
    if (compressed && !o->rows && !o->vector)
        return vl_fail(err, VL_ERR_ARG, "ivf search: %s codes need float32 rows to re-rank",
                       vl_ivf_quant_name(ix->quant));
    if (ix->count == 0)
        return VL_OK;
    scan s = {.ix = ix, .o = o, .k = k, .key_scale = ix->metric == VL_METRIC_COSINE ? 2 : 1};
    float *qbuf = vl_malloc((size_t)ix->dim * sizeof *qbuf);
    s.q = prepare(ix, query, qbuf);
    s.d = vl_malloc((size_t)(ix->nlist > BATCH ? ix->nlist : BATCH) * sizeof *s.d);
    vl_candidate *heap = vl_malloc((size_t)ix->nlist * sizeof *heap);
    order_lists(ix, s.q, s.d, heap);
    s.bounded = ix->quant == VL_IVF_QUANT_RABITQ && !o->rerank;
    uint64_t cap =
        !compressed || s.bounded ? k : (uint64_t)k * (o->rerank ? o->rerank : ix->sq8_rerank);
    cap = cap > ix->count ? ix->count : cap;
    cap = cap < k ? k : cap;
    s.cand.keep = (uint32_t)cap;
    s.cand.thr = INFINITY;
    s.cand.buf = vl_malloc(POOL_SLACK * (size_t)cap * sizeof *s.cand.buf);
    vl_candidate *best = vl_malloc((size_t)k * sizeof *best);
    vl_topk_init(&s.best, best, k);
    prepare_query(&s);
    uint32_t scanned = scan_lists(&s, heap);
    if (o->lists_scanned)
        *o->lists_scanned = scanned;
    vl_candidate *res;
    uint32_t nres;
    if (s.bounded) {
        vl_topk_sort(&s.best);
        res = s.best.items;
        nres = s.best.n;
    } else {
        pool_finish(&s.cand, !compressed);
        if (compressed) { /* exact distances of the candidates, best k kept */
            for (uint32_t i = 0; i < s.cand.n; i++) {
                s.cand.buf[i].row &= ~ROW_SCORED;
                s.cand.buf[i].dist = exact(ix, o, s.q, (uint32_t)s.cand.buf[i].row);
            }
            s.cand.keep = k;
            pool_finish(&s.cand, 1);
        }
        res = s.cand.buf;
        nres = s.cand.n;
    }
    uint32_t m = nres < k ? nres : k;
    for (uint32_t i = 0; i < m; i++) {
        out[i].row = (uint32_t)res[i].row;
        out[i].dist = (float)res[i].dist;
    }
    *nout = m;
    free(best);
    free(s.cand.buf);
    free(heap);
    free(s.d);
    free(s.wq);
    free(s.lut);
    free(qbuf);
    return VL_OK;
}
