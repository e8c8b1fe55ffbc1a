/*
 * f32_scalar.c - the portable float32 kernels and the double references.
 *
 * Decisions: accumulation in double, products of two floats formed in
 * double (exact: 24 + 24 bits fit in 53), so these never overflow or
 * underflow for finite float input and serve three purposes: the scalar
 * path, the reference the SIMD paths are tested against, and the fallback
 * the guarded entry points use for a row whose float result is out of
 * range (kernels.h).  The compiler may not reorder double additions
 * (no -ffast-math), so results do not depend on the build.
 *  - The double references sum in four chains (i mod 4, joined as
 *    (0 + 1) + (2 + 3)): one chain waits on every add, and the re-score of
 *    a search's K winners (search.c) took a sixth of a 784-d search's CPU
 *    over RESP that way (perf, fashion-mnist, 50 clients).
 *  - Their indices are size_t: with uint32_t indices GCC 12 -O2 vectorised
 *    the four chains through vectors of indices and a scalar load per
 *    element (about 50 instructions per 4 elements instead of 15), and
 *    vl_l2sq_f64 was 12% of the server on sift at 50 clients over RESP;
 *    5.5% after (perf, same session).  Same operations in the same order,
 *    so the same bits.
 */
#include "core/kernels/kernels.h"
#include "core/kernels/paths.h"

double vl_l2sq_f64(const float *a, const float *b, uint32_t dim)
{
    double acc[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= dim; i += 4)
        for (size_t j = 0; j < 4; j++) {
            double d = (double)a[i + j] - (double)b[i + j];
            acc[j] += d * d;
        }
    for (; i < dim; i++) {
        double d = (double)a[i] - (double)b[i];
        acc[0] += d * d;
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

double vl_dot_f64(const float *a, const float *b, uint32_t dim)
{
    double acc[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= dim; i += 4)
        for (size_t j = 0; j < 4; j++)
            acc[j] += (double)a[i + j] * (double)b[i + j];
    for (; i < dim; i++)
        acc[0] += (double)a[i] * (double)b[i];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
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
