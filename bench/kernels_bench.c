/*
 * kernels_bench.c - `make bench-kernels` (and the first step of `make bench`):
 *
 *  1. every SIMD path this CPU runs against scalar, at d = 128, 384, 784 and
 *     1536, for each kernel (float32 L2 / dot batches over rows in cache,
 *     SQ8 u8 L2 and s8 dot, 1-bit x 4-bit popcount, 4-bit block scan), as
 *     nanoseconds per row and speed-up over scalar;
 *  2. the exact scan against memory bandwidth, one thread: a plain
 *     streaming read of a buffer far larger than the caches, the batched
 *     L2 kernel over the same buffer, and a full engine search
 *     (vl_snapshot_search: batches, visibility, top-K) over the same rows,
 *     as GB/s and as a fraction of the read.  The buffer is 2 MiB aligned
 *     with huge pages advised, as the engine's row chunks are.
 *
 * Timing is best-of-N wall clock (CLOCK_MONOTONIC), so other work on the
 * machine inflates rather than deflates the figures.  Usage:
 *   build/rel/bench/kernels_bench [--scan-mb N] [--dim D]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/kernels/bits.h"
#include "core/kernels/kernels.h"
#include "vexlake.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t rng = 2463534242u;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static volatile double sink;

enum { ROWS = 256, REPS = 15 };

typedef struct {
    const vl_kernel_set *k;
    uint32_t dim;
    const float *q, *rows;
    const uint8_t *u8;
    const uint64_t *bits, *planes;
    const uint8_t *block, *lut;
} bench_ctx;

typedef void (*bench_fn)(const bench_ctx *c);

static void run_l2(const bench_ctx *c)
{
    double out[ROWS];
    c->k->l2sq_batch(c->q, c->rows, ROWS, c->dim, out);
    sink = out[ROWS - 1];
}

static void run_dot(const bench_ctx *c)
{
    double out[ROWS];
    c->k->dot_batch(c->q, c->rows, ROWS, c->dim, out);
    sink = out[ROWS - 1];
}

static void run_u8(const bench_ctx *c)
{
    uint32_t s = 0;
    for (uint32_t r = 0; r < ROWS; r++)
        s += c->k->l2sq_u8(c->u8, c->u8 + (size_t)(r + 1) * c->dim, c->dim);
    sink = s;
}

static void run_s8(const bench_ctx *c)
{
    int32_t s = 0;
    for (uint32_t r = 0; r < ROWS; r++)
        s += c->k->dot_s8((const int8_t *)c->u8, (const int8_t *)c->u8 + (size_t)(r + 1) * c->dim,
                          c->dim);
    sink = s;
}

static void run_bits(const bench_ctx *c)
{
    uint32_t words = VL_BITS_WORDS(c->dim);
    uint64_t s = 0;
    for (uint32_t r = 0; r < ROWS; r++)
        s += c->k->ip_bits_u4(c->bits + (size_t)r * words, c->planes, words);
    sink = (double)s;
}

/* 4-bit codes with one sub-code per dimension: ROWS / 32 blocks. */
static void run_lut4(const bench_ctx *c)
{
    uint32_t out[32], s = 0;
    for (uint32_t b = 0; b < ROWS / 32; b++) {
        c->k->lut4_scan(c->block + (size_t)b * 16 * c->dim, c->lut, c->dim, out);
        s += out[0];
    }
    sink = s;
}

/* Nanoseconds per row, best of REPS runs of enough calls for ~2 ms. */
static double time_per_row(bench_fn fn, const bench_ctx *c)
{
    double t0 = now();
    fn(c);
    double one = now() - t0;
    int calls = one > 0 ? (int)(2e-3 / one) + 1 : 1000;
    double best = 1e30;
    for (int rep = 0; rep < REPS; rep++) {
        t0 = now();
        for (int i = 0; i < calls; i++)
            fn(c);
        double t = (now() - t0) / calls;
        best = t < best ? t : best;
    }
    return best * 1e9 / ROWS;
}

