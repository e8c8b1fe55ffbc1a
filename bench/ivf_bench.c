/*
 * ivf_bench.c - in-process IVF benchmark, one thread: for each dataset in
 * the shared datasets folder and each code (none, sq8, rabitq), build the
 * index (build time, bytes per vector) and sweep nprobe, printing
 * recall@10 (tie-aware, against groundtruth_dist.fvecs) and QPS.
 *
 *   build/rel/bench/ivf_bench [-datasets=DIR] [-only=NAME] [-quant=Q]
 *                             [-nlist=N] [-nlist-mult=C] [-rerank=R]
 *                             [-nprobe=a,b,c] [-k=K]
 *
 * One line per point, "ivf <dataset> <quant> nlist=.. nprobe=.. rerank=..
 * recall=.. qps=.. qps_wall=..", which bench/ivf_peers.py parses.  qps is
 * queries per second of this thread's CPU time (robust on a shared
 * machine); qps_wall is wall-clock.  Queries run one at a time, as the
 * engine will run them.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/index/ivf.h"
#include "core/kernels/kernels.h"

typedef struct {
    float *v;
    uint32_t n, dim;
} fvecs;

static int read_vecs(const char *path, fvecs *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int32_t d;
    if (fread(&d, 4, 1, f) != 1 || d <= 0) {
        fclose(f);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t rec = 4 + 4 * (size_t)d, n = (size_t)sz / rec;
    out->v = malloc(n * d * 4);
    out->n = (uint32_t)n;
    out->dim = (uint32_t)d;
    for (size_t i = 0; i < n; i++)
        if (fread(&d, 4, 1, f) != 1 || fread(out->v + i * out->dim, 4, out->dim, f) != out->dim) {
            fclose(f);
            return -1;
        }
    fclose(f);
    return 0;
}

static double now(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Exact distance in the ground truth's units: L2 (not squared) or 1 - cos. */
static double true_dist(const float *q, const float *x, uint32_t dim, int cosine)
{
    if (!cosine)
        return sqrt(vl_l2sq_f64(q, x, dim));
    double nq = vl_dot_f64(q, q, dim), nx = vl_dot_f64(x, x, dim);
    return 1 - vl_dot_f64(q, x, dim) / sqrt(nq * nx);
}

typedef struct {
    const char *name;
    fvecs base, query, gtd;
    int cosine;
} dataset;

/* Tie-aware recall of one query: hits within the k-th true distance. */
static uint32_t hits_ok(const dataset *ds, uint32_t qi, const vl_ivf_hit *hits, uint32_t n,
                        uint32_t k)
{
    double t = ds->gtd.v[(size_t)qi * ds->gtd.dim + k - 1];
    const float *q = ds->query.v + (size_t)qi * ds->query.dim;
    uint32_t ok = 0;
    for (uint32_t i = 0; i < n && i < k; i++) {
        double d =
            true_dist(q, ds->base.v + (size_t)hits[i].row * ds->base.dim, ds->base.dim, ds->cosine);
        ok += d <= t + 1e-6 * (1 + fabs(t));
    }
    return ok;
}

static int load_dataset(const char *dir, const char *name, dataset *ds)
{
    char p[1024];
    memset(ds, 0, sizeof *ds);
    ds->name = name;
    ds->cosine = strstr(name, "cosine") != NULL;
    snprintf(p, sizeof p, "%s/%s/base.fvecs", dir, name);
    if (read_vecs(p, &ds->base))
        return -1;
    snprintf(p, sizeof p, "%s/%s/query.fvecs", dir, name);
    if (read_vecs(p, &ds->query))
        return -1;
    snprintf(p, sizeof p, "%s/%s/groundtruth_dist.fvecs", dir, name);
    return read_vecs(p, &ds->gtd);
}

typedef struct {
    const char *datasets, *only;
    int quant; /* -1: all */
    uint32_t nlist, rerank, k;
    double nlist_mult;
    uint32_t nprobe[64], nnprobe;
} config;

static void run_point(const dataset *ds, const vl_ivf *ix, const config *c, uint32_t nprobe)
{
    uint32_t scanned = 0;
    vl_ivf_search_opts o = {
        .nprobe = nprobe, .rerank = c->rerank, .rows = ds->base.v, .lists_scanned = &scanned};
    vl_ivf_hit hits[1024];
    uint64_t ok = 0, lists = 0;
    uint32_t passes = 0;
    double c0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC), c1;
    do {
        for (uint32_t qi = 0; qi < ds->query.n; qi++) {
            uint32_t n;
            vl_error err;
            if (vl_ivf_search(ix, ds->query.v + (size_t)qi * ds->query.dim, c->k, &o, hits, &n,
                              &err) != VL_OK) {
                fprintf(stderr, "search: %s\n", err.msg);
                exit(1);
            }
            if (passes == 0) {
                ok += hits_ok(ds, qi, hits, n, c->k);
                lists += scanned;
            }
        }
        passes++;
        c1 = now(CLOCK_THREAD_CPUTIME_ID);
    } while (c1 - c0 < 0.3);
    double w1 = now(CLOCK_MONOTONIC), nq = (double)ds->query.n * passes;
    printf("ivf %s %s nlist=%u nprobe=%u lists=%.1f rerank=%u recall=%.4f qps=%.0f "
           "qps_wall=%.0f\n",
           ds->name, vl_ivf_quant_name(vl_ivf_quant_of(ix)), vl_ivf_nlist(ix), nprobe,
           (double)lists / ds->query.n, c->rerank, (double)ok / ((double)ds->query.n * c->k),
           nq / (c1 - c0), nq / (w1 - w0));
    fflush(stdout);
}

