/*
 * lut4_avx512.c - 4-bit block scan for AVX-512 BW (layout in bits.h).
 *
 * Decisions: one 64-byte load covers two pairs of sub-codes (each 128-bit
 * lane one sub-code), so vpshufb looks up 16 codes x 4 sub-codes at once;
 * an odd last pair is a masked 32-byte load whose empty lanes read table 0
 * entries of zero and add nothing.  16-bit sums move into 32-bit totals
 * every 256 steps (before 256 * 255 could pass 65535): exact for any nsub.
 */
#include "core/kernels/paths.h"

#ifdef VL_KERNELS_X86
#include <immintrin.h>

/* acc[g] holds codes 8g..8g+7 in each of its four lanes (one sub-code per
 * lane); the lanes are added here. */
static void flush(const __m512i acc[4], uint32_t out[32])
{
    for (int g = 0; g < 4; g++) {
        uint16_t t[32];
        _mm512_storeu_si512(t, acc[g]);
        for (int j = 0; j < 8; j++)
            out[8 * g + j] += (uint32_t)t[j] + t[j + 8] + t[j + 16] + t[j + 24];
    }
}

void vl_lut4_scan_avx512(const uint8_t *block, const uint8_t *lut, uint32_t nsub, uint32_t out[32])
{
    const __m512i low = _mm512_set1_epi8(0x0f), zero = _mm512_setzero_si512();
    uint32_t pairs = nsub / 2;
    for (int v = 0; v < 32; v++)
        out[v] = 0;
    for (uint32_t p0 = 0; p0 < pairs; p0 += 512) {
        uint32_t pe = pairs - p0 < 512 ? pairs : p0 + 512;
        __m512i acc[4] = {zero, zero, zero, zero};
        for (uint32_t p = p0; p < pe; p += 2) {
            __mmask64 m = pe - p >= 2 ? ~0ull : 0xffffffffull;
            __m512i c = _mm512_maskz_loadu_epi8(m, block + 32 * (size_t)p);
            __m512i t = _mm512_maskz_loadu_epi8(m, lut + 32 * (size_t)p);
            __m512i rl = _mm512_shuffle_epi8(t, _mm512_and_si512(c, low));
            __m512i rh = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(c, 4), low));
            acc[0] = _mm512_add_epi16(acc[0], _mm512_unpacklo_epi8(rl, zero));
            acc[1] = _mm512_add_epi16(acc[1], _mm512_unpackhi_epi8(rl, zero));
            acc[2] = _mm512_add_epi16(acc[2], _mm512_unpacklo_epi8(rh, zero));
            acc[3] = _mm512_add_epi16(acc[3], _mm512_unpackhi_epi8(rh, zero));
        }
        flush(acc, out);
    }
}
#endif
