/*
 * bits_avx2.c - popcount kernels for 1-bit codes on the AVX2 path (layouts
 * in bits.h).
 *
 * Decisions: the scalar POPCNT instruction (part of every AVX2 CPU, built
 * with -mpopcnt) does one 64-bit word per cycle per port; a vpshufb
 * nibble-count is no faster for the 2..64 words of a code, so this path
 * keeps independent POPCNT chains instead.
 */
#include "core/kernels/paths.h"

#ifdef VL_KERNELS_X86
#include <immintrin.h>

uint64_t vl_and_popcount_avx2(const uint64_t *a, const uint64_t *b, uint32_t words)
{
    uint64_t n0 = 0, n1 = 0;
    uint32_t w = 0;
    for (; w + 2 <= words; w += 2) {
        n0 += (uint64_t)_mm_popcnt_u64(a[w] & b[w]);
        n1 += (uint64_t)_mm_popcnt_u64(a[w + 1] & b[w + 1]);
    }
    if (w < words)
        n0 += (uint64_t)_mm_popcnt_u64(a[w] & b[w]);
    return n0 + n1;
}

uint64_t vl_ip_bits_u4_avx2(const uint64_t *x, const uint64_t *planes, uint32_t words)
{
    const uint64_t *p1 = planes + words, *p2 = p1 + words, *p3 = p2 + words;
    uint64_t n0 = 0, n1 = 0, n2 = 0, n3 = 0;
    for (uint32_t w = 0; w < words; w++) {
        uint64_t v = x[w];
        n0 += (uint64_t)_mm_popcnt_u64(v & planes[w]);
        n1 += (uint64_t)_mm_popcnt_u64(v & p1[w]);
        n2 += (uint64_t)_mm_popcnt_u64(v & p2[w]);
        n3 += (uint64_t)_mm_popcnt_u64(v & p3[w]);
    }
    return n0 + (n1 << 1) + (n2 << 2) + (n3 << 3);
}
#endif