static void run_dataset(const dataset *ds, const config *c)
{
    for (int q = 0; q < 3; q++) {
        if (c->quant >= 0 && q != c->quant)
            continue;
        uint32_t n = ds->base.n;
        vl_ivf_params p = {.dim = ds->base.dim,
                           .metric = ds->cosine ? VL_METRIC_COSINE : VL_METRIC_L2,
                           .quant = (vl_ivf_quant)q,
                           .seed = 42,
                           .nlist = c->nlist ? c->nlist
                                    : c->nlist_mult > 0
                                        ? (uint32_t)lrint(c->nlist_mult * sqrt((double)n))
                                        : 0};
        vl_ivf *ix;
        vl_error err;
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
        if (vl_ivf_build(&p, ds->base.v, n, &ix, &err) != VL_OK) {
            fprintf(stderr, "build %s: %s\n", ds->name, err.msg);
            exit(1);
        }
        double w1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_THREAD_CPUTIME_ID);
        printf("build %s %s nlist=%u n=%u dim=%u build_s=%.3f build_wall_s=%.3f "
               "bytes_per_vector=%.1f raw=%u\n",
               ds->name, vl_ivf_quant_name((vl_ivf_quant)q), vl_ivf_nlist(ix), n, ds->base.dim,
               c1 - c0, w1 - w0, (double)vl_ivf_memory_bytes(ix) / n, 4 * ds->base.dim);
        run_point(ds, ix, c, 0); /* the default nprobe */
        for (uint32_t i = 0; i < c->nnprobe; i++)
            if (c->nprobe[i] <= vl_ivf_nlist(ix))
                run_point(ds, ix, c, c->nprobe[i]);
        vl_ivf_free(ix);
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    config c = {.datasets = "../shared/datasets", .quant = -1, .k = 10};
    const char *np = "1,2,4,6,8,12,16,24,32,48,64,96,128";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "-datasets=", 10))
            c.datasets = a + 10;
        else if (!strncmp(a, "-only=", 6))
            c.only = a + 6;
        else if (!strncmp(a, "-quant=", 7)) {
            vl_ivf_quant q;
            if (vl_ivf_quant_parse(a + 7, &q) != VL_OK) {
                fprintf(stderr, "unknown quant %s\n", a + 7);
                return 2;
            }
            c.quant = (int)q;
        } else if (!strncmp(a, "-nlist=", 7))
            c.nlist = (uint32_t)atoi(a + 7);
        else if (!strncmp(a, "-nlist-mult=", 12))
            c.nlist_mult = atof(a + 12);
        else if (!strncmp(a, "-rerank=", 8))
            c.rerank = (uint32_t)atoi(a + 8);
        else if (!strncmp(a, "-k=", 3))
            c.k = (uint32_t)atoi(a + 3);
        else if (!strncmp(a, "-nprobe=", 8))
            np = a + 8;
        else {
            fprintf(stderr,
                    "usage: %s [-datasets=DIR] [-only=NAME] [-quant=none|sq8|rabitq] "
                    "[-nlist=N] [-nlist-mult=C] [-rerank=R] [-nprobe=a,b,..] [-k=K]\n",
                    argv[0]);
            return 2;
        }
    }
    if (c.k == 0 || c.k > 100) {
        fprintf(stderr, "-k must be 1..100\n");
        return 2;
    }
    for (const char *s = np; *s && c.nnprobe < 64; s = strchr(s, ',') ? strchr(s, ',') + 1 : "")
        c.nprobe[c.nnprobe++] = (uint32_t)atoi(s);
    DIR *d = opendir(c.datasets);
    if (!d) {
        fprintf(stderr, "no datasets at %s\n", c.datasets);
        return 1;
    }
    char *names[64];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 64)
        if (e->d_name[0] != '.' && (!c.only || !strcmp(e->d_name, c.only)) &&
            strcmp(e->d_name, "README.md"))
            names[nn++] = strdup(e->d_name);
    closedir(d);
    qsort(names, nn, sizeof *names, by_name);
    printf("# ivf_bench simd=%s k=%u\n", vl_simd_name(), c.k);
    for (int i = 0; i < nn; i++) {
        dataset ds;
        if (load_dataset(c.datasets, names[i], &ds)) {
            fprintf(stderr, "skip %s: cannot read its fvecs\n", names[i]);
            continue;
        }
        run_dataset(&ds, &c);
        free(ds.base.v);
        free(ds.query.v);
        free(ds.gtd.v);
        free(names[i]);
    }
    return 0;
}
