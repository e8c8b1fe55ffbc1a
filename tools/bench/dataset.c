/*
 * dataset.c - see dataset.h.  Files are read whole and their per-record
 * dimension words stripped, so each row is contiguous and goes on the wire
 * as it is (FP32 blobs are little-endian; main.c refuses big-endian hosts).
 */
#include "dataset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read PATH (records of int32 d then d 4-byte values) into *out as n x d.
 * Returns 1 on success, 0 if the file does not exist, -1 on error. */
static int read_vecs(const char *path, void **out, uint32_t *n, uint32_t *d, char *err,
                     size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int32_t dim;
    long size = -1;
    if (fread(&dim, 4, 1, fp) == 1 && fseek(fp, 0, SEEK_END) == 0)
        size = ftell(fp);
    size_t rec = (size_t)dim * 4 + 4;
    if (size <= 0 || dim <= 0 || dim > 65536 || (size_t)size % rec) {
        snprintf(err, errlen, "%s: not an fvecs/ivecs file (first dimension %d, %ld bytes)", path,
                 (int)dim, size);
        fclose(fp);
        return -1;
    }
    size_t rows = (size_t)size / rec;
    uint32_t *data = malloc(rows * (size_t)dim * 4);
    uint32_t *row = malloc(rec);
    int rc = data && row && fseek(fp, 0, SEEK_SET) == 0 ? 1 : -1;
    for (size_t i = 0; rc == 1 && i < rows; i++) {
        if (fread(row, rec, 1, fp) != 1 || (int32_t)row[0] != dim) {
            snprintf(err, errlen, "%s: record %zu is short or has another dimension", path, i);
            rc = -1;
            break;
        }
        memcpy(data + i * (size_t)dim, row + 1, (size_t)dim * 4);
    }
    if (rc == -1 && !err[0])
        snprintf(err, errlen, "%s: cannot read (%zu rows of %d)", path, rows, (int)dim);
    free(row);
    fclose(fp);
    if (rc != 1) {
        free(data);
        return -1;
    }
    *out = data;
    *n = (uint32_t)rows;
    *d = (uint32_t)dim;
    return 1;
}

static vb_metric metric_from_name(const char *dir)
{
    if (strstr(dir, "cosine") || strstr(dir, "angular"))
        return VB_METRIC_COSINE;
    if (strstr(dir, "euclidean") || strstr(dir, "l2"))
        return VB_METRIC_L2;
    return VB_METRIC_NONE;
}

int vb_dataset_load(vb_dataset *d, const char *dir, vb_metric metric, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    err[0] = 0;
    char path[4096];
    uint32_t n, dim, qdim;
    void *p;
    snprintf(path, sizeof path, "%s/base.fvecs", dir);
    if (read_vecs(path, &p, &d->nbase, &d->dim, err, errlen) != 1) {
        if (!err[0])
            snprintf(err, errlen, "%s: no such file", path);
        return -1;
    }
    d->base = p;
    snprintf(path, sizeof path, "%s/query.fvecs", dir);
    int r = read_vecs(path, &p, &d->nquery, &qdim, err, errlen);
    if (r < 0 || (r == 1 && qdim != d->dim)) {
        if (r == 1) {
            snprintf(err, errlen, "%s: dimension %u, base has %u", path, qdim, d->dim);
            free(p);
        }
        vb_dataset_free(d);
        return -1;
    }
    d->query = r == 1 ? p : NULL;
    snprintf(path, sizeof path, "%s/groundtruth.ivecs", dir);
    r = read_vecs(path, &p, &n, &d->gt_k, err, errlen);
    if (r == 1 && n == d->nquery && d->query) {
        d->gt = p;
        snprintf(path, sizeof path, "%s/groundtruth_dist.fvecs", dir);
        r = read_vecs(path, &p, &n, &dim, err, errlen);
        if (r == 1 && n == d->nquery && dim == d->gt_k)
            d->gt_dist = p;
        else if (r == 1)
            free(p);
    } else {
        if (r == 1)
            free(p);
        d->gt_k = 0;
    }
    if (r < 0) {
        vb_dataset_free(d);
        return -1;
    }
    d->metric = metric != VB_METRIC_NONE ? metric : metric_from_name(dir);
    return 0;
}

/* splitmix64: a seeded stream, the same on every machine. */
static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float *random_rows(uint32_t n, uint32_t dim, uint64_t *seed)
{
    float *v = malloc((size_t)n * dim * sizeof *v);
    if (!v) {
        fprintf(stderr, "vexlake-bench: out of memory for %u x %u vectors\n", n, dim);
        exit(1);
    }
    for (size_t i = 0; i < (size_t)n * dim; i++)
        v[i] = (float)((double)(next_random(seed) >> 11) / 4503599627370496.0 - 1.0);
    return v;
}

void vb_dataset_random(vb_dataset *d, uint32_t dim, uint32_t nbase, uint32_t nquery, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    d->dim = dim;
    d->nbase = nbase;
    d->nquery = nquery;
    d->base = random_rows(nbase, dim, &seed);
    d->query = random_rows(nquery, dim, &seed);
}

void vb_dataset_free(vb_dataset *d)
{
    free(d->base);
    free(d->query);
    free(d->gt);
    free(d->gt_dist);
    memset(d, 0, sizeof *d);
}