static void micro(void)
{
    static const uint32_t dims[] = {128, 384, 784, 1536};
    static const struct {
        const char *name;
        bench_fn fn;
    } kernels[] = {{"f32 l2sq batch", run_l2},   {"f32 dot batch", run_dot},
                   {"sq8 l2sq_u8", run_u8},      {"sq8 dot_s8", run_s8},
                   {"1bit x 4bit ip", run_bits}, {"4bit lut scan", run_lut4}};
    static const vl_simd paths[] = {VL_SIMD_AVX512, VL_SIMD_AVX2, VL_SIMD_NEON};
    printf("### Kernels: ns per row (rows in cache), speed-up over scalar\n\n");
    printf("| kernel | d | scalar ns |");
    for (size_t p = 0; p < 3; p++)
        if (vl_kernels_for(paths[p]))
            printf(" %s ns | %s x |", vl_kernels_for(paths[p])->name,
                   vl_kernels_for(paths[p])->name);
    printf("\n| --- | --- | --- |");
    for (size_t p = 0; p < 3; p++)
        if (vl_kernels_for(paths[p]))
            printf(" --- | --- |");
    printf("\n");
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        uint32_t dim = dims[di], words = VL_BITS_WORDS(dim);
        float *q = malloc(dim * sizeof *q), *rows = malloc((size_t)ROWS * dim * sizeof *rows);
        uint8_t *u8 = malloc((size_t)(ROWS + 1) * dim);
        uint64_t *bits = malloc((size_t)ROWS * words * 8), *planes = malloc(4 * (size_t)words * 8);
        uint8_t *block = malloc((size_t)ROWS / 32 * 16 * dim), *lut = malloc(16 * (size_t)dim);
        for (uint32_t i = 0; i < dim; i++)
            q[i] = (float)(rnd() % 1000) / 1000.0f;
        for (size_t i = 0; i < (size_t)ROWS * dim; i++)
            rows[i] = (float)(rnd() % 1000) / 1000.0f;
        for (size_t i = 0; i < (size_t)(ROWS + 1) * dim; i++)
            u8[i] = (uint8_t)rnd();
        for (size_t i = 0; i < (size_t)ROWS * words; i++)
            bits[i] = (uint64_t)rnd() << 32 | rnd();
        for (size_t i = 0; i < 4 * (size_t)words; i++)
            planes[i] = (uint64_t)rnd() << 32 | rnd();
        for (size_t i = 0; i < (size_t)ROWS / 32 * 16 * dim; i++)
            block[i] = (uint8_t)rnd();
        for (size_t i = 0; i < 16 * (size_t)dim; i++)
            lut[i] = (uint8_t)rnd();
        for (size_t ki = 0; ki < sizeof kernels / sizeof kernels[0]; ki++) {
            bench_ctx c = {
                vl_kernels_for(VL_SIMD_SCALAR), dim, q, rows, u8, bits, planes, block, lut};
            double base = time_per_row(kernels[ki].fn, &c);
            printf("| %s | %u | %.1f |", kernels[ki].name, dim, base);
            for (size_t p = 0; p < 3; p++) {
                if (!(c.k = vl_kernels_for(paths[p])))
                    continue;
                double t = time_per_row(kernels[ki].fn, &c);
                printf(" %.1f | %.1f |", t, base / t);
            }
            printf("\n");
        }
        free(q), free(rows), free(u8), free(bits), free(planes), free(block), free(lut);
    }
}

/* A plain streaming read: vector loads xor-ed into four
 * independent accumulators, four loads per step (one load and one xor per
 * 16 or 32 bytes: several times faster than DRAM, so the loop measures the
 * memory, not itself). */
typedef unsigned long long v2u64 __attribute__((vector_size(16)));

static double stream_read(const v2u64 *p, size_t n)
{
    v2u64 s0 = {0, 0}, s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 4 <= n; i += 4) {
        s0 ^= p[i];
        s1 ^= p[i + 1];
        s2 ^= p[i + 2];
        s3 ^= p[i + 3];
    }
    v2u64 x = s0 ^ s1 ^ s2 ^ s3;
    return (double)(x[0] ^ x[1]);
}

static double timed(double (*fn)(void *), void *arg)
{
    double t0 = now();
    sink = fn(arg);
    return now() - t0;
}

typedef struct {
    float *rows, *q;
    size_t n;
    uint32_t dim;
    vl_snapshot *snap;
} scan_ctx;

#if defined(__x86_64__)
/* The same with 32-byte loads, on CPUs with AVX2: the read takes the
 * faster of the two, so the scan is compared with the best plain read. */
typedef unsigned long long v4u64 __attribute__((vector_size(32)));

__attribute__((target("avx2"))) static double stream_read_avx2(const v4u64 *p, size_t n)
{
    v4u64 s0 = {0, 0, 0, 0}, s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 4 <= n; i += 4) {
        s0 ^= p[i];
        s1 ^= p[i + 1];
        s2 ^= p[i + 2];
        s3 ^= p[i + 3];
    }
    v4u64 x = s0 ^ s1 ^ s2 ^ s3;
    return (double)(x[0] ^ x[1] ^ x[2] ^ x[3]);
}
#endif

static double do_read(void *arg)
{
    scan_ctx *s = arg;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2"))
        return stream_read_avx2((const v4u64 *)s->rows, s->n * s->dim / 8);
#endif
    return stream_read((const v2u64 *)s->rows, s->n * s->dim / 4);
}

