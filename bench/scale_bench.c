/*
 * scale_bench.c - `make bench-scale`, in process: build the HNSW index
 * (SQ8 walk, as the engine builds it: core/index/seg_index.c) and the IVF
 * index (SQ8 codes, re-ranked from the rows) over a scale_gen set through
 * their C APIs, one thread, and sweep EF / NPROBE for recall@10 against QPS.
 *
 *   build/rel/bench/scale_bench DIR [hnsw] [ivf]
 *
 * DIR is a folder from bench/scale_gen.c (texmex layout, cosine).  Without
 * index names both run, HNSW first.  Output is Markdown (one section per
 * index: build, memory, the sweep table, the point that first reaches
 * recall 0.95) followed by one "summary index=... " line per index for
 * scripts (`grep ^summary`).
 *
 * What the figures mean
 *  - Build: wall and process CPU seconds of one thread adding every row in
 *    file order (HNSW: M = 16, ef_construction = 200, then the SQ8 codes;
 *    IVF: the engine's default lists, sqrt(N), k-means, the adds and the
 *    calibration of the defaults on 100 of its rows, ivf_calibrate.c).
 *  - IVF defaults: the search with no NPROBE (the adaptive probe), then the
 *    sweep of fixed NPROBE values.
 *  - Memory per vector: the index's own bytes (vl_hnsw_memory_bytes: its
 *    float32 copy of the rows, SQ8 codes and links; vl_ivf_memory_bytes:
 *    centroids, codes and row ids) and the links alone for HNSW; "total" is
 *    what the index needs beside it in the engine: the float32 rows it
 *    re-ranks from (HNSW keeps its own copy, so nothing more; IVF reads the
 *    row store, 4 * dim bytes), plus the process's resident growth over the
 *    build as a cross-check (VmRSS after minus before).
 *  - Recall@10 is tie-aware (tests/unit/testutil_fvecs.h) against the cached
 *    ground truth; QPS is one thread, queries one at a time, best of three
 *    passes by process CPU time (the machine is shared; wall QPS beside it).
 *  - A sweep stops at the first point with recall >= 0.99.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/index/hnsw.h"
#include "core/index/ivf.h"
#include "../tests/unit/testutil_fvecs.h"

enum { K = 10, REPEAT = 3 };
#define TARGET 0.95
#define STOP 0.99

typedef struct {
    const char *name;
    float *base, *query, *gtd;
    uint32_t n, dim, nq, gtk;
} dataset;

/* One index behind one search function, so both share the sweep. */
typedef struct {
    const dataset *ds;
    const vl_hnsw *hnsw;
    vl_hnsw_scratch *scratch;
    const vl_ivf *ivf;
    uint64_t *lists; /* IVF: lists scanned, summed over searches */
} searcher;

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Resident set size of this process in bytes (0 if /proc is missing). */
static double rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

static void die(const char *what, const vl_error *err)
{
    fprintf(stderr, "scale_bench: %s: %s\n", what, err->msg);
    exit(1);
}

/* Search query qi at parameter p (ef or nprobe); rows of the hits to rows. */
static uint32_t search_one(const searcher *s, uint32_t qi, uint32_t p, uint32_t *rows)
{
    const float *q = s->ds->query + (size_t)qi * s->ds->dim;
    vl_error err;
    uint32_t n;
    if (s->hnsw) {
        vl_hnsw_hit hits[K];
        if (vl_hnsw_search(s->hnsw, q, K, p, NULL, s->scratch, hits, &n, &err) != VL_OK)
            die("hnsw search", &err);
        for (uint32_t i = 0; i < n; i++)
            rows[i] = hits[i].row;
    } else {
        vl_ivf_hit hits[K];
        uint32_t scanned = 0;
        vl_ivf_search_opts o = {.nprobe = p, .rows = s->ds->base, .lists_scanned = &scanned};
        if (vl_ivf_search(s->ivf, q, K, &o, hits, &n, &err) != VL_OK)
            die("ivf search", &err);
        *s->lists += scanned;
        for (uint32_t i = 0; i < n; i++)
            rows[i] = hits[i].row;
    }
    return n;
}

typedef struct {
    uint32_t param;
    double recall, cpu_qps, wall_qps;
} point;

