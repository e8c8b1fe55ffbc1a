/*
 * scale_gen.c - the seeded synthetic data set of `make bench-scale`, with
 * exact ground truth, cached outside the repository.
 *
 *   build/rel/bench/scale_gen [-n=N] [-dim=D] [-seed=S] [-queries=Q] [-k=K]
 *                             [-threads=T] [-cache=DIR]
 *
 * Prints "dir PATH" last: PATH holds base.fvecs (N rows), query.fvecs (Q),
 * groundtruth.ivecs and groundtruth_dist.fvecs (K per query, 1 - cos,
 * ascending) in the texmex layout of ../shared/datasets/README.md, so
 * bench/scale_bench.c and bin/vexlake-bench read it like a shared set (the
 * "cosine" in the folder name tells them the metric).
 *
 * The model (generator version 1; every number below is fixed by it)
 *  - A mixture of C = 100 clusters in D dimensions.  Cluster c has a centre
 *    m_c with N(0, 1/D) entries (norm about 1) and a basis B_c of R = 16
 *    columns with N(0, 1/D) entries.  A vector of cluster c is
 *    m_c + 0.7/sqrt(R) * B_c z + 0.2/sqrt(D) * e, with z ~ N(0, I_R) and
 *    e ~ N(0, I_D), normalised to unit length (the set is for cosine).  So
 *    each cluster is a 16-dimensional ellipsoid plus a little isotropic
 *    noise: low intrinsic dimension inside a high ambient one, like text
 *    embeddings, rather than uniform noise (which no ANN index can search).
 *  - Row i's cluster is uniform over C.  Queries come from the same model
 *    on another stream, so none is a base row.
 *  - Randomness: every cluster, base row and query has its own splitmix64
 *    stream, seeded from (SEED, kind, index); normals by Box-Muller in
 *    double.  The output depends only on the parameters (not on -threads),
 *    and is the same byte for byte wherever libm's log, sqrt and cos round
 *    the same (glibc on x86-64 and arm64 do).
 *
 * Ground truth: for each query, the float32 kernel of the product
 * (vl_dot_batch, core/kernels/kernels.h) over every base row picks the 2K
 * best candidates; those are re-scored in double (vl_dot_f64 and the two
 * norms) and the K best kept, ties by the smaller row.  Candidates come from
 * blocks of 512 base rows scanned for every query of a thread before the next
 * block, so the base is read from memory once per thread, not once per query.
 *
 * Cache: DIR defaults to $VL_SCALE_CACHE, else $XDG_CACHE_HOME/vexlake/scale,
 * else ~/.cache/vexlake/scale; the folder is gmm-D-cosine-N-sSEED-HASH, HASH
 * the CRC-32C of the parameter line.  params.txt, written last, holds that
 * line and each file's size and CRC-32C.  A later run reuses the folder
 * when params.txt matches, every file has its recorded size and CRC, and
 * rows regenerated from the seed (first, middle, last base row, first
 * query) equal the stored ones; anything else regenerates the folder.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/kernels/kernels.h"
#include "storage/crc32c.h"

enum { CLUSTERS = 100, RANK = 16, BLOCK = 512, VERSION = 1 };
#define SPREAD 0.7
#define NOISE 0.2

typedef enum { STREAM_CLUSTER = 1, STREAM_BASE = 2, STREAM_QUERY = 3 } stream_kind;

typedef struct {
    uint32_t n, dim, queries, k, threads;
    uint64_t seed;
    char params[256];
    char dir[1024];
} config;

typedef struct {
    float *centre; /* CLUSTERS x dim */
    float *basis;  /* CLUSTERS x dim x RANK */
} model;

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* splitmix64: the state advances by the golden gamma, the output is mixed. */
static uint64_t next_u64(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    return mix64(*s);
}

static uint64_t stream(uint64_t seed, stream_kind kind, uint64_t index)
{
    return mix64(seed ^ mix64(((uint64_t)kind << 56) ^ index));
}

/* A standard normal (Box-Muller; one of the pair is dropped, which keeps
 * every draw's position in the stream fixed). */
