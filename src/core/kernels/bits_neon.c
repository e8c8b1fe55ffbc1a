/*
 * bits_neon.c - popcount kernels for 1-bit codes on arm64 Advanced SIMD
 * (layouts in bits.h).
 *
 * Decisions: CNT counts bits per byte for two words at a time and UADALP
 * folds the byte counts into 16-bit lanes; a lane gains at most 16 per
 * step, so the lanes are widened every 2048 steps (32768 < 65536) and
 * sums stay exact for any length.  An odd last word is counted alone.
 */
#include "core/kernels/paths.h"

#ifdef VL_KERNELS_NEON
#include <arm_neon.h>

#define STEPS_PER_FLUSH 2048u

static inline uint8x16_t and_count(const uint64_t *a, const uint64_t *b)
{
    return vcntq_u8(
        vandq_u8(vreinterpretq_u8_u64(vld1q_u64(a)), vreinterpretq_u8_u64(vld1q_u64(b))));
}

static inline uint64_t count_word(uint64_t v)
{
    return vaddv_u8(vcnt_u8(vcreate_u8(v)));
}

uint64_t vl_and_popcount_neon(const uint64_t *a, const uint64_t *b, uint32_t words)
{
    uint64_t n = 0;
    uint32_t w = 0;
    while (w + 2 <= words) {
        uint16x8_t acc = vdupq_n_u16(0);
        for (uint32_t s = 0; s < STEPS_PER_FLUSH && w + 2 <= words; s++, w += 2)
            acc = vpadalq_u8(acc, and_count(a + w, b + w));
        n += vaddlvq_u16(acc);
    }
    if (w < words)
        n += count_word(a[w] & b[w]);
    return n;
}

uint64_t vl_ip_bits_u4_neon(const uint64_t *x, const uint64_t *planes, uint32_t words)
{
    uint64_t n[4] = {0, 0, 0, 0};
    uint32_t w = 0;
    while (w + 2 <= words) {
        uint16x8_t acc[4] = {vdupq_n_u16(0), vdupq_n_u16(0), vdupq_n_u16(0), vdupq_n_u16(0)};
        for (uint32_t s = 0; s < STEPS_PER_FLUSH && w + 2 <= words; s++, w += 2)
            for (uint32_t k = 0; k < 4; k++)
                acc[k] = vpadalq_u8(acc[k], and_count(x + w, planes + (size_t)k * words + w));
        for (uint32_t k = 0; k < 4; k++)
            n[k] += vaddlvq_u16(acc[k]);
    }
    if (w < words)
        for (uint32_t k = 0; k < 4; k++)
            n[k] += count_word(x[w] & planes[(size_t)k * words + w]);
    return n[0] + (n[1] << 1) + (n[2] << 2) + (n[3] << 3);
}
#endif
