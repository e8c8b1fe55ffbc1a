/* test_kernels.c - every SIMD path this CPU runs against the scalar
 * reference (checks in kernel_checks.h), and path selection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kernel_checks.h"
#include "testutil.h"

static const vl_simd paths[] = {VL_SIMD_SCALAR, VL_SIMD_AVX2, VL_SIMD_AVX512, VL_SIMD_NEON};

typedef int (*path_check)(const vl_kernel_set *k);

static void on_every_path(path_check check)
{
    int ran = 0;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const vl_kernel_set *k = vl_kernels_for(paths[i]);
        if (!k)
            continue;
        print_message("path %s\n", k->name);
        int bad = check(k);
        if (bad)
            fail_msg("path %s: %d mismatches", k->name, bad);
        ran++;
    }
    assert_true(ran >= 1);
}

static int check_sq8(const vl_kernel_set *k)
{
    return kc_check_sq8(k, vl_kernels_for(VL_SIMD_SCALAR));
}

static int check_bits(const vl_kernel_set *k)
{
    return kc_check_bits(k, vl_kernels_for(VL_SIMD_SCALAR));
}

static int check_lut4(const vl_kernel_set *k)
{
    return kc_check_lut4(k, vl_kernels_for(VL_SIMD_SCALAR));
}

static void test_f32_random(void **state)
{
    (void)state;
    on_every_path(kc_check_f32_random);
}

static void test_f32_integer_exact(void **state)
{
    (void)state;
    on_every_path(kc_check_f32_integer);
}

static void test_f32_extremes(void **state)
{
    (void)state;
    on_every_path(kc_check_f32_extremes);
}

static void test_sq8(void **state)
{
    (void)state;
    on_every_path(check_sq8);
}

static void test_bits(void **state)
{
    (void)state;
    on_every_path(check_bits);
}

static void test_lut4(void **state)
{
    (void)state;
    on_every_path(check_lut4);
}

/* Names parse, AUTO is the best supported path, a forced path is used,
 * and a path the CPU lacks is refused with a message naming it. */
static void test_select(void **state)
{
    (void)state;
    vl_simd p;
    static const char *const names[] = {"auto", "scalar", "avx2", "avx512", "neon"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(vl_simd_parse(names[i], &p), VL_OK);
        assert_int_equal(p, i);
    }
    assert_int_equal(vl_simd_parse("AVX2", &p), VL_ERR_ARG);
    assert_int_equal(vl_simd_parse("sse", &p), VL_ERR_ARG);
    const char *best = vl_simd_name();
    assert_ptr_equal(vl_kernels(), vl_kernels_for(VL_SIMD_AUTO));
    assert_true(vl_simd_supported(VL_SIMD_SCALAR));
    vl_error err;
    assert_int_equal(vl_simd_select(VL_SIMD_SCALAR, &err), VL_OK);
    assert_string_equal(vl_simd_name(), "scalar");
    for (size_t i = 1; i < sizeof paths / sizeof paths[0]; i++) {
        vl_status st = vl_simd_select(paths[i], &err);
        if (vl_simd_supported(paths[i])) {
            assert_int_equal(st, VL_OK);
            assert_string_equal(vl_simd_name(), names[paths[i]]);
        } else {
            assert_int_equal(st, VL_ERR_ARG);
            assert_non_null(strstr(err.msg, names[paths[i]]));
            assert_non_null(strstr(err.msg, "cannot run"));
        }
    }
    assert_int_equal(vl_simd_select(VL_SIMD_AUTO, &err), VL_OK);
    assert_string_equal(vl_simd_name(), best);
#if defined(__x86_64__)
    assert_false(vl_simd_supported(VL_SIMD_NEON));
    assert_true(strcmp(best, "scalar") != 0); /* every x86-64 this runs on has AVX2 */
#endif
}

/* Search one collection of metric m holding rows (in this order) with query
 * q on the path in use; returns the key of the single nearest hit. */
static char nearest(vl_metric m, const float *rows, int nrows, const float *q, uint32_t dim)
{
    char dir[64];
    assert_non_null(vl_test_tmpdir(dir, sizeof dir, "kernels"));
    vl_options opt;
    vl_options_init(&opt);
    opt.default_metric = m;
    opt.fsync = VL_FSYNC_NO;
    vl_engine *e;
    vl_error err;
    assert_int_equal(vl_open(dir, &opt, &e, &err), VL_OK);
    for (int r = 0; r < nrows; r++) {
        char key = (char)('a' + r);
        assert_int_equal(vl_put(e, "c", &key, 1, rows + (size_t)r * dim, dim, &err), VL_OK);
    }
    vl_snapshot *snap = vl_snapshot_open(e, "c");
    vl_hit hit;
    uint32_t n = 0;
    assert_int_equal(vl_snapshot_search(snap, q, dim, 1, &hit, &n, &err), VL_OK);
    assert_int_equal(n, 1);
    char got = hit.key[0];
    vl_snapshot_close(snap);
    vl_close(e);
    vl_test_rmtree(dir);
    return got;
}

/* The two cases through the engine, on every path: L2 near (8 x
 * 2e19, row b) beats far (8 x 1e20, row a); under cosine 1e20 e1 (b) and
 * 1e-23 e1 (c) beat the orthogonal e2 (a). */
static void test_engine_extremes_every_path(void **state)
{
    (void)state;
    enum { D = 16 };
    float l2rows[2 * 8], origin[8] = {0};
    for (int i = 0; i < 8; i++)
        l2rows[i] = 1e20f, l2rows[8 + i] = 2e19f;
    float cosrows[3 * D] = {0}, e1[D] = {1};
    cosrows[1] = 1, cosrows[D] = 1e20f, cosrows[2 * D] = 1e-23f;
    vl_error err;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (!vl_simd_supported(paths[i]))
            continue;
        assert_int_equal(vl_simd_select(paths[i], &err), VL_OK);
        if (nearest(VL_METRIC_L2, l2rows, 2, origin, 8) != 'b')
            fail_msg("path %s: L2 ranks far before near", vl_simd_name());
        char c = nearest(VL_METRIC_COSINE, cosrows, 3, e1, D);
        if (c != 'b' && c != 'c')
            fail_msg("path %s: cosine ranks the orthogonal vector first", vl_simd_name());
    }
    assert_int_equal(vl_simd_select(VL_SIMD_AUTO, &err), VL_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_random),   cmocka_unit_test(test_f32_integer_exact),
        cmocka_unit_test(test_f32_extremes), cmocka_unit_test(test_sq8),
        cmocka_unit_test(test_bits),         cmocka_unit_test(test_lut4),
        cmocka_unit_test(test_select),       cmocka_unit_test(test_engine_extremes_every_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
