/*
 * sq8.h - 8-bit scalar quantisation: the encodings the SQ8 kernels serve.
 *
 * Two codes, because two kinds of data reach VexLake:
 *  - int8, per-vector symmetric (embeddings, cosine/ip): c_i =
 *    round(127 x_i / m) with m = max|x_i|, scale s = m / 127, so
 *    x.y ~= s_x s_y sum(c_x c_y) with the exact integer kernel dot_s8, and
 *    under L2 |x - y|^2 = |x|^2 + |y|^2 - 2 x.y with the float norms kept
 *    beside the code.  One scale per vector keeps a unit vector's error at
 *    about 0.4% of its largest coordinate whatever the other vectors look
 *    like; the query is encoded the same way.
 *  - uint8, one affine map for the collection (x ~= lo + step c, the same
 *    lo and step for every dimension): |x - y|^2 ~= step^2 sum((c_x - c_y)^2)
 *    with the exact kernel l2sq_u8.  Byte-valued data (SIFT, Fashion-MNIST:
 *    lo = 0, step = 1) is then stored losslessly and ranks exactly.
 * An index decides which code a collection uses and re-ranks its
 * candidates on the float32 rows, so code error only costs recall.
 */
#ifndef VL_CORE_KERNELS_SQ8_H
#define VL_CORE_KERNELS_SQ8_H

#include <stdint.h>

/** Encode x as int8 codes; returns the scale s (x_i ~= s * codes[i]); 0 for
 *  an all-zero vector (every code 0). */
float vl_sq8_encode_s8(const float *x, uint32_t dim, int8_t *codes);

/** Encode x as uint8 codes of the map x ~= lo + step * c (step > 0),
 *  rounding to nearest and clamping to 0..255. */
void vl_sq8_encode_u8(const float *x, uint32_t dim, float lo, float step, uint8_t *codes);

#endif
