/*
 * kernel_checks.h - checks of one SIMD path against the scalar reference,
 * shared by test_kernels.c (cmocka, native paths) and kernels_check.c (no
 * cmocka: the arm64 build run under qemu-user).  Each check returns the
 * number of mismatches and prints the first few.
 *
 * What they cover: float32 L2 and dot, pair and batch, on dimensions 1..64
 * and a spread up to 4096, with both pointers offset by 0..3 elements;
 * exactness on integer-valued data; extreme magnitudes through the guarded
 * entry points; and the integer kernels (SQ8, popcount, 4-bit scan), which
 * must equal scalar exactly.
 */
#ifndef VL_TEST_KERNEL_CHECKS_H
#define VL_TEST_KERNEL_CHECKS_H

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels/bits.h"
#include "core/kernels/kernels.h"
#include "core/kernels/sq8.h"

static const uint32_t kc_dims[] = {
    1,   2,   3,    4,    5,    6,    7,    8,    9,    10,   11,   12,   13,   14,  15,  16,
    17,  18,  19,   20,   21,   22,   23,   24,   25,   26,   27,   28,   29,   30,  31,  32,
    33,  34,  35,   36,   37,   38,   39,   40,   41,   42,   43,   44,   45,   46,  47,  48,
    49,  50,  51,   52,   53,   54,   55,   56,   57,   58,   59,   60,   61,   62,  63,  64,
    65,  96,  127,  128,  129,  255,  256,  257,  383,  384,  385,  511,  512,  513, 767, 768,
    769, 784, 1000, 1023, 1024, 1025, 1535, 1536, 1537, 2047, 2048, 3000, 4095, 4096};
#define KC_NDIMS (sizeof kc_dims / sizeof kc_dims[0])
#define KC_MAXD 4096u
#define KC_ROWS 3u /* rows per batch check */

static uint32_t kc_rng = 0x9e3779b9u;
static int kc_reported;

static uint32_t kc_rnd(void)
{
    kc_rng ^= kc_rng << 13;
    kc_rng ^= kc_rng >> 17;
    kc_rng ^= kc_rng << 5;
    return kc_rng;
}

static float kc_unit(void)
{
    return (float)((double)kc_rnd() / 4294967295.0 * 2.0 - 1.0);
}

static int kc_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int kc_fail(const char *fmt, ...)
{
    if (kc_reported++ < 8) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    return 1;
}

static double kc_abs_dot(const float *a, const float *b, uint32_t dim)
{
    double s = 0;
    for (uint32_t i = 0; i < dim; i++)
        s += fabs((double)a[i] * (double)b[i]);
    return s;
}

/* One pair and one batch of KC_ROWS rows starting at row, query q. */
static int kc_f32_case(const vl_kernel_set *k, const float *q, const float *rows, uint32_t dim)
{
    int bad = 0;
    double tol = VL_KERNEL_F32_TOL(dim);
    double l2[KC_ROWS], dp[KC_ROWS];
    k->l2sq_batch(q, rows, KC_ROWS, dim, l2);
    k->dot_batch(q, rows, KC_ROWS, dim, dp);
    for (uint32_t r = 0; r < KC_ROWS; r++) {
        const float *v = rows + (size_t)r * dim;
        double want_l2 = vl_l2sq_f64(q, v, dim), want_dot = vl_dot_f64(q, v, dim);
        double got_l2 = k->l2sq(q, v, dim), got_dot = k->dot(q, v, dim);
        double mag = kc_abs_dot(q, v, dim);
        if (!(fabs(got_l2 - want_l2) <= tol * want_l2) || got_l2 != l2[r])
            bad += kc_fail("%s l2sq dim %u row %u: pair %.17g batch %.17g want %.17g", k->name, dim,
                           r, got_l2, l2[r], want_l2);
        if (!(fabs(got_dot - want_dot) <= tol * mag) || got_dot != dp[r])
            bad += kc_fail("%s dot dim %u row %u: pair %.17g batch %.17g want %.17g", k->name, dim,
                           r, got_dot, dp[r], want_dot);
    }
    return bad;
}

/* Random floats in [-10, 10], every dimension, pointers offset 0..3. */
static int kc_check_f32_random(const vl_kernel_set *k)
{
    float *q = malloc((KC_MAXD + 4) * sizeof *q);
    float *rows = malloc(((size_t)KC_ROWS * KC_MAXD + 4) * sizeof *rows);
    int bad = 0;
    for (size_t d = 0; d < KC_NDIMS; d++) {
        uint32_t dim = kc_dims[d];
        for (uint32_t oq = 0; oq < 4; oq++)
            for (uint32_t orow = 0; orow < 4; orow++) {
                if (dim > 1024 && oq != orow && oq + orow != 3)
                    continue; /* large dims: a few offset pairs are enough */
                for (uint32_t i = 0; i < dim; i++)
                    q[oq + i] = kc_unit() * 10.0f;
                for (uint32_t i = 0; i < KC_ROWS * dim; i++)
                    rows[orow + i] = kc_unit() * 10.0f;
                bad += kc_f32_case(k, q + oq, rows + orow, dim);
            }
    }
    free(q);
    free(rows);
    return bad;
}

