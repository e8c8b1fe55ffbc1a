/*
 * distance.h - distance kernels with run-time SIMD dispatch.
 *
 * Decisions a reader cannot see from the code:
 *  - Kernels take float32 inputs and return double.  SIMD lanes accumulate
 *    in float32 (four 8-wide registers, so FMA latency is hidden), the
 *    registers are added lane by lane and the 8 lanes reduced in double.
 *    On integer-valued data such as SIFT and Fashion-MNIST (values 0..255,
 *    up to ~2000 dimensions) every lane stays below 2^24, so squared L2
 *    distances come out exact and ties rank exactly like float64 ground
 *    truth.
 *  - The scalar fallback accumulates in double: slower, never less exact.
 *  - The kernel is chosen once per process from CPUID (AVX2+FMA today);
 *    vl_distance_kernel_name() says which, and INFO reports it.
 */
#ifndef VL_CORE_DISTANCE_H
#define VL_CORE_DISTANCE_H

#include <stdint.h>

typedef double (*vl_distance_fn)(const float *a, const float *b, uint32_t dim);

/** Squared Euclidean distance. */
double vl_l2sq(const float *a, const float *b, uint32_t dim);
/** Inner product. */
double vl_dot(const float *a, const float *b, uint32_t dim);
/** "avx2+fma" or "scalar". */
const char *vl_distance_kernel_name(void);

/* Individual kernels, exposed so tests can compare them. NULL when the CPU
 * or compiler lacks the instruction set. */
double vl_l2sq_scalar(const float *a, const float *b, uint32_t dim);
double vl_dot_scalar(const float *a, const float *b, uint32_t dim);
vl_distance_fn vl_l2sq_avx2(void);
vl_distance_fn vl_dot_avx2(void);

#endif
