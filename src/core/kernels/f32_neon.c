/*
 * f32_neon.c - float32 kernels for arm64 Advanced SIMD (baseline on every
 * arm64 CPU, so no extra compiler flags).
 *
 * Decisions:
 *  - Four chains of 4 lanes (16 floats per step) hide the FMLA latency;
 *    the last dim % 4 elements are summed in double in C (NEON has no
 *    masked loads, and reading past the row could cross into an unmapped
 *    page).
 *  - Each chain is widened to double before the chains are added: with only
 *    4 lanes per register, adding chains in float would let integer-valued
 *    partials pass 2^24 at about 1000 dimensions; widened, 16 partials of
 *    dim / 16 terms keep 0..255 data exact up to 4100 dimensions.
 *  - The batch form scores rows one after the other (the query stays in L1,
 *    the row stream is sequential).
 *  - Accuracy: within VL_KERNEL_F32_TOL(dim) of the double reference
 *    (relative to sum |a_i b_i|, or to the distance for L2), as
 *    tests/unit/kernel_checks.h asserts.  Overflow and underflow are not
 *    checked here but once per result in guard.c: a result that is inf,
 *    NaN or below 2^-64 is recomputed in double, which costs two compares
 *    per row on the fast path (kernels.h).
 */
#include "core/kernels/paths.h"

#ifdef VL_KERNELS_NEON
#include <arm_neon.h>

static inline float64x2_t widen(float32x4_t v)
{
    return vaddq_f64(vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v));
}

static inline double reduce(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d)
{
    return vaddvq_f64(vaddq_f64(vaddq_f64(widen(a), widen(b)), vaddq_f64(widen(c), widen(d))));
}

static inline double l2sq(const float *a, const float *b, uint32_t dim)
{
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    uint32_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
        float32x4_t d1 = vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        float32x4_t d2 = vsubq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        float32x4_t d3 = vsubq_f32(vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
        acc0 = vfmaq_f32(acc0, d0, d0);
        acc1 = vfmaq_f32(acc1, d1, d1);
        acc2 = vfmaq_f32(acc2, d2, d2);
        acc3 = vfmaq_f32(acc3, d3, d3);
    }
    for (; i + 4 <= dim; i += 4) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, d0, d0);
    }
    double sum = reduce(acc0, acc1, acc2, acc3);
    for (; i < dim; i++) {
        double d = (double)a[i] - (double)b[i];
        sum += d * d;
    }
    return sum;
}

static inline double dot(const float *a, const float *b, uint32_t dim)
{
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    uint32_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        acc2 = vfmaq_f32(acc2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        acc3 = vfmaq_f32(acc3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= dim; i += 4)
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i), vld1q_f32(b + i));
    double sum = reduce(acc0, acc1, acc2, acc3);
    for (; i < dim; i++)
        sum += (double)a[i] * (double)b[i];
    return sum;
}

double vl_l2sq_neon(const float *a, const float *b, uint32_t dim)
{
    return l2sq(a, b, dim);
}

double vl_dot_neon(const float *a, const float *b, uint32_t dim)
{
    return dot(a, b, dim);
}

void vl_l2sq_batch_neon(const float *q, const float *rows, uint32_t n, uint32_t dim, double *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = l2sq(q, rows + (size_t)i * dim, dim);
}

void vl_dot_batch_neon(const float *q, const float *rows, uint32_t n, uint32_t dim, double *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = dot(q, rows + (size_t)i * dim, dim);
}
#endif