static double normal(uint64_t *s)
{
    double u1 = ((next_u64(s) >> 11) + 1) * 0x1p-53; /* (0, 1] */
    double u2 = (next_u64(s) >> 11) * 0x1p-53;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static void model_make(const config *c, model *m)
{
    m->centre = malloc((size_t)CLUSTERS * c->dim * sizeof(float));
    m->basis = malloc((size_t)CLUSTERS * c->dim * RANK * sizeof(float));
    if (!m->centre || !m->basis) {
        fprintf(stderr, "scale_gen: out of memory\n");
        exit(1);
    }
    double sd = 1.0 / sqrt((double)c->dim);
    for (uint32_t k = 0; k < CLUSTERS; k++) {
        uint64_t s = stream(c->seed, STREAM_CLUSTER, k);
        for (uint32_t j = 0; j < c->dim; j++)
            m->centre[(size_t)k * c->dim + j] = (float)(sd * normal(&s));
        for (size_t j = 0; j < (size_t)c->dim * RANK; j++)
            m->basis[(size_t)k * c->dim * RANK + j] = (float)(sd * normal(&s));
    }
}

/* Vector `index` of stream `kind` into out (dim floats, unit length). */
static void draw(const config *c, const model *m, stream_kind kind, uint64_t index, float *out)
{
    uint64_t s = stream(c->seed, kind, index);
    uint32_t k = (uint32_t)(next_u64(&s) % CLUSTERS);
    double z[RANK], v[VL_MAX_DIM], norm = 0;
    for (int r = 0; r < RANK; r++)
        z[r] = SPREAD / sqrt((double)RANK) * normal(&s);
    const float *ctr = m->centre + (size_t)k * c->dim, *b = m->basis + (size_t)k * c->dim * RANK;
    double noise = NOISE / sqrt((double)c->dim);
    for (uint32_t j = 0; j < c->dim; j++) {
        double x = ctr[j] + noise * normal(&s);
        for (int r = 0; r < RANK; r++)
            x += b[(size_t)j * RANK + r] * z[r];
        v[j] = x;
        norm += x * x;
    }
    norm = sqrt(norm);
    for (uint32_t j = 0; j < c->dim; j++)
        out[j] = (float)(v[j] / norm);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- threads: generation by rows, ground truth by queries ---- */

typedef struct {
    float dist; /* float32-kernel distance, only to pick candidates */
    uint32_t row;
} cand;

typedef struct {
    const config *c;
    const model *m;
    float *base, *query;
    cand *cands;    /* queries x 2k, a max-heap per query */
    uint32_t *gt;   /* queries x k */
    float *gt_dist; /* queries x k */
    uint32_t t;
} job;

static void *gen_rows(void *arg)
{
    job *j = arg;
    for (uint64_t i = j->t; i < j->c->n; i += j->c->threads)
        draw(j->c, j->m, STREAM_BASE, i, j->base + i * j->c->dim);
    return NULL;
}

static void heap_push(cand *h, uint32_t *len, uint32_t cap, cand x)
{
    if (*len == cap) {
        if (x.dist >= h[0].dist)
            return;
        uint32_t i = 0; /* replace the root, sift down */
        for (;;) {
            uint32_t l = 2 * i + 1, r = l + 1, big = i;
            float bd = x.dist;
            if (l < cap && h[l].dist > bd)
                big = l, bd = h[l].dist;
            if (r < cap && h[r].dist > bd)
                big = r;
            if (big == i)
                break;
            h[i] = h[big];
            i = big;
        }
        h[i] = x;
        return;
    }
    uint32_t i = (*len)++;
    while (i > 0 && h[(i - 1) / 2].dist < x.dist) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = x;
}

typedef struct {
    double dist;
    uint32_t row;
} scored;

static int by_dist_row(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static void *ground_truth(void *arg)
{
    job *j = arg;
    const config *c = j->c;
    uint32_t cap = 2 * c->k, *len = calloc(c->queries, sizeof *len);
    double *dots = malloc(BLOCK * sizeof(double));
    scored *sc = malloc(cap * sizeof *sc);
    if (!len || !dots || !sc) {
        fprintf(stderr, "scale_gen: out of memory\n");
        exit(1);
    }
    if (cap > c->n)
        cap = c->n;
    for (uint32_t b0 = 0; b0 < c->n; b0 += BLOCK) {
        uint32_t nb = c->n - b0 < BLOCK ? c->n - b0 : BLOCK;
        const float *rows = j->base + (size_t)b0 * c->dim;
        for (uint32_t q = j->t; q < c->queries; q += c->threads) {
            vl_dot_batch(j->query + (size_t)q * c->dim, rows, nb, c->dim, dots);
            for (uint32_t i = 0; i < nb; i++)
                heap_push(j->cands + (size_t)q * 2 * c->k, &len[q], cap,
                          (cand){(float)(1.0 - dots[i]), b0 + i});
        }
    }
    for (uint32_t q = j->t; q < c->queries; q += c->threads) {
        const float *qv = j->query + (size_t)q * c->dim;
        double qn = vl_dot_f64(qv, qv, c->dim);
        for (uint32_t i = 0; i < len[q]; i++) {
            uint32_t row = j->cands[(size_t)q * 2 * c->k + i].row;
            const float *x = j->base + (size_t)row * c->dim;
            double xn = vl_dot_f64(x, x, c->dim);
            sc[i] = (scored){1.0 - vl_dot_f64(qv, x, c->dim) / sqrt(qn * xn), row};
        }
        qsort(sc, len[q], sizeof *sc, by_dist_row);
        for (uint32_t i = 0; i < c->k; i++) {
            j->gt[(size_t)q * c->k + i] = sc[i].row;
            j->gt_dist[(size_t)q * c->k + i] = (float)sc[i].dist;
        }
    }
    free(len);
    free(dots);
    free(sc);
    return NULL;
}

static void run_threads(job *jobs, uint32_t threads, void *(*fn)(void *))
{
    pthread_t tid[64];
    for (uint32_t t = 0; t < threads; t++)
        if (pthread_create(&tid[t], NULL, fn, &jobs[t]) != 0) {
            fprintf(stderr, "scale_gen: cannot start a thread\n");
            exit(1);
        }
    for (uint32_t t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
}

/* ---- files ---- */

static const char *const FILES[] = {"base.fvecs", "query.fvecs", "groundtruth.ivecs",
                                    "groundtruth_dist.fvecs"};
enum { NFILES = 4 };

/* Write rows x d 4-byte values as texmex records to dir/name (via a
 * temporary name); their size and CRC-32C into *size, *crc. */
static void write_vecs(const char *dir, const char *name, const void *data, uint32_t rows,
                       uint32_t d, uint64_t *size, uint32_t *crc)
{
    char path[1100], tmp[1110];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "scale_gen: %s: %s\n", tmp, strerror(errno));
        exit(1);
    }
    int32_t dd = (int32_t)d;
    *crc = 0;
    for (uint32_t r = 0; r < rows; r++) {
        const char *rec = (const char *)data + (size_t)r * d * 4;
        *crc = vl_crc32c(vl_crc32c(*crc, &dd, 4), rec, (size_t)d * 4);
        if (fwrite(&dd, 4, 1, f) != 1 || fwrite(rec, 4, d, f) != d) {
            fprintf(stderr, "scale_gen: %s: write failed\n", tmp);
            exit(1);
        }
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "scale_gen: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    *size = (uint64_t)rows * (4 + 4 * (uint64_t)d);
}

/* Size and CRC-32C of dir/name; 0 when it cannot be read. */
static int file_crc(const char *dir, const char *name, uint64_t *size, uint32_t *crc)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    static char buf[1 << 20];
    size_t got;
    *size = 0;
    *crc = 0;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        *crc = vl_crc32c(*crc, buf, got);
        *size += got;
    }
    fclose(f);
    return 1;
}

/* Row `row` of the fvecs file dir/name equals `want` (dim floats). */
static int row_equals(const char *dir, const char *name, uint32_t dim, uint64_t row,
                      const float *want)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    float got[VL_MAX_DIM];
    int ok = fseek(f, (long)(row * (4 + 4 * (uint64_t)dim) + 4), SEEK_SET) == 0 &&
             fread(got, 4, dim, f) == dim && memcmp(got, want, (size_t)dim * 4) == 0;
    fclose(f);
    return ok;
}

