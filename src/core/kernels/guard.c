/*
 * guard.c - the float32 entry points everyone calls: the path kernel, then
 * one range check per result, then the double reference for the rare row
 * that needs it (kernels.h explains the threshold).
 *
 * Decisions: the check is written so that NaN fails it too
 * (!(r >= tiny && r < inf)), so inf - inf inside a lane is caught as well as
 * a plain overflow.  For the inner product the magnitude is checked, so an
 * exactly orthogonal pair (0) is recomputed: correct, a little slower, and
 * rare on real data.  Batches run the path kernel over the whole batch
 * first and fix rows afterwards, so the SIMD loop has no branch in it.
 */
#include <math.h>

#include "core/kernels/kernels.h"

static inline int l2_suspect(double r)
{
    return !(r >= VL_KERNEL_TINY && r < INFINITY);
}

static inline int dot_suspect(double r)
{
    double m = fabs(r);
    return !(m >= VL_KERNEL_TINY && m < INFINITY);
}

double vl_l2sq_on(const vl_kernel_set *k, const float *a, const float *b, uint32_t dim)
{
    double r = k->l2sq(a, b, dim);
    return l2_suspect(r) ? vl_l2sq_f64(a, b, dim) : r;
}

double vl_dot_on(const vl_kernel_set *k, const float *a, const float *b, uint32_t dim)
{
    double r = k->dot(a, b, dim);
    return dot_suspect(r) ? vl_dot_f64(a, b, dim) : r;
}

void vl_l2sq_batch_on(const vl_kernel_set *k, const float *q, const float *rows, uint32_t n,
                      uint32_t dim, double *out)
{
    k->l2sq_batch(q, rows, n, dim, out);
    for (uint32_t i = 0; i < n; i++)
        if (l2_suspect(out[i]))
            out[i] = vl_l2sq_f64(q, rows + (size_t)i * dim, dim);
}

void vl_dot_batch_on(const vl_kernel_set *k, const float *q, const float *rows, uint32_t n,
                     uint32_t dim, double *out)
{
    k->dot_batch(q, rows, n, dim, out);
    for (uint32_t i = 0; i < n; i++)
        if (dot_suspect(out[i]))
            out[i] = vl_dot_f64(q, rows + (size_t)i * dim, dim);
}

double vl_l2sq(const float *a, const float *b, uint32_t dim)
{
    return vl_l2sq_on(vl_kernels(), a, b, dim);
}

double vl_dot(const float *a, const float *b, uint32_t dim)
{
    return vl_dot_on(vl_kernels(), a, b, dim);
}

void vl_l2sq_batch(const float *q, const float *rows, uint32_t n, uint32_t dim, double *out)
{
    vl_l2sq_batch_on(vl_kernels(), q, rows, n, dim, out);
}

void vl_dot_batch(const float *q, const float *rows, uint32_t n, uint32_t dim, double *out)
{
    vl_dot_batch_on(vl_kernels(), q, rows, n, dim, out);
}