/* Integer values 0..255 (random, and the worst case 0 vs 255): the float
 * kernels are exact up to 2000 dimensions on every path (kernels.h). */
static int kc_check_f32_integer(const vl_kernel_set *k)
{
    float *q = malloc((KC_MAXD + 1) * sizeof *q);
    float *rows = malloc(((size_t)KC_ROWS * KC_MAXD + 1) * sizeof *rows);
    int bad = 0;
    for (size_t d = 0; d < KC_NDIMS; d++) {
        uint32_t dim = kc_dims[d];
        if (dim > 2000)
            continue;
        for (int worst = 0; worst < 2; worst++) {
            for (uint32_t i = 0; i < dim; i++)
                q[1 + i] = (float)(worst ? (i % 2) * 255 : kc_rnd() % 256);
            for (uint32_t i = 0; i < KC_ROWS * dim; i++)
                rows[i] = (float)(worst ? ((i % dim) + 1) % 2 * 255 : kc_rnd() % 256);
            double out[KC_ROWS];
            k->l2sq_batch(q + 1, rows, KC_ROWS, dim, out);
            for (uint32_t r = 0; r < KC_ROWS; r++) {
                const float *v = rows + (size_t)r * dim;
                double want_l2 = vl_l2sq_f64(q + 1, v, dim), want_dot = vl_dot_f64(q + 1, v, dim);
                if (k->l2sq(q + 1, v, dim) != want_l2 || out[r] != want_l2)
                    bad += kc_fail("%s l2sq not exact on integers, dim %u: %.17g want %.17g",
                                   k->name, dim, k->l2sq(q + 1, v, dim), want_l2);
                if (k->dot(q + 1, v, dim) != want_dot)
                    bad += kc_fail("%s dot not exact on integers, dim %u: %.17g want %.17g",
                                   k->name, dim, k->dot(q + 1, v, dim), want_dot);
            }
        }
    }
    free(q);
    free(rows);
    return bad;
}

/* Relative agreement with the double reference (which is exact enough for
 * a ranking question at these magnitudes). */
static int kc_close(double got, double want, double tol)
{
    return fabs(got - want) <= tol * fabs(want);
}

/* Extreme magnitudes through the guarded entry points on path k: the
 * issue's cases (L2 far/near, cosine with huge and tiny vectors), values
 * near FLT_MAX, denormals, and mixtures, in pair and batch form. */
