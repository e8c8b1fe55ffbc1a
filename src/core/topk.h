/*
 * topk.h - the K best candidates of a scan, as a bounded max-heap.
 *
 * Candidates are ordered by (distance key, row): lower is better, and on
 * equal distance the earlier row (insertion order) wins, so results are
 * deterministic and match ground truth that breaks ties by smaller id.
 */
#ifndef VL_CORE_TOPK_H
#define VL_CORE_TOPK_H

#include <stdint.h>

typedef struct {
    double dist;
    uint64_t row;
} vl_candidate;

typedef struct {
    vl_candidate *items; /* heap, worst at [0] */
    uint32_t n, k;
} vl_topk;

/** items must have room for k candidates. */
void vl_topk_init(vl_topk *t, vl_candidate *items, uint32_t k);
/** Offer a candidate; kept only if among the K best so far. */
void vl_topk_push(vl_topk *t, double dist, uint64_t row);
/** The distance a candidate must beat to enter (INFINITY until full). */
double vl_topk_bound(const vl_topk *t);
/** Sort the kept candidates best first (destroys the heap order). */
void vl_topk_sort(vl_topk *t);

#endif
