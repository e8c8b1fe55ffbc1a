/*
 * ivf_train.c - training of the IVF index: k-means for the coarse
 * quantiser, the SQ8 ranges and the RaBitQ rotation.
 *
 * Decisions:
 *  - Random init (distinct sampled vectors, seeded), then a bounded number
 *    of Lloyd iterations that stops early when no assignment changes.
 *    k-means++ costs a full pass per centroid before Lloyd starts; with
 *    10 iterations on real data random init reached the same recall at
 *    equal nprobe in our runs, and build time counts against hnswlib.
 *  - Assignment uses the batched float32 L2 kernel (one query against all
 *    centroids); sums are accumulated in double so a large list's mean
 *    does not drift.
 *  - Empty clusters are repaired after every iteration by splitting the
 *    largest cluster: the empty centroid becomes a copy of the big one
 *    and both are pushed apart by a relative 1/1024 per coordinate in
 *    opposite directions, so the next assignment divides that cluster.
 *  - SQ8: per-dimension min and step = (max - min) / 255 over the training
 *    vectors (step 1 when a dimension is constant).  Byte-valued data
 *    (SIFT, Fashion-MNIST) gets step <= 1 and is stored without loss.
 *  - RaBitQ rotation: three rounds of random signs and a Walsh-Hadamard
 *    transform over the input zero-padded to rdim = a power of two
 *    (H D3 H D2 H D1 / rdim^1.5, orthogonal).  A dense Gaussian rotation
 *    cost rdim x dim multiply-adds per query, more than the whole list scan
 *    at 784 dimensions (perf: a third of fashion-mnist search time); this
 *    costs 3 rdim log2(rdim) adds.  The price is padding: 784 -> 1024 and
 *    384 -> 512 bits per code.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/index/ivf_internal.h"
#include "core/kernels/kernels.h"
#include "util/alloc.h"

uint64_t vl_ivf_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t vl_ivf_nearest(const float *centroids, uint32_t k, uint32_t dim, const float *x,
                        double *scratch)
{
    vl_l2sq_batch(x, centroids, k, dim, scratch);
    uint32_t best = 0;
    for (uint32_t j = 1; j < k; j++)
        if (scratch[j] < scratch[best])
            best = j;
    return best;
}

static void repair_empty(float *cent, uint32_t *cnt, uint32_t k, uint32_t dim)
{
    const float eps = 1.0f / 1024;
    for (uint32_t j = 0; j < k; j++) {
        if (cnt[j] > 0)
            continue;
        uint32_t big = 0;
        for (uint32_t b = 1; b < k; b++)
            if (cnt[b] > cnt[big])
                big = b;
        if (cnt[big] < 2)
            return;
        float *cj = cent + (size_t)j * dim, *cb = cent + (size_t)big * dim;
        for (uint32_t i = 0; i < dim; i++) {
            float v = cb[i];
            cj[i] = (i % 2 ? v * (1 + eps) : v * (1 - eps));
            cb[i] = (i % 2 ? v * (1 - eps) : v * (1 + eps));
        }
        cnt[j] = cnt[big] / 2;
        cnt[big] -= cnt[j];
    }
}

void vl_ivf_kmeans(const float *x, uint32_t n, uint32_t dim, uint32_t k, uint32_t iters,
                   uint64_t seed, float *cent)
{
    uint64_t st = seed ^ 0x6b6d65616e73ull; /* "kmeans" */
    uint32_t *idx = vl_malloc((size_t)n * sizeof *idx);
    for (uint32_t i = 0; i < n; i++)
        idx[i] = i;
    for (uint32_t j = 0; j < k; j++) { /* partial Fisher-Yates: k distinct rows */
        uint32_t r = j + (uint32_t)(vl_ivf_rand(&st) % (n - j));
        uint32_t t = idx[j];
        idx[j] = idx[r];
        idx[r] = t;
        memcpy(cent + (size_t)j * dim, x + (size_t)idx[j] * dim, (size_t)dim * sizeof *cent);
    }
    uint32_t *assign = idx; /* reused: every entry is overwritten below */
    for (uint32_t i = 0; i < n; i++)
        assign[i] = UINT32_MAX;
    double *d = vl_malloc((size_t)k * sizeof *d);
    double *sum = vl_malloc((size_t)k * dim * sizeof *sum);
    uint32_t *cnt = vl_malloc((size_t)k * sizeof *cnt);
    for (uint32_t it = 0; it < iters; it++) {
        uint32_t changed = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t a = vl_ivf_nearest(cent, k, dim, x + (size_t)i * dim, d);
            changed += a != assign[i];
            assign[i] = a;
        }
        if (changed == 0)
            break;
        memset(sum, 0, (size_t)k * dim * sizeof *sum);
        memset(cnt, 0, (size_t)k * sizeof *cnt);
        for (uint32_t i = 0; i < n; i++) {
            double *s = sum + (size_t)assign[i] * dim;
            const float *v = x + (size_t)i * dim;
            for (uint32_t t = 0; t < dim; t++)
                s[t] += v[t];
            cnt[assign[i]]++;
        }
        for (uint32_t j = 0; j < k; j++)
            if (cnt[j] > 0)
                for (uint32_t t = 0; t < dim; t++)
                    cent[(size_t)j * dim + t] = (float)(sum[(size_t)j * dim + t] / cnt[j]);
        repair_empty(cent, cnt, k, dim);
    }
    free(cnt);
    free(sum);
    free(d);
    free(idx);
}

