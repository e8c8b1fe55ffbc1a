/*
 * paths.h - the kernels of each SIMD path, as the path files define them;
 * only dispatch.c and the guarded entry points use these names.  A path
 * file exists for every path but compiles to nothing on a CPU family that
 * cannot run it (x86 files on arm64 and back), and dispatch.c sees the
 * same conditions below.
 */
#ifndef VL_CORE_KERNELS_PATHS_H
#define VL_CORE_KERNELS_PATHS_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#define VL_KERNELS_X86 1
#endif
#if defined(__aarch64__)
#define VL_KERNELS_NEON 1
#endif

#define VL_PATH_DECLARE(sfx)                                                                       \
    double vl_l2sq_##sfx(const float *a, const float *b, uint32_t dim);                            \
    double vl_dot_##sfx(const float *a, const float *b, uint32_t dim);                             \
    void vl_l2sq_batch_##sfx(const float *q, const float *rows, uint32_t n, uint32_t dim,          \
                             double *out);                                                         \
    void vl_dot_batch_##sfx(const float *q, const float *rows, uint32_t n, uint32_t dim,           \
                            double *out);                                                          \
    uint32_t vl_l2sq_u8_##sfx(const uint8_t *a, const uint8_t *b, uint32_t dim);                   \
    int32_t vl_dot_s8_##sfx(const int8_t *a, const int8_t *b, uint32_t dim);                       \
    uint64_t vl_and_popcount_##sfx(const uint64_t *a, const uint64_t *b, uint32_t words);          \
    uint64_t vl_ip_bits_u4_##sfx(const uint64_t *x, const uint64_t *planes, uint32_t words);       \
    void vl_lut4_scan_##sfx(const uint8_t *block, const uint8_t *lut, uint32_t nsub,               \
                            uint32_t out[32]);

VL_PATH_DECLARE(scalar)
#ifdef VL_KERNELS_X86
VL_PATH_DECLARE(avx2)
VL_PATH_DECLARE(avx512)
#endif
#ifdef VL_KERNELS_NEON
VL_PATH_DECLARE(neon)
#endif

#endif
