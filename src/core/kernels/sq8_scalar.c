/*
 * sq8_scalar.c - portable SQ8 kernels (codes in sq8.h): the scalar path and
 * the reference every SIMD path must equal exactly.  32-bit accumulators
 * hold VL_MAX_DIM terms (16384 * 65025 < 2^31).
 */
#include "core/kernels/paths.h"

uint32_t vl_l2sq_u8_scalar(const uint8_t *a, const uint8_t *b, uint32_t dim)
{
    uint32_t acc = 0;
    for (uint32_t i = 0; i < dim; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        acc += (uint32_t)(d * d);
    }
    return acc;
}

int32_t vl_dot_s8_scalar(const int8_t *a, const int8_t *b, uint32_t dim)
{
    int32_t acc = 0;
    for (uint32_t i = 0; i < dim; i++)
        acc += (int32_t)a[i] * (int32_t)b[i];
    return acc;
}
