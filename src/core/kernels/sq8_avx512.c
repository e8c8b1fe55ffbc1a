/*
 * sq8_avx512.c - SQ8 kernels for AVX-512 with VNNI (codes in sq8.h; used
 * when CPUID shows AVX512_VNNI, else the avx2 kernels fill these slots).
 *
 * Decisions:
 *  - dot_s8: vpdpbusd multiplies unsigned by signed bytes, so a is biased
 *    to a + 128 (an xor with 0x80) and 128 * sum(b) is subtracted; sum(b)
 *    comes from a second vpdpbusd against ones.  Exact: |sum| stays below
 *    16384 * 255 * 128 < 2^31.
 *  - l2sq_u8: bytes widened to 16 bits, differences squared and summed by
 *    vpdpwssd, exact for every input (vpdpbusd cannot square a difference
 *    of 255).
 *  - Tails are masked loads (masked bytes read as 0 and add nothing), so
 *    there is no scalar loop and no read past the code.
 */
#include "core/kernels/paths.h"

#ifdef VL_KERNELS_X86
#include <immintrin.h>

uint32_t vl_l2sq_u8_avx512(const uint8_t *a, const uint8_t *b, uint32_t dim)
{
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    uint32_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        __m512i d0 =
            _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm256_loadu_si256((const void *)(a + i))),
                             _mm512_cvtepu8_epi16(_mm256_loadu_si256((const void *)(b + i))));
        __m512i d1 =
            _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm256_loadu_si256((const void *)(a + i + 32))),
                             _mm512_cvtepu8_epi16(_mm256_loadu_si256((const void *)(b + i + 32))));
        acc0 = _mm512_dpwssd_epi32(acc0, d0, d0);
        acc1 = _mm512_dpwssd_epi32(acc1, d1, d1);
    }
    for (; i < dim; i += 32) {
        uint32_t r = dim - i;
        __mmask32 m = r >= 32 ? 0xffffffffu : (1u << r) - 1;
        __m512i d0 = _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, a + i)),
                                      _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, b + i)));
        acc0 = _mm512_dpwssd_epi32(acc0, d0, d0);
    }
    return (uint32_t)_mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

int32_t vl_dot_s8_avx512(const int8_t *a, const int8_t *b, uint32_t dim)
{
    const __m512i bias = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    __m512i sb0 = _mm512_setzero_si512(), sb1 = _mm512_setzero_si512();
    uint32_t i = 0;
    for (; i + 128 <= dim; i += 128) {
        __m512i x0 = _mm512_loadu_si512(a + i), y0 = _mm512_loadu_si512(b + i);
        __m512i x1 = _mm512_loadu_si512(a + i + 64), y1 = _mm512_loadu_si512(b + i + 64);
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_xor_si512(x0, bias), y0);
        acc1 = _mm512_dpbusd_epi32(acc1, _mm512_xor_si512(x1, bias), y1);
        sb0 = _mm512_dpbusd_epi32(sb0, ones, y0);
        sb1 = _mm512_dpbusd_epi32(sb1, ones, y1);
    }
    for (; i < dim; i += 64) {
        uint32_t r = dim - i;
        __mmask64 m = r >= 64 ? ~0ull : (1ull << r) - 1;
        __m512i x0 = _mm512_maskz_loadu_epi8(m, a + i), y0 = _mm512_maskz_loadu_epi8(m, b + i);
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_xor_si512(x0, bias), y0);
        sb0 = _mm512_dpbusd_epi32(sb0, ones, y0);
    }
    int32_t biased = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
    int32_t sum_b = _mm512_reduce_add_epi32(_mm512_add_epi32(sb0, sb1));
    return biased - 128 * sum_b;
}
#endif
