/*
 * bits_scalar.c - portable popcount kernels for 1-bit codes (layouts in
 * bits.h): the scalar path and the exact reference for the SIMD paths.
 */
#include "core/kernels/paths.h"

uint64_t vl_and_popcount_scalar(const uint64_t *a, const uint64_t *b, uint32_t words)
{
    uint64_t n = 0;
    for (uint32_t w = 0; w < words; w++)
        n += (uint64_t)__builtin_popcountll(a[w] & b[w]);
    return n;
}

uint64_t vl_ip_bits_u4_scalar(const uint64_t *x, const uint64_t *planes, uint32_t words)
{
    uint64_t n = 0;
    for (uint32_t k = 0; k < 4; k++)
        n += vl_and_popcount_scalar(x, planes + (size_t)k * words, words) << k;
    return n;
}
