/*
 * bits.h - low-bit codes: 1-bit codes with popcount inner products and
 * 4-bit codes scanned through look-up tables.  The kernels are exact
 * integer arithmetic; the estimators built on them live with the indexes.
 *
 * Layouts
 *  - 1-bit code of a dim-vector: bit j is bit (j % 64) of word j / 64,
 *    ceil(dim / 64) words, unused high bits zero.
 *  - 4-bit query (RaBitQ's quantised query q_u in 0..15): four bit planes,
 *    plane k holding bit k of every q_u[j] in the 1-bit layout, planes laid
 *    out one after the other.  ip_bits_u4(x, planes) = sum_j x_j q_u[j]
 *    = sum_k 2^k popcount(x & plane_k).
 *  - 4-bit block (fast-scan): 32 codes of nsub 4-bit sub-codes (nsub even).
 *    For each pair of sub-codes (m, m + 1), 32 bytes: byte i < 16 holds
 *    sub-code m of code i in its low nibble and of code i + 16 in its high
 *    nibble; bytes 16..31 the same for sub-code m + 1.  The table has 16
 *    uint8 entries per sub-code, lut[16 m + c], so one 32-byte load of codes
 *    and one of table feed one byte shuffle for 16 codes x 2 sub-codes.
 *
 * Plan for the estimator (the index session builds it on these kernels):
 * RaBitQ normalises each residual o = (x - c) / |x - c| against its list
 * centroid c, applies a random orthogonal rotation P, and stores the sign
 * bits x_b of P^T o with two floats: |x - c| and <o_bar, o> (o_bar the
 * unit vector of the signs).  A query is rotated the same way, quantised
 * to 4 bits per dimension (q_u) with a random rounding offset, and
 * <o_bar, q> is estimated from ip_bits_u4(x_b, planes(q_u)), popcount(x_b)
 * and sum(q_u) by the affine identity of the paper; dividing by
 * <o_bar, o> makes it unbiased, with error below c0 / sqrt(dim) times
 * sqrt(1 - <o_bar, o>^2) / <o_bar, o> with high probability.  Candidates
 * whose lower bound exceeds the current K-th distance are skipped; the
 * rest are re-ranked on float32 rows.
 */
#ifndef VL_CORE_KERNELS_BITS_H
#define VL_CORE_KERNELS_BITS_H

#include <stdint.h>

/** 64-bit words of a 1-bit code of dim dimensions. */
#define VL_BITS_WORDS(dim) (((dim) + 63u) / 64u)

/** Set the 1-bit code of signs: bit j = x[j] > 0 (words zeroed first). */
void vl_bits_encode_sign(const float *x, uint32_t dim, uint64_t *code);
/** The four bit planes of 4-bit values q[j] in 0..15 (4 * words words). */
void vl_bits_planes_u4(const uint8_t *q, uint32_t dim, uint64_t *planes);
/** Lay out 32 codes (codes[v * nsub + m] in 0..15) as one 4-bit block of
 *  nsub * 16 bytes (nsub even). */
void vl_lut4_pack_block(const uint8_t *codes, uint32_t nsub, uint8_t *block);

#endif
