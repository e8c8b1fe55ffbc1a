/*
 * f32_scalar.c - the portable float32 kernels and the double references.
 *
 * Decisions: one accumulator in double, products of two floats formed in
 * double (exact: 24 + 24 bits fit in 53), so these never overflow or
 * underflow for finite float input and serve three purposes: the scalar
 * path, the reference the SIMD paths are tested against, and the fallback
 * the guarded entry points use for a row whose float result is out of
 * range (kernels.h).  The compiler may not reorder double additions
 * (no -ffast-math), so results do not depend on the build.
 */
#include "core/kernels/kernels.h"
#include "core/kernels/paths.h"

double vl_l2sq_f64(const float *a, const float *b, uint32_t dim)
{
    double acc = 0.0;
    for (uint32_t i = 0; i < dim; i++) {
        double d = (double)a[i] - (double)b[i];
        acc += d * d;
    }
    return acc;
}

double vl_dot_f64(const float *a, const float *b, uint32_t dim)
{
    double acc = 0.0;
    for (uint32_t i = 0; i < dim; i++)
        acc += (double)a[i] * (double)b[i];
    return acc;
}

double vl_l2sq_scalar(const float *a, const float *b, uint32_t dim)
{
    return vl_l2sq_f64(a, b, dim);
}

double vl_dot_scalar(const float *a, const float *b, uint32_t dim)
{
    return vl_dot_f64(a, b, dim);
}

void vl_l2sq_batch_scalar(const float *q, const float *rows, uint32_t n, uint32_t dim, double *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = vl_l2sq_f64(q, rows + (size_t)i * dim, dim);
}

void vl_dot_batch_scalar(const float *q, const float *rows, uint32_t n, uint32_t dim, double *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = vl_dot_f64(q, rows + (size_t)i * dim, dim);
}
