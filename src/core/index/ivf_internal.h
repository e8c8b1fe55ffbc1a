/*
 * ivf_internal.h - the IVF index's representation, shared by its files:
 * ivf_train.c (k-means, code parameters), ivf.c (encoding, lists, search)
 * and ivf_io.c (the serialised format).  Not for other modules.
 *
 * List region (one per list, in list order in one body buffer, each
 * starting at a multiple of VL_IVF_ALIGN): row ids (uint32 x count), the
 * codes, then the per-vector float factors as arrays (factor f of entry i
 * at factors[f * count + i]).  Codes:
 *  - none:   count x dim float32
 *  - sq8:    count x dim int8 (c - 128 for the uint8 step code), padded to 4
 *  - rabitq: ceil(count / 32) fast-scan blocks of nsub * 16 bytes (bits.h)
 * Factors: none 0; sq8 1 (|x^|^2); rabitq 2 (see ivf.c: a per-row offset
 * and |r|^2 / sum|r_j|).
 */
#ifndef VL_CORE_INDEX_IVF_INTERNAL_H
#define VL_CORE_INDEX_IVF_INTERNAL_H

#include "core/index/ivf.h"

#define VL_IVF_ALIGN 64u
#define VL_IVF_DEFAULT_ITERS 10u
#define VL_IVF_TRAIN_PER_LIST 256u
/* Defaults of an index that vl_ivf_build() did not calibrate (train + add):
 * the adaptive probe's reach and the SQ8 re-rank depth (see ivf.c). */
#define VL_IVF_DEFAULT_REACH 0.35f
#define VL_IVF_DEFAULT_SQ8_RERANK 2u
/* A reach past every list: the adaptive probe scans them all. */
#define VL_IVF_REACH_ALL 1e30f

struct vl_ivf {
    uint32_t dim, nlist, count;
    vl_metric metric;
    vl_ivf_quant quant;
    uint64_t seed;
    uint32_t rdim, nsub;    /* rabitq: vl_ivf_rdim(dim), rdim / 4 */
    float *centroids;       /* nlist x dim */
    float *sq_lo, *sq_step; /* sq8: dim each */
    float *rot;             /* rabitq: 3 x rdim random signs (+-1) */
    float *rcent;           /* rabitq: nlist x rdim, rot x centroid */
    float *rmu;             /* rabitq: rdim, rot x the mean of the centroids */
    float reach;            /* adaptive probe: lists within reach x the k-th radius */
    uint32_t sq8_rerank;    /* sq8: re-rank k x this many estimates; 0 for other codes */
    vl_ivf_list_info *lists;
    uint8_t *body;
    uint64_t body_len;
    uint32_t max_count; /* largest list */
};

/** Bytes of one list region holding count rows (without alignment). */
uint64_t vl_ivf_list_bytes(const vl_ivf *ix, uint32_t count);
/** Float factors per vector for the index's code. */
uint32_t vl_ivf_factors(const vl_ivf *ix);
/** Compute rcent from rot and centroids (rabitq). */
void vl_ivf_rotate_centroids(vl_ivf *ix);
/** Rotate x (dim, zero-padded) into y (rdim floats). */
void vl_ivf_rotate(const vl_ivf *ix, const float *x, float *y);
/** The rotated dimension of the rabitq code: the power of two >= dim, >= 8. */
uint32_t vl_ivf_rdim(uint32_t dim);

/** k-means on n vectors into centroids (k x dim); see ivf_train.c. */
void vl_ivf_kmeans(const float *x, uint32_t n, uint32_t dim, uint32_t k, uint32_t iters,
                   uint64_t seed, float *centroids);
/** Index of the centroid nearest to x by squared L2 (ties: lower index). */
uint32_t vl_ivf_nearest(const float *centroids, uint32_t k, uint32_t dim, const float *x,
                        double *scratch);
/** Train the code parameters of ix (sq8 ranges, rabitq rotation). */
void vl_ivf_train_code(vl_ivf *ix, const float *x, uint32_t n);

/** Measure reach and sq8_rerank on the index's own rows x (the n rows it
 *  holds, as added); see ivf_calibrate.c. */
void vl_ivf_calibrate(vl_ivf *ix, const float *x, uint32_t n);

/** splitmix64 step, the generator of every seeded choice. */
uint64_t vl_ivf_rand(uint64_t *state);

#endif
