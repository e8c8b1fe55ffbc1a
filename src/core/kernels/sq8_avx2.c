/*
 * sq8_avx2.c - SQ8 kernels for AVX2 (codes in sq8.h).
 *
 * Decisions: bytes are widened to 16 bits and multiplied pairwise into
 * 32-bit sums (vpmaddwd), which is exact for every input; the tempting
 * vpmaddubsw saturates at 32767 (-128 * -128 twice) and is not.  Two chains
 * of 16 codes per step; the last dim % 16 codes are summed in C.
 */
#include "core/kernels/paths.h"

#ifdef VL_KERNELS_X86
#include <immintrin.h>

static int32_t hsum(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static __m256i load_u8(const uint8_t *p)
{
    return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
}

static __m256i load_s8(const int8_t *p)
{
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}

uint32_t vl_l2sq_u8_avx2(const uint8_t *a, const uint8_t *b, uint32_t dim)
{
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    uint32_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256i d0 = _mm256_sub_epi16(load_u8(a + i), load_u8(b + i));
        __m256i d1 = _mm256_sub_epi16(load_u8(a + i + 16), load_u8(b + i + 16));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(d0, d0));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(d1, d1));
    }
    for (; i + 16 <= dim; i += 16) {
        __m256i d0 = _mm256_sub_epi16(load_u8(a + i), load_u8(b + i));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(d0, d0));
    }
    uint32_t sum = (uint32_t)hsum(_mm256_add_epi32(acc0, acc1));
    for (; i < dim; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        sum += (uint32_t)(d * d);
    }
    return sum;
}

int32_t vl_dot_s8_avx2(const int8_t *a, const int8_t *b, uint32_t dim)
{
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    uint32_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(load_s8(a + i), load_s8(b + i)));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(load_s8(a + i + 16), load_s8(b + i + 16)));
    }
    for (; i + 16 <= dim; i += 16)
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(load_s8(a + i), load_s8(b + i)));
    int32_t sum = hsum(_mm256_add_epi32(acc0, acc1));
    for (; i < dim; i++)
        sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}
#endif
