/*
 * sq8.c - SQ8 encoders (see sq8.h for the two codes).  Encoding runs once
 * per inserted row and per query, so it is plain C.  Rounding is to
 * nearest (lrintf in the default mode), so the code error is at most half
 * a step per coordinate.
 */
#include "core/kernels/sq8.h"

#include <math.h>

float vl_sq8_encode_s8(const float *x, uint32_t dim, int8_t *codes)
{
    float m = 0;
    for (uint32_t i = 0; i < dim; i++)
        m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    if (m == 0) {
        for (uint32_t i = 0; i < dim; i++)
            codes[i] = 0;
        return 0;
    }
    /* In double: 127 / m overflows float for a denormal m. */
    double inv = 127.0 / (double)m;
    for (uint32_t i = 0; i < dim; i++)
        codes[i] = (int8_t)lrint((double)x[i] * inv);
    return (float)((double)m / 127.0);
}

void vl_sq8_encode_u8(const float *x, uint32_t dim, float lo, float step, uint8_t *codes)
{
    for (uint32_t i = 0; i < dim; i++) {
        double c = rint(((double)x[i] - lo) / step);
        codes[i] = (uint8_t)(c < 0 ? 0 : (c > 255 ? 255 : c));
    }
}