int vb_dataset_tie_aware(const vb_dataset *d, uint32_t k)
{
    return d->gt_dist && d->metric != VB_METRIC_NONE && k <= d->gt_k;
}

/* The true distance in double, in four chains per sum (the bench client
 * shares the cores with the server it measures: one chain waits on every
 * add, 784 of them per row of fashion-mnist). */
static double distance(const vb_dataset *d, const float *q, const float *b)
{
    double s[4] = {0}, qq[4] = {0}, bb[4] = {0};
    uint32_t i = 0, dim = d->dim;
    if (d->metric == VB_METRIC_L2) {
        for (; i + 4 <= dim; i += 4)
            for (int j = 0; j < 4; j++) {
                double t = (double)q[i + j] - (double)b[i + j];
                s[j] += t * t;
            }
        for (; i < dim; i++) {
            double t = (double)q[i] - (double)b[i];
            s[0] += t * t;
        }
        return sqrt((s[0] + s[1]) + (s[2] + s[3]));
    }
    for (; i + 4 <= dim; i += 4)
        for (int j = 0; j < 4; j++) {
            s[j] += (double)q[i + j] * (double)b[i + j];
            qq[j] += (double)q[i + j] * (double)q[i + j];
            bb[j] += (double)b[i + j] * (double)b[i + j];
        }
    for (; i < dim; i++) {
        s[0] += (double)q[i] * (double)b[i];
        qq[0] += (double)q[i] * (double)q[i];
        bb[0] += (double)b[i] * (double)b[i];
    }
    double sd = (s[0] + s[1]) + (s[2] + s[3]);
    double qn = (qq[0] + qq[1]) + (qq[2] + qq[3]), bn = (bb[0] + bb[1]) + (bb[2] + bb[3]);
    return qn > 0 && bn > 0 ? 1.0 - sd / (sqrt(qn) * sqrt(bn)) : 1.0;
}

/* Whether row is one of the k ids of truth. */
static int is_true_row(const int32_t *truth, uint32_t k, int64_t row)
{
    for (uint32_t j = 0; j < k; j++)
        if (row == truth[j])
            return 1;
    return 0;
}

void vb_dataset_score(const vb_dataset *d, uint32_t qi, const int64_t *rows, uint32_t nrows,
                      uint32_t k, uint64_t *hits_ids, uint64_t *hits_tie)
{
    const int32_t *truth = d->gt + (size_t)qi * d->gt_k;
    uint32_t n = nrows < k ? nrows : k;
    for (uint32_t j = 0; j < k; j++) { /* each true id once, however often it came */
        for (uint32_t i = 0; i < n; i++) {
            if (rows[i] == truth[j]) {
                (*hits_ids)++;
                break;
            }
        }
    }
    if (!vb_dataset_tie_aware(d, k))
        return;
    /* The ground truth's distances were computed in float64 too; the margin
     * only absorbs the last bits of two different summation orders.  A row
     * that is one of the true k nearest is within the k-th distance by
     * definition: only the others (a few per reply at recall 0.95) cost a
     * distance. */
    double kth = d->gt_dist[(size_t)qi * d->gt_k + k - 1];
    double tol = 1e-6 * (kth > 1.0 ? kth : 1.0);
    const float *q = d->query + (size_t)qi * d->dim;
    for (uint32_t i = 0; i < n; i++) {
        if (rows[i] >= 0 && (is_true_row(truth, k, rows[i]) ||
                             distance(d, q, d->base + (size_t)rows[i] * d->dim) <= kth + tol))
            (*hits_tie)++;
    }
}

void vb_score_memo_init(vb_score_memo *m, const vb_dataset *d, uint32_t k)
{
    memset(m, 0, sizeof *m);
    m->k = k;
    m->width = k;
    m->n = calloc(d->nquery, sizeof *m->n);
    m->rows = calloc((size_t)d->nquery * k, sizeof *m->rows);
    m->ids = calloc(d->nquery, sizeof *m->ids);
    m->tie = calloc(d->nquery, sizeof *m->tie);
    if (!m->n || !m->rows || !m->ids || !m->tie) {
        fprintf(stderr, "vexlake-bench: out of memory\n");
        exit(1);
    }
}

void vb_score_memo_free(vb_score_memo *m)
{
    free(m->n);
    free(m->rows);
    free(m->ids);
    free(m->tie);
    memset(m, 0, sizeof *m);
}

void vb_dataset_score_memo(const vb_dataset *d, vb_score_memo *m, uint32_t qi, const int64_t *rows,
                           uint32_t nrows, uint32_t k, uint64_t *hits_ids, uint64_t *hits_tie)
{
    uint32_t n = nrows < k ? nrows : k; /* the rows scoring reads */
    if (k != m->k || qi >= d->nquery) {
        vb_dataset_score(d, qi, rows, nrows, k, hits_ids, hits_tie);
        return;
    }
    int64_t *last = m->rows + (size_t)qi * m->width;
    if (m->n[qi] != n + 1 || memcmp(last, rows, n * sizeof *rows) != 0) {
        uint64_t ids = 0, tie = 0;
        vb_dataset_score(d, qi, rows, nrows, k, &ids, &tie);
        memcpy(last, rows, n * sizeof *rows);
        m->n[qi] = n + 1;
        m->ids[qi] = ids;
        m->tie[qi] = tie;
    }
    *hits_ids += m->ids[qi];
    *hits_tie += m->tie[qi];
}
