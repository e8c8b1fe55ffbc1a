/*
 * dataset.h - the vectors the load generator sends and the ground truth it
 * scores replies against.
 *
 * A dataset directory holds base.fvecs (the rows to insert; row i is key
 * <prefix>i), query.fvecs, and optionally groundtruth.ivecs (per query the
 * ids of its nearest base rows, nearest first) and groundtruth_dist.fvecs
 * (their distances), in the texmex layout.  Without a directory, seeded
 * random vectors stand in (no ground truth, so no recall).
 *
 * Recall is counted two ways.  "ids": the true K nearest ids that came
 * back (each once, so two keys of one row count once).  "tie-aware" (when the distances and the
 * metric are known): a returned row counts if its true distance, computed here in double, is at
 * most the K-th true neighbour's, so a row that ties with a true neighbour (duplicates are common
 * in real data, and the mixed mode inserts copies of base rows under new keys) is not a miss.
 */
#ifndef VB_DATASET_H
#define VB_DATASET_H

#include <stddef.h>
#include <stdint.h>

typedef enum { VB_METRIC_NONE, VB_METRIC_L2, VB_METRIC_COSINE } vb_metric;

typedef struct {
    uint32_t dim, nbase, nquery;
    float *base, *query; /* row-major, little-endian float32 (the wire bytes) */
    uint32_t gt_k;       /* neighbours per query in the ground truth; 0: none */
    int32_t *gt;         /* nquery x gt_k ids */
    float *gt_dist;      /* nquery x gt_k distances, or NULL */
    vb_metric metric;
} vb_dataset;

/* Load DIR/{base,query}.fvecs and the ground truth if present; the metric
 * comes from the directory name ("euclidean"/"l2" or "cosine"/"angular")
 * unless metric is not VB_METRIC_NONE.  Returns 0, or -1 with a message. */
int vb_dataset_load(vb_dataset *d, const char *dir, vb_metric metric, char *err, size_t errlen);

/* nbase and nquery seeded uniform vectors in [-1, 1). */
void vb_dataset_random(vb_dataset *d, uint32_t dim, uint32_t nbase, uint32_t nquery, uint64_t seed);

void vb_dataset_free(vb_dataset *d);

/* Score one reply to query qi: rows[i] is the base row of the i-th returned
 * key (-1: not a base key).  Adds to *hits_ids and *hits_tie the counts for
 * the first k rows (missing rows are misses); *hits_tie stays untouched when
 * tie-aware scoring is not possible.  Needs gt_k >= k. */
void vb_dataset_score(const vb_dataset *d, uint32_t qi, const int64_t *rows, uint32_t nrows,
                      uint32_t k, uint64_t *hits_ids, uint64_t *hits_tie);

/* The last reply's score per query: a closed loop sends every query again
 * and again, and an index that has not changed answers alike, so a reply
 * equal to its query's last one (same rows, same order) costs a compare
 * instead of a distance per row outside the true k (perf: scoring was
 * 6.5% of the tool's CPU at 50 clients on sift; each op's CPU is taken
 * from the server's on the shared cores).  One per thread. */
typedef struct {
    uint32_t k, width; /* width: rows kept per query */
    uint32_t *n;       /* per query: rows of the last reply + 1; 0: none yet */
    int64_t *rows;     /* nquery x width */
    uint64_t *ids, *tie;
} vb_score_memo;

void vb_score_memo_init(vb_score_memo *m, const vb_dataset *d, uint32_t k);
void vb_score_memo_free(vb_score_memo *m);
/* vb_dataset_score through the memo (same counts). */
void vb_dataset_score_memo(const vb_dataset *d, vb_score_memo *m, uint32_t qi, const int64_t *rows,
                           uint32_t nrows, uint32_t k, uint64_t *hits_ids, uint64_t *hits_tie);

/* Whether tie-aware recall can be computed at this k. */
int vb_dataset_tie_aware(const vb_dataset *d, uint32_t k);

#endif
