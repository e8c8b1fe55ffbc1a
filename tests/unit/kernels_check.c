/*
 * kernels_check.c - the kernel checks of kernel_checks.h without cmocka, for
 * builds where cmocka is not installed: the arm64 cross build run under
 * qemu-user by `make test` (scripts/run-tests.sh, mode cross).  Prints the
 * same "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)." lines as
 * cmocka so the runner counts it alike; exit code 1 on any failure.
 */
#include "kernel_checks.h"

typedef struct {
    const char *name;
    int (*run)(const vl_kernel_set *k, const vl_kernel_set *ref);
} check;

static int f32_random(const vl_kernel_set *k, const vl_kernel_set *ref)
{
    (void)ref;
    return kc_check_f32_random(k);
}

static int f32_integer(const vl_kernel_set *k, const vl_kernel_set *ref)
{
    (void)ref;
    return kc_check_f32_integer(k);
}

static int f32_extremes(const vl_kernel_set *k, const vl_kernel_set *ref)
{
    (void)ref;
    return kc_check_f32_extremes(k);
}

int main(void)
{
    static const check checks[] = {{"f32_random", f32_random},     {"f32_integer", f32_integer},
                                   {"f32_extremes", f32_extremes}, {"sq8", kc_check_sq8},
                                   {"bits", kc_check_bits},        {"lut4", kc_check_lut4}};
    static const vl_simd paths[] = {VL_SIMD_SCALAR, VL_SIMD_AVX2, VL_SIMD_AVX512, VL_SIMD_NEON};
    const vl_kernel_set *ref = vl_kernels_for(VL_SIMD_SCALAR);
    int passed = 0, failed = 0;
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        const vl_kernel_set *k = vl_kernels_for(paths[p]);
        if (!k)
            continue;
        for (size_t c = 0; c < sizeof checks / sizeof checks[0]; c++) {
            int bad = checks[c].run(k, ref);
            printf("[ %s ] %s %s%s\n", bad ? "FAILED" : "    OK", k->name, checks[c].name,
                   bad ? " (mismatches above)" : "");
            bad ? failed++ : passed++;
        }
    }
    printf("kernels in use: %s\n", vl_simd_name());
    printf("[  PASSED  ] %d test(s).\n", passed);
    if (failed)
        printf("[  FAILED  ] %d test(s).\n", failed);
    return failed ? 1 : 0;
}
