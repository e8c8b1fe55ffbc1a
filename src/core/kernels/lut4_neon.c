/*
 * lut4_neon.c - 4-bit block scan for arm64 Advanced SIMD (layout in bits.h).
 *
 * Decisions: TBL looks up 16 codes of one sub-code per instruction (one
 * 16-byte table per sub-code, as the layout stores it), four lookups per
 * pair of sub-codes.  Sums are kept in 16-bit lanes, each gaining two table
 * entries (<= 510) per pair, and widened to 32 bits every 128 pairs
 * (128 * 510 < 65536): exact for any nsub.
 */
#include "core/kernels/paths.h"

#ifdef VL_KERNELS_NEON
#include <arm_neon.h>

#define PAIRS_PER_FLUSH 128u

void vl_lut4_scan_neon(const uint8_t *block, const uint8_t *lut, uint32_t nsub, uint32_t out[32])
{
    const uint8x16_t low = vdupq_n_u8(0x0f);
    uint32_t pairs = nsub / 2;
    for (int v = 0; v < 32; v++)
        out[v] = 0;
    for (uint32_t p0 = 0; p0 < pairs; p0 += PAIRS_PER_FLUSH) {
        uint32_t pe = pairs - p0 < PAIRS_PER_FLUSH ? pairs : p0 + PAIRS_PER_FLUSH;
        uint16x8_t acc[4] = {vdupq_n_u16(0), vdupq_n_u16(0), vdupq_n_u16(0), vdupq_n_u16(0)};
        for (uint32_t p = p0; p < pe; p++) {
            for (int h = 0; h < 2; h++) {
                uint8x16_t c = vld1q_u8(block + 32 * (size_t)p + 16 * h);
                uint8x16_t t = vld1q_u8(lut + 32 * (size_t)p + 16 * h);
                uint8x16_t rl = vqtbl1q_u8(t, vandq_u8(c, low));
                uint8x16_t rh = vqtbl1q_u8(t, vshrq_n_u8(c, 4));
                acc[0] = vaddw_u8(acc[0], vget_low_u8(rl));
                acc[1] = vaddw_high_u8(acc[1], rl);
                acc[2] = vaddw_u8(acc[2], vget_low_u8(rh));
                acc[3] = vaddw_high_u8(acc[3], rh);
            }
        }
        for (int g = 0; g < 4; g++) {
            uint16_t t[8];
            vst1q_u16(t, acc[g]);
            for (int j = 0; j < 8; j++)
                out[8 * g + j] += t[j];
        }
    }
}
#endif
