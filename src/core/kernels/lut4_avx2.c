/*
 * lut4_avx2.c - 4-bit block scan for AVX2 (layout in bits.h).
 *
 * Decisions: one 32-byte load of codes and one of table per pair of
 * sub-codes; vpshufb looks up 16 codes x 2 sub-codes per instruction (each
 * 128-bit lane holds one sub-code's table).  Sums are kept in 16-bit lanes
 * and moved into 32-bit totals every 256 pairs, before a lane can pass
 * 256 * 255 < 65536: exact for any nsub.
 */
#include "core/kernels/paths.h"

#ifdef VL_KERNELS_X86
#include <immintrin.h>

/* acc[0..3] hold codes 0-7, 8-15, 16-23, 24-31; lane 0 and lane 1 are the
 * two sub-codes of a pair and are added here. */
static void flush(const __m256i acc[4], uint32_t out[32])
{
    for (int g = 0; g < 4; g++) {
        uint16_t t[16];
        _mm256_storeu_si256((__m256i *)t, acc[g]);
        for (int j = 0; j < 8; j++)
            out[8 * g + j] += (uint32_t)t[j] + t[j + 8];
    }
}

void vl_lut4_scan_avx2(const uint8_t *block, const uint8_t *lut, uint32_t nsub, uint32_t out[32])
{
    const __m256i low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    uint32_t pairs = nsub / 2;
    for (int v = 0; v < 32; v++)
        out[v] = 0;
    for (uint32_t p0 = 0; p0 < pairs; p0 += 256) {
        uint32_t pe = pairs - p0 < 256 ? pairs : p0 + 256;
        __m256i acc[4] = {zero, zero, zero, zero};
        for (uint32_t p = p0; p < pe; p++) {
            __m256i c = _mm256_loadu_si256((const __m256i *)(block + 32 * (size_t)p));
            __m256i t = _mm256_loadu_si256((const __m256i *)(lut + 32 * (size_t)p));
            __m256i rl = _mm256_shuffle_epi8(t, _mm256_and_si256(c, low));
            __m256i rh = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), low));
            acc[0] = _mm256_add_epi16(acc[0], _mm256_unpacklo_epi8(rl, zero));
            acc[1] = _mm256_add_epi16(acc[1], _mm256_unpackhi_epi8(rl, zero));
            acc[2] = _mm256_add_epi16(acc[2], _mm256_unpacklo_epi8(rh, zero));
            acc[3] = _mm256_add_epi16(acc[3], _mm256_unpackhi_epi8(rh, zero));
        }
        flush(acc, out);
    }
}
#endif
