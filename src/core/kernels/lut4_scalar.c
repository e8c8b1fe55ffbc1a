/*
 * lut4_scalar.c - portable 4-bit block scan (layout in bits.h): the scalar
 * path and the exact reference for the SIMD paths.
 */
#include "core/kernels/paths.h"

void vl_lut4_scan_scalar(const uint8_t *block, const uint8_t *lut, uint32_t nsub, uint32_t out[32])
{
    for (uint32_t v = 0; v < 32; v++)
        out[v] = 0;
    for (uint32_t m = 0; m < nsub; m++) {
        const uint8_t *src = block + (m / 2) * 32 + (m % 2) * 16;
        const uint8_t *t = lut + 16 * m;
        for (uint32_t i = 0; i < 16; i++) {
            out[i] += t[src[i] & 15];
            out[i + 16] += t[src[i] >> 4];
        }
    }
}
