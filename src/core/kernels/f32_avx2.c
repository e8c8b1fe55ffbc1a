/*
 * f32_avx2.c - float32 kernels for x86-64 AVX2 + FMA (compiled with
 * -mavx2 -mfma; called only after dispatch.c saw both in CPUID and the YMM
 * state enabled in XCR0).
 *
 * Decisions:
 *  - Four chains of 8 lanes (32 floats per step): an FMA's latency is about
 *    four issue slots, so fewer chains leave the unit idle.  The last
 *    dim % 8 elements are read with a masked load (no scalar tail, no read
 *    past the row).
 *  - The chains are added in float, then the 8 lanes are widened to double
 *    and reduced in double.  On 0..255 integer data a lane sums at most
 *    dim / 8 squared differences of at most 65025, so distances are exact up
 *    to 2000 dimensions.
 *  - The batch form scores rows one after the other: the query stays in L1
 *    and the row stream is sequential, which the hardware prefetcher follows
 *    at full memory bandwidth (bench/kernels_bench.c measures it).
 *  - Accuracy: within VL_KERNEL_F32_TOL(dim) of the double reference
 *    (relative to sum |a_i b_i|, or to the distance for L2), as
 *    tests/unit/kernel_checks.h asserts.  Overflow and underflow are not
 *    checked here but once per result in guard.c: a result that is inf,
 *    NaN or below 2^-64 is recomputed in double, which costs two compares
 *    per row on the fast path (kernels.h).
 */
#include "core/kernels/paths.h"

#ifdef VL_KERNELS_X86
#include <immintrin.h>

static __m256i tail_mask(uint32_t r)
{
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - r));
}

static double reduce(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 v = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
    __m256d s = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                              _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}

static inline double l2sq(const float *a, const float *b, uint32_t dim)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    uint32_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        acc0 = _mm256_fmadd_ps(d0, d0, acc0);
        acc1 = _mm256_fmadd_ps(d1, d1, acc1);
        acc2 = _mm256_fmadd_ps(d2, d2, acc2);
        acc3 = _mm256_fmadd_ps(d3, d3, acc3);
    }
    for (; i + 8 <= dim; i += 8) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        acc1 = _mm256_fmadd_ps(d0, d0, acc1);
    }
    if (i < dim) {
        __m256i m = tail_mask(dim - i);
        __m256 d0 = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
        acc2 = _mm256_fmadd_ps(d0, d0, acc2);
    }
    return reduce(acc0, acc1, acc2, acc3);
}

static inline double dot(const float *a, const float *b, uint32_t dim)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    uint32_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= dim; i += 8)
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc1);
    if (i < dim) {
        __m256i m = tail_mask(dim - i);
        acc2 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), acc2);
    }
    return reduce(acc0, acc1, acc2, acc3);
}

double vl_l2sq_avx2(const float *a, const float *b, uint32_t dim)
{
    return l2sq(a, b, dim);
}

double vl_dot_avx2(const float *a, const float *b, uint32_t dim)
{
    return dot(a, b, dim);
}

void vl_l2sq_batch_avx2(const float *q, const float *rows, uint32_t n, uint32_t dim, double *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = l2sq(q, rows + (size_t)i * dim, dim);
}

void vl_dot_batch_avx2(const float *q, const float *rows, uint32_t n, uint32_t dim, double *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = dot(q, rows + (size_t)i * dim, dim);
}
#endif