static point measure(const searcher *s, uint32_t p)
{
    const dataset *ds = s->ds;
    point pt = {.param = p};
    uint64_t ok = 0;
    double best_cpu = 1e30, best_wall = 1e30;
    uint32_t rows[K];
    for (int rep = 0; rep < REPEAT; rep++) {
        double c0 = now(CLOCK_PROCESS_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
        for (uint32_t qi = 0; qi < ds->nq; qi++) {
            uint32_t n = search_one(s, qi, p, rows);
            if (rep == 0)
                ok += vl_tie_hits(VL_METRIC_COSINE, ds->query + (size_t)qi * ds->dim, ds->base,
                                  ds->dim, rows, n, ds->gtd[(size_t)qi * ds->gtk + K - 1]);
        }
        double c = now(CLOCK_PROCESS_CPUTIME_ID) - c0, w = now(CLOCK_MONOTONIC) - w0;
        best_cpu = c < best_cpu ? c : best_cpu;
        best_wall = w < best_wall ? w : best_wall;
    }
    pt.recall = (double)ok / ((double)ds->nq * K);
    pt.cpu_qps = ds->nq / best_cpu;
    pt.wall_qps = ds->nq / best_wall;
    return pt;
}

/* The sweep table; returns the first point at recall >= TARGET (param 0
 * when none reached it). */
static point sweep(const searcher *s, const char *pname, const uint32_t *params, int np,
                   uint32_t max_param)
{
    point hit = {0};
    printf("| %s | recall@10 | QPS (cpu) | QPS (wall) |\n|---:|---:|---:|---:|\n", pname);
    for (int i = 0; i < np && params[i] <= max_param; i++) {
        point pt = measure(s, params[i]);
        printf("| %u | %.4f | %.0f | %.0f |\n", pt.param, pt.recall, pt.cpu_qps, pt.wall_qps);
        fflush(stdout);
        if (!hit.param && pt.recall >= TARGET)
            hit = pt;
        if (pt.recall >= STOP)
            break;
    }
    printf("\n");
    return hit;
}

static void report(const char *index, const dataset *ds, double build_s, double build_cpu,
                   double index_bpv, double total_bpv, double rss_bpv, const char *pname, point at)
{
    if (at.param)
        printf("At recall@10 >= %.2f: %s %u, recall %.4f, %.0f QPS (cpu; %.0f wall).\n\n", TARGET,
               pname, at.param, at.recall, at.cpu_qps, at.wall_qps);
    else
        printf("Recall@10 %.2f not reached in the sweep.\n\n", TARGET);
    printf("summary index=%s rows=%u dim=%u build_s=%.1f build_cpu_s=%.1f index_bpv=%.0f "
           "total_bpv=%.0f rss_bpv=%.0f %s=%u recall=%.4f cpu_qps=%.0f wall_qps=%.0f\n",
           index, ds->n, ds->dim, build_s, build_cpu, index_bpv, total_bpv, rss_bpv, pname,
           at.param, at.recall, at.cpu_qps, at.wall_qps);
    printf("\n");
    fflush(stdout);
}

static void run_hnsw(const dataset *ds)
{
    vl_error err;
    vl_hnsw *h;
    if (vl_hnsw_create(ds->dim, VL_METRIC_COSINE, 0, 0, 42, &h, &err) != VL_OK)
        die("hnsw create", &err);
    double r0 = rss_bytes(), w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    if (vl_hnsw_reserve(h, ds->n, &err) != VL_OK)
        die("hnsw reserve", &err);
    for (uint32_t r = 0; r < ds->n; r++) {
        if (vl_hnsw_add(h, r, ds->base + (size_t)r * ds->dim, &err) != VL_OK)
            die("hnsw add", &err);
        if ((r + 1) % 100000 == 0)
            fprintf(stderr, "scale_bench: hnsw %u rows, %.0f s\n", r + 1,
                    now(CLOCK_MONOTONIC) - w0);
    }
    if (vl_hnsw_set_quant(h, VL_HNSW_QUANT_SQ8, &err) != VL_OK)
        die("hnsw sq8", &err);
    double build_s = now(CLOCK_MONOTONIC) - w0, build_cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    double ibpv = (double)vl_hnsw_memory_bytes(h) / ds->n;
    double rss = (rss_bytes() - r0) / ds->n;
    printf("## HNSW (M=16, ef_construction=200, SQ8 walk)\n\n"
           "Build, one thread: %.1f s wall, %.1f s CPU.  Memory per vector: index %.0f B "
           "(links alone %.0f B; the rest is its float32 copy of the row and the SQ8 code), "
           "total %.0f B (the index holds its own rows); resident growth %.0f B.\n\n",
           build_s, build_cpu, ibpv, (double)vl_hnsw_graph_bytes(h) / ds->n, ibpv, rss);
    static const uint32_t efs[] = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024};
    searcher s = {.ds = ds, .hnsw = h, .scratch = vl_hnsw_scratch_new()};
    point at = sweep(&s, "ef", efs, sizeof efs / sizeof efs[0], UINT32_MAX);
    report("hnsw", ds, build_s, build_cpu, ibpv, ibpv, rss, "ef", at);
    vl_hnsw_scratch_free(s.scratch);
    vl_hnsw_free(h);
}