/* The cached folder is complete and matches the generator (see the header). */
static int cache_valid(const config *c, const model *m)
{
    char path[1100], line[512];
    snprintf(path, sizeof path, "%s/params.txt", c->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int ok = fgets(line, sizeof line, f) && strncmp(line, c->params, strlen(c->params)) == 0 &&
             line[strlen(c->params)] == '\n';
    for (int i = 0; ok && i < NFILES; i++) {
        char name[64];
        unsigned long long want_size;
        unsigned want_crc;
        uint64_t size;
        uint32_t crc;
        ok = fscanf(f, "%63s %llu %x", name, &want_size, &want_crc) == 3 &&
             strcmp(name, FILES[i]) == 0 && file_crc(c->dir, name, &size, &crc) &&
             size == want_size && crc == want_crc;
        if (!ok)
            fprintf(stderr, "scale_gen: cached %s/%s is stale or damaged\n", c->dir, FILES[i]);
    }
    fclose(f);
    float v[VL_MAX_DIM];
    uint64_t rows[] = {0, c->n / 2, c->n - 1};
    for (int i = 0; ok && i < 3; i++) {
        draw(c, m, STREAM_BASE, rows[i], v);
        ok = row_equals(c->dir, "base.fvecs", c->dim, rows[i], v);
    }
    if (ok) {
        draw(c, m, STREAM_QUERY, 0, v);
        ok = row_equals(c->dir, "query.fvecs", c->dim, 0, v);
        if (!ok)
            fprintf(stderr, "scale_gen: cached rows differ from the generator\n");
    }
    return ok;
}

static void generate(const config *c, const model *m)
{
    double t0 = now();
    float *base = malloc((size_t)c->n * c->dim * sizeof(float));
    float *query = malloc((size_t)c->queries * c->dim * sizeof(float));
    cand *cands = malloc((size_t)c->queries * 2 * c->k * sizeof(cand));
    uint32_t *gt = malloc((size_t)c->queries * c->k * sizeof(uint32_t));
    float *gt_dist = malloc((size_t)c->queries * c->k * sizeof(float));
    job *jobs = calloc(c->threads, sizeof *jobs);
    if (!base || !query || !cands || !gt || !gt_dist || !jobs) {
        fprintf(stderr, "scale_gen: out of memory for %u x %u\n", c->n, c->dim);
        exit(1);
    }
    for (uint32_t t = 0; t < c->threads; t++)
        jobs[t] = (job){c, m, base, query, cands, gt, gt_dist, t};
    run_threads(jobs, c->threads, gen_rows);
    for (uint32_t q = 0; q < c->queries; q++)
        draw(c, m, STREAM_QUERY, q, query + (size_t)q * c->dim);
    double t1 = now();
    run_threads(jobs, c->threads, ground_truth);
    double t2 = now();

    if (mkdir(c->dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "scale_gen: %s: %s\n", c->dir, strerror(errno));
        exit(1);
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/params.txt", c->dir);
    unlink(path); /* the folder is incomplete until it is rewritten */
    uint64_t size[NFILES];
    uint32_t crc[NFILES];
    write_vecs(c->dir, FILES[0], base, c->n, c->dim, &size[0], &crc[0]);
    write_vecs(c->dir, FILES[1], query, c->queries, c->dim, &size[1], &crc[1]);
    write_vecs(c->dir, FILES[2], gt, c->queries, c->k, &size[2], &crc[2]);
    write_vecs(c->dir, FILES[3], gt_dist, c->queries, c->k, &size[3], &crc[3]);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "scale_gen: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fprintf(f, "%s\n", c->params);
    for (int i = 0; i < NFILES; i++)
        fprintf(f, "%s %llu %08x\n", FILES[i], (unsigned long long)size[i], crc[i]);
    if (fclose(f) != 0) {
        fprintf(stderr, "scale_gen: %s: write failed\n", path);
        exit(1);
    }
    printf("generated rows %u queries %u dim %u threads %u gen_seconds %.1f "
           "groundtruth_seconds %.1f write_seconds %.1f\n",
           c->n, c->queries, c->dim, c->threads, t1 - t0, t2 - t1, now() - t2);
    free(base);
    free(query);
    free(cands);
    free(gt);
    free(gt_dist);
    free(jobs);
}

static void cache_root(char *out, size_t len)
{
    const char *e = getenv("VL_SCALE_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (e && *e)
        snprintf(out, len, "%s", e);
    else if (x && *x)
        snprintf(out, len, "%s/vexlake/scale", x);
    else
        snprintf(out, len, "%s/.cache/vexlake/scale", h && *h ? h : "/tmp");
}

/* mkdir -p */
static void make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    mkdir(path, 0755);
}

static int parse_u(const char *a, const char *flag, unsigned long long *out)
{
    size_t n = strlen(flag);
    if (strncmp(a, flag, n) != 0)
        return 0;
    char *end;
    errno = 0;
    *out = strtoull(a + n, &end, 10);
    if (errno || end == a + n || *end) {
        fprintf(stderr, "scale_gen: bad number in %s\n", a);
        exit(2);
    }
    return 1;
}

int main(int argc, char **argv)
{
    config c = {.n = 1000000, .dim = 384, .seed = 42, .queries = 1000, .k = 100};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    c.threads = cpus > 0 ? (uint32_t)cpus : 1;
    char root[900];
    cache_root(root, sizeof root);
    for (int i = 1; i < argc; i++) {
        unsigned long long v;
        if (parse_u(argv[i], "-n=", &v))
            c.n = (uint32_t)v;
        else if (parse_u(argv[i], "-dim=", &v))
            c.dim = (uint32_t)v;
        else if (parse_u(argv[i], "-seed=", &v))
            c.seed = v;
        else if (parse_u(argv[i], "-queries=", &v))
            c.queries = (uint32_t)v;
        else if (parse_u(argv[i], "-k=", &v))
            c.k = (uint32_t)v;
        else if (parse_u(argv[i], "-threads=", &v))
            c.threads = (uint32_t)v;
        else if (!strncmp(argv[i], "-cache=", 7))
            snprintf(root, sizeof root, "%s", argv[i] + 7);
        else {
            fprintf(stderr,
                    "usage: %s [-n=N] [-dim=D] [-seed=S] [-queries=Q] [-k=K] [-threads=T] "
                    "[-cache=DIR]\n",
                    argv[0]);
            return 2;
        }
    }
    if (c.n < 2 * c.k || c.k == 0 || c.queries == 0 || c.dim == 0 || c.dim > VL_MAX_DIM ||
        c.threads == 0 || c.threads > 64) {
        fprintf(stderr, "scale_gen: need n >= 2k, k, queries >= 1, dim 1..%d, threads 1..64\n",
                VL_MAX_DIM);
        return 2;
    }
    snprintf(c.params, sizeof c.params,
             "scale_gen v%d n=%u dim=%u seed=%llu queries=%u k=%u clusters=%d rank=%d "
             "spread=%.2f noise=%.2f",
             VERSION, c.n, c.dim, (unsigned long long)c.seed, c.queries, c.k, CLUSTERS, RANK,
             SPREAD, NOISE);
    make_dirs(root);
    snprintf(c.dir, sizeof c.dir, "%s/gmm-%u-cosine-%u-s%llu-%08x", root, c.dim, c.n,
             (unsigned long long)c.seed, vl_crc32c(0, c.params, strlen(c.params)));

    model m;
    model_make(&c, &m);
    double t0 = now();
    if (cache_valid(&c, &m))
        printf("cached rows %u queries %u dim %u verify_seconds %.1f\n", c.n, c.queries, c.dim,
               now() - t0);
    else
        generate(&c, &m);
    printf("dir %s\n", c.dir);
    free(m.centre);
    free(m.basis);
    return 0;
}
