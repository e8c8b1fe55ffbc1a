/*
 * bits.c - building low-bit codes and blocks in the layouts of bits.h.
 * These run once per row or query, so they are plain C.
 */
#include "core/kernels/bits.h"

#include <string.h>

void vl_bits_encode_sign(const float *x, uint32_t dim, uint64_t *code)
{
    memset(code, 0, VL_BITS_WORDS(dim) * sizeof *code);
    for (uint32_t j = 0; j < dim; j++)
        if (x[j] > 0)
            code[j / 64] |= 1ull << (j % 64);
}

void vl_bits_planes_u4(const uint8_t *q, uint32_t dim, uint64_t *planes)
{
    uint32_t words = VL_BITS_WORDS(dim);
    memset(planes, 0, 4 * (size_t)words * sizeof *planes);
    for (uint32_t j = 0; j < dim; j++)
        for (uint32_t k = 0; k < 4; k++)
            if ((q[j] >> k) & 1)
                planes[k * words + j / 64] |= 1ull << (j % 64);
}

void vl_lut4_pack_block(const uint8_t *codes, uint32_t nsub, uint8_t *block)
{
    for (uint32_t m = 0; m < nsub; m++) {
        uint8_t *dst = block + (m / 2) * 32 + (m % 2) * 16;
        for (uint32_t i = 0; i < 16; i++)
            dst[i] = (uint8_t)((codes[i * nsub + m] & 15) | (codes[(i + 16) * nsub + m] & 15) << 4);
    }
}