static int kc_check_f32_extremes(const vl_kernel_set *k)
{
    static const float mags[] = {1e20f,  2e19f,  1e-23f,  3e38f, FLT_MAX,
                                 1e-45f, 1e-40f, FLT_MIN, 1e19f, 1.0f};
    static const uint32_t dims[] = {1, 3, 8, 15, 16, 17, 33, 64, 100, 128, 129, 384, 1536};
    int bad = 0;
    float *a = malloc(1536 * sizeof *a), *rows = malloc(3 * 1536 * sizeof *rows);
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        uint32_t dim = dims[di];
        for (size_t mi = 0; mi < sizeof mags / sizeof mags[0]; mi++)
            for (size_t mj = 0; mj < sizeof mags / sizeof mags[0]; mj++) {
                for (uint32_t i = 0; i < dim; i++)
                    a[i] = mags[mi] * (i % 3 == 1 ? -1.0f : 1.0f);
                for (uint32_t i = 0; i < 3 * dim; i++)
                    rows[i] = mags[mj] * kc_unit();
                for (uint32_t i = 0; i < dim; i++)
                    rows[dim + i] = 0; /* a zero row: L2 is |a|^2, dot is 0 */
                double l2[3], dp[3];
                vl_l2sq_batch_on(k, a, rows, 3, dim, l2);
                vl_dot_batch_on(k, a, rows, 3, dim, dp);
                for (uint32_t r = 0; r < 3; r++) {
                    const float *v = rows + (size_t)r * dim;
                    double wl = vl_l2sq_f64(a, v, dim), wd = vl_dot_f64(a, v, dim);
                    double gl = vl_l2sq_on(k, a, v, dim), gd = vl_dot_on(k, a, v, dim);
                    double tol = VL_KERNEL_F32_TOL(dim), mag = kc_abs_dot(a, v, dim);
                    if (!kc_close(gl, wl, tol) || !kc_close(l2[r], wl, tol))
                        bad += kc_fail("%s guarded l2sq dim %u |a| %g |v| %g: %g / %g want %g",
                                       k->name, dim, mags[mi], mags[mj], gl, l2[r], wl);
                    if (!(fabs(gd - wd) <= tol * mag) || !(fabs(dp[r] - wd) <= tol * mag))
                        bad += kc_fail("%s guarded dot dim %u |a| %g |v| %g: %g / %g want %g",
                                       k->name, dim, mags[mi], mags[mj], gd, dp[r], wd);
                }
            }
    }
    /* The L2 case: near (8 x 2e19) must rank before far (8 x 1e20). */
    float zero[8] = {0}, far_near[16];
    for (int i = 0; i < 8; i++) {
        far_near[i] = 1e20f;
        far_near[8 + i] = 2e19f;
    }
    double d[2];
    vl_l2sq_batch_on(k, zero, far_near, 2, 8, d);
    if (!(d[1] < d[0]) ||
        !(vl_l2sq_on(k, zero, far_near + 8, 8) < vl_l2sq_on(k, zero, far_near, 8)))
        bad += kc_fail("%s: near (2e19) does not rank before far (1e20): %g vs %g", k->name, d[1],
                       d[0]);
    /* The cosine case: e1 . (1e20 e1) and e1 . (1e-23 e1) are nonzero. */
    float e1[4] = {1, 0, 0, 0}, big[4] = {1e20f, 0, 0, 0}, tiny[4] = {1e-23f, 0, 0, 0};
    if (!(vl_dot_on(k, e1, big, 4) == 1e20f) || !(vl_dot_on(k, e1, tiny, 4) == (double)1e-23f) ||
        !(sqrt(vl_dot_on(k, big, big, 4)) == 1e20f) ||
        !(sqrt(vl_dot_on(k, tiny, tiny, 4)) == (double)1e-23f))
        bad += kc_fail("%s: dot/norm of 1e20 e1 or 1e-23 e1 is wrong", k->name);
    free(a);
    free(rows);
    return bad;
}

/* SQ8 kernels: exact equality with scalar, random codes with the extreme
 * values mixed in, pointers offset by 0..3 bytes. */
