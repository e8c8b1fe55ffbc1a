/* test_distance.c - distance kernels against a double reference, SIMD
 * against scalar, and exactness on integer-valued data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/distance.h"

static uint32_t rng = 12345u;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static float rnd_unit(void)
{
    return (float)((double)rnd() / 4294967295.0 * 2.0 - 1.0);
}

static double ref_l2sq(const float *a, const float *b, uint32_t dim)
{
    long double acc = 0;
    for (uint32_t i = 0; i < dim; i++) {
        long double d = (long double)a[i] - (long double)b[i];
        acc += d * d;
    }
    return (double)acc;
}

static double ref_dot(const float *a, const float *b, uint32_t dim)
{
    long double acc = 0;
    for (uint32_t i = 0; i < dim; i++)
        acc += (long double)a[i] * (long double)b[i];
    return (double)acc;
}

/* |got - want| within rel of the magnitude of the terms summed. */
static void assert_close(double got, double want, double scale, double rel, const char *what,
                         uint32_t dim)
{
    double tol = rel * (scale > 1e-30 ? scale : 1e-30);
    if (!(fabs(got - want) <= tol))
        fail_msg("%s dim %u: got %.17g want %.17g (tol %g)", what, dim, got, want, tol);
}

/* Sum of |a_i b_i|: the scale the dot product's rounding error is relative to. */
static double abs_dot(const float *a, const float *b, uint32_t dim)
{
    double s = 0;
    for (uint32_t i = 0; i < dim; i++)
        s += fabs((double)a[i] * (double)b[i]);
    return s;
}

static void check_dim(uint32_t dim, float *a, float *b)
{
    for (uint32_t i = 0; i < dim; i++) {
        a[i] = rnd_unit() * 10.0f;
        b[i] = rnd_unit() * 10.0f;
    }
    double l2 = ref_l2sq(a, b, dim), dot = ref_dot(a, b, dim), mag = abs_dot(a, b, dim);
    assert_close(vl_l2sq(a, b, dim), l2, l2, 1e-5, "vl_l2sq", dim);
    assert_close(vl_dot(a, b, dim), dot, mag, 1e-5, "vl_dot", dim);
    /* The scalar fallback accumulates in double: much tighter. */
    assert_close(vl_l2sq_scalar(a, b, dim), l2, l2, 1e-12, "scalar l2sq", dim);
    assert_close(vl_dot_scalar(a, b, dim), dot, mag, 1e-12, "scalar dot", dim);
    vl_distance_fn l2_simd = vl_l2sq_avx2(), dot_simd = vl_dot_avx2();
    if (l2_simd) {
        assert_close(l2_simd(a, b, dim), vl_l2sq_scalar(a, b, dim), l2, 1e-5, "avx2 l2sq", dim);
        assert_close(dot_simd(a, b, dim), vl_dot_scalar(a, b, dim), mag, 1e-5, "avx2 dot", dim);
    }
    /* Identity and symmetry. */
    assert_true(vl_l2sq(a, a, dim) == 0.0);
    assert_true(vl_l2sq(a, b, dim) == vl_l2sq(b, a, dim));
}

static void test_against_reference(void **state)
{
    (void)state;
    enum { MAXD = 784 };
    /* +1 so unaligned starts are covered too. */
    float *a = malloc((MAXD + 1) * sizeof(float)), *b = malloc((MAXD + 1) * sizeof(float));
    assert_non_null(a);
    assert_non_null(b);
    for (int rep = 0; rep < 3; rep++) {
        for (uint32_t dim = 1; dim <= 300; dim++)
            check_dim(dim, a + (rep == 1), b + (rep == 2));
        check_dim(784, a + (rep == 2), b + (rep == 1));
    }
    free(a);
    free(b);
}

/* Only the tail elements (dim % 16) differ: catches a SIMD loop that
 * drops or double counts the tail. */
static void test_tails(void **state)
{
    (void)state;
    float a[300], b[300];
    for (uint32_t dim = 1; dim <= 300; dim++) {
        for (uint32_t i = 0; i < dim; i++)
            a[i] = b[i] = (float)(i % 7);
        a[dim - 1] += 3.0f; /* last element differs by 3 */
        assert_true(vl_l2sq(a, b, dim) == 9.0);
        assert_true(vl_l2sq_scalar(a, b, dim) == 9.0);
        double want = 0;
        for (uint32_t i = 0; i < dim; i++)
            want += (double)a[i] * (double)b[i];
        assert_true(vl_dot(a, b, dim) == want); /* small integers: exact */
        if (vl_l2sq_avx2()) {
            assert_true(vl_l2sq_avx2()(a, b, dim) == 9.0);
            assert_true(vl_dot_avx2()(a, b, dim) == want);
        }
    }
}

static void test_integer_exact(void **state)
{
    (void)state;
    enum { DIM = 784 };
    float a[DIM], b[DIM];
    vl_distance_fn simd = vl_l2sq_avx2();
    for (int rep = 0; rep < 200; rep++) {
        uint64_t want = 0;
        for (int i = 0; i < DIM; i++) {
            /* Include the worst case (0 vs 255) now and then. */
            a[i] = (float)(rep % 10 == 0 ? (uint32_t)(i % 2) * 255 : rnd() % 256);
            b[i] = (float)(rep % 10 == 0 ? (uint32_t)((i + 1) % 2) * 255 : rnd() % 256);
            int64_t d = (int64_t)a[i] - (int64_t)b[i];
            want += (uint64_t)(d * d);
        }
        assert_true(vl_l2sq(a, b, DIM) == (double)want);
        assert_true(vl_l2sq_scalar(a, b, DIM) == (double)want);
        if (simd) {
            double got = simd(a, b, DIM);
            if (got != (double)want)
                fail_msg("avx2 l2sq %.17g != exact %llu", got, (unsigned long long)want);
        }
    }
}

static void test_kernel_name(void **state)
{
    (void)state;
    const char *name = vl_distance_kernel_name();
    assert_non_null(name);
    int simd = vl_l2sq_avx2() != NULL;
    if (getenv("VL_FORCE_SCALAR") && strcmp(getenv("VL_FORCE_SCALAR"), "1") == 0)
        simd = 0;
    assert_string_equal(name, simd ? "avx2+fma" : "scalar");
    assert_true((vl_l2sq_avx2() == NULL) == (vl_dot_avx2() == NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_tails),
        cmocka_unit_test(test_integer_exact),
        cmocka_unit_test(test_kernel_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
