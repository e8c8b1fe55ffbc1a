/*
 * f32_avx512.c - float32 kernels for x86-64 AVX-512 F (compiled with the
 * avx512 flags in the Makefile; called only after dispatch.c saw
 * F/BW/VL/DQ in CPUID and the opmask/ZMM state enabled in XCR0).
 *
 * Decisions:
 *  - Four chains of 16 lanes (64 floats per step) hide FMA latency; the
 *    last dim % 16 elements are one masked load, which never touches memory
 *    past the row (masked lanes do not fault).
 *  - The chains are added in float, the 16 lanes widened to double and
 *    reduced in double.  On 0..255 integer data a lane sums at most dim / 16
 *    squared differences of at most 65025: exact up to 4100 dimensions.
 *  - The batch form scores rows one after the other: the query stays in L1
 *    and the row stream is sequential, which the hardware prefetcher follows
 *    at memory bandwidth (bench/kernels_bench.c measures it).
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

static double reduce(__m512 a, __m512 b, __m512 c, __m512 d)
{
    __m512 v = _mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d));
    __m512d s = _mm512_add_pd(
        _mm512_cvtps_pd(_mm512_castps512_ps256(v)),
        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    return _mm512_reduce_add_pd(s);
}

static inline double l2sq(const float *a, const float *b, uint32_t dim)
{
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
    uint32_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        acc0 = _mm512_fmadd_ps(d0, d0, acc0);
        acc1 = _mm512_fmadd_ps(d1, d1, acc1);
        acc2 = _mm512_fmadd_ps(d2, d2, acc2);
        acc3 = _mm512_fmadd_ps(d3, d3, acc3);
    }
    for (; i + 16 <= dim; i += 16) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        acc1 = _mm512_fmadd_ps(d0, d0, acc1);
    }
    if (i < dim) {
        __mmask16 m = (__mmask16)((1u << (dim - i)) - 1);
        __m512 d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        acc2 = _mm512_fmadd_ps(d0, d0, acc2);
    }
    return reduce(acc0, acc1, acc2, acc3);
}

static inline double dot(const float *a, const float *b, uint32_t dim)
{
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
    uint32_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
        acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), acc2);
        acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), acc3);
    }
    for (; i + 16 <= dim; i += 16)
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc1);
    if (i < dim) {
        __mmask16 m = (__mmask16)((1u << (dim - i)) - 1);
        acc2 =
            _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc2);
    }
    return reduce(acc0, acc1, acc2, acc3);
}

double vl_l2sq_avx512(const float *a, const float *b, uint32_t dim)
{
    return l2sq(a, b, dim);
}

double vl_dot_avx512(const float *a, const float *b, uint32_t dim)
{
    return dot(a, b, dim);
}

void vl_l2sq_batch_avx512(const float *q, const float *rows, uint32_t n, uint32_t dim, double *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = l2sq(q, rows + (size_t)i * dim, dim);
}

void vl_dot_batch_avx512(const float *q, const float *rows, uint32_t n, uint32_t dim, double *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = dot(q, rows + (size_t)i * dim, dim);
}
#endif
