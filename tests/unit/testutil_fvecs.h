/*
 * testutil_fvecs.h - reading the texmex .fvecs / .ivecs files of the shared
 * ANN datasets (see ../shared/datasets/README.md), and tie-aware recall.
 * Used by tests/unit/test_hnsw.c and bench/ann_bench.c.
 */
#ifndef VL_TESTUTIL_FVECS_H
#define VL_TESTUTIL_FVECS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vexlake.h"

/** Read every record of path (int32 d, then d 4-byte values) into one
 *  malloc'd row-major array; NULL when the file is missing or malformed. */
static inline void *vl_read_vecs(const char *path, uint32_t *n, uint32_t *d)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    int32_t dim = 0;
    long size = 0;
    if (fread(&dim, 4, 1, f) != 1 || dim <= 0 || fseek(f, 0, SEEK_END) != 0 ||
        (size = ftell(f)) <= 0 || size % (4 + 4L * dim) != 0) {
        fclose(f);
        return NULL;
    }
    size_t recs = (size_t)size / (4 + 4 * (size_t)dim);
    char *raw = malloc((size_t)size);
    float *out = malloc(recs * (size_t)dim * 4);
    rewind(f);
    int ok = raw && out && fread(raw, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    for (size_t r = 0; ok && r < recs; r++) {
        int32_t rd;
        memcpy(&rd, raw + r * (4 + 4 * (size_t)dim), 4);
        ok = rd == dim;
        memcpy(out + r * (size_t)dim, raw + r * (4 + 4 * (size_t)dim) + 4, (size_t)dim * 4);
    }
    free(raw);
    if (!ok) {
        free(out);
        return NULL;
    }
    *n = (uint32_t)recs;
    *d = (uint32_t)dim;
    return out;
}

/** Distance in double as the ground truth defines it: Euclidean (not
 *  squared) for L2, 1 - cos for cosine, -dot for IP. */
static inline double vl_true_dist(vl_metric m, const float *a, const float *b, uint32_t dim)
{
    double s = 0, na = 0, nb = 0;
    for (uint32_t i = 0; i < dim; i++) {
        if (m == VL_METRIC_L2) {
            double x = (double)a[i] - b[i];
            s += x * x;
        } else {
            s += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
    }
    if (m == VL_METRIC_L2)
        return sqrt(s);
    if (m == VL_METRIC_IP)
        return -s;
    return na > 0 && nb > 0 ? 1.0 - s / sqrt(na * nb) : 1.0;
}

/** Tie-aware hits among rows[0..n): a row counts when its true distance is
 *  within the k-th nearest distance kth (plus float32 rounding of kth), so
 *  that any of several equally near rows is right. */
static inline uint32_t vl_tie_hits(vl_metric m, const float *q, const float *base, uint32_t dim,
                                   const uint32_t *rows, uint32_t n, double kth)
{
    uint32_t hits = 0;
    for (uint32_t i = 0; i < n; i++) {
        double d = vl_true_dist(m, q, base + (size_t)rows[i] * dim, dim);
        if (d <= kth + 1e-6 * (1 + fabs(kth)))
            hits++;
    }
    return hits;
}

/** vl_read_vecs of dir/name for a bench program: a missing or malformed
 *  file ends the program with a message naming prog and the path. */
static inline void *vl_read_vecs_in(const char *prog, const char *dir, const char *name,
                                    uint32_t *n, uint32_t *d)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    void *v = vl_read_vecs(path, n, d);
    if (!v) {
        fprintf(stderr, "%s: cannot read %s\n", prog, path);
        exit(1);
    }
    return v;
}

/** The shared datasets (../shared/datasets) and their metrics. */
typedef struct {
    const char *name;
    vl_metric metric;
} vl_dataset;

static const vl_dataset vl_datasets[] = {
    {"sift-128-euclidean-ngt5k", VL_METRIC_L2},
    {"fashion-mnist-784-euclidean-15k", VL_METRIC_L2},
    {"debian-minilm-384-cosine-20k", VL_METRIC_COSINE},
    {"manpage-minilm-384-cosine-19k", VL_METRIC_COSINE},
};
#define VL_NDATASETS (sizeof vl_datasets / sizeof vl_datasets[0])

#endif
