/* distance.c - see distance.h for the numeric decisions. */
#include "core/distance.h"

#include <stddef.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VL_HAVE_X86 1
#endif

double vl_l2sq_scalar(const float *a, const float *b, uint32_t dim)
{
    double acc = 0.0;
    for (uint32_t i = 0; i < dim; i++) {
        double d = (double)a[i] - (double)b[i];
        acc += d * d;
    }
    return acc;
}

double vl_dot_scalar(const float *a, const float *b, uint32_t dim)
{
    double acc = 0.0;
    for (uint32_t i = 0; i < dim; i++)
        acc += (double)a[i] * (double)b[i];
    return acc;
}

#ifdef VL_HAVE_X86
__attribute__((target("avx2,fma"))) static double hsum_double(__m256 v)
{
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    __m256d s = _mm256_add_pd(lo, hi);
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(t) + _mm_cvtsd_f64(_mm_unpackhi_pd(t, t));
}

__attribute__((target("avx2,fma"))) static double l2sq_avx2(const float *a, const float *b,
                                                            uint32_t dim)
{
    /* Four accumulators: an FMA's latency is four of its issue slots, so
     * fewer chains would leave the unit idle. */
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
        acc0 = _mm256_fmadd_ps(d0, d0, acc0);
    }
    /* Lanes combine in float (exact while each stays below 2^24: integer
     * data up to ~2000 dimensions), then reduce in double. */
    double sum = hsum_double(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < dim; i++) {
        double d = (double)a[i] - (double)b[i];
        sum += d * d;
    }
    return sum;
}

__attribute__((target("avx2,fma"))) static double dot_avx2(const float *a, const float *b,
                                                           uint32_t dim)
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
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    /* Lanes combine in float (exact while each stays below 2^24: integer
     * data up to ~2000 dimensions), then reduce in double. */
    double sum = hsum_double(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < dim; i++)
        sum += (double)a[i] * (double)b[i];
    return sum;
}

static int cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

vl_distance_fn vl_l2sq_avx2(void)
{
    return cpu_has_avx2() ? l2sq_avx2 : NULL;
}

vl_distance_fn vl_dot_avx2(void)
{
    return cpu_has_avx2() ? dot_avx2 : NULL;
}
#else
vl_distance_fn vl_l2sq_avx2(void)
{
    return NULL;
}

vl_distance_fn vl_dot_avx2(void)
{
    return NULL;
}
#endif

static vl_distance_fn l2sq_impl = vl_l2sq_scalar;
static vl_distance_fn dot_impl = vl_dot_scalar;
static const char *kernel_name = "scalar";

/* Runs before main(): the choice is made once, with no locking on the hot
 * path, and VL_FORCE_SCALAR=1 in the environment pins the fallback. */
__attribute__((constructor)) static void choose_kernels(void)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++)
        if (__builtin_strcmp(*e, "VL_FORCE_SCALAR=1") == 0)
            return;
    if (vl_l2sq_avx2() && vl_dot_avx2()) {
        l2sq_impl = vl_l2sq_avx2();
        dot_impl = vl_dot_avx2();
        kernel_name = "avx2+fma";
    }
}

double vl_l2sq(const float *a, const float *b, uint32_t dim)
{
    return l2sq_impl(a, b, dim);
}

double vl_dot(const float *a, const float *b, uint32_t dim)
{
    return dot_impl(a, b, dim);
}

const char *vl_distance_kernel_name(void)
{
    return kernel_name;
}