static int kc_check_sq8(const vl_kernel_set *k, const vl_kernel_set *ref)
{
    uint8_t *a = malloc(KC_MAXD + 4), *b = malloc(KC_MAXD + 4);
    int bad = 0;
    for (size_t d = 0; d < KC_NDIMS; d++) {
        uint32_t dim = kc_dims[d];
        for (uint32_t off = 0; off < 16; off++) {
            uint32_t oa = off % 4, ob = off / 4;
            for (uint32_t i = 0; i < dim + 4; i++) {
                uint32_t r = kc_rnd();
                a[i] = (uint8_t)(r % 7 == 0 ? 0 : (r % 7 == 1 ? 255 : (r >> 8)));
                b[i] = (uint8_t)(r % 5 == 0 ? 255 : (r % 5 == 1 ? 0 : (r >> 16)));
            }
            if (off == 15) /* the largest sums: 0 against 255, -128 against -128 */
                for (uint32_t i = 0; i < dim + 4; i++)
                    a[i] = (uint8_t)(i % 2 ? 0x80 : 0), b[i] = (uint8_t)(i % 2 ? 0x80 : 0xff);
            uint32_t l2 = k->l2sq_u8(a + oa, b + ob, dim), wl = ref->l2sq_u8(a + oa, b + ob, dim);
            int32_t dp = k->dot_s8((const int8_t *)a + oa, (const int8_t *)b + ob, dim);
            int32_t wd = ref->dot_s8((const int8_t *)a + oa, (const int8_t *)b + ob, dim);
            if (l2 != wl)
                bad += kc_fail("%s l2sq_u8 dim %u: %u want %u", k->name, dim, l2, wl);
            if (dp != wd)
                bad += kc_fail("%s dot_s8 dim %u: %d want %d", k->name, dim, dp, wd);
        }
    }
    /* The encoders round-trip byte data exactly and keep int8 error small. */
    float x[64], y[64];
    uint8_t cu[64];
    int8_t cs[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(kc_rnd() % 256), y[i] = kc_unit();
    vl_sq8_encode_u8(x, 64, 0.0f, 1.0f, cu);
    float s = vl_sq8_encode_s8(y, 64, cs);
    for (int i = 0; i < 64; i++) {
        if (cu[i] != (uint8_t)x[i])
            bad += kc_fail("sq8 u8 encode %g -> %u", x[i], cu[i]);
        if (!(fabsf(s * cs[i] - y[i]) <= s * 0.5f + 1e-7f))
            bad += kc_fail("sq8 s8 encode %g -> %d * %g", y[i], cs[i], s);
    }
    free(a);
    free(b);
    return bad;
}

static uint64_t kc_rnd64(void)
{
    return (uint64_t)kc_rnd() << 32 | kc_rnd();
}

/* Popcount kernels: exact, 1..70 words, pointers offset by 0..3 words. */
static int kc_check_bits(const vl_kernel_set *k, const vl_kernel_set *ref)
{
    enum { W = 70 };
    uint64_t x[W + 3], y[W + 3], planes[4 * W + 3];
    int bad = 0;
    for (uint32_t words = 1; words <= W; words++)
        for (uint32_t off = 0; off < 4; off++) {
            for (uint32_t i = 0; i < W + 3; i++)
                x[i] = kc_rnd64(), y[i] = off == 3 ? ~0ull : kc_rnd64();
            for (uint32_t i = 0; i < 4 * W + 3; i++)
                planes[i] = off == 3 ? ~0ull : kc_rnd64();
            uint64_t n = k->and_popcount(x + off, y + (3 - off), words);
            uint64_t wn = ref->and_popcount(x + off, y + (3 - off), words);
            uint64_t ip = k->ip_bits_u4(x + off, planes + (3 - off), words);
            uint64_t wip = ref->ip_bits_u4(x + off, planes + (3 - off), words);
            if (n != wn)
                bad += kc_fail("%s and_popcount %u words: %llu want %llu", k->name, words,
                               (unsigned long long)n, (unsigned long long)wn);
            if (ip != wip)
                bad += kc_fail("%s ip_bits_u4 %u words: %llu want %llu", k->name, words,
                               (unsigned long long)ip, (unsigned long long)wip);
        }
    /* ip_bits_u4 really is sum x_j q_j for a 4-bit q (the layout of bits.h). */
    enum { D = 300 };
    float xs[D];
    uint8_t q[D];
    uint64_t code[VL_BITS_WORDS(D)], pl[4 * VL_BITS_WORDS(D)];
    uint64_t want = 0;
    for (uint32_t j = 0; j < D; j++) {
        xs[j] = kc_unit();
        q[j] = (uint8_t)(kc_rnd() % 16);
        want += xs[j] > 0 ? q[j] : 0;
    }
    vl_bits_encode_sign(xs, D, code);
    vl_bits_planes_u4(q, D, pl);
    if (k->ip_bits_u4(code, pl, VL_BITS_WORDS(D)) != want)
        bad += kc_fail("%s ip_bits_u4 is not sum x_j q_j", k->name);
    return bad;
}

/* 4-bit block scan: exact against scalar and against a direct sum over the
 * unpacked codes, up to 1100 sub-codes (past every 16-bit flush point),
 * with all-255 tables for the largest sums and an odd number of pairs. */
static int kc_check_lut4(const vl_kernel_set *k, const vl_kernel_set *ref)
{
    enum { MAXSUB = 1100 };
    uint8_t *codes = malloc(32 * MAXSUB), *block = malloc(16 * MAXSUB + 3);
    uint8_t *lut = malloc(16 * MAXSUB + 3);
    static const uint32_t nsubs[] = {2,  4,   6,   8,   16,  30,   32,   64,
                                     96, 128, 510, 512, 514, 1024, 1026, 1100};
    int bad = 0;
    for (size_t s = 0; s < sizeof nsubs / sizeof nsubs[0]; s++)
        for (int full = 0; full < 2; full++) {
            uint32_t nsub = nsubs[s], off = (uint32_t)(s % 4);
            for (uint32_t i = 0; i < 32 * nsub; i++)
                codes[i] = (uint8_t)(kc_rnd() % 16);
            for (uint32_t i = 0; i < 16 * nsub; i++)
                lut[off + i] = full ? 255 : (uint8_t)kc_rnd();
            vl_lut4_pack_block(codes, nsub, block + off);
            uint32_t got[32], want[32];
            k->lut4_scan(block + off, lut + off, nsub, got);
            ref->lut4_scan(block + off, lut + off, nsub, want);
            for (uint32_t v = 0; v < 32; v++) {
                uint32_t direct = 0;
                for (uint32_t m = 0; m < nsub; m++)
                    direct += lut[off + 16 * m + codes[v * nsub + m]];
                if (got[v] != want[v] || want[v] != direct)
                    bad += kc_fail("%s lut4_scan nsub %u code %u: %u, scalar %u, direct %u",
                                   k->name, nsub, v, got[v], want[v], direct);
            }
        }
    free(codes);
    free(block);
    free(lut);
    return bad;
}

#endif