static double do_scan(void *arg)
{
    scan_ctx *s = arg;
    double out[ROWS], best = 1e300;
    for (size_t r = 0; r < s->n; r += ROWS) {
        uint32_t m = s->n - r < ROWS ? (uint32_t)(s->n - r) : ROWS;
        vl_l2sq_batch(s->q, s->rows + r * s->dim, m, s->dim, out);
        for (uint32_t i = 0; i < m; i++)
            best = out[i] < best ? out[i] : best;
    }
    return best;
}

static double do_search(void *arg)
{
    scan_ctx *s = arg;
    vl_hit hits[10];
    uint32_t nhits = 0;
    vl_snapshot_search(s->snap, s->q, s->dim, 10, hits, &nhits, NULL);
    return nhits ? hits[0].score : 0;
}

/* Rows into an engine in a temporary directory (WAL without fsync). */
static vl_snapshot *load_engine(scan_ctx *s, vl_engine **e, char *dir)
{
    vl_options o;
    vl_options_init(&o);
    o.fsync = VL_FSYNC_NO;
    o.default_metric = VL_METRIC_L2;
    o.flush_rows = 0;
    o.flush_wal_bytes = 0;
    o.flush_seconds = 0;
    vl_error err;
    if (vl_open(dir, &o, e, &err) != VL_OK) {
        fprintf(stderr, "kernels_bench: %s\n", err.msg);
        exit(1);
    }
    for (size_t r = 0; r < s->n; r++) {
        char key[32];
        int len = snprintf(key, sizeof key, "v%zu", r);
        if (vl_put(*e, "bench", key, (size_t)len, s->rows + r * s->dim, s->dim, &err) != VL_OK) {
            fprintf(stderr, "kernels_bench: %s\n", err.msg);
            exit(1);
        }
    }
    return vl_snapshot_open(*e, "bench");
}

static void rm_rf(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "kernels_bench: could not remove %s\n", dir);
}

static void scan(size_t mb, uint32_t dim)
{
    scan_ctx s = {0};
    s.dim = dim;
    s.n = mb * 1048576 / (dim * sizeof(float));
    /* 2 MiB aligned and huge-page backed where the kernel allows, like the
     * engine's 2 MiB row chunks, so TLB misses do not differ. */
    size_t bytes_alloc = (s.n * dim * sizeof(float) + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    s.rows = aligned_alloc(2u << 20, bytes_alloc);
    madvise(s.rows, bytes_alloc, MADV_HUGEPAGE);
    s.q = malloc(dim * sizeof(float));
    for (size_t i = 0; i < s.n * dim; i++)
        s.rows[i] = (float)(rnd() % 256);
    for (uint32_t i = 0; i < dim; i++)
        s.q[i] = (float)(rnd() % 256);
    double bytes = (double)s.n * dim * sizeof(float);
    char dir[] = "/tmp/vl_kbench_XXXXXX";
    vl_engine *e = NULL;
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    s.snap = load_engine(&s, &e, dir);
    /* Interleaved rounds, best of each: a busy moment on a shared machine
     * hits all three alike instead of one. */
    double t_read = 1e30, t_scan = 1e30, t_search = 1e30;
    for (int round = 0; round < 9; round++) {
        double t = timed(do_read, &s);
        t_read = t < t_read ? t : t_read;
        t = timed(do_scan, &s);
        t_scan = t < t_scan ? t : t_scan;
        t = timed(do_search, &s);
        t_search = t < t_search ? t : t_search;
    }
    vl_snapshot_close(s.snap);
    vl_close(e);
    rm_rf(dir);
    printf("\n### Exact scan vs memory bandwidth (one thread, %zu x %u floats = %.0f MiB, path "
           "%s)\n\n",
           s.n, dim, bytes / 1048576, vl_simd_name());
    printf("| what | GB/s | of streaming read |\n| --- | --- | --- |\n");
    printf("| streaming read | %.1f | 100%% |\n", bytes / t_read / 1e9);
    printf("| batched L2 kernel scan | %.1f | %.0f%% |\n", bytes / t_scan / 1e9,
           100 * t_read / t_scan);
    printf("| engine search, K=10 (vl_snapshot_search) | %.1f | %.0f%% |\n", bytes / t_search / 1e9,
           100 * t_read / t_search);
    free(s.rows);
    free(s.q);
}

int main(int argc, char **argv)
{
    size_t mb = 512;
    uint32_t dim = 128;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--scan-mb") == 0)
            mb = (size_t)atol(argv[i + 1]);
        else if (strcmp(argv[i], "--dim") == 0)
            dim = (uint32_t)atol(argv[i + 1]);
    }
    if (mb == 0 || dim == 0 || dim > VL_MAX_DIM) {
        fprintf(stderr, "usage: kernels_bench [--scan-mb N] [--dim D]\n");
        return 2;
    }
    printf("## kernels_bench: path in use %s, %ld cores\n\n", vl_simd_name(),
           sysconf(_SC_NPROCESSORS_ONLN));
    micro();
    scan(mb, dim);
    return 0;
}