static void train_sq8(vl_ivf *ix, const float *x, uint32_t n)
{
    uint32_t dim = ix->dim;
    ix->sq_lo = vl_malloc((size_t)dim * sizeof(float));
    ix->sq_step = vl_malloc((size_t)dim * sizeof(float));
    for (uint32_t t = 0; t < dim; t++) {
        float lo = x[t], hi = x[t];
        for (uint32_t i = 1; i < n; i++) {
            float v = x[(size_t)i * dim + t];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        double step = ((double)hi - lo) / 255.0;
        ix->sq_lo[t] = lo;
        ix->sq_step[t] = step > 0 && isfinite(step) && (float)step > 0 ? (float)step : 1.0f;
    }
}

uint32_t vl_ivf_rdim(uint32_t dim)
{
    uint32_t r = 8;
    while (r < dim)
        r *= 2;
    return r;
}

static void train_rotation(vl_ivf *ix)
{
    uint64_t st = ix->seed ^ 0x726f74617465ull; /* "rotate" */
    ix->rot = vl_malloc(3 * (size_t)ix->rdim * sizeof(float));
    for (size_t i = 0; i < 3 * (size_t)ix->rdim; i++)
        ix->rot[i] = (vl_ivf_rand(&st) >> 63) ? -1.0f : 1.0f;
}

/* In-place unnormalised Walsh-Hadamard transform of n (a power of 2). */
static void fht(float *a, uint32_t n)
{
    for (uint32_t h = 1; h < n; h *= 2)
        for (uint32_t i = 0; i < n; i += 2 * h)
            for (uint32_t j = i; j < i + h; j++) {
                float u = a[j], v = a[j + h];
                a[j] = u + v;
                a[j + h] = u - v;
            }
}

void vl_ivf_rotate(const vl_ivf *ix, const float *x, float *y)
{
    uint32_t n = ix->rdim;
    memcpy(y, x, (size_t)ix->dim * sizeof *y);
    memset(y + ix->dim, 0, (size_t)(n - ix->dim) * sizeof *y);
    for (uint32_t r = 0; r < 3; r++) {
        const float *sg = ix->rot + (size_t)r * n;
        for (uint32_t j = 0; j < n; j++)
            y[j] *= sg[j];
        fht(y, n);
    }
    float scale = (float)(1.0 / ((double)n * sqrt((double)n)));
    for (uint32_t j = 0; j < n; j++)
        y[j] *= scale;
}

void vl_ivf_rotate_centroids(vl_ivf *ix)
{
    ix->rcent = vl_malloc((size_t)ix->nlist * ix->rdim * sizeof(float));
    for (uint32_t l = 0; l < ix->nlist; l++)
        vl_ivf_rotate(ix, ix->centroids + (size_t)l * ix->dim, ix->rcent + (size_t)l * ix->rdim);
}

void vl_ivf_train_code(vl_ivf *ix, const float *x, uint32_t n)
{
    if (ix->quant == VL_IVF_QUANT_SQ8)
        train_sq8(ix, x, n);
    if (ix->quant == VL_IVF_QUANT_RABITQ) {
        train_rotation(ix);
        vl_ivf_rotate_centroids(ix);
        ix->rmu = vl_malloc((size_t)ix->rdim * sizeof(float));
        for (uint32_t j = 0; j < ix->rdim; j++) {
            double m = 0;
            for (uint32_t l = 0; l < ix->nlist; l++)
                m += ix->rcent[(size_t)l * ix->rdim + j];
            ix->rmu[j] = (float)(m / ix->nlist);
        }
    }
}
