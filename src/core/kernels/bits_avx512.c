/*
 * bits_avx512.c - popcount kernels for 1-bit codes with AVX512_VPOPCNTDQ
 * (layouts in bits.h; without VPOPCNTDQ the avx2 kernels fill these slots).
 *
 * Decisions: vpopcntq counts eight words per instruction; the last
 * words % 8 words are one masked load (masked words read as 0), so a
 * 128-dimension code (2 words) is a single step.  The four planes of a
 * 4-bit query share each load of x.
 */
#include "core/kernels/paths.h"

#ifdef VL_KERNELS_X86
#include <immintrin.h>

static __mmask8 words_mask(uint32_t r)
{
    return r >= 8 ? 0xff : (__mmask8)((1u << r) - 1);
}

uint64_t vl_and_popcount_avx512(const uint64_t *a, const uint64_t *b, uint32_t words)
{
    __m512i acc = _mm512_setzero_si512();
    for (uint32_t w = 0; w < words; w += 8) {
        __mmask8 m = words_mask(words - w);
        __m512i v = _mm512_and_si512(_mm512_maskz_loadu_epi64(m, a + w),
                                     _mm512_maskz_loadu_epi64(m, b + w));
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(v));
    }
    return (uint64_t)_mm512_reduce_add_epi64(acc);
}

uint64_t vl_ip_bits_u4_avx512(const uint64_t *x, const uint64_t *planes, uint32_t words)
{
    __m512i n0 = _mm512_setzero_si512(), n1 = n0, n2 = n0, n3 = n0;
    for (uint32_t w = 0; w < words; w += 8) {
        __mmask8 m = words_mask(words - w);
        __m512i v = _mm512_maskz_loadu_epi64(m, x + w);
        const uint64_t *p = planes + w;
        n0 = _mm512_add_epi64(
            n0, _mm512_popcnt_epi64(_mm512_and_si512(v, _mm512_maskz_loadu_epi64(m, p))));
        p += words;
        n1 = _mm512_add_epi64(
            n1, _mm512_popcnt_epi64(_mm512_and_si512(v, _mm512_maskz_loadu_epi64(m, p))));
        p += words;
        n2 = _mm512_add_epi64(
            n2, _mm512_popcnt_epi64(_mm512_and_si512(v, _mm512_maskz_loadu_epi64(m, p))));
        p += words;
        n3 = _mm512_add_epi64(
            n3, _mm512_popcnt_epi64(_mm512_and_si512(v, _mm512_maskz_loadu_epi64(m, p))));
    }
    __m512i s =
        _mm512_add_epi64(_mm512_add_epi64(n0, _mm512_slli_epi64(n1, 1)),
                         _mm512_add_epi64(_mm512_slli_epi64(n2, 2), _mm512_slli_epi64(n3, 3)));
    return (uint64_t)_mm512_reduce_add_epi64(s);
}
#endif
