/*
 * kernels.h - the distance kernels every search and index uses, with one
 * SIMD path (avx512, avx2, neon or scalar) chosen once per process.
 *
 * What is here
 *  - float32: squared L2 and inner product, one pair (vl_l2sq, vl_dot) and
 *    batched over contiguous rows (vl_l2sq_batch, vl_dot_batch).  Cosine is
 *    the inner product times the two inverse norms (the row store keeps
 *    1/|v| per row in double; see search.c).
 *  - SQ8 codes (see sq8.h for the encodings): int8 x int8 dot product and
 *    squared L2 between uint8 codes, both exact in integers.
 *  - Low-bit codes (see bits.h): popcount inner products of 1-bit codes and
 *    a 4-bit look-up-table scan over blocks of 32 codes, exact in integers.
 *
 * Numerics of the float32 kernels (the decisions a reader cannot see)
 *  - SIMD paths accumulate in float32 in several independent chains (so FMA
 *    latency is hidden), widen every chain's lanes to double and reduce in
 *    double.  On integer-valued data (SIFT, Fashion-MNIST: 0..255) each
 *    partial stays below 2^24 up to several thousand dimensions, so those
 *    distances are exact and rank like float64 ground truth.  The scalar
 *    path accumulates in double.
 *  - Tolerance (what the unit tests assert, path vs scalar): for every path
 *    |got - exact| <= VL_KERNEL_F32_TOL(dim) * S, where S is sum(|a_i b_i|)
 *    for the dot product and the distance itself for L2 - the standard
 *    bound for float summation of about dim/4 terms per chain.
 *  - Extreme magnitudes: float32 products of finite inputs overflow (1e20^2)
 *    or underflow (1e-23^2), which ranked `far` before `near` and made a
 *    huge or tiny cosine vector lose to an orthogonal one.  The guarded
 *    entry points below check each float result once: when it is inf, NaN,
 *    or smaller in magnitude than VL_KERNEL_TINY, that row is recomputed in
 *    double (which cannot overflow or underflow for float inputs: a product
 *    of two floats and a sum of 16384 of them stay well inside double's
 *    range, and the products are exact).  The check is two compares per row,
 *    so the fast path is unchanged; only rows at zero distance (duplicates)
 *    or exactly orthogonal pay the double pass.
 *  - Why VL_KERNEL_TINY = 2^-64 is enough: each float operation that
 *    underflows loses at most 2^-126 (even with flush-to-zero), so 16384
 *    dimensions lose at most 2^-111 in all; a result of at least 2^-64 then
 *    carries a relative error below 2^-47 from underflow, far below float
 *    rounding itself.
 *
 * Dispatch: the process starts on the best path the CPU and OS support
 * (CPUID plus XGETBV on x86, HWCAP on arm64).  vl_simd_select() (the
 * server's --simd flag) may force another before any search runs; it is not
 * meant to change while kernels run.
 */
#ifndef VL_CORE_KERNELS_H
#define VL_CORE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "vexlake.h"

/** Rows smaller than this in magnitude are recomputed in double. */
#define VL_KERNEL_TINY 0x1p-64
/** Relative tolerance of the float32 kernels for `dim` dimensions. */
#define VL_KERNEL_F32_TOL(dim) ((double)((dim) / 4u + 8u) * 0x1p-23)

/* Path kernels.  They are not guarded against overflow: call the vl_*
 * entry points below unless you are testing a path. */
typedef double (*vl_f32_pair_fn)(const float *a, const float *b, uint32_t dim);
typedef void (*vl_f32_batch_fn)(const float *q, const float *rows, uint32_t n, uint32_t dim,
                                double *out);

/** One SIMD path's kernels; every member is set. */
typedef struct {
    const char *name; /* "avx512", "avx2", "neon", "scalar" */
    vl_f32_pair_fn l2sq, dot;
    /* out[i] = kernel(q, rows + i * dim) for i < n */
    vl_f32_batch_fn l2sq_batch, dot_batch;
    /* sum (a_i - b_i)^2 over uint8 codes; exact (dim <= VL_MAX_DIM) */
    uint32_t (*l2sq_u8)(const uint8_t *a, const uint8_t *b, uint32_t dim);
    /* sum a_i * b_i over int8 codes; exact */
    int32_t (*dot_s8)(const int8_t *a, const int8_t *b, uint32_t dim);
    /* sum popcount(a_w & b_w) over `words` 64-bit words */
    uint64_t (*and_popcount)(const uint64_t *a, const uint64_t *b, uint32_t words);
    /* sum_k 2^k popcount(x & planes[k]) for the 4 bit planes of a 4-bit
     * query, planes[k] = planes + k * words (see bits.h) */
    uint64_t (*ip_bits_u4)(const uint64_t *x, const uint64_t *planes, uint32_t words);
    /* out[v] = sum_m lut[16 m + code(v, m)] for the 32 codes of one block
     * (layout in bits.h); m < nsub, nsub even */
    void (*lut4_scan)(const uint8_t *block, const uint8_t *lut, uint32_t nsub, uint32_t out[32]);
} vl_kernel_set;

/** The path in use. */
const vl_kernel_set *vl_kernels(void);
/** The kernels of path p, or NULL when this CPU/OS or build lacks it
 *  (VL_SIMD_AUTO gives the best available). */
const vl_kernel_set *vl_kernels_for(vl_simd p);

/* Guarded float32 entry points on the path in use (see the numerics). */
double vl_l2sq(const float *a, const float *b, uint32_t dim);
double vl_dot(const float *a, const float *b, uint32_t dim);
void vl_l2sq_batch(const float *q, const float *rows, uint32_t n, uint32_t dim, double *out);
void vl_dot_batch(const float *q, const float *rows, uint32_t n, uint32_t dim, double *out);

/* The same with an explicit path (tests compare paths through these). */
double vl_l2sq_on(const vl_kernel_set *k, const float *a, const float *b, uint32_t dim);
double vl_dot_on(const vl_kernel_set *k, const float *a, const float *b, uint32_t dim);
void vl_l2sq_batch_on(const vl_kernel_set *k, const float *q, const float *rows, uint32_t n,
                      uint32_t dim, double *out);
void vl_dot_batch_on(const vl_kernel_set *k, const float *q, const float *rows, uint32_t n,
                     uint32_t dim, double *out);

/** Double-precision references: exact products, double sums, no range
 *  problems for float inputs.  Used to re-score winners and as fallback. */
double vl_l2sq_f64(const float *a, const float *b, uint32_t dim);
double vl_dot_f64(const float *a, const float *b, uint32_t dim);

#endif