static void run_ivf(const dataset *ds)
{
    vl_error err;
    vl_ivf *ix;
    vl_ivf_params p = {
        .dim = ds->dim, .metric = VL_METRIC_COSINE, .quant = VL_IVF_QUANT_SQ8, .seed = 42};
    double r0 = rss_bytes(), w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    if (vl_ivf_build(&p, ds->base, ds->n, &ix, &err) != VL_OK)
        die("ivf build", &err);
    double build_s = now(CLOCK_MONOTONIC) - w0, build_cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    double ibpv = (double)vl_ivf_memory_bytes(ix) / ds->n, tbpv = ibpv + 4.0 * ds->dim;
    double rss = (rss_bytes() - r0) / ds->n;
    printf("## IVF (%u lists, SQ8 codes, float32 re-rank)\n\n"
           "Build, one thread: %.1f s wall, %.1f s CPU.  Memory per vector: index %.0f B, "
           "total %.0f B with the float32 row it re-ranks from; resident growth %.0f B.\n\n",
           vl_ivf_nlist(ix), build_s, build_cpu, ibpv, tbpv, rss);
    static const uint32_t probes[] = {1,  2,  4,   8,   12,  16,  24,  32,  48,
                                      64, 96, 128, 192, 256, 384, 512, 768, 1024};
    uint64_t lists = 0;
    searcher s = {.ds = ds, .ivf = ix, .lists = &lists};
    point dflt = measure(&s, 0); /* no nprobe: the adaptive probe */
    printf("Defaults (no NPROBE): %.1f of %u lists scanned per query, recall@10 %.4f, "
           "%.0f QPS (cpu; %.0f wall).\n\n",
           (double)lists / ((double)REPEAT * ds->nq), vl_ivf_nlist(ix), dflt.recall, dflt.cpu_qps,
           dflt.wall_qps);
    point at = sweep(&s, "nprobe", probes, sizeof probes / sizeof probes[0], vl_ivf_nlist(ix));
    report("ivf", ds, build_s, build_cpu, ibpv, tbpv, rss, "nprobe", at);
    vl_ivf_free(ix);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [hnsw] [ivf]\n", argv[0]);
        return 2;
    }
    int want_hnsw = argc == 2, want_ivf = argc == 2;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "hnsw"))
            want_hnsw = 1;
        else if (!strcmp(argv[i], "ivf"))
            want_ivf = 1;
        else {
            fprintf(stderr, "scale_bench: unknown index %s (hnsw, ivf)\n", argv[i]);
            return 2;
        }
    }
    dataset ds = {.name = argv[1]};
    uint32_t dq, ng;
    ds.base = vl_read_vecs_in("scale_bench", argv[1], "base.fvecs", &ds.n, &ds.dim);
    ds.query = vl_read_vecs_in("scale_bench", argv[1], "query.fvecs", &ds.nq, &dq);
    ds.gtd = vl_read_vecs_in("scale_bench", argv[1], "groundtruth_dist.fvecs", &ng, &ds.gtk);
    if (dq != ds.dim || ng != ds.nq || ds.gtk < K) {
        fprintf(stderr, "scale_bench: %s: inconsistent files\n", argv[1]);
        return 1;
    }
    if (want_hnsw)
        run_hnsw(&ds);
    if (want_ivf)
        run_ivf(&ds);
    free(ds.base);
    free(ds.query);
    free(ds.gtd);
    return 0;
}
