/*
 * sq8_neon.c - SQ8 kernels for arm64 Advanced SIMD (codes in sq8.h).
 *
 * Decisions: l2sq_u8 takes |a - b| with UABD and squares it with UMULL
 * (255^2 fits 16 bits), dot_s8 multiplies with SMULL (-128 * -128 fits);
 * pairwise add-accumulate (UADALP/SADALP) moves the products into 32-bit
 * lanes, exact for any input.  The SDOT/UDOT instructions would be faster
 * but are an optional extension (armv8.2 dotprod), not baseline NEON.
 * The last dim % 16 codes are summed in C.
 */
#include "core/kernels/paths.h"

#ifdef VL_KERNELS_NEON
#include <arm_neon.h>

uint32_t vl_l2sq_u8_neon(const uint8_t *a, const uint8_t *b, uint32_t dim)
{
    uint32x4_t acc0 = vdupq_n_u32(0), acc1 = acc0;
    uint32_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        uint8x16_t d = vabdq_u8(vld1q_u8(a + i), vld1q_u8(b + i));
        acc0 = vpadalq_u16(acc0, vmull_u8(vget_low_u8(d), vget_low_u8(d)));
        acc1 = vpadalq_u16(acc1, vmull_high_u8(d, d));
    }
    uint32_t sum = vaddvq_u32(vaddq_u32(acc0, acc1));
    for (; i < dim; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        sum += (uint32_t)(d * d);
    }
    return sum;
}

int32_t vl_dot_s8_neon(const int8_t *a, const int8_t *b, uint32_t dim)
{
    int32x4_t acc0 = vdupq_n_s32(0), acc1 = acc0;
    uint32_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        int8x16_t x = vld1q_s8(a + i), y = vld1q_s8(b + i);
        acc0 = vpadalq_s16(acc0, vmull_s8(vget_low_s8(x), vget_low_s8(y)));
        acc1 = vpadalq_s16(acc1, vmull_high_s8(x, y));
    }
    int32_t sum = vaddvq_s32(vaddq_s32(acc0, acc1));
    for (; i < dim; i++)
        sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}
#endif
